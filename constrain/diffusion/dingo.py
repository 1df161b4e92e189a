"""DINGO (Suresh et al., 2025): the most probable valid assignment of one denoising step.

Viterbi over the token DFA.  ``best[i][q]`` is the largest log weight of an assignment of the
positions before ``i + 1`` whose run can end in state ``q``; a committed position moves every
state by its token, a candidate by each candidate token (plus, when it may stay masked, to every
one-token successor at weight ``keep``), a masked position to every one-token successor at
weight 0.  Tracking single states (not sets) is exact for the *maximum*: a valid assignment with
masked positions is valid through at least one run, and the best run is all the maximum needs.

States that cannot reach acceptance in the positions left are pruned as they appear; after the
last decided position every remaining position is masked, so a state survives exactly when it can
finish (:meth:`TokenDFA.distance`).  Semi-autoregressive blocks chain for free: earlier blocks are
committed positions, later ones masked positions.

>>> best = dingo(dfa, slots)            # doctest: +SKIP
>>> best.tokens, best.log_weight        # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .slots import OPEN, Slots
from .token_dfa import DEAD, TokenDFA

__all__ = ["Assignment", "dingo"]


@dataclass
class Assignment:
    """``tokens``: the canvas after the step (candidates filled, :data:`OPEN` where masked).
    ``log_weight``: the sum of the chosen options' log weights."""

    tokens: np.ndarray
    log_weight: float


def dingo(dfa: TokenDFA, slots: Slots, start: int | None = None) -> Assignment | None:
    """The most probable valid assignment of ``slots`` from state ``start`` (default: the DFA's
    start), or None when no assignment is valid.  Ties go to the first option found (lower
    states and token ids first)."""
    n = len(slots)
    q0 = dfa.start if start is None else start
    if not dfa.can_finish(q0, n):
        return None
    last = slots.last_decided()
    layer: dict[int, float] = {q0: 0.0}
    back: list[dict[int, tuple[int, int]]] = []  # per position: state -> (previous state, option)
    for i in range(last + 1):
        left = n - i - 1
        best: dict[int, float] = {}
        ptr: dict[int, tuple[int, int]] = {}

        def offer(q: int, score: float, prev: int, option: int) -> None:
            if score > best.get(q, -math.inf) and dfa.can_finish(q, left):
                best[q] = score
                ptr[q] = (prev, option)

        tok = int(slots.tokens[i])
        cand = slots.cands.get(i)
        for q, a in layer.items():
            if tok != OPEN:
                offer(dfa.step(q, tok), a, q, tok)
                continue
            if cand is not None:
                for r, t, w in _best_token_per_state(dfa, q, *cand):
                    offer(r, a + w, q, t)
            keep = 0.0 if cand is None else slots.keep_weight(i)
            if keep > -math.inf:
                for r in sorted(dfa.successor_states(q)):
                    offer(r, a + keep, q, OPEN)
        if not best:
            return None
        layer = best
        back.append(ptr)

    q = max(layer, key=layer.__getitem__)
    score = layer[q]
    out = slots.tokens.copy()
    for i in range(last, -1, -1):
        q, option = back[i][q]
        if i in slots.cands:
            out[i] = option
    return Assignment(out, float(score))


def _best_token_per_state(dfa: TokenDFA, q: int, ids: np.ndarray, lw: np.ndarray):
    """``(next state, token, log weight)``: for each state a candidate leads to from ``q``, the
    heaviest candidate that leads there (lower id on ties).  A large vocabulary collapses to the
    few states it reaches, so the DP's cost does not grow with the number of candidates."""
    r = dfa.next_states(q, ids)
    ok = (r != DEAD) & (lw > -math.inf)
    r, ids, lw = r[ok], ids[ok], lw[ok]
    order = np.lexsort((ids, -lw))
    r, ids, lw = r[order], ids[order], lw[order]
    _, first = np.unique(r, return_index=True)
    return [(int(r[j]), int(ids[j]), float(lw[j])) for j in np.sort(first)]
