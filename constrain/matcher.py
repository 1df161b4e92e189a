"""Per-sequence matching state over a compiled grammar."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class StateMachine(Protocol):
    """What a compiled constraint offers a Matcher (``CompiledGrammar``, ``CompiledCFG``)."""

    vocab: Any
    eos_ids: frozenset[int]
    eos_only_mask: np.ndarray

    def initial_state(self) -> Any: ...
    def advance(self, state: Any, data: bytes) -> Any | None: ...
    def is_accepting(self, state: Any) -> bool: ...
    def mask_of(self, state: Any) -> np.ndarray: ...


class Matcher:
    """Tracks one sequence: which tokens may come next, and the tokens accepted so far.

    >>> m = grammar.matcher()                           # doctest: +SKIP
    >>> row = constrain.allocate_token_bitmask(1, m.vocab_size)[0]
    >>> m.fill_bitmask(row); m.accept_token(int(token_id))
    """

    __slots__ = ("grammar", "_states", "_terminated_at")

    def __init__(self, grammar: StateMachine):
        self.grammar = grammar
        self._states: list[Any] = [grammar.initial_state()]  # state after each accepted token
        self._terminated_at: int | None = None  # index in _states where EOS was accepted

    @property
    def vocab_size(self) -> int:
        return self.grammar.vocab.size

    @property
    def state(self) -> Any:
        return self._states[-1]

    def num_accepted(self) -> int:
        """Tokens accepted since the start (EOS included)."""
        return len(self._states) - 1

    def fill_bitmask(self, row: np.ndarray) -> None:
        """Write the allowed-token mask (``ceil(V/32)`` int32 words) into ``row``."""
        if self._terminated_at is not None:
            np.copyto(row, self.grammar.eos_only_mask, casting="unsafe")
        else:
            np.copyto(row, self.grammar.mask_of(self._states[-1]), casting="unsafe")

    def allowed_token_ids(self) -> np.ndarray:
        """Sorted ids of the tokens allowed next (EOS ids included when accepting)."""
        words = (self.grammar.eos_only_mask if self._terminated_at is not None
                 else self.grammar.mask_of(self._states[-1]))
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: self.vocab_size]
        return np.flatnonzero(bits)

    def is_token_allowed(self, token_id: int) -> bool:
        return self._next_state(token_id) is not None

    def _next_state(self, token_id: int) -> Any | None:
        g = self.grammar
        if self._terminated_at is not None:
            return None
        if token_id in g.eos_ids:
            return _EOS if g.is_accepting(self._states[-1]) else None
        if not 0 <= token_id < len(g.vocab.token_bytes):
            return None
        data = g.vocab.token_bytes[token_id]
        if not data:
            return None
        return g.advance(self._states[-1], data)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; returns False (and changes nothing) if the token is not allowed."""
        token_id = int(token_id)
        nxt = self._next_state(token_id)
        if nxt is None:
            return False
        if nxt is _EOS:
            self._terminated_at = len(self._states)
            self._states.append(self._states[-1])
        else:
            self._states.append(nxt)
        return True

    def accept_tokens(self, token_ids) -> bool:
        """Accept several tokens; on failure, roll back to where it started and return False."""
        start = len(self._states)
        for t in token_ids:
            if not self.accept_token(t):
                self.rollback(len(self._states) - start)
                return False
        return True

    def accept_bytes(self, data: bytes) -> bool:
        """Advance by raw text bytes (not a token); False and unchanged if they leave the language."""
        if self._terminated_at is not None:
            return False
        nxt = self.grammar.advance(self._states[-1], data)
        if nxt is None:
            return False
        self._states.append(nxt)
        return True

    def is_accepting(self) -> bool:
        """The text so far is a complete match (so EOS is allowed)."""
        return self.grammar.is_accepting(self._states[-1])

    def is_terminated(self) -> bool:
        """EOS has been accepted."""
        return self._terminated_at is not None

    def rollback(self, num_tokens: int) -> None:
        """Undo the last ``num_tokens`` accepted tokens (EOS counts as one)."""
        if num_tokens < 0 or num_tokens > len(self._states) - 1:
            raise ValueError(f"cannot roll back {num_tokens} tokens; {len(self._states) - 1} accepted")
        if num_tokens:
            del self._states[-num_tokens:]
        if self._terminated_at is not None and self._terminated_at >= len(self._states):
            self._terminated_at = None

    def copy(self) -> "Matcher":
        m = Matcher.__new__(Matcher)
        m.grammar = self.grammar
        m._states = list(self._states)
        m._terminated_at = self._terminated_at
        return m

    def reset(self) -> None:
        self._states = [self.grammar.initial_state()]
        self._terminated_at = None


_EOS = object()  # marks the end-of-sequence step in ``_next_state``
