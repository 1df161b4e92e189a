"""Token-level DFAs for a fixed-length canvas with EOS padding.

A diffusion model fills a canvas of fixed length, so a finished canvas is ``text EOS EOS ... EOS``
(or ``text`` alone when it fills every position).  The token DFA makes this part of the language:

- from an accepting state, an EOS token leads to :data:`FINAL`; from :data:`FINAL` only EOS may
  follow (padding); from a non-accepting state EOS is dead;
- a canvas is in the language when its run ends in an accepting state (or :data:`FINAL`).

:data:`DEAD` (0) is the one state of the empty language.  Other states may still be unable to
reach acceptance (with the tokens at hand, or within the positions left): :meth:`TokenDFA.distance`
gives the fewest tokens to acceptance, and ``distance(q) <= m`` is exactly "``q`` can finish in
``m`` more positions", because EOS padding fills any slack.

Two kinds: :class:`TableTokenDFA` (explicit tables, for exact tests) and
:class:`GrammarTokenDFA` (a :class:`~constrain.compiler.CompiledGrammar`'s lazy byte DFA read
token by token; transitions computed when a state is first expanded, then cached).

>>> dfa = TableTokenDFA.from_byte_dfa(byte_table, accepting, 1, [b"a", b"ab"], eos_ids=[2])  # doctest: +SKIP
>>> dfa.accepts([0, 1, 2])                                                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

import numpy as np

from ..bitmask import unpack_bitmask_np
from ..errors import BudgetExceededError

__all__ = ["DEAD", "FINAL", "TokenDFA", "TableTokenDFA", "GrammarTokenDFA", "as_token_dfa"]

DEAD = 0
FINAL = -1  # after the first EOS: only EOS may follow

_EMPTY = np.zeros(0, dtype=np.int64)


class TokenDFA(ABC):
    """A deterministic automaton over token ids with EOS padding (see the module docstring).

    Subclasses give the text-token transitions (:meth:`_text_successors`) and acceptance; this
    class adds EOS, caches successors, and answers :meth:`distance` by breadth-first search.
    ``width``: token ids are ``0..width-1`` (ids the constraint never allows simply have no
    transition).  ``max_states``: budget of the distance search.
    """

    def __init__(self, start: int, eos_ids: Iterable[int], *, max_states: int = 100_000):
        self.start = int(start)
        self.eos_ids = np.asarray(sorted({int(e) for e in eos_ids}), dtype=np.int64)
        if not len(self.eos_ids):
            raise ValueError("a token DFA for a canvas needs at least one EOS id (the padding)")
        self.max_states = max_states
        self._succ: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._succ_states: dict[int, frozenset[int]] = {}
        self._dist: dict[int, float] = {}
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _accepting(self, q: int) -> bool:
        """Whether text state ``q`` (not DEAD, not FINAL) is accepting."""

    @abstractmethod
    def _text_successors(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, next_states)``: the non-EOS tokens leading from text state ``q`` to a non-DEAD
        state, sorted by id, with their targets."""

    # ---------------------------------------------------------------- transitions
    def is_accepting(self, q: int) -> bool:
        return q == FINAL or (q != DEAD and self._accepting(q))

    def successors(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, next_states)`` of every token (EOS included) that keeps ``q`` alive, by id."""
        got = self._succ.get(q)
        if got is not None:
            return got
        with self._lock:
            if q == DEAD:
                got = (_EMPTY, _EMPTY)
            elif q == FINAL:
                got = (self.eos_ids, np.full(len(self.eos_ids), FINAL, dtype=np.int64))
            else:
                ids, nxt = self._text_successors(q)
                if self._accepting(q):
                    ids = np.concatenate([ids, self.eos_ids])
                    nxt = np.concatenate([nxt, np.full(len(self.eos_ids), FINAL, dtype=np.int64)])
                    order = np.argsort(ids, kind="stable")
                    ids, nxt = ids[order], nxt[order]
                got = (ids.astype(np.int64, copy=False), nxt.astype(np.int64, copy=False))
            self._succ[q] = got
        return got

    def successor_states(self, q: int) -> frozenset[int]:
        """States reachable from ``q`` with one token (any token): a masked position's move."""
        got = self._succ_states.get(q)
        if got is None:
            got = frozenset(self.successors(q)[1].tolist())
            self._succ_states[q] = got
        return got

    def next_states(self, q: int, ids: np.ndarray) -> np.ndarray:
        """The state after each token of ``ids`` from ``q`` (DEAD where a token is not allowed)."""
        sid, nxt = self.successors(q)
        ids = np.asarray(ids, dtype=np.int64)
        if not len(sid):
            return np.zeros(len(ids), dtype=np.int64)
        at = np.minimum(np.searchsorted(sid, ids), len(sid) - 1)
        return np.where(sid[at] == ids, nxt[at], DEAD)

    def step(self, q: int, token: int) -> int:
        return int(self.next_states(q, np.asarray([token]))[0])

    def run(self, tokens: Sequence[int], q: int | None = None) -> int:
        """The state after ``tokens`` from ``q`` (default: the start); DEAD once dead."""
        q = self.start if q is None else q
        for t in tokens:
            q = self.step(q, int(t))
            if q == DEAD:
                break
        return q

    def accepts(self, tokens: Sequence[int]) -> bool:
        """Whether a finished canvas is in the language (EOS padding included)."""
        return self.is_accepting(self.run(tokens))

    # ---------------------------------------------------------------- completion
    def distance(self, q: int) -> float:
        """Fewest tokens that take ``q`` to acceptance (``math.inf`` if none does)."""
        got = self._dist.get(q)
        if got is not None:
            return got
        d = self._bfs(q)
        self._dist[q] = d
        return d

    def can_finish(self, q: int, positions: int) -> bool:
        """Whether ``q`` can reach acceptance in exactly ``positions`` tokens (EOS pads)."""
        return q != DEAD and self.distance(q) <= positions

    def _bfs(self, q: int) -> float:
        if q == DEAD:
            return math.inf
        seen = {q}
        frontier = [q]
        depth = 0
        while frontier:
            known = [depth + self._dist[s] for s in frontier if s in self._dist]
            if any(self.is_accepting(s) for s in frontier):
                return float(depth)
            if known and min(known) <= depth + 1:
                return float(min(known))
            nxt = []
            for s in frontier:
                for r in self.successor_states(s):
                    if r not in seen:
                        seen.add(r)
                        nxt.append(r)
            if len(seen) > self.max_states:
                raise BudgetExceededError(
                    f"the completion search exceeded its budget of {self.max_states} token-DFA states")
            frontier = nxt
            depth += 1
        return math.inf


class TableTokenDFA(TokenDFA):
    """An explicit token DFA: ``table[q, t]`` is the state after text token ``t`` from ``q``
    (0 = DEAD), ``accepting[q]`` its acceptance; EOS columns of the table are ignored (EOS is the
    padding rule).  Distances are computed for all states at once.
    """

    def __init__(self, table: np.ndarray, accepting: np.ndarray, start: int, eos_ids: Iterable[int]):
        super().__init__(start, eos_ids)
        table = np.array(table, dtype=np.int64)
        table[:, self.eos_ids[self.eos_ids < table.shape[1]]] = DEAD
        table[DEAD] = DEAD
        self.table = table
        self.accepting = np.asarray(accepting, dtype=bool)
        self.width = table.shape[1]
        self._dist.update(self._all_distances())

    @classmethod
    def from_byte_dfa(cls, byte_table: np.ndarray, accepting: np.ndarray, start: int,
                      token_bytes: Sequence[bytes | None], eos_ids: Iterable[int]) -> "TableTokenDFA":
        """The token DFA of a byte DFA (``byte_table[q, b]``, 0 = DEAD) read through a vocabulary
        of multi-byte tokens (``None``: a special token, never allowed)."""
        n = byte_table.shape[0]
        table = np.zeros((n, len(token_bytes)), dtype=np.int64)
        for t, data in enumerate(token_bytes):
            if not data:
                continue
            s = np.arange(n)
            for b in data:
                s = byte_table[s, b]
            table[:, t] = s
        return cls(table, accepting, start, eos_ids)

    def _accepting(self, q: int) -> bool:
        return bool(self.accepting[q])

    def _text_successors(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        row = self.table[q]
        ids = np.flatnonzero(row != DEAD)
        return ids, row[ids]

    def _all_distances(self) -> dict[int, float]:
        n = self.table.shape[0]
        dist = np.where(self.accepting[:n], 0.0, math.inf)
        dist[DEAD] = math.inf
        for _ in range(n):  # Bellman-Ford rounds; a shortest path visits each state once
            via = 1.0 + dist[self.table].min(axis=1, initial=math.inf)
            via[DEAD] = math.inf
            new = np.minimum(dist, via)
            if np.array_equal(new, dist):
                break
            dist = new
        out = {q: float(d) for q, d in enumerate(dist)}
        out[FINAL] = 0.0
        return out


class GrammarTokenDFA(TokenDFA):
    """A :class:`~constrain.compiler.CompiledGrammar` read token by token.

    A state is a byte-DFA state of ``grammar.dfa``.  Its successors are the tokens of
    ``grammar.mask_of(state)`` (cached per state) walked through the byte DFA in one vectorized
    pass over a padded byte matrix of the vocabulary, then cached: the first expansion of a state
    costs a few numpy operations over the vocabulary, later ones a dictionary lookup.  Masked
    positions range over every token; for committed positions on large vocabularies, pass
    ``top_k`` to :func:`~constrain.diffusion.generate` to restrict the candidates.
    """

    def __init__(self, grammar):
        vocab = grammar.vocab
        super().__init__(grammar.dfa.start, grammar.eos_ids)
        self.grammar = grammar
        self.width = vocab.size
        lengths = np.array([len(b) if b else 0 for b in vocab.token_bytes], dtype=np.int64)
        width = int(lengths.max(initial=0))
        mat = np.zeros((len(lengths), max(width, 1)), dtype=np.uint8)
        for i, b in enumerate(vocab.token_bytes):
            if b:
                mat[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        self._lengths, self._bytes = lengths, mat

    def _accepting(self, q: int) -> bool:
        return bool(self.grammar.dfa.accepting[q])

    def _text_successors(self, q: int) -> tuple[np.ndarray, np.ndarray]:
        g = self.grammar
        allowed = np.flatnonzero(unpack_bitmask_np(g.mask_of(q), g.vocab.size))
        allowed = allowed[(allowed < len(self._lengths)) & ~np.isin(allowed, self.eos_ids)]
        nxt = self._walk(q, allowed)
        keep = nxt != DEAD
        return allowed[keep], nxt[keep]

    def _walk(self, q: int, ids: np.ndarray) -> np.ndarray:
        dfa = self.grammar.dfa
        states = np.full(len(ids), q, dtype=np.int64)
        lengths = self._lengths[ids]
        for d in range(self._bytes.shape[1]):
            act = np.flatnonzero((lengths > d) & (states != DEAD))
            if not len(act):
                break
            s = states[act]
            with dfa.lock:
                dfa.ensure_rows(s)
                table = dfa.table  # read after ensure_rows: growing replaces the array
            states[act] = table[s, self._bytes[ids[act], d]]
        return states


_GRAMMAR_DFAS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def as_token_dfa(constraint) -> TokenDFA:
    """``constraint`` as a :class:`TokenDFA`: a TokenDFA as is, or a CompiledGrammar (one cached
    GrammarTokenDFA per grammar, so transitions learnt in one call serve the next)."""
    if isinstance(constraint, TokenDFA):
        return constraint
    from ..compiler import CompiledGrammar

    if isinstance(constraint, CompiledGrammar):
        got = _GRAMMAR_DFAS.get(constraint)
        if got is None:
            got = _GRAMMAR_DFAS[constraint] = GrammarTokenDFA(constraint)
        return got
    raise TypeError("a token DFA needs a CompiledGrammar or a TokenDFA (a context-free CompiledCFG has "
                    "none: generate() decodes it by propose-check-retry, see constrain.diffusion.rejection), "
                    f"got {type(constraint).__name__}")
