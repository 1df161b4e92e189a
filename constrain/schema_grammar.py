"""Recursive JSON Schemas as context-free grammars whose terminals are byte terms.

The schema compiler builds one regular term per schema; a recursive ``$ref`` makes the language
context-free (a tree schema nests without bound). There the compiler leaves a *hole*
(``TermStore.hole``) in place of the reference and compiles the target once as the hole's body.
``grammar_of`` turns the root term and the bodies into a ``constrain.cfg`` grammar:

- a hole is a nonterminal, whose rule is its body;
- concatenation, union and repetition around holes become rules;
- every maximal part without a hole becomes one lexeme (its term, as the lexer's DFA), so the
  parser only sees the points where the recursion enters and leaves, and text between them is
  matched by automata as in a regular schema.

Intersections and complements of parts with holes have no context-free form in general: there
the holes are unrolled ``unroll`` levels deep, which makes the part one hole-free term, a subset
of its language, and the grammar says so (``SchemaGrammar.unrolled``); so are the holes of a lazy
automaton too large to expand into rules. Recursion elsewhere stays exact.

>>> from constrain.terms import TermStore
>>> st = TermStore()
>>> tree = st.alt(st.literal(b"x"), st.seq(st.literal(b"["), st.hole("t"), st.literal(b"]")))
>>> g = grammar_of(st, st.hole("t"), {"t": tree}).grammar
>>> [body] = [r.rhs for r in g.rules if r.lhs == "h0"]  # the hole's rule: its body, a union
>>> sorted(len(r.rhs) for r in g.rules if r.lhs == body[0])  # x | "[" h0 "]"
[1, 3]
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from .cfg.ir import Grammar, Lexeme, Rule
from .terms import ALT_K, AND_K, CAT_K, EMPTY, EPS, HOLE_K, INF, LAZY_K, NOT_K, REP_K, TermStore

MAX_RULES = 50_000  # a grammar past this (lazy automata expanded into rules) is not built
# Pruning a lexeme is all its search is for, and one that gives up keeps it (see TermStore.is_empty):
# on MaskBench, the 3 lexemes proven empty took at most 28 derivatives, while 63 searches gave up
# at 1,000 (0.18 s, up to 65 ms in one schema) and 120 found a text (0.14 s).
LEXEME_SEARCH_BUDGET = 100
MAX_LAZY_STATES = 256  # states of one lazy automaton (and those nested in it) expanded into rules
MAX_COUNT = 32  # counted repetitions of a part with holes are unrolled up to this count
_NOTHING = "nothing"  # a nonterminal without rules: the parts with an empty language


class NotContextFree(Exception):
    """The term has no context-free form this module builds (the reason is the message)."""


@dataclass(frozen=True)
class SchemaGrammar:
    grammar: Grammar
    unrolled: tuple[str, ...]  # where holes were unrolled (a narrower language), if anywhere


class _TooLarge(Exception):
    """A lazy automaton has more states than MAX_LAZY_STATES to expand."""


def grammar_of(store: TermStore, start: int, bodies: dict[Hashable, int], *, unroll: int = 4,
               sizes: dict[int, int] | None = None) -> SchemaGrammar:
    """The grammar whose start rule derives ``start``, holes standing for their ``bodies``;
    holes under an intersection or a complement, or in a lazy automaton of more than
    ``MAX_LAZY_STATES`` states (an object of many required members in any order: 2**n states,
    one rule each), are unrolled ``unroll`` levels deep. ``sizes`` may say how many states a
    lazy automaton reaches (by its start term; counted up to past ``MAX_LAZY_STATES``), which
    spares defining them all to find out."""
    builder = _Builder(store, bodies, unroll, sizes or {})
    grammar = builder.build(start)
    return SchemaGrammar(grammar, tuple(sorted(builder.unrolled_in)))


class _Builder:
    def __init__(self, store: TermStore, bodies: dict[Hashable, int], unroll: int, sizes: dict[int, int]):
        self.st = store
        self.bodies = bodies
        self.sizes = sizes
        self.unroll = unroll
        self.unrolled_in: set[str] = set()
        self._lazy_left: int | None = None  # states the lazy automaton being expanded may still add
        self._named_log: list[int] = []  # terms named, in order (to undo an expansion given up)
        self._unrolled: dict[tuple[int, int], int] = {}
        self._tag = store.fresh_key()  # keys of the unrolled lazy terms, unique to this builder
        self.holes = {key: f"h{i}" for i, key in enumerate(bodies)}
        self.lexemes: dict[str, Lexeme] = {}
        self.rules: list[Rule] = []
        self.named: dict[int, str] = {}  # term -> the nonterminal deriving it

    def build(self, start: int) -> Grammar:
        for key, body in self.bodies.items():
            self.rule(self.holes[key], self.symbols(body))
        self.rule("start", self.symbols(start))
        productive = Grammar(lexemes=self.lexemes, rules=tuple(self.rules), start="start").productive()
        rules = tuple(r for r in self.rules  # rules that can derive some text
                      if r.lhs in productive and all(s in self.lexemes or s in productive for s in r.rhs))
        if "start" not in productive:
            raise NotContextFree("the language is empty")
        used = {s for r in rules for s in r.rhs}
        lexemes = {name: lex for name, lex in self.lexemes.items() if name in used}
        return Grammar(lexemes=lexemes, rules=rules, start="start", source="json schema").validate()

    def rule(self, lhs: str, rhs: list[str]) -> None:
        self.rules.append(Rule(lhs, tuple(rhs)))
        if len(self.rules) > MAX_RULES:
            raise NotContextFree(f"the grammar needs more than {MAX_RULES} rules")

    def symbols(self, t: int) -> list[str]:
        """Symbols deriving exactly the texts of ``t``."""
        st = self.st
        if t == EPS:
            return []
        if not st.has_hole[t]:
            with st.compiling(LEXEME_SEARCH_BUDGET):
                empty = st.is_empty(t)
            if empty:  # a lexeme must match something: this derives nothing (pruned)
                return [_NOTHING]
            return [self.lexeme(t)]
        node = st.nodes[t]
        k = node[0]
        if k == HOLE_K:
            if node[1] not in self.holes:
                raise NotContextFree(f"hole {node[1]!r} has no body")
            return [self.holes[node[1]]]
        if k == CAT_K:
            return self.sequence(self.spine(t))
        if t in self.named:
            return [self.named[t]]
        name = self.name(t)
        if k == ALT_K:
            for u in node[1]:
                self.rule(name, self.symbols(u))
        elif k == REP_K:
            self.repetition(name, node[1], node[2], node[3])
        elif k == LAZY_K:
            self.automaton(t, name)
        else:
            self.unrolled_in.add("an intersection or a complement")
            self.rule(name, self.symbols(self.unrolled(t, self.unroll)))
        return [name]

    def name(self, t: int) -> str:
        name = self.named[t] = f"n{t}"
        self._named_log.append(t)
        return name

    def automaton(self, t: int, name: str) -> None:
        """The rules of a lazy automaton's states; past MAX_LAZY_STATES, its holes are unrolled."""
        if self._lazy_left is not None:  # inside the expansion of an enclosing automaton
            self._lazy_left -= 1
            if self._lazy_left < 0:
                raise _TooLarge
            self.rule(name, self.symbols(self.st.definition(t)))
            return
        rules, named = len(self.rules), len(self._named_log)
        self._lazy_left = MAX_LAZY_STATES
        try:
            if self.lazy_states(t, MAX_LAZY_STATES) > MAX_LAZY_STATES:
                raise _TooLarge  # known before any rule is made (the count is cheaper than the rules)
            self.rule(name, self.symbols(self.st.definition(t)))
        except _TooLarge:  # undo what the expansion added, and make the automaton one lexeme
            del self.rules[rules:]
            for u in self._named_log[named:]:
                del self.named[u]
            del self._named_log[named:]
            self.unrolled_in.add("an object of many required members in any order")
            self.rule(name, self.symbols(self.unrolled(t, self.unroll)))  # hole-free: one lexeme
        finally:
            self._lazy_left = None

    def lazy_states(self, t: int, limit: int) -> int:
        """How many lazy terms with holes the expansion of lazy ``t`` would name (up to just past
        ``limit``): those reached through concatenations, unions, repetitions and definitions;
        intersections and complements are unrolled, not expanded. An automaton whose size is
        known past the limit ends the count before its states are defined."""
        st = self.st
        nodes, has_hole = st.nodes, st.has_hole
        if self.sizes.get(t, 0) > limit:
            return self.sizes[t]
        seen, stack, count = {t}, [st.definition(t)], 1
        while stack and count <= limit:
            u = stack.pop()
            if u in seen or not has_hole[u] or u in self.named:
                continue
            seen.add(u)
            node = nodes[u]
            k = node[0]
            if k == CAT_K:
                stack += [node[1], node[2]]
            elif k == ALT_K:
                stack += node[1]
            elif k == REP_K:
                stack.append(node[1])
            elif k == LAZY_K:
                if count + self.sizes.get(u, 0) > limit:  # its states are yet to be counted
                    return count + self.sizes[u]
                count += 1
                stack.append(st.definition(u))
        return count

    def unrolled(self, t: int, depth: int, positive: bool = True) -> int:
        """``t`` with each hole replaced by its body, ``depth`` holes deep, then by nothing where
        the hole occurs positively (under an even number of complements) and by every text where
        it occurs negatively: a hole-free subset of ``t`` either way."""
        st = self.st
        if not st.has_hole[t]:
            return t
        key = (t, depth, positive)
        got = self._unrolled.get(key)
        if got is not None:
            return got
        node = st.nodes[t]
        k = node[0]
        if k == HOLE_K:
            cut = EMPTY if positive else st.not_(EMPTY)
            r = cut if depth == 0 else self.unrolled(self.bodies[node[1]], depth - 1, positive)
        elif k == CAT_K:
            r = st.cat(self.unrolled(node[1], depth, positive), self.unrolled(node[2], depth, positive))
        elif k in (ALT_K, AND_K):
            parts = [self.unrolled(u, depth, positive) for u in node[1]]
            r = st.alt(*parts) if k == ALT_K else st.and_(*parts)
        elif k == NOT_K:
            r = st.not_(self.unrolled(node[1], depth, not positive))
        elif k == REP_K:
            r = st.rep(self.unrolled(node[1], depth, positive), node[2], node[3])
        else:  # LAZY
            # empty where the original is, if positive (a state whose completions were all cut is
            # then not proven empty, as TermStore.is_empty allows); a superset, never proven empty
            # (None: nonempty by its structure, where the original is too or this is a superset)
            r = st.lazy((self._tag, t, depth, positive), lambda: self.unrolled(st.definition(t), depth, positive),
                        nullable=st.nullable[t],
                        empty=(lambda: st.is_empty(t)) if positive and st.has_bool[t] else None,
                        min_len=st.min_len[t] if positive else 0)
        self._unrolled[key] = r
        return r

    def spine(self, t: int) -> list[int]:
        """The parts of a concatenation, in order; a part without holes is not split (it is
        one lexeme or part of one, and splitting a long literal only to join it again is slow)."""
        nodes, has_hole = self.st.nodes, self.st.has_hole
        out, stack = [], [t]
        while stack:
            u = stack.pop()
            if has_hole[u] and nodes[u][0] == CAT_K:
                stack += [nodes[u][2], nodes[u][1]]
            else:
                out.append(u)
        return out

    def sequence(self, parts: list[int]) -> list[str]:
        """Runs of parts without holes are one lexeme each."""
        out: list[str] = []
        run: list[int] = []
        for p in parts + [None]:
            if p is not None and not self.st.has_hole[p]:
                run.append(p)
                continue
            if run:
                out += self.symbols(self.st.seq(*run))
                run = []
            if p is not None:
                out += self.symbols(p)
        return out

    def repetition(self, name: str, a: int, lo: int, hi: int) -> None:
        item = self.symbols(a)
        if hi == INF:
            more = f"{name}*"
            self.rule(more, [])
            self.rule(more, item + [more])
            self.rule(name, item * lo + [more])
            return
        if hi > MAX_COUNT:
            raise NotContextFree(f"a part with a recursive reference repeated up to {hi} times")
        tail = []
        for k in range(hi - lo):  # optional items, nested: (a (a ...)?)?
            opt = f"{name}?{k}"
            self.rule(opt, [])
            self.rule(opt, item + tail)
            tail = [opt]
        self.rule(name, item * lo + tail)

    def lexeme(self, t: int) -> str:
        """A lexeme for the hole-free term ``t``; a nullable one becomes an optional lexeme."""
        st = self.st
        if st.nullable[t]:
            if t in self.named:
                return self.named[t]
            name = self.name(t)
            self.rule(name, [])
            nonempty = st.and_(t, st.not_(EPS))
            if not st.is_empty(nonempty):
                self.rule(name, [self.lexeme(nonempty)])
            return name
        name = f"t{t}"
        if name not in self.lexemes:
            self.lexemes[name] = Lexeme(name, "", term=t)
        return name
