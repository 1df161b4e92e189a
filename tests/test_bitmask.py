"""apply_token_bitmask_ against a plain numpy reference on random masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from constrain.bitmask import (
    allocate_token_bitmask,
    apply_token_bitmask_,
    bitmask_words,
    unpack_bitmask_np,
)


def _random_mask(rng, rows, words):
    return rng.integers(-(2**31), 2**31, size=(rows, words), dtype=np.int64).astype(np.int32)


def _reference(logits: np.ndarray, bitmask: np.ndarray, vocab_size=None) -> np.ndarray:
    """Plain Python/numpy: column j allowed iff j < 32*words, j < vocab_size and bit j is set."""
    out = logits.copy()
    width = out.shape[-1]
    words = bitmask.shape[-1]
    for j in range(width):
        w, b = divmod(j, 32)
        ok = np.zeros(out.shape[:-1], dtype=bool) if w >= words else ((bitmask[..., w] >> b) & 1) == 1
        if vocab_size is not None and j >= vocab_size:
            ok = np.zeros_like(ok)
        out[..., j] = np.where(ok, out[..., j], -np.inf)
    return out


def test_allocate_all_set():
    bm = allocate_token_bitmask(3, 70)
    assert bm.dtype == np.int32 and bm.shape == (3, 3)
    assert (bm == -1).all()
    assert bitmask_words(0) == 0 and bitmask_words(32) == 1 and bitmask_words(33) == 2
    assert allocate_token_bitmask(2, 64).shape == (2, 2)


def test_unpack_np_matches_bits():
    rng = np.random.default_rng(0)
    bm = _random_mask(rng, 2, 3)
    bits = unpack_bitmask_np(bm)
    for r in range(2):
        for j in range(96):
            assert bits[r, j] == bool((int(bm[r, j // 32]) >> (j % 32)) & 1)
    assert unpack_bitmask_np(bm, 100).shape == (2, 100) and not unpack_bitmask_np(bm, 100)[:, 96:].any()


@pytest.mark.parametrize("width,words", [(64, 2), (70, 3), (96, 3), (100, 3), (50, 3), (33, 1), (1, 1)])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_matches_reference_batch(width, words, batch, dtype):
    rng = np.random.default_rng(width * 31 + words * 7 + batch)
    bm = _random_mask(rng, batch, words)
    logits = torch.randn(batch, width, generator=torch.Generator().manual_seed(width)).to(dtype)
    expected = _reference(logits.float().numpy(), bm)
    ptr = logits.data_ptr()
    out = apply_token_bitmask_(logits, bm)
    assert out is logits and logits.data_ptr() == ptr  # in place
    np.testing.assert_array_equal(logits.float().numpy(), expected)


def test_single_row_1d_and_torch_mask():
    rng = np.random.default_rng(1)
    bm = _random_mask(rng, 1, 4)[0]
    logits = torch.randn(120)
    expected = _reference(logits.numpy(), bm)
    apply_token_bitmask_(logits, torch.from_numpy(bm))
    np.testing.assert_array_equal(logits.numpy(), expected)


def test_1d_mask_broadcasts_over_rows():
    rng = np.random.default_rng(2)
    bm = _random_mask(rng, 1, 2)[0]
    logits = torch.randn(4, 64)
    expected = _reference(logits.numpy(), np.broadcast_to(bm, (4, 2)))
    apply_token_bitmask_(logits, bm)
    np.testing.assert_array_equal(logits.numpy(), expected)


def test_vocab_size_disallows_padded_columns():
    bm = allocate_token_bitmask(2, 100)  # all allowed, 4 words = 128 bits
    logits = torch.zeros(2, 128)
    apply_token_bitmask_(logits, bm, vocab_size=100)
    assert torch.isfinite(logits[:, :100]).all()
    assert torch.isneginf(logits[:, 100:]).all()


def test_logits_wider_than_mask():
    bm = allocate_token_bitmask(1, 64)
    logits = torch.zeros(1, 80)
    apply_token_bitmask_(logits, bm)
    assert torch.isfinite(logits[:, :64]).all() and torch.isneginf(logits[:, 64:]).all()


def test_indices_rows_only():
    rng = np.random.default_rng(3)
    bm = _random_mask(rng, 4, 2)
    logits = torch.randn(4, 64)
    before = logits.clone()
    apply_token_bitmask_(logits, bm, indices=[1, 3])
    ref = _reference(before.numpy(), bm)
    np.testing.assert_array_equal(logits[[0, 2]].numpy(), before[[0, 2]].numpy())
    np.testing.assert_array_equal(logits[[1, 3]].numpy(), ref[[1, 3]])


def test_large_vocab_random_against_numpy_unpack():
    rng = np.random.default_rng(4)
    V = 49152 + 17
    bm = _random_mask(rng, 2, bitmask_words(V))
    logits = torch.randn(2, V + 47)  # padded logits
    expected = np.where(unpack_bitmask_np(bm, V + 47), logits.numpy(), -np.inf)
    expected[:, V:] = -np.inf
    apply_token_bitmask_(logits, bm, vocab_size=V)
    np.testing.assert_array_equal(logits.numpy(), expected)


def test_bad_inputs():
    with pytest.raises(TypeError):
        apply_token_bitmask_(torch.zeros(2, 64), np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError):
        apply_token_bitmask_(torch.zeros(2, 64), np.zeros((3, 2), dtype=np.int32))
    with pytest.raises(TypeError):
        apply_token_bitmask_(np.zeros((2, 64)), np.zeros((2, 2), dtype=np.int32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_device_matches_cpu():
    rng = np.random.default_rng(5)
    bm = _random_mask(rng, 3, 5)
    cpu = torch.randn(3, 150)
    gpu = cpu.cuda()
    apply_token_bitmask_(cpu, bm)
    apply_token_bitmask_(gpu, bm)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu)
