"""The GBNF front end: llama.cpp's grammar dialect lowered to the grammar IR.

GBNF (llama.cpp ``grammars/README.md``) is BNF over Unicode characters::

    root   ::= "[" ws ( item ( "," ws item )* )? "]"
    item   ::= [a-z]+ | "\\"" [^"]* "\\""     # a comment
    ws     ::= [ \\t\\n]{0,8}

The syntax is parsed with Lark (the grammar is ``_SYNTAX``); as in llama.cpp, a rule ends at a
line break outside parentheses, unless the line ends with ``::=`` or ``|``.

Lowering keeps the parser's work small: every rule whose language is regular and that is not
recursive, directly or through other rules, is *collapsed*: inlined into the regex of whatever
uses it, so that maximal runs of regular items in a rule become one lexeme. In a JSON grammar,
``string`` and ``number`` become single lexemes and the rules only see the structure. This is
exact because the IR splits text into lexemes in every possible way. Repetitions of
non-regular parts become left-recursive helper rules.

Names made up by the lowering cannot clash with GBNF names (letters, digits and dashes):
helper rules and lexemes are ``owner#k``, a lexeme of a single literal is the quoted literal,
a lexeme of a single collapsed rule is that rule's name, and a rule for "this lexeme or
nothing" is the lexeme's name followed by ``?``.

>>> g = parse_gbnf('root ::= "[" num ("," num)* "]"\\nnum ::= [0-9]+')
>>> [lexeme.pattern for lexeme in g.lexemes.values()]
['\\\\[[0-9]+(?:,[0-9]+)*\\\\]']
"""

from __future__ import annotations

import json
import re

import lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lark import PostLex

from .. import charset as cs
from ..errors import GrammarError
from .ir import Grammar, Lexeme, Rule

MAX_REPETITION = 2000  # llama.cpp's MAX_REPETITION_THRESHOLD

_SYNTAX = r"""
start: (rule (_NL rule)*)? _NL?
rule: NAME _DEFINE alternatives
alternatives: sequence (_BAR sequence)*
sequence: item*
item: primary QUANT*
?primary: STRING -> literal
        | CLASS -> char_class
        | DOT -> any_char
        | NAME -> ref
        | _LPAR alternatives _RPAR

NAME: /[a-zA-Z0-9-]+/
STRING: /"(?:[^"\\]|\\[\s\S])*"/
CLASS: /\[(?:[^\]\\]|\\[\s\S])*\]/
DOT: "."
QUANT: /[*+?]|\{[ \t]*[0-9]+[ \t]*(?:,[ \t]*(?:[0-9]+[ \t]*)?)?\}/
_DEFINE: "::="
_BAR: "|"
_LPAR: "("
_RPAR: ")"
_NL: /\r\n?|\n/
%ignore /[ \t]+/
%ignore /#[^\r\n]*/
"""


class _LineBreaks(PostLex):
    """Keeps only the line breaks that end a rule: outside parentheses, not after ``::=`` or
    ``|``, and one of each run (comments and blank lines in between)."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth, previous = 0, None
        for token in stream:
            if token.type == "_LPAR":
                depth += 1
            elif token.type == "_RPAR":
                depth = max(depth - 1, 0)
            elif token.type == "_NL" and (depth or previous in (None, "_NL", "_DEFINE", "_BAR")):
                continue
            previous = token.type
            yield token


_PARSER = lark.Lark(_SYNTAX, parser="lalr", lexer="basic", postlex=_LineBreaks())


def parse_gbnf(text: str, start: str = "root") -> Grammar:
    """Parse GBNF ``text`` into the grammar IR, with ``start`` as the start rule.

    Raises ``GrammarError`` naming the rule and, in the message, the line and column
    (``position`` is the 0-based offset in ``text``): for syntax errors, bad escapes or
    repetition counts, undefined rules, a missing start rule, or an empty language.
    """
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as e:
        token = getattr(e, "token", None)
        if isinstance(e, UnexpectedCharacters):
            what, offset = f"unexpected character {text[e.pos_in_stream]!r}", e.pos_in_stream
        elif token is None or token.type == "$END":
            what, offset = "unexpected end of the grammar", len(text)
        else:
            what, offset = f"unexpected {str(token)!r}", token.start_pos
        raise _error(text, what, offset, _rule_at(text, offset)) from None
    defs = _Reader(text).rules(tree)
    if start not in defs:
        raise GrammarError(f"the grammar defines no start rule {start!r}", rule=start)
    return _Lowering(defs, start, text).grammar()


# -- syntax tree -> expression AST --------------------------------------------------------------
# Expressions are tuples: ("lit", text), ("set", CharSet), ("ref", name, offset),
# ("seq", items), ("alt", items), ("rep", item, min, max or None). The constructors below keep
# them simplified (flat, no empty literal inside a sequence or an alternation, alternatives of
# single characters merged into one set), so that the empty string is _EMPTY and only that.

_EMPTY = ("lit", "")


def _seq(items) -> tuple:
    flat: list[tuple] = []
    for item in items:
        for part in item[1] if item[0] == "seq" else (item,):
            if part == _EMPTY:
                continue
            if part[0] == "lit" and flat and flat[-1][0] == "lit":
                flat[-1] = ("lit", flat[-1][1] + part[1])
            else:
                flat.append(part)
    return flat[0] if len(flat) == 1 else ("seq", tuple(flat)) if flat else _EMPTY


def _alt(items) -> tuple:
    flat: dict[tuple, None] = {}
    chars: list[cs.CharSet] = []
    with_empty = False
    for item in items:
        for part in item[1] if item[0] == "alt" else (item,):
            if part == _EMPTY:
                with_empty = True
            elif part[0] == "set":
                chars.append(part[1])
            elif part[0] == "lit" and len(part[1]) == 1:
                chars.append(cs.single(ord(part[1])))
            else:
                flat[part] = None
    if chars:
        flat[("set", cs.union(*chars))] = None
    if not flat:
        return _EMPTY
    parts = list(flat)
    out = parts[0] if len(parts) == 1 else ("alt", tuple(parts))
    return _rep(out, 0, 1) if with_empty else out


def _rep(item: tuple, lo: int, hi: int | None) -> tuple:
    if item == _EMPTY or hi == 0:
        return _EMPTY
    if lo == hi == 1 or ((lo, hi) == (0, 1) and item[0] == "rep" and item[2] == 0):
        return item  # x{1}, and (x{0,n})?
    return ("rep", item, lo, hi)


_OPERATORS: dict[str, tuple[int, int | None]] = {"*": (0, None), "+": (1, None), "?": (0, 1)}


class _Reader:
    """Turns Lark's parse tree into expressions, checking escapes and repetition counts."""

    def __init__(self, text: str):
        self.text = text
        self.rule = ""

    def rules(self, tree: lark.Tree) -> dict[str, tuple]:
        defs: dict[str, tuple] = {}
        for node in tree.children:
            name, body = node.children
            self.rule = str(name)
            if self.rule in defs:
                raise _error(self.text, f"rule {self.rule!r} is defined twice", name.start_pos, self.rule)
            defs[self.rule] = self.expr(body)
        return defs

    def expr(self, node) -> tuple:
        kind = node.data
        if kind == "alternatives":
            return _alt(self.expr(child) for child in node.children)
        if kind == "sequence":
            return _seq(self.expr(child) for child in node.children)
        if kind == "item":
            out = self.expr(node.children[0])
            for quant in node.children[1:]:
                out = _rep(out, *self.bounds(quant))
            return out
        token = node.children[0]
        if kind == "literal":
            return ("lit", "".join(chr(cp) for cp, _ in self.chars(token, 1, len(token) - 1)))
        if kind == "char_class":
            return ("set", self.char_class(token))
        if kind == "any_char":
            return ("set", cs.ANY)
        return ("ref", str(token), token.start_pos)

    def bounds(self, quant: lark.Token) -> tuple[int, int | None]:
        if quant in _OPERATORS:
            return _OPERATORS[quant]
        lo_text, comma, hi_text = quant[1:-1].partition(",")
        lo = int(lo_text)
        hi = (int(hi_text) if hi_text.strip() else None) if comma else lo
        if max(lo, hi or 0) > MAX_REPETITION:
            raise _error(self.text, f"repetition count above {MAX_REPETITION}", quant.start_pos, self.rule)
        if hi is not None and hi < lo:
            raise _error(self.text, f"repetition {quant} has its maximum below its minimum",
                         quant.start_pos, self.rule)
        return lo, hi

    def char_class(self, token: lark.Token) -> cs.CharSet:
        negate = token.startswith("[^")
        body = self.chars(token, 2 if negate else 1, len(token) - 1)
        ranges: list[tuple[int, int]] = []
        i = 0
        while i < len(body):
            # As in llama.cpp: an unescaped "-" between two characters makes a range.
            if i + 2 < len(body) and body[i + 1] == (ord("-"), False):
                lo, hi = body[i][0], body[i + 2][0]
                if hi < lo:
                    raise _error(self.text, f"bad character range in {token}", token.start_pos, self.rule)
                ranges.append((lo, hi))
                i += 3
            else:
                ranges.append((body[i][0], body[i][0]))
                i += 1
        chars = cs.normalize(ranges)
        if negate:
            chars = cs.complement(chars)
        if not chars:
            raise _error(self.text, f"character class {token} matches no character", token.start_pos, self.rule)
        return chars

    _ESCAPE = re.compile(r"\\(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([tnr\\\"\[\]]))|(\\.?)|(.)",
                         re.S)
    _SIMPLE = {"t": "\t", "n": "\n", "r": "\r"}

    def chars(self, token: lark.Token, begin: int, end: int) -> list[tuple[int, bool]]:
        """The code points of ``token[begin:end]`` with llama.cpp's escapes decoded, each with
        whether it was escaped."""
        out = []
        for m in self._ESCAPE.finditer(token, begin, end):
            hex_digits = m.group(1) or m.group(2) or m.group(3)
            if m.group(5) is not None:
                raise _error(self.text, f"unknown escape {m.group(5)}", token.start_pos + m.start(), self.rule)
            if hex_digits:
                cp = int(hex_digits, 16)
                if cp > cs.MAX_CODE_POINT or cs.SURROGATES[0] <= cp <= cs.SURROGATES[1]:
                    raise _error(self.text, f"escape {m.group(0)} is not a Unicode scalar value",
                                 token.start_pos + m.start(), self.rule)
                out.append((cp, True))
            elif m.group(4):
                out.append((ord(self._SIMPLE.get(m.group(4), m.group(4))), True))
            else:
                out.append((ord(m.group(6)), False))
        return out


# -- expressions -> IR ------------------------------------------------------------------------


class _Lowering:
    def __init__(self, defs: dict[str, tuple], start: str, text: str):
        self.defs = defs
        self.start = start
        self.text = text
        for name, body in defs.items():
            for ref in _refs(body):
                if ref[1] not in defs:
                    raise _error(text, f"undefined rule {ref[1]!r}", ref[2], name)
        self.regular = _regular_rules(defs)
        self.inlined: dict[str, tuple] = {}
        self.lexemes: dict[str, Lexeme] = {}
        self.lexeme_of: dict[str, str] = {}  # pattern -> lexeme name
        self.rules: list[Rule] = []
        self.defined: set[str] = set()
        self.counters: dict[str, int] = {}
        self.todo: list[str] = []

    def grammar(self) -> Grammar:
        self.nonterminal(self.start)
        while self.todo:
            name = self.todo.pop()
            body = self.defs[name]
            if name in self.regular:  # only the start rule: the others are inlined
                self.rules.append(Rule(name, tuple(self.chunk(self.inline(body), None, name))))
            else:
                for alternative in body[1] if body[0] == "alt" else (body,):
                    self.rules.append(Rule(name, tuple(self.symbols(alternative, name))))
        return Grammar(self.lexemes, tuple(self.rules), self.start, source=self.text).validate()

    def nonterminal(self, name: str) -> str:
        if name not in self.defined:
            self.defined.add(name)
            self.todo.append(name)
        return name

    def fresh(self, owner: str) -> str:
        self.counters[owner] = self.counters.get(owner, 0) + 1
        return f"{owner}#{self.counters[owner]}"

    def is_regular(self, node: tuple) -> bool:
        return all(ref[1] in self.regular for ref in _refs(node))

    def inline(self, node: tuple) -> tuple:
        """A regular expression's regex: references replaced by their rules' regexes."""
        kind = node[0]
        if kind == "ref":
            name = node[1]
            if name not in self.inlined:
                self.inlined[name] = self.inline(self.defs[name])
            return self.inlined[name]
        if kind == "seq":
            return _seq(self.inline(n) for n in node[1])
        if kind == "alt":
            return _alt(self.inline(n) for n in node[1])
        if kind == "rep":
            return _rep(self.inline(node[1]), node[2], node[3])
        return node

    def symbols(self, node: tuple, owner: str) -> list[str]:
        """IR symbols deriving the language of ``node``, a part of rule ``owner``."""
        if self.is_regular(node):
            return self.chunk(self.inline(node), _name_hint(node, self.start), owner)
        kind = node[0]
        if kind == "ref":
            return [self.nonterminal(node[1])]
        if kind == "seq":
            out: list[str] = []
            run: list[tuple] = []  # a maximal run of regular items becomes one lexeme
            for item in node[1] + (None,):
                if item is not None and self.is_regular(item):
                    run.append(item)
                    continue
                if run:
                    out += self.symbols(_seq(run) if len(run) > 1 else run[0], owner)
                    run = []
                if item is not None:
                    out += self.symbols(item, owner)
            return out
        if kind == "alt":
            helper = self.fresh(owner)
            for alternative in node[1]:
                self.rules.append(Rule(helper, tuple(self.symbols(alternative, owner))))
            return [helper]
        return self.repetition(node, owner)

    def repetition(self, node: tuple, owner: str) -> list[str]:
        _, item, lo, hi = node
        parts = self.symbols(item, owner)
        if len(parts) == 1:
            x = parts[0]
        else:
            x = self.fresh(owner)
            self.rules.append(Rule(x, tuple(parts)))
        if hi is None:  # x{lo,}: lo - 1 copies, then x+ (left-recursive, as Earley likes)
            many = self.fresh(owner)
            self.rules += [Rule(many, (many, x)), Rule(many, (x,) if lo else ())]
            return [x] * max(lo - 1, 0) + [many]
        out = [x] * lo
        if hi > lo:  # up to hi - lo more: opt_k -> "" | x opt_{k-1}
            tail: tuple[str, ...] = ()
            for _ in range(hi - lo):
                opt = self.fresh(owner)
                self.rules += [Rule(opt, ()), Rule(opt, (x,) + tail)]
                tail = (opt,)
            out += list(tail)
        return out

    def chunk(self, regex: tuple, hint: str | None, owner: str) -> list[str]:
        """Symbols for a regular piece: a lexeme, "the lexeme or nothing", or nothing."""
        if regex == _EMPTY:
            return []
        pattern = _render(_nonempty(regex))
        name = self.lexeme_of.get(pattern)
        if name is None:
            name = hint if hint is not None and hint not in self.lexemes else self.fresh(owner)
            self.lexemes[name] = Lexeme(name, pattern)
            self.lexeme_of[pattern] = name
        if not _nullable(regex):
            return [name]
        optional = f"{name}?"
        if optional not in self.defined:
            self.defined.add(optional)
            self.rules += [Rule(optional, ()), Rule(optional, (name,))]
        return [optional]


def _refs(node: tuple):
    kind = node[0]
    if kind == "ref":
        yield node
    elif kind in ("seq", "alt"):
        for item in node[1]:
            yield from _refs(item)
    elif kind == "rep":
        yield from _refs(node[1])


def _regular_rules(defs: dict[str, tuple]) -> set[str]:
    """Rules that reach no recursion: a rule joins once all the rules it uses have joined, so
    no rule on a cycle ever does."""
    regular: set[str] = set()
    uses = {name: {ref[1] for ref in _refs(body)} for name, body in defs.items()}
    changed = True
    while changed:
        changed = False
        for name in defs:
            if name not in regular and uses[name] <= regular:
                regular.add(name)
                changed = True
    return regular


def _name_hint(node: tuple, start: str) -> str | None:
    """A readable lexeme name: a single rule's name, or a single literal in quotes."""
    if node[0] == "ref" and node[1] != start:
        return node[1]
    if node[0] == "lit":
        return json.dumps(node[1], ensure_ascii=False)
    return None


# -- regexes -------------------------------------------------------------------------------------


def _nullable(node: tuple) -> bool:
    kind = node[0]
    if kind == "lit":
        return node[1] == ""
    if kind == "set":
        return False
    if kind == "seq":
        return all(_nullable(n) for n in node[1])
    if kind == "alt":
        return any(_nullable(n) for n in node[1])
    return node[2] == 0 or _nullable(node[1])


def _nonempty(node: tuple) -> tuple:
    """The regex of ``node``'s language without the empty string (lexemes may not match it);
    ``node`` must match more than the empty string."""
    if not _nullable(node):
        return node
    kind = node[0]
    if kind == "alt":
        return _alt(_nonempty(n) for n in node[1])
    if kind == "rep":  # x nullable: x{lo,hi} = (x minus "")*{0,hi}; else lo is 0
        _, item, _, hi = node
        return _rep(_nonempty(item) if _nullable(item) else item, 1, hi)
    # A sequence of nullable items a·rest: nonempty(a)·rest | nonempty(rest).
    first, rest = node[1][0], _seq(node[1][1:])
    if rest == _EMPTY:
        return _nonempty(first)
    return _alt([_seq([_nonempty(first), rest]), _nonempty(rest)])


_ALT, _SEQ, _ATOM = 0, 1, 2  # binding strength of the context a regex is rendered in


def _render(node: tuple, context: int = _ALT) -> str:
    """Python ``re`` syntax for ``node``."""
    kind = node[0]
    if kind == "lit":
        text = "".join(_char(ord(c), in_class=False) for c in node[1])
        return text if len(node[1]) == 1 or context < _ATOM else f"(?:{text})"
    if kind == "set":
        return _char_set(node[1])
    if kind == "seq":
        text = "".join(_render(n, _SEQ) for n in node[1])
        return text if context < _ATOM else f"(?:{text})"
    if kind == "alt":
        text = "|".join(_render(n, _ALT) for n in node[1])
        return text if context == _ALT else f"(?:{text})"
    _, item, lo, hi = node
    quant = {(0, None): "*", (1, None): "+", (0, 1): "?"}.get((lo, hi))
    if quant is None:
        quant = f"{{{lo}}}" if lo == hi else f"{{{lo},{'' if hi is None else hi}}}"
    text = _render(item, _ATOM) + quant
    return text if context < _ATOM else f"(?:{text})"


def _char_set(chars: cs.CharSet) -> str:
    if len(chars) == 1 and chars[0][0] == chars[0][1]:
        return _char(chars[0][0], in_class=False)
    parts = []
    for lo, hi in chars:
        if lo == hi:
            parts.append(_char(lo, True))
        elif lo + 1 == hi:
            parts.append(_char(lo, True) + _char(hi, True))
        else:
            parts.append(f"{_char(lo, True)}-{_char(hi, True)}")
    return f"[{''.join(parts)}]"


def _char(cp: int, in_class: bool) -> str:
    c = chr(cp)
    if cp < 0x20 or cp == 0x7F or (cp > 0x7F and not c.isprintable()):
        return f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    return "\\" + c if c in (_CLASS_SPECIAL if in_class else _SPECIAL) else c


_SPECIAL = frozenset(".^$*+?{}[]\\|()")  # the characters Python's re gives a meaning
_CLASS_SPECIAL = frozenset("\\]^-[")


# -- errors ---------------------------------------------------------------------------------------


def _error(text: str, message: str, offset: int, rule: str | None) -> GrammarError:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return GrammarError(f"{message} at line {line}, column {column}", rule=rule, position=offset)


_RULE_HEAD = re.compile(r"^[ \t]*([a-zA-Z0-9-]+)[ \t]*::=", re.M)


def _rule_at(text: str, offset: int) -> str | None:
    """The rule being defined at ``offset`` (for syntax errors, where there is no tree)."""
    heads = _RULE_HEAD.findall(text, 0, offset)
    return heads[-1] if heads else None
