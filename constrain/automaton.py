"""A lazily built byte-level DFA whose states are terms of a ``TermStore``.

State 0 is the dead state (the empty language). A state's row of 256 transitions is computed the
first time it is needed, one derivative per byte class, and stored in a dense numpy table so that
vectorized walks over the vocabulary can gather transitions for many states at once.
"""

from __future__ import annotations

import threading
import numpy as np

from .errors import BudgetExceededError
from .terms import EMPTY, TermStore

UNKNOWN = -1
DEAD = 0  # the single state of every empty language: all of its transitions lead back to it
_INITIAL_ROWS = 4


class LazyDFA:
    """States are interned terms; rows are filled on demand. Thread-safe for concurrent readers."""

    def __init__(self, store: TermStore, start_term: int, *, max_states: int = 200_000):
        self.store = store
        self.max_states = max_states
        self.lock = threading.RLock()
        self.term_of: list[int] = []
        self.state_of: dict[int, int] = {}
        # a few rows to start with: a grammar's lexer holds an automaton per lexeme, most of
        # them of a handful of states
        self.table = np.full((_INITIAL_ROWS, 256), UNKNOWN, dtype=np.int32)
        self.accepting = np.zeros(_INITIAL_ROWS, dtype=bool)
        self.row_known = np.zeros(_INITIAL_ROWS, dtype=bool)
        self.term_of.append(EMPTY)
        self.state_of[EMPTY] = DEAD
        self.table[DEAD, :] = DEAD
        self.row_known[DEAD] = True
        self.start = self.state(start_term)
        self._mask_keys: dict[tuple[int, int], int] = {}
        # byte classes as index arrays: per automaton, so that the memory goes with it
        self._indices: dict[int, np.ndarray] = {}

    @property
    def num_states(self) -> int:
        return len(self.term_of)

    def state(self, term: int) -> int:
        """The state of ``term``; every term with an empty language is the one DEAD state."""
        sid = self.state_of.get(term)
        if sid is not None:
            return sid
        with self.lock:
            sid = self.state_of.get(term)
            if sid is not None:
                return sid
            if self.store.is_empty(term):
                self.state_of[term] = DEAD
                return DEAD
            sid = len(self.term_of)
            if sid >= self.max_states:
                raise BudgetExceededError(
                    f"the automaton exceeded its budget of {self.max_states} states")
            if sid >= len(self.accepting):
                self._grow(2 * len(self.accepting))
            self.term_of.append(term)
            self.accepting[sid] = self.store.nullable[term]
            self.state_of[term] = sid
            return sid

    def _grow(self, cap: int) -> None:
        n = len(self.accepting)
        table = np.full((cap, 256), UNKNOWN, dtype=np.int32)
        table[:n] = self.table
        accepting = np.zeros(cap, dtype=bool)
        accepting[:n] = self.accepting
        row_known = np.zeros(cap, dtype=bool)
        row_known[:n] = self.row_known
        # Publish the new arrays; readers holding the old ones see UNKNOWN and come here to wait.
        self.table, self.accepting, self.row_known = table, accepting, row_known

    def ensure_row(self, sid: int) -> np.ndarray:
        if self.row_known[sid]:
            return self.table[sid]
        with self.lock:
            if not self.row_known[sid]:
                store = self.store
                term = self.term_of[sid]
                row = np.empty(256, dtype=np.int32)
                for mask in store.classes(term):
                    rep = (mask & -mask).bit_length() - 1
                    row[self._mask_indices(mask)] = self.state(store.deriv(term, rep))
                self.table[sid] = row
                self.row_known[sid] = True
            return self.table[sid]

    def _mask_indices(self, mask: int) -> np.ndarray:
        got = self._indices.get(mask)
        if got is None:
            bits = np.unpackbits(np.frombuffer(mask.to_bytes(32, "little"), dtype=np.uint8), bitorder="little")
            got = self._indices[mask] = np.flatnonzero(bits)
        return got

    def ensure_rows(self, sids: np.ndarray) -> None:
        for sid in np.unique(sids[~self.row_known[sids]]).tolist():
            self.ensure_row(sid)

    def step(self, sid: int, data: bytes) -> int:
        """Run ``data`` from ``sid``; returns DEAD as soon as the language becomes empty."""
        for b in data:
            nxt = self.table[sid, b] if self.row_known[sid] else self.ensure_row(sid)[b]
            sid = int(nxt)
            if sid == DEAD:
                return DEAD
        return sid

    def mask_key(self, sid: int, lookahead: int) -> int:
        """A state whose token mask equals ``sid``'s for tokens of fewer than ``lookahead`` bytes."""
        key = (sid, lookahead)
        got = self._mask_keys.get(key)
        if got is not None:
            return got
        with self.lock:
            out = self.state(self.store.cap_counters(self.term_of[sid], lookahead))
        self._mask_keys[key] = out
        return out
