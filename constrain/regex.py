"""Lower character-level regex ASTs to byte-level terms.

Two encodings of characters are supported:

- ``RAW``: a character is its UTF-8 bytes (``compile_regex``: the output text *is* the string).
- ``JSON``: a character as it may appear inside a JSON string literal: raw UTF-8 (except ``"``,
  ``\\`` and control characters, which must be escaped), its short escape (``\\n``, ``\\"``, ``\\/``,
  ...), or ``\\u00XX`` for a control character: the forms ``json.dumps(..., ensure_ascii=False)``
  writes. With ``unicode_escapes=True``, ``\\uXXXX`` (either case; surrogate pairs beyond the BMP)
  for every character too, as ``ensure_ascii=True`` writes: every form JSON allows. Off by
  default because small models then wander into escape sequences.

Two match modes: ``fullmatch_term`` (the whole text matches, like ``re.fullmatch``) and
``search_term`` (a match anywhere, like ``re.search``, which is what JSON Schema's ``pattern``
means). Anchors are supported at the start and end of top-level branches, where they are anchors
in practice; elsewhere they raise ``RegexError``.
"""

from __future__ import annotations

import enum

from . import charset as cs
from .errors import RegexError
from .regex_parser import parse
from .terms import EPS, INF, TermStore


class Encoding(enum.Enum):
    RAW = "raw"
    JSON = "json"


_JSON_SHORT = {0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 8: b"\\b", 12: b"\\f", 10: b"\\n", 13: b"\\r",
               9: b"\\t"}
_CONTROLS = cs.normalize([(0, 0x1F)])
_MUST_ESCAPE = cs.union(_CONTROLS, cs.single(0x22), cs.single(0x5C))


class Lowering:
    """Builds terms in one ``TermStore``, memoizing character-set encodings."""

    def __init__(self, store: TermStore, *, unicode_escapes: bool = False):
        self.store = store
        self.unicode_escapes = unicode_escapes
        self._sets: dict[tuple, int] = {}
        self._chars: dict[tuple, int] = {}

    def charset(self, s: cs.CharSet, encoding: Encoding) -> int:
        key = (s, encoding)
        got = self._sets.get(key)
        if got is not None:
            return got
        st = self.store
        if encoding is Encoding.RAW:
            term = self._utf8(s)
        else:
            raw = self._utf8(cs.difference(s, _MUST_ESCAPE))
            short = [st.literal(_JSON_SHORT[cp]) for cp in _JSON_SHORT if cs.contains(s, cp)]
            escaped = s if self.unicode_escapes else cs.intersection(s, _CONTROLS)
            term = st.alt(raw, *short, self._u_escapes(escaped))
        self._sets[key] = term
        return term

    def char(self, cp: int, encoding: Encoding) -> int:
        """One code point (cached): the fast path for literal strings."""
        key = (cp, encoding)
        got = self._chars.get(key)
        if got is None:
            if encoding is Encoding.RAW or cp in _JSON_SHORT or cp < 0x20:
                got = self.charset(cs.single(cp), encoding)
            elif not self.unicode_escapes:
                got = self.store.literal(chr(cp).encode())
            else:
                got = self.store.alt(self.store.literal(chr(cp).encode()), self._u_escapes(((cp, cp),)))
            self._chars[key] = got
        return got

    def _utf8(self, s: cs.CharSet) -> int:
        st = self.store
        seqs = cs.utf8_sequences(s)
        return st.alt(*[st.seq(*[st.byte_range(lo, hi) for lo, hi in seq]) for seq in seqs])

    def _u_escapes(self, s: cs.CharSet) -> int:
        """``\\uXXXX`` (hex digits in either case) for the BMP code points of ``s``, and
        ``\\uD8XX\\uDCXX`` surrogate pairs for the others, as JSON writes them."""
        st = self.store
        out = []
        for lo, hi in cs.intersection(s, cs.normalize([(0, 0xFFFF)])):
            out.append(st.seq(st.literal(b"\\u"), self._hex4(lo, hi)))
        for lo, hi in cs.intersection(s, cs.normalize([(0x10000, cs.MAX_CODE_POINT)])):
            ha, la = divmod(lo - 0x10000, 1024)
            hb, lb = divmod(hi - 0x10000, 1024)
            if ha == hb:
                out.append(self._pair(ha, ha, la, lb))
                continue
            out.append(self._pair(ha, ha, la, 1023))
            if ha + 1 <= hb - 1:
                out.append(self._pair(ha + 1, hb - 1, 0, 1023))
            out.append(self._pair(hb, hb, 0, lb))
        return st.alt(*out)

    def _pair(self, h_lo: int, h_hi: int, l_lo: int, l_hi: int) -> int:
        st = self.store
        return st.seq(st.literal(b"\\u"), self._hex4(0xD800 + h_lo, 0xD800 + h_hi),
                      st.literal(b"\\u"), self._hex4(0xDC00 + l_lo, 0xDC00 + l_hi))

    def _hex4(self, lo: int, hi: int) -> int:
        """Four hex digits (either case) spelling a number in [lo, hi]."""
        st = self.store
        return st.alt(*[st.seq(*[_hex_digits(st, a, b) for a, b in seq]) for seq in _digit_ranges(lo, hi, 4)])

    # -- AST -> term ------------------------------------------------------------------------------
    def node(self, node: tuple, encoding: Encoding, pattern: str) -> int:
        st = self.store
        kind = node[0]
        if kind == "set":
            return self.charset(node[1], encoding)
        if kind == "cat":
            return st.seq(*[self.node(n, encoding, pattern) for n in node[1]])
        if kind == "alt":
            return st.alt(*[self.node(n, encoding, pattern) for n in node[1]])
        if kind == "rep":
            hi = INF if node[3] is None else node[3]
            return st.rep(self.node(node[1], encoding, pattern), node[2], hi)
        raise RegexError("anchors are supported only at the start or end of the pattern "
                         "(or of its top-level alternatives)", pattern, node[1])

    def fullmatch(self, pattern: str, encoding: Encoding = Encoding.RAW) -> int:
        """The term of strings ``s`` with ``re.fullmatch(pattern, s)``."""
        st = self.store
        return st.alt(*[self.node(core, encoding, pattern) for _, _, core in _branches(parse(pattern), pattern)])

    def search(self, pattern: str, encoding: Encoding = Encoding.JSON) -> int:
        """The term of strings ``s`` with ``re.search(pattern, s)``."""
        st = self.store
        anything = st.star(self.charset(cs.ANY, encoding))
        newline = self.charset(cs.single(10), encoding)
        out = []
        for start, end, core in _branches(parse(pattern), pattern):
            head = EPS if start else anything
            if end == "eos":
                tail = EPS
            elif end == "eol":  # Python's $: at the end, or before a newline that ends the string
                tail = st.opt(newline)
            else:
                tail = anything
            out.append(st.seq(head, self.node(core, encoding, pattern), tail))
        return st.alt(*out)


def _digit_ranges(lo: int, hi: int, width: int) -> list[list[tuple[int, int]]]:
    """Split [lo, hi] into sequences of per-digit ranges (base 16, fixed ``width``)."""
    if width == 1:
        return [[(lo, hi)]]
    base = 16 ** (width - 1)
    lo_d, lo_r = divmod(lo, base)
    hi_d, hi_r = divmod(hi, base)
    if lo_d == hi_d:
        return [[(lo_d, lo_d)] + seq for seq in _digit_ranges(lo_r, hi_r, width - 1)]
    out = []
    if lo_r != 0:
        out += [[(lo_d, lo_d)] + seq for seq in _digit_ranges(lo_r, base - 1, width - 1)]
        lo_d += 1
    tail = []
    if hi_r != base - 1:
        tail = [[(hi_d, hi_d)] + seq for seq in _digit_ranges(0, hi_r, width - 1)]
        hi_d -= 1
    if lo_d <= hi_d:
        out.append([(lo_d, hi_d)] + [(0, 15)] * (width - 1))
    return out + tail


def _hex_digits(st: TermStore, a: int, b: int) -> int:
    mask = 0
    for d in range(a, b + 1):
        for ch in {f"{d:x}", f"{d:X}"}:
            mask |= 1 << ord(ch)
    return st.byte_set(mask)


def _is_anchor(node: tuple) -> bool:
    return node[0] in ("bos", "eos", "eol")


def _has_anchor(node: tuple) -> bool:
    if _is_anchor(node):
        return True
    if node[0] in ("cat", "alt"):
        return any(_has_anchor(n) for n in node[1])
    if node[0] == "rep":
        return _has_anchor(node[1])
    return False


def _items(node: tuple) -> list[tuple]:
    return list(node[1]) if node[0] == "cat" else [node]


def _branches(node: tuple, pattern: str) -> list[tuple[bool, str | None, tuple]]:
    """Split the pattern into (anchored at start, end anchor, anchor-free core) branches."""
    if node[0] == "alt":
        return [b for n in node[1] for b in _branches(n, pattern)]
    items = _items(node)
    start = False
    while items and (items[0][0] == "bos"):
        start = True
        items.pop(0)
    end = None
    while items and items[-1][0] in ("eol", "eos"):
        end = "eos" if items[-1][0] == "eos" or end == "eos" else "eol"
        items.pop()
    # Distribute a leading or trailing group whose alternatives carry anchors: (^a|b)c -> ^ac | bc
    if items and items[0][0] == "alt" and _has_anchor(items[0]) and not start:
        rest = items[1:]
        tail = [("eos", -1)] if end == "eos" else [("eol", -1)] if end == "eol" else []
        return [b for alt in items[0][1] for b in _branches(("cat", tuple(_items(alt) + rest + tail)), pattern)]
    if items and items[-1][0] == "alt" and _has_anchor(items[-1]) and end is None:
        head = [("bos", -1)] if start else []
        rest = items[:-1]
        return [b for alt in items[-1][1] for b in _branches(("cat", tuple(head + rest + _items(alt))), pattern)]
    if items and items[0][0] == "cat" and _has_anchor(items[0]) or items and items[-1][0] == "cat" and _has_anchor(items[-1]):
        flat = []
        for it in items:
            flat.extend(_items(it) if it[0] == "cat" else [it])
        head = [("bos", -1)] if start else []
        tail = [("eos", -1)] if end == "eos" else [("eol", -1)] if end == "eol" else []
        return _branches(("cat", tuple(head + flat + tail)), pattern)
    core = ("cat", tuple(items))
    for it in items:
        _reject_anchors(it, pattern)
    return [(start, end, core)]


def _reject_anchors(node: tuple, pattern: str) -> None:
    if _is_anchor(node):
        raise RegexError("anchors are supported only at the start or end of the pattern "
                         "(or of its top-level alternatives)", pattern, node[1])
    if node[0] in ("cat", "alt"):
        for n in node[1]:
            _reject_anchors(n, pattern)
    elif node[0] == "rep":
        _reject_anchors(node[1], pattern)
