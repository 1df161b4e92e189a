"""Hugging Face ``transformers`` integration: a logits processor driven by a CompiledGrammar.

    from constrain.integrations.transformers import ConstrainLogitsProcessor
    proc = ConstrainLogitsProcessor.from_json_schema(schema, tokenizer)
    out = model.generate(**inputs, logits_processor=[proc], max_new_tokens=200)

One matcher per row of the batch, created on the first call (so ``num_return_sequences`` and
beam rows are just rows).  Each call the processor works out which tokens each row gained since
the previous call and feeds only those to its matcher:

* the common step (every row grew by one token, nothing else changed) costs one device compare
  and the transfer of one token id per row;
* otherwise (beam search reordered or duplicated rows, assisted generation dropped rejected
  draft tokens) every row's generated tokens are compared with what each matcher has consumed:
  a row continues from the matcher with the longest common prefix (copied when several rows
  share it), rolled back and fed the difference;
* a different prompt or batch size, or rows longer by more than one token than at the previous
  call, start a new generation (fresh matchers), so one processor can be reused across
  ``generate`` calls; :meth:`reset` forces that (needed only when the new input is the previous
  input plus exactly one token, which is indistinguishable from the next step).

Finished rows (their matcher accepted EOS) are masked to EOS/pad only.  A row whose token the
grammar rejected (only possible when something other than this processor picked a disallowed
token, e.g. beam search filling its beams with ``-inf`` candidates) is marked dead, counted in
:attr:`num_rejected`, and also masked to EOS/pad so it ends at once.

The mask is applied with :func:`constrain.bitmask.apply_token_bitmask_` on the logits' own
device; the logits never go to the host.

Continuous batching (rows joining and leaving a running batch) is not supported:
``supports_continuous_batching = False``.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
from transformers import LogitsProcessor

from ..bitmask import allocate_token_bitmask, apply_token_bitmask_

__all__ = ["ConstrainLogitsProcessor", "grammar_vocab"]


def grammar_vocab(grammar) -> Any:
    """The Vocabulary a CompiledGrammar was compiled for, when it exposes one (else None)."""
    for attr in ("vocab", "vocabulary"):
        v = getattr(grammar, attr, None)
        if v is not None:
            return v
    comp = getattr(grammar, "compiler", None)
    if comp is not None:
        return getattr(comp, "vocab", None)
    return None


class _Row:
    """One sequence: its matcher, the generated tokens seen so far, how many were consumed."""

    __slots__ = ("matcher", "tokens", "consumed", "rejected_at")

    def __init__(self, matcher):
        self.matcher = matcher
        self.tokens: list[int] = []  # every generated token seen (incl. pads after EOS)
        self.consumed = 0  # tokens[:consumed] were accepted by the matcher (EOS included)
        self.rejected_at: int | None = None  # index in tokens of a token the matcher refused

    def copy(self) -> "_Row":
        r = _Row(self.matcher.copy())
        r.tokens = list(self.tokens)
        r.consumed = self.consumed
        r.rejected_at = self.rejected_at
        return r

    @property
    def finished(self) -> bool:
        return self.rejected_at is not None or self.matcher.is_terminated()

    def truncate(self, k: int) -> None:
        """Forget every token from index ``k`` on."""
        if k >= len(self.tokens):
            return
        if k == 0:
            self.matcher.reset()
            self.tokens = []
            self.consumed = 0
            self.rejected_at = None
            return
        if self.rejected_at is not None and k <= self.rejected_at:
            self.rejected_at = None
        if k < self.consumed:
            n = self.consumed - k
            try:
                self.matcher.rollback(n)
            except Exception:  # rollback depth exceeded (or unsupported): replay from scratch
                self.matcher.reset()
                for t in self.tokens[:k]:
                    if not self.matcher.accept_token(t):  # pragma: no cover - was accepted before
                        raise
            self.consumed = k
        del self.tokens[k:]

    def feed(self, tok: int) -> bool:
        """Record one token; returns False when the matcher rejected it."""
        self.tokens.append(tok)
        if self.rejected_at is not None or self.matcher.is_terminated():
            return True  # pads after the end: ignored
        if self.matcher.accept_token(tok):
            self.consumed += 1
            return True
        self.rejected_at = len(self.tokens) - 1
        return False


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n])
    y = np.asarray(b[:n])
    diff = np.nonzero(x != y)[0]
    return int(diff[0]) if diff.size else n


class ConstrainLogitsProcessor(LogitsProcessor):
    """Masks the logits so that every row of ``model.generate`` stays inside the grammar.

    ``grammar``: a CompiledGrammar.  ``eos_token_ids`` / ``pad_token_id``: the tokens a finished
    row may still emit (default: the grammar's vocabulary EOS ids, and the tokenizer's pad).
    ``tokenizer``: optional, only used for the defaults above.
    """

    supports_continuous_batching = False

    def __init__(self, grammar, *, tokenizer=None, eos_token_ids: Iterable[int] | None = None,
                 pad_token_id: int | None = None):
        self.grammar = grammar
        vocab = grammar_vocab(grammar)
        if eos_token_ids is None:
            eos = getattr(vocab, "eos_token_ids", None)
            if eos is None and tokenizer is not None and tokenizer.eos_token_id is not None:
                eos = [tokenizer.eos_token_id]
            eos_token_ids = eos or ()
        self.eos_token_ids = frozenset(int(t) for t in eos_token_ids)
        if pad_token_id is None and tokenizer is not None:
            pad_token_id = tokenizer.pad_token_id
        self.pad_token_id = pad_token_id
        self.num_rejected = 0
        self._vocab_size: int | None = None
        self._rows: list[_Row] | None = None
        self._prompt: torch.Tensor | None = None
        self._prev_ids: torch.Tensor | None = None
        self._bitmask: np.ndarray | None = None
        self._finished_row: np.ndarray | None = None

    # -- construction helpers -------------------------------------------------------------
    @classmethod
    def from_json_schema(cls, schema, tokenizer, *, model=None, **kwargs) -> "ConstrainLogitsProcessor":
        """A processor for JSON matching ``schema`` (a dict or JSON text).

        ``model`` (optional) supplies the logits width and generation config EOS ids.
        """
        from ..api import compiler_for

        comp = compiler_for(tokenizer, model=model)
        return cls(comp.compile_json_schema(schema), tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_regex(cls, pattern: str, tokenizer, *, model=None, **kwargs) -> "ConstrainLogitsProcessor":
        """A processor for text that fully matches the regular expression ``pattern``."""
        from ..api import compiler_for

        comp = compiler_for(tokenizer, model=model)
        return cls(comp.compile_regex(pattern), tokenizer=tokenizer, **kwargs)

    @classmethod
    def from_grammar(cls, grammar, tokenizer=None, **kwargs) -> "ConstrainLogitsProcessor":
        """A processor for an already compiled grammar (same as the constructor)."""
        return cls(grammar, tokenizer=tokenizer, **kwargs)

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the current generation; the next call starts fresh matchers."""
        self._rows = None
        self._prompt = None
        self._prev_ids = None
        self.num_rejected = 0

    @property
    def matchers(self) -> list:
        """The matcher of each row (after the last call), or [] before the first call."""
        return [r.matcher for r in self._rows] if self._rows else []

    @property
    def prompt_length(self) -> int | None:
        return None if self._prompt is None else int(self._prompt.shape[1])

    def _start(self, input_ids: torch.Tensor) -> None:
        b = input_ids.shape[0]
        self._rows = [_Row(self.grammar.matcher()) for _ in range(b)]
        self._prompt = input_ids.detach().clone()
        self.num_rejected = 0

    def _sync(self, input_ids: torch.Tensor) -> None:
        """Bring every row's matcher up to date with ``input_ids``."""
        b, length = input_ids.shape
        rows = self._rows
        if rows is None or len(rows) != b:
            return self._start(input_ids)
        plen = self._prompt.shape[1]
        prev = self._prev_ids
        if (prev is not None and prev.shape[1] + 1 == length
                and torch.equal(input_ids[:, :-1], prev)):
            # common step: one new token per row
            for row, tok in zip(rows, input_ids[:, -1].tolist()):
                if not row.feed(tok):
                    self.num_rejected += 1
            return
        if (length < plen or (prev is not None and length > prev.shape[1] + 1)
                or not torch.equal(input_ids[:, :plen], self._prompt)):
            # within one generate call rows grow by at most one token per call (beam search,
            # sampling, and assisted decoding alike): anything else is a new generation
            return self._start(input_ids)
        # general case: rows may have been reordered, duplicated or cut back
        gen = input_ids[:, plen:].tolist()
        sources = []
        for i, seq in enumerate(gen):
            best_j, best_k = i, _lcp(seq, rows[i].tokens)
            if best_k < len(seq) or best_k < len(rows[i].tokens):
                for j, r in enumerate(rows):
                    if j != i:
                        k = _lcp(seq, r.tokens)
                        if k > best_k:
                            best_j, best_k = j, k
            sources.append((best_j, best_k))
        used: set[int] = set()
        new_rows = []
        for j, _ in sources:  # take or copy every source before any is modified
            new_rows.append(rows[j] if j not in used else rows[j].copy())
            used.add(j)
        for row, seq, (_, k) in zip(new_rows, gen, sources):
            row.truncate(k)
            for tok in seq[k:]:
                if not row.feed(tok):
                    self.num_rejected += 1
        self._rows = new_rows

    def _finished_mask(self, vocab_size: int) -> np.ndarray:
        if self._finished_row is None or self._finished_row.shape[0] != (vocab_size + 31) // 32:
            row = np.zeros((vocab_size + 31) // 32, dtype=np.int32)
            ids = set(self.eos_token_ids)
            if self.pad_token_id is not None:
                ids.add(int(self.pad_token_id))
            u = row.view(np.uint32)
            for t in ids:
                if 0 <= t < vocab_size:
                    u[t >> 5] |= np.uint32(1 << (t & 31))
            self._finished_row = row
        return self._finished_row

    # -- the hook ---------------------------------------------------------------------------
    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if scores.dim() != 2 or input_ids.shape[0] != scores.shape[0]:
            raise ValueError(
                f"expected scores (batch, vocab) matching input_ids rows, got {tuple(scores.shape)} "
                f"and {tuple(input_ids.shape)}"
            )
        self._sync(input_ids)
        rows = self._rows
        b = len(rows)
        v = self._vocab_size
        if v is None:
            v = int(getattr(rows[0].matcher, "vocab_size", scores.shape[-1]))
            self._vocab_size = v
        if self._bitmask is None or self._bitmask.shape[0] < b or self._bitmask.shape[1] != (v + 31) // 32:
            self._bitmask = allocate_token_bitmask(max(b, 1), v)
        mask = self._bitmask[:b]
        for i, row in enumerate(rows):
            out = mask[i]
            if row.finished:
                out[:] = self._finished_mask(v)
            else:
                row.matcher.fill_bitmask(out)
                if not out.any():  # dead end (should not happen): let the row stop
                    self.num_rejected += 1
                    out[:] = self._finished_mask(v)
        apply_token_bitmask_(scores, mask, vocab_size=v)
        self._prev_ids = input_ids.detach().clone()
        return scores
