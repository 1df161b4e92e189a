"""The denoising loop and the ways one step commits its tokens.

A run fills ``rows`` canvases ``prompt + [mask] * gen_length`` in one batch: per step of the
:func:`~.schedules.plan`, one forward pass gives every position's log-probabilities, the
remasking rule picks the positions to commit from those *unconstrained* confidences, and a
:class:`Committer` fills them:

- :class:`Unconstrained`: each chosen position independently from its distribution (or its
  argmax); no constraint.
- :class:`Dingo`: the most probable assignment of the chosen positions that can still be
  completed (:func:`~.dingo.dingo`); greedy.
- :class:`ExactSample`: an exact draw from the chosen positions' joint distribution restricted
  to completable assignments (:func:`~.filtering.forward_filter`), whose normalizer ``Z_step``
  multiplies the row's weight.  The SMC sampler (:mod:`.smc`) resamples on these weights.

Weights (``DiffusionSample.log_weight``) are importance weights for the unnormalized target
``P(x)·1[x ∈ L]``, where ``P`` is the distribution of the unconstrained sampler with the same
schedule: ``1[valid]`` for :class:`Unconstrained`, ``Π Z_step`` for :class:`ExactSample`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..sampling.loop import pooled_posterior
from .adapters import Denoiser
from .dingo import dingo
from .filtering import forward_filter
from .schedules import plan, select_positions
from .slots import OPEN, Slots, candidates
from .token_dfa import TokenDFA

__all__ = ["DiffusionSample", "DiffusionResult", "Committer", "Unconstrained", "Dingo", "ExactSample",
           "denoise"]

NEG_INF = -math.inf


@dataclass
class DiffusionSample:
    """One finished canvas.  ``tokens``: the generated region (EOS padding included).
    ``log_prob``: ``Σ log P(token | canvas when it was committed)`` over the trajectory, under the
    unconstrained denoiser.  ``log_weight``: log importance weight (see the module docstring).
    ``status``: ``"done"``, or ``"dead"`` when a step had no valid assignment of positive
    probability (the canvas was then finished unconstrained).  ``valid``: whether the canvas is
    in the constraint's language (None without a constraint)."""

    tokens: list[int]
    log_prob: float = 0.0
    log_weight: float = 0.0
    status: str = "done"
    valid: bool | None = None

    def body(self, eos_token_ids) -> list[int]:
        """The tokens before the first EOS."""
        for i, t in enumerate(self.tokens):
            if t in eos_token_ids:
                return self.tokens[:i]
        return list(self.tokens)

    def text(self, vocab) -> bytes:
        """The bytes of :meth:`body` under ``vocab`` (a :class:`~constrain.vocab.Vocabulary`)."""
        return vocab.decode_bytes(self.body(vocab.eos_token_ids))


@dataclass
class DiffusionResult:
    """``samples``; ``method``; ``log_z``: log mean weight (an estimate of ``Z_L``, the
    probability that the unconstrained sampler's output is in the language; None for DINGO and for
    context-free ``"sample"``);
    ``stats``: method-specific figures."""

    samples: list[DiffusionSample]
    method: str
    log_z: float | None = None
    stats: dict = field(default_factory=dict)

    def posterior(self) -> dict[tuple, float]:
        """Self-normalized weights summed per distinct canvas (valid ones only)."""
        return pooled_posterior([(tuple(s.tokens), s.log_weight if s.valid is not False else NEG_INF)
                                 for s in self.samples])

    def draw(self, rng: np.random.Generator | None = None) -> DiffusionSample | None:
        """One valid sample chosen ∝ its weight; None when no sample is valid."""
        ok = [s for s in self.samples if s.valid is not False and s.log_weight > NEG_INF]
        if not ok:
            return None
        if len(ok) == 1:
            return ok[0]
        rng = rng if rng is not None else np.random.default_rng()
        lw = np.array([s.log_weight for s in ok])
        p = np.exp(lw - lw.max())
        return ok[int(rng.choice(len(ok), p=p / p.sum()))]


class Committer(ABC):
    """Fills the chosen positions of each row, keeping per-row log-probabilities and weights.

    ``commit(gen, logp, positions, offset, rng)``: ``gen`` is the generated region ``(B, n)``
    (``mask_id`` where masked), written in place; ``logp`` ``(B, w, W)`` covers the window
    ``[offset, offset + w)`` of it (the current block); ``positions`` ``(B, k)`` are indices into
    that window.  Returns ancestor indices when the rows were reordered (resampling), else None.
    """

    def __init__(self, mask_id: int, dfa: TokenDFA | None = None, top_k: int | None = None):
        self.mask_id = mask_id
        self.dfa = dfa
        self.top_k = top_k
        self.log_prob = np.zeros(0)
        self.log_weight = np.zeros(0)
        self.dead = np.zeros(0, dtype=bool)

    def reset(self, rows: int) -> None:
        self.log_prob = np.zeros(rows)
        self.log_weight = np.zeros(rows)
        self.dead = np.zeros(rows, dtype=bool)

    @abstractmethod
    def commit(self, gen: np.ndarray, logp: np.ndarray, positions: np.ndarray, offset: int,
               rng: np.random.Generator) -> np.ndarray | None: ...

    def _write(self, gen, logp, r: int, positions: Sequence[int], offset: int, tokens: Sequence[int]) -> None:
        for p, t in zip(positions, tokens):
            gen[r, offset + p] = t
            self.log_prob[r] += logp[r, p, t]

    def _slots(self, gen_row: np.ndarray, logp_row: np.ndarray, positions, offset: int, top_k) -> Slots:
        tokens = np.where(gen_row == self.mask_id, OPEN, gen_row)
        return Slots(tokens, {offset + p: candidates(logp_row[p], top_k) for p in positions})

    def _give_up(self, gen, logp, r: int, positions, offset: int) -> None:
        """No valid assignment of positive probability: finish the row unconstrained."""
        self.dead[r] = True
        self.log_weight[r] = NEG_INF
        self._write(gen, logp, r, positions, offset, [int(np.argmax(logp[r, p])) for p in positions])

    def _constrained(self, gen, logp, positions, offset: int, solve) -> None:
        """Per row: ``solve(slots, row)`` → the region's tokens after the step, or None; retried
        on the full vocabulary when a top-k restriction left no valid assignment."""
        for r in range(len(gen)):
            pos = positions[r].tolist()
            if self.dead[r]:
                self._give_up(gen, logp, r, pos, offset)
                continue
            got = solve(self._slots(gen[r], logp[r], pos, offset, self.top_k), r)
            if got is None and self.top_k is not None:
                got = solve(self._slots(gen[r], logp[r], pos, offset, None), r)
            if got is None:
                self._give_up(gen, logp, r, pos, offset)
            else:
                self._write(gen, logp, r, pos, offset, [int(got[offset + p]) for p in pos])


class Unconstrained(Committer):
    """Each chosen position independently: sampled (Gumbel-max), or its argmax when ``greedy``."""

    def __init__(self, mask_id: int, *, greedy: bool = False):
        super().__init__(mask_id)
        self.greedy = greedy

    def commit(self, gen, logp, positions, offset, rng):
        rows = np.arange(len(gen))[:, None]
        lp = logp[rows, positions]  # (B, k, W)
        if not self.greedy:
            lp = lp + rng.gumbel(size=lp.shape)
        tok = lp.argmax(axis=-1)
        gen[rows, offset + positions] = tok
        self.log_prob += logp[rows, positions, tok].sum(axis=1)
        return None


class Dingo(Committer):
    """The most probable completable assignment of the chosen positions (greedy)."""

    def commit(self, gen, logp, positions, offset, rng):
        def solve(slots, r):
            best = dingo(self.dfa, slots)
            return None if best is None else best.tokens

        self._constrained(gen, logp, positions, offset, solve)
        return None


class ExactSample(Committer):
    """An exact draw of the chosen positions given completability; the step normalizer
    multiplies the row's weight.  ``max_sets``: the most state sets a filter kept at a position."""

    def __init__(self, mask_id: int, dfa: TokenDFA, top_k: int | None = None):
        super().__init__(mask_id, dfa, top_k)
        self.max_sets = 0

    def commit(self, gen, logp, positions, offset, rng):
        def solve(slots, r):
            f = forward_filter(self.dfa, slots)
            self.max_sets = max(self.max_sets, f.num_sets)
            if f.log_z == NEG_INF:
                return None
            self.log_weight[r] += f.log_z
            return f.sample(rng)

        self._constrained(gen, logp, positions, offset, solve)
        return None


def denoise(adapter: Denoiser, prompt_ids: Sequence[int], rows: int, committer: Committer, *,
            gen_length: int, steps: int, block_length: int | None, remasking: str,
            rng: np.random.Generator) -> np.ndarray:
    """Run the schedule on ``rows`` canvases; returns the generated regions ``(rows, gen_length)``
    (rows in the committer's final order)."""
    prompt = np.asarray(list(prompt_ids), dtype=np.int64)
    P = len(prompt)
    canvas = np.full((rows, P + gen_length), adapter.mask_id, dtype=np.int64)
    canvas[:, :P] = prompt
    committer.reset(rows)
    for st in plan(gen_length, steps, block_length):
        logp = adapter.logprobs(canvas, P + st.lo, P + st.hi)  # the block only
        gen = canvas[:, P:]  # a view: the committer writes into the canvas
        eligible = gen[:, st.lo:st.hi] == adapter.mask_id
        positions = select_positions(logp, eligible, st.k, remasking, rng)
        ancestors = committer.commit(gen, logp, positions, st.lo, rng)
        if ancestors is not None:
            canvas = canvas[ancestors]
    return canvas[:, P:]
