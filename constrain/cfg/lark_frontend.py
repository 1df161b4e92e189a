"""Lark grammars to the grammar IR, read by ``lark``'s own grammar loader.

Lark expands EBNF (``?``, ``*``, ``+``, ``~``, groups, templates), resolves ``%import`` and
``%ignore``, and compiles terminals to Python regexes; we take its rules and terminals as they
are. Rule options that shape the tree (``?rule``, ``!rule``, aliases) and terminal priorities do
not change the language, so they are not needed here.

>>> g = parse_lark('start: NUMBER ("," NUMBER)*\\n%import common.NUMBER')
>>> sorted(g.lexemes)
['COMMA', 'NUMBER']
"""

from __future__ import annotations

import re

from lark.exceptions import LarkError, UnexpectedInput
from lark.load_grammar import load_grammar

from ..errors import GrammarError, RegexError
from ..regex_parser import has_lazy_quantifier
from .ir import Grammar, Lexeme, Rule



def parse_lark(text: str, start: str = "start") -> Grammar:
    """The IR of a Lark grammar; raises ``GrammarError`` naming the rule or position at fault."""
    if not isinstance(text, str):
        raise GrammarError(f"a Lark grammar must be a string, not {type(text).__name__}")
    try:
        loaded, _ = load_grammar(text, "<grammar>", [], False)
        terminals, lark_rules, ignore_names = loaded.compile([start], set())
    except UnexpectedInput as e:
        raise GrammarError(f"Lark grammar syntax error at line {e.line}, column {e.column}: "
                           f"{_first_line(e)}", position=_offset(text, e.line, e.column)) from None
    except (LarkError, KeyError, ValueError) as e:  # lark's own GrammarError names the rule
        message = _first_line(e)
        where = re.search(r"at line (\d+) column (\d+)", message)
        position = _offset(text, int(where.group(1)), int(where.group(2))) if where else None
        raise GrammarError(f"invalid Lark grammar: {message}", rule=_rule_in(message),
                           position=position) from None
    lexemes = {}
    for t in terminals:
        pattern = t.pattern.to_regexp()
        lexemes[t.name] = Lexeme(t.name, pattern, first_match=_has_lazy(pattern, t.name))
    rules = tuple(Rule(r.origin.name, tuple(s.name for s in r.expansion)) for r in lark_rules)
    ignore = tuple(ignore_names)
    used = {s for r in rules for s in r.rhs} | set(ignore)
    lexemes = {n: lx for n, lx in lexemes.items() if n in used}
    return Grammar(lexemes, rules, start, ignore, source="lark").validate()


def _has_lazy(pattern: str, name: str) -> bool:
    try:
        return has_lazy_quantifier(pattern)
    except RegexError as e:
        raise GrammarError(f"terminal {name!r} has an invalid regex: {e}", rule=name) from None


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _rule_in(message: str) -> str | None:
    m = re.search(r"(?:[Rr]ule|[Tt]erminal|[Ss]ymbol)s? '?([A-Za-z_][A-Za-z_0-9]*)'?", message)
    return m.group(1) if m else None


def _offset(text: str, line: int, column: int) -> int | None:
    if not line or line < 1:
        return None
    lines = text.splitlines(keepends=True)
    return sum(len(x) for x in lines[: line - 1]) + max(column - 1, 0)
