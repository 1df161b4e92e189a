"""Reports: a Markdown file and matplotlib PNGs from one or more JSONL result files
(maskbench and/or generate records)."""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from .metrics import STATUSES, generation_summary, maskbench_summary, per_subset, schema_status
from .results import read_jsonl

ENGINE_ORDER = ["constrain", "llguidance", "xgrammar", "outlines-core", "unconstrained"]
COLORS = {"constrain": "#d62728", "llguidance": "#1f77b4", "xgrammar": "#2ca02c",
          "outlines-core": "#9467bd", "unconstrained": "#7f7f7f"}


def _order(engines):
    return sorted(engines, key=lambda e: (ENGINE_ORDER.index(e) if e in ENGINE_ORDER else 99, e))


def _us(v):
    if v is None:
        return "–"
    if v < 1000:
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return f"{v:,.0f}"


def _pct(x):
    return "–" if x is None or x != x else f"{100 * x:.1f}%"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|:--|" + "|".join("--:" for _ in header[1:]) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def maskbench_markdown(records: list[dict]) -> str:
    s = maskbench_summary(records)
    engines = _order(s)
    if not engines:
        return ""
    n_schemas = len({r["schema_id"] for r in records})
    rows = [
        ["schemas", *[s[e]["schemas"] for e in engines]],
        ["**passing**", *[f"**{s[e]['pass']}**" for e in engines]],
        ["compile errors", *[s[e]["compile_error"] for e in engines]],
        ["valid rejected (schemas)", *[s[e]["valid_rejected_any"] for e in engines]],
        ["invalid accepted (schemas)", *[s[e]["invalid_accepted_any"] for e in engines]],
        ["valid rejected (instances)", *[s[e]["valid_rejected_instances"] for e in engines]],
        ["invalid accepted (instances)", *[s[e]["invalid_accepted_instances"] for e in engines]],
        ["timeouts", *[s[e]["timeout"] for e in engines]],
        ["crashes", *[s[e]["crash"] for e in engines]],
        ["test instances", *[s[e]["tests"] for e in engines]],
        ["labels corrected by the validator", *[s[e]["relabelled"] for e in engines]],
        ["tokens (masks computed)", *[f"{s[e]['tokens']:,}" for e in engines]],
        ["worker wall time (s)", *[f"{sum(r.get('wall_s', 0) for r in records if r['engine'] == e):,.0f}"
                                   for e in engines]],
    ]
    for k in ("mean", "p50", "p90", "p99", "max"):
        rows.append([f"mask time {k} (µs)", *[_us(s[e]["mask_us"][k]) for e in engines]])
    for k in ("mean", "p50", "p90", "p99", "max"):
        rows.append([f"compile time {k} (µs)", *[_us(s[e]["compile_us"][k]) for e in engines]])
    versions = {}
    for r in records:
        versions.setdefault(r["engine"], r.get("engine_version", "?"))
    toks = sorted({r.get("tokenizer", "?") for r in records})
    out = [f"## MaskBench\n",
           f"{n_schemas} schemas, tokenizer {', '.join(toks)}; engines: "
           + ", ".join(f"{e} {versions.get(e, '?')}" for e in engines) + ".\n",
           "A schema *passes* when it compiles and every test instance is classified right. "
           "Mask time: one `fill mask` call per token; compile time: compiled schemas only.\n",
           _table(["metric", *engines], rows), ""]
    # per subset
    sub = per_subset(records, lambda r: 1.0 if schema_status(r) == "pass" else 0.0)
    cnt = defaultdict(int)
    for r in records:
        if r["engine"] == engines[0]:
            cnt[r.get("subset", "default")] += 1
    rows = [[f"{k} ({cnt[k]})", *[_pct(v.get(e)) for e in engines]] for k, v in sub.items()]
    out += ["### Passing schemas per subset\n", _table(["subset (schemas)", *engines], rows), ""]
    out += ["![coverage](maskbench_coverage.png)\n", "![mask time](maskbench_mask_time_cdf.png)\n",
            "![compile time](maskbench_compile_time_cdf.png)\n"]
    # most common failure reasons of our engine, for debugging
    errs = defaultdict(int)
    for r in records:
        if r["engine"] == "constrain" and schema_status(r) == "compile_error":
            errs[_short_error(r.get("error", ""))] += 1
    if errs:
        out += ["### constrain: most common compile errors\n",
                _table(["error", "schemas"], sorted(errs.items(), key=lambda kv: -kv[1])[:15]), ""]
    return "\n".join(out)


def _short_error(msg: str) -> str:
    msg = msg.split("\n")[0]
    import re

    msg = re.sub(r"at #\S*", "at …", msg)
    return msg[:110].replace("|", "\\|")


def generation_markdown(records: list[dict]) -> str:
    g = generation_summary(records)
    engines = _order(g)
    if not engines:
        return ""

    def boot(e, m):
        b = g[e][m + "_boot"]
        return f"{_pct(g[e][m])} ({_pct(b['lo'])}–{_pct(b['hi'])})"

    rows = [["schemas", *[g[e]["n"] for e in engines]],
            ["declared coverage", *[boot(e, "declared_coverage") for e in engines]],
            ["empirical coverage", *[boot(e, "empirical_coverage") for e in engines]],
            ["compliance", *[boot(e, "compliance") for e in engines]],
            ["compile time p50 (ms)", *[_ms(g[e]["compile_us"]["p50"]) for e in engines]],
            ["time to first token p50 (ms)", *[_f(g[e]["ttft_ms"]["p50"]) for e in engines]],
            ["time per output token p50 (ms)", *[_f(g[e]["tpot_ms"]["p50"]) for e in engines]],
            ["output tokens mean", *[_f(g[e]["output_tokens"]["mean"]) for e in engines]],
            ["timeouts / crashes", *[f"{g[e]['timeouts']} / {g[e]['crashes']}" for e in engines]]]
    models = sorted({r.get("model", "?") for r in records if r.get("kind") == "generate"})
    out = ["## Generation\n",
           f"Model {', '.join(models)}, greedy decoding. Coverage: bootstrap median over schemas "
           "(2.5–97.5 percentile in parentheses). Validation: `Draft202012Validator` with "
           "`FormatChecker()`.\n", _table(["metric", *engines], rows), ""]
    gen = [r for r in records if r.get("kind") == "generate"]
    sub = per_subset(gen, lambda r: 1.0 if r.get("compiled") and r.get("valid") else 0.0)
    rows = [[k, *[_pct(v.get(e)) for e in engines]] for k, v in sub.items()]
    out += ["### Empirical coverage per subset\n", _table(["subset", *engines], rows), "",
            "![generation coverage](generate_coverage.png)\n"]
    return "\n".join(out)


def _ms(us):
    return "–" if us is None else f"{us / 1000:.1f}"


def _f(x):
    return "–" if x is None else f"{x:.1f}"


# ------------------------------------------------------------------------------------- plots
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_subset_bars(table: dict[str, dict[str, float]], path: str, title: str, ylabel: str):
    plt = _plt()
    subsets = list(table)
    engines = _order({e for v in table.values() for e in v})
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(subsets) + 2), 4.5))
    w = 0.8 / max(1, len(engines))
    x = np.arange(len(subsets))
    for i, e in enumerate(engines):
        vals = [100 * table[s].get(e, np.nan) for s in subsets]
        ax.bar(x + (i - (len(engines) - 1) / 2) * w, vals, w, label=e, color=COLORS.get(e))
    ax.set_xticks(x)
    ax.set_xticklabels(subsets, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel(ylabel)
    ax.set_title(title, pad=24)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(engines), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_cdf(series: dict[str, list[float]], path: str, title: str, xlabel: str):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for e in _order(series):
        a = np.sort(np.asarray(series[e], dtype=np.float64))
        if a.size == 0:
            continue
        a = np.maximum(a, 1e-2)
        y = np.arange(1, a.size + 1) / a.size
        p50 = float(np.percentile(a, 50))
        ax.step(a, y, where="post", label=f"{e} (n={a.size:,}, p50={p50:,.0f})" if p50 >= 100 else
                f"{e} (n={a.size:,}, p50={p50:.3g})",
                color=COLORS.get(e))
    ax.set_xscale("log")
    ax.set_ylim(0, 1.01)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction ≤ x")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(result_files: list[str], out_dir: str) -> str:
    records = [r for p in result_files for r in read_jsonl(p)]
    os.makedirs(out_dir, exist_ok=True)
    mb = [r for r in records if r.get("kind", "maskbench") == "maskbench" and "engine" in r]
    gen = [r for r in records if r.get("kind") == "generate"]
    parts = ["# JSONSchemaBench report\n", "Sources: " + ", ".join(f"`{p}`" for p in result_files) + "\n"]
    if mb:
        parts.append(maskbench_markdown(mb))
        sub = per_subset(mb, lambda r: 1.0 if schema_status(r) == "pass" else 0.0)
        plot_subset_bars(sub, os.path.join(out_dir, "maskbench_coverage.png"),
                         "MaskBench: schemas passing per subset", "passing schemas (%)")
        masks = defaultdict(list)
        comp = defaultdict(list)
        for r in mb:
            masks[r["engine"]].extend(r.get("mask_us", []))
            if r.get("compile_us") is not None and schema_status(r) not in ("compile_error",) \
                    and r.get("status") != "timeout":
                comp[r["engine"]].append(r["compile_us"])
        plot_cdf(masks, os.path.join(out_dir, "maskbench_mask_time_cdf.png"),
                 "Per-token mask time (CDF over tokens)", "µs (log scale)")
        plot_cdf(comp, os.path.join(out_dir, "maskbench_compile_time_cdf.png"),
                 "Compile time (CDF over compiled schemas)", "µs (log scale)")
    if gen:
        parts.append(generation_markdown(gen))
        sub = per_subset(gen, lambda r: 1.0 if r.get("compiled") and r.get("valid") else 0.0)
        plot_subset_bars(sub, os.path.join(out_dir, "generate_coverage.png"),
                         "Generation: empirical coverage per subset", "valid outputs (%)")
    md = "\n".join(parts)
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write(md + "\n")
    return path


def status_counts(records):  # small helper for the CLI's list/summary
    c = defaultdict(lambda: dict.fromkeys(STATUSES, 0))
    for r in records:
        c[r["engine"]][schema_status(r)] += 1
    return dict(c)
