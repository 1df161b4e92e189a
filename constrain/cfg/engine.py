"""A context-free grammar bound to a vocabulary: parser states, byte advance and token masks.

A parser state is a set of *configurations* ``(chart, lexer state)``: the Earley chart after the
lexemes read so far and the lexer inside the current lexeme. Lexing is nondeterministic — where
a lexeme may end, both continuing it and ending it are kept — so the language is exactly the
grammar's context-free language (see ``constrain.cfg.ir``). Configurations that die are dropped.

Token masks split tokens the way the fast engines do. For a configuration ``(chart, s)``:

- tokens read wholly inside the current lexeme depend on ``s`` alone: one cached mask per lexer
  state, shared by every position of every sequence;
- a token that ends the lexeme after ``k`` bytes and goes on is checked through the parser: for
  each lexeme ``L`` the lexer can end there and the chart allows, the rest of the token is read
  from the chart after ``L``. The set of tokens following a *lexical path* (``s``, then lexemes
  ``L1``, ``L2``, ... each restarting the lexer in a given state) depends on the path alone and
  is cached too; per step only the parser decides which paths are open.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..automaton import DEAD
from ..errors import BudgetExceededError
from ..terms import TermStore
from ..token_index import VocabTrie, token_ends_for
from ..vocab import Vocabulary
from .earley import Chart, ParseTable
from .ir import Grammar
from .lexemes import lexeme_term
from .lexer import Lexer

ROOT_LEVEL = -1  # a lexical path segment that starts before the token's first byte


class CfgState:
    """An immutable parser state (hashable by identity); the mask is cached on it."""

    __slots__ = ("configs", "fresh", "mask")

    def __init__(self, configs: tuple[tuple[Chart, int], ...], fresh: bool = False):
        self.configs = configs
        self.fresh = fresh  # nothing read yet: accepting iff the grammar derives the empty text
        self.mask: np.ndarray | None = None


@dataclass
class _Segment:
    """Tokens following one lexical path with the last lexeme still open, and where it may end.

    Segments form a tree rooted at a lexer state: a child continues its parent's path with one
    more lexeme ``L`` ending and the lexer restarting in a given state.
    """

    tokens: np.ndarray  # token ids (packed mask for the root segment)
    exits: dict[int, dict[int, np.ndarray]] = field(default_factory=dict)  # lexeme -> level -> trie nodes
    children: dict[tuple[int, int], "_Segment"] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not len(self.tokens) and not self.exits


class CompiledCFG:
    """A grammar compiled against a vocabulary. Thread-safe; share it across sequences."""

    def __init__(self, vocab: Vocabulary, trie: VocabTrie, grammar: Grammar, *, source: str,
                 max_configs: int = 512, store: TermStore | None = None, warnings: tuple[str, ...] = ()):
        """``store``: the TermStore of lexemes given as terms (a fresh one by default)."""
        self.vocab = vocab
        self.trie = trie
        self.max_configs = max_configs
        self.ends = token_ends_for(vocab)
        self.source = source
        self.identity = source  # the language's identity (Compiler sets a digest of all it compiled)
        self.warnings = warnings
        self.grammar = grammar.validate()
        self.table = ParseTable(self.grammar)
        store = self.store = TermStore() if store is None else store
        self.lexer = Lexer(store, [lexeme_term(store, grammar.lexemes[n]) for n in self.table.lexeme_names])
        self.ignore = self.table.ignore
        self._self_closed = frozenset(i for i in self.ignore if _closed_under_concatenation(store, self.lexer.dfas[i].term_of[self.lexer.dfas[i].start]))
        self.eos_ids = frozenset(i for i in vocab.eos_token_ids if i < vocab.size)
        self._eos_array = np.asarray(sorted(self.eos_ids), dtype=np.int64)
        self.eos_only_mask = trie.eos_only_mask(self.eos_ids)
        self._lock = threading.RLock()
        self._roots: dict[int, _Segment] = {}
        self._recent_masks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.mask_lru_size = 1024
        self._prepare(self.table.initial())  # fails early on a bad start lexer

    # -- the state-machine protocol the Matcher uses ---------------------------------------------
    def initial_state(self) -> CfgState:
        """The start state. Charts are hash-consed per grammar (``ParseTable.intern``), a bounded
        table that starts a new generation when full, so memory does not grow without end."""
        with self._lock:
            root = self._prepare(self.table.initial())
        return CfgState(((root, root.lexer_start),), fresh=True)

    def advance(self, state: CfgState, data: bytes) -> CfgState | None:
        """The state after ``data``, or None when no configuration survives."""
        lexer = self.lexer
        configs = state.configs
        with self._lock:
            for b in data:
                nxt: dict[tuple[int, int], tuple[Chart, int]] = {}
                for chart, s in configs:
                    t = lexer.step_byte(s, b)
                    if t != DEAD:
                        nxt[(id(chart), t)] = (chart, t)
                    for lexeme in lexer.accepts[s]:
                        for after, start in self._after(chart, lexeme):
                            t = lexer.step_byte(start, b)
                            if t != DEAD:
                                nxt[(id(after), t)] = (after, t)
                if not nxt:
                    return None
                if len(nxt) > self.max_configs:
                    raise BudgetExceededError(
                        f"the text splits into lexemes in over {self.max_configs} live ways: the "
                        f"grammar's terminals are ambiguous where they meet (e.g. A* with A: /a+/)")
                configs = tuple(nxt.values())
        return CfgState(configs)

    def is_accepting(self, state: CfgState) -> bool:
        if state.fresh and state.configs[0][0].accepting:
            return True
        with self._lock:
            return any(after.accepting
                       for chart, s in state.configs
                       for lexeme in self.lexer.accepts[s]
                       for after, _ in self._after(chart, lexeme))

    def mask_of(self, state: CfgState) -> np.ndarray:
        """The packed mask of ``state`` (do not modify the returned array).

        Cached on the state, and by its configurations in a bounded LRU: inside a long lexeme
        (a string body) every step has the same chart and lexer state, so the same mask.
        """
        mask = state.mask
        if mask is None:
            key = (state.fresh, state.configs)  # charts hash by identity; the key keeps them alive
            with self._lock:
                mask = self._recent_masks.get(key)
                if mask is None:
                    mask = self._compute_mask(state)
                    mask.flags.writeable = False
                    self._recent_masks[key] = mask
                    if len(self._recent_masks) > self.mask_lru_size:
                        self._recent_masks.popitem(last=False)
                else:
                    self._recent_masks.move_to_end(key)
            state.mask = mask
        return mask

    def approx_nbytes(self) -> int:
        """Estimated memory held: the lexemes' term store and automata, the recent masks, and the
        token sets of the lexical paths walked (charts are a bounded table, not counted)."""
        with self._lock:  # the caches grow under it
            segments, stack = 0, list(self._roots.values())
            while stack:
                seg = stack.pop()
                segments += seg.tokens.nbytes
                stack += seg.children.values()
            masks = len(self._recent_masks) * self.eos_only_mask.nbytes
        return (self.store.approx_nbytes() + self.lexer.table.nbytes
                + sum(d.table.nbytes for d in self.lexer.dfas) + masks + segments)

    def matcher(self):
        from ..matcher import Matcher

        return Matcher(self)

    # -- parser side ------------------------------------------------------------------------------
    def _prepare(self, chart: Chart) -> Chart:
        if chart.lexer_start < 0:
            chart.lexer_start = self.lexer.start(chart.expected | self.ignore)
        return chart

    def _after(self, chart: Chart, lexeme: int) -> tuple[tuple[Chart, int], ...]:
        """``(chart, lexer start)`` pairs after ``lexeme`` ends: scanned and/or skipped if ignored.

        After an ignored lexeme closed under concatenation (``WS+``) the same lexeme may not start
        again at once: it would only split one run in two, the same text, and the splits of every
        whitespace token would multiply the lexical paths for nothing.
        """
        got = chart.after.get(lexeme)
        if got is None:
            out = []
            if lexeme in chart.expected:
                nxt = self._prepare(chart.scan(lexeme))
                out.append((nxt, nxt.lexer_start))
            if lexeme in self.ignore:
                if lexeme in self._self_closed:
                    out.append((chart, self.lexer.start(chart.expected | (self.ignore - {lexeme}))))
                else:
                    out.append((chart, chart.lexer_start))
            got = chart.after[lexeme] = tuple(out)
        return got

    # -- masks ------------------------------------------------------------------------------------
    def _compute_mask(self, state: CfgState) -> np.ndarray:
        packed = np.zeros(self.trie.num_words, dtype=np.int32)
        ids: list[np.ndarray] = []
        seen: set[tuple[int, int]] = set()
        for chart, s in state.configs:
            root = self._root_segment(s)
            packed |= root.tokens
            stack = [(root, chart)]
            while stack:
                seg, chart_here = stack.pop()
                for lexeme in seg.exits:
                    for after, start in self._after(chart_here, lexeme):
                        if start == DEAD:
                            continue
                        child = self._child(seg, lexeme, start)
                        key = (id(child), id(after))
                        if key in seen or child.empty:
                            continue
                        seen.add(key)
                        if len(child.tokens):
                            ids.append(child.tokens)
                        if child.exits:
                            stack.append((child, after))
        if ids:
            allowed = np.concatenate(ids)
            if len(self._eos_array):
                allowed = allowed[~np.isin(allowed, self._eos_array)]
            packed |= self.trie.pack(allowed)
        if self.is_accepting(state):
            packed |= self.eos_only_mask
        return packed

    def _root_segment(self, s: int) -> _Segment:
        """Tokens read from lexer state ``s`` (packed), and where the open lexeme may end."""
        seg = self._roots.get(s)
        if seg is None:
            seg = self._walk({ROOT_LEVEL: None}, s)
            seg.tokens = self.trie.pack(seg.tokens[~np.isin(seg.tokens, self._eos_array)])
            if self.lexer.accepting[s]:  # the open lexeme may end before the token
                for lexeme in self.lexer.accepts[s]:
                    seg.exits.setdefault(lexeme, {})[ROOT_LEVEL] = None
            self._roots[s] = seg
        return seg

    def _child(self, seg: _Segment, lexeme: int, start: int) -> _Segment:
        """The segment after ``seg``'s lexeme ``lexeme`` ends and the lexer restarts at ``start``."""
        key = (lexeme, start)
        child = seg.children.get(key)
        if child is None:
            child = seg.children[key] = self._walk(seg.exits[lexeme], start)
        return child

    def _walk(self, starts: dict[int, np.ndarray | None], s0: int) -> _Segment:
        """Read the subtries below ``starts`` (level -> nodes) from lexer state ``s0``."""
        trie, lexer, ends = self.trie, self.lexer, self.ends
        levels = len(trie.level_bytes)
        pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for level, nodes in starts.items():
            if level + 1 >= levels:
                continue
            if level == ROOT_LEVEL:
                kids = np.arange(len(trie.level_bytes[0]), dtype=np.int64)
                states = trie.step_states(lexer, np.full(len(kids), s0, dtype=np.int64), trie.level_bytes[0])
            else:
                kids, states = trie.expand(lexer, level, nodes, np.full(len(nodes), s0, dtype=np.int64))
            if len(kids):
                pending.setdefault(level + 1, []).append((kids, states))
        tokens: list[np.ndarray] = []
        exits: dict[int, dict[int, list[np.ndarray]]] = {}
        for d in range(levels):
            parts = pending.pop(d, None)
            if not parts:
                continue
            nodes = np.concatenate([p[0] for p in parts])
            states = np.concatenate([p[1] for p in parts])
            keep = states != DEAD
            nodes, states = nodes[keep], states[keep]
            if not len(nodes):
                continue
            tokens.append(ends.tokens_at(d, nodes))
            if d + 1 >= levels:
                continue
            has_kids = ends.has_kids[d][nodes]
            nodes, states = nodes[has_kids], states[has_kids]
            acc = lexer.accepting[states]
            if acc.any():
                acc_nodes, acc_states = nodes[acc], states[acc]
                for st in np.unique(acc_states).tolist():
                    at = acc_nodes[acc_states == st]
                    for lexeme in lexer.accepts[st]:
                        exits.setdefault(lexeme, {}).setdefault(d, []).append(at)
            if len(nodes):
                kids, kid_states = trie.expand(lexer, d, nodes, states)
                if len(kids):
                    pending.setdefault(d + 1, []).append((kids, kid_states))
        merged = {lexeme: {d: np.unique(np.concatenate(v)) for d, v in by_level.items()}
                  for lexeme, by_level in exits.items()}
        return _Segment(np.concatenate(tokens) if tokens else np.zeros(0, dtype=np.int64), merged)


def _closed_under_concatenation(store: TermStore, term: int) -> bool:
    """``L·L ⊆ L``: two lexemes in a row read the same as one."""
    return store.is_empty(store.and_(store.cat(term, term), store.not_(term)))
