"""The grammar IR every context-free front end lowers to: lexemes plus rules over them.

A *lexeme* is a regular language over text, written as a Python ``re`` pattern (matched whole, as
``re.fullmatch`` does). A *rule* rewrites a nonterminal into a sequence of symbols, each the name
of a lexeme or of a nonterminal (the two name spaces are disjoint). Lexemes named in ``ignore``
may appear between any two lexemes and at both ends (Lark's ``%ignore``).

The language is the plain context-free one: a text is in it when it can be split into lexemes,
*anyhow*, that the rules derive (with ignored lexemes anywhere in between). This is what Lark's
Earley parser accepts with ``lexer="dynamic_complete"``.

>>> g = Grammar(lexemes={"NUM": Lexeme("NUM", "[0-9]+"), "PLUS": Lexeme("PLUS", r"\\+")},
...             rules=(Rule("sum", ("NUM",)), Rule("sum", ("sum", "PLUS", "NUM"))), start="sum")
>>> g.validate().nonterminals
('sum',)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import GrammarError


@dataclass(frozen=True)
class Lexeme:
    """A terminal: ``pattern`` is a Python regex over text, matched whole.

    ``first_match``: the lexeme ends at the first point where its text matches, as a lazy
    ``".*?"`` regex under ``re.match`` does (Lark's ``ESCAPED_STRING``): its language is the
    prefix-free part of the pattern's.

    ``term``: the language as a byte term of the ``TermStore`` the grammar is compiled with,
    instead of a pattern (grammars made from JSON Schemas, ``constrain.schema_grammar``).
    """

    name: str
    pattern: str
    first_match: bool = False
    term: int | None = None


@dataclass(frozen=True)
class Rule:
    lhs: str
    rhs: tuple[str, ...]


@dataclass(frozen=True)
class Grammar:
    lexemes: dict[str, Lexeme]
    rules: tuple[Rule, ...]
    start: str
    ignore: tuple[str, ...] = ()
    source: str = field(default="", compare=False)

    @property
    def nonterminals(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for r in self.rules:
            seen.setdefault(r.lhs)
        return tuple(seen)

    def rules_of(self, nonterminal: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.lhs == nonterminal)

    def validate(self) -> "Grammar":
        """Check names and structure; raises ``GrammarError`` naming the rule at fault."""
        nts = set(self.nonterminals)
        if clash := nts & set(self.lexemes):
            raise GrammarError(f"{sorted(clash)[0]!r} names both a rule and a terminal", rule=sorted(clash)[0])
        if self.start not in nts:
            raise GrammarError(f"the start rule {self.start!r} is not defined", rule=self.start)
        for name in self.ignore:
            if name not in self.lexemes:
                raise GrammarError(f"ignored terminal {name!r} is not defined", rule=name)
        for r in self.rules:
            for sym in r.rhs:
                if sym not in nts and sym not in self.lexemes:
                    raise GrammarError(f"rule {r.lhs!r} uses undefined symbol {sym!r}", rule=r.lhs)
        if self.start not in self.productive():
            raise GrammarError(f"the start rule {self.start!r} derives no finite text (empty language)",
                               rule=self.start)
        return self

    def productive(self) -> set[str]:
        """Nonterminals that derive at least one string of lexemes."""
        done: set[str] = set()
        changed = True
        while changed:
            changed = False
            for r in self.rules:
                if r.lhs not in done and all(s in self.lexemes or s in done for s in r.rhs):
                    done.add(r.lhs)
                    changed = True
        return done
