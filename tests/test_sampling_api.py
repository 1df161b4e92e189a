"""The samplers' front door (``generate_ids``, ``get_sampler``), the prefix cache, and (slow) the
default model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import constrain
from constrain.sampling import ASAp, AWRS, SMC, CachedLM, MaskSampler, enumerate_exact, generate_ids, \
    get_sampler
from constrain.sampling.toys import TOY_BOS, TOY_EOS, random_table_lm, tiny_transformer, toy_vocabulary


# Tiny models run ~1000x faster on one thread than with contended intra-op threads.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


V = toy_vocabulary()
COMP = constrain.Compiler(V)


def test_get_sampler():
    assert isinstance(get_sampler("mask"), MaskSampler) and not get_sampler("mask").greedy
    assert get_sampler("mask", greedy=True).greedy
    assert isinstance(get_sampler("ASAp"), ASAp)
    assert isinstance(get_sampler("awrs"), AWRS)
    assert get_sampler("smc", num_particles=5).num_particles == 5
    a = ASAp()
    assert get_sampler(a) is a
    with pytest.raises(ValueError, match="unknown sampler"):
        get_sampler("beam")
    with pytest.raises(ValueError):
        get_sampler("smc", greedy=True)
    with pytest.raises(TypeError):
        get_sampler(3)


@pytest.mark.parametrize("sampler", ["mask", "asap", "awrs", "smc"])
def test_generate_ids_on_a_transformers_model(sampler):
    lm = tiny_transformer(seed=8)
    g = COMP.compile_regex("(ab|ba)+c")
    res = generate_ids(lm.model, [TOY_BOS], g, sampler=sampler, max_new_tokens=6, temperature=1.0,
                       num_samples=4, seed=0)
    assert res.sampler == sampler
    out = res.draw(np.random.default_rng(0))
    if out is not None:
        text = V.decode_bytes(out.body)
        assert out.tokens[-1] == TOY_EOS
        m = g.matcher()
        assert m.accept_tokens(out.tokens) and m.is_terminated()
        assert text.endswith(b"c")


def test_generate_ids_greedy_default_and_asap_persistence():
    lm = tiny_transformer(seed=9)
    g = COMP.compile_regex("(a|b|c){1,3}")
    r1 = generate_ids(lm.model, [TOY_BOS], g, max_new_tokens=5)
    r2 = generate_ids(lm.model, [TOY_BOS], g, max_new_tokens=5)
    assert r1.samples[0].tokens == r2.samples[0].tokens and r1.log_z is None  # greedy
    asap = ASAp()
    for seed in range(3):
        generate_ids(lm.model, [TOY_BOS], g, sampler=asap, max_new_tokens=5, temperature=1.0, seed=seed)
    assert asap.num_samples == 3 and asap.theta(()) < 1.0


def test_cached_lm_changes_cost_not_numbers():
    g = COMP.compile_regex("(ab|ba|a)+c?")
    lm = tiny_transformer(seed=10)
    cached = CachedLM(lm)
    ex1 = enumerate_exact(lm, [TOY_BOS], g, max_new_tokens=5)
    ex2 = enumerate_exact(cached, [TOY_BOS], g, max_new_tokens=5)
    assert ex1.log_p.keys() == ex2.log_p.keys()
    assert max(abs(ex1.log_p[w] - ex2.log_p[w]) for w in ex1.log_p) < 1e-12
    calls = lm.forward_calls
    r1 = SMC(8).run(cached, [TOY_BOS], g, max_new_tokens=5, rng=0)
    assert lm.forward_calls == calls  # every prefix was cached by the enumeration
    r2 = SMC(8).run(lm, [TOY_BOS], g, max_new_tokens=5, rng=0)
    assert [s.tokens for s in r1.samples] == [s.tokens for s in r2.samples]
    assert abs(r1.log_z - r2.log_z) < 1e-12
    assert cached.hits > 0 and cached.misses == len(ex1.log_c)
    # table LMs too, with an LRU bound
    t = random_table_lm(V.size, seed=1)
    small = CachedLM(t, max_entries=3)
    a = MaskSampler().run(small, [], g, max_new_tokens=5, num_samples=20, rng=1)
    b = MaskSampler().run(t, [], g, max_new_tokens=5, num_samples=20, rng=1)
    assert [s.tokens for s in a.samples] == [s.tokens for s in b.samples]
    assert len(small._cache) <= 3


@pytest.mark.slow
def test_default_model_all_samplers_json():
    from constrain.api import compiler_for
    from constrain.models import load_default_model

    model, tok = load_default_model(device="cpu")
    comp = compiler_for(tok, model=model)
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    g = comp.compile_json_schema(schema, whitespace="compact")
    msgs = [{"role": "user", "content": "Is water wet? Answer in JSON."}]
    prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    for sampler in ["mask", "awrs", "smc", "asap"]:
        # masking at temperature 1 sometimes writes the key with \\u escapes (valid JSON, and a
        # fine example of its bias): leave room for that
        res = generate_ids(model, ids, g, sampler=sampler, max_new_tokens=40, temperature=1.0,
                           num_particles=4, seed=0)
        out = res.draw(np.random.default_rng(0))
        assert out is not None, sampler
        value = json.loads(comp.vocab.decode_bytes(out.body))
        assert isinstance(value["ok"], bool)
        if sampler in ("awrs", "smc"):
            # a handful of checks at most steps; a few steps where the model's mass sits on
            # rejected tokens cost thousands (the mean is reported by the benchmark)
            assert res.stats["checks_median"] < 50 and res.stats["checks_per_token"] < comp.vocab.size / 4
        assert math.isfinite(res.log_z)


def _api_has_sampler() -> bool:
    import inspect

    from constrain import api

    return "sampler" in inspect.signature(api.generate).parameters


@pytest.mark.slow
@pytest.mark.skipif(not _api_has_sampler(), reason="constrain.api has no sampler= yet")
def test_api_generate_with_samplers():
    from constrain import api
    from constrain.errors import GenerationError

    greedy_hf = api.generate("Capital of France?", regex="(Paris|Lyon|Nice)")
    assert api.generate("Capital of France?", regex="(Paris|Lyon|Nice)", sampler="mask") == greedy_hf
    for sampler in ("awrs", "smc", ASAp()):
        out = api.generate("Capital of France?", regex="(Paris|Lyon|Nice)", sampler=sampler, seed=0,
                           num_particles=4) if sampler == "smc" else \
            api.generate("Capital of France?", regex="(Paris|Lyon|Nice)", sampler=sampler, seed=0)
        assert out in ("Paris", "Lyon", "Nice")
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
              "additionalProperties": False}
    assert isinstance(api.generate_json(schema, "Is water wet?", sampler="smc", seed=1,
                                        num_particles=4)["ok"], bool)
    with pytest.raises(ValueError):
        api.generate("x", regex="(a|b)", sampler="smc", do_sample=False)
    with pytest.raises(ValueError):
        api.generate("x", regex="(a|b)", sampler="mask", num_beams=2)
    with pytest.raises(GenerationError) as e:
        api.generate("x", regex="[a-z]{30}", sampler="mask", max_new_tokens=3)
    assert e.value.reason == "incomplete"
