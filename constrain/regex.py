"""Lower character-level regex ASTs to byte-level terms.

Two encodings of characters are supported:

- ``RAW``: a character is its UTF-8 bytes (``compile_regex``: the output text *is* the string).
- ``JSON``: a character as it may appear inside a JSON string literal: raw UTF-8, except that
  ``"``, ``\\`` and control characters must be escaped (short escapes such as ``\\n``, or ``\\u00XX``
  for controls; ``\\/`` is accepted for ``/``). This is the set of forms ``json.dumps`` produces,
  with ``ensure_ascii=False``; ``\\uXXXX`` escapes of printable characters are not generated.

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
_MUST_ESCAPE = cs.union(cs.normalize([(0, 0x1F)]), cs.single(0x22), cs.single(0x5C))


class Lowering:
    """Builds terms in one ``TermStore``, memoizing character-set encodings."""

    def __init__(self, store: TermStore):
        self.store = store
        self._sets: dict[tuple, int] = {}

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
            escapes = []
            for lo, hi in cs.intersection(s, cs.normalize([(0, 0x7F)])):
                for cp in range(lo, hi + 1):
                    if cp in _JSON_SHORT:
                        escapes.append(st.literal(_JSON_SHORT[cp]))
                    if cp < 0x20:
                        escapes.append(self._u_escape(cp))
            term = st.alt(raw, *escapes)
        self._sets[key] = term
        return term

    def _utf8(self, s: cs.CharSet) -> int:
        st = self.store
        seqs = cs.utf8_sequences(s)
        return st.alt(*[st.seq(*[st.byte_range(lo, hi) for lo, hi in seq]) for seq in seqs])

    def _u_escape(self, cp: int) -> int:
        """``\\u00XX`` with hex digits in either case."""
        st = self.store
        digits = f"{cp:04x}"
        parts = [st.literal(b"\\u")]
        for d in digits:
            parts.append(st.alt(st.literal(d.encode()), st.literal(d.upper().encode())))
        return st.seq(*parts)

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
