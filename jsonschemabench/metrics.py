"""Metric definitions, kept in one place so that reports and tests agree.

MaskBench (per engine, over schemas): a schema *passes* when it compiles and every test instance is
classified right (valid accepted, invalid rejected). Otherwise its status is the first of
compile_error / timeout / crash / valid_rejected / invalid_accepted that applies (a schema can have
both valid-rejected and invalid-accepted instances; both counts are kept).

Generation (per engine, over schemas; the JSONSchemaBench paper's definitions):
- declared coverage  = schemas the engine compiled / schemas attempted
- empirical coverage = schemas whose output validates / schemas attempted (compile failures count 0)
- compliance         = schemas whose output validates / schemas compiled
Bootstrap: resample schemas with replacement (``numpy.random.default_rng(seed)``) and report the
median and the 2.5/97.5 percentiles of the metric over the resamples.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Iterable

import numpy as np

STATUSES = ["pass", "compile_error", "valid_rejected", "invalid_accepted", "timeout", "crash"]


def time_stats(values_us: Iterable[float]) -> dict:
    a = np.asarray(list(values_us), dtype=np.float64)
    if a.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p90": float(np.percentile(a, 90)), "p99": float(np.percentile(a, 99)),
            "max": float(a.max())}


def schema_status(rec: dict) -> str:
    """Status of one maskbench record (already set by the runner; recomputed for robustness)."""
    st = rec.get("status")
    if st in ("compile_error", "timeout", "crash", "valid_rejected", "invalid_accepted"):
        return st
    if rec.get("valid_rejected", 0) > 0:
        return "valid_rejected"
    if rec.get("invalid_accepted", 0) > 0:
        return "invalid_accepted"
    return "pass"


def maskbench_summary(records: list[dict]) -> dict[str, dict]:
    """Per-engine summary of maskbench records."""
    by_engine: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("kind", "maskbench") == "maskbench":
            by_engine[r["engine"]].append(r)
    out = {}
    for eng, recs in by_engine.items():
        c = Counter(schema_status(r) for r in recs)
        masks = [t for r in recs for t in r.get("mask_us", [])]
        comp = [r["compile_us"] for r in recs if r.get("compile_us") is not None
                and schema_status(r) != "compile_error" and r.get("status") != "timeout"]
        s = {"schemas": len(recs), **{k: c.get(k, 0) for k in STATUSES},
             "valid_rejected_instances": sum(r.get("valid_rejected", 0) for r in recs),
             "invalid_accepted_instances": sum(r.get("invalid_accepted", 0) for r in recs),
             "valid_rejected_any": sum(1 for r in recs if r.get("valid_rejected", 0) > 0),
             "invalid_accepted_any": sum(1 for r in recs if r.get("invalid_accepted", 0) > 0),
             "tests": sum(r.get("n_tests", 0) for r in recs),
             "relabelled": sum(r.get("relabelled", 0) for r in recs),
             "tokens": len(masks), "mask_us": time_stats(masks), "compile_us": time_stats(comp),
             "compiled": sum(1 for r in recs if schema_status(r) not in ("compile_error",)
                             and not (r.get("status") in ("timeout", "crash")
                                      and r.get("phase") == "compile"))}
        out[eng] = s
    return out


def per_subset(records: list[dict], value) -> dict[str, dict[str, float]]:
    """{subset: {engine: mean(value(record))}} — e.g. pass rate per subset."""
    acc: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        acc[r.get("subset", "default")][r["engine"]].append(value(r))
    return {s: {e: float(np.mean(v)) for e, v in d.items()} for s, d in sorted(acc.items())}


# -- generation --------------------------------------------------------------------------------
def coverage(records: list[dict]) -> dict:
    """Declared/empirical coverage and compliance of one engine's generation records
    (each with booleans ``compiled`` and ``valid``)."""
    n = len(records)
    compiled = sum(1 for r in records if r.get("compiled"))
    valid = sum(1 for r in records if r.get("compiled") and r.get("valid"))
    return {"n": n, "compiled": compiled, "valid": valid,
            "declared_coverage": compiled / n if n else float("nan"),
            "empirical_coverage": valid / n if n else float("nan"),
            "compliance": valid / compiled if compiled else float("nan")}


def bootstrap(records: list[dict], metric: str, n_boot: int = 1000, seed: int = 0) -> dict:
    """Bootstrap over schemas: median and 2.5/97.5 percentiles of ``coverage(...)[metric]``."""
    n = len(records)
    if n == 0:
        return {"median": float("nan"), "lo": float("nan"), "hi": float("nan"), "std": float("nan")}
    comp = np.array([bool(r.get("compiled")) for r in records])
    val = np.array([bool(r.get("compiled")) and bool(r.get("valid")) for r in records])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    c = comp[idx].sum(axis=1).astype(np.float64)
    v = val[idx].sum(axis=1).astype(np.float64)
    if metric == "declared_coverage":
        vals = c / n
    elif metric == "empirical_coverage":
        vals = v / n
    elif metric == "compliance":
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = np.where(c > 0, v / np.maximum(c, 1), np.nan)
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            return {"median": float("nan"), "lo": float("nan"), "hi": float("nan"), "std": float("nan")}
    else:
        raise ValueError(metric)
    return {"median": float(np.median(vals)), "lo": float(np.percentile(vals, 2.5)),
            "hi": float(np.percentile(vals, 97.5)), "std": float(vals.std())}


def generation_summary(records: list[dict], n_boot: int = 1000, seed: int = 0) -> dict[str, dict]:
    by_engine: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if r.get("kind") == "generate":
            by_engine[r["engine"]].append(r)
    out = {}
    for eng, recs in by_engine.items():
        s = coverage(recs)
        for m in ("declared_coverage", "empirical_coverage", "compliance"):
            s[m + "_boot"] = bootstrap(recs, m, n_boot=n_boot, seed=seed)
        ok = [r for r in recs if r.get("compiled") and r.get("status") == "ok"]
        s["compile_us"] = time_stats(r["compile_us"] for r in recs
                                     if r.get("compiled") and r.get("compile_us") is not None)
        s["ttft_ms"] = time_stats(r["ttft_ms"] for r in ok if r.get("ttft_ms") is not None)
        s["tpot_ms"] = time_stats(r["tpot_ms"] for r in ok if r.get("tpot_ms") is not None)
        s["output_tokens"] = time_stats(r["output_tokens"] for r in ok if r.get("output_tokens") is not None)
        s["timeouts"] = sum(1 for r in recs if r.get("status") == "timeout")
        s["crashes"] = sum(1 for r in recs if r.get("status") == "crash")
        out[eng] = s
    return out
