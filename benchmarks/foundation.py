#!/usr/bin/env python
"""Foundation benchmark (issue 2): compile time and per-token mask time, ours beside the peers.

For every schema in ``schemas/*.json`` and a few regexes with large bounded repetitions, on the
SmolLM2 (49k) and Llama-3.2 (128k) tokenizers, each engine (constrain, xgrammar, llguidance by
default) compiles the grammar once (compile time = that first compile) and is then driven token by
token over a sample string: for schemas a valid instance (the schema's ``examples`` or a seeded
generated instance, checked with jsonschema), for regexes a seeded random matching string. Every
``fill mask`` call is timed; the table gives mean/p50/p99 and ratios engine/ours (> 1: we are
faster). With ``--repeats N`` the sample is driven N times (later passes hit warm caches).

Every (engine, tokenizer) runs in an isolated worker process (jsonschemabench.worker), so a
grammar that hangs an engine is reported as a timeout and the run goes on.

    .venv/bin/python benchmarks/foundation.py                 # both tokenizers, 3 engines
    .venv/bin/python benchmarks/foundation.py --tokenizers smollm2 --engines constrain,llguidance
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench_common import tokenizer_path  # noqa: E402
from bench_common import fmt_ms as _ms, fmt_num as _f, fmt_ratio as _ratio  # noqa: E402
from jsonschemabench.engines import canonical, is_available, spec_of  # noqa: E402
from jsonschemabench.instances import sample_instance, sample_regex  # noqa: E402
from jsonschemabench.worker import IsolatedWorker, WorkerStartError  # noqa: E402

REGEXES = [r"[a-z]{0,2000}", r".{0,2000}", r"(ab|cd){10,500}x", r"[0-9]{1,300}\.[0-9]{1,300}"]


def build_items(seed: int, schemas_dir: str) -> list[dict]:
    import jsonschema

    rng = random.Random(seed)
    items = []
    files = sorted(glob.glob(os.path.join(schemas_dir, "*.json")))
    if not files:
        print(f"note: no schemas in {schemas_dir}; regexes only", file=sys.stderr)
    for f in files:
        name = os.path.splitext(os.path.basename(f))[0]
        try:
            with open(f, encoding="utf-8") as fh:
                schema = json.load(fh)
        except (OSError, json.JSONDecodeError) as e:
            print(f"note: skipping {f}: {e}", file=sys.stderr)
            continue
        sample = None
        side = os.path.splitext(f)[0] + ".instance.json"
        candidates = []
        if os.path.exists(side):
            with open(side, encoding="utf-8") as fh:
                candidates.append(json.load(fh))
        for _ in range(20):
            try:
                candidates.append(sample_instance(schema, rng))
            except Exception:
                break
        v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
        for c in candidates:
            if v.is_valid(c):
                sample = json.dumps(c, ensure_ascii=False)
                break
        if sample is None:
            print(f"note: no valid sample instance for {name}; masks not timed", file=sys.stderr)
        items.append({"name": f"schema:{name}", "kind": "json", "source": schema, "sample": sample})
    for rx in REGEXES:
        items.append({"name": f"regex:{rx}", "kind": "regex", "source": rx,
                      "sample": sample_regex(rx, rng)})
    return items


def run(args) -> list[dict]:
    items = build_items(args.seed, args.schemas)
    engines = [canonical(e) for e in args.engines.split(",")]
    rows = []
    for tname in args.tokenizers.split(","):
        tpath = tokenizer_path(tname)
        for eng in engines:
            ok, why = is_available(eng)
            if not ok:
                print(f"{eng}: not available ({why})", file=sys.stderr)
                continue
            w = IsolatedWorker("jsonschemabench.microbench:worker_init",
                               {"tokenizer": tpath, "engine_spec": spec_of(eng)},
                               mem_limit_gb=args.mem_limit_gb,
                               log_path=os.path.join(args.out_dir, "foundation.worker.log"))
            try:
                setup = w.run({"op": "setup"}, [("setup", 600)]).payload or {}
            except WorkerStartError as e:
                print(f"{eng}: worker failed to start: {e}", file=sys.stderr)
                continue
            print(f"[{tname}] {eng}: setup {setup.get('setup_s', float('nan')):.2f}s", file=sys.stderr)
            for it in items:
                task = {"kind": it["kind"], "source": it["source"], "sample": it["sample"] or "",
                        "repeats": args.repeats}
                if it["sample"] is None:
                    task["sample"] = ""
                o = w.run(task, [("compile", args.timeout), ("masks", args.timeout)])
                row = {"tokenizer": tname, "engine": eng, "grammar": it["name"]}
                if o.status == "ok":
                    row.update(o.payload)
                    if it["sample"] is None:
                        for k in ("mask_mean", "mask_p50", "mask_p99", "mask_max"):
                            row[k] = None
                else:
                    row.update(status=o.status, error=o.detail, phase=o.phase)
                rows.append(row)
                print(f"  {it['name'][:40]:40s} {row.get('status'):13s} "
                      f"compile {_ms(row.get('compile_us'))} ms, mask mean {_f(row.get('mask_mean'))} µs",
                      file=sys.stderr)
            w.close()
    return rows


def table(rows: list[dict], ours: str = "constrain") -> str:
    out = []
    for tname in dict.fromkeys(r["tokenizer"] for r in rows):
        out.append(f"\n### tokenizer {tname}\n")
        out.append("| grammar | engine | compile (ms) | mask mean (µs) | p50 | p99 | tokens | ok | "
                   "compile ÷ ours | mask mean ÷ ours | p99 ÷ ours |")
        out.append("|:--|:--|--:|--:|--:|--:|--:|:--|--:|--:|--:|")
        trows = [r for r in rows if r["tokenizer"] == tname]
        for g in dict.fromkeys(r["grammar"] for r in trows):
            grows = [r for r in trows if r["grammar"] == g]
            base = next((r for r in grows if r["engine"] == ours and r.get("status") == "ok"), None)
            for r in grows:
                st = r.get("status")
                okc = ("yes" if r.get("accepted") else "REJECTED") if st == "ok" else st
                if st == "ok" and r.get("mask_mean") is None:
                    okc = "no sample"
                out.append("| " + " | ".join([
                    g.replace("|", "\\|"), r["engine"], _ms(r.get("compile_us")), _f(r.get("mask_mean")),
                    _f(r.get("mask_p50")), _f(r.get("mask_p99")), str(r.get("tokens", "–")), okc,
                    _ratio(r.get("compile_us"), base and base.get("compile_us")) if base else "–",
                    _ratio(r.get("mask_mean"), base and base.get("mask_mean")) if base else "–",
                    _ratio(r.get("mask_p99"), base and base.get("mask_p99")) if base else "–",
                ]) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", default="smollm2,llama3.2")
    ap.add_argument("--engines", default="constrain,xgrammar,llguidance")
    ap.add_argument("--schemas", default=os.path.join(ROOT, "schemas"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for compile, and for masks")
    ap.add_argument("--mem-limit-gb", type=float, default=8.0)
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "results"))
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    t0 = time.perf_counter()
    rows = run(args)
    md = table(rows)
    print(md)
    with open(os.path.join(args.out_dir, "foundation.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.out_dir, "foundation.md"), "w") as f:
        f.write("# Foundation benchmark\n\nCompile = first compile; mask times over the sample's tokens; "
                "ratios = engine ÷ constrain (> 1: constrain is faster).\n" + md + "\n")
    print(f"\n{len(rows)} measurements in {time.perf_counter() - t0:.0f}s; "
          f"written to {args.out_dir}/foundation.{{md,json}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
