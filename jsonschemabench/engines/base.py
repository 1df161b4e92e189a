"""The adapter interface every engine implements (one module per engine).

An adapter is built once per worker process for one tokenizer (``setup`` does the expensive
per-tokenizer work: vocabulary tables, tokenizer info). ``compile_json_schema`` / ``compile_regex``
return a :class:`Grammar`, which holds one matcher state and its own bitmask row:

    g = adapter.compile_json_schema(schema)   # timed by the harness as compile time
    g.reset()                                 # back to the start state (one per test instance)
    g.fill_mask()                             # timed by the harness: fills g.mask (int32 words)
    allowed = mask_allows(g.mask, tid)
    ok = g.accept_token(tid)                  # -> bool
    g.is_accepting()                          # the text so far is complete (EOS would be allowed)

``g.mask`` is a 1-D ``numpy.int32`` array of ``ceil(V/32)`` words, bit ``i`` = token ``i`` allowed,
the layout vLLM and the engines share. Adapters raise :class:`CompileError` (or any exception)
when a schema is refused; the harness records it as a compile error.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class CompileError(Exception):
    """The engine refused or failed to compile a schema/regex."""


def mask_allows(mask: np.ndarray, token_id: int) -> bool:
    """Whether bit ``token_id`` is set in an int32 bitmask row."""
    word = token_id >> 5
    if word >= mask.shape[0]:
        return False
    return bool((int(mask[word]) >> (token_id & 31)) & 1)


def mask_count(mask: np.ndarray) -> int:
    """Number of allowed tokens in a bitmask row."""
    return int(np.unpackbits(mask.view(np.uint8)).sum())


class Grammar:
    """One compiled grammar plus one matcher state (per-instance reset)."""

    mask: np.ndarray

    def reset(self) -> None:
        raise NotImplementedError

    def fill_mask(self) -> None:
        raise NotImplementedError

    def accept_token(self, token_id: int) -> bool:
        raise NotImplementedError

    def is_accepting(self) -> bool:
        raise NotImplementedError


class EngineAdapter:
    """Base class: one engine bound to one tokenizer."""

    #: registry name (``--engines`` uses it)
    name: str = "base"

    def __init__(self, tokenizer: Any, vocab_size: int | None = None,
                 eos_token_ids: Sequence[int] | None = None, options: dict | None = None):
        self.tokenizer = tokenizer
        self.vocab_size = int(vocab_size or len(tokenizer))
        if eos_token_ids is None:
            eos = getattr(tokenizer, "eos_token_id", None)
            eos_token_ids = [] if eos is None else [eos]
        self.eos_token_ids = [int(t) for t in eos_token_ids]
        self.options = dict(options or {})
        self.n_words = (self.vocab_size + 31) // 32

    # -- per tokenizer ----------------------------------------------------------------------
    def setup(self) -> None:
        """Expensive per-tokenizer preparation (called once per worker)."""

    @classmethod
    def version(cls) -> str:
        return "?"

    # -- per schema -------------------------------------------------------------------------
    def compile_json_schema(self, schema: Any) -> Grammar:
        raise NotImplementedError

    def compile_regex(self, pattern: str) -> Grammar:
        raise CompileError(f"{self.name}: regex not supported by this adapter")

    # helpers
    def new_mask(self) -> np.ndarray:
        return np.zeros(self.n_words, dtype=np.int32)

    def eos_allowed(self, mask: np.ndarray) -> bool:
        return any(mask_allows(mask, t) for t in self.eos_token_ids)


def package_version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # pragma: no cover
        return "?"
