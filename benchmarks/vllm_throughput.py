#!/usr/bin/env python3
"""Throughput of a real vLLM engine (CPU, the default model) with JSON Schema constraints:
unconstrained vs our plugin vs vLLM's built-in structured outputs (xgrammar, guidance), on the
same schemas, in one run, at batch 1 and batch 16.

    .venv-vllm/bin/python benchmarks/vllm_throughput.py                 # full run, prints a table
    .venv-vllm/bin/python benchmarks/vllm_throughput.py --reps 1 --quick

How it is measured (and why):

* The workload is the 8 JSON schemas of the end-to-end tests (``tests/test_vllm_cases.py``) with
  their prompts, greedy.  Batch 16 = the 8 schemas twice, submitted together; batch 1 = the
  first ``--b1-requests`` schemas one request at a time.  tokens/s = generated tokens / wall time.
* Constrained outputs end when their JSON is complete, at different lengths per backend, and a
  batch whose rows finish early runs fewer rows per step.  So the unconstrained baseline is
  *length-matched*: the same prompts with ``ignore_eos`` and, per request, ``max_tokens`` = the
  length of our plugin's output for that request in the same repetition.  It runs the same
  number of steps with the same rows as our plugin; only the masking differs.
* This machine is shared, so load drifts: every repetition runs all modes of an engine back to
  back (round robin) and the table reports medians.  Each mode's ratio is against the
  unconstrained baseline of the same engine and repetition.
* Engines, one at a time, each in its own process (in-process vLLM inside it):
  A: our plugin (by class) + built-in backend xgrammar: modes ``ours``, ``xgrammar``,
     ``unconstrained`` (length-matched to ``ours``), ``unconstrained-free`` (natural length);
  B: built-in backend guidance, no plugin: modes ``guidance``, ``unconstrained``;
  C (``--engine-c``): no plugin, no constraints: ``unconstrained`` (the plugin's cost when
     merely installed: compare with A's ``unconstrained``).
  ``--free`` adds ``unconstrained-free`` to A: unconstrained at its natural length.
  vLLM picks one structured-output backend per engine, hence A and B.
* Wall time on a shared machine measures the neighbours too, so each run also records the
  engine process's CPU time (``time.process_time``: all its threads) and reports tokens per
  CPU-second, which is much less sensitive to other processes' load.
* Our plugin's own time per step (``apply``: advancing matchers, filling and applying masks) is
  measured inside the engine and reported separately, together with its share of the step
  time (``apply`` duration / time between consecutive steps, summed over steps of one batch):
  both are taken at the same moments, so this share is robust to the machine's load.

Results are printed and written as JSON to ``--out`` (default
``benchmarks/results/vllm_throughput_cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import test_vllm_cases as C  # noqa: E402


# ------------------------------------------------------------------------------ engine side
def _engine_main(spec: dict) -> dict:
    C.set_cpu_env(in_process=True)
    import vllm.v1.sample.logits_processor as lp
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    lp._load_logitsprocs_plugins = lambda: []  # only what we pass (the entry point may be installed)
    lp.cached_load_custom_logitsprocs.cache_clear()

    procs = []
    timing = {"calls": 0, "rows": 0, "seconds": 0.0, "period_seconds": 0.0, "periods": 0, "last": None}
    if spec["plugin"]:
        from constrain.integrations.vllm import ConstrainLogitsProcessor

        class TimedConstrainLogitsProcessor(ConstrainLogitsProcessor):
            def apply(self, logits, ctx=None):
                if not self._rows:
                    timing["last"] = None
                    return super().apply(logits, ctx)
                t = time.perf_counter()
                out = super().apply(logits, ctx)
                dt = time.perf_counter() - t
                last = timing["last"]
                if last is not None and t - last[0] < 5.0:  # consecutive steps of one batch
                    timing["period_seconds"] += t - last[0]
                    timing["periods"] += 1
                    timing["seconds_in_periods"] = timing.get("seconds_in_periods", 0.0) + last[1]
                timing["last"] = (t, dt)
                timing["seconds"] += dt
                timing["calls"] += 1
                timing["rows"] += len(self._rows)
                return out

        procs = [TimedConstrainLogitsProcessor]
    kw = dict(C.ENGINE_KW)
    if spec.get("backend"):
        kw["structured_outputs_config"] = {"backend": spec["backend"]}
    t0 = time.perf_counter()
    llm = LLM(model=spec["model"], logits_processors=procs or None, **kw)
    load_s = time.perf_counter() - t0
    tok = llm.get_tokenizer()
    schemas = C.SCHEMAS
    prompts = [C.chat_prompt(tok, p, C.schema_system(s)) for s, p in zip(C.SCHEMAS, C.SCHEMA_PROMPTS)]
    max_tokens = spec["max_tokens"]

    def params(mode, i, lm_len=None):
        s = schemas[i]
        if mode == "ours":
            return SamplingParams(max_tokens=max_tokens, temperature=0.0,
                                  extra_args={"json_schema": json.dumps(s)})
        if mode in ("xgrammar", "guidance"):
            return SamplingParams(max_tokens=max_tokens, temperature=0.0,
                                  structured_outputs=StructuredOutputsParams(json=s))
        if mode == "unconstrained" and lm_len is not None:
            return SamplingParams(max_tokens=max(1, lm_len), temperature=0.0, ignore_eos=True)
        return SamplingParams(max_tokens=max_tokens, temperature=0.0)

    def run(mode, idx, lm_lens=None):
        ps = [prompts[i] for i in idx]
        sp = [params(mode, i, None if lm_lens is None else lm_lens[j]) for j, i in enumerate(idx)]
        t, c = time.perf_counter(), time.process_time()
        if spec["batch"] == 1:
            outs = [llm.generate([p], [s], use_tqdm=False)[0] for p, s in zip(ps, sp)]
        else:
            outs = llm.generate(ps, sp, use_tqdm=False)
        dt, cpu = time.perf_counter() - t, time.process_time() - c
        lens = [len(o.outputs[0].token_ids) for o in outs]
        ok = None
        if mode in ("ours", "xgrammar", "guidance"):
            ok = 0
            for i, o in zip(idx, outs):
                try:
                    C.check_output({"kind": "json_schema", "constraint": schemas[i]}, o.outputs[0].text)
                    ok += 1
                except AssertionError:
                    pass
        return {"mode": mode, "seconds": dt, "cpu_seconds": cpu, "tokens": sum(lens), "lengths": lens,
                "tok_per_s": sum(lens) / dt, "tok_per_cpu_s": sum(lens) / max(cpu, 1e-9),
                "valid": ok, "n": len(idx)}

    idx = spec["indices"]
    # warm-up (compiles, first-touch allocations): one short untimed pass per constrained mode
    for mode in spec["modes"]:
        if mode != "unconstrained":
            llm.generate([prompts[idx[0]]], [params(mode, idx[0])], use_tqdm=False)
    timing.update(calls=0, rows=0, seconds=0.0, period_seconds=0.0, periods=0, last=None,
                  seconds_in_periods=0.0)
    reps = []
    lm_lens = spec.get("lm_lengths")
    for r in range(spec["reps"]):
        rep = {}
        for mode in spec["modes"]:
            if mode == "unconstrained":
                lens = lm_lens[r] if lm_lens else rep.get("ours", {}).get("lengths")
                rep[mode] = run(mode, idx, lens)
            elif mode == "unconstrained-free":
                rep[mode] = run("unconstrained-free", idx)
            else:
                rep[mode] = run(mode, idx)
        reps.append(rep)
        print(f"[engine {spec['name']} batch {spec['batch']}] rep {r}: " +
              ", ".join(f"{m} {v['tok_per_s']:.2f} tok/s {v['tok_per_cpu_s']:.2f} tok/cpu-s"
                        for m, v in rep.items()), file=sys.stderr, flush=True)
    timing.pop("last", None)
    return {"name": spec["name"], "batch": spec["batch"], "load_s": load_s, "reps": reps,
            "plugin_apply": dict(timing)}


# ------------------------------------------------------------------------------ driver side
def _run_engine(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    env.update({k: v for k, v in C.CPU_ENV.items() if k not in env})
    env["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    p = subprocess.run([sys.executable, __file__, "--engine", json.dumps(spec)], env=env, cwd=str(REPO),
                       stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"engine {spec['name']} failed (rc={p.returncode})")
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=C.MAX_TOKENS)
    ap.add_argument("--b1-requests", type=int, default=2, help="schemas run one at a time at batch 1")
    ap.add_argument("--batches", default="16,1")
    ap.add_argument("--quick", action="store_true", help="batch 16 only")
    ap.add_argument("--free", action="store_true", help="also unconstrained at natural length (engine A)")
    ap.add_argument("--engine-c", action="store_true",
                    help="also an engine without the plugin (the cost of merely installing it)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "vllm_throughput_cpu.json")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)

    if args.engine:
        res = _engine_main(json.loads(args.engine))
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    model = str(C.model_dir())
    batches = [int(b) for b in args.batches.split(",")]
    if args.quick:
        batches = [16]
    results = {"model": model, "engine_kw": C.ENGINE_KW, "max_tokens": args.max_tokens, "reps": args.reps,
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
    try:
        import platform

        import vllm  # noqa: F401

        results["versions"] = {"vllm": vllm.__version__, "python": platform.python_version()}
        import torch

        results["versions"]["torch"] = torch.__version__
        results["cpus"] = os.cpu_count()
        results["loadavg_start"] = os.getloadavg()
    except Exception:
        pass
    for batch in batches:
        idx = list(range(len(C.SCHEMAS))) * 2 if batch == 16 else list(range(args.b1_requests))
        base = {"model": model, "batch": batch, "indices": idx, "reps": args.reps, "max_tokens": args.max_tokens}
        modes_a = ["ours", "unconstrained", "xgrammar"] + (["unconstrained-free"] if args.free else [])
        a = _run_engine(dict(base, name="A", plugin=True, backend="xgrammar", modes=modes_a), args.timeout)
        lm = [rep["ours"]["lengths"] for rep in a["reps"]]
        b = _run_engine(dict(base, name="B", plugin=False, backend="guidance",
                             modes=["guidance", "unconstrained"], lm_lengths=lm), args.timeout)
        results["runs"] += [a, b]
        if args.engine_c:
            c = _run_engine(dict(base, name="C", plugin=False, backend=None, modes=["unconstrained"],
                                 lm_lengths=lm), args.timeout)
            results["runs"].append(c)
    results["loadavg_end"] = os.getloadavg()

    # table
    lines = [f"vLLM {results.get('versions', {}).get('vllm')} CPU, {os.cpu_count()} cores (shared), "
             f"SmolLM2-135M float32, greedy, max_tokens {args.max_tokens}, {args.reps} reps (median)",
             f"{'batch':>5} {'engine':>6} {'mode':<27} {'tok/s':>8} {'ratio':>6} {'tok/cpu-s':>9} {'ratio':>6} "
             f"{'mean len':>8} {'valid':>6}"]
    for run in results["runs"]:
        modes = run["reps"][0].keys()
        for m in modes:
            tps = [rep[m]["tok_per_s"] for rep in run["reps"]]
            ratio = [rep[m]["tok_per_s"] / rep["unconstrained"]["tok_per_s"] for rep in run["reps"]
                     if "unconstrained" in rep]
            tpc = [rep[m]["tok_per_cpu_s"] for rep in run["reps"]]
            ratio_c = [rep[m]["tok_per_cpu_s"] / rep["unconstrained"]["tok_per_cpu_s"] for rep in run["reps"]
                       if "unconstrained" in rep]
            mean_len = _median([statistics.mean(rep[m]["lengths"]) for rep in run["reps"]])
            valid = run["reps"][-1][m]["valid"]
            n = run["reps"][-1][m]["n"]
            label = {"unconstrained": "unconstrained (len-matched)"}.get(m, m)
            lines.append(f"{run['batch']:>5} {run['name']:>6} {label:<27} {_median(tps):>8.2f} "
                         f"{_median(ratio):>6.3f} {_median(tpc):>9.2f} {_median(ratio_c):>6.3f} "
                         f"{mean_len:>8.1f} {'' if valid is None else f'{valid}/{n}':>6}")
        pa = run.get("plugin_apply") or {}
        if pa.get("calls"):
            share = pa.get("seconds_in_periods", 0.0) / pa["period_seconds"] if pa.get("period_seconds") else float("nan")
            lines.append(f"{'':>5} {run['name']:>6} plugin apply(): {1e3 * pa['seconds'] / pa['calls']:.3f} ms/step "
                         f"(mean), {1e6 * pa['seconds'] / max(1, pa['rows']):.1f} us/row, "
                         f"{100 * share:.1f}% of the step time ({pa['calls']} steps)")
    table = "\n".join(lines)
    print(table)
    results["table"] = table
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"written: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
