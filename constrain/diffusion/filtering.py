"""Exact constrained sampling of one denoising step: forward filtering over *sets* of DFA states,
then backward sampling.

The target is ``π(r) ∝ Π_i w_i(r_i) · 1[r valid]`` over assignments ``r`` of the candidate
positions (see :mod:`.slots`).  An assignment that leaves a position masked does not run the DFA
along one path: the masked position may become any token, so it reaches a *set* of states.
Summing per state (as the max-product DP of :mod:`.dingo` may) would count such an assignment
once for every state it can reach — a per-state sum double-counts.  So the forward pass keys its
messages by the set ``S_i`` of states the assignment so far can be in:

    α_{i+1}(δ(S, option)) += α_i(S) · w_i(option)

where ``δ(S, t)`` is ``{δ(q, t)}`` for a token and the union of all one-token successors for a
masked position.  Every assignment has exactly one set after each position, so the sum is exact
and ``Z = Σ_S α_last(S)`` over the non-empty final sets is the step normalizer.  States that
cannot reach acceptance in the positions left are dropped from the sets as they appear (they can
never help), so a final set is non-empty exactly when the assignment is valid.

Backward sampling picks a final set ∝ α, then at each position an incoming edge
``(S_i, option)`` ∝ ``α_i(S_i) · w_i(option)``: an exact draw from ``π``.

>>> f = forward_filter(dfa, slots)                  # doctest: +SKIP
>>> f.log_z, f.sample(np.random.default_rng(0))     # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import NamedTuple

import numpy as np

from .slots import OPEN, Slots
from .token_dfa import DEAD, TokenDFA

__all__ = ["StepFilter", "forward_filter"]

StateSet = frozenset


class StepFilter:
    """The forward messages of one step.  ``log_z``: log of the step normalizer (``-inf`` when
    no assignment is valid).  ``num_sets``: the largest number of distinct state sets at a
    position (the filter's cost grows with it)."""

    def __init__(self, slots: Slots, last: int, edges: list, final: dict[StateSet, float]):
        self.slots = slots
        self._last = last
        self._edges = edges  # per position: dst set -> [Edge]
        self._final = final
        self.log_z = logsumexp(list(final.values())) if final else -math.inf
        self.num_sets = max((len(e) for e in edges), default=1)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One assignment drawn from ``π`` exactly: the canvas after the step (candidates filled,
        :data:`OPEN` where masked).  Raises ValueError when no assignment is valid."""
        if self.log_z == -math.inf:
            raise ValueError("no valid assignment to sample from (log_z is -inf)")
        out = self.slots.tokens.copy()
        sets = list(self._final)
        cur = sets[_pick(np.array([self._final[s] for s in sets]), rng)]
        for i in range(self._last, -1, -1):
            incoming = self._edges[i][cur]
            e = incoming[_pick(np.array([e.log_w for e in incoming]), rng)]
            if i in self.slots.cands:
                out[i] = e.options[_pick(e.option_log_w, rng)]
            cur = e.src
        return out


class Edge(NamedTuple):
    """Options of one position that take set ``src`` to the same set: ``options`` (token ids, or
    :data:`OPEN`) with their log weights; ``log_w`` = α(src) + log Σ their weights."""

    src: StateSet
    options: np.ndarray
    option_log_w: np.ndarray
    log_w: float


def logsumexp(xs) -> float:
    """log Σ exp: plain Python for the short lists of a step (numpy's overhead dominates there)."""
    if isinstance(xs, np.ndarray) and len(xs) > 32:
        m = float(xs.max())
        return m if m == -math.inf else m + math.log(float(np.exp(xs - m).sum()))
    m = max(xs, default=-math.inf)
    if m == -math.inf:
        return m
    return m + math.log(math.fsum(math.exp(x - m) for x in xs))


def _pick(log_w: np.ndarray, rng: np.random.Generator) -> int:
    if len(log_w) == 1:
        return 0
    p = np.exp(log_w - log_w.max())
    c = np.cumsum(p)
    return min(int(np.searchsorted(c, rng.random() * c[-1], side="right")), len(c) - 1)


def forward_filter(dfa: TokenDFA, slots: Slots, start: int | None = None) -> StepFilter:
    """Forward messages over sets of states for ``slots`` from ``start`` (default: the DFA's
    start).  Candidate tokens that move a set to the same set share one edge, so the cost per
    position is (distinct sets) × (distinct moves), plus one vectorized lookup of all candidates
    per state."""
    n = len(slots)
    q0 = dfa.start if start is None else start
    last = slots.last_decided()
    if not dfa.can_finish(q0, n):
        return StepFilter(slots, last, [], {})
    alpha: dict[StateSet, float] = {StateSet([q0]): 0.0}
    edges: list[dict] = []
    for i in range(last + 1):
        left = n - i - 1

        def alive(states) -> StateSet:
            return StateSet(q for q in states if q != DEAD and dfa.can_finish(q, left))

        incoming: dict[StateSet, list] = defaultdict(list)
        tok = int(slots.tokens[i])
        cand = slots.cands.get(i)
        for S, a in alpha.items():
            moves = []  # (options, their log weights, next set)
            if tok != OPEN:
                moves.append(([tok], [0.0], alive(dfa.step(q, tok) for q in S)))
            else:
                if cand is not None:
                    moves.extend(_candidate_moves(dfa, S, *cand, alive))
                keep = 0.0 if cand is None else slots.keep_weight(i)
                if keep > -math.inf:
                    moves.append(([OPEN], [keep], alive(r for q in S for r in dfa.successor_states(q))))
            for options, lw, T in moves:
                if T:
                    lw = np.asarray(lw, dtype=np.float64)
                    incoming[T].append(Edge(S, np.asarray(options, dtype=np.int64), lw, a + logsumexp(lw)))
        alpha = {T: logsumexp([e.log_w for e in inc]) for T, inc in incoming.items()}
        edges.append(dict(incoming))
        if not alpha:
            return StepFilter(slots, last, [], {})
    return StepFilter(slots, last, edges, alpha)


def _candidate_moves(dfa: TokenDFA, S: StateSet, ids: np.ndarray, lw: np.ndarray, alive):
    """Candidates grouped by the set they move ``S`` to (tokens that kill every state dropped)."""
    ok = lw > -math.inf
    ids, lw = ids[ok], lw[ok]
    nxt = np.stack([dfa.next_states(q, ids) for q in sorted(S)])  # (|S|, k)
    live = (nxt != DEAD).any(axis=0)
    ids, lw, nxt = ids[live], lw[live], nxt[:, live]
    if not len(ids):
        return []
    cols, inverse = np.unique(nxt, axis=1, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [(ids[inverse == c], lw[inverse == c], alive(cols[:, c].tolist())) for c in range(cols.shape[1])]
