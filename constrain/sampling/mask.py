"""``"mask"``: plain constrained sampling (or greedy decoding), today's behaviour.

At each step the warped distribution ``P(. | u)`` (temperature → top-k → top-p, see
:mod:`constrain.sampling.lm`) is restricted to the allowed tokens and renormalized:
``a ~ P(a|u)·1[a allowed] / Z_loc(u)``.  The sequence distribution is therefore

    Q_GCD(w) = Π_t P(w_t | u_t) / Z_loc(u_t)        (not Q(w) = P(w)·1[w∈L] / Z_L)

Each sample reports ``log Z_loc`` per step; their sum is its log importance weight
(``E_{Q_GCD}[Π_t Z_loc(u_t)·1[x = w]] = P(w)·1[w∈L]``), so the mean weight estimates ``Z_L``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .lm import LanguageModel
from .loop import Sampler, SamplingResult, as_rng, draw, logmeanexp, masked_local, run_independent, \
    step_allowed_mask

__all__ = ["MaskSampler"]


class MaskSampler(Sampler):
    """Masked sampling, or greedy decoding with ``greedy=True`` (argmax of the raw logits over
    the allowed tokens; the warper is ignored and the weight is 0.0)."""

    name = "mask"

    def __init__(self, *, greedy: bool = False):
        self.greedy = bool(greedy)

    def __repr__(self) -> str:
        return f"MaskSampler(greedy={self.greedy})"

    def step(self, logp: np.ndarray, raw, state, step: int, max_new_tokens: int,
             rng: np.random.Generator):
        allowed = step_allowed_mask(state, step, max_new_tokens, logp.shape[0])
        lz, logq = masked_local(logp, allowed)
        if self.greedy:
            scores = np.where(allowed & np.isfinite(logp), raw if raw is not None else logp, -math.inf)
            if lz == -math.inf or not np.isfinite(scores).any():
                return None, -math.inf, -math.inf, 0
            tok = int(np.argmax(scores))
            return tok, 0.0, 0.0, 0
        if lz == -math.inf:
            return None, lz, lz, 0
        tok = draw(logq, rng)
        return tok, lz, float(logq[tok]), 0

    def run(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint, *,
            max_new_tokens: int, num_samples: int = 1, rng=None) -> SamplingResult:
        rng = as_rng(rng)
        T = int(max_new_tokens)
        samples = run_independent(
            lm, prompt_ids, constraint, int(num_samples), max_new_tokens=T, rng=rng,
            need_raw=self.greedy,
            step_fn=lambda logp, raw, st, step, g: self.step(logp, raw, st, step, T, g))
        if self.greedy:
            return SamplingResult(samples, self.name, None, {"greedy": True})
        log_z = logmeanexp([s.log_weight for s in samples])
        return SamplingResult(samples, self.name, log_z, {})
