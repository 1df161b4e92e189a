"""Packed token bitmasks and their application to logits.

Layout (shared with vLLM, xgrammar and llguidance): a mask for a vocabulary of ``V`` tokens is
``ceil(V / 32)`` int32 words; bit ``i % 32`` of word ``i // 32`` set means token ``i`` is
allowed.  A batch is a 2-D ``(batch, words)`` array.

:func:`apply_token_bitmask_` unpacks the mask on the logits' own device with a handful of
torch bitwise ops and writes ``-inf`` into disallowed columns in place; the logits never leave
their device, only the small int32 mask travels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["allocate_token_bitmask", "bitmask_words", "apply_token_bitmask_", "unpack_bitmask_np"]


def bitmask_words(vocab_size: int) -> int:
    """Number of int32 words of a mask for ``vocab_size`` tokens: ``ceil(vocab_size / 32)``."""
    if vocab_size < 0:
        raise ValueError(f"vocab_size must be >= 0, got {vocab_size}")
    return (int(vocab_size) + 31) // 32


def allocate_token_bitmask(batch: int, vocab_size: int) -> np.ndarray:
    """A ``(batch, ceil(vocab_size/32))`` int32 array with every bit set (all tokens allowed)."""
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    return np.full((int(batch), bitmask_words(vocab_size)), -1, dtype=np.int32)


def unpack_bitmask_np(bitmask: np.ndarray, width: int | None = None) -> np.ndarray:
    """Reference unpacking on the host: bool array ``(..., 32 * words)`` (sliced/padded to ``width``).

    Columns at or beyond ``32 * words`` (when ``width`` is larger) are False (disallowed).
    """
    bm = np.ascontiguousarray(np.asarray(bitmask, dtype=np.int32))
    # int32 words are little-endian on every platform numpy/torch run on in practice; force it.
    bits = np.unpackbits(bm.astype("<i4").view(np.uint8), axis=-1, bitorder="little").astype(bool)
    if width is None:
        return bits
    n = bits.shape[-1]
    if width <= n:
        return bits[..., :width]
    pad = np.zeros(bits.shape[:-1] + (width - n,), dtype=bool)
    return np.concatenate([bits, pad], axis=-1)


_SHIFTS: dict = {}


def _shifts(device):
    import torch

    key = str(device)
    t = _SHIFTS.get(key)
    if t is None:
        t = torch.arange(32, dtype=torch.int32, device=device)
        _SHIFTS[key] = t
    return t


def apply_token_bitmask_(logits, bitmask, *, vocab_size: int | None = None,
                         indices: Sequence[int] | None = None):
    """Set the logits of disallowed tokens to ``-inf``, in place, on the logits' device.

    ``logits``: a float tensor ``(batch, W)`` or ``(W,)``.  ``bitmask``: an int32 numpy array or
    torch tensor ``(batch, words)`` or ``(words,)`` (a 1-D mask applies to every row).
    ``vocab_size``: when given, columns at or beyond it are disallowed as well (padded
    vocabularies whose extra logits no token owns).  Columns beyond ``32 * words`` are always
    disallowed; mask bits beyond the logits' width are ignored.
    ``indices``: apply only to these rows of ``logits`` (then ``bitmask`` has one row per index,
    or is indexed by them when it has as many rows as ``logits``).
    Returns ``logits``.
    """
    import torch

    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if logits.dim() not in (1, 2):
        raise ValueError(f"logits must be 1-D or 2-D, got shape {tuple(logits.shape)}")
    if isinstance(bitmask, np.ndarray):
        if bitmask.dtype != np.int32:
            if bitmask.dtype == np.uint32:
                bitmask = bitmask.view(np.int32)
            else:
                raise TypeError(f"bitmask must be int32, got {bitmask.dtype}")
        bm = torch.from_numpy(np.ascontiguousarray(bitmask))
    elif isinstance(bitmask, torch.Tensor):
        if bitmask.dtype != torch.int32:
            raise TypeError(f"bitmask must be int32, got {bitmask.dtype}")
        bm = bitmask
    else:
        raise TypeError(f"bitmask must be a numpy array or torch tensor, got {type(bitmask).__name__}")
    if bm.dim() not in (1, 2):
        raise ValueError(f"bitmask must be 1-D or 2-D, got shape {tuple(bm.shape)}")
    device = logits.device
    if bm.device != device:
        bm = bm.to(device, non_blocking=True)

    width = logits.shape[-1]
    if vocab_size is not None:
        width_allowed = min(width, int(vocab_size))
    else:
        width_allowed = width
    n = min(width_allowed, bm.shape[-1] * 32)

    target = logits
    if indices is not None:
        if logits.dim() != 2:
            raise ValueError("indices need 2-D logits")
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=device)
        if bm.dim() == 2 and bm.shape[0] == logits.shape[0] and bm.shape[0] != len(idx):
            bm = bm.index_select(0, idx)
        target = logits.index_select(0, idx)
    elif bm.dim() == 2 and logits.dim() == 2 and bm.shape[0] != logits.shape[0]:
        raise ValueError(f"bitmask has {bm.shape[0]} rows but logits have {logits.shape[0]}")
    elif bm.dim() == 2 and logits.dim() == 1:
        if bm.shape[0] != 1:
            raise ValueError(f"1-D logits need a 1-D (or single-row) bitmask, got {tuple(bm.shape)}")
        bm = bm[0]

    if n > 0:
        words = (n + 31) // 32
        bits = (bm[..., :words].unsqueeze(-1) >> _shifts(device)) & 1
        disallowed = (bits == 0).reshape(bits.shape[:-2] + (words * 32,))[..., :n]
        target[..., :n].masked_fill_(disallowed, float("-inf"))
    if n < width:
        target[..., n:] = float("-inf")

    if indices is not None:
        logits.index_copy_(0, idx, target)
    return logits
