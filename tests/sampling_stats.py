"""Statistics helpers for the sampler tests (no scipy needed)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


def chi2_upper(df: int, z: float = 4.0) -> float:
    """Approximate upper quantile of chi-square(df) at the normal z-score ``z`` (Wilson–Hilferty);
    z = 4 is a tail of about 3e-5."""
    df = max(int(df), 1)
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def chi_square(counts: Counter, probs: dict, n: int, min_expected: float = 5.0) -> tuple[float, int]:
    """Pearson statistic of ``counts`` against ``probs`` (cells with small expectation pooled)
    and its degrees of freedom.  Outcomes outside ``probs`` make the statistic infinite."""
    if any(k not in probs for k in counts):
        return math.inf, 1
    big = [k for k, p in probs.items() if n * p >= min_expected]
    small = [k for k in probs if k not in big]
    stat = 0.0
    cells = 0
    for k in big:
        e = n * probs[k]
        stat += (counts.get(k, 0) - e) ** 2 / e
        cells += 1
    if small:
        e = n * sum(probs[k] for k in small)
        o = sum(counts.get(k, 0) for k in small)
        if e > 0:
            stat += (o - e) ** 2 / e
            cells += 1
        elif o:
            return math.inf, 1
    return stat, max(cells - 1, 1)


def t_statistic(xs, mu: float) -> float:
    x = np.asarray(xs, dtype=np.float64)
    se = x.std(ddof=1) / math.sqrt(len(x))
    return float((x.mean() - mu) / se) if se > 0 else (0.0 if x.mean() == mu else math.inf)
