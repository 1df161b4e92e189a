"""An Earley recognizer over lexemes, persistent so that states can be shared, branched and dropped.

Each ``Chart`` is one Earley set. Items are ``(rule, dot, origin)`` with ``origin`` the chart
where the rule was predicted, held by reference: charts form a DAG rather than a list, so a
sequence's history can fork (nondeterministic lexing) and roll back for free. ``scan`` is memoized
per chart and lexeme, so every path explored while computing masks is computed once.

Nullable nonterminals follow Aycock and Horspool: predicting a nullable symbol also steps over it.

>>> from constrain.cfg.ir import Grammar, Lexeme, Rule
>>> g = Grammar({"A": Lexeme("A", "a")}, (Rule("s", ("A", "s")), Rule("s", ())), "s")
>>> table = ParseTable(g.validate())
>>> c = table.initial()
>>> c.accepting, c.scan(table.lexeme_ids["A"]).accepting
(True, True)
"""

from __future__ import annotations

from .ir import Grammar


class ParseTable:
    """The grammar in integer form: symbols ``>= 0`` are nonterminals, ``< 0`` lexemes (``~id``)."""

    def __init__(self, grammar: Grammar):
        self.grammar = grammar
        self.lexeme_names = list(grammar.lexemes)
        self.lexeme_ids = {n: i for i, n in enumerate(self.lexeme_names)}
        nts = list(grammar.nonterminals)
        self.nt_ids = {n: i for i, n in enumerate(nts)}
        aug = len(nts)  # the augmented start symbol S' -> start
        self.rules: list[tuple[int, tuple[int, ...]]] = [(aug, (self.nt_ids[grammar.start],))]
        for r in grammar.rules:
            self.rules.append((self.nt_ids[r.lhs], tuple(self._sym(s) for s in r.rhs)))
        self.rules_of: list[list[int]] = [[] for _ in range(aug + 1)]
        for i, (lhs, _) in enumerate(self.rules):
            self.rules_of[lhs].append(i)
        self.nullable = self._nullable(aug + 1)
        self.ignore = frozenset(self.lexeme_ids[n] for n in grammar.ignore)
        self.max_interned = 20_000  # charts hold ~20 GC-tracked objects each: bounds full-GC pauses
        self._interned: dict[frozenset, Chart] = {}
        self._root: Chart | None = None

    def _sym(self, name: str) -> int:
        return self.nt_ids[name] if name in self.nt_ids else ~self.lexeme_ids[name]

    def _nullable(self, n: int) -> list[bool]:
        nullable = [False] * n
        changed = True
        while changed:
            changed = False
            for lhs, rhs in self.rules:
                if not nullable[lhs] and all(s >= 0 and nullable[s] for s in rhs):
                    nullable[lhs] = changed = True
        return nullable

    def initial(self) -> "Chart":
        """The chart before any lexeme, shared by every sequence of the current generation."""
        if self._root is None or len(self._interned) > self.max_interned:
            self._interned = {}  # a new generation: sequences under way keep their own charts
            self._root = Chart(self)
            self._root.close([(0, 0, self._root)])
        return self._root

    def intern(self, kernel: list[tuple]) -> "Chart":
        """The chart closing ``kernel``, one object per distinct kernel (charts are hash-consed).

        Equal kernels (same dotted rules, same origin charts) close to equal charts with equal
        futures, so positions that reach the same parse state (``1+`` and ``1+2+`` under a
        left-recursive sum) share one chart and everything memoized on it.
        """
        key = frozenset((r, d, id(o)) for r, d, o in kernel)  # origins are kept alive by the table
        chart = self._interned.get(key)
        if chart is None:
            chart = Chart(self)
            chart.close(kernel)
            self._interned[key] = chart
        return chart


class Chart:
    """One Earley set: the parser's state after some sequence of lexemes."""

    __slots__ = ("table", "waiting", "scanning", "accepting", "expected", "_next", "lexer_start", "after")

    def __init__(self, table: ParseTable):
        self.table = table
        self.waiting: dict[int, list] = {}  # nonterminal -> items whose dot is before it
        self.scanning: dict[int, list] = {}  # lexeme id -> items whose dot is before it
        self.accepting = False
        self.expected: frozenset[int] = frozenset()
        self._next: dict[int, Chart | None] = {}
        self.lexer_start = -1  # lexer state for this chart's expected lexemes (set by the engine)
        self.after: dict = {}  # the engine's memo of charts after each lexeme ends

    def close(self, kernel: list[tuple]) -> None:
        """Predict and complete from ``kernel`` until nothing new appears."""
        rules, rules_of, nullable = self.table.rules, self.table.rules_of, self.table.nullable
        items = list(kernel)
        seen = set(items)
        waiting, scanning = self.waiting, self.scanning
        predicted: set[int] = set()

        def add(item):
            if item not in seen:
                seen.add(item)
                items.append(item)

        i = 0
        while i < len(items):
            item = items[i]
            i += 1
            rule, dot, origin = item
            lhs, rhs = rules[rule]
            if dot == len(rhs):
                if rule == 0:  # S' -> start, predicted only in the initial chart
                    self.accepting = True
                elif origin is not self:  # same-set completions are covered by the nullable step
                    for r2, d2, o2 in origin.waiting.get(lhs, ()):
                        add((r2, d2 + 1, o2))
                continue
            sym = rhs[dot]
            if sym >= 0:
                waiting.setdefault(sym, []).append(item)
                if sym not in predicted:
                    predicted.add(sym)
                    for r2 in rules_of[sym]:
                        add((r2, 0, self))
                if nullable[sym]:
                    add((rule, dot + 1, origin))
            else:
                scanning.setdefault(~sym, []).append(item)
        self.expected = frozenset(scanning)

    def scan(self, lexeme: int) -> "Chart | None":
        """The chart after ``lexeme``, or None when the grammar does not allow it here."""
        try:
            return self._next[lexeme]
        except KeyError:
            pass
        items = self.scanning.get(lexeme)
        nxt = None
        if items:
            nxt = self.table.intern([(r, d + 1, o) for r, d, o in items])
        self._next[lexeme] = nxt
        return nxt

