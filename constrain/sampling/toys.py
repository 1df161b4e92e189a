"""Toy language models whose whole distribution over strings can be enumerated, for exact tests
of samplers (ours and yours): a seeded random table LM and a tiny random-init ``transformers``
model, both over a small vocabulary of short byte strings that the real Compiler and Matcher
handle like any tokenizer's.
"""

from __future__ import annotations

import zlib

import numpy as np

from .lm import HFLanguageModel, TableLM, Warper

__all__ = ["TOY_TOKENS", "toy_vocabulary", "random_table_lm", "tiny_transformer"]

#: Token strings of the toy vocabulary (ids 0..5); id 6 is EOS and id 7 BOS.
TOY_TOKENS = (b"a", b"b", b"ab", b"ba", b"c", b"ca")
TOY_EOS = len(TOY_TOKENS)
TOY_BOS = TOY_EOS + 1


def toy_vocabulary(tokens=TOY_TOKENS, *, bos: bool = True):
    """A :class:`~constrain.vocab.Vocabulary` of ``tokens`` + EOS (+ BOS): ids ``0..n-1`` are the
    tokens, ``n`` is EOS, ``n+1`` BOS (special, never allowed)."""
    from ..vocab import Vocabulary

    n = len(tokens)
    tb = list(tokens) + [None] + ([None] if bos else [])
    return Vocabulary(tb, eos_token_ids=[n], special_token_ids=[n + 1] if bos else [], name="toy")


def random_table_lm(width: int, *, seed: int = 0, alpha: float = 0.8, warper: Warper | None = None,
                    zero: tuple = ()) -> TableLM:
    """A table LM whose next-token distribution at each prefix is a seeded Dirichlet(alpha) draw
    (a stable hash of seed and prefix), so it is defined for every prefix.  ``zero``: token ids
    that always get probability 0."""
    zero = tuple(int(z) for z in zero)

    def dist(prefix: tuple) -> np.ndarray:
        h = zlib.crc32(repr((seed, prefix)).encode())
        r = np.random.default_rng(h)
        p = r.dirichlet(np.full(width, alpha))
        p = np.maximum(p, 1e-12)
        if zero:
            p[list(zero)] = 0.0
        return p / p.sum()

    return TableLM(dist, width, warper=warper)


def tiny_transformer(vocab_size: int = len(TOY_TOKENS) + 2, *, seed: int = 0, hidden: int = 16,
                     layers: int = 1, init_range: float = 0.6, dtype: str = "float64",
                     warper: Warper | None = None) -> HFLanguageModel:
    """A random-init Llama causal LM (vocabulary ``vocab_size``, ``hidden`` units, ``layers``
    layers) wrapped as an :class:`HFLanguageModel`.  float64 by default so that different batch
    shapes give the same numbers to ~1e-15 (exact comparisons).  ``init_range`` > the usual 0.02
    makes the next-token distributions far from uniform."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=64, initializer_range=init_range,
                      tie_word_embeddings=False, bos_token_id=vocab_size - 1,
                      eos_token_id=vocab_size - 2, pad_token_id=vocab_size - 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    model = model.to(getattr(torch, dtype)).eval()
    return HFLanguageModel(model, warper=warper)
