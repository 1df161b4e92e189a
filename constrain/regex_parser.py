"""Parse regular expressions (Python ``re`` syntax and semantics) into a character-level AST.

Python's dialect is the one that matters: ``jsonschema`` checks ``pattern`` with ``re.search``, so
``\\d``, ``\\w``, ``\\s``, ``.`` and ``$`` mean here what they mean there.

AST nodes are tuples:

- ``("set", CharSet)``: one character from the set
- ``("cat", (node, ...))`` and ``("alt", (node, ...))``
- ``("rep", node, min, max)`` with ``max`` = None for unbounded
- ``("bos", pos)`` (``^``, ``\\A``), ``("eos", pos)`` (``\\Z``), ``("eol", pos)`` (``$``: end, or before a
  final newline), ``("bol", pos)`` and ``("eolm", pos)`` (``^`` and ``$`` under MULTILINE: at a line
  start, or at a line end); ``pos`` is the anchor's offset in the pattern
- ``("look", pos, behind, negate, CharSet)``: a lookaround assertion on one character,
  ``(?=X)``, ``(?!X)``, ``(?<=X)`` or ``(?<!X)``
- ``("ahead", pos, negate, node)``: any other lookahead, ``(?=...)`` or ``(?!...)`` (lookbehinds on
  more than one character raise)
- ``("bound", pos, negate, CharSet)``: ``\\b`` (``\\B`` when ``negate``), the set being the word
  characters (``\\w``; ASCII ones under the ASCII flag)

Inline flags (``(?i)``, ``(?s:...)``, ``(?x-i:...)``, ...) are applied while parsing: the AST has
no flags left in it. Constructs that are not regular or that we do not enforce (backreferences,
lookarounds on more than one character, atomic groups, possessive quantifiers,
the LOCALE and TEMPLATE flags) raise ``RegexError`` naming the construct and its position.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings

from . import charset as cs
from .errors import RegexError

MAX_REPEAT = 4294967295  # Python's MAXREPEAT

_OCTAL = "01234567"
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}
_ANCHORS = ("bos", "eos", "eol", "bol", "eolm")

# Inline flag letters and their ``re`` values ("t" is TEMPLATE: accepted by Python 3.11, refused here).
_FLAGS = {"i": int(re.I), "L": int(re.L), "m": int(re.M), "s": int(re.S), "x": int(re.X), "a": int(re.A),
          "u": int(re.U), "t": 1}
_TYPE_FLAGS = int(re.A | re.L | re.U)
# plain ints: testing an int against a RegexFlag goes through enum.Flag in Python
_I, _M, _S, _X, _A, _U = (int(f) for f in (re.I, re.M, re.S, re.X, re.A, re.U))
_VERBOSE_SPACE = " \t\n\r\v\f"

# \d \w \s under the ASCII flag (sre's ASCII categories; str.isspace would add \x1c-\x1f).
_ASCII_CLASSES = {"d": cs.normalize([(48, 57)]), "w": cs.normalize([(48, 57), (65, 90), (95, 95), (97, 122)]),
                  "s": cs.normalize([(9, 13), (32, 32)])}


def parse(pattern: str) -> tuple:
    """Parse ``pattern`` into an AST; raise ``RegexError`` on bad or unsupported syntax."""
    if not isinstance(pattern, str):
        raise RegexError(f"pattern must be a string, not {type(pattern).__name__}")
    return _parse(pattern)


@functools.lru_cache(maxsize=1024)
def _parse(pattern: str) -> tuple:
    """The AST (immutable tuples, so shared): formats and common patterns recur across schemas."""
    return _Parser(pattern).parse()


def has_lazy_quantifier(pattern: str) -> bool:
    """Whether ``pattern`` holds a lazy quantifier (``*?``, ``+?``, ``??``, ``{m,n}?``).

    Under ``re.fullmatch`` a lazy quantifier matches what the greedy one does, but under ``re.match``
    (a lexer) it stops at the first match; raises ``RegexError`` as ``parse`` does.
    """
    parser = _Parser(pattern)
    parser.parse()
    return parser.lazy


def _combine_flags(flags: int, add: int, remove: int) -> int:
    """The flags inside ``(?add-remove:...)``, as Python combines them (a, u, L replace each other)."""
    if add & _TYPE_FLAGS:
        flags &= ~_TYPE_FLAGS
    return (flags | add) & ~remove


@functools.lru_cache(maxsize=4096)
def _ignore_case(chars: cs.CharSet, fragment: str, ascii_only: bool) -> cs.CharSet:
    """What the one-character ``fragment`` (whose set is ``chars``) matches under IGNORECASE.

    Python's case-insensitive rules are subtle (simple case mappings, extra equivalences, negated
    classes complemented after folding, categories tested on the lowered character), so ``re``
    itself decides, for the few thousand characters that IGNORECASE can affect.
    """
    flags = re.I | (re.A if ascii_only else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarning: possible nested set
        rx = re.compile(fragment, flags)
    sensitive = cs.case_sensitive()
    matched = [(cp, cp) for lo, hi in sensitive for cp in range(lo, hi + 1) if rx.fullmatch(chr(cp))]
    return cs.union(cs.difference(chars, sensitive), cs.normalize(matched))


class _Parser:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.groups = 0
        self.names: set[str] = set()
        self.flags = 0  # the inline flags in effect here
        self.depth = 0  # group nesting: global flags are allowed only at the top
        self.lazy = False  # a lazy quantifier was seen

    # -- helpers ------------------------------------------------------------------------
    def error(self, message: str, pos: int | None = None) -> RegexError:
        return RegexError(message, self.p, self.i if pos is None else pos)

    def peek(self, k: int = 0) -> str | None:
        j = self.i + k
        return self.p[j] if j < len(self.p) else None

    def eat(self, s: str) -> bool:
        if self.p.startswith(s, self.i):
            self.i += len(s)
            return True
        return False

    def next_char(self) -> str | None:
        c = self.peek()
        if c is not None:
            self.i += 1
        return c

    def skip_verbose(self) -> None:
        """Under VERBOSE, whitespace and ``#`` comments between items are not part of the pattern."""
        if not self.flags & _X:
            return
        while (c := self.peek()) is not None:
            if c in _VERBOSE_SPACE:
                self.i += 1
            elif c == "#":
                end = self.p.find("\n", self.i)
                self.i = len(self.p) if end < 0 else end + 1
            else:
                return

    # -- grammar ------------------------------------------------------------------------
    def parse(self) -> tuple:
        node = self.alternation()
        if self.i < len(self.p):
            raise self.error("unbalanced parenthesis")
        return node

    def alternation(self) -> tuple:
        branches = [self.sequence(first=self.depth == 0)]
        while self.eat("|"):
            branches.append(self.sequence(first=False))
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def sequence(self, first: bool) -> tuple:
        """Items up to ``|`` or ``)``; ``first``: the pattern's first branch, where global flags may be."""
        items: list[tuple] = []
        quantified = False  # the last item is a quantifier's result (a second one is a "multiple repeat")
        while True:
            self.skip_verbose()
            c = self.peek()
            if c is None or c in "|)":
                break
            if c in "*+?" or (c == "{" and self.braces_is_quantifier()):
                items.append(self.quantifier(items.pop() if items else None, quantified))
                quantified = True
                continue
            atom = self.atom(at_start=first and not items)
            if atom is not None:  # None: a comment or global flags
                items.append(atom)
                quantified = False
        return items[0] if len(items) == 1 else ("cat", tuple(items))

    def quantifier(self, item: tuple | None, quantified: bool) -> tuple:
        pos = self.i
        if self.peek() == "{":
            lo, hi = self.braces()
        else:
            lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[self.next_char()]
        if item is None or item[0] in _ANCHORS or item[0] == "bound":
            raise self.error("nothing to repeat", pos)
        if quantified:  # Python rejects a repeated repeat such as a** (but allows (a*)*)
            raise self.error("multiple repeat", pos)
        if self.eat("+"):
            raise self.error("possessive quantifier is not supported", pos)
        if self.eat("?"):  # lazy: the same language under fullmatch, but the lexer needs to know
            self.lazy = True
        return ("rep", item, lo, hi)

    def braces(self):
        """Parse {m}, {m,}, {,n}, {m,n}; return None (and consume nothing) if it is a literal '{'."""
        j = self.i + 1
        p = self.p
        k = j
        while k < len(p) and p[k].isdigit() and p[k].isascii():
            k += 1
        lo_s = p[j:k]
        if k < len(p) and p[k] == "}":
            if not lo_s:
                return None
            self.i = k + 1
            n = int(lo_s)
            self._check_bound(n, j)
            return n, n
        if k >= len(p) or p[k] != ",":
            return None
        m = k + 1
        while m < len(p) and p[m].isdigit() and p[m].isascii():
            m += 1
        hi_s = p[k + 1 : m]
        if m >= len(p) or p[m] != "}":
            return None
        lo = int(lo_s) if lo_s else 0
        hi = int(hi_s) if hi_s else None
        self._check_bound(lo, j)
        if hi is not None:
            self._check_bound(hi, k + 1)
            if hi < lo:
                raise self.error("min repeat greater than max repeat", j)
        self.i = m + 1
        return lo, hi

    def _check_bound(self, n: int, pos: int) -> None:
        if n >= MAX_REPEAT:
            raise self.error("the repetition number is too large", pos)

    def atom(self, at_start: bool):
        c = self.peek()
        pos = self.i
        if c == "(":
            return self.group(at_start)
        if c == ".":
            self.i += 1
            return ("set", cs.ANY if self.flags & _S else cs.complement(cs.single(10)))
        if c == "^":
            self.i += 1
            return ("bol" if self.flags & _M else "bos", pos)
        if c == "$":
            self.i += 1
            return ("eolm" if self.flags & _M else "eol", pos)
        if c == "[":
            node = ("set", self.char_class())
        elif c == "\\":
            node = self.escape(in_class=False)
        else:
            self.i += 1
            node = ("set", cs.single(ord(c)))
        if node[0] == "set" and self.flags & _I:
            node = ("set", _ignore_case(node[1], self.p[pos:self.i], bool(self.flags & _A)))
        return node

    def braces_is_quantifier(self) -> bool:
        save = self.i
        try:
            return self.braces() is not None
        finally:
            self.i = save

    def group(self, at_start: bool):
        start = self.i
        self.i += 1
        capturing = True
        flags = self.flags
        if self.eat("?"):
            if self.peek() is None or self.p[self.i:] in ("P", "<"):
                raise self.error("unexpected end of pattern", len(self.p))
            if self.eat(":"):
                capturing = False
            elif self.eat("P<") or (self.peek() == "<" and self.peek(1) not in "=!" and self.eat("<")):
                end = self.p.find(">", self.i)
                if end < 0:
                    raise self.error("missing >, unterminated name" if self.i < len(self.p)
                                     else "missing group name", self.i)
                name = self.p[self.i : end]
                if not name.isidentifier():
                    raise self.error("bad character in group name", self.i)
                if name in self.names:
                    raise self.error(f"redefinition of group name {name!r}", self.i)
                self.names.add(name)
                self.i = end + 1
            elif self.eat("#"):
                end = self.p.find(")", self.i)
                if end < 0:
                    raise self.error("missing ), unterminated comment", start)
                self.i = end + 1
                return None
            elif self.p.startswith(("=", "!", "<=", "<!"), self.i):
                return self.lookaround(start)
            elif self.eat("P="):
                raise self.error("backreferences are not supported", start)
            elif self.eat(">"):
                raise self.error("atomic groups are not supported", start)
            elif self.eat("("):
                raise self.error("conditional groups are not supported", start)
            elif self.peek() in _FLAGS or self.peek() == "-":
                add, remove, scoped = self.inline_flags()
                if not scoped:
                    self.global_flags(add, start, at_start)
                    return None
                capturing = False
                flags = _combine_flags(self.flags, add, remove)
            else:
                raise self.error(f"unknown extension ?{self.peek()}", start + 1)
        if capturing:
            self.groups += 1
        node = self.subpattern(flags)
        if not self.eat(")"):
            raise self.error("missing ), unterminated subpattern", start)
        if node[0] in _ANCHORS or node[0] == "bound":
            node = ("cat", (node,))  # a group, which Python lets a quantifier repeat: (?:^)*
        return node

    def subpattern(self, flags: int) -> tuple:
        """The alternation inside a group, parsed under ``flags``."""
        saved = self.flags
        self.flags = flags
        self.depth += 1
        try:
            return self.alternation()
        finally:
            self.flags = saved
            self.depth -= 1

    def inline_flags(self) -> tuple[int, int, bool]:
        """The letters of ``(?aimsux-imsx:`` or ``(?aimsux)`` (``self.i`` just past ``(?``):
        ``(added, removed, scoped)``, with Python's errors and positions."""
        add = remove = 0
        c = self.next_char()
        if c != "-":
            while True:
                if c == "L":
                    raise self.error("bad inline flags: cannot use 'L' flag with a str pattern")
                if c == "t":
                    raise self.error("the TEMPLATE inline flag (?t) is not supported", self.i - 1)
                flag = _FLAGS[c]
                add |= flag
                if flag & _TYPE_FLAGS and add & _TYPE_FLAGS != flag:
                    raise self.error("bad inline flags: flags 'a', 'u' and 'L' are incompatible")
                c = self.next_char()
                if c is None:
                    raise self.error("missing -, : or )")
                if c in ")-:":
                    break
                if c not in _FLAGS:
                    raise self.error("unknown flag" if c.isalpha() else "missing -, : or )", self.i - 1)
        if c == ")":
            return add, 0, False
        if c == "-":
            c = self.next_char()
            if c is None:
                raise self.error("missing flag")
            if c not in _FLAGS:
                raise self.error("unknown flag" if c.isalpha() else "missing flag", self.i - 1)
            while True:
                if c == "t":
                    raise self.error("the TEMPLATE inline flag (?t) is not supported", self.i - 1)
                if _FLAGS[c] & _TYPE_FLAGS:
                    raise self.error("bad inline flags: cannot turn off flags 'a', 'u' and 'L'")
                remove |= _FLAGS[c]
                c = self.next_char()
                if c is None:
                    raise self.error("missing :")
                if c == ":":
                    break
                if c not in _FLAGS:
                    raise self.error("unknown flag" if c.isalpha() else "missing :", self.i - 1)
        if add & remove:
            raise self.error("bad inline flags: flag turned on and off", self.i - 1)
        return add, remove, True

    def global_flags(self, add: int, start: int, at_start: bool) -> None:
        """``(?flags)``: Python allows it only before any item of the pattern's first branch, so it
        applies to the whole pattern."""
        if not at_start:
            raise self.error("global flags not at the start of the expression", start)
        flags = self.flags | add
        if flags & _A and flags & _U:
            raise self.error("ASCII and UNICODE flags are incompatible", start)
        self.flags = flags

    def lookaround(self, start: int) -> tuple:
        """``(?=X)``, ``(?!X)``, ``(?<=X)``, ``(?<!X)``: lookbehinds only where X is one character."""
        behind = self.eat("<")
        negate = self.next_char() == "!"
        inner = self.subpattern(self.flags)
        if not self.eat(")"):
            raise self.error("missing ), unterminated subpattern", start)
        chars = _one_char(inner)
        if chars is not None:
            return ("look", start, behind, negate, chars)
        if behind:
            raise self.error("lookaround assertions looking behind (lookbehinds) are supported only on one "
                             "character or character class", start)
        return ("ahead", start, negate, inner)  # the lowering tells which lookaheads it supports where

    def escape(self, in_class: bool):
        start = self.i
        self.i += 1
        c = self.peek()
        if c is None:
            raise self.error("bad escape (end of pattern)", start)
        self.i += 1
        if c in _SIMPLE_ESCAPES:
            return ("set", cs.single(_SIMPLE_ESCAPES[c]))
        if c == "b" and in_class:
            return ("set", cs.single(8))
        if c in "dDwWsS":
            if self.flags & _A:
                base = _ASCII_CLASSES[c.lower()]
            else:
                base = {"d": cs.digit, "w": cs.word, "s": cs.space}[c.lower()]()
            return ("set", base if c.islower() else cs.complement(base))
        if c == "x":
            return ("set", cs.single(self.hex_digits(2, start)))
        if c == "u":
            return ("set", cs.single(self.hex_digits(4, start)))
        if c == "U":
            cp = self.hex_digits(8, start)
            if cp > cs.MAX_CODE_POINT:
                raise self.error("bad escape \\U (code point out of range)", start)
            return ("set", cs.single(cp))
        if c == "N":
            if not self.eat("{"):
                raise self.error("missing { in \\N{...}", self.i)
            end = self.p.find("}", self.i)
            if end < 0:
                raise self.error("missing } in \\N{...}, unterminated name", self.i)
            name = self.p[self.i : end]
            if not name:
                raise self.error("missing character name in \\N{...}", self.i)
            try:
                cp = ord(unicodedata.lookup(name))
            except KeyError:
                raise self.error(f"undefined character name {name!r}", start) from None
            self.i = end + 1
            return ("set", cs.single(cp))
        if c == "0" or (c in _OCTAL and in_class):
            # Octal escape: up to three octal digits.
            digits = c
            while len(digits) < 3 and self.peek() is not None and self.peek() in _OCTAL:
                digits += self.p[self.i]
                self.i += 1
            return ("set", cs.single(self.octal_value(digits, start)))
        if c in "0123456789":
            if in_class:
                raise self.error(f"bad escape \\{c}", start)
            # Outside a class, as in Python: three octal digits are an octal escape (\123 is "S");
            # anything else is a group reference of one or two digits.
            digits = c
            if self.peek() is not None and self.peek() in "0123456789":
                digits += self.p[self.i]
                self.i += 1
                if (digits[0] in _OCTAL and digits[1] in _OCTAL and self.peek() is not None
                        and self.peek() in _OCTAL):
                    digits += self.p[self.i]
                    self.i += 1
                    return ("set", cs.single(self.octal_value(digits, start)))
            if int(digits) > self.groups:
                raise self.error(f"invalid group reference {int(digits)}", start + 1)
            raise self.error("backreferences are not supported", start)
        if not in_class:
            if c == "A":
                return ("bos", start)
            if c == "Z":
                return ("eos", start)
            if c in "bB":
                word = _ASCII_CLASSES["w"] if self.flags & _A else cs.word()
                return ("bound", start, c == "B", word)
        if c.isascii() and c.isalnum():
            raise self.error(f"bad escape \\{c}", start)
        return ("set", cs.single(ord(c)))

    def octal_value(self, digits: str, start: int) -> int:
        value = int(digits, 8)
        if value > 0o377:
            raise self.error(f"octal escape value \\{digits} outside of range 0-0o377", start)
        return value

    def hex_digits(self, n: int, start: int) -> int:
        s = self.p[self.i : self.i + n]
        if len(s) != n or any(ch not in "0123456789abcdefABCDEF" for ch in s):
            raise self.error(f"incomplete escape (expected {n} hex digits)", start)
        self.i += n
        return int(s, 16)

    def char_class(self):
        start = self.i
        self.i += 1
        negate = self.eat("^")
        ranges: list[cs.CharSet] = []
        first = True
        while True:
            c = self.peek()
            if c is None:
                raise self.error("unterminated character set", start)
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            item_pos = self.i
            lo = self.class_item()
            if self.peek() == "-" and self.peek(1) not in (None, "]"):
                self.i += 1
                hi = self.class_item()
                if len(lo) != 1 or lo[0][0] != lo[0][1] or len(hi) != 1 or hi[0][0] != hi[0][1]:
                    raise self.error("bad character range", item_pos)
                a, b = lo[0][0], hi[0][0]
                if b < a:
                    raise self.error("bad character range", item_pos)
                ranges.append(cs.normalize([(a, b)]))
            else:
                ranges.append(lo)
        result = cs.union(*ranges) if ranges else ()
        return cs.complement(result) if negate else result

    def class_item(self) -> cs.CharSet:
        c = self.peek()
        if c == "\\":
            node = self.escape(in_class=True)
            return node[1]
        self.i += 1
        return cs.single(ord(c))


def _one_char(node: tuple) -> cs.CharSet | None:
    """The characters of a pattern that matches exactly one character (a set, or sets in
    alternation), else None."""
    if node[0] == "set":
        return node[1]
    if node[0] == "alt":
        parts = [_one_char(n) for n in node[1]]
        return None if any(p is None for p in parts) else cs.union(*parts)
    return None
