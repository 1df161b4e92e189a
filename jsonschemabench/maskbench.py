"""MaskBench: no model. For each schema, compile it and feed every test instance token by token
through the engine's masks.

Protocol (the benchmark's, with an explicit end check): the instance is serialized with
``json.dumps(data, indent=None, ensure_ascii=False)`` and tokenized canonically
(``tokenizer.encode(text, add_special_tokens=False)``). At each step the engine fills its mask
(timed: this is the per-token mask time), the next token must be allowed by the mask, then it is
accepted (``accept_token`` must agree). After the last token the instance is accepted iff the
engine is in an accepting state (EOS would be allowed). Valid instances must be accepted; invalid
ones must be rejected somewhere. Compile time is the wall time of the engine's compile call.

Each engine runs in its own isolated worker (see :mod:`jsonschemabench.worker`), schema after
schema, under a compile deadline and a per-schema deadline and an address-space limit; a schema
that hangs is recorded as ``timeout``, one that kills the worker as ``crash``, and the run goes on
with a fresh worker. Results are appended to a JSONL file; re-running with the same output file
skips the (engine, schema) pairs already there (``--no-resume`` starts over).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

from .engines import is_available, spec_of, canonical
from .engines.base import CompileError, mask_allows
from .results import JsonlWriter, read_jsonl
from .worker import IsolatedWorker, WorkerStartError

MAX_FAILURES_KEPT = 4

#: MaskBench checks conformance: every engine runs in its schema-*compliant* mode, where
#: properties and items the schema allows are accepted (xgrammar's and our default "strict"
#: modes never generate undeclared properties, which is right for generation and wrong here).
#: ``--engine-options`` entries are merged over these.
MASKBENCH_ENGINE_OPTIONS = {
    "constrain": {"json_options": {"strict_properties": False, "property_order": "any"}},
    "xgrammar": {"strict_mode": False, "any_whitespace": True},
}


def engine_options_for(engine: str, user: dict | None) -> dict:
    opts = {k: (dict(v) if isinstance(v, dict) else v)
            for k, v in MASKBENCH_ENGINE_OPTIONS.get(engine, {}).items()}
    for k, v in ((user or {}).get(engine) or {}).items():
        if isinstance(v, dict) and isinstance(opts.get(k), dict):
            opts[k].update(v)
        else:
            opts[k] = v
    return opts


# ---------------------------------------------------------------------------------------- worker
def worker_init(args: dict):
    """Runs in the worker: load the tokenizer, set up the engine, return the task handler."""
    from .engines import make_adapter
    from .tokenizers import load_tokenizer

    tok = load_tokenizer(args["tokenizer"])
    adapter = make_adapter(args["engine_spec"], tok, vocab_size=args.get("vocab_size"),
                           eos_token_ids=args.get("eos_token_ids"), options=args.get("options"))

    def handle(task: dict, emit):
        return run_case(adapter, tok, task["case"], emit)

    return handle


def run_case(adapter, tok, case: dict, emit=lambda m: None) -> dict:
    pc = time.perf_counter_ns
    rec = {"kind": "maskbench", "schema_id": case["id"], "subset": case["subset"],
           "n_tests": len(case["tests"]), "n_valid": sum(1 for t in case["tests"] if t["valid"]),
           "relabelled": case.get("relabelled", 0)}
    t0 = pc()
    try:
        g = adapter.compile_json_schema(case["schema"])
    except MemoryError:
        raise  # the worker is at its limit: it must be replaced, not go on to the next schema
    except Exception as e:  # the adapter's CompileError, or anything the engine raised
        msg = str(e) if isinstance(e, CompileError) else f"{type(e).__name__}: {e}"
        rec.update(status="compile_error", compile_us=(pc() - t0) / 1000, error=msg[:1000])
        return rec
    rec["compile_us"] = (pc() - t0) / 1000
    emit("compiled")
    mask_us: list[float] = []
    accept_ns = 0
    valid_ok = invalid_ok = valid_rejected = invalid_accepted = exceptions = disagree = 0
    failures = []
    for i, test in enumerate(case["tests"]):
        text = json.dumps(test["data"], indent=None, ensure_ascii=False)
        tokens = tok.encode(text, add_special_tokens=False)
        accepted = True
        reason = None
        at = None
        try:
            g.reset()
            for k, t in enumerate(tokens):
                a = pc()
                g.fill_mask()
                b = pc()
                mask_us.append(round((b - a) / 1000, 2))
                if not mask_allows(g.mask, t):
                    accepted, reason, at = False, "token not allowed by the mask", k
                    break
                a = pc()
                ok = g.accept_token(t)
                accept_ns += pc() - a
                if not ok:
                    disagree += 1
                    accepted, reason, at = False, "mask allowed the token but accept_token refused it", k
                    break
            if accepted and not g.is_accepting():
                accepted, reason, at = False, "not in an accepting state at the end", len(tokens)
        except MemoryError:
            raise
        except Exception as e:
            exceptions += 1
            accepted, reason = False, f"exception {type(e).__name__}: {e}"[:300]
        if test["valid"]:
            if accepted:
                valid_ok += 1
            else:
                valid_rejected += 1
        else:
            if accepted:
                invalid_accepted += 1
                reason = "invalid instance accepted"
            else:
                invalid_ok += 1
        wrong = accepted != test["valid"]
        if wrong and len(failures) < MAX_FAILURES_KEPT:
            f = {"test": i, "valid": test["valid"], "reason": reason}
            if at is not None:
                f["at_token"] = at
                f["prefix"] = tok.decode(tokens[:at])[-60:]
                if at < len(tokens):
                    f["token"] = tok.decode([tokens[at]])
            failures.append(f)
    rec.update(valid_ok=valid_ok, invalid_ok=invalid_ok, valid_rejected=valid_rejected,
               invalid_accepted=invalid_accepted, exceptions=exceptions, mask_accept_disagree=disagree,
               accept_us_total=accept_ns / 1000, mask_us=mask_us)
    if failures:
        rec["failures"] = failures
    if valid_rejected:
        rec["status"] = "valid_rejected"
    elif invalid_accepted:
        rec["status"] = "invalid_accepted"
    else:
        rec["status"] = "pass"
    return rec


# ---------------------------------------------------------------------------------------- parent
@dataclass
class MaskbenchConfig:
    tokenizer: str
    output: str
    engines: list[str]
    compile_timeout: float = 10.0
    timeout: float = 60.0
    mem_limit_gb: float = 8.0
    resume: bool = True
    progress: bool = True
    vocab_size: int | None = None
    engine_options: dict | None = None
    jobs: int = 1
    spare: bool = True


def run_maskbench(cases: list[dict], cfg: MaskbenchConfig, log=print) -> list[dict]:
    """Run every engine on every case; returns all records of the output file for this tokenizer."""
    from .progress import bar

    engines = [canonical(e) for e in cfg.engines]
    tok_name = cfg.tokenizer if cfg.tokenizer.startswith("py:") else os.path.normpath(cfg.tokenizer)
    existing = read_jsonl(cfg.output) if cfg.resume else []
    if not cfg.resume and os.path.exists(cfg.output):
        os.remove(cfg.output)
    done = {(r.get("engine"), r.get("schema_id")) for r in existing
            if r.get("kind") == "maskbench" and r.get("tokenizer") == tok_name}
    todo = {e: [c for c in cases if (e, c["id"]) not in done] for e in engines}
    skipped = sum(len(cases) - len(v) for v in todo.values())
    if skipped:
        log(f"resume: {skipped} (engine, schema) results already in {cfg.output}")
    available = {}
    for e in engines:
        ok, why = is_available(e)
        available[e] = ok
        if not ok:
            log(f"engine {e}: not available ({why}); skipped")
    total = sum(len(todo[e]) for e in engines if available[e])
    pb = bar(total, desc="maskbench", enabled=cfg.progress)
    log_path = os.path.splitext(cfg.output)[0] + ".worker.log"
    t_start = time.perf_counter()
    lock = threading.Lock()
    counts = {e: {"pass": 0, "fail": 0} for e in engines}

    def run_engine(e: str, out: JsonlWriter):
        options = engine_options_for(e, cfg.engine_options)
        init_args = {"tokenizer": cfg.tokenizer, "engine_spec": spec_of(e),
                     "vocab_size": cfg.vocab_size, "options": options}
        w = IsolatedWorker("jsonschemabench.maskbench:worker_init", init_args,
                           mem_limit_gb=cfg.mem_limit_gb, log_path=log_path, spare=cfg.spare)
        try:
            w.ensure_started()
        except WorkerStartError as err:
            with lock:
                log(f"engine {e}: worker failed to start; skipped\n{err}")
                pb.update(len(todo[e]))
            return
        version = _engine_version(e)
        for case in todo[e]:
            try:
                o = w.run({"case": case}, [("compile", cfg.compile_timeout), ("masks", cfg.timeout)])
            except WorkerStartError as err:
                o = None
                rec = {"kind": "maskbench", "schema_id": case["id"], "subset": case["subset"],
                       "status": "crash", "phase": "start", "error": str(err)[:1000]}
            if o is not None:
                if o.status == "ok":
                    rec = o.payload
                else:
                    rec = {"kind": "maskbench", "schema_id": case["id"], "subset": case["subset"],
                           "n_tests": len(case["tests"]),
                           "status": "timeout" if o.status == "timeout" else "crash",
                           "phase": o.phase, "error": o.detail[:2000]}
                rec["wall_s"] = round(o.wall_s, 3)
            rec.update(engine=e, engine_version=version, tokenizer=tok_name)
            with lock:
                out.write(rec)
                counts[e]["pass" if rec["status"] == "pass" else "fail"] += 1
                pb.set_description(f"maskbench {e}", refresh=False)
                pb.set_postfix_str(f"{e}: {counts[e]['pass']} pass / {counts[e]['fail']} other",
                                   refresh=False)
                pb.update(1)
        w.close()

    run_list = [e for e in engines if available[e] and todo[e]]
    with JsonlWriter(cfg.output) as out:
        if cfg.jobs <= 1 or len(run_list) <= 1:
            for e in run_list:
                run_engine(e, out)
        else:  # engines side by side, one worker each (timings then share the CPU)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=cfg.jobs) as ex:
                for f in [ex.submit(run_engine, e, out) for e in run_list]:
                    f.result()
    pb.close()
    records = [r for r in read_jsonl(cfg.output)
               if r.get("kind") == "maskbench" and r.get("tokenizer") == tok_name]
    wanted = {c["id"] for c in cases}
    records = [r for r in records if r["schema_id"] in wanted and r["engine"] in engines]
    log(one_line_summary(records, time.perf_counter() - t_start))
    return records


def _engine_version(name: str) -> str:
    try:
        from .engines import load_class

        return load_class(spec_of(name)).version()
    except Exception:
        return "?"


def one_line_summary(records: list[dict], elapsed_s: float | None = None) -> str:
    from .metrics import maskbench_summary

    s = maskbench_summary(records)
    parts = []
    for e, v in s.items():
        p50 = v["mask_us"]["p50"]
        parts.append(f"{e} {v['pass']}/{v['schemas']} pass"
                     + (f", mask p50 {p50:.0f}µs" if p50 is not None else ""))
    head = f"maskbench done in {elapsed_s:.0f}s: " if elapsed_s is not None else "maskbench: "
    return head + "; ".join(parts)
