"""One denoising step as seen by the constraint: what each canvas position may become.

Every position of the generated region is one of

- **committed**: its token is fixed (``tokens[i] >= 0``);
- **candidate**: masked, and this step may fill it: candidate token ids with log weights (the
  denoiser's log-probabilities), plus optionally the log weight ``keep`` of leaving it masked
  (DINGO's ⊥ option; ``-inf``, the default, means the step must fill it);
- **masked**: masked and left so (``tokens[i] == OPEN``, not a candidate): it may become any
  token later, at weight 1.

An *assignment* gives every candidate position a token or :data:`OPEN`; it is *valid* when
some filling of the positions still masked afterwards puts the whole canvas in the language.
DINGO (:mod:`.dingo`) finds the most probable valid assignment; the forward filter
(:mod:`.filtering`) sums over them (the step normalizer) and samples one exactly.

>>> s = Slots(np.array([OPEN, OPEN, OPEN]), {0: (np.array([3, 5]), np.log([0.9, 0.1]))})
>>> s.last_decided()
0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["OPEN", "Slots", "candidates"]

OPEN = -1  # a masked position (in ``Slots.tokens`` and in assignments)


@dataclass
class Slots:
    """``tokens``: committed token per position, :data:`OPEN` where masked.  ``cands``:
    position → ``(ids, log_weights)`` for the positions this step may fill.  ``keep``:
    position → log weight of leaving that candidate masked (absent: it must be filled)."""

    tokens: np.ndarray
    cands: dict[int, tuple[np.ndarray, np.ndarray]]
    keep: dict[int, float] = field(default_factory=dict)

    def __post_init__(self):
        self.tokens = np.asarray(self.tokens, dtype=np.int64)
        for i, (ids, lw) in self.cands.items():
            if self.tokens[i] != OPEN:
                raise ValueError(f"position {i} is committed (token {self.tokens[i]}) and cannot be a candidate")
            if len(ids) != len(lw):
                raise ValueError(f"position {i}: {len(ids)} candidate ids but {len(lw)} log weights")

    def __len__(self) -> int:
        return len(self.tokens)

    def keep_weight(self, i: int) -> float:
        return self.keep.get(i, -math.inf)

    def last_decided(self) -> int:
        """The last position that is committed or a candidate (-1 if none): the positions after
        it are all masked, so only the distance to acceptance matters there."""
        decided = np.flatnonzero(self.tokens != OPEN).tolist() + list(self.cands)
        return max(decided, default=-1)


def candidates(logp: np.ndarray, top_k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, log_weights)`` of the tokens with positive probability in ``logp`` (one position's
    log-probabilities); with ``top_k``, only the ``top_k`` most probable (ties: lower id first)."""
    ids = np.flatnonzero(np.isfinite(logp))
    if top_k is not None and len(ids) > top_k:
        order = np.argsort(-logp[ids], kind="stable")[:top_k]
        ids = np.sort(ids[order])
    return ids, logp[ids]
