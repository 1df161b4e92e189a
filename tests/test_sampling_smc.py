"""SMC: the estimate of Z_L is unbiased (t-test over repeated runs with fixed seeds), the KL of
its weighted output to the exact Q falls as particles grow, and the edge cases end cleanly."""

from __future__ import annotations

import math

import numpy as np
import pytest

import constrain
from constrain.sampling import SMC, TableLM, Unconstrained, enumerate_exact, generate_ids, kl_divergence
from constrain.sampling.smc import ess, resample
from constrain.sampling.toys import TOY_BOS, TOY_EOS, random_table_lm, tiny_transformer, toy_vocabulary

from .sampling_stats import t_statistic


# Tiny models run ~1000x faster on one thread than with contended intra-op threads.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


V = toy_vocabulary()
COMP = constrain.Compiler(V)
W = V.size
GRAMMAR = "(ab|ba|a)+c?"


def _z_runs(lm, prompt, g, T, smc, runs, seed):
    rng = np.random.default_rng(seed)
    return [math.exp(smc.run(lm, prompt, g, max_new_tokens=T, rng=rng).log_z) for _ in range(runs)]


@pytest.mark.parametrize("proposal,resampling,tau", [
    ("awrs", "systematic", 0.5),
    ("awrs", "multinomial", 1.0),   # resample at every step
    ("mask", "stratified", 0.5),
    ("awrs", "systematic", 0.0),    # never resample: importance sampling
])
def test_log_z_is_unbiased_table(proposal, resampling, tau):
    lm = random_table_lm(W, seed=41)
    g = COMP.compile_regex(GRAMMAR)
    T = 5
    ex = enumerate_exact(lm, [], g, max_new_tokens=T)
    smc = SMC(8, proposal=proposal, resampling=resampling, ess_threshold=tau)
    zs = _z_runs(lm, [], g, T, smc, 250, seed=1)
    assert abs(t_statistic(zs, math.exp(ex.log_z))) < 4, (np.mean(zs), math.exp(ex.log_z))


def test_log_z_is_unbiased_tiny_transformer():
    lm = tiny_transformer(seed=5)
    g = COMP.compile_regex(GRAMMAR)
    T = 6
    ex = enumerate_exact(lm, [TOY_BOS], g, max_new_tokens=T)
    zs = _z_runs(lm, [TOY_BOS], g, T, SMC(8), 80, seed=2)
    assert abs(t_statistic(zs, math.exp(ex.log_z))) < 4, (np.mean(zs), math.exp(ex.log_z))


def _mean_kl(lm, prompt, g, T, n, seeds, log_q):
    kls = []
    for s in seeds:
        res = SMC(n).run(lm, prompt, g, max_new_tokens=T, rng=s)
        post = {k + (TOY_EOS,): v for k, v in res.posterior().items()}
        kls.append(kl_divergence(post, log_q))
    return float(np.mean(kls))


@pytest.mark.parametrize("kind", ["table", "transformer"])
def test_kl_to_q_falls_as_particles_grow(kind):
    if kind == "table":
        lm, prompt = random_table_lm(W, seed=42), []
    else:
        lm, prompt = tiny_transformer(seed=6), [TOY_BOS]
    g = COMP.compile_regex(GRAMMAR)
    T = 5
    ex = enumerate_exact(lm, prompt, g, max_new_tokens=T)
    log_q = ex.log_q()
    seeds = range(12)
    kl4 = _mean_kl(lm, prompt, g, T, 4, seeds, log_q)
    kl64 = _mean_kl(lm, prompt, g, T, 64, seeds, log_q)
    assert kl64 < 0.5 * kl4, (kl4, kl64)
    # and the weighted output beats masking's bias with enough particles
    q_gcd = ex.log_q_gcd()
    kl_mask = kl_divergence({w: math.exp(v) for w, v in q_gcd.items()}, log_q)
    assert kl_mask > 0.05
    assert _mean_kl(lm, prompt, g, T, 256, range(3), log_q) < kl_mask


def test_posterior_draw_and_stats():
    lm = random_table_lm(W, seed=43)
    g = COMP.compile_regex(GRAMMAR)
    res = SMC(16).run(lm, [], g, max_new_tokens=5, rng=0)
    post = res.posterior()
    assert abs(sum(post.values()) - 1.0) < 1e-12
    assert len(res.samples) == 16
    s = res.draw(np.random.default_rng(0))
    assert s.complete and tuple(s.body) in post
    assert len(res.stats["ess"]) >= 1 and res.stats["num_particles"] == 16
    # every complete particle matches the grammar
    for p in res.samples:
        if p.complete:
            m = g.matcher()
            assert m.accept_tokens(p.tokens) and m.is_terminated()
    # generate_ids: num_particles and the sampler name
    res2 = generate_ids(lm, [], g, sampler="smc", num_particles=8, max_new_tokens=5, seed=3)
    assert res2.sampler == "smc" and len(res2.samples) == 8


def test_resampling_helpers():
    rng = np.random.default_rng(0)
    with np.errstate(divide="ignore"):
        lw = np.log(np.array([0.0, 0.5, 0.25, 0.25]))
    for m in ("systematic", "multinomial", "stratified"):
        idx = resample(lw, 4000, rng, m)
        assert 0 not in idx
        frac = np.bincount(idx, minlength=4) / 4000
        assert np.allclose(frac, [0, 0.5, 0.25, 0.25], atol=0.04)
    assert ess(np.zeros(5)) == pytest.approx(5.0)
    assert ess(np.array([0.0, -np.inf, -np.inf])) == pytest.approx(1.0)
    assert ess(np.full(3, -np.inf)) == 0.0
    with pytest.raises(ValueError):
        SMC(4, proposal="beam")


def test_nothing_allowed_everything_allowed_and_eos_at_max_length():
    lm = random_table_lm(W, seed=44, zero=(TOY_BOS,))
    res = SMC(8).run(lm, [], COMP.compile_regex("zz"), max_new_tokens=100, rng=0)
    assert res.log_z == -math.inf and all(s.status == "dead" for s in res.samples)
    assert res.posterior() == {} and res.draw() is None
    res = SMC(8).run(lm, [], COMP.compile_regex("c{5}"), max_new_tokens=5, rng=0)
    assert res.log_z == -math.inf and all(s.status == "length" for s in res.samples)
    res = SMC(8).run(lm, [], COMP.compile_regex("c{5}"), max_new_tokens=6, rng=0)
    ex = enumerate_exact(lm, [], COMP.compile_regex("c{5}"), max_new_tokens=6)
    assert all(s.tokens == [4] * 5 + [TOY_EOS] for s in res.samples)
    assert res.log_z == pytest.approx(ex.log_z, abs=1e-9) or res.stats["proposal"] == "awrs"
    ex = enumerate_exact(lm, [], Unconstrained(V), max_new_tokens=3)
    zs = _z_runs(lm, [], Unconstrained(V), 3, SMC(4), 200, seed=5)
    assert abs(t_statistic(zs, math.exp(ex.log_z))) < 4


def test_tiny_probabilities_in_log_space():
    rows = {}
    for prefix in [(), (0,)]:
        v = np.full(W, -np.inf)
        v[5] = 0.0
        v[[0, 1][len(prefix)]] = -1000.0
        rows[prefix] = v
    v = np.full(W, -np.inf)
    v[TOY_EOS] = 0.0
    rows[(0, 1)] = v
    lm = TableLM(rows, W, log=True)
    g = COMP.compile_regex("ab")
    ex = enumerate_exact(lm, [], g, max_new_tokens=4)
    assert ex.log_z == pytest.approx(-2000.0, abs=1e-9)
    res = SMC(4, proposal="mask").run(lm, [], g, max_new_tokens=4, rng=0)
    assert res.log_z == pytest.approx(-2000.0, abs=1e-9)
    res = SMC(4, proposal="awrs").run(lm, [], g, max_new_tokens=4, rng=0)
    assert -2000.0 - 10 < res.log_z < -2000.0 + 10  # AWRS weights: e^-1000 / (|R1|+|R2|+1) per step
