"""Sequential Monte Carlo over denoising steps, for regular constraints (context-free ones:
:class:`~.rejection.RejectionSMC`, which shares :func:`resample_rows`).

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

__all__ = ["SMCCommitter", "init_resampling", "resample_rows"]


class SMCCommitter(ExactSample):
    """:class:`~.loop.ExactSample` plus resampling.  ``stats``: ``resamples``, ``ess`` per step."""

    def __init__(self, mask_id: int, dfa: TokenDFA, *, top_k: int | None = None,
                 ess_threshold: float = 0.5, resampling: str = "systematic"):
        super().__init__(mask_id, dfa, top_k)
        init_resampling(self, ess_threshold, resampling)

    def commit(self, gen, logp, positions, offset, rng):
        super().commit(gen, logp, positions, offset, rng)
        return resample_rows(self, rng)


def init_resampling(committer, ess_threshold: float, resampling: str) -> None:
    """Give ``committer`` the settings and counters ``resample_rows`` reads and updates."""
    if resampling not in ("systematic", "multinomial", "stratified"):
        raise ValueError(f"unknown resampling method {resampling!r}")
    committer.ess_threshold = float(ess_threshold)
    committer.resampling = resampling
    committer.resamples = 0
    committer.ess_history = []


def resample_rows(committer, rng: np.random.Generator) -> np.ndarray | None:
    """After a step: record the ESS of ``committer``'s weights and, when it is below
    ``ess_threshold · N`` (and positive), resample the rows — reorder ``log_prob`` and ``dead``,
    set every weight to the mean weight — and return the ancestor indices (else None).
    ``committer`` has ``log_weight``, ``log_prob``, ``dead``, ``ess_threshold``, ``resampling``,
    ``resamples`` and ``ess_history``."""
    n = len(committer.log_weight)
    e = ess(committer.log_weight)
    committer.ess_history.append(e)
    if e == 0.0 or e >= committer.ess_threshold * n:
        return None
    anc = resample(committer.log_weight, n, rng, committer.resampling)
    mean = logmeanexp(committer.log_weight)
    committer.log_prob = committer.log_prob[anc]
    committer.dead = committer.dead[anc]
    committer.log_weight = np.full(n, mean)
    committer.resamples += 1
    return anc
