"""Denoisers: one forward pass gives, for every canvas position, the log-probabilities of its
clean token.

The three families' output conventions, normalized here so that the samplers see one layout:

- **LLaDA**: ``model(input_ids).logits[:, i]`` predicts position ``i``.
- **Dream**: adapted from an autoregressive model, so ``logits[:, i]`` predicts position
  ``i + 1``; the adapter shifts them right by one (position 0 reuses ``logits[:, 0]``, as Dream's
  own sampler does; position 0 is a prompt token in practice).
- **MDLM**: raw logits over the vocabulary *including* the mask token; its SUBS
  parameterization removes the mask logit and carries committed positions over unchanged.

Every convention gets the last two rules: the mask token is never a clean token (its log-prob is
``-inf``), and a committed position's row is one-hot on its token (the samplers read only masked
positions, and this makes the contract uniform).  ``temperature`` divides the logits before
the softmax: the result is the distribution ``P`` the samplers align to.

:class:`DiffusionAdapter` wraps a ``transformers`` model (anything whose call returns an object
with ``.logits``) or a plain callable ``ids -> logits`` (torch tensor or numpy array).

>>> adapter = DiffusionAdapter(model, mask_id=126336, convention="llada")   # doctest: +SKIP
>>> adapter.logprobs(canvas).shape                                          # doctest: +SKIP
(batch, length, vocab)
>>> adapter.logprobs(canvas, 40, 48).shape        # one block: only it leaves the device  # doctest: +SKIP
(batch, 8, vocab)
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

__all__ = ["CONVENTIONS", "Denoiser", "DiffusionAdapter"]

CONVENTIONS = ("llada", "dream", "mdlm")


class Denoiser(ABC):
    """``logprobs(canvas, lo, hi)``: ``(B, n)`` int ids (``mask_id`` where masked) → ``(B, hi - lo,
    W)`` float64 log-probabilities of the clean token at positions ``[lo, hi)`` (default: all;
    ``-inf`` for the mask token; one-hot rows at committed positions)."""

    mask_id: int

    @abstractmethod
    def logprobs(self, canvas: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray: ...


class DiffusionAdapter(Denoiser):
    """Wraps ``model`` (a ``transformers`` model or a callable) in one of :data:`CONVENTIONS`.

    ``temperature`` > 0 scales the logits.  ``max_batch``: rows per forward pass (None: all).
    The model runs under ``torch.no_grad()`` on its own device; the canvas is sent there as
    int64 ids, and log-probabilities come back as float64 numpy arrays.
    """

    def __init__(self, model, mask_id: int, *, convention: str = "llada", temperature: float = 1.0,
                 max_batch: int | None = None):
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.model = model
        self.mask_id = int(mask_id)
        self.convention = convention
        self.temperature = float(temperature)
        self.max_batch = max_batch

    def __repr__(self) -> str:
        return (f"DiffusionAdapter({type(self.model).__name__}, mask_id={self.mask_id}, "
                f"convention={self.convention!r}, temperature={self.temperature})")

    def _device(self):
        import torch

        try:
            return next(self.model.parameters()).device
        except (AttributeError, StopIteration, TypeError):
            return torch.device("cpu")

    def _raw_logits(self, ids: np.ndarray):
        import torch

        x = torch.as_tensor(ids, dtype=torch.long, device=self._device())
        with torch.no_grad():
            out = self.model(x)
        out = getattr(out, "logits", out)
        out = torch.as_tensor(out)
        if out.dtype not in (torch.float32, torch.float64):
            out = out.float()
        if out.shape[:2] != x.shape:
            raise ValueError(f"the denoiser returned logits of shape {tuple(out.shape)} for ids of "
                             f"shape {tuple(x.shape)}; expected (batch, length, vocab)")
        return out

    def logprobs(self, canvas: np.ndarray, lo: int = 0, hi: int | None = None) -> np.ndarray:
        canvas = np.asarray(canvas, dtype=np.int64)
        if canvas.ndim != 2:
            raise ValueError(f"canvas must be 2-D (batch, length), got shape {canvas.shape}")
        hi = canvas.shape[1] if hi is None else hi
        if not 0 <= lo < hi <= canvas.shape[1]:
            raise ValueError(f"window [{lo}, {hi}) outside a canvas of length {canvas.shape[1]}")
        step = self.max_batch or len(canvas) or 1
        return np.concatenate([self._logprobs(canvas[i:i + step], lo, hi) for i in range(0, len(canvas), step)])

    def _logprobs(self, canvas: np.ndarray, lo: int, hi: int) -> np.ndarray:
        import torch

        logits = self._raw_logits(canvas)
        if self.convention == "dream":
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        logits = logits[:, lo:hi] / self.temperature  # slice on the device: only the window travels
        if self.mask_id < logits.shape[-1]:
            logits[..., self.mask_id] = float("-inf")
        logp = torch.log_softmax(logits, dim=-1).double().cpu().numpy()
        canvas = canvas[:, lo:hi]
        committed = canvas != self.mask_id
        rows, cols = np.nonzero(committed)
        logp[rows, cols] = -np.inf
        logp[rows, cols, canvas[rows, cols]] = 0.0
        return logp
