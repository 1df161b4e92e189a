"""MaskBench at byte level: every schema of ../shared/jsonschemabench, no tokenizer.

Each schema is compiled with ``Compiler.compile_json_schema`` over a 256-token vocabulary of single
bytes (so the compiled object, automaton or grammar, is the one a tokenizer would get, minus the
vocabulary work), in the exact-language options MaskBench uses (``strict_properties=False,
property_order="any"``). Each test instance, serialized with ``json.dumps(ensure_ascii=False)``, is
run through ``advance`` and judged by ``is_accepting``; its label is ``Draft202012Validator``'s
verdict (our semantics), as in ``python -m jsonschemabench maskbench``. A schema passes when it
compiles and every instance is classified right.

    python benchmarks/maskbench_bytes.py [--jobs 2] [--out results.jsonl]

Prints: schemas passing, compile errors by kind, valid instances rejected, invalid instances
accepted, and compile time p50/p90/p99/max (one process per job; the compiler's modules are
imported at start-up, not by the first compile, and objects loaded then are frozen out of the
garbage collector, and garbage is collected between schemas, untimed, as the
MaskBench workers do). Limits: 10 s to compile (the
benchmark's), 30 s for a schema's instances.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import multiprocessing as mp
import signal
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "jsonschemabench"
OPTIONS = {"strict_properties": False, "property_order": "any"}


class _Timeout(Exception):
    pass


def _alarm(*_):
    raise _Timeout


def files(data: Path) -> list[Path]:
    return sorted(data.glob("maskbench/*.json")) + sorted(data.glob("maskbench_extra/*.json"))


def run_part(args: tuple[Path, int, int]) -> list[dict]:
    data, part, parts = args
    import constrain
    import constrain.cfg.engine  # noqa: F401  (loaded at setup: the first compile would import them)
    import constrain.json_schema  # noqa: F401
    from constrain.vocab import Vocabulary
    from jsonschema import Draft202012Validator, FormatChecker

    vocab = Vocabulary([bytes([i]) for i in range(256)] + [None], eos_token_ids=[256])
    compiler = constrain.Compiler(vocab, cache_size=0)
    signal.signal(signal.SIGALRM, _alarm)
    gc.collect()
    gc.freeze()
    out = []
    for i, f in enumerate(files(data)):
        if i % parts != part:
            continue
        case = json.loads(f.read_text())
        rec: dict = {"file": f.name}
        signal.alarm(10)
        t0 = time.perf_counter()
        try:
            grammar = compiler.compile_json_schema(case["schema"], **OPTIONS)
            rec["compile_ms"] = (time.perf_counter() - t0) * 1000
            rec["warnings"] = list(grammar.warnings)
            signal.alarm(30)
            validator = Draft202012Validator(case["schema"], format_checker=FormatChecker())
            rec["valid_rejected"], rec["invalid_accepted"], rec["valid"], rec["tests"] = [], [], 0, 0
            for test in case["tests"]:
                text = json.dumps(test["data"], ensure_ascii=False)
                state = grammar.advance(grammar.initial_state(), text.encode())
                accepted = state is not None and grammar.is_accepting(state)
                valid = validator.is_valid(test["data"])
                rec["valid"] += valid
                rec["tests"] += 1
                if accepted != valid:
                    rec["valid_rejected" if valid else "invalid_accepted"].append(text[:300])
        except _Timeout:
            rec["error"] = "timeout"
        except constrain.ConstrainError as e:
            rec["error"] = f"{type(e).__name__}: {e}"[:300]
        except Exception as e:  # a crash: counted and shown, never hidden
            rec["error"] = f"crash {type(e).__name__}: {e}"[:300]
        finally:
            signal.alarm(0)
        out.append(rec)
        grammar = None
        gc.collect()  # untimed: this schema's cyclic garbage is not charged to the next compile
    return out


def summary(records: list[dict]) -> str:
    compiled = [r for r in records if "compile_ms" in r and "error" not in r]
    ms = sorted(r["compile_ms"] for r in compiled)
    q = lambda p: ms[min(len(ms) - 1, int(p * len(ms)))]  # noqa: E731
    passing = sum(1 for r in compiled if not r["valid_rejected"] and not r["invalid_accepted"])
    valid = sum(r.get("valid", 0) for r in records)
    invalid = sum(r.get("tests", 0) for r in records) - valid
    vr = sum(len(r.get("valid_rejected", [])) for r in records)
    ia = sum(len(r.get("invalid_accepted", [])) for r in records)
    errors = collections.Counter(r["error"].split(" at ")[0].split(":")[0] + _keyword(r["error"])
                                 for r in records if "error" in r)
    lines = [
        f"schemas: {len(records)}; passing {passing} ({100 * passing / len(records):.1f}%)",
        f"compile errors: {sum(errors.values())}: " + ", ".join(f"{k} {n}" for k, n in errors.most_common()),
        f"valid instances rejected: {vr} of {valid} ({100 * vr / max(valid, 1):.3f}%) in "
        f"{sum(1 for r in records if r.get('valid_rejected'))} schemas",
        f"invalid instances accepted: {ia} of {invalid}",
        f"compile time (ms): p50 {q(0.5):.2f}, p90 {q(0.9):.1f}, p99 {q(0.99):.1f}, max {ms[-1]:.0f}; "
        f"over 20 ms: {sum(1 for x in ms if x > 20)}",
    ]
    return "\n".join(lines)


def _keyword(error: str) -> str:
    return f" {error.split(chr(39))[1]}" if error.startswith("UnsupportedSchemaError") and "'" in error else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="JSONL, one record per schema")
    args = ap.parse_args(argv)
    if not files(args.data):
        print(f"no MaskBench files under {args.data}", file=sys.stderr)
        return 2
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        records = [r for part in pool.map(run_part, [(args.data, i, args.jobs) for i in range(args.jobs)])
                   for r in part]
    if args.out:
        args.out.write_text("".join(json.dumps(r) + "\n" for r in records))
    print(summary(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
