"""JSON Schema Test Suite (draft 2020-12, required tests) under the MaskBench protocol.

    python benchmarks/json_schema_test_suite.py [--tokenizer DIR] [--suite DIR] [--remotes DIR] [--out FILE.md]

For each case (a schema with its instances): either the compiler refuses it with
UnsupportedSchemaError (or SchemaError), or it compiles and every instance, serialized with
json.dumps, is fed token by token: a valid one must be accepted and an invalid one rejected.
The required tests treat ``format`` as an annotation, so formats are not asserted unless asked.
The suite's remote documents (``--remotes``) are passed as ``resources``, each under the URI
``http://localhost:1234/<its path>`` that the tests refer to.
Per keyword file: cases passing, refused, misclassified (with the instance counts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

import constrain

HERE = Path(__file__).resolve().parent.parent


def feed(grammar, tokenizer, text: str) -> bool:
    m = grammar.matcher()
    row = np.zeros(grammar.trie.num_words, dtype=np.int32)
    for tid in tokenizer.encode(text, add_special_tokens=False):
        m.fill_bitmask(row)
        if not (row[tid // 32] >> (tid % 32)) & 1 or not m.accept_token(tid):
            return False
    return m.is_accepting()


def load_remotes(root: Path) -> dict:
    """Every JSON document under ``root``, keyed by the URI the suite serves it at."""
    if not root.is_dir():
        return {}
    return {f"http://localhost:1234/{p.relative_to(root).as_posix()}": json.loads(p.read_text())
            for p in sorted(root.rglob("*.json"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", default=str(HERE.parent / "shared" / "tokenizers" / "llama3.2"))
    ap.add_argument("--suite", default=str(HERE.parent / "shared" / "json-schema-test-suite" / "tests" / "draft2020-12"))
    ap.add_argument("--remotes", default=str(HERE.parent / "shared" / "json-schema-test-suite" / "remotes"),
                    help="documents served at http://localhost:1234/ (passed as resources)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--format-assertion", action="store_true",
                    help="check formats (FormatChecker); the suite's required tests treat format as an annotation")
    args = ap.parse_args(argv)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    compiler = constrain.Compiler(tok)
    resources = load_remotes(Path(args.remotes))
    rows = []
    totals = dict(cases=0, passing=0, refused=0, wrong=0, valid_rejected=0, invalid_accepted=0, error=0)
    wrong_cases = []
    start = time.time()
    for path in sorted(Path(args.suite).glob("*.json")):
        groups = json.loads(path.read_text())
        r = dict(file=path.stem, cases=len(groups), passing=0, refused=0, wrong=0, error=0)
        for group in groups:
            try:
                # the exact language: json.dumps escapes non-ASCII, instances carry undeclared
                # members, in any order
                grammar = compiler.compile_json_schema(group["schema"], format_assertion=args.format_assertion,
                                                      unicode_escapes=True, strict_properties=False,
                                                      property_order="any", resources=resources)
            except (constrain.UnsupportedSchemaError, constrain.SchemaError):
                r["refused"] += 1
                continue
            except constrain.ConstrainError as exc:
                r["error"] += 1
                wrong_cases.append((path.stem, group["description"], f"error: {exc}"))
                continue
            ok = True
            for test in group["tests"]:
                got = feed(grammar, tok, json.dumps(test["data"]))
                if got != test["valid"]:
                    ok = False
                    key = "invalid_accepted" if got else "valid_rejected"
                    totals[key] += 1
                    wrong_cases.append((path.stem, group["description"], f"{key}: {json.dumps(test['data'])[:80]}"))
            r["passing" if ok else "wrong"] += 1
        rows.append(r)
        for k in ("cases", "passing", "refused", "wrong", "error"):
            totals[k] += r[k]
    lines = ["| file | cases | passing | refused | misclassified | error |", "|:--|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['cases']} | {r['passing']} | {r['refused']} | {r['wrong']} | {r['error']} |")
    t = totals
    lines.append(f"| **total** | {t['cases']} | {t['passing']} | {t['refused']} | {t['wrong']} | {t['error']} |")
    summary = (f"{t['passing']}/{t['cases']} cases pass ({100 * t['passing'] / max(t['cases'], 1):.1f}%), "
               f"{t['refused']} refused, {t['wrong']} misclassified "
               f"({t['invalid_accepted']} invalid instances accepted, {t['valid_rejected']} valid rejected), "
               f"{time.time() - start:.0f} s, tokenizer {Path(args.tokenizer).name}")
    text = "\n".join(lines) + "\n\n" + summary + "\n"
    if wrong_cases:
        text += "\nMisclassified:\n" + "\n".join(f"- {f}: {d}: {w}" for f, d, w in wrong_cases) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
