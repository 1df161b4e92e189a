#!/usr/bin/env python
"""Distribution-aligned sampling on the default model (issue 6): masking vs ASAp vs SMC.

Reproduces the comparison of the ASAp paper (Park et al., NeurIPS 2024) with SmolLM2-135M-Instruct:

1. **choice**: a constrained choice among a few strings of different token lengths (a regex
   alternation), small enough that the exact target ``Q`` over token sequences is enumerated.
2. **json**: a short JSON Schema (compact whitespace); ``Q`` is estimated on the union of the
   sampled token sequences, as in the paper: ``Q~(w) = P(w) / Σ_{w' ∈ union} P(w')``.

For each task and sampler we draw the same number of sequences (SMC: runs of ``--particles``
particles, each run's normalized weights spread over its particles) and plot, over a sliding
window of the last ``--window`` sequences, ``KL(empirical ‖ Q~)`` and the mean log-likelihood
``log P(w)`` (the "expected likelihood"; the dashed line is its value under ``Q``).  For the choice
task the exact ``KL(Q_GCD ‖ Q)`` of masking is printed as well.

3. **AWRS**: average number of constraint checks per token (round 1 alone: the sample; rounds 1+2:
   sample and unbiased weight) when generating JSON with the default model, beside ``|V|``.

``P`` is the model's distribution at temperature ``--temperature`` (no top-k/top-p).  The model
runs through a prefix cache (:class:`constrain.sampling.CachedLM`): sequences already seen cost
no forward pass; this changes the cost, never a distribution.

    .venv/bin/python benchmarks/aligned_sampling.py                 # ~ a few minutes on 2 cores
    .venv/bin/python benchmarks/aligned_sampling.py --samples 200   # quicker

Writes ``benchmarks/results/aligned_sampling.png`` and ``aligned_sampling.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from constrain.sampling import (  # noqa: E402
    ASAp,
    AWRS,
    CachedLM,
    HFLanguageModel,
    MaskSampler,
    SMC,
    Warper,
    enumerate_exact,
    kl_divergence,
)

RESULTS = os.path.join(ROOT, "benchmarks", "results")

CHOICE_PROMPT = "Name a large African animal. Answer with one word."
CHOICE_OPTIONS = ["elephant", "giraffe", "hippopotamus", "rhinoceros", "zebra"]
CHOICE_BUDGET = 6

JSON_PROMPT = "Pick a large African animal."
JSON_SCHEMA = {
    "type": "object",
    "properties": {"animal": {"enum": ["elephant", "giraffe", "zebra", "hippopotamus"]}},
    "required": ["animal"],
    "additionalProperties": False,
}
JSON_BUDGET = 12

AWRS_SCHEMAS = {
    "person": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                                 "age": {"type": "integer", "minimum": 0, "maximum": 120}},
               "required": ["name", "age"], "additionalProperties": False},
    "animal": {"type": "object", "properties": {
        "animal": {"enum": ["elephant", "giraffe", "zebra", "hippopotamus"]},
        "legs": {"type": "integer", "minimum": 0, "maximum": 9}},
        "required": ["animal", "legs"], "additionalProperties": False},
    "list": {"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1, "maxItems": 3},
}


def log(*a):
    print(*a, flush=True)


def chat_ids(tok, user: str, system: str | None = None) -> list[int]:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"]


# ----------------------------------------------------------------------------- sampling runs
def run_mask(lm, prompt, g, T, n, seed, chunk=64):
    out = []
    rng = np.random.default_rng(seed)
    for i in range(0, n, chunk):
        res = MaskSampler().run(lm, prompt, g, max_new_tokens=T, num_samples=min(chunk, n - i), rng=rng)
        out += [(tuple(s.tokens), s.log_prob, 0.0) if s.complete else (None, None, 0.0) for s in res.samples]
    return out


def run_asap(lm, prompt, g, T, n, seed):
    asap = ASAp()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = asap.run(lm, prompt, g, max_new_tokens=T, rng=rng).samples[0]
        out.append((tuple(s.tokens), s.log_prob, 0.0) if s.complete else (None, None, 0.0))
    return out, asap


def run_smc(lm, prompt, g, T, n, particles, seed, proposal="awrs"):
    out = []
    rng = np.random.default_rng(seed)
    z = []
    for _ in range(max(1, n // particles)):
        res = SMC(particles, proposal=proposal).run(lm, prompt, g, max_new_tokens=T, rng=rng)
        z.append(res.log_z)
        # unnormalized weights: pooled over runs, a run counts in proportion to its estimate of Z
        out += [(tuple(s.tokens), s.log_prob, s.log_weight) if s.complete else (None, None, -math.inf)
                for s in res.samples]
    return out, z


# ----------------------------------------------------------------------------- metrics
def window_distribution(win):
    """(distribution over outputs, weighted mean log P) of a window of (key, log P, log weight)
    entries; dead entries count in the window's size but carry no mass."""
    live = [(k, lp, lw) for k, lp, lw in win if k is not None and lw > -math.inf]
    if not live:
        return {}, None
    ref = max(lw for _, _, lw in live)
    mass: dict = {}
    ll = wsum = 0.0
    for key, lp, lw in live:
        w = math.exp(lw - ref)
        mass[key] = mass.get(key, 0.0) + w
        ll += w * lp
        wsum += w
    return {k: v / wsum for k, v in mass.items()}, ll / wsum


def window_curves(samples, log_q: dict, window: int, step: int):
    """x, KL(window ‖ Q~), mean log P over each window of ``window`` sequences ending at x."""
    xs, kls, lls = [], [], []
    for end in range(window, len(samples) + 1, step):
        p, ll = window_distribution(samples[end - window:end])
        if not p:
            continue
        xs.append(end)
        kls.append(kl_divergence(p, log_q))
        lls.append(ll)
    return xs, kls, lls


def union_log_q(*runs) -> dict:
    lp = {}
    for run in runs:
        for key, l, _ in run:
            if key is not None:
                lp[key] = l
    z = np.logaddexp.reduce(list(lp.values()))
    return {k: v - z for k, v in lp.items()}


def expected_ll(log_q: dict, log_p: dict) -> float:
    return float(sum(math.exp(q) * log_p[k] for k, q in log_q.items()))


def by_string(vocab, log_q: dict) -> dict:
    out: dict = {}
    for w, lq in log_q.items():
        s = vocab.decode_bytes(w[:-1]).decode("utf-8", "replace")
        out[s] = out.get(s, 0.0) + math.exp(lq)
    return out


def empirical_by_string(vocab, samples) -> dict:
    p, _ = window_distribution(samples)
    out: dict = {}
    for key, v in p.items():
        s = vocab.decode_bytes(key[:-1]).decode("utf-8", "replace")
        out[s] = out.get(s, 0.0) + v
    return out


# ----------------------------------------------------------------------------- tasks
def compare(name, lm, vocab, prompt, g, T, args, n, window, exact=None):
    t0 = time.time()
    mask = run_mask(lm, prompt, g, T, n, args.seed)
    t1 = time.time()
    asap_s, asap = run_asap(lm, prompt, g, T, n, args.seed + 1)
    t2 = time.time()
    smc_s, smc_z = run_smc(lm, prompt, g, T, n, args.particles, args.seed + 2, args.smc_proposal)
    t3 = time.time()
    log(f"[{name}] sampling time: mask {t1 - t0:.1f}s, asap {t2 - t1:.1f}s, smc {t3 - t2:.1f}s "
        f"(cache hits {lm.hits}, misses {lm.misses})")
    runs = {"mask": mask, "asap": asap_s, "smc": smc_s}
    lq_union = union_log_q(mask, asap_s, smc_s)
    lp_union = {}
    for run in runs.values():
        for key, l, _ in run:
            if key is not None:
                lp_union[key] = l
    res = {"task": name, "budget": T, "samples": n, "window": window,
           "union_size": len(lq_union), "curves": {}, "final": {},
           "asap_nodes": asap.num_nodes, "asap_theta_root": asap.theta(()),
           "smc_log_z_mean": float(np.log(np.mean(np.exp(smc_z)))) if smc_z else None}
    targets = {"union": lq_union}
    if exact is not None:
        targets["exact"] = exact.log_q()
        res["exact"] = {"sequences": len(exact.log_p), "log_Z": exact.log_z,
                        "kl_qgcd_q": kl_divergence({w: math.exp(v) for w, v in exact.log_q_gcd().items()},
                                                   exact.log_q()),
                        "mask_dead_mass": exact.mask_dead_mass(),
                        "q_by_string": by_string(vocab, exact.log_q()),
                        "qgcd_by_string": by_string(vocab, exact.log_q_gcd()),
                        "expected_ll_q": expected_ll(exact.log_q(), exact.log_p)}
    res["expected_ll_union_q"] = expected_ll(lq_union, lp_union)
    for tname, lq in targets.items():
        for m, run in runs.items():
            xs, kls, lls = window_curves(run, lq, window, args.step)
            res["curves"][f"{m}/{tname}"] = {"x": xs, "kl": kls, "ll": lls}
            last = run[-window:]
            xs2, k2, l2 = window_curves(last, lq, len(last), len(last))
            res["final"][f"{m}/{tname}"] = {"kl_last_window": k2[0] if k2 else None,
                                            "ll_last_window": l2[0] if l2 else None,
                                            "dead": sum(1 for k, _, w in run if k is None or w == -math.inf)}
    res["strings_last_window"] = {m: empirical_by_string(vocab, run[-window:]) for m, run in runs.items()}
    return res


def awrs_checks(lm, vocab, tok, comp, args):
    out = {}
    for (name, schema), ws in [(kv, w) for kv in AWRS_SCHEMAS.items() for w in ("compact", "flexible")]:
        g = comp.compile_json_schema(schema, whitespace=ws)
        name = f"{name}/{ws}"
        prompt = chat_ids(tok, f"Give an example. JSON Schema: {json.dumps(schema)}",
                          system="You answer with JSON only.")
        t0 = time.time()
        res = AWRS().run(lm, prompt, g, max_new_tokens=48, num_samples=args.awrs_samples,
                         rng=np.random.default_rng(args.seed))
        dt = time.time() - t0
        done = sum(s.complete for s in res.samples)
        out[name] = {"checks1_per_token": res.stats["checks1_per_token"],
                     "checks_per_token": res.stats["checks_per_token"], "tokens": res.stats["steps"],
                     "checks_median": res.stats["checks_median"], "checks_p90": res.stats["checks_p90"],
                     "checks_max": res.stats["checks_max"],
                     "complete": done, "samples": len(res.samples), "vocab": lm.width, "seconds": dt,
                     "example": next((vocab.decode_bytes(s.body).decode("utf-8", "replace")
                                      for s in res.samples if s.complete), None)}
        st = res.stats
        log(f"[awrs] {name:18s} checks/token: mean {st['checks1_per_token']:6.1f} (sample) "
            f"{st['checks_per_token']:6.1f} (+weight), median {st['checks_median']:4.0f}, p90 "
            f"{st['checks_p90']:5.0f}, max {st['checks_max']:5d}; |V| = {lm.width}; "
            f"{done}/{len(res.samples)} complete, {st['steps']} tokens; e.g. {out[name]['example']}")
    return out


# ----------------------------------------------------------------------------- plot
COLORS = {"mask": "tab:red", "asap": "tab:blue", "smc": "tab:green"}


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(results)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 4.2 * rows), squeeze=False)
    for r, res in enumerate(results):
        target = "exact" if "exact" in res else "union"
        ax = axes[r][0]
        for m in ("mask", "asap", "smc"):
            c = res["curves"][f"{m}/{target}"]
            ax.plot(c["x"], c["kl"], color=COLORS[m], label=m)
            if target == "exact":
                cu = res["curves"][f"{m}/union"]
                ax.plot(cu["x"], cu["kl"], color=COLORS[m], ls=":", alpha=0.6)
        if target == "exact":
            ax.axhline(res["exact"]["kl_qgcd_q"], color=COLORS["mask"], ls="--", lw=1,
                       label="KL(Q_GCD‖Q), exact")
        ax.set_yscale("log")
        ax.set_xlabel("sequences sampled")
        what = "exact Q" if target == "exact" else "Q~ on the union of samples"
        ax.set_ylabel("KL(window ‖ Q)")
        ax.set_title(f"{res['task']}: KL to {what}, window {res['window']}"
                     + (" (dotted: Q~)" if target == "exact" else ""), fontsize=10)
        ax.legend(fontsize=8)
        ax = axes[r][1]
        for m in ("mask", "asap", "smc"):
            c = res["curves"][f"{m}/{target}"]
            ax.plot(c["x"], c["ll"], color=COLORS[m], label=m)
        ref = res["exact"]["expected_ll_q"] if target == "exact" else res["expected_ll_union_q"]
        ax.axhline(ref, color="k", ls="--", lw=1, label="E_Q[log P]" + ("" if target == "exact" else " (Q~)"))
        ax.set_xlabel("sequences sampled")
        ax.set_ylabel("mean log P(w) in window")
        ax.set_title(f"{res['task']}: expected log-likelihood", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=800, help="sequences per sampler, choice task")
    ap.add_argument("--window", type=int, default=200, help="sliding window (sequences), choice task")
    ap.add_argument("--json-samples", type=int, default=300, help="sequences per sampler, json task")
    ap.add_argument("--json-window", type=int, default=100, help="sliding window, json task")
    ap.add_argument("--smc-proposal", default="awrs", choices=["awrs", "mask"])
    ap.add_argument("--step", type=int, default=10, help="window stride")
    ap.add_argument("--particles", type=int, default=10, help="SMC particles per run")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--awrs-samples", type=int, default=8, help="AWRS sequences per schema")
    ap.add_argument("--tasks", default="choice,json,awrs")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 is fastest on a small, shared CPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from constrain.api import compiler_for
    from constrain.models import load_default_model

    t0 = time.time()
    model, tok = load_default_model(device="cpu")
    comp = compiler_for(tok, model=model)
    vocab = comp.vocab
    lm = CachedLM(HFLanguageModel(model, warper=Warper(args.temperature)), max_entries=6000, dtype=np.float32)
    log(f"model loaded in {time.time() - t0:.1f}s; |V| = {lm.width}")
    tasks = args.tasks.split(",")
    os.makedirs(args.out, exist_ok=True)
    results, summary = [], {"args": vars(args)}

    if "choice" in tasks:
        prompt = chat_ids(tok, CHOICE_PROMPT)
        g = comp.compile_regex("(" + "|".join(map(re.escape, CHOICE_OPTIONS)) + ")")
        t = time.time()
        ex = enumerate_exact(lm, prompt, g, max_new_tokens=CHOICE_BUDGET)
        log(f"[choice] exact enumeration: {len(ex.log_p)} token sequences, {len(ex.log_c)} prefixes, "
            f"Z_L = {math.exp(ex.log_z):.3g}, {time.time() - t:.1f}s")
        res = compare("choice", lm, vocab, prompt, g, CHOICE_BUDGET, args, args.samples, args.window, exact=ex)
        results.append(res)
        log(f"[choice] exact KL(Q_GCD ‖ Q) = {res['exact']['kl_qgcd_q']:.3f} nats; masking dies with "
            f"probability {res['exact']['mask_dead_mass']:.3f}")
        log("[choice] string   Q(exact)  Q_GCD(exact)  " + "  ".join(f"{m:>6}" for m in COLORS))
        for s in sorted(res["exact"]["q_by_string"], key=lambda k: -res["exact"]["q_by_string"][k]):
            emp = "  ".join(f"{res['strings_last_window'][m].get(s, 0.0):6.3f}" for m in COLORS)
            log(f"         {s:14s} {res['exact']['q_by_string'][s]:7.4f}  {res['exact']['qgcd_by_string'][s]:7.4f}"
                f"       {emp}")

    if "json" in tasks:
        prompt = chat_ids(tok, JSON_PROMPT,
                          system="Answer with JSON only, valid under this JSON Schema: " + json.dumps(JSON_SCHEMA))
        g = comp.compile_json_schema(JSON_SCHEMA, whitespace="compact")
        res = compare("json", lm, vocab, prompt, g, JSON_BUDGET, args, args.json_samples, args.json_window)
        results.append(res)
        log(f"[json] union of sampled sequences: {res['union_size']}")

    for res in results:
        log(f"[{res['task']}] last window of {res['window']}:   KL to Q~ (union)   "
            + ("KL to exact Q   " if "exact" in res else "") + "mean log P   dead (whole run)")
        for m in COLORS:
            fu = res["final"][f"{m}/union"]
            fe = res["final"].get(f"{m}/exact")
            log(f"    {m:5s} {fu['kl_last_window']:18.3f}   "
                + (f"{fe['kl_last_window']:14.3f}   " if fe else "")
                + f"{fu['ll_last_window']:10.3f}   {fu['dead']}")
        ref = res["exact"]["expected_ll_q"] if "exact" in res else res["expected_ll_union_q"]
        log(f"    E_Q[log P] = {ref:.3f}" + ("" if "exact" in res else " (Q~)")
            + f"; ASAp trie: {res['asap_nodes']} nodes, θ(root) = {res['asap_theta_root']:.3g}")

    if results:
        png = os.path.join(args.out, "aligned_sampling.png")
        plot(results, png)
        log(f"plot: {os.path.relpath(png, ROOT)}")
        summary["tasks"] = results

    if "awrs" in tasks:
        summary["awrs"] = awrs_checks(lm, vocab, tok, comp, args)

    summary["seconds"] = time.time() - t0
    with open(os.path.join(args.out, "aligned_sampling.json"), "w") as f:
        json.dump(summary, f, indent=1, default=lambda o: None)
    log(f"total {summary['seconds']:.0f}s; results in {os.path.relpath(args.out, ROOT)}/aligned_sampling.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
