"""The lexer: one lazily built DFA that runs every allowed lexeme at once.

A lexer state is the tuple of ``(lexeme, state of that lexeme's own DFA)`` for the lexemes still
alive, interned to an int. The start state for a set of allowed lexemes is the tuple of their
start states, so states are shared between all parser positions that allow the same lexemes, and
so are the token masks computed for them. The table has the ``LazyDFA`` layout (``table``,
``row_known``, ``ensure_row``), so the vocabulary walks of ``token_index`` run over it unchanged.
"""

from __future__ import annotations

import threading

import numpy as np

from ..automaton import DEAD, UNKNOWN, LazyDFA
from ..errors import BudgetExceededError
from ..terms import TermStore


class Lexer:
    def __init__(self, store: TermStore, terms: list[int], *, max_states: int = 200_000):
        self.dfas = [LazyDFA(store, t) for t in terms]
        self.max_states = max_states
        self.lock = threading.RLock()
        self.parts: list[tuple[tuple[int, int], ...]] = [()]
        self.state_of: dict[tuple, int] = {(): DEAD}
        self.accepts: list[tuple[int, ...]] = [()]  # lexemes complete in each state
        self.table = np.full((64, 256), UNKNOWN, dtype=np.int32)
        self.row_known = np.zeros(64, dtype=bool)
        self.accepting = np.zeros(64, dtype=bool)
        self.table[DEAD] = DEAD
        self.row_known[DEAD] = True
        self._starts: dict[frozenset[int], int] = {}

    @property
    def num_states(self) -> int:
        return len(self.parts)

    def start(self, lexemes: frozenset[int]) -> int:
        """The state that begins a new lexeme, any of ``lexemes``."""
        sid = self._starts.get(lexemes)
        if sid is None:
            sid = self._starts[lexemes] = self._intern(tuple((i, self.dfas[i].start) for i in sorted(lexemes)))
        return sid

    def _intern(self, parts: tuple[tuple[int, int], ...]) -> int:
        sid = self.state_of.get(parts)
        if sid is not None:
            return sid
        with self.lock:
            sid = self.state_of.get(parts)
            if sid is not None:
                return sid
            sid = len(self.parts)
            if sid >= self.max_states:
                raise BudgetExceededError(f"the lexer exceeded its budget of {self.max_states} states")
            if sid >= len(self.row_known):
                self._grow(2 * len(self.row_known))
            acc = tuple(i for i, s in parts if self.dfas[i].accepting[s])
            self.parts.append(parts)
            self.accepts.append(acc)
            self.accepting[sid] = bool(acc)
            self.state_of[parts] = sid
            return sid

    def _grow(self, cap: int) -> None:
        n = len(self.row_known)
        table = np.full((cap, 256), UNKNOWN, dtype=np.int32)
        table[:n] = self.table
        row_known = np.zeros(cap, dtype=bool)
        row_known[:n] = self.row_known
        accepting = np.zeros(cap, dtype=bool)
        accepting[:n] = self.accepting
        self.table, self.row_known, self.accepting = table, row_known, accepting

    def ensure_row(self, sid: int) -> np.ndarray:
        if self.row_known[sid]:
            return self.table[sid]
        with self.lock:
            if not self.row_known[sid]:
                parts = self.parts[sid]
                rows = np.stack([self.dfas[i].ensure_row(s) for i, s in parts])  # (k, 256)
                cols, inverse = np.unique(rows.T, axis=0, return_inverse=True)
                ids = [i for i, _ in parts]
                nxt = np.empty(len(cols), dtype=np.int32)
                for c, col in enumerate(cols.tolist()):
                    nxt[c] = self._intern(tuple((i, s) for i, s in zip(ids, col) if s != DEAD))
                self.table[sid] = nxt[inverse.reshape(-1)]
                self.row_known[sid] = True
            return self.table[sid]

    def ensure_rows(self, sids: np.ndarray) -> None:
        for sid in np.unique(sids[~self.row_known[sids]]).tolist():
            self.ensure_row(sid)

    def step_byte(self, sid: int, b: int) -> int:
        row = self.table[sid] if self.row_known[sid] else self.ensure_row(sid)
        return int(row[b])
