"""Where the real Hugging Face tokenizers used by the tests live, and a cached loader.

Looked up in ``$CONSTRAIN_TOKENIZERS_DIR`` when set, else ``<repo>/../shared/tokenizers``, else
``/work/shared/tokenizers``. A missing tokenizer makes the calling test skip, saying where it
looked.

Import it as ``from tests.tokenizers import load_tokenizer`` (``tests`` is a package so that this
module does not shadow the real ``tokenizers`` library).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

#: The tokenizer folders the test suite knows about.
TOKENIZER_NAMES = ("smollm2", "gpt2", "llama3.2", "mistral-tekken", "qwen2.5", "gemma3")

ENV_VAR = "CONSTRAIN_TOKENIZERS_DIR"


def _candidate_dirs() -> list[Path]:
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(env)]
    repo = Path(__file__).resolve().parents[1]
    out = [repo.parent / "shared" / "tokenizers", Path("/work/shared/tokenizers")]
    return list(dict.fromkeys(out))


def tokenizer_path(name: str) -> Path:
    """Folder of tokenizer ``name`` (holding ``tokenizer.json``); skips the test if absent."""
    dirs = _candidate_dirs()
    for d in dirs:
        p = d / name
        if (p / "tokenizer.json").is_file():
            return p
    where = ", ".join(str(d / name) for d in dirs)
    pytest.skip(f"tokenizer {name!r} not found (looked in {where}; set ${ENV_VAR} to the folder holding it)")


@functools.lru_cache(maxsize=None)
def _load(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def load_tokenizer(name: str):
    """``AutoTokenizer.from_pretrained`` of tokenizer ``name``, loaded once per session.

    The object is shared between tests: do not mutate it (load your own copy with
    ``AutoTokenizer.from_pretrained(tokenizer_path(name))`` for that).
    """
    return _load(str(tokenizer_path(name)))


class TokenizerUnderTest:
    """A real tokenizer, its compiler, and what random tokenizations need (shared by the tests)."""

    def __init__(self, name: str):
        import numpy as np

        import constrain

        self.name = name
        self.hf = load_tokenizer(name)
        self.compiler = constrain.Compiler(self.hf)
        self.vocab = self.compiler.vocab
        self.by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(self.vocab.token_bytes):
            if b:
                self.by_bytes.setdefault(b, i)
        self.max_len = max(len(b) for b in self.by_bytes)
        self.is_special = np.zeros(self.vocab.size, dtype=bool)
        self.is_special[[i for i, b in enumerate(self.vocab.token_bytes) if b is None]] = True
        self.is_special[len(self.vocab.token_bytes):] = True  # logits padding
        self.eos_ids = frozenset(self.vocab.eos_token_ids)
        assert self.eos_ids, "the tests need an EOS id"
        self.eos = min(self.eos_ids)

    def canonical(self, text: str) -> list[int]:
        ids = list(self.hf.encode(text, add_special_tokens=False))
        assert b"".join(self.vocab.token_bytes[i] for i in ids) == text.encode(), (text, ids)
        return ids

    def random_tokens(self, data: bytes, rnd, bytewise_chance: float = 0.25) -> list[int]:
        """A random tokenization: at each point, any vocabulary token that is a prefix of the rest
        (or, with ``bytewise_chance``, single bytes throughout)."""
        bytewise = rnd.random() < bytewise_chance
        out = []
        i = 0
        while i < len(data):
            if bytewise:
                choices = [self.by_bytes[data[i:i + 1]]]
            else:
                choices = [self.by_bytes[data[i:j]] for j in range(i + 1, min(len(data), i + self.max_len) + 1)
                           if data[i:j] in self.by_bytes]
            t = rnd.choice(choices)
            out.append(t)
            i += len(self.vocab.token_bytes[t])
        assert b"".join(self.vocab.token_bytes[t] for t in out) == data
        return out
