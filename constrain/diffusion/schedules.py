"""Schedules: how many tokens each denoising step commits, in which semi-autoregressive block,
and which masked positions (the remasking rule).

- :func:`plan`: the canvas splits into blocks of ``block_length`` filled left to right (LLaDA's
  semi-autoregressive decoding; one block = fully any-order); each block gets
  ``steps / num_blocks`` steps and commits ``block_length`` tokens spread over them as evenly as
  possible, earlier steps taking the remainder (LLaDA's ``get_num_transfer_tokens``).
- :func:`select_positions`: the ``k`` masked positions of the block with the highest confidence.
  Confidences come from the *unconstrained* distributions and from nothing the step is about to
  sample, so the choice of positions is the same whatever the constraint does afterwards: with
  one token per step, any such rule makes the unconstrained sampler draw from the model's joint,
  and the weighted (SMC) sampler from the joint conditioned on the constraint.

Rules (:data:`REMASKING`): ``"low_confidence"`` (largest top-1 probability; LLaDA, Dream's
``maskgit_plus``), ``"margin"`` (largest top-1 minus top-2 probability; Dream's
``topk_margin``), ``"entropy"`` (lowest entropy; Dream's ``entropy``), ``"random"`` (uniformly
random positions; LLaDA's ``random``).  Ties go to the leftmost position.

Unlike LLaDA's reference code, ``low_confidence`` scores a position by its greedy token's
probability *before* sampling, not by the probability of the token it then samples: a choice of
positions that depends on the sampled tokens would change the distribution the step draws from.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["REMASKING", "Step", "plan", "transfer_counts", "confidence", "select_positions"]

REMASKING = ("low_confidence", "margin", "entropy", "random")


class Step(NamedTuple):
    """Commit ``k`` tokens among the masked positions in ``[lo, hi)``."""

    lo: int
    hi: int
    k: int


def transfer_counts(n: int, steps: int) -> list[int]:
    """``n`` tokens over ``steps`` steps, as evenly as possible, the first steps taking one more.

    >>> transfer_counts(10, 4)
    [3, 3, 2, 2]
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    base, extra = divmod(int(n), int(steps))
    return [base + (1 if s < extra else 0) for s in range(steps)]


def plan(gen_length: int, steps: int, block_length: int | None = None) -> list[Step]:
    """The steps of a run; steps that would commit nothing are dropped.

    >>> [tuple(s) for s in plan(8, 4, 4)]
    [(0, 4, 2), (0, 4, 2), (4, 8, 2), (4, 8, 2)]
    """
    gen_length, steps = int(gen_length), int(steps)
    block_length = gen_length if block_length is None else int(block_length)
    if gen_length < 1:
        raise ValueError(f"gen_length must be >= 1, got {gen_length}")
    if not 1 <= block_length <= gen_length or gen_length % block_length:
        raise ValueError(f"block_length ({block_length}) must divide gen_length ({gen_length})")
    blocks = gen_length // block_length
    if steps < blocks or steps % blocks:
        raise ValueError(f"steps ({steps}) must be a positive multiple of the number of blocks ({blocks})")
    out = []
    for b in range(blocks):
        lo, hi = b * block_length, (b + 1) * block_length
        out.extend(Step(lo, hi, k) for k in transfer_counts(block_length, steps // blocks) if k)
    return out


def confidence(logp: np.ndarray, rule: str, rng: np.random.Generator) -> np.ndarray:
    """Per-position confidence ``(B, n)`` from log-probabilities ``(B, n, W)`` (higher first)."""
    if rule == "random":
        return rng.random(logp.shape[:2])
    p = np.exp(logp)
    if rule == "low_confidence":
        return p.max(axis=-1)
    if rule == "margin":
        top2 = np.partition(p, p.shape[-1] - 2, axis=-1)[..., -2:]
        return top2[..., 1] - top2[..., 0]
    if rule == "entropy":
        with np.errstate(invalid="ignore"):
            plogp = np.where(p > 0, p * logp, 0.0)
        return plogp.sum(axis=-1)  # minus the entropy
    raise ValueError(f"unknown remasking rule {rule!r}; choose one of {', '.join(REMASKING)}")


def select_positions(logp: np.ndarray, eligible: np.ndarray, k: int, rule: str,
                     rng: np.random.Generator) -> np.ndarray:
    """``(B, k)`` positions to commit: per row, the ``k`` eligible positions of highest
    :func:`confidence` (sorted by position).  Every row must have at least ``k`` eligible."""
    if (eligible.sum(axis=1) < k).any():
        raise ValueError(f"a row has fewer than {k} masked positions to commit")
    conf = np.where(eligible, confidence(logp, rule, rng), -np.inf)
    order = np.argsort(-conf, axis=1, kind="stable")[:, :k]
    return np.sort(order, axis=1)
