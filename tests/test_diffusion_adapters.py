"""Denoiser adapters on tiny random-init bidirectional transformers (BertForMaskedLM, float64, no
downloads) in the LLaDA, Dream and MDLM conventions: each convention's layout against the raw
logits, batched equals unbatched, and constrained generation end to end with every method.
"""

from __future__ import annotations

import numpy as np
import pytest

import constrain
from constrain.diffusion import CONVENTIONS, DiffusionAdapter, generate
from constrain.sampling.toys import toy_vocabulary

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOKENS = (b"a", b"b", b"ab", b"ba", b"c", b"ca")
VOCAB = toy_vocabulary(TOKENS)  # ids 0..5, EOS 6, BOS 7
MASK = 8


def tiny_bert(vocab_size: int = MASK + 1, seed: int = 0, hidden: int = 16):
    import torch
    from transformers import BertConfig, BertForMaskedLM

    cfg = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=2 * hidden, max_position_embeddings=32, initializer_range=0.6,
                     type_vocab_size=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForMaskedLM(cfg)
    return model.double().eval()


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


def canvases():
    rng = np.random.default_rng(0)
    c = rng.integers(0, 7, size=(4, 7))
    c[:, 0] = 7  # BOS prompt
    c[rng.random(c.shape) < 0.5] = MASK
    c[0, 1:] = MASK
    return c


def raw(model, canvas):
    import torch

    with torch.no_grad():
        return model(torch.as_tensor(canvas)).logits.numpy()


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def expected(model, canvas, convention, temperature=1.0):
    z = raw(model, canvas)
    if convention == "dream":
        z = np.concatenate([z[:, :1], z[:, :-1]], axis=1)
    z = z / temperature
    z[..., MASK] = -np.inf
    return log_softmax(z)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_layout_of_each_convention(bert, convention):
    c = canvases()
    lp = DiffusionAdapter(bert, MASK, convention=convention, temperature=0.7).logprobs(c)
    exp = expected(bert, c, convention, 0.7)
    masked = c == MASK
    np.testing.assert_allclose(lp[masked], exp[masked], atol=1e-12)
    assert np.all(lp[..., MASK] == -np.inf)
    # committed positions are carried over: one-hot on their token
    rows, cols = np.nonzero(~masked)
    assert np.all(lp[rows, cols, c[rows, cols]] == 0.0)
    assert np.all(np.exp(lp[rows, cols]).sum(axis=-1) == 1.0)


def test_dream_predicts_from_the_previous_position(bert):
    c = canvases()
    z = raw(bert, c)
    lp = DiffusionAdapter(bert, MASK, convention="dream").logprobs(c)
    z[..., MASK] = -np.inf
    r, i = np.nonzero(c[:, 1:] == MASK)
    np.testing.assert_allclose(lp[r, i + 1], log_softmax(z[r, i]), atol=1e-12)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_batched_equals_unbatched(bert, convention):
    c = canvases()
    ad = DiffusionAdapter(bert, MASK, convention=convention)
    whole = ad.logprobs(c)
    one_by_one = np.concatenate([ad.logprobs(c[i:i + 1]) for i in range(len(c))])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-12)
    chunked = DiffusionAdapter(bert, MASK, convention=convention, max_batch=3).logprobs(c)
    np.testing.assert_allclose(whole, chunked, atol=1e-12)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_window_equals_slice_of_the_whole(bert, convention):
    c = canvases()
    ad = DiffusionAdapter(bert, MASK, convention=convention)
    whole = ad.logprobs(c)
    for lo, hi in ((0, 3), (2, 5), (4, 7)):
        np.testing.assert_array_equal(ad.logprobs(c, lo, hi), whole[:, lo:hi])
    with pytest.raises(ValueError, match="window"):
        ad.logprobs(c, 5, 9)


def test_plain_callable_returning_numpy():
    def model(ids):
        ids = np.asarray(ids)
        return np.tile(np.arange(MASK + 1, dtype=np.float64), ids.shape + (1,))

    lp = DiffusionAdapter(model, MASK).logprobs(np.full((2, 3), MASK))
    z = np.arange(MASK, dtype=np.float64)
    np.testing.assert_allclose(lp[0, 0, :MASK], z - np.log(np.exp(z).sum()))


def test_wrong_logits_shape_is_a_clear_error():
    ad = DiffusionAdapter(lambda ids: np.zeros((1, 9)), MASK)
    with pytest.raises(ValueError, match="expected \\(batch, length, vocab\\)"):
        ad.logprobs(np.full((1, 3), MASK))


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("method", ["dingo", "sample", "smc"])
def test_constrained_generation_on_tiny_models(bert, convention, method):
    g = constrain.Compiler(VOCAB).compile_regex("(ab|ba)+c?")
    ad = DiffusionAdapter(bert, MASK, convention=convention)
    res = generate(ad, [7], g, gen_length=6, steps=4, block_length=3, method=method,
                   num_samples=4, num_particles=4, seed=1)
    assert res.samples and all(s.valid and s.status == "done" for s in res.samples)
    import re

    for s in res.samples:
        assert re.fullmatch(rb"(ab|ba)+c?", s.text(VOCAB))


def test_unconstrained_random_model_is_often_invalid(bert):
    """The constraint matters: the same model without it rarely lands in the language."""
    g = constrain.Compiler(VOCAB).compile_regex("(ab|ba)+c?")
    res = generate(DiffusionAdapter(bert, MASK), [7], g, gen_length=6, steps=6, method="unconstrained",
                   num_samples=64, seed=2)
    assert sum(s.valid for s in res.samples) < 32


def test_real_tokenizer_json_schema_with_top_k():
    """A 49k-token vocabulary (SmolLM2) and a JSON Schema: DINGO and SMC with top-k candidates on
    a random model of that width produce valid JSON."""
    import json

    from tests.tokenizers import load_tokenizer

    tok = load_tokenizer("smollm2")
    comp = constrain.Compiler(tok)
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}},
              "required": ["n"], "additionalProperties": False}
    g = comp.compile_json_schema(schema)
    width = comp.vocab.size + 1
    model = tiny_bert(vocab_size=width, seed=3, hidden=8)
    ad = DiffusionAdapter(model, width - 1)
    for method in ("dingo", "smc"):
        res = generate(ad, [], g, gen_length=10, steps=4, block_length=5, method=method, top_k=16,
                       num_particles=2, seed=0)
        for s in res.samples:
            assert s.valid, s.tokens
            assert json.loads(s.text(comp.vocab))["n"] in range(100)
