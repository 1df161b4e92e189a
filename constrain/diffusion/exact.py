"""Exact answers by enumeration, for short canvases: the distribution of the one-token-per-step
sampler (unconstrained, or the unweighted constrained :class:`~.loop.ExactSample` step), and the
model's distribution conditioned on the constraint.  Used by the tests and the demo to show that
unweighted constrained sampling is biased and to measure how far each method is from the target.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from .adapters import Denoiser
from .schedules import select_positions
from .token_dfa import TokenDFA

__all__ = ["sampler_distribution", "conditioned_joint", "kl"]


def sampler_distribution(adapter: Denoiser, prompt_ids: Sequence[int], gen_length: int, *,
                         dfa: TokenDFA | None = None, remasking: str = "low_confidence",
                         max_nodes: int = 200_000) -> dict[tuple, float]:
    """Exact output distribution of the sampler that commits one token per step in one block:
    unconstrained when ``dfa`` is None, else with each token drawn among those that keep the
    canvas completable (∝ its probability; the unweighted ``"sample"`` method).  The order rule
    is followed exactly: ``"random"`` branches uniformly over the masked positions, the other
    rules are deterministic.  One batched forward pass per depth; canvases reached by different
    orders are merged (the next step depends only on the canvas)."""
    prompt = list(prompt_ids)
    mask = adapter.mask_id
    layer: dict[tuple, float] = {(mask,) * gen_length: 1.0}
    rng = np.random.default_rng(0)  # unused by the deterministic rules
    for _ in range(gen_length):
        canv = list(layer)
        if len(canv) > max_nodes:
            raise RuntimeError(f"sampler_distribution: more than {max_nodes} canvases at one depth")
        logp = adapter.logprobs(np.array([prompt + list(c) for c in canv]))[:, len(prompt):]
        gen = np.array(canv, dtype=np.int64)
        eligible = gen == mask
        if remasking == "random":
            choices = [[(int(p), 1.0 / eligible[r].sum()) for p in np.flatnonzero(eligible[r])]
                       for r in range(len(canv))]
        else:
            pos = select_positions(logp, eligible, 1, remasking, rng)[:, 0]
            choices = [[(int(p), 1.0)] for p in pos]
        nxt: dict[tuple, float] = {}
        for r, c in enumerate(canv):
            for p, wp in choices[r]:
                probs = np.exp(logp[r, p])
                ok = np.flatnonzero(probs > 0)
                if dfa is not None:
                    ok = np.array([t for t in ok if _completable(dfa, c, p, int(t), mask)], dtype=np.int64)
                z = probs[ok].sum()
                if z == 0:  # the step has no valid token of positive probability: the run dies
                    continue
                for t in ok:
                    child = c[:p] + (int(t),) + c[p + 1:]
                    nxt[child] = nxt.get(child, 0.0) + layer[c] * wp * probs[t] / z
        layer = nxt
    return layer


def _completable(dfa: TokenDFA, canvas: tuple, p: int, t: int, mask: int) -> bool:
    """Whether some filling of the masked positions of ``canvas`` with ``t`` at ``p`` is accepted
    (a direct search over the positions, independent of the forward filter)."""
    n = len(canvas)
    states = {dfa.start}
    for i, c in enumerate(canvas):
        tok = t if i == p else c
        if tok == mask:
            states = {r for q in states for r in dfa.successor_states(q)}
        else:
            states = {dfa.step(q, tok) for q in states}
        states = {q for q in states if dfa.can_finish(q, n - i - 1)}
        if not states:
            return False
    return True


def conditioned_joint(joint: np.ndarray, dfa: TokenDFA) -> tuple[dict[tuple, float], float]:
    """``(Q, Z_L)``: the joint over canvases (``joint[x]``, shaped ``(W,) * n``) restricted to
    the language and renormalized, and the mass ``Z_L`` it had."""
    q: dict[tuple, float] = {}
    for x in itertools.product(range(joint.shape[0]), repeat=joint.ndim):
        if joint[x] > 0 and dfa.accepts(x):
            q[x] = float(joint[x])
    z = sum(q.values())
    if z == 0:
        return {}, 0.0
    return {x: v / z for x, v in q.items()}, z


def kl(p: dict, q: dict) -> float:
    """KL(p ‖ q) for two probability dicts (``inf`` if p has mass where q has none)."""
    total = 0.0
    for k, pk in p.items():
        if pk > 0:
            qk = q.get(k, 0.0)
            if qk <= 0:
                return math.inf
            total += pk * math.log(pk / qk)
    return total
