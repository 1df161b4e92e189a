"""Completing a partial output with holes: does some filling of ``x₁□x₂□…□xₙ`` lie in the language?

The partial output stands for the regular language ``x₁Σ*x₂…Σ*xₙ``: every hole may take any
bytes, none included, and a hole at an end is an empty first or last piece. We decide whether
its intersection with the grammar's language is empty without building the intersection grammar,
and if it is not, return a witness with the fewest filled-in bytes:

1. *The pattern*: a byte automaton with one state per position of ``x₁x₂…xₙ`` (UTF-8). The
   position where a hole sits loops on every byte (adjacent holes share it: ``Σ*Σ* = Σ*``).
2. *Lexeme spans*: a lexeme ``L`` *spans* positions ``p`` to ``e`` when some string of ``L`` leads
   the pattern from ``p`` to ``e``. A forward run of ``L``'s DFA from ``p`` keeps, per DFA state,
   the fewest hole bytes that reach it: through literal bytes the run is a plain DFA walk, and
   at a hole every state reachable from a live one joins, at the cost of the shortest string
   between them. Runs are memoized, and made only from positions the parser reaches (ignored
   lexemes' from every position, to know where they lead).
3. *Parsing*: an Earley deduction over pattern positions, items ``(A → α•β, origin, end)``. Inside
   a hole a whole subtree may start and end at the same position, so the chart is a graph rather
   than a list: a completion is matched both against the items already waiting for it and
   against those that arrive later. Items are settled cheapest first (Knuth's generalization of
   Dijkstra's algorithm, cost = hole bytes), so the first accepting item carries a shortest
   completion. There are at most ``|dotted rules|·(n+1)²`` items, each settled once: the work
   is polynomial in the pattern's length ``n``.
4. *Witness*: back-pointers give one derivation's lexeme spans, in order; each span is filled with
   its cheapest string (the lexeme DFA's shortest paths across the holes).

Ignored lexemes may come before every lexeme and at the end; lexeme automata only accept valid
UTF-8, so a hole next to a piece that splits a character is filled to complete it.

>>> from constrain.cfg.lark_frontend import parse_lark
>>> g = parse_lark('start: "[" [NUM ("," NUM)*] "]"\\nNUM: /[0-9]+/')
>>> completable(g, ["[1,", "]"])
Completion(text='[1,0]', fillings=('0',))
>>> completable(g, ["[1", "2"]) is None
True
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..automaton import DEAD, LazyDFA
from ..errors import BudgetExceededError
from ..terms import TermStore
from .earley import ParseTable
from .ir import Grammar
from .lexemes import lexeme_term

_INF = float("inf")
# Bytes a hole is filled with, best first: ASCII letters and digits read best in a witness.
_BYTE_ORDER = sorted(range(256), key=lambda b: (not (b < 128 and chr(b).isalnum()), not 32 <= b < 127, b))
_GOAL = -1  # the rule number of the goal item: the start symbol, then ignored lexemes to the end


@dataclass(frozen=True)
class Completion:
    """A text of the language that holds the pieces in order, ``fillings[k]`` in hole ``k``.

    Fillings are ``str`` when every piece is (each is then whole characters), else ``bytes``.
    """

    text: str
    fillings: tuple[str, ...] | tuple[bytes, ...]


class CompletionChecker:
    """One grammar's lexeme automata, compiled once, for deciding many partial outputs.

    Shortest strings between lexeme DFA states are cached too, so repeated checks (a diffusion
    loop's proposals) only redo the pattern-dependent part. ``max_items`` bounds the parser's
    work per check (``BudgetExceededError`` past it).

    >>> from constrain.cfg.lark_frontend import parse_lark
    >>> checker = CompletionChecker(parse_lark('start: "(" start ")" | "x"'))
    >>> checker.check(["((", ""]).text, checker.check(["x", "("])
    ('((x))', None)
    """

    def __init__(self, grammar: Grammar, *, store: TermStore | None = None, max_items: int = 2_000_000):
        self.grammar = grammar.validate()
        self.table = ParseTable(self.grammar)
        store = store if store is not None else TermStore()
        self.lexemes = [_LexemeDFA(LazyDFA(store, lexeme_term(store, self.grammar.lexemes[name])))
                        for name in self.table.lexeme_names]
        self.max_items = max_items

    def check(self, pieces: Sequence[str | bytes]) -> Completion | None:
        """A shortest completion of ``pieces`` (holes between them), or None when there is none."""
        return _Search(self, _Pattern(pieces)).solve()


def completable(grammar: Grammar, pieces: Sequence[str | bytes], *,
                store: TermStore | None = None) -> Completion | None:
    """A completion of the partial output ``pieces[0] □ pieces[1] □ … □ pieces[-1]``, or None.

    Each ``□`` stands for any text, the empty one included; put an empty piece first or last for
    a hole at an end. The completion fills the holes with the fewest bytes in all.

    >>> from constrain.cfg.lark_frontend import parse_lark
    >>> g = parse_lark('start: "a" start "b" |')
    >>> completable(g, ["", "aa", ""]).fillings, completable(g, ["b", "a"])
    (('', 'bb'), None)
    """
    return CompletionChecker(grammar, store=store).check(pieces)


class _Pattern:
    """``x₁Σ*x₂…Σ*xₙ`` as positions of the pieces' bytes, some of them holes."""

    def __init__(self, pieces: Sequence[str | bytes]):
        if isinstance(pieces, (str, bytes)) or not pieces:
            raise ValueError("pieces must be a non-empty list of str or bytes (one more than the holes)")
        parts = []
        for piece in pieces:
            if isinstance(piece, str):
                parts.append(piece.encode("utf-8"))
            elif isinstance(piece, (bytes, bytearray)):
                parts.append(bytes(piece))
            else:
                raise TypeError(f"a piece must be str or bytes, not {type(piece).__name__}")
        self.data = b"".join(parts)
        self.hole_positions = list(itertools.accumulate(len(p) for p in parts[:-1]))
        self.holes = frozenset(self.hole_positions)
        self.as_text = all(isinstance(p, str) for p in pieces)


class _LexemeDFA:
    """A lexeme's DFA with Python rows and shortest strings between its states."""

    def __init__(self, dfa: LazyDFA):
        self.dfa = dfa
        self.start = dfa.start
        self._rows: dict[int, list[int]] = {}
        self._edges: dict[int, list[tuple[int, int]]] = {}
        self._trees: dict[int, dict[int, tuple[int, int, int]]] = {}

    def row(self, state: int) -> list[int]:
        row = self._rows.get(state)
        if row is None:
            row = self._rows[state] = self.dfa.ensure_row(state).tolist()
        return row

    def accepting(self, state: int) -> bool:
        return bool(self.dfa.accepting[state])

    def reach(self, source: int) -> dict[int, tuple[int, int, int]]:
        """Every state reachable from ``source``: ``(distance, parent, byte)`` of a shortest path."""
        tree = self._trees.get(source)
        if tree is None:
            tree = {source: (0, source, -1)}
            queue = deque([source])
            while queue:
                state = queue.popleft()
                dist = tree[state][0] + 1
                for nxt, byte in self._edges_of(state):
                    if nxt not in tree:
                        tree[nxt] = (dist, state, byte)
                        queue.append(nxt)
            self._trees[source] = tree
        return tree

    def path(self, source: int, target: int) -> bytes:
        """The shortest string from ``source`` to ``target`` (which must be reachable)."""
        tree = self.reach(source)
        out = bytearray()
        while target != source:
            _, target, byte = tree[target]
            out.append(byte)
        return bytes(reversed(out))

    def _edges_of(self, state: int) -> list[tuple[int, int]]:
        """Distinct live successors, each with its preferred byte."""
        edges = self._edges.get(state)
        if edges is None:
            row, seen = self.row(state), {DEAD}
            edges = []
            for byte in _BYTE_ORDER:
                if row[byte] not in seen:
                    seen.add(row[byte])
                    edges.append((row[byte], byte))
            self._edges[state] = edges
        return edges


class _Search:
    """One partial output against one grammar: spans, the cheapest-first deduction, the witness."""

    def __init__(self, checker: CompletionChecker, pattern: _Pattern):
        self.checker = checker
        self.table = checker.table
        self.pattern = pattern
        self.end = len(pattern.data)
        self._spans: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self.skip = self._skips()

    # -- lexeme spans ------------------------------------------------------------------------------
    def _run(self, lexeme: int, start: int) -> Iterator[tuple[int, dict[int, int], dict[int, int]]]:
        """``(position, states on arrival, states after the hole loop)`` of ``lexeme`` from
        ``start``, each state with the fewest hole bytes that reach it, until the run dies."""
        lx, data, holes = self.checker.lexemes[lexeme], self.pattern.data, self.pattern.holes
        states = {lx.start: 0}
        for j in range(start, self.end + 1):
            looped = _closure(lx, states) if j in holes else states
            yield j, states, looped
            if j == self.end:
                return
            states = {}
            for state, cost in looped.items():
                nxt = lx.row(state)[data[j]]
                if nxt != DEAD and cost < states.get(nxt, _INF):
                    states[nxt] = cost
            if not states:
                return

    def spans(self, lexeme: int, start: int) -> list[tuple[int, int]]:
        """``(end, hole bytes)`` for every position a string of ``lexeme`` reaches from ``start``."""
        key = (lexeme, start)
        got = self._spans.get(key)
        if got is None:
            lx = self.checker.lexemes[lexeme]
            got = []
            for j, _, looped in self._run(lexeme, start):
                cost = min((c for s, c in looped.items() if lx.accepting(s)), default=_INF)
                if cost < _INF:
                    got.append((j, cost))
            self._spans[key] = got
        return got

    def fill(self, lexeme: int, start: int, end: int) -> list[tuple[int, bytes]]:
        """A cheapest string of ``lexeme`` from ``start`` to ``end``, as ``(hole position, bytes)``
        for the holes it crosses (the rest is the pattern's own bytes)."""
        lx, data = self.checker.lexemes[lexeme], self.pattern.data
        steps = []
        for step in self._run(lexeme, start):
            steps.append(step)
            if step[0] == end:
                break
        looped = steps[-1][2]
        state = min((s for s in looped if lx.accepting(s)), key=looped.__getitem__)
        out = []
        for k in range(len(steps) - 1, -1, -1):
            j, arrived, _ = steps[k]
            if j in self.pattern.holes:  # the hole's loop led from a state on arrival to ``state``
                source = min(arrived, key=lambda s: arrived[s] + lx.reach(s).get(state, (_INF,))[0])
                if source != state:
                    out.append((j, lx.path(source, state)))
                state = source
            if k:  # back over the pattern's byte before ``j``, to a state as cheap
                before = steps[k - 1][2]
                state = next(s for s, c in before.items()
                             if lx.row(s)[data[j - 1]] == state and c == arrived[state])
        return out[::-1]

    def _skips(self) -> list[dict[int, tuple[int, tuple[int, int] | None]]]:
        """Per position ``j``: every ``p`` that ignored lexemes lead to from ``j``, with the fewest
        hole bytes and the first step ``(lexeme, next position)`` of such a way."""
        skip: list[dict] = [{} for _ in range(self.end + 1)]
        for j in range(self.end, -1, -1):
            here = skip[j]
            here[j] = (0, None)
            for lexeme in self.table.ignore:
                for mid, cost in self.spans(lexeme, j):
                    if mid == j:  # an ignored lexeme inside a hole: never needed
                        continue
                    for p, (rest, _) in skip[mid].items():
                        if cost + rest < here.get(p, (_INF,))[0]:
                            here[p] = (cost + rest, (lexeme, mid))
        return skip

    # -- the deduction -----------------------------------------------------------------------------
    def solve(self) -> Completion | None:
        goal = self._deduce()
        return None if goal is None else self._witness(self._leaves(goal))

    def _deduce(self) -> tuple | None:
        """Settle items ``(rule, dot, origin, end)`` cheapest first; the goal once settled, or None.

        ``back`` holds each settled item's justification: None (predicted), ``("lex", item,
        lexeme, start, end)``, ``("nt", item, completed item)`` or ``("end", completed start)``.
        """
        # A bucket queue (most items cost 0): cost -> items pushed at that cost, first in first
        # out, and a heap of those costs. Predicted items cost 0 whenever they are pushed, so the
        # smallest cost can drop: each pop reads the heap's top anew.
        self.buckets: dict[int, deque] = {}
        self.costs: list[int] = []
        self.tentative: dict[tuple, int] = {}
        self.back: dict[tuple, tuple | None] = {}
        self.waiting: dict[tuple[int, int], list] = defaultdict(list)  # (position, nt) -> items
        self.done: dict[tuple[int, int], dict] = defaultdict(dict)  # (origin, nt) -> end -> item
        self.predicted: set[tuple[int, int]] = set()
        self._push(0, (0, 0, 0, 0), None)
        while self.costs:
            cost = self.costs[0]
            bucket = self.buckets[cost]
            item, why = bucket.popleft()
            if not bucket:
                heapq.heappop(self.costs)
                del self.buckets[cost]
            if item not in self.back and self.tentative[item] == cost:
                if goal := self._settle(item, cost, why):
                    return goal
        return None

    def _settle(self, item: tuple, cost: int, why: tuple | None) -> tuple | None:
        """Record ``item`` as settled at ``cost`` and deduce from it; the goal when it is one."""
        self.back[item] = why
        if len(self.back) > self.checker.max_items:
            raise BudgetExceededError(f"the completion search exceeded {self.checker.max_items} items")
        rule, dot, _, _ = item
        if rule == _GOAL:
            return item
        rhs = self.table.rules[rule][1]
        if dot == len(rhs):
            self._complete(item, cost)
        elif rhs[dot] >= 0:
            self._predict(item, cost, rhs[dot])
        else:
            self._scan(item, cost, ~rhs[dot])
        return None

    def _push(self, cost: int, item: tuple, why: tuple | None) -> None:
        if cost < self.tentative.get(item, _INF) and item not in self.back:
            self.tentative[item] = cost
            bucket = self.buckets.get(cost)
            if bucket is None:
                bucket = self.buckets[cost] = deque()
                heapq.heappush(self.costs, cost)
            bucket.append((item, why))

    def _complete(self, item: tuple, cost: int) -> None:
        """A settled ``B → γ•`` from ``origin`` to ``end`` moves on every item waiting for ``B`` at
        ``origin``, now and later (the first such item settled is the cheapest)."""
        rule, _, origin, end = item
        if rule == 0 and self.end in self.skip[end]:
            self._push(cost + self.skip[end][self.end][0], (_GOAL, 0, 0, self.end), ("end", item))
        key = (origin, self.table.rules[rule][0])
        if end not in self.done[key]:
            self.done[key][end] = (cost, item)
            for (r, d, o, _), wcost in self.waiting[key]:
                self._push(wcost + cost, (r, d + 1, o, end), ("nt", (r, d, o, origin), item))

    def _predict(self, item: tuple, cost: int, nt: int) -> None:
        rule, dot, origin, here = item
        key = (here, nt)
        self.waiting[key].append((item, cost))
        if key not in self.predicted:
            self.predicted.add(key)
            for r in self.table.rules_of[nt]:
                self._push(0, (r, 0, here, here), None)
        for end, (ccost, completed) in self.done[key].items():
            self._push(cost + ccost, (rule, dot + 1, origin, end), ("nt", item, completed))

    def _scan(self, item: tuple, cost: int, lexeme: int) -> None:
        """Ignored lexemes, then ``lexeme``: every way on from here."""
        rule, dot, origin, here = item
        for start, (skip_cost, _) in self.skip[here].items():
            for end, lexeme_cost in self.spans(lexeme, start):
                self._push(cost + skip_cost + lexeme_cost, (rule, dot + 1, origin, end),
                           ("lex", item, lexeme, start, end))

    # -- the witness -------------------------------------------------------------------------------
    def _leaves(self, goal: tuple) -> list[tuple[int, int, int]]:
        """The ``(lexeme, start, end)`` spans of the goal's derivation, ignored ones included, in
        text order (an explicit stack: derivations can be deep)."""
        out: list[tuple[int, int, int]] = []
        stack: list[tuple] = [("item", goal)]
        while stack:
            kind, x = stack.pop()
            if kind == "leaf":
                out.append(x)
                continue
            why = self.back[x]
            if why is None:
                continue
            if why[0] == "end":
                stack.extend(("leaf", s) for s in reversed(self._skip_path(why[1][3], self.end)))
                stack.append(("item", why[1]))
            elif why[0] == "nt":
                stack += [("item", why[2]), ("item", why[1])]
            else:
                _, prev, lexeme, p, end = why
                stack.append(("leaf", (lexeme, p, end)))
                stack.extend(("leaf", s) for s in reversed(self._skip_path(prev[3], p)))
                stack.append(("item", prev))
        return out

    def _skip_path(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        out = []
        while start != stop:
            lexeme, mid = self.skip[start][stop][1]
            out.append((lexeme, start, mid))
            start = mid
        return out

    def _witness(self, leaves: list[tuple[int, int, int]]) -> Completion:
        fills: dict[int, bytearray] = defaultdict(bytearray)
        for lexeme, start, end in leaves:
            for hole, data in self.fill(lexeme, start, end):
                fills[hole] += data
        data, text, last = self.pattern.data, bytearray(), 0
        for hole in sorted(self.pattern.holes):
            text += data[last:hole] + fills[hole]
            last = hole
        text += data[last:]
        fillings, seen = [], set()
        for hole in self.pattern.hole_positions:  # holes at one position: the first takes it all
            fillings.append(b"" if hole in seen else bytes(fills[hole]))
            seen.add(hole)
        if self.pattern.as_text:
            return Completion(text.decode("utf-8"), tuple(f.decode("utf-8") for f in fillings))
        return Completion(text.decode("utf-8"), tuple(fillings))


def _closure(lx: _LexemeDFA, states: dict[int, int]) -> dict[int, int]:
    """The states a hole leads to from ``states``, each with its fewest hole bytes."""
    out: dict[int, int] = {}
    for state, cost in states.items():
        for nxt, (dist, _, _) in lx.reach(state).items():
            if cost + dist < out.get(nxt, _INF):
                out[nxt] = cost + dist
    return out
