"""Random sentences of a grammar's language, and random byte mutations of them (for tests).

A sentence is a random derivation from the start rule, whose lexemes are filled in by random
walks over their byte automata, with ignored lexemes sprinkled in between.

>>> from constrain.cfg.ir import Grammar, Lexeme, Rule
>>> g = Grammar({"N": Lexeme("N", "[0-9]"), "P": Lexeme("P", "[+]")},
...             (Rule("s", ("N",)), Rule("s", ("s", "P", "N"))), "s")
>>> import re, random
>>> bool(re.fullmatch(r"[0-9](\\+[0-9])*", sample_sentence(g, random.Random(0))))
True
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict, deque
from typing import Callable

import numpy as np

from ..automaton import DEAD, LazyDFA
from ..terms import TermStore
from .ir import Grammar, Rule
from .lexemes import lexeme_term


class SentenceSampler:
    """Samples sentences of one grammar; keeps each lexeme's automaton between samples.

    Size: each nonterminal gets a budget of lexemes (``max_lexemes`` for the start rule) and
    chooses uniformly among its rules whose smallest derivations fit in it; what the chosen
    rule's smallest derivation leaves of the budget is split at random among its nonterminals.
    Termination: past derivation depth ``max_depth``, only the rules of smallest derivation
    height are chosen.
    ``ignore_prob``: the chance of an ignored lexeme at each gap between lexemes and at both
    ends. ``stop_prob``: the chance that a lexeme ends at each point where it may;
    ``max_lexeme_bytes``: past this length a lexeme ends by the shortest way.
    """

    def __init__(self, grammar: Grammar, *, max_lexemes: int = 30, max_depth: int = 40,
                 ignore_prob: float = 0.2, stop_prob: float = 0.5, max_lexeme_bytes: int = 24):
        self.grammar = grammar.validate()
        self.max_lexemes = max_lexemes
        self.max_depth = max_depth
        self.ignore_prob = ignore_prob
        self.stop_prob = stop_prob
        self.max_lexeme_bytes = max_lexeme_bytes
        self.store = TermStore()
        self.dfas: dict[str, LazyDFA] = {}
        self.size = _least(grammar, 1, _size)  # fewest lexemes
        height = _least(grammar, 0, _height)
        # Each nonterminal's rules with their sizes; unproductive ones (of infinite size) are
        # left out, they would never end.
        self.rules: dict[str, list[tuple[float, Rule]]] = {}
        self.lowest: dict[str, list[tuple[float, Rule]]] = {}
        for nt in grammar.nonterminals:
            rules = [(_measure(r, self.size, 1, _size), r) for r in grammar.rules_of(nt)]
            self.rules[nt] = [(n, r) for n, r in rules if n < math.inf]
            self.lowest[nt] = [(n, r) for n, r in self.rules[nt]
                               if _measure(r, height, 0, _height) == height[nt]]

    def sample(self, rng: random.Random) -> str:
        """One random sentence of the grammar's language."""
        out = bytearray()
        stack: list[tuple[str, int, float]] = [(self.grammar.start, 0, self.max_lexemes)]
        while stack:
            symbol, depth, budget = stack.pop()
            if symbol in self.grammar.lexemes:
                self._maybe_ignored(out, rng)
                out += self.lexeme_text(symbol, rng)
                continue
            if depth >= self.max_depth:
                choices = self.lowest[symbol]
            else:
                choices = [c for c in self.rules[symbol] if c[0] <= budget] or self.lowest[symbol]
            size, rule = choices[rng.randrange(len(choices))]
            # The budget left over goes to the nonterminals (lexemes have no use for it), in
            # uneven shares, so that some subtrees grow large.
            shares = [rng.random() ** 2 if s in self.size else 0.0 for s in rule.rhs]
            extra = max(budget - size, 0) / (sum(shares) or 1)
            stack.extend((s, depth + 1, self.size.get(s, 1) + extra * share)
                         for s, share in zip(reversed(rule.rhs), reversed(shares)))
        self._maybe_ignored(out, rng)
        return out.decode("utf-8")

    def _maybe_ignored(self, out: bytearray, rng: random.Random) -> None:
        if self.grammar.ignore and rng.random() < self.ignore_prob:
            out += self.lexeme_text(rng.choice(self.grammar.ignore), rng)

    def lexeme_text(self, name: str, rng: random.Random) -> bytes:
        """A random string of lexeme ``name``: a walk over its DFA that picks, half of the
        time, a random byte and otherwise a random next state (so that rare ways out, like a
        closing quote, are taken soon)."""
        dfa = self._dfa(name)
        state, out = dfa.start, bytearray()
        while True:
            if dfa.accepting[state] and rng.random() < self.stop_prob:
                return bytes(out)
            if len(out) >= self.max_lexeme_bytes:
                return bytes(out + _shortest_completion(dfa, state))
            row = dfa.ensure_row(state).copy()
            live = np.flatnonzero(row != DEAD)
            if len(live) == 0:  # accepting, and nothing may follow
                return bytes(out)
            if rng.random() < 0.5:
                byte = int(live[rng.randrange(len(live))])
            else:  # the next states in the order of their smallest byte, not of their ids (which
                # depend on what the store built before): the same seed, the same text
                targets, first = np.unique(row[live], return_index=True)
                target = targets[np.argsort(first)][rng.randrange(len(targets))]
                ways = live[row[live] == target]
                byte = int(ways[rng.randrange(len(ways))])
            out.append(byte)
            state = int(row[byte])

    def _dfa(self, name: str) -> LazyDFA:
        dfa = self.dfas.get(name)
        if dfa is None:
            term = lexeme_term(self.store, self.grammar.lexemes[name])
            dfa = self.dfas[name] = LazyDFA(self.store, term)
        return dfa


_SAMPLERS: OrderedDict[tuple, SentenceSampler] = OrderedDict()


def sample_sentence(grammar: Grammar, rng: random.Random, *, max_lexemes: int = 30,
                    max_depth: int = 40, ignore_prob: float = 0.2) -> str:
    """A random sentence of ``grammar``'s language, of about ``max_lexemes`` lexemes at most
    (see ``SentenceSampler``; the samplers of recent grammars are kept)."""
    key = (id(grammar), max_lexemes, max_depth, ignore_prob)
    sampler = _SAMPLERS.get(key)
    if sampler is None or sampler.grammar is not grammar:
        sampler = _SAMPLERS[key] = SentenceSampler(grammar, max_lexemes=max_lexemes, max_depth=max_depth,
                                                   ignore_prob=ignore_prob)
        # A few recent grammars keep their automata; holding them also keeps their ids unique.
        while len(_SAMPLERS) > 8:
            _SAMPLERS.popitem(last=False)
    _SAMPLERS.move_to_end(key)
    return sampler.sample(rng)


def mutate(text: str | bytes, rng: random.Random) -> bytes:
    """``text``'s UTF-8 bytes with one random byte inserted, deleted or replaced.

    Returns bytes, since the result need not be valid UTF-8. The new byte is, half of the
    time, one that already occurs in the text (a likelier near miss than a random byte).

    >>> mutate("ab", random.Random(1)) != b"ab"
    True
    """
    data = bytearray(text.encode("utf-8") if isinstance(text, str) else text)
    op = rng.randrange(3) if data else 0
    if op == 0:
        data.insert(rng.randrange(len(data) + 1), _new_byte(data, rng))
    elif op == 1:
        del data[rng.randrange(len(data))]
    else:
        i = rng.randrange(len(data))
        old = data[i]
        while data[i] == old:
            data[i] = _new_byte(data, rng)
    return bytes(data)


def _new_byte(data: bytearray, rng: random.Random) -> int:
    if data and rng.random() < 0.5:
        return data[rng.randrange(len(data))]
    return rng.randrange(256)


def _size(values: list[float]) -> float:
    return sum(values)


def _height(values: list[float]) -> float:
    return 1 + max(values, default=0)


def _measure(rule: Rule, least: dict[str, float], leaf: float, combine: Callable) -> float:
    return combine([least.get(s, leaf) for s in rule.rhs])


def _least(grammar: Grammar, leaf: float, combine: Callable) -> dict[str, float]:
    """The least, over each nonterminal's derivation trees, of a measure that is ``leaf`` for
    a lexeme and ``combine`` of its children's for a rule; inf where it derives nothing."""
    least: dict[str, float] = {nt: math.inf for nt in grammar.nonterminals}
    changed = True
    while changed:
        changed = False
        for rule in grammar.rules:
            v = _measure(rule, least, leaf, combine)
            if v < least[rule.lhs]:
                least[rule.lhs] = v
                changed = True
    return least


def _shortest_completion(dfa: LazyDFA, state: int) -> bytes:
    """The shortest bytes leading from ``state`` to acceptance (every live state has some)."""
    parent: dict[int, tuple[int, int]] = {state: (state, -1)}
    queue = deque([state])
    while queue:
        s = queue.popleft()
        if dfa.accepting[s]:
            path = bytearray()
            while s != state:
                s, byte = parent[s]
                path.append(byte)
            return bytes(reversed(path))
        row = dfa.ensure_row(s).copy()
        for byte in np.flatnonzero(row != DEAD).tolist():
            t = int(row[byte])
            if t not in parent:
                parent[t] = (s, byte)
                queue.append(t)
    raise AssertionError("a live DFA state cannot reach acceptance")
