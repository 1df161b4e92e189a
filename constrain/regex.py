"""Lower character-level regex ASTs to byte-level terms.

Two encodings of characters are supported:

- ``RAW``: a character is its UTF-8 bytes (``compile_regex``: the output text *is* the string).
- ``JSON``: a character as it may appear inside a JSON string literal: raw UTF-8 (except ``"``,
  ``\\`` and control characters, which must be escaped), its short escape (``\\n``, ``\\"``, ``\\/``,
  ...), or ``\\u00XX`` for a control character: the forms ``json.dumps(..., ensure_ascii=False)``
  writes. With ``unicode_escapes=True``, ``\\uXXXX`` (either case; surrogate pairs beyond the BMP)
  for every character too, as ``ensure_ascii=True`` writes: every form JSON allows. Off by
  default because small models then wander into escape sequences.

Two match modes: ``fullmatch`` (the whole text matches, like ``re.fullmatch``) and ``search`` (a
match anywhere, like ``re.search``, which is what JSON Schema's ``pattern`` means). A pattern
without assertions lowers directly: ``P`` for fullmatch, ``Σ*·P·Σ*`` for search.

Assertions
----------

Anchors (``^``, ``$``, ``\\A``, ``\\Z``; ``^`` and ``$`` under MULTILINE), one-character lookarounds
(``(?=X)``, ``(?!X)``, ``(?<=X)``, ``(?<!X)``), lookaheads on characters and end anchors in
alternation (``(?=\\s|$)``) and word boundaries (``\\b``, ``\\B``) are exact anywhere in a pattern:
in groups, alternatives and repetitions. Other lookaheads are exact at the start of the string
(below); other lookbehinds raise ``RegexError``. Each assertion is a condition on the text before
its position and the text after it, in the *whole string*. So a pattern holding assertions is
lowered left to right over the whole string ``s = u·v·w`` (``v`` the match; ``u`` and ``w`` empty
for fullmatch, any text for search), as a set of *context states* ``σ = (L, R, G)``, each mapped to
the term of the text read so far (``_Context``):

- ``L``, what is known of the text before the position: it is empty (``BOS``), or the class of
  its last character, in the coarsest partition of the characters that the pattern's lookbehinds,
  MULTILINE ``^`` and word boundaries can tell apart. Untracked (None) when nothing looks back.
- ``R``, a requirement on the rest of the string left by assertions and not yet met: the rest
  lies in ``X·Σ* ∪ {ε if e} ∪ {"\\n" if n}``. Free is ``Σ*``; ``\\Z`` requires ``{ε}``; ``$``
  requires ``{ε, "\\n"}`` (the end, or a final newline); MULTILINE ``$`` requires ``\\n·Σ* ∪ {ε}``;
  ``(?=X)`` requires ``X·Σ*`` and ``(?!X)`` requires ``(¬X)·Σ* ∪ {ε}``; ``(?=X|$)``, the union.
  Several requirements meet by intersection, which stays in this family.
- ``G``, lookaheads on more met at the start of the string (``^(?!foo$)``): each the term of the
  strings its pattern matches at their start (``re.match``; or their complement), which the whole
  string must lie in. They are intersected with the state's strings at the end. Met elsewhere
  (where the state's ``L`` is not ``BOS``), such a lookahead raises ``RegexError``.

A lookbehind-like assertion (``^``, ``\\A``, MULTILINE ``^``, ``(?<=X)``, ``(?<!X)``) keeps the
states whose ``L`` satisfies it and drops the others; a lookahead-like one intersects ``R``; ``\\b``
and ``\\B`` do both, case by case on ``L`` (``\\B``, as in Python, fails on the empty string). So
an anchor that cannot hold leaves nothing: ``a^b`` is the empty language, as in Python.

Reading an assertion-free piece ``P`` from ``(L, R)`` splits it: its empty string (if any) keeps
``(L, R)``; its nonempty strings must meet ``R`` (``P ∩ X·Σ*`` frees ``R``; under ``n``, ``P ∩ {"\\n"}``
leaves ``R = {ε}``) and move ``L`` to the class of their last character (``P ∩ Σ*·C`` for each class
``C``). An intersection is built only where the piece's possible first or last characters straddle
a boundary: in ``^[a-z]+$`` nothing is split at all.

Concatenation chains the states, alternation merges them. A repetition whose body holds assertions
is a finite automaton on the context states reachable from where it starts: the body's transfer
matrix (``σ → σ'``: the texts the body reads going from ``σ`` to ``σ'``), closed with Kleene's
algorithm (Floyd–Warshall on terms) when unbounded, unrolled for a bounded count (at most
``_MAX_UNROLL`` copies in all; beyond, ``RegexError``).

Fullmatch starts in ``(BOS, free)`` and keeps, at the end, the states whose ``R`` admits ``ε``.
Search starts in ``(BOS, free)`` with ``u = ε`` and in ``(C, free)`` with ``u ∈ Σ*·C`` for each class
``C``, and ends each state with ``w ∈ R``. So, e.g., ``^$|^\\d+$`` searched is ``(ε | \\d+)·(ε | \\n)``.

Lexers: ``fullmatch`` is also how a lexer's terminals lower, and a lexer matches inside a longer
text, where a lookaround or word boundary at an end of the match sees characters that
``re.fullmatch`` does not. By default such an assertion raises ``RegexError``, as does a lookahead
in ``G`` (anchors at the ends of the match hold there, the text being taken as a whole);
``whole_string=True`` lowers with ``re.fullmatch``'s exact semantics instead, the ends of the text
being the ends of the string.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable

from . import builtin_tables
from . import charset as cs
from .errors import RegexError
from .regex_parser import parse
from .terms import ALL_BYTES, ALT_K, CAT_K, EMPTY, EPS, INF, REP_K, TermStore, range_mask


class Encoding(enum.Enum):
    RAW = "raw"
    JSON = "json"


_JSON_SHORT = {0x22: b'\\"', 0x5C: b"\\\\", 0x2F: b"\\/", 8: b"\\b", 12: b"\\f", 10: b"\\n", 13: b"\\r",
               9: b"\\t"}
_PLAIN_JSON = re.compile(r'[^\x00-\x1f"\\/\ud800-\udfff]*')  # characters JSON writes only raw (no short escape)
_CONTROLS = cs.normalize([(0, 0x1F)])
_MUST_ESCAPE = cs.union(_CONTROLS, cs.single(0x22), cs.single(0x5C))
_NEWLINE = cs.single(10)
_MAX_UNROLL = 100  # a bounded repetition holding assertions is unrolled, up to this many times


# Lowered patterns as store-independent graphs (``TermStore.export_term``), shared by all stores.
_PORTABLE: dict[tuple, tuple] = {}
_PORTABLE_MAX = 4096


class Lowering:
    """Builds terms in one ``TermStore``, memoizing character-set encodings."""

    def __init__(self, store: TermStore, *, unicode_escapes: bool = False):
        self.store = store
        self.unicode_escapes = unicode_escapes
        self._sets: dict[tuple, int] = {}
        self._chars: dict[tuple, int] = {}
        self._patterns: dict[tuple, int] = {}  # a schema repeats its patterns and formats

    def rebound(self, store: TermStore) -> "Lowering":
        """A copy building in ``store``, a copy of this one's store (``TermStore.adopt``)."""
        other = Lowering(store, unicode_escapes=self.unicode_escapes)
        other._sets, other._chars, other._patterns = dict(self._sets), dict(self._chars), dict(self._patterns)
        return other

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

    def json_string(self, s: str) -> int:
        """The JSON texts of the string ``s``, quotes included: each character raw or in any
        escape form JSON has for it."""
        st = self.store
        if not self.unicode_escapes and _PLAIN_JSON.fullmatch(s):  # one spelling: the literal
            return st.literal(b'"' + s.encode() + b'"')
        return st.seq(st.literal(b'"'), *[self.char(ord(c), Encoding.JSON) for c in s], st.literal(b'"'))

    def _utf8(self, s: cs.CharSet) -> int:
        # A class holding a large predefined one (``[\w.-]``, ``[^\W_]``...) is that one's trie,
        # built once per process, beside a trie of the few code points left: each such class
        # would otherwise split ~900 byte sequences of its own (~12 ms).
        if len(s) >= _LARGE_CLASS_RANGES and s not in _large_classes():
            for base in _large_classes():
                if cs.is_subset(base, s):
                    return self.store.alt(self._utf8(base), self._utf8(cs.difference(s, base)))
        # shared across stores: rebuilding the trie's graph skips splitting its bytes again
        return self._portable(("utf8", s), lambda: self.store.byte_sequences(_utf8_masks(s)))

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
        return self.store.byte_sequences(_hex4_masks(lo, hi))

    # -- AST -> term ------------------------------------------------------------------------------
    def node(self, node: tuple, encoding: Encoding, pattern: str) -> int:
        """The term of an assertion-free AST."""
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
        raise AssertionError(f"an assertion ({kind}) outside a context walk")

    def fullmatch(self, pattern: str, encoding: Encoding = Encoding.RAW, *, whole_string: bool = False) -> int:
        """The term of strings ``s`` with ``re.fullmatch(pattern, s)``.

        ``whole_string``: the text is the whole string, so that lookarounds and word boundaries at
        the ends of the match see the ends of the string, as in ``re.fullmatch``. Otherwise (a
        lexer's terminal, matched inside a longer text) they raise ``RegexError``.
        """
        key = ("fullmatch", pattern, encoding, whole_string)
        got = self._patterns.get(key)
        if got is None:
            got = self._patterns[key] = self._portable(key, lambda: self._fullmatch(pattern, encoding, whole_string))
        return got

    def _fullmatch(self, pattern: str, encoding: Encoding, whole_string: bool) -> int:
        root = parse(pattern)
        if not _has_assertion(root):
            return self.node(root, encoding, pattern)
        return _Context(self, encoding, pattern, root, "fullmatch", strict=not whole_string).term()

    def search(self, pattern: str, encoding: Encoding = Encoding.JSON) -> int:
        """The term of strings ``s`` with ``re.search(pattern, s)``."""
        key = ("search", pattern, encoding)
        got = self._patterns.get(key)
        if got is None:
            got = self._patterns[key] = self._portable(key, lambda: self._search(pattern, encoding))
        return got

    def _search(self, pattern: str, encoding: Encoding) -> int:
        root = parse(pattern)
        if not _has_assertion(root):
            st = self.store
            anything = st.star(self.charset(cs.ANY, encoding))
            return st.seq(anything, self.node(root, encoding, pattern), anything)
        return _Context(self, encoding, pattern, root, "search").term()

    def _portable(self, key: tuple, lower: Callable[[], int]) -> int:
        """``lower()``, or the same term rebuilt from an earlier store's (schemas share their
        patterns and formats: rebuilding a lowered pattern is several times cheaper than lowering
        it again). A pattern that fails to lower raises each time."""
        key = (*key, self.unicode_escapes)
        graph = _PORTABLE.get(key)
        if graph is None:
            graph = builtin_tables.lowered(portable_key(key))
            if graph is not None:
                _PORTABLE[key] = graph
        if graph is not None:
            return self.store.import_term(graph)
        term = lower()
        if len(_PORTABLE) >= _PORTABLE_MAX:
            _PORTABLE.clear()
        try:
            _PORTABLE[key] = self.store.export_term(term)
        except ValueError:  # not portable: lowered again next time
            pass
        return term


def portable_key(key: tuple) -> tuple:
    """A ``_PORTABLE`` key with its encoding given by value, as ``builtin_tables`` stores it."""
    return tuple(part.value if isinstance(part, Encoding) else part for part in key)


# Context states (see the module docstring). L: _BOS, a class index, or None (not tracked).
# R: (X, e, n, tag), the rest of the string lies in X·Σ* ∪ {ε if e} ∪ {"\n" if n} (n only where
# X lacks "\n"); tag: the position of a lookaround or word boundary that asked for it, where a
# strict fullmatch must refuse to look past the match (None otherwise).
_BOS = -1
_FREE = (cs.ANY, True, False, None)
_END = ((), True, False, None)
_ASSERTIONS = ("bos", "eos", "eol", "bol", "eolm", "look", "bound", "ahead")


class _Context:
    """Lowers a pattern holding assertions over context states, left to right."""

    def __init__(self, low: Lowering, encoding: Encoding, pattern: str, root: tuple, mode: str, *,
                 strict: bool = False):
        self.low = low
        self.st = low.store
        self.encoding = encoding
        self.pattern = pattern
        self.root = root
        self.mode = mode  # "fullmatch", "search", or "prefix" (re.match: a match at the start)
        self.strict = strict  # refuse lookarounds and word boundaries looking past the match
        self.anything = self.st.star(low.charset(cs.ANY, encoding))
        self.newline = low.charset(_NEWLINE, encoding)
        queries = list(_left_queries(root))
        self.track_left = bool(queries)
        self.classes = _partition([q for q in queries if q is not None])
        self._memo: dict[tuple, tuple] = {}  # (what, id(node), ...) -> (node, value): keeps the node's id
        self._nonempty: dict[int, int] = {}
        self._tags: dict[int, str] = {}  # tag position -> what asked

    def term(self) -> int:
        st = self.st
        out = []
        for (_, right, whole), before in self.walk(self.root, self.initial()).items():
            chars, end, newline, tag = right
            if self.mode != "fullmatch":
                out.append(st.and_(st.cat(before, self.rest(right)), *whole))
            elif tag is not None:
                raise RegexError(f"{self._tags[tag]} looking past the match (with nothing after it in the pattern) "
                                 "is not supported: a lexer would see the text after it", self.pattern, tag)
            elif end:
                out.append(st.and_(before, *whole))
        return st.alt(*out)

    def initial(self) -> dict:
        search = self.mode == "search"
        if not self.track_left:
            return {(None, _FREE, frozenset()): self.anything if search else EPS}
        states = {(_BOS, _FREE, frozenset()): EPS}
        if search:
            for k, chars in enumerate(self.classes):
                states[(k, _FREE, frozenset())] = self.st.cat(self.anything, self.low.charset(chars, self.encoding))
        return states

    def rest(self, right: tuple) -> int:
        """The texts that meet the requirement ``right``."""
        chars, end, newline, _ = right
        if chars == cs.ANY and end:
            return self.anything
        st = self.st
        parts = [st.cat(self.low.charset(chars, self.encoding), self.anything) if chars else EMPTY]
        return st.alt(*parts, EPS if end else EMPTY, self.newline if newline else EMPTY)

    # -- the walk ---------------------------------------------------------------------------------
    def walk(self, node: tuple, states: dict) -> dict:
        if not states:
            return states
        if not self.has_assertion(node):
            return self.consume(node, states)
        kind = node[0]
        if kind == "cat":
            for part in self.segments(node):
                states = self.walk(part, states) if self.has_assertion(part) else self.consume(part, states)
            return states
        if kind == "alt":
            return self.merge(*[self.walk(part, states) for part in self.segments(node)])
        if kind == "rep":
            return self.repeat(node, states)
        return self.assertion(node, states)

    def cached(self, key: tuple, node: tuple, compute):
        """``compute()``, memoized under ``key`` (which holds ``id(node)``) for this lowering."""
        got = self._memo.get(key)
        if got is None:
            got = self._memo[key] = (node, compute())  # holding the node, its id stays its own
        return got[1]

    def segments(self, node: tuple) -> list[tuple]:
        """The parts of a concatenation or alternation, with the assertion-free ones grouped: runs
        of items, all the plain alternatives, read as one piece."""
        return self.cached(("segments", id(node)), node, lambda: self._segments(node))

    def _segments(self, node: tuple) -> list[tuple]:
        kind, items = node
        if kind == "alt":
            plain = [n for n in items if not self.has_assertion(n)]
            out = [n for n in items if self.has_assertion(n)]
            if plain:
                out.append(plain[0] if len(plain) == 1 else ("alt", tuple(plain)))
        else:
            out, run = [], []
            for n in items:
                if self.has_assertion(n):
                    if run:
                        out.append(run[0] if len(run) == 1 else ("cat", tuple(run)))
                        run = []
                    out.append(n)
                else:
                    run.append(n)
            if run:
                out.append(run[0] if len(run) == 1 else ("cat", tuple(run)))
        return out

    def has_assertion(self, node: tuple) -> bool:
        return self.cached(("has", id(node)), node, lambda: _has_assertion(node))

    def consume(self, node: tuple, states: dict) -> dict:
        """The states after reading the assertion-free ``node``."""
        st = self.st
        out: dict = {}
        for (left, right, whole), before in states.items():
            for (left2, right2), piece in self.pieces(node, left, right):
                self.add(out, (left2, right2, whole), st.cat(before, piece))
        return out

    def pieces(self, node: tuple, left, right: tuple) -> list[tuple[tuple, int]]:
        """``node``'s texts read from ``(left, right)``, split by the ``(left, right)`` each leads to."""
        return self.cached(("pieces", id(node), left, right), node, lambda: self._pieces(node, left, right))

    def _pieces(self, node: tuple, left, right: tuple) -> list[tuple[tuple, int]]:
        st = self.st
        term = self.leaf(node)
        out: list[tuple[tuple, int]] = []
        if right == _FREE and (left is None or (left != _BOS and len(self.classes) == 1)):
            out.append(((left, right), term))  # nothing to tell apart
        elif term != EMPTY:
            if st.nullable[term]:
                out.append(((left, right), EPS))
            first, last = _first(node), _last(node)
            nonempty = self.nonempty(term)
            chars, _, newline, _ = right
            moves = []  # (texts, their possible last characters, the requirement after them)
            if cs.intersection(first, chars):
                moves.append((self.restrict(nonempty, first, chars, head=True), last, _FREE))
            if newline and _matches_one(node, 10):
                moves.append((self.newline, _NEWLINE, _END))
            for texts, ends, after in moves:
                if left is None:
                    out.append(((None, after), texts))
                    continue
                for k, cls in enumerate(self.classes):
                    if cs.intersection(ends, cls):
                        out.append(((k, after), self.restrict(texts, ends, cls, head=False)))
        return out

    def restrict(self, texts: int, chars: cs.CharSet, allowed: cs.CharSet, *, head: bool) -> int:
        """``texts`` (nonempty, whose first or last character is in ``chars``) with that character
        in ``allowed``: an intersection only where ``chars`` straddles ``allowed``."""
        if not cs.difference(chars, allowed):
            return texts
        st = self.st
        one = self.low.charset(allowed, self.encoding)
        return st.and_(texts, st.cat(one, self.anything) if head else st.cat(self.anything, one))

    def leaf(self, node: tuple) -> int:
        return self.cached(("leaf", id(node)), node, lambda: self.low.node(node, self.encoding, self.pattern))

    def nonempty(self, t: int) -> int:
        """The nonempty strings of term ``t``, structurally (an intersection only for AND and NOT)."""
        st = self.st
        if not st.nullable[t]:
            return t
        got = self._nonempty.get(t)
        if got is not None:
            return got
        node = st.nodes[t]
        if t == EPS:
            out = EMPTY
        elif node[0] == CAT_K:  # both sides nullable: the first nonempty one starts the text
            alts, u = [], t
            while st.nodes[u][0] == CAT_K:
                a, b = st.nodes[u][1], st.nodes[u][2]
                alts.append(st.cat(self.nonempty(a), b))
                u = b
            out = st.alt(*alts, self.nonempty(u))
        elif node[0] == ALT_K:
            out = st.alt(*[self.nonempty(u) for u in node[1]])
        elif node[0] == REP_K:
            _, a, lo, hi = node
            out = st.cat(self.nonempty(a), st.rep(a, max(lo - 1, 0), INF if hi == INF else hi - 1))
        else:
            byte = st.byte_set(ALL_BYTES)
            out = st.and_(t, st.cat(byte, st.star(byte)))
        self._nonempty[t] = out
        return out

    def assertion(self, node: tuple, states: dict) -> dict:
        out: dict = {}
        for (left, right, whole), before in states.items():
            if node[0] == "ahead" and self.ahead(node) is None:
                self.add(out, (left, right, whole | {self.whole_string_lookahead(node, left)}), before)
                continue
            for req in self.requirements(node, left):
                met = _meet(right, req)
                if met is not None:
                    self.add(out, (left, met, whole), before)
        return out

    def whole_string_lookahead(self, node: tuple, left) -> int:
        """A lookahead on more than one character, at the start of the string: the term of the
        strings it holds on (``re.match`` of its pattern, or not), which the whole string must be."""
        pos = node[1]
        if self.strict or left != _BOS:
            why = ": a lexer would see the text after the match" if self.strict else ""
            raise RegexError("lookaround assertions are supported on one character or character class (or, for a "
                             "lookahead, characters and end anchors in alternation); a lookahead on more is "
                             f"supported only at the start of the string, as in ^(?!...){why}", self.pattern, pos)
        return self.cached(("whole", id(node)), node, lambda: self._whole_string_lookahead(node))

    def _whole_string_lookahead(self, node: tuple) -> int:
        _, _, negate, inner = node
        if _has_assertion(inner):
            match = _Context(self.low, self.encoding, self.pattern, inner, "prefix").term()
        else:
            match = self.st.cat(self.low.node(inner, self.encoding, self.pattern), self.anything)
        return self.st.not_(match) if negate else match

    def ahead(self, node: tuple) -> tuple | None:
        return self.cached(("ahead", id(node)), node, lambda: _lookahead_requirement(node))

    def requirements(self, node: tuple, left) -> list[tuple]:
        """What the assertion ``node`` requires of the rest of the string, after text whose last
        character is in class ``left`` (or none: ``_BOS``): [] when it cannot hold there."""
        kind, pos = node[0], node[1]
        if kind == "bos":
            return [_FREE] if left == _BOS else []
        if kind == "bol":
            return [_FREE] if left == _BOS or self.left_in(left, _NEWLINE) else []
        if kind == "eos":
            return [_END]
        if kind == "eol":
            return [((), True, True, None)]
        if kind == "eolm":
            return [(_NEWLINE, True, False, None)]
        tag = self.tag(pos, "word boundary" if kind == "bound" else "lookahead") if self.strict else None
        if left == _BOS and self.strict and (kind == "bound" or kind == "look" and node[2]):
            what = "word boundary" if kind == "bound" else "lookbehind"
            raise RegexError(f"{what} looking before the match (with nothing before it in the pattern) is not "
                             "supported: a lexer would see the text before it", self.pattern, pos)
        if kind == "ahead":  # on characters or the end
            return [(*self.ahead(node), tag)]
        if kind == "look":
            _, _, behind, negate, chars = node
            if behind:
                seen = left != _BOS and self.left_in(left, chars)
                return [_FREE] if seen != negate else []
            return [(cs.complement(chars), True, False, tag)] if negate else [(chars, False, False, tag)]
        _, _, negate, word = node  # \b, \B: a word character on one side only, or on both or neither
        other = cs.complement(word)
        if left == _BOS:  # nothing before is a non-word character, but \B fails on the empty string
            return [(other, False, False, tag)] if negate else [(word, False, False, tag)]
        if self.left_in(left, word):
            return [(word, False, False, tag)] if negate else [(other, True, False, tag)]
        return [(other, True, False, tag)] if negate else [(word, False, False, tag)]

    def left_in(self, left: int, chars: cs.CharSet) -> bool:
        """Whether the class ``left`` lies in ``chars`` (classes lie in or out of every set asked)."""
        return not cs.difference(self.classes[left], chars)

    def tag(self, pos: int, what: str) -> int:
        self._tags[pos] = what
        return pos

    # -- repetitions ------------------------------------------------------------------------------
    def repeat(self, node: tuple, states: dict) -> dict:
        _, body, lo, hi = node
        if (lo if hi is None else hi) > _MAX_UNROLL:
            raise RegexError(f"assertions are supported in repetitions of at most {_MAX_UNROLL} times "
                             "(or unbounded ones, such as * and +)", self.pattern, next(_assertions(body))[1])
        matrix = self.transfer(body, states)
        for _ in range(lo):
            states = self.apply(matrix, states)
        if hi is None:
            return self.apply(self.closure(matrix), states)
        optional = {s: {s: EPS} for s in matrix}  # I + M·(I + M·(...)), hi - lo times
        for _ in range(hi - lo):
            optional = self.product(matrix, optional)
            for s in matrix:
                optional[s][s] = self.st.alt(optional[s].get(s, EMPTY), EPS)
        return self.apply(optional, states)

    def transfer(self, body: tuple, states: dict) -> dict:
        """The body's transfer matrix on the states reachable from ``states``: σ -> {σ': texts}."""
        matrix: dict = {}
        todo = list(states)
        while todo:
            s = todo.pop()
            if s not in matrix:
                matrix[s] = self.walk(body, {s: EPS})
                todo.extend(t for t in matrix[s] if t not in matrix)
        return matrix

    def apply(self, matrix: dict, states: dict) -> dict:
        out: dict = {}
        for s, before in states.items():
            for t, texts in matrix[s].items():
                self.add(out, t, self.st.cat(before, texts))
        return out

    def product(self, a: dict, b: dict) -> dict:
        st = self.st
        out: dict = {}
        for s, row in a.items():
            got: dict = {}
            for m, x in row.items():
                for t, y in b[m].items():
                    self.add(got, t, st.cat(x, y))
            out[s] = got
        return out

    def closure(self, matrix: dict) -> dict:
        """M*: Kleene's algorithm computes M⁺ (paths through states k eliminated one at a time),
        then the empty path is added on the diagonal."""
        st = self.st
        paths = {s: dict(row) for s, row in matrix.items()}
        for k in matrix:
            loop_k = paths[k].get(k, EMPTY)
            loop = st.star(loop_k)
            new = {}
            for s, row in paths.items():
                into = row.get(k, EMPTY)
                if into == EMPTY:
                    new[s] = row
                elif s == k:
                    new[s] = {t: st.rep(x, 1, INF) if t == k else st.cat(loop, x) for t, x in row.items()}
                else:
                    via = st.cat(into, loop)
                    got = dict(row)
                    got[k] = via
                    for t, x in paths[k].items():
                        if t != k:
                            got[t] = st.alt(got.get(t, EMPTY), st.cat(via, x))
                    new[s] = got
            paths = new
        for s in paths:
            paths[s][s] = st.alt(EPS, paths[s].get(s, EMPTY))
        return paths

    def merge(self, *all_states: dict) -> dict:
        out: dict = {}
        for states in all_states:
            for key, term in states.items():
                self.add(out, key, term)
        return out

    def add(self, states: dict, key, term: int) -> None:
        if term != EMPTY:
            got = states.get(key)
            states[key] = term if got is None else self.st.alt(got, term)


def _meet(right: tuple, req: tuple) -> tuple | None:
    """Both requirements on the rest of the string (None: no string meets both)."""
    chars, end, newline, tag = right
    chars2, end2, newline2, tag2 = req
    both = cs.intersection(chars, chars2)
    end = end and end2
    newline = (newline and (newline2 or cs.contains(chars2, 10))) or (newline2 and cs.contains(chars, 10))
    newline = newline and not cs.contains(both, 10)
    if not both and not end and not newline:
        return None
    tags = [t for t in (tag, tag2) if t is not None]
    return (both, end, newline, min(tags) if tags else None)


def _lookahead_requirement(node: tuple) -> tuple | None:
    """What a lookahead (``("ahead", pos, negate, inner)``) requires of the rest of the string as
    ``(X, e, n)`` (see ``_FREE``), where its pattern is characters and end anchors in alternation,
    as in ``(?=\\s|$)``; else None."""

    def positive(inner: tuple) -> tuple | None:
        kind = inner[0]
        if kind == "set":
            return inner[1], False, False
        if kind in ("eos", "eol", "eolm"):
            return _NEWLINE if kind == "eolm" else (), True, kind == "eol"
        if kind == "cat" and len(inner[1]) <= 1:
            return positive(inner[1][0]) if inner[1] else (cs.ANY, True, False)
        if kind == "alt":
            parts = [positive(n) for n in inner[1]]
            if None in parts:
                return None
            chars = cs.union(*[p[0] for p in parts])
            return chars, any(p[1] for p in parts), any(p[2] for p in parts) and not cs.contains(chars, 10)
        return None

    req = positive(node[3])
    if req is None or not node[2]:
        return req
    chars, end, newline = req
    return None if newline else (cs.complement(chars), not end, False)


def _partition(sets: list[cs.CharSet]) -> list[cs.CharSet]:
    """The coarsest partition of all characters in which each class lies in or out of each set."""
    classes = [cs.ANY]
    for s in sets:
        classes = [part for c in classes for part in (cs.intersection(c, s), cs.difference(c, s)) if part]
    return classes


def _left_queries(node: tuple):
    """What the pattern's assertions ask of the character before them: a set (None: only whether
    there is one)."""
    kind = node[0]
    if kind == "bos":
        yield None
    elif kind == "bol":
        yield _NEWLINE
    elif kind == "look" and node[2]:
        yield node[4]
    elif kind == "bound":
        yield node[3]
    elif kind == "ahead" and _lookahead_requirement(node) is None:
        yield None  # supported at the start of the string only
    elif kind in ("cat", "alt"):
        for n in node[1]:
            yield from _left_queries(n)
    elif kind == "rep":
        yield from _left_queries(node[1])


def _assertions(node: tuple):
    """The assertions in ``node``, in pattern order."""
    if node[0] in _ASSERTIONS:
        yield node
    elif node[0] in ("cat", "alt"):
        for n in node[1]:
            yield from _assertions(n)
    elif node[0] == "rep":
        yield from _assertions(node[1])


def _has_assertion(node: tuple) -> bool:
    return next(_assertions(node), None) is not None


def _nullable(node: tuple) -> bool:
    kind = node[0]
    if kind == "set":
        return False
    if kind == "cat":
        return all(_nullable(n) for n in node[1])
    if kind == "alt":
        return any(_nullable(n) for n in node[1])
    return node[2] == 0 or _nullable(node[1])


def _first(node: tuple, last: bool = False) -> cs.CharSet:
    """The characters an assertion-free node's nonempty texts may start (or end) with: a superset."""
    kind = node[0]
    if kind == "set":
        return node[1]
    if kind == "alt":
        return cs.union(*[_first(n, last) for n in node[1]])
    if kind == "rep":
        return _first(node[1], last) if node[3] != 0 else ()
    out = []
    for n in reversed(node[1]) if last else node[1]:
        out.append(_first(n, last))
        if not _nullable(n):
            break
    return cs.union(*out)


def _last(node: tuple) -> cs.CharSet:
    return _first(node, last=True)


def _matches_one(node: tuple, cp: int) -> bool:
    """Whether an assertion-free node matches the one-character text ``chr(cp)``."""
    kind = node[0]
    if kind == "set":
        return cs.contains(node[1], cp)
    if kind == "alt":
        return any(_matches_one(n, cp) for n in node[1])
    if kind == "rep":
        _, child, lo, hi = node
        return hi != 0 and _matches_one(child, cp) and (lo <= 1 or _nullable(child))
    items = node[1]
    return any(_matches_one(n, cp) and all(_nullable(m) for j, m in enumerate(items) if j != i)
               for i, n in enumerate(items))


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


@functools.lru_cache(maxsize=4096)
def _hex4_masks(lo: int, hi: int) -> tuple[tuple[int, ...], ...]:
    """Four hex digits (either case) spelling a number in [lo, hi], as sequences of byte masks
    (the same in every store: computed once)."""
    return tuple(tuple(_hex_digits(a, b) for a, b in seq) for seq in _digit_ranges(lo, hi, 4))


def _hex_digits(a: int, b: int) -> int:
    mask = 0
    for d in range(a, b + 1):
        for ch in {f"{d:x}", f"{d:X}"}:
            mask |= 1 << ord(ch)
    return mask


_LARGE_CLASS_RANGES = 50


@functools.lru_cache(maxsize=1)
def _large_classes() -> tuple[cs.CharSet, ...]:
    """Predefined classes of many ranges, largest first (JSON strings lower a class less the
    characters they must escape, so the complements appear that way too)."""
    word, digit = cs.word(), cs.digit()
    classes = {word, digit}
    for c in (cs.complement(word), cs.complement(digit)):
        classes |= {c, cs.difference(c, _MUST_ESCAPE)}
    return tuple(sorted(classes, key=len, reverse=True))


@functools.lru_cache(maxsize=4096)
def _utf8_masks(s: cs.CharSet) -> tuple[tuple[int, ...], ...]:
    """The UTF-8 encodings of ``s`` as sequences of byte masks (the same in every store: computed once)."""
    return tuple(tuple(range_mask(lo, hi) for lo, hi in seq) for seq in cs.utf8_sequences(s))
