"""``"awrs"``: adaptive weighted rejection sampling (Lipkin et al., COLM 2025).

One step, given the warped local distribution ``p = P(. | u)`` (temperature → top-k → top-p, see
:mod:`constrain.sampling.lm`) and a single-token check ``allowed(a)``:

1. **Round 1.** Visit tokens in the order of sampling ``p`` without replacement (equivalently,
   decreasing Gumbel-perturbed ``log p``; :func:`sample_order` draws it lazily); check each with ``allowed`` until one passes: that
   token ``x`` is an exact sample from ``p`` restricted to the allowed set, after a handful of
   checks instead of ``|V|``.  The rejected tokens are ``R₁``.
2. **Round 2.** Sample again without replacement from ``V \\ R₁`` (fresh noise) until an allowed
   token comes; the rejects are ``R₂`` (``x`` is known to pass: it is not re-checked).
3. The weight ``w = (1 − P(R₁)) / (|R₁| + |R₂| + 1)`` is unbiased for the allowed mass:
   ``E[w·1[x = a]] = P(a)·1[a allowed]``.  ``1 − P(R₁)`` is computed as the mass of
   ``V \\ R₁`` in log space, so tiny probabilities keep their precision.

When every token of positive probability is rejected in round 1 the step returns no token and
weight 0 (the loop is bounded by the support).  Tokens of probability 0 are never visited.

Over a sequence the product of the step weights is an unbiased importance weight for
``P(w)·1[w∈L]``; the proposal is the masking distribution.  :class:`AWRS` returns independent
weighted samples; :class:`~constrain.sampling.smc.SMC` uses the same step as its proposal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .lm import LanguageModel
from .loop import Sampler, SamplingResult, as_rng, logmeanexp, logsumexp, run_independent, step_is_allowed

__all__ = ["AWRS", "AWRSStep", "awrs_step", "gumbel_order", "sample_order"]

NEG_INF = -math.inf


def gumbel_order(logp: np.ndarray, rng: np.random.Generator,
                 exclude: np.ndarray | None = None, first_chunk: int = 8) -> Iterator[int]:
    """Token ids of positive probability in Gumbel-perturbed order (a sample of ``p`` without
    replacement), produced lazily: the top of the order costs ``O(|V|)``, not a full sort."""
    keys = logp + rng.gumbel(size=logp.shape[0])
    keys[~np.isfinite(logp)] = NEG_INF
    if exclude is not None:
        keys[exclude] = NEG_INF
    remaining = np.flatnonzero(keys > NEG_INF)
    chunk = first_chunk
    while len(remaining):
        k = min(chunk, len(remaining))
        rk = keys[remaining]
        if k < len(remaining):
            part = np.argpartition(-rk, k - 1)[:k]
        else:
            part = np.arange(len(remaining))
        part = part[np.argsort(-rk[part], kind="stable")]
        for t in remaining[part]:
            yield int(t)
        keep = np.ones(len(remaining), dtype=bool)
        keep[part] = False
        remaining = remaining[keep]
        chunk *= 4


def sample_order(logp: np.ndarray, rng: np.random.Generator,
                 exclude: np.ndarray | None = None) -> Iterator[int]:
    """Token ids of positive probability in the order of sampling ``p`` without replacement —
    the same distribution over orders as :func:`gumbel_order` (Plackett–Luce), cheaper at the top.

    One ``O(|V|)`` build (an exponentiated, cumulated copy of ``p`` over the candidates), then each
    token costs one inverse-CDF draw (``O(log |V|)``); a draw that lands on a token already
    produced is redrawn, and once those hold half of the built mass the build is redone over the
    rest (in log space, rescaled to its maximum, so tokens far less likely than the rejected ones
    keep their relative probabilities)."""
    cand = np.isfinite(logp)
    if exclude is not None:
        cand &= ~exclude
    idx = np.flatnonzero(cand)
    while len(idx):
        lp = logp[idx]
        p = np.exp(lp - lp.max())
        c = np.cumsum(p)
        total = float(c[-1])
        n = len(idx)
        seen: set[int] = set()
        seen_mass = 0.0
        chunk = 8
        while seen_mass <= 0.5 * total and len(seen) < n:
            # iid draws in a vectorized chunk, consumed one by one; unused ones are discarded
            for j in np.searchsorted(c, rng.random(chunk) * total, side="right").tolist():
                if j >= n or j in seen or p[j] == 0.0:
                    continue
                seen.add(j)
                seen_mass += float(p[j])
                yield int(idx[j])
                if seen_mass > 0.5 * total:
                    break
            chunk = min(chunk * 4, 4096)
        if len(seen) == n:
            return
        keep = np.ones(n, dtype=bool)
        keep[list(seen)] = False
        idx = idx[keep]


@dataclass
class AWRSStep:
    """Outcome of one AWRS step: ``token`` (None: nothing allowed), ``log_weight``,
    ``rejected1``/``rejected2`` (the ids rejected in each round), ``checks1``/``checks2``."""

    token: int | None
    log_weight: float
    rejected1: list[int]
    rejected2: list[int]
    checks1: int
    checks2: int

    @property
    def checks(self) -> int:
        return self.checks1 + self.checks2


OrderFn = Callable[[np.ndarray, np.random.Generator, "np.ndarray | None"], Iterable[int]]


def awrs_step(logp: np.ndarray, allowed: Callable[[int], bool], rng: np.random.Generator, *,
              order: OrderFn = sample_order, second_round: bool = True) -> AWRSStep:
    """One AWRS step over the normalized log-distribution ``logp`` (see the module docstring).

    ``order(logp, rng, exclude)`` yields the visiting order: :func:`sample_order` (default) or
    :func:`gumbel_order`, both sampling without replacement; tests pass explicit permutations.
    ``second_round=False`` skips round 2 (and returns weight
    ``nan``: use it only when the weight is not needed).
    """
    logp = np.asarray(logp, dtype=np.float64)
    known: dict[int, bool] = {}
    rejected1: list[int] = []
    x = None
    checks1 = 0
    for t in order(logp, rng, None):
        if not logp[t] > NEG_INF:
            continue
        ok = allowed(t)
        checks1 += 1
        known[t] = ok
        if ok:
            x = t
            break
        rejected1.append(t)
    if x is None:
        return AWRSStep(None, NEG_INF, rejected1, [], checks1, 0)
    if not second_round:
        return AWRSStep(x, math.nan, rejected1, [], checks1, 0)
    excl = np.zeros(logp.shape[0], dtype=bool)
    if rejected1:
        excl[np.asarray(rejected1, dtype=np.int64)] = True
    rejected2: list[int] = []
    checks2 = 0
    for t in order(logp, rng, excl):
        if excl[t] or not logp[t] > NEG_INF:
            continue
        ok = known.get(t)
        if ok is None:
            ok = allowed(t)
            checks2 += 1
            known[t] = ok
        if ok:
            break
        rejected2.append(t)
    # 1 - P(R1) as the mass of V \ R1, summed directly in log space
    log_rest = logsumexp(np.where(excl, NEG_INF, logp))
    log_w = log_rest - math.log(len(rejected1) + len(rejected2) + 1)
    return AWRSStep(x, log_w, rejected1, rejected2, checks1, checks2)


class AWRS(Sampler):
    """Independent sequences whose tokens come from AWRS steps, each with its unbiased
    importance weight (the product of the step weights); ``result.log_z`` estimates
    ``log Z_L``.  ``stats``: ``checks_per_token`` (mean, rounds 1+2), ``checks1_per_token``
    (round 1: what the sample alone costs), ``checks_median``/``checks_p90``/``checks_max`` (per
    step, rounds 1+2)."""

    name = "awrs"

    def __init__(self, *, second_round: bool = True):
        self.second_round = bool(second_round)

    def __repr__(self) -> str:
        return f"AWRS(second_round={self.second_round})"

    def step(self, logp, state, step: int, max_new_tokens: int, rng, counters: dict | None = None):
        st = awrs_step(logp, step_is_allowed(state, step, max_new_tokens), rng,
                       second_round=self.second_round)
        if counters is not None:
            counters["checks1"] += st.checks1
            counters["checks2"] += st.checks2
            counters["steps"] += 1
            counters["per_step"].append(st.checks1 + st.checks2)
        if st.token is None:
            return None, NEG_INF, NEG_INF, st.checks
        lw = st.log_weight if self.second_round else 0.0
        return st.token, lw, math.nan, st.checks

    def run(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint, *,
            max_new_tokens: int, num_samples: int = 1, rng=None) -> SamplingResult:
        rng = as_rng(rng)
        T = int(max_new_tokens)
        counters = {"checks1": 0, "checks2": 0, "steps": 0, "per_step": []}

        def step_fn(logp, raw, st, step, g):
            tok, lw, _, checks = self.step(logp, st, step, T, g, counters)
            # proposal probability of the token: the masking distribution, known only from the
            # full mask; AWRS never builds it, so log_proposal stays nan
            return tok, lw, math.nan, checks

        samples = run_independent(lm, prompt_ids, constraint, int(num_samples), max_new_tokens=T,
                                  rng=rng, step_fn=step_fn)
        steps = max(counters["steps"], 1)
        per = np.asarray(counters["per_step"] or [0])
        stats = {
            "checks1_per_token": counters["checks1"] / steps,
            "checks_per_token": (counters["checks1"] + counters["checks2"]) / steps,
            "checks_median": float(np.median(per)),
            "checks_p90": float(np.percentile(per, 90)),
            "checks_max": int(per.max()),
            "steps": counters["steps"],
            "vocab_size": lm.width,
        }
        log_z = logmeanexp([s.log_weight for s in samples]) if self.second_round else None
        return SamplingResult(samples, self.name, log_z, stats)
