"""Byte-level regular terms with Brzozowski derivatives.

Every regular constraint lowers to a *term* over bytes. Terms are hash-consed in a ``TermStore``
(an int id per distinct term), simplified up to associativity, commutativity and idempotence, so
that the derivatives of a term form a finite automaton that is built lazily, state by state.

Why derivatives: counted repetition ``r{m,n}`` needs no unrolling (its derivative just lowers the
counters), intersection and complement are as easy as union (``pattern`` together with
``maxLength``), and only the states a generation actually visits are ever built.

Kinds (node tuples ``(kind, ...)``):
``EMPTY`` (no string), ``EPS`` (the empty string), ``BYTES mask`` (one byte from a 256-bit mask),
``LIT data`` (the byte string ``data``, two bytes or more), ``CAT a b``, ``ALT (t, ...)``,
``AND (t, ...)``, ``NOT t`` (complement over all byte strings), ``REP t m n`` (``n`` = -1 for
unbounded), ``LAZY key`` (a term defined on demand, see ``TermStore.lazy``), ``HOLE name`` (a
nonterminal of a context-free grammar the term is part of: no regular language, see
``TermStore.hole``).
"""

from __future__ import annotations

import contextlib
import heapq
import sys
from collections.abc import Callable, Hashable, Iterable, Iterator

EMPTY_K, EPS_K, BYTES_K, CAT_K, ALT_K, AND_K, NOT_K, REP_K, LAZY_K, HOLE_K, LIT_K = range(11)
INF = -1
SEARCH_BUDGET = 5_000  # derivatives and terms an emptiness search may visit (see is_empty)
COMPILE_SEARCH_BUDGET = 1_000  # the same while compiling (see TermStore.compiling)
_STALL_COST = 2  # added priority of a witness search's step that brings no end nearer (see _search_empty;
# 2 searched the least on MaskBench's slowest schemas, of 0, 1, 2, 4 and 16)
ALL_BYTES = (1 << 256) - 1

EMPTY = 0
EPS = 1
_FAR = 1 << 30  # min_len of the empty language (sums of a few stay below Python's small-int range)


class TermStore:
    """Interns terms and computes nullability, byte classes and derivatives, all memoized."""

    def __init__(self) -> None:
        self.nodes: list[tuple] = []
        self.index: dict[tuple, int] = {}
        self.nullable: list[bool] = []
        self.has_bool: list[bool] = []  # the term contains AND or NOT (emptiness is not syntactic)
        self.first: list[int] = []  # mask of bytes a nonempty string of the term can start with
        # how far the term is from accepting, as the sum of its conjuncts' shortest strings: the
        # priority of emptiness searches (intersections must satisfy every part)
        self.min_len: list[int] = []
        self._deriv: dict[int, int] = {}  # by t << 8 | byte: an int key is hashed fast, and the collector ignores it
        self._classes: dict[int, tuple[int, ...]] = {}
        self._cap: dict[tuple[int, int], int] = {}
        # refinements of byte partitions: per store, so that the memory goes with it (a process-wide
        # cache grew with every grammar's masks, and slowed the compiles after it by a third)
        self._refined: dict[tuple, tuple[int, ...]] = {}
        self._empty: dict[int, bool] = {}  # decided: proven empty, or shown nonempty
        self._undecided: set[int] = set()  # AND/NOT terms a search gave up on while compiling
        self._guesses = 0  # answers "not proven empty" given because a search gave up, so far
        self._definitions: dict[int, Callable[[], int] | int] = {}  # LAZY terms: how to build, or built
        self._lazy_empty: dict[int, Callable[[], bool]] = {}
        self._fresh = 0
        self.has_hole: list[bool] = []  # the term contains a HOLE (it is part of a grammar)
        # an emptiness search gives up past this many terms visited and derivatives computed (a
        # derivative of an intersection derives its parts too: the work, not the frontier, is bounded)
        self.search_budget = SEARCH_BUDGET
        self._compiling = False  # give-ups are provisional (see is_empty)
        assert self._intern((EMPTY_K,), False, False) == EMPTY
        assert self._intern((EPS_K,), True, False) == EPS

    def __len__(self) -> int:
        return len(self.nodes)

    def is_new(self) -> bool:
        """Nothing built yet (only EMPTY and EPS)."""
        return len(self.nodes) == 2

    def adopt(self, other: "TermStore") -> None:
        """Become a copy of ``other``: terms built once (a compiler's prelude) start many stores.
        This store must be new, and ``other`` must hold no lazy terms (their definitions are
        closures over the store that built them)."""
        if not self.is_new() or other._definitions:
            raise ValueError("adopt needs a new store, and a store without lazy terms to copy")
        for name, value in vars(other).items():
            if name not in ("search_budget", "_compiling"):  # settings of this store, not terms
                setattr(self, name, value.copy() if isinstance(value, (list, dict, set)) else value)

    @contextlib.contextmanager
    def compiling(self, budget: int = COMPILE_SEARCH_BUDGET) -> Iterator[None]:
        """Emptiness searches get ``budget`` inside (``COMPILE_SEARCH_BUDGET``, or less where a
        search matters less). While a schema is compiled, a search only prunes (a member, a lexeme,
        a state no text completes), and giving up keeps the part. Whether the whole language is
        empty (an automaton's start state) is searched with this budget too. Giving up is
        provisional here (see ``is_empty``): the states that generation meets, the start's
        successors first, are searched with the full budget.

        Compiling MaskBench's 6,788 schemas (at 25b0117) made 2,034 searches. 750 ran with this
        budget: 470 proved a part empty, none past 1,000 derivatives. 843 pruned lexemes with a
        smaller one (3 proven empty). At 367b30c, where start states had the full budget of 5,000,
        295 schemas searched theirs (MaskBench's options): none was found empty, and 84 searches
        went past 1,000 derivatives, spending 0.80 s in all (10-28 ms in each of the hand-written
        puzzles they slowed)."""
        saved = self.search_budget, self._compiling
        self.search_budget, self._compiling = budget, True
        try:
            yield
        finally:
            self.search_budget, self._compiling = saved

    def approx_nbytes(self) -> int:
        """Estimated memory held: per term its node tuple, index entry, attribute lists and
        memoized derivatives and byte classes (450-700 bytes measured on GitHub schemas, where a
        compiled schema holds from a few thousand terms to over a million)."""
        return len(self.nodes) * 640

    def _intern(self, node: tuple, nullable: bool, has_bool: bool) -> int:
        tid = self.index.get(node)
        if tid is None:
            tid = self._add(node, nullable, has_bool, self._first_of(node), self._min_len_of(node),
                            self._has_hole_of(node))
        return tid

    def _add(self, node: tuple, nullable: bool, has_bool: bool, first: int, min_len: int, has_hole: bool) -> int:
        """Append a node not interned yet (the hot constructors compute its attributes inline)."""
        tid = len(self.nodes)
        self.nodes.append(node)
        self.nullable.append(nullable)
        self.has_bool.append(has_bool)
        self.first.append(first)
        self.min_len.append(min_len)
        self.has_hole.append(has_hole)
        self.index[node] = tid
        return tid

    def _first_of(self, node: tuple) -> int:
        """An over-approximation of the first bytes (exact without AND/NOT): derivatives by any
        other byte are EMPTY, so they need no computation."""
        k = node[0]
        if k in (EMPTY_K, EPS_K):
            return 0
        if k == BYTES_K:
            return node[1]
        if k == CAT_K:
            f = self.first[node[1]]
            return f | self.first[node[2]] if self.nullable[node[1]] else f
        if k == ALT_K:
            f = 0
            for u in node[1]:
                f |= self.first[u]
            return f
        if k == AND_K:
            f = ALL_BYTES
            for u in node[1]:
                f &= self.first[u]
            return f
        if k in (NOT_K, LAZY_K, HOLE_K):
            return ALL_BYTES
        return self.first[node[1]]

    def _has_hole_of(self, node: tuple) -> bool:
        k = node[0]
        if k == HOLE_K:
            return True
        if k in (CAT_K, NOT_K, REP_K):
            return self.has_hole[node[1]] or k == CAT_K and self.has_hole[node[2]]
        if k in (ALT_K, AND_K):
            return any(self.has_hole[u] for u in node[1])
        if k == LAZY_K:
            return node[2]
        return False

    def _min_len_of(self, node: tuple) -> int:
        k = node[0]
        if k == EMPTY_K:
            return _FAR
        if k == EPS_K:
            return 0
        if k == BYTES_K:
            return 1
        if k == CAT_K:
            return min(self.min_len[node[1]] + self.min_len[node[2]], _FAR)
        if k == ALT_K:
            return min(self.min_len[u] for u in node[1])
        if k == AND_K:
            return min(sum(self.min_len[u] for u in node[1]), _FAR)
        if k == NOT_K:
            return 1 if self.nullable[node[1]] else 0
        if k == LAZY_K:
            return 0
        if k == HOLE_K:
            return 1
        return min(node[2] * self.min_len[node[1]], _FAR)

    # -- smart constructors -----------------------------------------------------------------
    def byte_set(self, mask: int) -> int:
        if mask == 0:
            return EMPTY
        node = (BYTES_K, mask)
        tid = self.index.get(node)
        if tid is None:
            tid = self._add(node, False, False, mask, 1, False)
        return tid

    def byte_range(self, lo: int, hi: int) -> int:
        return self.byte_set(range_mask(lo, hi))

    def literal(self, data: bytes) -> int:
        """The byte string ``data``: one node however long (member names, enum strings and
        keywords are spelled all over a schema; their derivatives are built as a text reads them)."""
        if len(data) < 2:
            return self.byte_set(1 << data[0]) if data else EPS
        node = (LIT_K, data)
        tid = self.index.get(node)
        if tid is None:
            tid = self._add(node, False, False, 1 << data[0], len(data), False)
        return tid

    def cat(self, a: int, b: int) -> int:
        if a == EMPTY or b == EMPTY:
            return EMPTY
        if a == EPS:
            return b
        if b == EPS:
            return a
        # Concatenations stay tree-shaped: flattening would make building a large schema
        # quadratic (and deeply recursive); derivatives need no particular bracketing.
        node = (CAT_K, a, b)
        tid = self.index.get(node)
        if tid is None:  # the node built most: its attributes inline (as _first_of and co. compute them)
            nullable = self.nullable[a]
            first = self.first[a] | self.first[b] if nullable else self.first[a]
            tid = self._add(node, nullable and self.nullable[b], self.has_bool[a] or self.has_bool[b], first,
                            min(self.min_len[a] + self.min_len[b], _FAR), self.has_hole[a] or self.has_hole[b])
        return tid

    def seq(self, *parts: int) -> int:
        t = EPS
        index = self.index
        for p in reversed(parts):
            if p == EMPTY:
                return EMPTY
            if p == EPS:
                continue
            if t == EPS:
                t = p
                continue
            got = index.get((CAT_K, p, t))  # cat's lookup inline: most are hits
            t = self.cat(p, t) if got is None else got
        return t

    def alt(self, *ts: int) -> int:
        if len(ts) == 1:  # the common cases, without building a set: one term, or EMPTY beside one
            return ts[0]
        if len(ts) == 2:
            a, b = ts
            if a == EMPTY or a == b:
                return b
            if b == EMPTY:
                return a
        items: set[int] = set()
        mask = 0
        for t in ts:
            node = self.nodes[t]
            if node[0] == ALT_K:
                for u in node[1]:
                    if self.nodes[u][0] == BYTES_K:
                        mask |= self.nodes[u][1]
                    else:
                        items.add(u)
            elif node[0] == BYTES_K:
                mask |= node[1]
            elif t != EMPTY:
                items.add(t)
        if mask:
            items.add(self.byte_set(mask))
        if not items:
            return EMPTY
        if len(items) == 1:
            return next(iter(items))
        node = (ALT_K, tuple(sorted(items)))
        tid = self.index.get(node)
        if tid is None:  # attributes computed only for a new node
            key = node[1]
            first = 0
            for t in key:
                first |= self.first[t]
            tid = self._add(node, any(self.nullable[t] for t in key), any(self.has_bool[t] for t in key), first,
                            min(self.min_len[t] for t in key), any(self.has_hole[t] for t in key))
        return tid

    def and_(self, *ts: int) -> int:
        items: set[int] = set()
        for t in ts:
            node = self.nodes[t]
            if t == EMPTY:
                return EMPTY
            if node[0] == AND_K:
                items.update(node[1])
            elif node != (NOT_K, EMPTY):  # every text: no constraint (and no intersection)
                items.add(t)
        if not items:
            return self.not_(EMPTY)
        if EPS in items:
            return EPS if all(self.nullable[t] for t in items) else EMPTY
        if len(items) == 1:
            return next(iter(items))
        node = (AND_K, tuple(sorted(items)))
        tid = self.index.get(node)
        if tid is None:
            tid = self._intern(node, all(self.nullable[t] for t in node[1]), True)
        return tid

    def not_(self, a: int) -> int:
        node = self.nodes[a]
        if node[0] == NOT_K:
            return node[1]
        return self._intern((NOT_K, a), not self.nullable[a], True)

    def rep(self, a: int, lo: int, hi: int = INF) -> int:
        """``a{lo,hi}``; ``hi`` = INF (-1) for unbounded."""
        if hi != INF and hi < lo:
            return EMPTY
        if hi == 0 or a == EPS:
            return EPS
        if a == EMPTY:
            return EPS if lo == 0 else EMPTY
        if self.nullable[a]:
            lo = 0
        if lo == 1 and hi == 1:
            return a
        return self._intern((REP_K, a, lo, hi), lo == 0, self.has_bool[a])

    def lazy(self, key: Hashable, define: Callable[[], int], *, nullable: bool,
             empty: Callable[[], bool] | None, holes: bool = False, min_len: int = 0,
             first: int = ALL_BYTES) -> int:
        """A term named ``key`` whose definition ``define()`` is built when first needed, and may
        refer to lazy terms, itself included: an automaton with too many states to build eagerly
        (an object's members in any order, by which names were written) is built as visited.

        The caller gives the definition's nullability, and ``empty()``, which decides whether its
        language is empty when that is asked (emptiness searches do not expand lazy terms), or
        None where the language is known to be nonempty (then, like a term without AND/NOT, it
        answers at once, and the terms around it stay syntactically nonempty); whether the
        definition may contain holes, a lower bound on the length of its texts (which guides
        emptiness searches towards short witnesses), and a mask holding every byte they may start
        with (a derivative by any other byte is EMPTY without building the definition).
        """
        node = (LAZY_K, key, holes)
        tid = self.index.get(node)
        if tid is None:
            tid = self._intern(node, nullable, empty is not None)
            self.min_len[tid] = 0 if nullable else min(max(min_len, 0), _FAR)
            self.first[tid] = first
            self._definitions[tid] = define
            if empty is not None:
                self._lazy_empty[tid] = empty
        return tid

    def fresh_key(self) -> int:
        """A key no other caller of this store gets: lazy terms of different builders never meet."""
        self._fresh += 1
        return self._fresh

    def hole(self, name: Hashable) -> int:
        """A placeholder for the nonterminal ``name`` of a grammar: terms with holes describe the
        right-hand sides of a context-free grammar (``constrain.schema_grammar``), not automata.
        A hole stands for a nonempty language of nonempty texts; deriving it raises HoleReached."""
        return self._intern((HOLE_K, name), False, False)

    def definition(self, t: int) -> int:
        """The term a LAZY term stands for (built on the first call)."""
        got = self._definitions[t]
        if not isinstance(got, int):
            got = self._definitions[t] = got()
        return got

    # -- portable terms ----------------------------------------------------------------------------
    def export_term(self, t: int) -> tuple[tuple, ...]:
        """``t`` as a graph that any store can rebuild (``import_term``): its nodes in an order
        where children come first, each naming its children by position. Terms with lazy parts
        or holes are not portable (their definitions belong to this store)."""
        position: dict[int, int] = {}
        graph: list[tuple] = []
        stack = [(t, False)]
        while stack:
            u, ready = stack.pop()
            if u in position:
                continue
            node = self.nodes[u]
            k = node[0]
            if k in (LAZY_K, HOLE_K):
                raise ValueError("a term with lazy parts or holes is not portable")
            if not ready:  # its children first
                if k == CAT_K:
                    kids = node[1:3]
                elif k in (ALT_K, AND_K):
                    kids = node[1]
                else:
                    kids = node[1:2] if k in (NOT_K, REP_K) else ()
                stack.append((u, True))
                stack += [(c, False) for c in kids if c not in position]
                continue
            if k == CAT_K:
                node = (k, position[node[1]], position[node[2]])
            elif k in (ALT_K, AND_K):
                node = (k, tuple(position[c] for c in node[1]))
            elif k in (NOT_K, REP_K):
                node = (k, position[node[1]], *node[2:])
            position[u] = len(graph)
            graph.append(node)
        return tuple(graph)

    def import_term(self, graph: tuple[tuple, ...]) -> int:
        """The term of an ``export_term`` graph, built in this store."""
        ids: list[int] = []
        for node in graph:
            k = node[0]
            if k == EMPTY_K:
                t = EMPTY
            elif k == EPS_K:
                t = EPS
            elif k == BYTES_K:
                t = self.byte_set(node[1])
            elif k == LIT_K:
                t = self.literal(node[1])
            elif k == CAT_K:
                t = self.cat(ids[node[1]], ids[node[2]])
            elif k == ALT_K:
                t = self.alt(*[ids[i] for i in node[1]])
            elif k == AND_K:
                t = self.and_(*[ids[i] for i in node[1]])
            elif k == NOT_K:
                t = self.not_(ids[node[1]])
            else:
                t = self.rep(ids[node[1]], node[2], node[3])
            ids.append(t)
        return ids[-1]

    def byte_sequences(self, seqs: Iterable[tuple[int, ...]]) -> int:
        """The union of sequences of byte masks (``(m1, m2)``: a byte of m1, then one of m2), as a
        deterministic trie: its first bytes split into disjoint masks, each followed by the union
        of the tails it leads to, built the same way. A derivative then picks one existing term,
        where the flat union of the sequences would derive every sequence into a new one (a
        Unicode class has hundreds of UTF-8 sequences)."""
        firsts: dict[int, list[tuple[int, ...]]] = {}
        for seq in seqs:
            firsts.setdefault(seq[0], []).append(seq[1:])
        atoms: list[int] = []  # the bytes split by which first masks hold them
        for m in firsts:
            rest, split = m, []
            for a in atoms:
                both = a & m
                if both:
                    split.append(both)
                    rest &= ~a
                if a & ~m:
                    split.append(a & ~m)
            atoms = split + ([rest] if rest else [])
        options = []
        for a in atoms:
            tails = sorted({t for m, ts in firsts.items() if m & a for t in ts})
            longer = [t for t in tails if t]
            rest = self.alt(EPS if tails[0] == () else EMPTY, self.byte_sequences(longer) if longer else EMPTY)
            options.append(self.cat(self.byte_set(a), rest))
        return self.alt(*options)

    def star(self, a: int) -> int:
        return self.rep(a, 0, INF)

    def opt(self, a: int) -> int:
        return self.alt(a, EPS)

    # -- derivatives --------------------------------------------------------------------------
    def classes(self, t: int) -> tuple[int, ...]:
        """A partition of the 256 bytes (as masks) such that bytes of one class have equal derivatives."""
        got = self._classes.get(t)
        if got is not None:
            return got
        node = self.nodes[t]
        k = node[0]
        if k in (EMPTY_K, EPS_K):
            parts: tuple[int, ...] = (ALL_BYTES,)
        elif k == BYTES_K:
            parts = tuple(m for m in (node[1], ALL_BYTES ^ node[1]) if m)
        elif k == LIT_K:
            parts = (1 << node[1][0], ALL_BYTES ^ (1 << node[1][0]))
        elif k == CAT_K:
            parts = self.classes(node[1])
            if self.nullable[node[1]]:
                parts = self._refine(parts, self.classes(node[2]))
        elif k == LAZY_K:
            parts = self.classes(self.definition(t))
        elif k == HOLE_K:
            raise HoleReached(node[1])
        elif k in (ALT_K, AND_K):
            parts = (ALL_BYTES,)
            for u in node[1]:
                parts = self._refine(parts, self.classes(u))
            if k == ALT_K:  # bytes no child can start with all lead to EMPTY: one class
                dead = ALL_BYTES ^ self.first[t]
                if dead:
                    parts = self._refine(parts, (dead, self.first[t]))
        else:  # NOT, REP
            parts = self.classes(node[1])
        self._classes[t] = parts
        return parts

    def _refine(self, p: tuple[int, ...], q: tuple[int, ...]) -> tuple[int, ...]:
        """The coarsest partition finer than both ``p`` and ``q``."""
        if len(p) == 1:
            return q
        if len(q) == 1 or p == q:
            return p
        key = (p, q)
        got = self._refined.get(key)
        if got is None:
            got = self._refined[key] = tuple(x & y for x in p for y in q if x & y)
        return got

    def deriv(self, t: int, b: int) -> int:
        """The derivative of term ``t`` by byte ``b``: the strings s such that b+s is in t."""
        if not (self.first[t] >> b) & 1:
            return EMPTY
        key = t << 8 | b
        got = self._deriv.get(key)
        if got is not None:
            return got
        node = self.nodes[t]
        k = node[0]
        if k in (EMPTY_K, EPS_K):
            d = EMPTY
        elif k == BYTES_K:
            d = EPS if (node[1] >> b) & 1 else EMPTY
        elif k == LIT_K:  # b is its first byte (see the first-byte test above)
            d = self.literal(node[1][1:])
        elif k == CAT_K:
            a, rest = node[1], node[2]
            d = self.cat(self.deriv(a, b), rest)
            if self.nullable[a]:
                d = self.alt(d, self.deriv(rest, b))
        elif k == ALT_K:  # only the children that can start with b (an enum has hundreds)
            first = self.first
            d = self.alt(*[self.deriv(u, b) for u in node[1] if first[u] >> b & 1])
        elif k == AND_K:
            d = self.and_(*[self.deriv(u, b) for u in node[1]])
        elif k == NOT_K:
            d = self.not_(self.deriv(node[1], b))
        elif k == LAZY_K:
            d = self.deriv(self.definition(t), b)
        elif k == HOLE_K:
            raise HoleReached(node[1])
        else:  # REP
            a, lo, hi = node[1], node[2], node[3]
            d = self.cat(self.deriv(a, b), self.rep(a, max(lo - 1, 0), INF if hi == INF else hi - 1))
        self._deriv[key] = d
        return d

    def repeated_head(self, t: int, unit: int, barrier: int) -> tuple[int, int] | None:
        """``(lo, hi)`` if ``t`` is ``unit{lo,hi}`` followed by a remainder that cannot start with
        a byte of ``barrier`` (``hi`` = INF when unbounded), else None."""
        spine = []
        while self.nodes[t][0] == CAT_K:
            spine.append(self.nodes[t][2])
            t = self.nodes[t][1]
        if not spine:
            return None
        if t == unit:
            bounds = (1, 1)
        else:
            node = self.nodes[t]
            if node[0] != REP_K or node[1] != unit:
                return None
            bounds = (node[2], node[3])
        first = 0
        for part in reversed(spine):
            first |= self.first[part]
            if not self.nullable[part]:
                break
        return None if first & barrier else bounds

    # -- emptiness ---------------------------------------------------------------------------------
    def is_empty(self, t: int) -> bool:
        """Whether the language of ``t`` is empty.

        Structural for terms without AND/NOT (the constructors never build an empty one but
        EMPTY itself); an AND or NOT node is decided by searching its derivatives for a nullable term.
        A search that visits terms and computes derivatives past ``search_budget`` gives up and
        answers False (not proven empty): an automaton may then keep a state from which nothing is
        accepted. That never changes a verdict (acceptance is nullability); it can only offer
        generation a token that leads nowhere, where deciding it exactly would explore the whole
        product of an intersection with a complement. While compiling, giving up is provisional:
        the term is not searched again in the compile, but once it ends, with the full budget (so
        that the automaton's states are decided as well as generation's budget allows), and an
        answer that rests on it is not remembered as decided. Outside a compile it is final.
        """
        got = self._empty.get(t)
        if got is not None:
            return got
        node = self.nodes[t]
        k = node[0]
        guesses = self._guesses
        if t == EMPTY:
            r = True
        elif not self.has_bool[t]:
            r = False
        elif k == CAT_K:
            r = self.is_empty(node[1]) or self.is_empty(node[2])
        elif k == ALT_K:  # stops at the first branch not proven empty
            r = all(self.is_empty(u) for u in sorted(node[1], key=lambda u: self.has_bool[u]))
        elif k == REP_K:
            r = node[2] > 0 and self.is_empty(node[1])
        elif k == LAZY_K:
            decide = self._lazy_empty.pop(t)
            r = decide()
            if not r and self._guesses != guesses:
                self._lazy_empty[t] = decide
        elif self._compiling and t in self._undecided:
            self._guesses += 1
            return False
        else:
            r = self._search_empty(t)
            if r is None and self._compiling:
                self._undecided.add(t)
                self._guesses += 1
                return False
            r = bool(r)  # given up outside a compile: not proven empty, for good
        if r or self._guesses == guesses:
            self._empty[t] = r
        return r

    def _search_empty(self, t: int) -> bool | None:
        """Best-first search for an accepting derivative: terms that may end soonest first, so a
        nonempty language is usually shown so along a short path (a witness) instead of the
        whole product automaton.

        A byte that leaves the bound ``min_len`` where it was made no progress (optional
        whitespace, mostly): such steps cost ``_STALL_COST`` more, else a witness search would
        first walk every whitespace run to its maximum length wherever an AND's bound is loose.
        Successors are made one at a time (an entry ``(u, i)`` stands for the derivatives of ``u``
        by its classes from ``i`` on, at the priority of a derivative one byte nearer the end,
        ``min_len[u] - 1``; an EMPTY or seen one costs no entry): a witness path then costs about
        one derivative per byte, not one per class. None where it gave up (see is_empty)."""
        parent = {t: t}
        heap = [(self.min_len[t], 0, t, -1, 0)]  # (priority, order, term, class index, stalls)
        pushed = 0
        limit = self.search_budget + len(self._deriv)  # terms visited plus derivatives computed
        while heap:
            _, _, u, i, stalls = heapq.heappop(heap)
            if i < 0:  # the term itself, not yet tested
                if self.nullable[u] or self._empty.get(u) is False:
                    while True:  # every term on the path to an accepting one is nonempty
                        self._empty[u] = False
                        if u == t:
                            return False
                        u = parent[u]
                i = 0
            parts = self.classes(u)
            bound = self.min_len[u]
            while i < len(parts):  # up to the next derivative not seen yet
                mask = parts[i]
                i += 1
                d = self.deriv(u, (mask & -mask).bit_length() - 1)
                if d in parent or d == EMPTY or self._empty.get(d, False):
                    continue
                parent[d] = u
                if i < len(parts):  # pushed before the derivative, so a tight derivative pops first
                    pushed += 1
                    heapq.heappush(heap, (max(bound - 1, 0) + _STALL_COST * stalls, -pushed, u, i, stalls))
                pushed += 1
                d_stalls = stalls + (self.min_len[d] == bound > 0)
                heapq.heappush(heap, (self.min_len[d] + _STALL_COST * d_stalls, -pushed, d, -1, d_stalls))
                break
            if len(parent) + len(self._deriv) > limit:
                return None  # undecided (see is_empty)
        for u in parent:  # closed under derivatives and nothing in it accepts: all empty
            self._empty[u] = True
        return True

    # -- counters -------------------------------------------------------------------------------
    def cap_counters(self, t: int, limit: int) -> int:
        """Replace ``r{m,n}`` by ``r{min(m,limit), n if n <= limit else inf}`` in ``t``.

        The capped term reaches an empty language on exactly the same byte strings of length
        < ``limit`` as ``t``: each iteration consumes at least one byte, so a string that short
        cannot tell the counts apart, and emptiness outside AND/NOT is structural. AND/NOT subterms
        are left as they are. Token masks only look that far ahead, so masks of ``[a-z]{0,2000}``
        at count 3 and at count 1500 are one cache entry.
        """
        key = (t, limit)
        got = self._cap.get(key)
        if got is not None:
            return got
        node = self.nodes[t]
        k = node[0]
        if k == CAT_K:
            r = self.cat(self.cap_counters(node[1], limit), self.cap_counters(node[2], limit))
        elif k == ALT_K:
            r = self.alt(*[self.cap_counters(u, limit) for u in node[1]])
        elif k == REP_K:
            a = self.cap_counters(node[1], limit)
            lo, hi = node[2], node[3]
            r = self.rep(a, min(lo, limit), INF if hi == INF or hi > limit else hi)
        else:
            r = t
        self._cap[key] = r
        return r


def range_mask(lo: int, hi: int) -> int:
    """The byte mask of ``lo..hi``."""
    return ((1 << (hi + 1)) - 1) ^ ((1 << lo) - 1)


class HoleReached(Exception):
    """An automaton operation reached a grammar hole: the term is not regular there."""


sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
