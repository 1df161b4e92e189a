#!/usr/bin/env python
"""Context-free grammars (issue 3): per-token mask time and compile time on json and arithmetic,
ours beside xgrammar and llguidance on equivalent grammars, in one run.

Grammars (the repository's files, ``constrain/grammars/<name>.{lark,gbnf}``):

- constrain: ``<name>.lark`` as is, ``Compiler.compile_lark``.
- llguidance: the same ``<name>.lark`` text through ``LLMatcher.grammar_from_lark`` (its Lark
  dialect), with one adaptation: llguidance applies ``%ignore`` only *between* two tokens, never
  before the first or after the last one (guidance-ai/llguidance#123, #233), whereas Lark ignores
  the terminal anywhere. The start rule is therefore renamed and wrapped as
  ``start: WS? <old start> WS?`` (``WS`` = the grammar's ``%ignore``d terminal), which restores
  Lark's language. The text llguidance received is written to the .json.
- xgrammar: ``<name>.gbnf`` (written by hand to the same language as the .lark file, whitespace
  placed explicitly where ``%ignore`` allows it) through ``GrammarCompiler.compile_grammar`` (its
  EBNF; start rule ``root``), unchanged.

Equivalence is checked, not assumed: besides every engine accepting every input, each input gets
``--mutants`` seeded character-level mutations (delete / insert / replace a character, truncate,
add leading or trailing whitespace) and every engine says whether it accepts each mutant (tokens
accepted one by one, then ``is_accepting``); any disagreement between engines is reported.

Inputs (the same token ids for every engine: the Hugging Face tokenizer's canonical encoding,
``add_special_tokens=False``):

- json: ``--n`` seeded valid test instances of JSONSchemaBench (one per randomly chosen schema file
  of ``maskbench/``), serialized with ``json.dumps(x)`` (default separators, ASCII);
- arithmetic: ``--n`` seeded random sentences of arithmetic.lark
  (``constrain.cfg.sampler.sample_sentence`` over the grammar's IR when that module exists,
  otherwise this script's own expression generator; the report says which).

Each engine is driven token by token over every input: every mask fill is timed
(``perf_counter_ns``), the mask must allow the input's token and the engine must accept it
(otherwise the input counts as rejected: a correctness problem, reported), and after the last
token one more mask is filled (timed too: the one that allows EOS) and the engine must be in an
accepting state. Compile time = the engine's first compile of the grammar, in a fresh worker
process per (engine, grammar) (``jsonschemabench.worker``: isolated, time- and memory-limited);
per-tokenizer preparation (our vocabulary tables, xgrammar's ``TokenizerInfo``, llguidance's
tokenizer) and module imports (lark's, for ours) are done before, at worker setup, and reported as
setup. The compiles that follow in the same process (``--compile-repeats``; ours with the
Compiler's grammar cache cleared) are reported as "recompile" (median): a single first compile on
a shared machine is noisy.

Every engine makes two passes with the same compiled grammar (``--passes``): the first over the
inputs, the second over as many *new* inputs drawn the same way (a peer whose first pass takes
over ``--max-pass-s``, xgrammar on json.gbnf at tens of ms per mask, skips it). The first pass is
the headline figure. Ours keeps, per compiled grammar, the token sets of lexical paths and
hash-consed parser charts with their masks (a bounded table): new inputs in the second pass show
those caches warm, as a long-running server sees them, without replaying identical prefixes
(which our chart table would answer from cache). Ratios are engine ÷ ours on the same
pass (> 1: we are faster). After a rejection the engine's grammar object is rebuilt (untimed):
llguidance's ``reset()`` does not clear its error state.

For json, a reference row runs xgrammar's own built-in JSON grammar (hand-tuned with lookahead
assertions) over the same inputs: NOT an equivalent grammar (top level object or array only, no
whitespace before the value), shown to tell the cost of xgrammar's engine from the cost of the
grammar's form; it is left out of the equivalence check and of the comparisons (``--no-reference``
drops it).

    .venv/bin/python benchmarks/cfg_masks.py                         # llama3.2, n=100, 3 engines
    .venv/bin/python benchmarks/cfg_masks.py --tokenizers smollm2,llama3.2 --limit 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench_common import tokenizer_path  # noqa: E402
from bench_common import fmt_ms as _ms, fmt_num as _f, fmt_ratio as _ratio  # noqa: E402
import numpy as np  # noqa: E402

GRAMMARS = ("json", "arithmetic")
ENGINE_DIALECT = {"constrain": "lark", "llguidance": "lark", "xgrammar": "gbnf"}
DATA_DIRS = [os.path.join(ROOT, "..", "shared", "jsonschemabench"), "/work/shared/jsonschemabench"]
MODULE = os.path.splitext(os.path.basename(__file__))[0]
REFERENCE = "xgrammar-builtin-json"
REFERENCE_NOTE = ("reference only, NOT an equivalent grammar: xgrammar's hand-tuned JSON grammar "
                  "(lookahead assertions; top level object or array only; no whitespace before the "
                  "value); excluded from the equivalence check and from 'best peer'")


# -- code snapshot -------------------------------------------------------------------------------

def snapshot_constrain() -> dict:
    """Copy ``constrain/`` to a temporary folder first on ``sys.path`` (the spawned workers inherit
    it), so that every worker of the run runs the same code while others edit the working tree."""
    import hashlib

    def git(*a):
        try:
            return subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True,
                                  timeout=30).stdout.rstrip()
        except Exception:
            return ""

    head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--", "constrain")
    dirty = "\n".join(line.strip() for line in dirty.splitlines())
    dst = tempfile.mkdtemp(prefix="cfg_masks_code_")
    shutil.copytree(os.path.join(ROOT, "constrain"), os.path.join(dst, "constrain"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(os.path.join(dst, "constrain"))):
        dirs.sort()
        for f in sorted(files):
            with open(os.path.join(base, f), "rb") as fh:
                h.update(f.encode() + b"\0" + fh.read())
    sys.path.insert(0, dst)
    return {"dir": dst, "commit": head, "uncommitted": dirty.splitlines(), "sha256": h.hexdigest()[:16]}


# -- grammars ------------------------------------------------------------------------------------

def grammar_text(name: str, dialect: str) -> tuple[str, str]:
    """(text, where from) of the repository's grammar ``name`` in ``dialect``."""
    try:
        from constrain.grammars import load  # type: ignore

        text = load(name, dialect)
        if isinstance(text, str):
            return text, f"constrain.grammars.load({name!r}, {dialect!r})"
    except (ImportError, AttributeError, TypeError):
        pass
    import constrain

    path = os.path.join(os.path.dirname(constrain.__file__), "grammars", f"{name}.{dialect}")
    with open(path, encoding="utf-8") as f:
        return f.read(), os.path.relpath(path, ROOT)


def llguidance_lark(text: str) -> tuple[str, str | None]:
    """Our Lark text adapted to llguidance's dialect (see the module docstring), and a note."""
    ignored = re.findall(r"(?m)^\s*%ignore\s+([A-Z_][A-Z0-9_]*)\s*$", text)
    if not ignored:
        return text, None
    if len(ignored) > 1:
        raise SystemExit(f"llguidance adaptation: several %ignore terminals {ignored}; extend the script")
    new, n = re.subn(r"(?m)^(\??)start(\s*):", r"\1llg_start__\2:", text)
    if n != 1:
        raise SystemExit("llguidance adaptation: no single 'start:' rule to wrap")
    ws = ignored[0]
    new = new.rstrip("\n") + (
        f"\n\n// added for llguidance, which applies %ignore only between tokens\n"
        f"start: {ws}? llg_start__ {ws}?\n")
    note = (f"llguidance: start wrapped as `start: {ws}? <start> {ws}?` (llguidance ignores "
            f"%ignore'd text only between tokens, not before the first or after the last)")
    return new, note


def engine_grammar(engine: str, name: str) -> dict:
    dialect = ENGINE_DIALECT[engine]
    text, src = grammar_text(name, dialect)
    note = None
    if engine == "llguidance":
        text, note = llguidance_lark(text)
    return {"text": text, "dialect": dialect, "source": src, "note": note}


# -- inputs --------------------------------------------------------------------------------------

def data_dir(path: str | None) -> str:
    for d in ([path] if path else DATA_DIRS):
        if d and os.path.isdir(os.path.join(d, "maskbench")):
            return os.path.join(d, "maskbench")
        if d and os.path.isdir(d) and path:
            return d
    raise SystemExit(f"JSONSchemaBench data not found in {DATA_DIRS} (use --data)")


def json_inputs(n: int, rng: random.Random, path: str | None, max_chars: int) -> tuple[list[str], str]:
    d = data_dir(path)
    files = sorted(f for f in os.listdir(d) if f.endswith(".json"))
    order = rng.sample(files, len(files))
    out = []
    for f in order:
        if len(out) >= n:
            break
        with open(os.path.join(d, f), encoding="utf-8") as fh:
            tests = json.load(fh).get("tests") or []
        valid = [json.dumps(t["data"]) for t in tests if t.get("valid")]
        valid = [s for s in valid if len(s) <= max_chars]
        if valid:
            out.append(rng.choice(valid))
    return out, (f"{len(out)} valid test instances of {os.path.relpath(d, ROOT) if d.startswith(ROOT) else d}, "
                 f"one per randomly chosen schema file, json.dumps (≤ {max_chars} chars)")


def _own_arith(rng: random.Random, depth: int = 0) -> str:
    def ws():
        return rng.choice(["", "", "", " ", " ", "  ", "\n", "\t "])

    def number():
        s = str(rng.randint(0, 10 ** rng.randint(1, 6)))
        if rng.random() < 0.3:
            s += "." + str(rng.randint(0, 10 ** rng.randint(1, 4)))
        return s

    def factor(d):
        r = rng.random()
        if r < 0.1:
            return "-" + ws() + factor(d)
        if r < 0.35 and d < 4:
            return "(" + ws() + expr(d + 1) + ws() + ")"
        return number()

    def term(d):
        s = factor(d)
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            s += ws() + rng.choice("*/") + ws() + factor(d)
        return s

    def expr(d):
        s = term(d)
        for _ in range(rng.choice([0, 1, 1, 2, 3, 4])):
            s += ws() + rng.choice("+-") + ws() + term(d)
        return s

    return ws() + expr(depth) + ws()


def arithmetic_inputs(n: int, rng: random.Random, lark_text: str, max_chars: int) -> tuple[list[str], str]:
    try:
        from constrain.cfg.lark_frontend import parse_lark
        from constrain.cfg.sampler import sample_sentence  # type: ignore

        ir = parse_lark(lark_text)
        gen, how = (lambda: sample_sentence(ir, rng)), "constrain.cfg.sampler.sample_sentence over arithmetic.lark's IR"
    except ImportError:
        gen, how = (lambda: _own_arith(rng)), "this script's own expression generator (constrain.cfg.sampler not found)"
    out, tries = [], 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        s = gen()
        if isinstance(s, bytes):
            s = s.decode("utf-8")
        if 0 < len(s) <= max_chars:
            out.append(s)
    return out, f"{len(out)} seeded random sentences from {how} (≤ {max_chars} chars)"


MUTATION_CHARS = {"json": list('{}[],:"\\ 0123456789.eE+-truefalsn\n\tx\u00e9'),
                  "arithmetic": list("0123456789.+-*/() \n\tx")}


def mutants(s: str, rng: random.Random, k: int, alphabet: list[str]) -> list[str]:
    out = []
    for _ in range(k):
        op = rng.choice(["delete", "insert", "replace", "truncate", "lead", "trail"])
        i = rng.randrange(len(s) + 1)
        if op == "delete" and s:
            i = min(i, len(s) - 1)
            m = s[:i] + s[i + 1:]
        elif op == "replace" and s:
            i = min(i, len(s) - 1)
            m = s[:i] + rng.choice(alphabet) + s[i + 1:]
        elif op == "truncate":
            m = s[:i]
        elif op == "lead":
            m = rng.choice([" ", "\n", " \t"]) + s
        elif op == "trail":
            m = s + rng.choice([" ", "\n", "\r\n"])
        else:
            m = s[:i] + rng.choice(alphabet) + s[i:]
        out.append(m)
    return out


# -- worker side ---------------------------------------------------------------------------------

def worker_init(args: dict):
    from jsonschemabench.engines import make_adapter, spec_of
    from jsonschemabench.tokenizers import load_tokenizer

    tok = load_tokenizer(args["tokenizer"])
    t0 = time.perf_counter()
    adapter = make_adapter(spec_of(args["engine"]), tok)
    if args["engine"] == "constrain":
        # module imports (lark among them) and the per-vocabulary tables of the CFG engine (built
        # once per process, like the peers' tokenizer info) belong to setup, not to the first
        # grammar's compile; the peers' packages are imported by their adapters' setup too
        import constrain.cfg.gbnf  # noqa: F401
        import constrain.cfg.lark_frontend  # noqa: F401
        from constrain.token_index import token_ends_for

        token_ends_for(adapter._compiler.vocab)
    setup_s = time.perf_counter() - t0

    def handle(task, emit):
        if task.get("op") == "setup":
            import constrain

            return {"setup_s": setup_s, "n_words": adapter.n_words, "eos": adapter.eos_token_ids,
                    "constrain_file": constrain.__file__}
        return run_grammar(adapter, task, emit)

    return handle


def run_grammar(adapter, task, emit) -> dict:
    from jsonschemabench.engines.base import mask_allows

    def compile_():
        if task.get("builtin_json"):
            return adapter.compile_builtin_json_grammar()
        return adapter.compile_grammar(task["text"], task["dialect"])

    pc = time.perf_counter_ns
    a = pc()
    try:
        g = compile_()
    except Exception as e:
        return {"status": "compile_error", "error": f"{type(e).__name__}: {e}"[:1000]}
    compile_us = (pc() - a) / 1000
    emit("compiled")
    eos = list(adapter.eos_token_ids)
    passes = []
    skipped = None
    import gc

    gc_log: list[tuple[int, float]] = []  # (generation, ms) of Python's cyclic collections

    def gc_cb(phase, info, _t=[0.0]):
        if phase == "start":
            _t[0] = time.perf_counter()
        else:
            gc_log.append((info["generation"], (time.perf_counter() - _t[0]) * 1000))

    gc.callbacks.append(gc_cb)
    for pi in range(task["passes"]):
        if pi > 0 and task.get("max_pass_s") and passes[0]["wall_s"] > task["max_pass_s"]:
            skipped = (f"passes after the first skipped: the first took {passes[0]['wall_s']:.0f}s "
                       f"(> --max-pass-s {task['max_pass_s']:g})")
            break
        t0 = time.perf_counter()
        del gc_log[:]
        times: list[float] = []
        per_input = []
        for k, ids in enumerate(task["inputs"][pi]):
            g.reset()
            start = len(times)
            problem = None
            for j, t in enumerate(ids):
                a = pc()
                g.fill_mask()
                times.append((pc() - a) / 1000)
                if not mask_allows(g.mask, t):
                    problem = {"at": j, "token": t, "kind": "mask disallows"}
                    break
                if not g.accept_token(t):
                    problem = {"at": j, "token": t, "kind": "accept_token failed"}
                    break
            end_ok = eos_ok = None
            if problem is None:
                a = pc()
                g.fill_mask()
                times.append((pc() - a) / 1000)
                eos_ok = any(mask_allows(g.mask, e) for e in eos) if eos else None
                end_ok = bool(g.is_accepting())
            else:
                g = compile_()  # llguidance's reset() does not clear its error state
            seg = times[start:]
            per_input.append({"tokens": len(ids), "masks": len(seg),
                              "mean": float(np.mean(seg)) if seg else None,
                              "max": float(np.max(seg)) if seg else None,
                              "rejected": problem, "accepting_at_end": end_ok, "eos_allowed_at_end": eos_ok})
        passes.append({"times": times, "inputs": per_input, "wall_s": time.perf_counter() - t0,
                       "gc": {"collections": [sum(1 for g_, _ in gc_log if g_ == k) for k in range(3)],
                              "ms": [sum(d for g_, d in gc_log if g_ == k) for k in range(3)],
                              "max_ms": max((d for _, d in gc_log), default=0.0)}})
    gc.callbacks.remove(gc_cb)
    verdicts = []
    for ids in task.get("mutants", []):
        g.reset()
        ok = all(g.accept_token(t) for t in ids)
        verdicts.append(bool(ok and g.is_accepting()))
        if not ok:
            g = compile_()  # (see above)
    again = []
    for _ in range(task.get("compile_repeats", 0)):
        cache = getattr(getattr(adapter, "_compiler", None), "_cache", None)
        if isinstance(cache, dict):
            cache.clear()  # ours: Compiler's grammar cache (the peers' adapters keep none)
        a = pc()
        compile_()
        again.append((pc() - a) / 1000)
    return {"status": "ok", "compile_us": compile_us, "passes": passes, "mutant_accepts": verdicts,
            "skipped": skipped, "compile_again_us": again}


# -- parent side ---------------------------------------------------------------------------------

def stats(times: list[float]) -> dict:
    if not times:
        return {"masks": 0}
    arr = np.asarray(times)
    return {"masks": int(arr.size), "mean": float(arr.mean()), "p50": float(np.percentile(arr, 50)),
            "p90": float(np.percentile(arr, 90)), "p99": float(np.percentile(arr, 99)),
            "max": float(arr.max()), "total_ms": float(arr.sum() / 1000)}


def summarize_pass(p: dict) -> dict:
    s = stats(p["times"])
    s["inputs"] = len(p["inputs"])
    s["rejected"] = [dict(r["rejected"], input=k) for k, r in enumerate(p["inputs"]) if r["rejected"]]
    s["not_accepting_at_end"] = [k for k, r in enumerate(p["inputs"])
                                 if r["rejected"] is None and not r["accepting_at_end"]]
    s["eos_not_allowed_at_end"] = [k for k, r in enumerate(p["inputs"])
                                   if r["rejected"] is None and r["eos_allowed_at_end"] is False]
    s["per_input"] = p["inputs"]
    s["wall_s"] = p["wall_s"]
    s["gc"] = p["gc"]
    s["times_us"] = [round(t, 2) for t in p["times"]]  # every mask fill, in order
    return s


def run(args, tname: str, log_path: str) -> dict:
    from jsonschemabench.engines import canonical, is_available
    from jsonschemabench.tokenizers import load_tokenizer
    from jsonschemabench.worker import IsolatedWorker, WorkerStartError

    tpath = tokenizer_path(tname)
    tok = load_tokenizer(tpath)
    engines = [canonical(e) for e in args.engines.split(",")]
    report = {"tokenizer": tname, "tokenizer_path": tpath, "vocab": len(tok), "grammars": {}}
    for gname in args.grammars.split(","):
        rng = random.Random(f"{args.seed}:{gname}")
        lark_text, _ = grammar_text(gname, "lark")
        if gname == "json":
            inputs, how = json_inputs(args.n, rng, args.data, args.max_chars)
        elif gname == "arithmetic":
            inputs, how = arithmetic_inputs(args.n, rng, lark_text, args.max_chars)
        else:
            raise SystemExit(f"no input generator for grammar {gname!r}")
        # inputs for the passes after the first: as many again, drawn the same way
        fresh_rng = random.Random(f"{args.seed}:{gname}:fresh")
        if gname == "json":
            fresh, _ = json_inputs(2 * args.n, fresh_rng, args.data, args.max_chars)
            fresh = [x for x in fresh if x not in set(inputs)][: args.n]
        else:
            fresh, _ = arithmetic_inputs(args.n, fresh_rng, lark_text, args.max_chars)
        if args.limit:
            inputs, fresh = inputs[: args.limit], fresh[: args.limit]
        ids = [list(tok.encode(s, add_special_tokens=False)) for s in inputs]
        fresh_ids = [list(tok.encode(s, add_special_tokens=False)) for s in fresh]
        mut_strings = [m for s in inputs for m in mutants(s, rng, args.mutants, MUTATION_CHARS[gname])]
        mut_ids = [list(tok.encode(s, add_special_tokens=False)) for s in mut_strings]
        g = report["grammars"][gname] = {
            "inputs": how, "n_inputs": len(inputs), "tokens": sum(map(len, ids)),
            "tokens_per_input": {"mean": float(np.mean([len(x) for x in ids])),
                                 "max": max(len(x) for x in ids)},
            "input_texts": inputs, "mutants": mut_strings, "engines": {}}
        print(f"[{tname}] {gname}: {len(inputs)} inputs, {g['tokens']} tokens, {len(mut_strings)} mutants",
              file=sys.stderr)
        runs = [(e, e) for e in engines]
        if gname == "json" and args.reference and "xgrammar" in engines:
            runs.append((REFERENCE, "xgrammar"))
        for eng, worker_engine in runs:
            ok, why = is_available(worker_engine)
            if not ok:
                g["engines"][eng] = {"status": "unavailable", "error": why}
                print(f"  {eng}: not available ({why})", file=sys.stderr)
                continue
            if eng == REFERENCE:
                eg = {"source": "xgrammar's built-in JSON grammar (Grammar.builtin_json_grammar())",
                      "note": REFERENCE_NOTE, "text": None, "dialect": None}
            else:
                eg = engine_grammar(eng, gname)
            rec = g["engines"][eng] = {"grammar_source": eg["source"], "grammar_note": eg["note"],
                                       "grammar_text": eg["text"], "dialect": eg["dialect"]}
            w = IsolatedWorker(f"{MODULE}:worker_init", {"tokenizer": tpath, "engine": worker_engine},
                               mem_limit_gb=args.mem_limit_gb, log_path=log_path, spare=False)
            try:
                setup = w.run({"op": "setup"}, [("setup", 900)])
                if setup.status != "ok":
                    raise WorkerStartError(f"{setup.status}: {setup.detail}")
                rec["setup_s"] = setup.payload["setup_s"]
                rec["constrain_file"] = setup.payload["constrain_file"]
                if args.snapshot and not rec["constrain_file"].startswith(args.snapshot_dir):
                    raise WorkerStartError(f"worker imported constrain from {rec['constrain_file']}, "
                                           f"not from the snapshot {args.snapshot_dir}")
                task = {"text": eg["text"], "dialect": eg["dialect"], "inputs": [ids] + [fresh_ids] * (args.passes - 1),
                        "passes": args.passes, "builtin_json": eng == REFERENCE,
                        "max_pass_s": None if eng == "constrain" else args.max_pass_s,
                        "mutants": [] if eng == REFERENCE else mut_ids,
                        "compile_repeats": args.compile_repeats}
                o = w.run(task, [("compile", args.timeout), ("masks", args.timeout)])
            except WorkerStartError as e:
                rec.update(status="error", error=str(e))
                print(f"  {eng}: worker failed: {e}", file=sys.stderr)
                continue
            finally:
                w.close()
            if o.status != "ok":
                rec.update(status=o.status, error=o.detail[-1500:], phase=o.phase)
            elif o.payload["status"] != "ok":
                rec.update(o.payload)
            else:
                rec.update(status="ok", compile_us=o.payload["compile_us"],
                           passes=[summarize_pass(p) for p in o.payload["passes"]],
                           mutant_accepts=o.payload["mutant_accepts"], skipped=o.payload["skipped"],
                           compile_again_us=o.payload["compile_again_us"])
            p1 = (rec.get("passes") or [{}])[0]
            print(f"  {eng:10s} {rec['status']:13s} setup {rec.get('setup_s', float('nan')):.1f}s "
                  f"compile {_ms(rec.get('compile_us'))} ms, mask mean {_f(p1.get('mean'))} µs "
                  f"p50 {_f(p1.get('p50'))} p99 {_f(p1.get('p99'))}, rejected {len(p1.get('rejected', []))}"
                  + (f" [{rec.get('error', '')[:200]}]" if rec["status"] != "ok" else ""), file=sys.stderr)
        g["disagreements"] = disagreements(g)
    return report


def disagreements(g: dict) -> list[dict]:
    verdicts = {e: r["mutant_accepts"] for e, r in g["engines"].items()
                if r.get("status") == "ok" and e != REFERENCE}
    out = []
    for i, m in enumerate(g["mutants"]):
        got = {e: v[i] for e, v in verdicts.items()}
        if len(set(got.values())) > 1:
            out.append({"mutant": m, "accepts": got})
    return out


# -- report --------------------------------------------------------------------------------------

def table(report: dict, ours: str = "constrain") -> str:
    out = []
    for pi, title in enumerate(["first pass over the inputs (headline: each engine's first run after compile)",
                                "second pass over new inputs (warm caches; same compiled grammar, "
                                "matcher reset)"]):
        out.append(f"\n### {report['tokenizer']} (vocab {report['vocab']:,}): {title}\n")
        head = ["grammar", "engine"] + (["compile (ms)", "recompile (ms)"] if pi == 0 else []) + [
            "mask mean (µs)", "p50", "p90", "p99", "max", "masks", "rejected", "not accepting at end"]
        head += (["compile ÷ ours"] if pi == 0 else []) + ["mean ÷ ours", "p50 ÷ ours", "p99 ÷ ours"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|:--|:--|" + "--:|" * (len(head) - 2))
        for gname, g in report["grammars"].items():
            base = g["engines"].get(ours)
            bp = base["passes"][pi] if base and base.get("status") == "ok" and len(base["passes"]) > pi else None
            for eng, r in g["engines"].items():
                label = eng + (" (ours)" if eng == ours else "")
                if eng == REFERENCE:
                    label = "xgrammar, built-in JSON grammar (reference, not equivalent)"
                if r.get("status") != "ok" or len(r.get("passes", [])) <= pi:
                    why = r.get("status", "?") if r.get("status") != "ok" else "first pass only (see notes)"
                    cells = [gname, label] + [why] + ["–"] * (len(head) - 3)
                    out.append("| " + " | ".join(cells) + " |")
                    continue
                p = r["passes"][pi]
                again = r.get("compile_again_us") or []
                cells = [gname, label] + ([_ms(r["compile_us"]), _ms(float(np.median(again)) if again else None)]
                                          if pi == 0 else []) + [
                    _f(p.get("mean")), _f(p.get("p50")), _f(p.get("p90")), _f(p.get("p99")), _f(p.get("max")),
                    f"{p['masks']:,}", f"{len(p['rejected'])}/{p['inputs']}",
                    f"{len(p['not_accepting_at_end'])}"]
                cells += ([_ratio(r["compile_us"], base and base.get("compile_us"))] if pi == 0 else [])
                cells += [_ratio(p.get(k), bp and bp.get(k)) for k in ("mean", "p50", "p99")]
                out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def verdicts(report: dict, ours: str = "constrain") -> list[str]:
    lines = []
    for gname, g in report["grammars"].items():
        base = g["engines"].get(ours)
        if not base or base.get("status") != "ok":
            lines.append(f"- {gname}: ours did not run ({base and base.get('status')})")
            continue
        peers = {e: r for e, r in g["engines"].items()
                 if e not in (ours, REFERENCE) and r.get("status") == "ok"}
        for pi in range(len(base["passes"])):
            b = base["passes"][pi]
            parts = []
            for k in (["compile_us"] if pi == 0 else []) + ["mean", "p50", "p99"]:
                mine = base["compile_us"] if k == "compile_us" else b[k]
                theirs = {}
                for e, r in peers.items():
                    if k == "compile_us":
                        theirs[e] = r["compile_us"]
                    else:
                        q = min(pi, len(r["passes"]) - 1)
                        theirs[e + ("" if q == pi else " (its pass 1)")] = r["passes"][q][k]
                if not theirs:
                    continue
                best = min(theirs, key=theirs.get)
                mark = "≤" if mine <= theirs[best] else ">"
                parts.append(f"compile ours {mine / 1000:.2f} ms {mark} {best} {theirs[best] / 1000:.2f} ms"
                             if k == "compile_us" else
                             f"{k} ours {_f(mine)} µs {mark} {best} {_f(theirs[best])} µs")
            lines.append(f"- {gname}, pass {pi + 1}{' (warm)' if pi else ''}: " + "; ".join(parts))
    return lines


def notes(report: dict) -> list[str]:
    lines = []
    for gname, g in report["grammars"].items():
        lines.append(f"- {gname} inputs: {g['inputs']}; {g['tokens']:,} tokens "
                     f"(mean {g['tokens_per_input']['mean']:.0f}, max {g['tokens_per_input']['max']} per input)")
        for eng, r in g["engines"].items():
            src = r.get("grammar_source", "?")
            lines.append(f"  - {eng}: grammar {src}" + (f"; {r['grammar_note']}" if r.get("grammar_note") else "")
                         + (f"; setup {r['setup_s']:.1f}s" if r.get("setup_s") is not None else ""))
            if r.get("status") != "ok":
                lines.append(f"    **{r.get('status')}**: {str(r.get('error', ''))[:600]}")
                continue
            again = r.get("compile_again_us") or []
            if again:
                lines.append(f"    compile: first {_ms(r['compile_us'])} ms; {len(again)} more in the same process: "
                             f"median {_ms(float(np.median(again)))} ms, min {_ms(min(again))} ms")
            gcs = []
            for p in r["passes"]:
                c, ms = p["gc"]["collections"], p["gc"]["ms"]
                share = sum(ms) / (p["total_ms"] or 1) * 100 if p.get("total_ms") else 0
                gcs.append(f"{c[2]} full ({ms[2]:,.0f} ms) + {c[0] + c[1]} young ({ms[0] + ms[1]:,.0f} ms), "
                           f"longest {p['gc']['max_ms']:,.0f} ms, total = {share:.0f}% of the summed mask time")
            lines.append("    Python GC during the passes: " + "; ".join(gcs))
            lines.append("    pass wall time: " + ", ".join(f"{p['wall_s']:.2f}s" for p in r["passes"])
                         + (f"; {r['skipped']}" if r.get("skipped") else ""))
            for pi, p in enumerate(r["passes"]):
                for rj in p["rejected"][:5]:
                    lines.append(f"    **REJECTED** (pass {pi + 1}) input {rj['input']} at token {rj['at']} "
                                 f"(id {rj['token']}): {rj['kind']}: {g['input_texts'][rj['input']][:120]!r}")
                if len(p["rejected"]) > 5:
                    lines.append(f"    ... {len(p['rejected']) - 5} more rejections")
                if p["not_accepting_at_end"]:
                    lines.append(f"    **not accepting at end** (pass {pi + 1}): inputs {p['not_accepting_at_end'][:20]}")
                if p["eos_not_allowed_at_end"]:
                    lines.append(f"    EOS not in the final mask (pass {pi + 1}): inputs {p['eos_not_allowed_at_end'][:20]}")
        d = g.get("disagreements", [])
        n = len(g["mutants"])
        ok_engines = [e for e, r in g["engines"].items() if r.get("status") == "ok" and e != REFERENCE]
        if n:
            acc = sum(g["engines"][ok_engines[0]]["mutant_accepts"]) if ok_engines else 0
            lines.append(f"  - equivalence check: {n} mutants ({acc} accepted by {ok_engines[0] if ok_engines else '?'}); "
                         f"engines disagree on {len(d)}")
            for x in d[:8]:
                lines.append(f"    - {x['mutant'][:100]!r}: {x['accepts']}")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizers", default="llama3.2")
    ap.add_argument("--engines", default="constrain,xgrammar,llguidance")
    ap.add_argument("--grammars", default=",".join(GRAMMARS))
    ap.add_argument("--n", type=int, default=100, help="inputs per grammar")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N inputs (development)")
    ap.add_argument("--max-chars", type=int, default=4000, help="longest input, in characters")
    ap.add_argument("--mutants", type=int, default=5, help="mutants per input for the equivalence check")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--compile-repeats", type=int, default=5,
                    help="compiles after the measured run (same process; ours with its grammar cache "
                         "cleared), reported as a median beside the first compile")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="JSONSchemaBench folder (holding maskbench/)")
    ap.add_argument("--max-pass-s", type=float, default=300.0,
                    help="a peer whose first pass takes longer skips the later passes (ours never does)")
    ap.add_argument("--no-reference", dest="reference", action="store_false",
                    help="leave out the reference row of xgrammar's built-in JSON grammar")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds for compile, and for masks")
    ap.add_argument("--mem-limit-gb", type=float, default=8.0)
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-snapshot", dest="snapshot", action="store_false",
                    help="run constrain from the working tree instead of a copy taken at the start")
    ap.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "cfg_masks.worker.log"))
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    code = snapshot_constrain() if args.snapshot else {}
    args.snapshot_dir = code.get("dir", "")
    cmd = ".venv/bin/python " + " ".join([os.path.relpath(os.path.abspath(__file__), ROOT)] + list(argv or sys.argv[1:]))
    for tname in args.tokenizers.split(","):
        t0 = time.perf_counter()
        load0 = os.getloadavg()
        report = run(args, tname, args.log)
        report["meta"] = {
            "command": cmd, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "host": platform.node(),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "loadavg_start": load0, "loadavg_end": os.getloadavg(),
            "versions": _versions(), "wall_s": time.perf_counter() - t0, "args": vars(args),
            "constrain_code": code}
        md = table(report)
        v = verdicts(report)
        nt = notes(report)
        m = report["meta"]
        text = "\n".join([
            f"# CFG mask benchmark ({tname})", "",
            f"Reproduce: {cmd}", "",
            f"{m['date']}; {m['cpus']} CPUs, load average {m['loadavg_start'][0]:.2f} at start, "
            f"{m['loadavg_end'][0]:.2f} at end (shared machine: timings are noisy); "
            + ", ".join(f"{k} {val}" for k, val in m["versions"].items()), "",
            (f"constrain: commit {code['commit']}"
             + (f" + uncommitted changes ({'; '.join(code['uncommitted'])})" if code["uncommitted"] else "")
             + f", snapshot at the start of the run (sources sha256 {code['sha256']})" if code
             else "constrain: working tree as found by each worker (--no-snapshot)"), "",
            "Compile = the engine's first compile of the grammar in a fresh worker process (per-tokenizer "
            "preparation done before, at setup); recompile = median of the compiles that follow in the same "
            "process (ours with its grammar cache cleared). Masks: one per input token plus the final one (EOS); "
            "µs per fill. Ratios = engine ÷ ours on the same pass (> 1: ours is faster). "
            "Ours keeps lexical-path token sets and hash-consed parser charts (with their masks) per "
            "compiled grammar; its second pass, over new inputs, shows those caches warm.",
            md, "", "## Ours against the best peer", *v, "", "## Notes", *nt, ""])
        print(text)
        base = os.path.join(args.out_dir, f"cfg_masks_{tname}")
        with open(base + ".txt", "w", encoding="utf-8") as f:
            f.write(text)
        with open(base + ".json", "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
        print(f"written to {base}.{{txt,json}} in {m['wall_s']:.0f}s (worker log {args.log})", file=sys.stderr)
    if code:
        shutil.rmtree(code["dir"], ignore_errors=True)
    return 0


def _versions() -> dict:
    from jsonschemabench.engines.base import package_version

    return {d: package_version(d) for d in ("xgrammar", "llguidance", "transformers", "numpy")}


if __name__ == "__main__":
    sys.exit(main())
