"""Is a partially committed canvas completable under a context-free constraint?

A canvas is ``n`` positions, each a committed token or :data:`~.slots.OPEN` (masked).  As in
:mod:`.token_dfa`, a finished canvas is in the language when it reads ``t₁ … t_m EOS … EOS``:
text tokens (tokens with bytes, not EOS), then EOS padding, with ``bytes(t₁ … t_m)`` a sentence
of the grammar.  A partial canvas is **completable** when some token for each masked position
makes it so.  Each masked position is exactly *one* token.

**The relaxation.**  Reading the committed text tokens between masked runs as pieces, the
canvas is a partial output ``x₀ □ x₁ □ … □ x_k`` for :class:`~constrain.cfg.completion.
CompletionChecker` (a run of masked positions is one hole; a run that starts the canvas makes
``x₀`` empty, one that ends its text makes ``x_k`` empty; committed EOS ends the text).  The
checker's holes are ``Σ*`` (any bytes, none included) while a run of ``j`` masked positions holds
exactly ``j`` text tokens when text follows it, and at most ``j`` (the rest EOS) when it ends
the text.  So the relaxation is **necessary, not sufficient**: with ``( □ )`` over single-byte
tokens, ``(x)`` completes the Σ* pattern, but two masked positions there need two tokens.

**The exact check** (:meth:`CanvasChecker.verdict`) returns a :class:`Verdict`:

- ``NO`` — proven not completable: a structural violation (text after a committed EOS, a token
  without bytes), a dead committed prefix (the engine's :meth:`advance`), the relaxation fails,
  or an exhaustive search found nothing;
- ``YES`` with a *witness*: a fully committed canvas, agreeing with the canvas where it is
  committed, that is accepted (checked with ``advance`` + ``is_accepting`` on its bytes);
- ``UNKNOWN`` — the search ran out of budget (``search_budget`` relaxed checks) before either.

Witnesses come, in order, from the caller's *hints* (earlier witnesses: one that agrees with the
canvas, or agrees once the canvas's committed tokens are written into it, is accepted after one
``advance``); from *realizing* the relaxation's shortest completion — each hole's filling split
into exactly ``j`` vocabulary tokens (at most ``j`` for the last, padded with EOS); and from a
depth-first search that fills the leftmost masked position with each token the engine allows
after the committed prefix (``mask_of``), pruning every child whose relaxation fails.  The
search is complete, so within the budget ``NO`` and ``YES`` are exact; a fully committed canvas
is always decided exactly (no search).

Cheap proofs of ``NO`` per token (:meth:`CanvasChecker.candidates`): tokens whose bytes contain
a byte no sentence contains (the language's byte alphabet, from 256 one-byte relaxed checks);
tokens that are not a factor of any sentence (one cached relaxed check per token); after a
committed EOS only EOS; EOS before committed text never; at the leftmost masked position, only
the tokens of ``mask_of`` of the committed prefix (and EOS only from an accepting state).

>>> checker = CanvasChecker(compiled_cfg)                          # doctest: +SKIP
>>> v = checker.verdict((tok_open, OPEN, OPEN, tok_close))         # doctest: +SKIP
>>> v.status, v.witness                                             # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ..bitmask import unpack_bitmask_np
from ..cfg.completion import CompletionChecker
from .slots import OPEN

__all__ = ["YES", "NO", "UNKNOWN", "Verdict", "CanvasChecker", "canvas_checker"]

YES, NO, UNKNOWN = "yes", "no", "unknown"

_MISSING = object()


@dataclass(frozen=True)
class Verdict:
    """``status``: :data:`YES`, :data:`NO` or :data:`UNKNOWN`; ``witness``: for ``YES``, an
    accepted full canvas that agrees with the checked one where it is committed."""

    status: str
    witness: tuple[int, ...] | None = None


class _OutOfBudget(Exception):
    pass


@dataclass
class _Layout:
    """A canvas read as a partial output: ``end`` (first committed EOS, or ``n``), the committed
    text ``pieces`` between masked ``runs`` (``(start, length)``), and whether the last run ends
    the text (``trailing``: no committed text after it)."""

    end: int
    pieces: tuple[bytes, ...]
    runs: list[tuple[int, int]]
    trailing: bool


class CanvasChecker:
    """Completability of canvases for one :class:`~constrain.cfg.engine.CompiledCFG`.

    ``search_budget``: relaxed checks one :meth:`verdict` may spend in its search before
    answering ``UNKNOWN``.  Verdicts ``YES``/``NO`` and relaxed checks are cached (up to
    ``cache_size`` entries each, then cleared), engine states of committed prefixes in a trie (up
    to ``10 · cache_size`` nodes).  ``stats`` counts verdicts, relaxed checks and search nodes.
    """

    def __init__(self, cfg, *, search_budget: int = 64, cache_size: int = 20_000):
        self.cfg = cfg
        vocab = cfg.vocab
        self.vocab = vocab
        self.size = vocab.size
        self.search_budget = int(search_budget)
        self.cache_size = int(cache_size)
        self.eos_ids = frozenset(int(e) for e in cfg.eos_ids)
        if not self.eos_ids:
            raise ValueError("a canvas needs an EOS token for its padding; the vocabulary has none")
        self.eos = min(self.eos_ids)
        self.token_bytes: list[bytes | None] = [
            (bytes(b) if b and i not in self.eos_ids else None) for i, b in enumerate(vocab.token_bytes[: self.size])]
        self.text = np.array([b is not None for b in self.token_bytes], dtype=bool)
        self.by_bytes: dict[bytes, int] = {}
        for i, b in enumerate(self.token_bytes):
            if b is not None:
                self.by_bytes.setdefault(b, i)
        self.max_len = max((len(b) for b in self.by_bytes), default=1)
        self.checker = CompletionChecker(cfg.grammar)
        self.stats = {"verdicts": 0, "yes": 0, "no": 0, "unknown": 0, "relaxed_checks": 0, "search_nodes": 0,
                      "hint_hits": 0}
        self._relaxed_cache: dict[tuple[bytes, ...], object] = {}
        self._verdicts: dict[tuple[int, ...], Verdict] = {}
        self._trie: list = [cfg.initial_state(), {}]  # [state, token -> child]
        self._trie_size = 0
        self._masks: dict[int, tuple[object, np.ndarray]] = {}
        self.alphabet = np.array([self._relaxed((b"", bytes([b]), b"")) is not None for b in range(256)])
        self.possible = self.text & self._bytes_within(self.alphabet)
        self._factor = np.zeros(self.size, dtype=np.int8)  # 1: a factor of some sentence, -1: of none

    # -- basic reads -------------------------------------------------------------------------------
    def _bytes_within(self, alphabet: np.ndarray) -> np.ndarray:
        """Per token: every byte of it is in ``alphabet``."""
        lengths = np.array([len(b) if b else 0 for b in self.token_bytes], dtype=np.int64)
        out = np.ones(self.size, dtype=bool)
        width = int(lengths.max(initial=0))
        if not width:
            return out
        mat = np.zeros((self.size, width), dtype=np.uint8)
        for i, b in enumerate(self.token_bytes):
            if b:
                mat[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        inside = alphabet[mat] | (np.arange(width)[None, :] >= lengths[:, None])
        return inside.all(axis=1)

    def is_factor(self, token: int) -> bool:
        """Whether ``token``'s bytes occur in some sentence (one cached relaxed check)."""
        if not (0 <= token < self.size) or not self.possible[token]:
            return False
        f = self._factor[token]
        if f == 0:
            f = 1 if self._relaxed((b"", self.token_bytes[token], b"")) is not None else -1
            self._factor[token] = f
        return f > 0

    def shortest_sentence(self) -> str | None:
        """A shortest sentence of the grammar (in bytes), or None when its language is empty."""
        got = self._relaxed((b"", b""))
        return None if got is None else got.text

    def _relaxed(self, pieces: tuple[bytes, ...]):
        got = self._relaxed_cache.get(pieces, _MISSING)
        if got is _MISSING:
            self.stats["relaxed_checks"] += 1
            got = self.checker.check(list(pieces))
            if len(self._relaxed_cache) > self.cache_size:
                self._relaxed_cache.clear()
            self._relaxed_cache[pieces] = got
        return got

    def state(self, prefix: Sequence[int]):
        """The engine state after the committed text tokens ``prefix`` (None when dead), through
        a trie of the prefixes seen so far (one ``advance`` per new token)."""
        node = self._trie
        for t in prefix:
            st = node[0]
            if st is None:
                return None
            nxt = node[1].get(t)
            if nxt is None:
                if self._trie_size > 10 * self.cache_size:
                    self._trie = [self.cfg.initial_state(), {}]
                    self._trie_size = 0
                    return self.state(prefix)
                b = self.token_bytes[t] if 0 <= t < self.size else None
                nxt = node[1][t] = [None if b is None else self.cfg.advance(st, b), {}]
                self._trie_size += 1
            node = nxt
        return node[0]

    def allowed_after(self, st) -> np.ndarray:
        """Boolean mask over the vocabulary of the tokens ``mask_of(st)`` allows."""
        got = self._masks.get(id(st))
        if got is None or got[0] is not st:
            if len(self._masks) >= 1024:  # a vocabulary-sized array each
                self._masks.clear()
            got = (st, unpack_bitmask_np(self.cfg.mask_of(st), self.size).astype(bool))
            self._masks[id(st)] = got
        return got[1]

    def _layout(self, canvas: tuple[int, ...]) -> _Layout | None:
        """The canvas as pieces and masked runs, or None when it breaks the canvas structure."""
        n = len(canvas)
        end = next((j for j, t in enumerate(canvas) if t in self.eos_ids), n)
        if any(t != OPEN and t not in self.eos_ids for t in canvas[end + 1:]):
            return None
        pieces, runs, cur = [], [], bytearray()
        j = 0
        while j < end:
            t = canvas[j]
            if t == OPEN:
                s = j
                while j < end and canvas[j] == OPEN:
                    j += 1
                runs.append((s, j - s))
                pieces.append(bytes(cur))
                cur = bytearray()
                continue
            b = self.token_bytes[t] if 0 <= t < self.size else None
            if b is None:
                return None
            cur += b
            j += 1
        pieces.append(bytes(cur))
        return _Layout(end, tuple(pieces), runs, bool(runs) and not pieces[-1])

    # -- full canvases -----------------------------------------------------------------------------
    def accepts(self, tokens: Sequence[int]) -> bool:
        """Whether a fully committed canvas is in the language (EOS padding included)."""
        canvas = tuple(int(t) for t in tokens)
        if OPEN in canvas:
            raise ValueError("accepts() takes a fully committed canvas")
        lay = self._layout(canvas)
        if lay is None:
            return False
        st = self.state(canvas[: lay.end])
        return st is not None and bool(self.cfg.is_accepting(st))

    def _padded(self, canvas: tuple[int, ...], end: int) -> tuple[int, ...]:
        return tuple(self.eos if (j >= end and t == OPEN) else t for j, t in enumerate(canvas))

    # -- verdicts ----------------------------------------------------------------------------------
    def verdict(self, canvas: Iterable[int], hints: Iterable[Sequence[int] | None] = ()) -> Verdict:
        """Whether ``canvas`` (token ids, :data:`OPEN` where masked) is completable; see the
        module docstring.  ``hints``: earlier witnesses to try first."""
        canvas = tuple(int(t) for t in canvas)
        self.stats["verdicts"] += 1
        v = self._verdict(canvas, hints)
        self.stats[v.status] += 1
        return v

    def _verdict(self, canvas: tuple[int, ...], hints) -> Verdict:
        lay = self._layout(canvas)
        if lay is None:
            return Verdict(NO)
        if not lay.runs:
            full = self._padded(canvas, lay.end)
            return Verdict(YES, full) if self.accepts(full) else Verdict(NO)
        got = self._verdicts.get(canvas)
        if got is not None:
            return got
        for w in hints:
            if w is None or len(w) != len(canvas):
                continue
            merged = tuple(w[j] if t == OPEN else t for j, t in enumerate(canvas))
            if self.accepts(merged):
                self.stats["hint_hits"] += 1
                return Verdict(YES, merged)
        budget = [self.search_budget]
        try:
            w = self._search(canvas, budget)
        except _OutOfBudget:
            return Verdict(UNKNOWN)
        return Verdict(NO) if w is None else Verdict(YES, w)

    def _record(self, canvas: tuple[int, ...], witness: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if len(self._verdicts) > self.cache_size:
            self._verdicts.clear()
        self._verdicts[canvas] = Verdict(NO) if witness is None else Verdict(YES, witness)
        return witness

    def _search(self, canvas: tuple[int, ...], budget: list[int]) -> tuple[int, ...] | None:
        """A witness for ``canvas`` or None (complete); raises _OutOfBudget."""
        got = self._verdicts.get(canvas)
        if got is not None:
            return got.witness
        lay = self._layout(canvas)
        if lay is None:
            return self._record(canvas, None)
        if not lay.runs:
            full = self._padded(canvas, lay.end)
            return self._record(canvas, full if self.accepts(full) else None)
        i = lay.runs[0][0]
        st = self.state(canvas[:i])
        if st is None:
            return self._record(canvas, None)
        if budget[0] <= 0:
            raise _OutOfBudget
        budget[0] -= 1
        self.stats["search_nodes"] += 1
        comp = self._relaxed(lay.pieces)
        if comp is None:
            return self._record(canvas, None)
        w = self._realize(canvas, lay, comp.fillings)
        if w is not None and self.accepts(w):
            return self._record(canvas, w)
        if lay.trailing and len(lay.runs) == 1 and self.cfg.is_accepting(st):
            return self._record(canvas, self._padded(canvas, i))
        for t in self._branches(st, comp.fillings[0]):
            w = self._search(canvas[:i] + (t,) + canvas[i + 1:], budget)
            if w is not None:
                return self._record(canvas, w)
        return self._record(canvas, None)

    def _branches(self, st, filling: bytes) -> list[int]:
        """Text tokens the engine allows after ``st``: those that start the relaxed filling
        first (longest first), then the rest shortest first."""
        ids = np.flatnonzero(self.allowed_after(st) & self.text)
        starts, rest = [], []
        for t in ids.tolist():
            b = self.token_bytes[t]
            (starts if filling.startswith(b) else rest).append(t)
        starts.sort(key=lambda t: -len(self.token_bytes[t]))
        rest.sort(key=lambda t: len(self.token_bytes[t]))
        return starts + rest

    def _realize(self, canvas: tuple[int, ...], lay: _Layout, fillings) -> tuple[int, ...] | None:
        """The relaxed completion as tokens: hole ``k``'s filling split into exactly as many
        tokens as its run has positions (at most as many for a trailing run, then EOS)."""
        out = list(canvas)
        for k, (s, j) in enumerate(lay.runs):
            f = fillings[k]
            f = f.encode("utf-8") if isinstance(f, str) else bytes(f)
            toks = self.segment(f, j, at_most=lay.trailing and k == len(lay.runs) - 1)
            if toks is None:
                return None
            out[s:s + j] = toks + [self.eos] * (j - len(toks))
        return self._padded(tuple(out), lay.end)

    def segment(self, data: bytes, count: int, *, at_most: bool = False) -> list[int] | None:
        """``data`` as exactly ``count`` vocabulary tokens (fewest, at most ``count``, when
        ``at_most``), or None."""
        n = len(data)
        if n > count * self.max_len or (not at_most and n < count):
            return None
        if n == 0:
            return [] if (at_most or count == 0) else None
        layers: list[dict[int, tuple[int, int] | None]] = [{0: None}]
        for c in range(1, count + 1):
            nxt: dict[int, tuple[int, int]] = {}
            left = count - c
            for pos in layers[-1]:
                for ln in range(1, min(self.max_len, n - pos) + 1):
                    end = pos + ln
                    if end in nxt or (not at_most and n - end < left):
                        continue
                    t = self.by_bytes.get(data[pos:end])
                    if t is not None:
                        nxt[end] = (pos, t)
            if not nxt:
                return None
            layers.append(nxt)
            if n in nxt and (at_most or c == count):
                out, pos = [], n
                for layer in reversed(layers[1:]):
                    prev, t = layer[pos]
                    out.append(t)
                    pos = prev
                return out[::-1]
        return None

    # -- per-position candidates --------------------------------------------------------------------
    def candidates(self, canvas: Sequence[int], i: int, width: int | None = None) -> np.ndarray:
        """Boolean mask (length ``width``, default the vocabulary's) of the tokens not yet proven
        to make ``canvas`` with that token at ``i`` incompletable (see the module docstring)."""
        canvas = tuple(int(t) for t in canvas)
        width = self.size if width is None else int(width)
        out = np.zeros(width, dtype=bool)
        eos = [e for e in sorted(self.eos_ids) if e < width]
        if any(t in self.eos_ids for t in canvas[:i]):
            out[eos] = True
            return out
        m = min(width, self.size)
        text = self.possible[:m] & (self._factor[:m] >= 0)
        eos_ok = not any(t != OPEN and t not in self.eos_ids for t in canvas[i + 1:])
        if OPEN not in canvas[:i]:
            st = self.state(canvas[:i])
            if st is None:
                return out
            text = text & self.allowed_after(st)[:m]
            eos_ok = eos_ok and bool(self.cfg.is_accepting(st))
        out[:m] = text
        if eos_ok:
            out[eos] = True
        return out


_CHECKERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def canvas_checker(cfg, *, search_budget: int = 64) -> CanvasChecker:
    """One cached :class:`CanvasChecker` per CompiledCFG and budget (its caches serve later calls)."""
    per = _CHECKERS.get(cfg)
    if per is None:
        per = _CHECKERS[cfg] = {}
    got = per.get(search_budget)
    if got is None:
        got = per[search_budget] = CanvasChecker(cfg, search_budget=search_budget)
    return got
