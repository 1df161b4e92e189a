"""What the benchmark scripts share: where tokenizers are, and how figures are printed."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIRS = [os.path.join(ROOT, "..", "shared", "tokenizers"), "/work/shared/tokenizers"]


def tokenizer_path(name: str) -> str:
    """A tokenizer folder: ``name`` itself, or ``name`` under one of ``TOKENIZER_DIRS``."""
    if os.path.isdir(name):
        return name
    for d in TOKENIZER_DIRS:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(p, "tokenizer.json")):
            return p
    raise SystemExit(f"tokenizer {name!r} not found in {TOKENIZER_DIRS}")


def fmt_ms(us):
    """Microseconds printed as milliseconds."""
    if us is None:
        return "–"
    ms = us / 1000
    return f"{ms:.2f}" if ms < 10 else (f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}")


def fmt_num(x):
    return "–" if x is None else (f"{x:.1f}" if x < 1000 else f"{x:,.0f}")


def fmt_ratio(a, b):
    """``a ÷ b`` as ``1.2×``; a dash when either is missing."""
    if a is None or b is None or b <= 0:
        return "–"
    r = a / b
    return f"{r:.2g}×" if r < 10 else f"{r:,.0f}×"
