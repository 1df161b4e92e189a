"""``"smc"``: sequential Monte Carlo with AWRS (or full-mask) proposals.

``N`` particles grow in one batch (one forward pass per step for all live particles).  At each
step every live particle extends itself with a proposal drawn from the warped local distribution
(temperature → top-k → top-p, see :mod:`constrain.sampling.lm`) restricted to the allowed tokens,
and multiplies its weight by an unbiased estimate of the allowed mass ``Z_loc``:

- ``proposal="awrs"``: the AWRS step's weight ``(1 − P(R₁)) / (|R₁| + |R₂| + 1)``
  (a few constraint checks, no full mask);
- ``proposal="mask"``: the exact ``Z_loc`` from the full mask.

When the effective sample size ``(Σw)² / Σw²`` drops below ``ess_threshold·N`` the particles are
resampled (``"systematic"`` by default; ``"multinomial"``, ``"stratified"``) and every weight is
set to the mean weight, which keeps the estimate unbiased.  Finished particles (EOS) keep their
weight and take part in resampling; particles with no allowed token get weight 0.

At the end ``log_z = log mean(w)`` is an unbiased estimate of ``Z_L`` (on the linear scale) and
the weighted particles approximate ``Q``; ``posterior()`` sums the normalized weights per distinct
output.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .awrs import awrs_step
from .constraints import as_constraint
from .lm import LanguageModel
from .loop import Sample, Sampler, SamplingResult, as_rng, death_status, logmeanexp, logsumexp, \
    masked_local, draw, step_allowed_mask, step_is_allowed, token_budget

__all__ = ["SMC", "resample"]

NEG_INF = -math.inf


def resample(log_w: np.ndarray, n: int, rng: np.random.Generator, method: str = "systematic") -> np.ndarray:
    """Ancestor indices (length ``n``) drawn ∝ ``exp(log_w)``."""
    lw = np.asarray(log_w, dtype=np.float64)
    w = np.exp(lw - logsumexp(lw))
    w /= w.sum()
    if method == "multinomial":
        return rng.choice(len(w), size=n, p=w)
    if method == "systematic":
        u = (rng.random() + np.arange(n)) / n
    elif method == "stratified":
        u = (rng.random(n) + np.arange(n)) / n
    else:
        raise ValueError(f"unknown resampling method {method!r}")
    c = np.cumsum(w)
    c[-1] = 1.0
    idx = np.searchsorted(c, u, side="right")
    idx = np.minimum(idx, len(w) - 1)
    # never pick a zero-weight particle because of rounding at a boundary
    for j in range(n):
        while w[idx[j]] == 0.0 and idx[j] > 0:
            idx[j] -= 1
        while w[idx[j]] == 0.0 and idx[j] < len(w) - 1:
            idx[j] += 1
    return idx


def ess(log_w: np.ndarray) -> float:
    lw = np.asarray(log_w, dtype=np.float64)
    a = logsumexp(lw)
    if a == NEG_INF:
        return 0.0
    return float(math.exp(2 * a - logsumexp(2 * lw)))


class SMC(Sampler):
    """Sequential Monte Carlo; ``run`` returns the ``N`` weighted particles.

    ``num_particles``: N (``run``'s ``num_samples``, when given and > 1, overrides it).
    ``proposal``: ``"awrs"`` or ``"mask"``.  ``ess_threshold``: resample when ESS < τ·N
    (0 never resamples: plain importance sampling; 1 resamples at every step).
    ``stats``: ``resamples``, ``ess`` (per step), ``checks_per_token`` (mean; AWRS proposals),
    ``checks_median``, ``checks_max``.
    """

    name = "smc"

    def __init__(self, num_particles: int = 16, *, proposal: str = "awrs", ess_threshold: float = 0.5,
                 resampling: str = "systematic"):
        if proposal not in ("awrs", "mask"):
            raise ValueError(f"proposal must be 'awrs' or 'mask', got {proposal!r}")
        if int(num_particles) < 1:
            raise ValueError("num_particles must be >= 1")
        if resampling not in ("systematic", "multinomial", "stratified"):
            raise ValueError(f"unknown resampling method {resampling!r}")
        self.num_particles = int(num_particles)
        self.proposal = proposal
        self.ess_threshold = float(ess_threshold)
        self.resampling = resampling

    def __repr__(self) -> str:
        return (f"SMC(num_particles={self.num_particles}, proposal={self.proposal!r}, "
                f"ess_threshold={self.ess_threshold}, resampling={self.resampling!r})")

    def _propose(self, logp, state, step, T, rng):
        """(token | None, log weight increment, checks)."""
        if self.proposal == "mask":
            allowed = step_allowed_mask(state, step, T, logp.shape[0])
            lz, logq = masked_local(logp, allowed)
            if lz == NEG_INF:
                return None, NEG_INF, 0
            return draw(logq, rng), lz, 0
        st = awrs_step(logp, step_is_allowed(state, step, T), rng)
        return st.token, st.log_weight, st.checks

    def run(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint, *,
            max_new_tokens: int, num_samples: int = 1, rng=None) -> SamplingResult:
        rng = as_rng(rng)
        T = token_budget(max_new_tokens)
        N = int(num_samples) if num_samples and int(num_samples) > 1 else self.num_particles
        base = as_constraint(constraint)
        states = [base.copy() for _ in range(N)]
        parts = [Sample(tokens=[], status="active") for _ in range(N)]
        log_w = np.zeros(N)
        batch = lm.batch(prompt_ids, N)
        active = list(range(N))  # particle index of each batch row
        n_resamples = 0
        ess_hist: list[float] = []
        checks = steps = 0
        per_step: list[int] = []

        for step in range(T):
            if not active:
                break
            logp = batch.logprobs()
            keep_rows, keep_tokens = [], []
            for r, i in enumerate(active):
                s, st = parts[i], states[i]
                tok, inc, c = self._propose(logp[r], st, step, T, rng)
                checks += c
                steps += 1
                per_step.append(c)
                if tok is None:
                    s.status = death_status(st, step, T)
                    log_w[i] = NEG_INF
                    continue
                st.accept_token(tok)
                s.checks += c
                log_w[i] += inc
                if s.take(tok, logp[r, tok], st.eos_token_ids):
                    keep_rows.append(r)
                    keep_tokens.append(tok)
            if len(keep_rows) != len(active):
                batch.select(keep_rows)
            active = [active[r] for r in keep_rows]

            e = ess(log_w)
            ess_hist.append(e)
            if e == 0.0:  # every particle died
                active = []
                break
            if active and e < self.ess_threshold * N:
                anc = resample(log_w, N, rng, self.resampling)
                mean = logmeanexp(log_w)
                row_of = {i: r for r, i in enumerate(active)}
                new_parts, new_states, new_active, rows = [], [], [], []
                for j, a in enumerate(anc):
                    p = parts[a]
                    new_parts.append(Sample(tokens=list(p.tokens), status=p.status, log_prob=p.log_prob,
                                            checks=p.checks))
                    new_states.append(states[a].copy())
                    if a in row_of:
                        new_active.append(j)
                        rows.append(row_of[a])
                # keep the pending next tokens of the survivors in step with their rows
                toks = np.asarray(keep_tokens, dtype=np.int64)
                keep_tokens = [int(toks[r]) for r in rows]
                batch.select(rows)
                parts, states, active = new_parts, new_states, new_active
                log_w = np.full(N, mean)
                n_resamples += 1
            if active:
                batch.extend(np.asarray(keep_tokens, dtype=np.int64))

        for i, s in enumerate(parts):
            if s.status == "active":  # cannot happen: the last slot allows only EOS
                s.status = "length"
                log_w[i] = NEG_INF
            s.log_weight = float(log_w[i]) if s.status == "eos" else NEG_INF
        log_z = logmeanexp(log_w) if N else NEG_INF
        stats = {
            "resamples": n_resamples,
            "ess": ess_hist,
            "checks_per_token": checks / max(steps, 1),
            "checks_median": float(np.median(per_step)) if per_step else 0.0,
            "checks_max": max(per_step, default=0),
            "num_particles": N,
            "proposal": self.proposal,
        }
        return SamplingResult(parts, self.name, log_z, stats)
