"""Sets of Unicode code points as sorted ranges, and their UTF-8 byte-sequence encodings.

A ``CharSet`` is an immutable tuple of disjoint, sorted, non-adjacent ``(lo, hi)`` inclusive ranges.
Surrogates (U+D800..U+DFFF) are never part of a set: they cannot be encoded in UTF-8.
"""

from __future__ import annotations

import functools
import re

from . import builtin_tables

CharSet = tuple[tuple[int, int], ...]

MAX_CODE_POINT = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)


def normalize(ranges) -> CharSet:
    """Sort and merge ranges, and cut out surrogates."""
    items = sorted((lo, hi) for lo, hi in ranges if lo <= hi)
    merged: list[list[int]] = []
    for lo, hi in items:
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    out: list[tuple[int, int]] = []
    for lo, hi in merged:
        for part in _cut(lo, hi, *SURROGATES):
            out.append(part)
    return tuple(out)


def _cut(lo: int, hi: int, cut_lo: int, cut_hi: int):
    if hi < cut_lo or lo > cut_hi:
        yield (lo, hi)
        return
    if lo < cut_lo:
        yield (lo, cut_lo - 1)
    if hi > cut_hi:
        yield (cut_hi + 1, hi)


def single(cp: int) -> CharSet:
    return normalize([(cp, cp)])


def union(*sets: CharSet) -> CharSet:
    return normalize([r for s in sets for r in s])


def complement(s: CharSet) -> CharSet:
    out = []
    prev = 0
    for lo, hi in s:
        if lo > prev:
            out.append((prev, lo - 1))
        prev = hi + 1
    if prev <= MAX_CODE_POINT:
        out.append((prev, MAX_CODE_POINT))
    return normalize(out)


def difference(a: CharSet, b: CharSet) -> CharSet:
    return intersection(a, complement(b))


def intersection(a: CharSet, b: CharSet) -> CharSet:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def is_subset(a: CharSet, b: CharSet) -> bool:
    """Whether every code point of ``a`` is in ``b`` (one merge walk, no new sets)."""
    j = 0
    for lo, hi in a:
        while j < len(b) and b[j][1] < lo:
            j += 1
        if j == len(b) or b[j][0] > lo or b[j][1] < hi:
            return False  # b's ranges are disjoint and not adjacent: one of them must hold lo..hi
    return True


def contains(s: CharSet, cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in s)


ANY: CharSet = normalize([(0, MAX_CODE_POINT)])


# Past U+3FFFF only tags, variation selectors and private use are assigned: none is a digit, a
# word character or a space (tests/test_charset.py checks this for the running Python).
_PREDICATE_LIMIT = 0x40000


_PREDICATE_PATTERNS = {"decimal": r"\d+", "word": r"\w+", "space": r"\s+"}


def code_point_text(limit: int = MAX_CODE_POINT + 1) -> str:
    """Code points ``0 .. limit-1`` as one string, where index i holds ``chr(i)`` (lone surrogates
    included): built at C speed (9 ms for all of Unicode, where a str per code point takes 110)."""
    import numpy as np

    return np.arange(limit, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")


@functools.lru_cache(maxsize=None)
def _predicate_set(name: str) -> CharSet:
    """Code points for which Python's ``re`` matches \\d, \\w or \\s in str patterns: ``re`` itself
    scans them, in C; each class is computed on its first use only, where the shipped tables do
    not apply."""
    shipped = builtin_tables.charset(name)
    if shipped is not None:
        return shipped
    text = code_point_text(_PREDICATE_LIMIT)
    return normalize((m.start(), m.end() - 1) for m in re.finditer(_PREDICATE_PATTERNS[name], text))


def digit() -> CharSet:
    return _predicate_set("decimal")


def word() -> CharSet:
    return _predicate_set("word")


def space() -> CharSet:
    return _predicate_set("space")


# --- UTF-8 -----------------------------------------------------------------------------------

_UTF8_BOUNDS = ((0, 0x7F), (0x80, 0x7FF), (0x800, 0xFFFF), (0x10000, MAX_CODE_POINT))


def utf8_sequences(s: CharSet) -> list[list[tuple[int, int]]]:
    """Encode a code-point set as a list of byte-range sequences (Russ Cox's construction).

    Each sequence is a list of inclusive byte ranges; the union of the sequences' languages is
    exactly the UTF-8 encoding of the set.

    >>> utf8_sequences(((0x41, 0x42),))
    [[(65, 66)]]
    """
    out: list[list[tuple[int, int]]] = []
    for lo, hi in s:
        for blo, bhi in _UTF8_BOUNDS:
            a, b = max(lo, blo), min(hi, bhi)
            if a <= b:
                _split(a, b, out)
    return out


def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8", "surrogatepass")


def _split(lo: int, hi: int, out: list) -> None:
    # lo..hi lie within one UTF-8 length class here.
    n = len(_encode(lo))
    if n == 1:
        out.append([(lo, hi)])
        return
    # Split so that every sequence is a product of byte ranges.
    for i in range(1, n):
        m = (1 << (6 * i)) - 1
        if lo & ~m != hi & ~m:
            if lo & m != 0:
                _split(lo, lo | m, out)
                _split((lo | m) + 1, hi, out)
                return
            if hi & m != m:
                _split(lo, (hi & ~m) - 1, out)
                _split(hi & ~m, hi, out)
                return
    a, b = _encode(lo), _encode(hi)
    out.append([(a[k], b[k]) for k in range(n)])


# --- IGNORECASE --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def case_sensitive() -> CharSet:
    """Code points whose matching ``re.IGNORECASE`` can change: the cased ones (simple lower or
    upper mapping differs), their lowercase forms, and ``re``'s extra case equivalences.

    Any other character has itself as lower and upper case, so ``re`` matches it under
    IGNORECASE exactly as without (its compiler only lowers the character and the pattern).
    """
    shipped = builtin_tables.charset("case_sensitive")
    if shipped is not None:
        return shipped
    import _sre

    try:
        from re._casefix import _EXTRA_CASES  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        from sre_compile import _ignorecase_fixes as _EXTRA_CASES

    points = set()
    # A block of code points that lower() and upper() leave as they are holds no cased one (the
    # full case mappings change every character whose simple mapping does): most blocks are skipped.
    text = code_point_text()
    for start in range(0, len(text), 256):
        block = text[start:start + 256]
        if block.lower() == block and block.upper() == block:
            continue
        for cp in range(start, start + len(block)):
            if _sre.unicode_iscased(cp):
                points.update((cp, _sre.unicode_tolower(cp)))
    for cp, others in _EXTRA_CASES.items():
        points.update((cp, *others))
    return normalize((cp, cp) for cp in points)
