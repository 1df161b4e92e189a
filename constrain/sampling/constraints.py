"""The constraint-check interface the samplers use.

A *constraint state* is per-sequence, like a :class:`~constrain.matcher.Matcher`, and offers:

- ``is_token_allowed(t) -> bool``: may token ``t`` come next? (one check, no full mask: what
  AWRS uses; :class:`Checked` counts these calls)
- ``accept_token(t) -> bool``: advance (False and unchanged if ``t`` is not allowed)
- ``allowed_mask() -> np.ndarray``: boolean mask over the vocabulary (what masking, ASAp and
  full-mask SMC use); a constraint without a fast one gets the generic loop over ``is_token_allowed``
- ``copy()``, ``is_terminated()``, ``eos_token_ids``, ``vocab_size``

Implementations:

- :class:`GrammarConstraint` wraps a Matcher (any compiled regex / JSON Schema).
- :class:`PredicateConstraint` wraps an arbitrary Python predicate over the text so far, for
  semantic checks beyond grammars: ``fn(text: bytes, final: bool) -> bool`` is asked about the
  text *with the candidate token appended* (``final=True`` when the candidate is EOS, i.e. the
  text is the whole output).  The effective language is the texts all of whose token prefixes
  pass.  A predicate has no fast mask, which is what AWRS is for.
- :class:`AllOf` is the conjunction (e.g. a grammar and a predicate); :class:`Unconstrained`
  allows every token that has bytes, and EOS.

:func:`as_constraint` turns a Matcher, a CompiledGrammar or a constraint into a constraint state.
"""

from __future__ import annotations

from typing import Callable, Iterable, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Constraint",
    "GrammarConstraint",
    "PredicateConstraint",
    "AllOf",
    "Unconstrained",
    "Checked",
    "as_constraint",
    "constraint_key",
]


@runtime_checkable
class Constraint(Protocol):
    eos_token_ids: frozenset
    vocab_size: int

    def is_token_allowed(self, token_id: int) -> bool: ...

    def accept_token(self, token_id: int) -> bool: ...

    def allowed_mask(self) -> np.ndarray: ...

    def copy(self) -> "Constraint": ...

    def is_terminated(self) -> bool: ...


class _Base:
    """Shared helpers: the generic (slow) mask is a loop over ``is_token_allowed``."""

    vocab_size: int
    eos_token_ids: frozenset

    def allowed_mask(self) -> np.ndarray:
        return np.fromiter((self.is_token_allowed(t) for t in range(self.vocab_size)),
                           dtype=bool, count=self.vocab_size)

    def key(self):
        """Identity of the constraint's language (for ASAp's persistent trie); None if unknown."""
        return None


class GrammarConstraint(_Base):
    """A :class:`~constrain.matcher.Matcher` as a constraint state."""

    __slots__ = ("matcher", "eos_token_ids", "vocab_size")

    def __init__(self, matcher):
        self.matcher = matcher
        self.eos_token_ids = frozenset(matcher.grammar.eos_ids)
        self.vocab_size = int(matcher.vocab_size)

    def is_token_allowed(self, token_id: int) -> bool:
        return self.matcher.is_token_allowed(int(token_id))

    def accept_token(self, token_id: int) -> bool:
        return self.matcher.accept_token(int(token_id))

    def allowed_mask(self) -> np.ndarray:
        from ..bitmask import unpack_bitmask_np

        row = np.empty((self.vocab_size + 31) // 32, dtype=np.int32)
        self.matcher.fill_bitmask(row)
        return unpack_bitmask_np(row, self.vocab_size)

    def copy(self) -> "GrammarConstraint":
        return GrammarConstraint(self.matcher.copy())

    def is_terminated(self) -> bool:
        return self.matcher.is_terminated()

    def key(self):
        g = self.matcher.grammar
        return ("grammar", g.identity, g.vocab.fingerprint, tuple(self.matcher._states))


class PredicateConstraint(_Base):
    """A Python predicate over the text so far: ``fn(text_bytes, final) -> bool``.

    ``vocab``: a :class:`~constrain.vocab.Vocabulary` (token bytes and EOS ids).  Tokens without
    bytes (special, padding) are never allowed; EOS is allowed when ``fn(text, True)`` holds.
    ``name``: identifies the predicate for ASAp's persistent trie (None: not persistable by key).
    """

    __slots__ = ("fn", "vocab", "text", "terminated", "eos_token_ids", "vocab_size", "name", "_memo")

    def __init__(self, fn: Callable[[bytes, bool], bool], vocab, *, text: bytes = b"",
                 name: str | None = None, vocab_size: int | None = None):
        self.fn = fn
        self.vocab = vocab
        self.text = bytes(text)
        self.terminated = False
        self.eos_token_ids = frozenset(vocab.eos_token_ids)
        self.vocab_size = int(vocab_size if vocab_size is not None else vocab.size)
        self.name = name
        self._memo: dict[int, bool] = {}  # answers for the current text (the predicate runs once)

    def is_token_allowed(self, token_id: int) -> bool:
        t = int(token_id)
        if self.terminated or not 0 <= t < self.vocab_size:
            return False
        ok = self._memo.get(t)
        if ok is None:
            if t in self.eos_token_ids:
                ok = bool(self.fn(self.text, True))
            else:
                tb = self.vocab.token_bytes
                b = tb[t] if t < len(tb) else None
                ok = bool(b) and bool(self.fn(self.text + b, False))
            self._memo[t] = ok
        return ok

    def accept_token(self, token_id: int) -> bool:
        t = int(token_id)
        if not self.is_token_allowed(t):
            return False
        if t in self.eos_token_ids:
            self.terminated = True
        else:
            self.text += self.vocab.token_bytes[t]
        self._memo = {}
        return True

    def copy(self) -> "PredicateConstraint":
        c = PredicateConstraint(self.fn, self.vocab, text=self.text, name=self.name,
                                vocab_size=self.vocab_size)
        c.terminated = self.terminated
        return c

    def is_terminated(self) -> bool:
        return self.terminated

    def key(self):
        return None if self.name is None else ("predicate", self.name, self.text, self.terminated)


class Unconstrained(PredicateConstraint):
    """Every token with bytes, and EOS, is allowed."""

    def __init__(self, vocab, *, vocab_size: int | None = None):
        super().__init__(lambda text, final: True, vocab, name="unconstrained", vocab_size=vocab_size)

    def copy(self) -> "Unconstrained":
        c = Unconstrained(self.vocab, vocab_size=self.vocab_size)
        c.text, c.terminated = self.text, self.terminated
        return c


class AllOf(_Base):
    """Conjunction: a token is allowed iff every part allows it (checked in the given order, so
    put the cheap or the most selective part first)."""

    __slots__ = ("parts", "eos_token_ids", "vocab_size")

    def __init__(self, *parts):
        if not parts:
            raise ValueError("AllOf needs at least one constraint")
        self.parts = [as_constraint(p) for p in parts]
        self.eos_token_ids = frozenset.intersection(*(p.eos_token_ids for p in self.parts))
        self.vocab_size = min(p.vocab_size for p in self.parts)

    def is_token_allowed(self, token_id: int) -> bool:
        return all(p.is_token_allowed(token_id) for p in self.parts)

    def accept_token(self, token_id: int) -> bool:
        if not self.is_token_allowed(token_id):
            return False
        for p in self.parts:
            p.accept_token(token_id)
        return True

    def allowed_mask(self) -> np.ndarray:
        # Fast masks first; a slow (predicate) part is asked only about the survivors.
        out = None
        slow = []
        for p in self.parts:
            if isinstance(p, PredicateConstraint):
                slow.append(p)
                continue
            m = p.allowed_mask()[: self.vocab_size]
            out = m.copy() if out is None else (out & m)
        if out is None:
            out = np.ones(self.vocab_size, dtype=bool)
        for p in slow:
            for t in np.flatnonzero(out):
                if not p.is_token_allowed(int(t)):
                    out[t] = False
        return out

    def copy(self) -> "AllOf":
        c = AllOf.__new__(AllOf)
        c.parts = [p.copy() for p in self.parts]
        c.eos_token_ids = self.eos_token_ids
        c.vocab_size = self.vocab_size
        return c

    def is_terminated(self) -> bool:
        return any(p.is_terminated() for p in self.parts)

    def key(self):
        keys = [constraint_key(p) for p in self.parts]
        return None if any(k is None for k in keys) else ("all", tuple(keys))


class Checked:
    """Counts the ``is_token_allowed`` calls made through it (the AWRS figure of merit)."""

    __slots__ = ("inner", "checks")

    def __init__(self, inner):
        self.inner = inner
        self.checks = 0

    def __call__(self, token_id: int) -> bool:
        self.checks += 1
        return self.inner.is_token_allowed(token_id)


def as_constraint(obj) -> "Constraint":
    """A constraint state from a Matcher, a CompiledGrammar, or a constraint state."""
    from ..compiler import CompiledGrammar
    from ..matcher import Matcher

    if isinstance(obj, Matcher):
        return GrammarConstraint(obj)
    if isinstance(obj, CompiledGrammar):
        return GrammarConstraint(obj.matcher())
    needed = ("is_token_allowed", "accept_token", "copy", "is_terminated", "eos_token_ids")
    if all(hasattr(obj, n) for n in needed):
        if not hasattr(obj, "allowed_mask"):
            raise TypeError(f"{type(obj).__name__} lacks allowed_mask(); derive from "
                            "constrain.sampling.constraints._Base for the generic one")
        return obj
    raise TypeError(f"not a constraint: {type(obj).__name__} (pass a Matcher, a CompiledGrammar "
                    "or an object with is_token_allowed/accept_token/allowed_mask/copy/"
                    "is_terminated/eos_token_ids)")


def constraint_key(c) -> object:
    k = getattr(c, "key", None)
    return k() if callable(k) else None


def eos_array(eos: Iterable[int]) -> np.ndarray:
    return np.asarray(sorted(int(e) for e in eos), dtype=np.int64)
