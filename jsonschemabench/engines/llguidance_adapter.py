"""LLGuidance adapter (``pip install llguidance``): ``LLMatcher`` over an ``LLTokenizer`` built
from the Hugging Face tokenizer. Default JSON options (flexible whitespace, strict keywords:
unsupported ones are compile errors). A matcher in error state after construction is a compile
error; ``consume_token`` failing is a rejection."""

from __future__ import annotations

import json

import numpy as np

from .base import CompileError, EngineAdapter, Grammar, package_version


class _LlgGrammar(Grammar):
    def __init__(self, adapter: "LLGuidanceAdapter", matcher):
        self._m = matcher
        self._buf = np.zeros((1, adapter.n_words), dtype=np.int32)
        self.mask = self._buf[0]
        self._nbytes = self.mask.size * 4
        self._ptr = self.mask.ctypes.data

    def reset(self):
        self._m.reset()

    def fill_mask(self):
        self._m.unsafe_compute_mask_ptr(self._ptr, self._nbytes)

    def accept_token(self, token_id):
        return bool(self._m.consume_token(token_id))

    def is_accepting(self):
        return bool(self._m.is_accepting())


class LLGuidanceAdapter(EngineAdapter):
    name = "llguidance"

    @classmethod
    def version(cls):
        return package_version("llguidance")

    def setup(self):
        import llguidance.hf

        eos = self.eos_token_ids if len(self.eos_token_ids) != 1 else self.eos_token_ids[0]
        self._tok = llguidance.hf.from_tokenizer(self.tokenizer, n_vocab=self.vocab_size,
                                                 eos_token=eos or None)

    def _matcher(self, grammar: str):
        import llguidance as llg

        try:
            m = llg.LLMatcher(self._tok, grammar, log_level=0)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        if m.is_error():
            raise CompileError(m.get_error())
        return _LlgGrammar(self, m)

    def compile_json_schema(self, schema):
        import llguidance as llg

        try:
            grm = llg.LLMatcher.grammar_from_json_schema(
                schema if isinstance(schema, str) else json.dumps(schema),
                defaults=self.options.get("json_options"))
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return self._matcher(grm)

    def compile_regex(self, pattern):
        import llguidance as llg

        return self._matcher(llg.LLMatcher.grammar_from_regex(pattern))

    def compile_grammar(self, text, dialect="lark"):
        """A context-free grammar in llguidance's Lark dialect (``LLMatcher.grammar_from_lark``).
        Other dialects are refused."""
        import llguidance as llg

        if dialect != "lark":
            raise CompileError(f"llguidance: grammar dialect {dialect!r} not supported (use Lark)")
        try:
            grm = llg.LLMatcher.grammar_from_lark(text)
        except Exception as e:
            raise CompileError(f"{type(e).__name__}: {e}") from e
        return self._matcher(grm)
