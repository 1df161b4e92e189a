"""Re-score saved generations: each JSONL line holds a schema id (``schema_id`` or ``id``) and the
output text (``output`` or ``text``); schemas come from the data set (``--data``) or from one
schema file (``--schema``). Validation is the benchmark's: ``json.loads`` as is, then
``Draft202012Validator(schema, format_checker=FormatChecker())``."""

from __future__ import annotations

import json
import os
import sys

from .generate import validate_output
from .results import JsonlWriter, read_jsonl


def rescore(records: list[dict], schemas: dict[str, object] | None = None, schema=None) -> list[dict]:
    out = []
    for r in records:
        sid = r.get("schema_id", r.get("id"))
        text = r.get("output", r.get("text"))
        s = schema if schema is not None else (schemas or {}).get(sid)
        r = dict(r)
        if s is None:
            r.update(valid=False, validation_error=f"unknown schema id {sid!r}")
        elif text is None:
            r.update(valid=False, validation_error="no output")
        elif r.get("kind") == "generate" and not r.get("compiled", True):
            r.update(valid=False, validation_error=r.get("validation_error", "not compiled"))
        else:
            ok, msg = validate_output(s, text)
            r["valid"] = ok
            r.pop("validation_error", None)
            if msg:
                r["validation_error"] = msg
        out.append(r)
    return out


def validate_file(args) -> int:
    if not os.path.exists(args.outputs):
        print(f"no such file: {args.outputs}", file=sys.stderr)
        return 2
    records = read_jsonl(args.outputs)
    schema = None
    schemas = None
    if args.schema:
        try:
            with open(args.schema, encoding="utf-8") as f:
                schema = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            print(f"cannot read schema {args.schema}: {e}", file=sys.stderr)
            return 2
    else:
        from . import data

        schemas = {c["id"]: c["schema"] for c in data.load(args.data, layout=args.layout,
                                                            include_extra=True, split=args.split)}
    res = rescore(records, schemas, schema)
    n_ok = sum(1 for r in res if r["valid"])
    if not args.quiet:
        for i, r in enumerate(res):
            sid = r.get("schema_id", r.get("id")) or f"line {i + 1}"
            eng = f"{r['engine']} " if "engine" in r else ""
            print(f"{eng}{sid}: {'valid' if r['valid'] else 'INVALID: ' + r.get('validation_error', '')}")
    changed = sum(1 for a, b in zip(records, res) if "valid" in a and a["valid"] != b["valid"])
    print(f"{n_ok}/{len(res)} valid" + (f" ({changed} changed from the file's own verdict)" if changed else ""))
    if args.write:
        with JsonlWriter(args.write) as w:
            for r in res:
                w.write(r)
    return 0 if n_ok == len(res) else 1
