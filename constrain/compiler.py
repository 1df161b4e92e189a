"""Front door: compile constraints against a vocabulary into shareable ``CompiledGrammar`` objects."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .automaton import DEAD, LazyDFA
from .errors import BudgetExceededError
from .matcher import Matcher
from .regex import Encoding, Lowering
from .terms import INF, TermStore
from .token_index import PLAIN_START_BYTES, StringBodyIndex, VocabTrie, string_index_for, trie_for
from .vocab import Vocabulary

if TYPE_CHECKING:
    from .cfg.engine import CompiledCFG


_GBNF_RULE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_-]*\s*::=", re.MULTILINE)


class CompiledGrammar:
    """An immutable constraint bound to a vocabulary. Thread-safe; share it across sequences.

    Token masks are computed lazily, once per automaton state (up to counter capping, see
    ``TermStore.cap_counters``), then served from a cache.
    """

    def __init__(self, vocab: Vocabulary, trie: VocabTrie, store: TermStore, start_term: int, *,
                 source: str, warnings: tuple[str, ...] = (), strings: StringBodyIndex | None = None,
                 json_char: int | None = None):
        self.vocab = vocab
        self.trie = trie
        self.strings = strings
        self._json_char = json_char if strings is not None else None
        self.store = store
        self.dfa = LazyDFA(store, start_term)
        self.source = source
        self.identity = source  # the language's identity (Compiler sets a digest of all it compiled)
        self.warnings = warnings
        self.eos_ids = frozenset(i for i in vocab.eos_token_ids if i < vocab.size)
        self.lookahead = trie.max_len + 1
        self._masks: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self.eos_only_mask = trie.eos_only_mask(self.eos_ids)
        self._eos_array = np.asarray(sorted(self.eos_ids), dtype=np.int64)

    def matcher(self) -> Matcher:
        return Matcher(self)

    # -- the state-machine protocol the Matcher uses (states are DFA state ids) ------------------
    def initial_state(self) -> int:
        return self.dfa.start

    def advance(self, state: int, data: bytes) -> int | None:
        nxt = self.dfa.step(state, data)
        return None if nxt == DEAD else nxt

    def is_accepting(self, state: int) -> bool:
        return bool(self.dfa.accepting[state])

    def mask_of(self, sid: int) -> np.ndarray:
        """The packed mask of DFA state ``sid`` (cached; do not modify the returned array)."""
        dfa = self.dfa
        key = dfa.mask_key(sid, self.lookahead)
        mask = self._masks.get(key)
        if mask is None:
            with self._lock:
                mask = self._masks.get(key)
                if mask is None:
                    with dfa.lock:
                        allowed = self._allowed(key)
                    if len(self._eos_array):
                        allowed = allowed[~np.isin(allowed, self._eos_array)]
                    extra = sorted(self.eos_ids) if dfa.accepting[key] else ()
                    mask = self.trie.pack(allowed, extra)
                    mask.flags.writeable = False
                    self._masks[key] = mask
        return mask

    def _allowed(self, sid: int) -> np.ndarray:
        if self.strings is not None:
            body = self.store.repeated_head(self.dfa.term_of[sid], self._json_char, PLAIN_START_BYTES)
            if body is not None:
                hi = None if body[1] == INF else body[1]
                return np.concatenate([self.strings.plain_allowed(hi),
                                       self.strings.other.allowed_tokens(self.dfa, sid)])
        return self.trie.allowed_tokens(self.dfa, sid)

    @property
    def num_cached_masks(self) -> int:
        return len(self._masks)

    def approx_nbytes(self) -> int:
        """Estimated memory held: term store, DFA table and cached masks (all grow with use)."""
        return (self.store.approx_nbytes() + self.dfa.table.nbytes
                + len(self._masks) * self.trie.num_words * 4)

    def __repr__(self) -> str:
        return f"CompiledGrammar({self.source[:60]!r}, states={self.dfa.num_states})"


class Compiler:
    """Compiles regexes, JSON Schemas and grammars (Lark, GBNF) for one tokenizer.

    >>> compiler = Compiler(tokenizer)                                   # doctest: +SKIP
    >>> grammar = compiler.compile_regex(r"[0-9]{3}-[0-9]{4}")            # doctest: +SKIP
    >>> m = grammar.matcher()                                            # doctest: +SKIP
    """

    def __init__(self, tokenizer_or_vocab: Any, *, logits_width: int | None = None,
                 generation_config: Any = None, cache_size: int = 256, cache_bytes: int = 512 << 20):
        """``cache_size`` compiled grammars at most are kept for reuse, together holding about
        ``cache_bytes`` at most (see ``approx_nbytes``; 0 turns the cache off)."""
        if isinstance(tokenizer_or_vocab, Vocabulary):
            self.vocab = tokenizer_or_vocab
        else:
            self.vocab = Vocabulary.from_tokenizer(tokenizer_or_vocab, logits_width=logits_width,
                                                   generation_config=generation_config)
        self.trie = trie_for(self.vocab)
        self.strings = string_index_for(self.vocab)  # vocabulary preprocessing, once per process
        self._cache: OrderedDict[tuple, CompiledGrammar] = OrderedDict()
        self._cache_size = cache_size
        self._cache_bytes = cache_bytes
        self._lock = threading.Lock()

    def _cached(self, key: tuple, build):
        with self._lock:
            got = self._cache.get(key)
            if got is not None:
                self._cache.move_to_end(key)
                return got
        with _collector_paused():  # outside the lock: a slow compile does not block other requests
            grammar = build()
        # what was compiled, with every option: sources are truncated labels, and two schemas
        # that share their first 200 characters must not pass for one language (ASAp's tries)
        grammar.identity = hashlib.sha256(repr(key).encode()).hexdigest()
        with self._lock:
            self._cache[key] = grammar  # one over the budget on its own is returned but not kept
            evict_least_recent(self._cache, lambda g: g.approx_nbytes(), self._cache_size, self._cache_bytes)
        return grammar

    def compile_regex(self, pattern: str) -> CompiledGrammar:
        """Text that matches ``pattern`` as a whole (``re.fullmatch`` semantics)."""

        def build() -> CompiledGrammar:
            store = TermStore()
            term = Lowering(store).fullmatch(pattern, Encoding.RAW, whole_string=True)
            return CompiledGrammar(self.vocab, self.trie, store, term, source=f"regex:{pattern}")

        return self._cached(("regex", pattern), build)

    def compile_lark(self, text: str, start: str = "start") -> "CompiledCFG":
        """Text in the language of a Lark grammar (see ``constrain.cfg.ir`` for the semantics).

        >>> g = compiler.compile_lark('start: "(" start ")" | "x"')       # doctest: +SKIP
        """
        from .cfg.engine import CompiledCFG
        from .cfg.lark_frontend import parse_lark

        return self._cached(("lark", text, start), lambda: CompiledCFG(
            self.vocab, self.trie, parse_lark(text, start), source=f"lark:{text[:200]}"))

    def compile_gbnf(self, text: str, start: str = "root") -> "CompiledCFG":
        """Text in the language of a GBNF grammar (llama.cpp's dialect)."""
        from .cfg.engine import CompiledCFG
        from .cfg.gbnf import parse_gbnf

        return self._cached(("gbnf", text, start), lambda: CompiledCFG(
            self.vocab, self.trie, parse_gbnf(text, start), source=f"gbnf:{text[:200]}"))

    def compile_grammar(self, text: str, *, dialect: str = "auto", start: str | None = None) -> "CompiledCFG":
        """A Lark or GBNF grammar; ``dialect="auto"`` reads text defining rules with ``::=`` as GBNF."""
        if dialect == "auto":
            dialect = "gbnf" if _GBNF_RULE.search(text) else "lark"
        if dialect == "lark":
            return self.compile_lark(text, start or "start")
        if dialect == "gbnf":
            return self.compile_gbnf(text, start or "root")
        raise ValueError(f"unknown grammar dialect {dialect!r}: use 'lark', 'gbnf' or 'auto'")

    def compile_json_schema(self, schema: dict | bool | str, *, resources: Mapping[str, Any] | None = None,
                            **options: Any) -> "CompiledGrammar | CompiledCFG":
        """JSON text whose value is valid under ``schema`` (see ``constrain.json_schema``): a
        ``CompiledGrammar`` (an automaton), or where recursive references make the language
        context-free, a ``CompiledCFG`` (same matcher API).

        ``resources`` maps URIs to schema documents for remote ``$ref``s (the official metaschemas
        are known already). Options (see ``constrain.json_schema.compile_schema_term``):
        ``whitespace`` ("flexible", "compact", "dumps"), ``max_whitespace``, ``lenient``,
        ``max_recursion``, ``strict_properties``, ``format_assertion``,
        ``unicode_escapes``, ``property_order`` ("declared", "any"), ``recursion`` ("grammar",
        "unroll"). Results are cached by schema content, resources and options.
        """
        from .cfg.engine import CompiledCFG
        from .json_schema import compile_schema, load_schema, parse_schema

        schema_obj = load_schema(schema)
        resources = dict(resources) if resources else None
        key = ("json", json.dumps(schema_obj, sort_keys=True), tuple(sorted(options.items())),
               json.dumps(resources, sort_keys=True) if resources else None)

        def build() -> CompiledGrammar | CompiledCFG:
            parse_schema(schema_obj)
            store = TermStore()
            with store.compiling():
                try:
                    language = compile_schema(schema_obj, store, resources=resources, **options)
                except RecursionError:
                    raise BudgetExceededError("the schema nests too deeply to compile") from None
                source, warnings = f"json:{key[1][:200]}", tuple(language.warnings)
                if language.grammar is not None:  # (its lexemes were pruned within this budget too)
                    return CompiledCFG(self.vocab, self.trie, language.grammar, source=source, store=store,
                                       warnings=warnings)
                # whether the whole language is empty (the start state) too: see TermStore.compiling
                return CompiledGrammar(self.vocab, self.trie, store, language.term, source=source,
                                       warnings=warnings, strings=self.strings, json_char=language.json_char)

        return self._cached(key, build)


_pause_lock = threading.Lock()
_pause_depth = 0  # compiles running with the collector paused
_paused_by_us = False


@contextlib.contextmanager
def _collector_paused():
    """Automatic garbage collection off while compiling (process-wide, until the last concurrent
    compile ends; left alone where the caller turned it off). A compile's objects stay alive with
    its grammar or die by reference counting, yet the collector's passes kept walking the growing
    term store: about a sixth of the time of the MaskBench schemas that compile in over 20 ms."""
    global _pause_depth, _paused_by_us
    with _pause_lock:
        if _pause_depth == 0 and gc.isenabled():
            gc.disable()
            _paused_by_us = True
        _pause_depth += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_depth -= 1
            if _pause_depth == 0 and _paused_by_us:
                gc.enable()
                _paused_by_us = False


def evict_least_recent(cache: OrderedDict, size_of: Callable[[Any], int], max_count: int, max_bytes: int) -> None:
    """Drop the first (least recently used) entries of ``cache`` until at most ``max_count`` stay,
    holding at most ``max_bytes`` together. Bounded by bytes, not just by count: a compiled schema
    holds from kilobytes to hundreds of megabytes and grows as it is used, so ``size_of`` each
    value is taken afresh at every call."""
    sizes = [size_of(v) for v in cache.values()]
    total = sum(sizes)
    for size in sizes:
        if len(cache) <= max_count and total <= max_bytes:
            break
        cache.popitem(last=False)
        total -= size
