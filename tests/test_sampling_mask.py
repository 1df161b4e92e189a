"""The ``mask`` sampler samples exactly the closed form Q_GCD, and its Z_loc products are
unbiased for Z_L; exact enumeration on a table LM and a tiny transformer."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

import constrain
from constrain.sampling import MaskSampler, TableLM, Unconstrained, Warper, enumerate_exact, generate_ids
from constrain.sampling.toys import TOY_BOS, TOY_EOS, random_table_lm, tiny_transformer, toy_vocabulary

from .sampling_stats import chi2_upper, chi_square, t_statistic


# Tiny models run ~1000x faster on one thread than with contended intra-op threads.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


V = toy_vocabulary()
COMP = constrain.Compiler(V)
W = V.size


def _closed_form_q_gcd(lm, prompt, grammar, T):
    """Q_GCD by an independent recursion straight from the LM and the matcher."""
    out = {}

    def rec(prefix, m, lp):
        b = lm.batch(prompt, 1)
        if prefix:
            b.extend([list(prefix)])
        logp = b.logprobs()[0]
        step = len(prefix)
        allowed = [t for t in range(W) if m.is_token_allowed(t) and np.isfinite(logp[t])
                   and (step < T - 1 or t == TOY_EOS)]
        if not allowed:
            return
        lz = np.logaddexp.reduce([logp[t] for t in allowed])
        for t in allowed:
            if t == TOY_EOS:
                out[prefix + (t,)] = lp + logp[t] - lz
            else:
                m2 = m.copy()
                m2.accept_token(t)
                rec(prefix + (t,), m2, lp + logp[t] - lz)

    rec((), grammar.matcher(), 0.0)
    return out


@pytest.mark.parametrize("kind", ["table", "transformer"])
def test_mask_distribution_is_closed_form_q_gcd(kind):
    T = 5 if kind == "table" else 6
    g = COMP.compile_regex("(ab|ba|a)+c?")
    if kind == "table":
        lm, prompt = random_table_lm(W, seed=11), []
    else:
        lm, prompt = tiny_transformer(seed=1), [TOY_BOS]
    ex = enumerate_exact(lm, prompt, g, max_new_tokens=T)
    q_gcd = ex.log_q_gcd()
    ref = _closed_form_q_gcd(lm, prompt, g, T)
    assert set(ref) == set(q_gcd)
    for w in ref:
        assert abs(ref[w] - q_gcd[w]) < 1e-9
    assert math.isclose(sum(math.exp(v) for v in q_gcd.values()), 1.0 - ex.mask_dead_mass(), abs_tol=1e-12)
    # and masking is far from Q here (the point of the other samplers)
    q = ex.log_q()
    tv = 0.5 * sum(abs(math.exp(q[w]) - math.exp(q_gcd[w])) for w in q)
    assert tv > 0.05

    n = 3000 if kind == "table" else 1500
    res = MaskSampler().run(lm, prompt, g, max_new_tokens=T, num_samples=n, rng=5)
    for s in res.samples:
        w = tuple(s.tokens)
        if s.complete:
            # the sampler's own proposal probability is the closed form, exactly
            assert abs(s.log_proposal - ref[w]) < 1e-9
            assert abs(s.log_prob - ex.log_p[w]) < 1e-9
            assert abs(s.log_weight - sum(s.log_zloc)) < 1e-12
            assert abs(s.log_weight - (ex.log_p[w] - ref[w])) < 1e-9
    counts = Counter(tuple(s.tokens) for s in res.samples if s.complete)
    dead = sum(1 for s in res.samples if not s.complete)
    probs = {w: math.exp(v) for w, v in ref.items()}
    if ex.mask_dead_mass() > 0:
        probs["dead"] = ex.mask_dead_mass()
        counts["dead"] = dead
    stat, df = chi_square(counts, probs, n)
    assert stat < chi2_upper(df), (stat, df)
    # Π Z_loc is an unbiased estimate of Z_L
    ws = [math.exp(s.log_weight) if s.complete else 0.0 for s in res.samples]
    assert abs(t_statistic(ws, math.exp(ex.log_z))) < 4


def test_mask_reports_log_zloc_per_step():
    lm = random_table_lm(W, seed=2)
    g = COMP.compile_regex("ab(c|a)")
    res = MaskSampler().run(lm, [], g, max_new_tokens=6, num_samples=20, rng=0)
    ex = enumerate_exact(lm, [], g, max_new_tokens=6)
    for s in res.samples:
        assert s.complete and len(s.log_zloc) == len(s.tokens)
        for t, lz in enumerate(s.log_zloc):
            assert abs(lz - ex.log_zloc[tuple(s.tokens[:t])]) < 1e-12


def test_greedy_picks_best_allowed_raw_logit():
    table = {(): [0.05, 0.5, 0.4, 0.0, 0.05, 0.0, 0.0, 0.0], (2,): [0, 0, 0, 0, 0.3, 0.0, 0.7, 0]}
    lm = TableLM(table, W, default=[0, 0, 0, 0, 0, 0, 1.0, 0])
    g = COMP.compile_regex("abc?")
    res = MaskSampler(greedy=True).run(lm, [], g, max_new_tokens=4, rng=0)
    assert res.samples[0].tokens == [2, TOY_EOS] and res.log_z is None
    # the same through generate_ids: "mask" without sampling options is greedy
    res2 = generate_ids(lm, [], g, sampler="mask", max_new_tokens=4)
    assert res2.samples[0].tokens == [2, TOY_EOS]


def test_everything_allowed_weights_are_one_until_the_budget():
    lm = random_table_lm(W, seed=3, zero=(TOY_BOS,))
    res = MaskSampler().run(lm, [], Unconstrained(V), max_new_tokens=4, num_samples=200, rng=1)
    ex = enumerate_exact(lm, [], Unconstrained(V), max_new_tokens=4)
    for s in res.samples:
        assert s.complete
        assert all(lz == pytest.approx(0.0, abs=1e-12) for lz in s.log_zloc[:-1])
        if len(s.tokens) == 4:  # the last slot allows only EOS
            assert s.log_zloc[-1] < 0
    # Z_L = P(EOS within the budget)
    p_eos_by_3 = sum(math.exp(v) for v in ex.log_p.values())
    assert math.isclose(math.exp(ex.log_z), p_eos_by_3, rel_tol=1e-12)


def test_nothing_allowed_gives_weight_zero_without_looping():
    lm = random_table_lm(W, seed=4)
    g = COMP.compile_regex("zzz")  # no toy token can start it
    res = MaskSampler().run(lm, [], g, max_new_tokens=50, num_samples=3, rng=0)
    assert all(s.status == "dead" and s.log_weight == -math.inf and s.tokens == [] for s in res.samples)
    assert res.log_z == -math.inf and res.draw() is None
    g2 = COMP.compile_regex("abz")  # dies after "ab"
    res = MaskSampler().run(lm, [], g2, max_new_tokens=50, num_samples=5, rng=0)
    assert all(s.status == "dead" and s.tokens in ([2], [0, 1]) for s in res.samples)


def test_eos_at_max_length():
    lm = random_table_lm(W, seed=5)
    g = COMP.compile_regex("c{3,8}")
    # 3 tokens + EOS need 4 slots: with 3 the budget kills every sequence ("length")
    res = MaskSampler().run(lm, [], g, max_new_tokens=3, num_samples=5, rng=0)
    assert all(s.status == "length" and s.log_weight == -math.inf for s in res.samples)
    ex = enumerate_exact(lm, [], g, max_new_tokens=4)
    assert set(ex.log_p) == {(4, 4, 4, TOY_EOS)}
    res = MaskSampler().run(lm, [], g, max_new_tokens=4, num_samples=5, rng=0)
    for s in res.samples:
        assert s.tokens == [4, 4, 4, TOY_EOS] and s.complete
        assert abs(s.log_weight - ex.log_z) < 1e-12  # the only string: the weight is Z_L itself


def test_tiny_probabilities_stay_in_log_space():
    # the only allowed continuation has probability e^-900 at each of 3 steps: Z_L = e^-2700
    big = -900.0
    rows = {}
    for prefix in [(), (0,), (0, 1)]:
        v = np.full(W, -np.inf)
        v[5] = 0.0  # "ca" takes all the visible mass
        v[[0, 1, 2][len(prefix)]] = big  # a, then b, then ab
        rows[prefix] = v
    v = np.full(W, -np.inf)
    v[TOY_EOS] = 0.0
    rows[(0, 1, 2)] = v
    lm = TableLM(rows, W, log=True)
    g = COMP.compile_regex("abab")
    ex = enumerate_exact(lm, [], g, max_new_tokens=6)
    # other tokenizations of "abab" have probability 0 here
    assert set(ex.log_p) == {(0, 1, 2, TOY_EOS)}
    assert ex.log_z == pytest.approx(3 * big, abs=1e-9)
    res = MaskSampler().run(lm, [], g, max_new_tokens=6, num_samples=3, rng=0)
    for s in res.samples:
        assert s.tokens == [0, 1, 2, TOY_EOS]
        assert s.log_weight == pytest.approx(3 * big, abs=1e-9)
        assert s.log_proposal == pytest.approx(0.0, abs=1e-12)


def test_temperature_changes_the_target_p():
    lm = random_table_lm(W, seed=6)
    hot = lm.with_warper(Warper(temperature=2.0))
    g = COMP.compile_regex("(a|b)(a|b)")
    ex1 = enumerate_exact(lm, [], g, max_new_tokens=4)
    ex2 = enumerate_exact(hot, [], g, max_new_tokens=4)
    assert set(ex1.log_p) == set(ex2.log_p)
    assert any(abs(ex1.log_p[w] - ex2.log_p[w]) > 1e-3 for w in ex1.log_p)
    for w, lp in ex2.log_p.items():
        ref = 0.0
        for t in range(len(w)):
            x = lm.next_logits(w[:t]) / 2.0
            ref += x[w[t]] - np.logaddexp.reduce(x[np.isfinite(x)])
        assert abs(ref - lp) < 1e-12
