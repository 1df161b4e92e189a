"""The generation loop's building blocks: warping order, KV-cache batches (extend, fork, crop),
the constraint-check interface."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import constrain
from constrain.sampling import AllOf, GrammarConstraint, PredicateConstraint, TableLM, Unconstrained, \
    Warper, as_constraint
from constrain.sampling.toys import TOY_BOS, TOY_EOS, tiny_transformer, toy_vocabulary


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- warping
@pytest.mark.parametrize("temperature,top_k,top_p", [
    (1.0, None, None), (0.7, None, None), (1.3, 5, None), (1.0, None, 0.8), (0.5, 7, 0.9),
    (2.0, 3, 0.5), (1.0, 1, None), (0.9, None, 0.05),
])
def test_warper_matches_transformers_order(temperature, top_k, top_p):
    """temperature → top-k → top-p, as transformers' generate() applies its warpers."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 40)) * 3
    procs = LogitsProcessorList()
    if temperature != 1.0:
        procs.append(TemperatureLogitsWarper(temperature))
    if top_k:
        procs.append(TopKLogitsWarper(top_k))
    if top_p:
        procs.append(TopPLogitsWarper(top_p))
    x = torch.tensor(logits, dtype=torch.float64)
    ref = torch.log_softmax(procs(torch.zeros(3, 1, dtype=torch.long), x.clone()), dim=-1).numpy()
    got = Warper(temperature, top_k, top_p)(logits)
    assert np.array_equal(np.isinf(ref), np.isinf(got))
    fin = np.isfinite(ref)
    assert np.allclose(ref[fin], got[fin], atol=1e-12)


def test_warper_validation_and_identity():
    assert Warper().is_identity
    with pytest.raises(ValueError):
        Warper(0.0)
    with pytest.raises(ValueError):
        Warper(1.0, top_p=0.0)
    with pytest.raises(ValueError):
        Warper(1.0, top_k=-1)
    lp = Warper()(np.array([[0.0, -np.inf, 1.0]]))
    assert lp[0, 1] == -np.inf and math.isclose(np.exp(lp).sum(), 1.0)


# ----------------------------------------------------------------------------- batches
def _full_logprobs(lm, prompt, seq):
    ids = torch.tensor([list(prompt) + list(seq)])
    with torch.no_grad():
        lg = lm.model(ids).logits[0, -1].to(torch.float64)
    return torch.log_softmax(lg, -1).numpy()


def test_hf_batch_extend_select_crop_match_full_forward():
    lm = tiny_transformer(seed=3)
    prompt = [TOY_BOS]
    b = lm.batch(prompt, 3)
    b.extend([0, 1, 2])
    b.extend([[3, 4], [4, 4], [0, 0]])  # two tokens per row in one forward pass
    rows = [[0, 3, 4], [1, 4, 4], [2, 0, 0]]
    lp = b.logprobs()
    for r, seq in enumerate(rows):
        assert np.allclose(lp[r], _full_logprobs(lm, prompt, seq), atol=1e-12)
    b.select([2, 2, 0])  # fork row 2, drop row 1
    assert b.tokens.tolist() == [rows[2], rows[2], rows[0]]
    b.extend([1, 5, 3])
    new = [rows[2] + [1], rows[2] + [5], rows[0] + [3]]
    lp = b.logprobs()
    for r, seq in enumerate(new):
        assert np.allclose(lp[r], _full_logprobs(lm, prompt, seq), atol=1e-12)
    b.crop(2)
    lp = b.logprobs()
    for r, seq in enumerate(new):
        assert np.allclose(lp[r], _full_logprobs(lm, prompt, seq[:2]), atol=1e-12)
    b.crop(0)
    assert np.allclose(b.logprobs()[0], _full_logprobs(lm, prompt, []), atol=1e-12)
    b.extend([0, 0, 0])
    assert np.allclose(b.logprobs()[1], _full_logprobs(lm, prompt, [0]), atol=1e-12)
    # queued tokens dropped by a crop are never fed
    b.extend([1, 1, 1])
    b.crop(1)
    assert np.allclose(b.logprobs()[2], _full_logprobs(lm, prompt, [0]), atol=1e-12)


def test_hf_prompt_prefill_is_memoized():
    lm = tiny_transformer(seed=4)
    lm.batch([TOY_BOS], 1).logprobs()
    calls = lm.forward_calls
    b = lm.batch([TOY_BOS], 4)
    b.logprobs()
    assert lm.forward_calls == calls
    b.extend([0, 1, 2, 3])
    b.logprobs()
    assert lm.forward_calls == calls + 1


def test_table_lm_batches_and_dict_rows():
    lm = TableLM({(): {0: 0.5, 2: 0.5}, (0,): [0.1, 0.2, 0.7]}, 3)
    b = lm.batch([], 2)
    assert np.allclose(np.exp(b.logprobs()[0]), [0.5, 0, 0.5])
    b.extend([0, 0])
    assert np.allclose(np.exp(b.logprobs()[1]), [0.1, 0.2, 0.7])
    b.extend([1, 1])
    with pytest.raises(KeyError):
        b.logprobs()


# ----------------------------------------------------------------------------- constraints
def test_grammar_constraint_mask_agrees_with_single_checks():
    V = toy_vocabulary()
    g = constrain.Compiler(V).compile_regex("(ab|ba)+c?")
    c = as_constraint(g)
    assert isinstance(c, GrammarConstraint)
    for seq in ([], [0], [2], [2, 3], [2, 4]):
        s = c.copy()
        for t in seq:
            assert s.accept_token(t)
        m = s.allowed_mask()
        assert m.tolist() == [s.is_token_allowed(t) for t in range(V.size)]
    assert not c.is_terminated() and c.matcher.num_accepted() == 0  # copies never advance it


def test_predicate_and_allof_constraints():
    V = toy_vocabulary()
    no_double = PredicateConstraint(lambda text, final: b"aa" not in text and (not final or len(text) >= 2),
                                    V, name="no-aa")
    assert no_double.is_token_allowed(0)
    assert not no_double.is_token_allowed(TOY_EOS)  # too short to end
    assert not no_double.is_token_allowed(TOY_BOS)  # special: no bytes
    s = no_double.copy()
    assert s.accept_token(0)
    assert not s.is_token_allowed(0) and not s.is_token_allowed(2) and s.is_token_allowed(1)
    assert s.accept_token(1) and s.is_token_allowed(TOY_EOS)
    assert s.accept_token(TOY_EOS) and s.is_terminated() and not s.is_token_allowed(0)
    g = constrain.Compiler(V).compile_regex("[abc]{1,4}")
    both = AllOf(g, no_double)
    m = both.allowed_mask()
    assert m.tolist() == [both.is_token_allowed(t) for t in range(V.size)]
    b2 = both.copy()
    assert b2.accept_token(5)  # "ca"
    assert not b2.is_token_allowed(0) and b2.is_token_allowed(1)
    assert both.parts[1].text == b""  # the original is untouched
    u = Unconstrained(V)
    assert u.allowed_mask().tolist() == [True] * 7 + [False]


def test_as_constraint_rejects_other_objects():
    with pytest.raises(TypeError):
        as_constraint(object())
