"""``python -m jsonschemabench <command>`` (also ``constrain bench <command>``).

Commands: maskbench, generate, validate, report, list.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

DEFAULT_TOKENIZER_CANDIDATES = ["../shared/tokenizers/llama3.2", "/work/shared/tokenizers/llama3.2"]


def _default_tokenizer() -> str:
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for c in DEFAULT_TOKENIZER_CANDIDATES:
        p = c if os.path.isabs(c) else os.path.normpath(os.path.join(repo, c))
        if os.path.isdir(p):
            return p
    return "meta-llama/Llama-3.2-1B-Instruct"


def _add_data_args(p):
    p.add_argument("--data", default=None,
                   help="data path: MaskBench dir/file, GitHub layout (data/<Subset>/*.json), parquet "
                        "file/dir, or JSON Schema Test Suite (default: ../shared/jsonschemabench)")
    p.add_argument("--layout", default="auto", choices=["auto", "maskbench", "github", "parquet", "test-suite"])
    p.add_argument("--extra", action="store_true", help="include maskbench_extra (BFCL, JME, ...)")
    p.add_argument("--split", default=None, help="parquet split (train/val/test)")
    p.add_argument("--subsets", default=None, help="comma-separated subsets (Github matches Github_*)")
    p.add_argument("--ids", default=None, help="comma-separated schema ids")
    p.add_argument("--limit", type=int, default=None, help="number of schemas, drawn with --seed")
    p.add_argument("--seed", type=int, default=0)


def _load_cases(args):
    from . import data

    cases = data.load(args.data, layout=args.layout, include_extra=args.extra, split=args.split)
    return data.select(cases, subsets=args.subsets.split(",") if args.subsets else None,
                       limit=args.limit, seed=args.seed,
                       ids=args.ids.split(",") if args.ids else None)


def _engines(s: str) -> list[str]:
    from .engines import canonical

    return [canonical(e) for e in s.split(",") if e.strip()]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="jsonschemabench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("maskbench", help="token-by-token mask checks of test instances (no model)")
    _add_data_args(p)
    p.add_argument("--engines", default="constrain,xgrammar,llguidance,outlines-core")
    p.add_argument("--tokenizer", default=None, help="HF tokenizer dir (default: Llama-3.2)")
    p.add_argument("--output", "-o", default=None, help="JSONL results (default results/maskbench-<tok>.jsonl)")
    p.add_argument("--report-dir", default=None, help="report directory (default: next to the output)")
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--compile-timeout", type=float, default=10.0, help="seconds (benchmark: 10)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per schema after compiling")
    p.add_argument("--mem-limit-gb", type=float, default=8.0,
                   help="address-space limit of a worker (RLIMIT_AS); imports need ~2-3 GiB")
    p.add_argument("--no-resume", action="store_true", help="start over instead of resuming")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--vocab-size", type=int, default=None, help="mask width if wider than the tokenizer")
    p.add_argument("--engine-options", default=None,
                   help='JSON: per-engine adapter options, e.g. \'{"constrain": {"json_options": '
                        '{"whitespace": "flexible"}}, "xgrammar": {"strict_mode": true}}\'')
    p.add_argument("--no-spare", action="store_true",
                   help="do not keep a warm replacement worker after the first timeout/crash")
    p.add_argument("--jobs", "-j", type=int, default=1,
                   help="engines run side by side (one worker each); default 1 = sequential, "
                        "the setting for timings")

    p = sub.add_parser("generate", help="generate with a model under each engine and validate")
    _add_data_args(p)
    p.add_argument("--engines", default="constrain,llguidance,unconstrained")
    p.add_argument("--model", default=None, help="local HF model dir (default: constrain's default model)")
    p.add_argument("--output", "-o", default=None)
    p.add_argument("--report-dir", default=None)
    p.add_argument("--no-report", action="store_true")
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--compile-timeout", type=float, default=40.0)
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per generation")
    p.add_argument("--mem-limit-gb", type=float, default=12.0)
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--few-shot", type=int, default=2, help="number of few-shot examples (0-2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the model's forward pass")

    p = sub.add_parser("validate", help="re-score saved generations (JSONL: schema id + output)")
    p.add_argument("outputs", help="JSONL with schema_id (or id) and output (or text) per line")
    _add_data_args(p)
    p.add_argument("--schema", default=None, help="validate every line against this schema file instead")
    p.add_argument("--write", default=None, help="write re-scored records to this JSONL")
    p.add_argument("--quiet", "-q", action="store_true")

    p = sub.add_parser("report", help="Markdown + PNG report from result JSONL files")
    p.add_argument("results", nargs="+")
    p.add_argument("--out", "-o", default=None, help="report directory (default: <first>-report/)")

    p = sub.add_parser("list", help="list engines and data subsets")
    _add_data_args(p)
    return ap


def _tok_label(path: str) -> str:
    return os.path.basename(os.path.normpath(path)) or "tokenizer"


def cmd_maskbench(args) -> int:
    from .maskbench import MaskbenchConfig, run_maskbench
    from .report import write_report

    cases = _load_cases(args)
    if not cases:
        print("no schemas selected", file=sys.stderr)
        return 2
    tok = args.tokenizer or _default_tokenizer()
    out = args.output or os.path.join("results", f"maskbench-{_tok_label(tok)}.jsonl")
    print(f"maskbench: {len(cases)} schemas, {sum(len(c['tests']) for c in cases)} instances, "
          f"engines {args.engines}, tokenizer {tok} -> {out}", file=sys.stderr)
    cfg = MaskbenchConfig(tokenizer=tok, output=out, engines=_engines(args.engines),
                          compile_timeout=args.compile_timeout, timeout=args.timeout,
                          mem_limit_gb=args.mem_limit_gb, resume=not args.no_resume,
                          progress=not args.no_progress, vocab_size=args.vocab_size, jobs=args.jobs, spare=not args.no_spare,
                          engine_options=json.loads(args.engine_options) if args.engine_options else None)
    records = run_maskbench(cases, cfg, log=lambda m: print(m, file=sys.stderr))
    if not args.no_report and records:
        rd = args.report_dir or os.path.splitext(out)[0] + "-report"
        _report_subset(records, out, rd)
    return 0


def _report_subset(records, src, rd):
    """Report on exactly the records of this run's selection (the file may hold more)."""
    from .report import write_report
    from .results import JsonlWriter

    os.makedirs(rd, exist_ok=True)
    sel = os.path.join(rd, "records.jsonl")
    if os.path.exists(sel):
        os.remove(sel)
    with JsonlWriter(sel) as w:
        for r in records:
            w.write(r)
    path = write_report([sel], rd)
    print(f"report: {path}", file=sys.stderr)


def cmd_generate(args) -> int:
    from .generate import GenerateConfig, run_generate

    cases = _load_cases(args)
    if not cases:
        print("no schemas selected", file=sys.stderr)
        return 2
    out = args.output or os.path.join("results", "generate.jsonl")
    cfg = GenerateConfig(model=args.model, output=out, engines=_engines(args.engines),
                         max_new_tokens=args.max_new_tokens, compile_timeout=args.compile_timeout,
                         timeout=args.timeout, mem_limit_gb=args.mem_limit_gb,
                         resume=not args.no_resume, progress=not args.no_progress,
                         few_shot=args.few_shot, threads=args.threads)
    records = run_generate(cases, cfg, log=lambda m: print(m, file=sys.stderr))
    if not args.no_report and records:
        _report_subset(records, out, args.report_dir or os.path.splitext(out)[0] + "-report")
    return 0


def cmd_validate(args) -> int:
    from .validate import validate_file

    return validate_file(args)


def cmd_report(args) -> int:
    from .report import write_report

    for p in args.results:
        if not os.path.exists(p):
            print(f"no such file: {p}", file=sys.stderr)
            return 2
    out = args.out or os.path.splitext(args.results[0])[0] + "-report"
    path = write_report(args.results, out)
    print(path)
    return 0


def cmd_list(args) -> int:
    from collections import Counter

    from .engines import ENGINES, is_available

    print("engines:")
    for name in ENGINES:
        ok, why = is_available(name)
        print(f"  {name:15s} {'available' if ok else 'missing: ' + why}")
    try:
        cases = _load_cases(args)
    except FileNotFoundError as e:
        print(e)
        return 1
    print(f"schemas: {len(cases)}")
    for s, n in sorted(Counter(c["subset"] for c in cases).items()):
        print(f"  {s:20s} {n}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return {"maskbench": cmd_maskbench, "generate": cmd_generate, "validate": cmd_validate,
            "report": cmd_report, "list": cmd_list}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
