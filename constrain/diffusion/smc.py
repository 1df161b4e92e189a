"""Sequential Monte Carlo over denoising steps, for regular constraints.

Target: the unconstrained sampler's distribution over canvases, conditioned on the language,
``Q(x) ∝ P(x)·1[x ∈ L]``.  (With one token per step and an exact denoiser, ``P`` is the model's
joint distribution; with several tokens per step it is what the sampler with that schedule draws.)

Each particle is a canvas.  At every step it picks its positions from the unconstrained
confidences — the same choice the unconstrained sampler makes — and fills them with an exact draw
from ``Π_i P(x_i | canvas) · 1[completable] / Z_step`` (:class:`~.loop.ExactSample`).  The
proposal differs from the unconstrained step only by the indicator and ``1 / Z_step``, so the
incremental weight is ``Z_step``, the exact step normalizer from the forward filter, and
``Π Z_step`` is the importance weight of the whole trajectory.  When the effective sample size
falls below ``ess_threshold · N`` the particles are resampled (systematic by default) and every
weight becomes the mean weight, which keeps ``log mean(w)`` an unbiased estimate of ``Z_L``.
"""

from __future__ import annotations

import numpy as np

from ..sampling.loop import logmeanexp
from ..sampling.smc import ess, resample
from .loop import ExactSample
from .token_dfa import TokenDFA

__all__ = ["SMCCommitter"]


class SMCCommitter(ExactSample):
    """:class:`~.loop.ExactSample` plus resampling.  ``stats``: ``resamples``, ``ess`` per step."""

    def __init__(self, mask_id: int, dfa: TokenDFA, *, top_k: int | None = None,
                 ess_threshold: float = 0.5, resampling: str = "systematic"):
        super().__init__(mask_id, dfa, top_k)
        if resampling not in ("systematic", "multinomial", "stratified"):
            raise ValueError(f"unknown resampling method {resampling!r}")
        self.ess_threshold = float(ess_threshold)
        self.resampling = resampling
        self.resamples = 0
        self.ess_history: list[float] = []

    def commit(self, gen, logp, positions, offset, rng):
        super().commit(gen, logp, positions, offset, rng)
        n = len(gen)
        e = ess(self.log_weight)
        self.ess_history.append(e)
        if e == 0.0 or e >= self.ess_threshold * n:
            return None
        anc = resample(self.log_weight, n, rng, self.resampling)
        mean = logmeanexp(self.log_weight)
        self.log_prob = self.log_prob[anc]
        self.dead = self.dead[anc]
        self.log_weight = np.full(n, mean)
        self.resamples += 1
        return anc
