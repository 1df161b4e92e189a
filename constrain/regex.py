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
in practice; elsewhere they raise ``RegexError``, except MULTILINE ``^`` and ``$``, which are
lookarounds for a newline there.

Lookarounds on one character constrain the text around them within the match: the text before
a lookbehind, the text after a lookahead (see ``_Assertions``). One that would look outside the
match (a lookbehind with nothing before it in the pattern, a lookahead with nothing after it)
raises ``RegexError``: a lexer matching the pattern inside a longer text would see characters
there that ``re.fullmatch`` does not.
"""

from __future__ import annotations

import enum

from . import charset as cs
from .errors import RegexError
from .regex_parser import parse
from .terms import EMPTY, EPS, INF, TermStore


class Encoding(enum.Enum):
    RAW = "raw"
    JSON = "json"


_JSON_SHORT = {0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 8: b"\\b", 12: b"\\f", 10: b"\\n", 13: b"\\r",
               9: b"\\t"}
_CONTROLS = cs.normalize([(0, 0x1F)])
_MUST_ESCAPE = cs.union(_CONTROLS, cs.single(0x22), cs.single(0x5C))
_NEWLINE = cs.single(10)
_MAX_UNROLL = 16  # a repetition holding a lookaround is unrolled, up to this many times


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

    def core(self, node: tuple, encoding: Encoding, pattern: str) -> int:
        """A branch's core (no anchors at its ends): its lookarounds constrain the text around them."""
        if not _has_assertion(node):
            return self.node(node, encoding, pattern)
        return _Assertions(self, encoding, pattern).lower(node)

    def fullmatch(self, pattern: str, encoding: Encoding = Encoding.RAW) -> int:
        """The term of strings ``s`` with ``re.fullmatch(pattern, s)``."""
        st = self.store
        return st.alt(*[self.core(core, encoding, pattern) for _, _, core in _branches(parse(pattern), pattern)])

    def search(self, pattern: str, encoding: Encoding = Encoding.JSON) -> int:
        """The term of strings ``s`` with ``re.search(pattern, s)``."""
        st = self.store
        anything = st.star(self.charset(cs.ANY, encoding))
        newline = self.charset(_NEWLINE, encoding)
        heads = {None: anything, "bos": EPS, "bol": st.opt(st.cat(anything, newline))}
        tails = {None: anything, "eos": EPS,
                 "eol": st.opt(newline),  # Python's $: at the end, or before a newline that ends the string
                 "eolm": st.opt(st.cat(newline, anything))}
        out = []
        for start, end, core in _branches(parse(pattern), pattern):
            out.append(st.seq(heads[start], self.core(core, encoding, pattern), tails[end]))
        return st.alt(*out)


class _Assertions:
    """Lowers a core holding one-character lookarounds, left to right.

    The state maps a pending lookahead (the characters the next one may be, and the assertion's
    position) or None to the term of the text matched so far. A lookbehind intersects that text
    with "ends with X": ``A(?<=X)B`` is ``(A ∧ Σ*X)·B``. A lookahead leaves a condition that the
    next item to match a character meets: ``A(?=X)B`` is ``A·(B ∧ XΣ*)``. Alternatives carry the
    state through each branch; repetitions are unrolled.
    """

    def __init__(self, low: Lowering, encoding: Encoding, pattern: str):
        self.low = low
        self.st = low.store
        self.encoding = encoding
        self.pattern = pattern
        self.anything = self.st.star(low.charset(cs.ANY, encoding))

    def lower(self, node: tuple) -> int:
        states = self.walk(node, {None: EPS})
        for pending, term in states.items():
            if pending is not None and term != EMPTY:
                raise RegexError("lookaround looking past the match (a lookahead or MULTILINE $ with nothing "
                                 "after it in the pattern) is not supported", self.pattern, pending[1])
        return states.get(None, EMPTY)

    def walk(self, node: tuple, states: dict) -> dict:
        if not _has_assertion(node):
            return self.consume(self.low.node(node, self.encoding, self.pattern), states)
        kind = node[0]
        if kind == "cat":
            for n in node[1]:
                states = self.walk(n, states)
            return states
        if kind == "alt":
            return self.merge(*[self.walk(n, states) for n in node[1]])
        if kind == "rep":
            return self.repeat(node, states)
        return self.assertion(_as_look(node), states)

    def consume(self, term: int, states: dict) -> dict:
        """The states after an assertion-free item ``term``, which meets any pending lookahead."""
        st = self.st
        out: dict = {}
        for pending, before in states.items():
            if pending is None:
                self.add(out, None, st.cat(before, term))
                continue
            first = st.and_(term, st.cat(self.low.charset(pending[0], self.encoding), self.anything))
            self.add(out, None, st.cat(before, first))
            if st.nullable[term]:  # matching nothing, it leaves the condition to the next item
                self.add(out, pending, before)
        return out

    def repeat(self, node: tuple, states: dict) -> dict:
        _, child, lo, hi = node
        if hi is None or hi > _MAX_UNROLL:
            raise RegexError(f"lookaround assertions are supported in repetitions of at most {_MAX_UNROLL} "
                             "times", self.pattern, next(_assertions(child))[1])
        for _ in range(lo):
            states = self.walk(child, states)
        for _ in range(hi - lo):
            states = self.merge(states, self.walk(child, states))
        return states

    def assertion(self, look: tuple, states: dict) -> dict:
        _, pos, behind, negate, chars = look
        st = self.st
        out: dict = {}
        if behind:
            # The text before is not empty, so "does not end with X" is "ends with a character not in X".
            last = cs.complement(chars) if negate else chars
            ends = st.cat(self.anything, self.low.charset(last, self.encoding))
            for pending, before in states.items():
                if st.nullable[before]:
                    raise RegexError("lookaround looking before the match (a lookbehind or MULTILINE ^ with "
                                     "nothing before it in the pattern) is not supported", self.pattern, pos)
                self.add(out, pending, st.and_(before, ends))
            return out
        allowed = cs.complement(chars) if negate else chars
        for pending, before in states.items():
            key = (allowed, pos) if pending is None else (cs.intersection(pending[0], allowed), pending[1])
            self.add(out, key, before)
        return out

    def merge(self, *all_states: dict) -> dict:
        out: dict = {}
        for states in all_states:
            for key, term in states.items():
                self.add(out, key, term)
        return out

    def add(self, states: dict, key, term: int) -> None:
        states[key] = self.st.alt(states.get(key, EMPTY), term)


def _as_look(node: tuple) -> tuple:
    """MULTILINE ^ and $ inside a branch: a newline before, a newline after (the string's ends
    lie outside the match there, which ``_Assertions`` refuses to look at)."""
    if node[0] == "bol":
        return ("look", node[1], True, False, _NEWLINE)
    if node[0] == "eolm":
        return ("look", node[1], False, False, _NEWLINE)
    return node


def _assertions(node: tuple):
    """The lookarounds (and MULTILINE anchors) in ``node``, in pattern order."""
    if node[0] in ("look", "bol", "eolm"):
        yield node
    elif node[0] in ("cat", "alt"):
        for n in node[1]:
            yield from _assertions(n)
    elif node[0] == "rep":
        yield from _assertions(node[1])


def _has_assertion(node: tuple) -> bool:
    return next(_assertions(node), None) is not None


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
    return node[0] in ("bos", "eos", "eol", "bol", "eolm")


_END_STRENGTH = {None: 0, "eolm": 1, "eol": 2, "eos": 3}  # where several end anchors meet, the strictest holds


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


def _branches(node: tuple, pattern: str) -> list[tuple[str | None, str | None, tuple]]:
    """Split the pattern into (start anchor, end anchor, core) branches; the core's only anchors
    are MULTILINE ones inside it, which lower as lookarounds."""
    if node[0] == "alt":
        return [b for n in node[1] for b in _branches(n, pattern)]
    items = _items(node)
    start = None
    while items and items[0][0] in ("bos", "bol"):
        start = "bos" if "bos" in (start, items[0][0]) else "bol"  # \A is stricter than a line start
        items.pop(0)
    end = None
    while items and items[-1][0] in _END_STRENGTH:
        end = max(end, items.pop()[0], key=_END_STRENGTH.get)
    head = [(start, -1)] if start else []
    tail = [(end, -1)] if end else []
    # Distribute a leading or trailing group whose alternatives carry anchors: (^a|b)c -> ^ac | bc
    if items and items[0][0] == "alt" and _has_anchor(items[0]) and not start:
        rest = items[1:]
        return [b for alt in items[0][1] for b in _branches(("cat", tuple(_items(alt) + rest + tail)), pattern)]
    if items and items[-1][0] == "alt" and _has_anchor(items[-1]) and end is None:
        rest = items[:-1]
        return [b for alt in items[-1][1] for b in _branches(("cat", tuple(head + rest + _items(alt))), pattern)]
    if items and items[0][0] == "cat" and _has_anchor(items[0]) or items and items[-1][0] == "cat" and _has_anchor(items[-1]):
        flat = []
        for it in items:
            flat.extend(_items(it) if it[0] == "cat" else [it])
        return _branches(("cat", tuple(head + flat + tail)), pattern)
    core = ("cat", tuple(items))
    for it in items:
        _reject_anchors(it, pattern)
    return [(start, end, core)]


def _reject_anchors(node: tuple, pattern: str) -> None:
    if node[0] in ("bos", "eos", "eol"):
        raise RegexError("anchors are supported only at the start or end of the pattern "
                         "(or of its top-level alternatives)", pattern, node[1])
    if node[0] in ("cat", "alt"):
        for n in node[1]:
            _reject_anchors(n, pattern)
    elif node[0] == "rep":
        _reject_anchors(node[1], pattern)
