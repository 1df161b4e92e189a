"""outlines-core adapter (``pip install outlines-core``): JSON Schema → regex
(``build_regex_from_schema``, default whitespace pattern) → ``Index`` over a ``Vocabulary`` built
from each token's exact bytes (special tokens left out, the first EOS id as outlines' EOS).
Compile = regex construction + index construction (outlines builds the whole token index eagerly).
"""

from __future__ import annotations

import json

import numpy as np

from .base import CompileError, EngineAdapter, Grammar, package_version


class _OcGrammar(Grammar):
    def __init__(self, adapter: "OutlinesCoreAdapter", index):
        import outlines_core as oc

        self._guide = oc.Guide(index)
        self.mask = np.zeros(adapter.n_words, dtype=np.int32)
        self._ptr = self.mask.ctypes.data

    def reset(self):
        self._guide.reset()

    def fill_mask(self):
        self._guide.write_mask_into(self._ptr, self.mask.size, 4)

    def accept_token(self, token_id):
        try:
            self._guide.advance(token_id, return_tokens=False)
            return True
        except ValueError:
            return False

    def is_accepting(self):
        return bool(self._guide.is_finished())


class OutlinesCoreAdapter(EngineAdapter):
    name = "outlines-core"

    @classmethod
    def version(cls):
        return package_version("outlines-core")

    def setup(self):
        import outlines_core as oc

        if not self.eos_token_ids:
            raise RuntimeError("outlines-core needs an EOS token id")
        eos = self.eos_token_ids[0]
        skip = set(self.eos_token_ids)
        vocab: dict[bytes, list[int]] = {}
        from constrain import Vocabulary

        # the exact bytes of every token, as our engine reads them (special tokens are None)
        for tid, b in enumerate(Vocabulary.from_tokenizer(self.tokenizer).token_bytes):
            if b is None or tid in skip or not b:
                continue
            vocab.setdefault(b, []).append(tid)
        self._vocab = oc.Vocabulary(eos, vocab)
        # make the bitmask wide enough for every id outlines may write
        top = max(max(ids) for ids in vocab.values())
        self.n_words = max(self.n_words, (max(top, eos) + 32) // 32)

    def _index(self, regex: str):
        import outlines_core as oc

        try:
            return oc.Index(regex, self._vocab)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e

    def compile_json_schema(self, schema):
        from outlines_core.json_schema import build_regex_from_schema

        try:
            rx = build_regex_from_schema(schema if isinstance(schema, str) else json.dumps(schema),
                                         self.options.get("whitespace_pattern"))
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return _OcGrammar(self, self._index(rx))

    def compile_regex(self, pattern):
        return _OcGrammar(self, self._index(pattern))
