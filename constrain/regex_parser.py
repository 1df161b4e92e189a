"""Parse regular expressions (Python ``re`` syntax and semantics) into a character-level AST.

Python's dialect is the one that matters: ``jsonschema`` checks ``pattern`` with ``re.search``, so
``\\d``, ``\\w``, ``\\s``, ``.`` and ``$`` mean here what they mean there.

AST nodes are tuples:

- ``("set", CharSet)``: one character from the set
- ``("cat", (node, ...))`` and ``("alt", (node, ...))``
- ``("rep", node, min, max)`` with ``max`` = None for unbounded
- ``("bos", pos)`` (``^``, ``\\A``), ``("eos", pos)`` (``\\Z``), ``("eol", pos)`` (``$``: end, or before a
  final newline); ``pos`` is the anchor's offset in the pattern

Constructs that are not regular or that we do not enforce (backreferences, lookarounds, word
boundaries, inline flags, atomic groups, possessive quantifiers) raise ``RegexError`` naming the
construct and its position.
"""

from __future__ import annotations

import unicodedata

from . import charset as cs
from .errors import RegexError

MAX_REPEAT = 4294967295  # Python's MAXREPEAT

_OCTAL = "01234567"
_SIMPLE_ESCAPES = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92}


def parse(pattern: str) -> tuple:
    """Parse ``pattern`` into an AST; raise ``RegexError`` on bad or unsupported syntax."""
    if not isinstance(pattern, str):
        raise RegexError(f"pattern must be a string, not {type(pattern).__name__}")
    return _Parser(pattern).parse()


class _Parser:
    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.groups = 0
        self.names: set[str] = set()

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

    # -- grammar ------------------------------------------------------------------------
    def parse(self) -> tuple:
        node = self.alternation()
        if self.i < len(self.p):
            raise self.error("unbalanced parenthesis")
        return node

    def alternation(self) -> tuple:
        branches = [self.sequence()]
        while self.eat("|"):
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else ("alt", tuple(branches))

    def sequence(self) -> tuple:
        items = []
        while self.i < len(self.p) and self.peek() not in "|)":
            start = self.i
            atom = self.atom()
            if atom is None:
                continue  # a comment group
            atom = self.quantifiers(atom, start)
            items.append(atom)
        return items[0] if len(items) == 1 else ("cat", tuple(items))

    def quantifiers(self, atom: tuple, start: int) -> tuple:
        while True:
            pos = self.i
            c = self.peek()
            if c == "*":
                lo, hi = 0, None
                self.i += 1
            elif c == "+":
                lo, hi = 1, None
                self.i += 1
            elif c == "?":
                lo, hi = 0, 1
                self.i += 1
            elif c == "{":
                bounds = self.braces()
                if bounds is None:
                    return atom
                lo, hi = bounds
            else:
                return atom
            if atom[0] in ("bos", "eos", "eol"):
                raise self.error("nothing to repeat", pos)
            if atom[0] == "rep" and self.p[pos - 1] in "*+?}" and pos > start:
                # Python rejects a repeated repeat such as a** (but allows (a*)*).
                raise self.error("multiple repeat", pos)
            if self.eat("+"):
                raise self.error("possessive quantifier is not supported", pos)
            self.eat("?")  # lazy quantifiers match the same language
            atom = ("rep", atom, lo, hi)

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

    def atom(self):
        c = self.peek()
        pos = self.i
        if c == "(":
            return self.group()
        if c == "[":
            return ("set", self.char_class())
        if c == ".":
            self.i += 1
            return ("set", cs.complement(cs.single(10)))
        if c == "^":
            self.i += 1
            return ("bos", pos)
        if c == "$":
            self.i += 1
            return ("eol", pos)
        if c == "\\":
            return self.escape(in_class=False)
        if c in "*+?":
            raise self.error("nothing to repeat")
        if c == "{" and self.braces_is_quantifier():
            raise self.error("nothing to repeat")
        self.i += 1
        assert pos < len(self.p)
        return ("set", cs.single(ord(c)))

    def braces_is_quantifier(self) -> bool:
        save = self.i
        try:
            return self.braces() is not None
        finally:
            self.i = save

    def group(self):
        start = self.i
        self.i += 1
        capturing = True
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
                raise self.error("lookaround assertions are not supported", start)
            elif self.eat("P="):
                raise self.error("backreferences are not supported", start)
            elif self.eat(">"):
                raise self.error("atomic groups are not supported", start)
            elif self.eat("("):
                raise self.error("conditional groups are not supported", start)
            else:
                raise self.error("inline flags and other (?...) extensions are not supported", start)
        if capturing:
            self.groups += 1
        node = self.alternation()
        if not self.eat(")"):
            raise self.error("missing ), unterminated subpattern", start)
        return node

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
                raise self.error(f"word boundary \\{c} is not supported", start)
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
