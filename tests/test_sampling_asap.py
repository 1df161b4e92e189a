"""ASAp: θ never rises and never drops below the exact c(u); once the trie is fully explored its
sampling distribution is exactly Q; the trie persists, saves and loads."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

import constrain
from constrain.sampling import ASAp, PredicateConstraint, TableLM, enumerate_exact, generate_ids
from constrain.sampling.toys import TOY_BOS, TOY_EOS, random_table_lm, tiny_transformer, toy_vocabulary

from .sampling_stats import chi2_upper, chi_square


# Tiny models run ~1000x faster on one thread than with contended intra-op threads.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


V = toy_vocabulary()
COMP = constrain.Compiler(V)
W = V.size
TOL = 1e-9


def _models():
    return [("table", random_table_lm(W, seed=21), []),
            ("transformer", tiny_transformer(seed=2), [TOY_BOS])]


def _check_bounds(asap, ex, before):
    """θ(u) ≥ c(u) for every node, and no θ rose since ``before``; returns the new snapshot."""
    snap = {}
    for prefix, node in asap.nodes():
        lt = node.log_theta
        snap[prefix] = lt
        if prefix and prefix[-1] == TOY_EOS:
            assert lt == 0.0  # complete output: θ = c = 1
            continue
        c = ex.log_c.get(prefix, -math.inf)
        if node.expanded:
            assert lt >= c - TOL * max(1.0, abs(c)) or (c == -math.inf), (prefix, lt, c)
        if prefix in before:
            assert lt <= before[prefix] + 1e-12, (prefix, lt, before[prefix])
    return snap


@pytest.mark.parametrize("which", [0, 1])
def test_theta_is_monotone_upper_bound_and_exhaustion_gives_q(which):
    name, lm, prompt = _models()[which]
    T = 6 if name == "transformer" else 5  # lengths up to 6 (EOS included)
    g = COMP.compile_regex("(ab|ba|a)+c?")
    ex = enumerate_exact(lm, prompt, g, max_new_tokens=T)
    asap = ASAp()
    snap: dict = {}
    rng = np.random.default_rng(7)
    for i in range(200):
        asap.run(lm, prompt, g, max_new_tokens=T, rng=rng)
        snap = _check_bounds(asap, ex, snap)
        if asap.is_exhausted():
            break
    # finish the exploration deterministically, checking the bounds after every update
    assert ex.dead_ends()  # the walk must also visit the prefixes that cannot finish
    for w in ex.leaves():
        asap.observe(lm, prompt, g, w, max_new_tokens=T)
        snap = _check_bounds(asap, ex, snap)
    assert asap.is_exhausted()
    for prefix, node in asap.nodes():
        if prefix and prefix[-1] == TOY_EOS:
            continue
        c = ex.log_c[prefix]
        if c > -math.inf:
            assert abs(node.log_theta - c) < TOL, (prefix, node.log_theta, c)
        else:
            assert node.log_theta == -math.inf
    assert abs(asap.log_theta(()) - ex.log_z) < TOL
    # the sampling distribution is exactly Q
    q = ex.log_q()
    total = 0.0
    for w, lq in q.items():
        ls = asap.log_sampling_prob(lm, prompt, g, w, max_new_tokens=T)
        assert abs(ls - lq) < TOL, (w, ls, lq)
        total += math.exp(ls)
    assert abs(total - 1.0) < TOL
    # and samples now follow Q (chi-square), with importance weights all equal to Z_L
    res = asap.run(lm, prompt, g, max_new_tokens=T, num_samples=600, rng=3)
    assert all(s.complete for s in res.samples)
    for s in res.samples:
        assert abs(s.log_proposal - q[tuple(s.tokens)]) < TOL
        assert abs(s.log_weight - ex.log_z) < TOL
    counts = Counter(tuple(s.tokens) for s in res.samples)
    stat, df = chi_square(counts, {w: math.exp(v) for w, v in q.items()}, 600)
    assert stat < chi2_upper(df), (stat, df)


def test_first_sample_is_distributed_like_masking():
    lm = random_table_lm(W, seed=22)
    g = COMP.compile_regex("(ab|ba|a|b)+")
    T = 4
    ex = enumerate_exact(lm, [], g, max_new_tokens=T)
    q_gcd = ex.log_q_gcd()
    fresh = ASAp()
    for w, lq in q_gcd.items():
        assert abs(fresh.log_sampling_prob(lm, [], g, w, max_new_tokens=T) - lq) < TOL


def test_sampling_probability_is_a_distribution_at_every_stage():
    lm = random_table_lm(W, seed=23)
    g = COMP.compile_regex("(ab|ba|a)+c?")
    T = 5
    ex = enumerate_exact(lm, [], g, max_new_tokens=T)
    asap = ASAp()
    rng = np.random.default_rng(0)
    for k in range(6):
        probs = [math.exp(asap.log_sampling_prob(lm, [], g, w, max_new_tokens=T)) for w in ex.leaves()]
        assert abs(sum(probs) - 1.0) < TOL  # complete outputs and dead ends
        asap.run(lm, [], g, max_new_tokens=T, num_samples=3, rng=rng)


def test_dead_ends_get_theta_zero_and_are_avoided():
    # "a" then anything but "b" is a dead end for the grammar "ab"; masking keeps hitting it
    table = {(): [0.6, 0.0, 0.4, 0, 0, 0, 0, 0], (0,): [0.0, 0.5, 0.0, 0, 0, 0.5, 0, 0]}
    lm = TableLM(table, W, default=[0, 0, 0, 0, 0, 0, 1.0, 0])
    g = COMP.compile_regex("(ab|abb)")
    T = 4
    ex = enumerate_exact(lm, [], g, max_new_tokens=T)
    asap = ASAp()
    res = asap.run(lm, [], g, max_new_tokens=T, num_samples=30, rng=1)
    assert asap.is_exhausted()
    assert abs(asap.log_theta(()) - ex.log_z) < TOL
    # after exhaustion nothing dies any more
    res = asap.run(lm, [], g, max_new_tokens=T, num_samples=50, rng=2)
    assert all(s.complete for s in res.samples)


def test_nothing_allowed_does_not_loop():
    lm = random_table_lm(W, seed=24)
    asap = ASAp()
    res = asap.run(lm, [], COMP.compile_regex("zz"), max_new_tokens=10, num_samples=5, rng=0)
    assert all(s.status == "dead" and s.log_weight == -math.inf for s in res.samples)
    assert asap.theta(()) == 0.0 and asap.is_exhausted()


def test_budget_counts_as_part_of_the_constraint():
    lm = random_table_lm(W, seed=25)
    g = COMP.compile_regex("c+")
    T = 3  # at most "cc" + EOS
    ex = enumerate_exact(lm, [], g, max_new_tokens=T)
    assert set(ex.log_p) == {(4, TOY_EOS), (4, 4, TOY_EOS)}
    asap = ASAp()
    res = asap.run(lm, [], g, max_new_tokens=T, num_samples=40, rng=0)
    assert all(s.complete and len(s.tokens) <= T for s in res.samples)
    assert asap.is_exhausted() and abs(asap.log_theta(()) - ex.log_z) < TOL


def test_tiny_probabilities_in_log_space():
    """θ values around e^-1500 stay exact: the bounds are kept as logs, never as 1 - x."""
    rows = {}
    for prefix in [(), (0,), (2,)]:
        v = np.full(W, -np.inf)
        v[5] = 0.0
        if prefix == ():
            v[0], v[2] = -700.0, -800.0
        elif prefix == (0,):
            v[1] = -750.0
        else:
            v[TOY_EOS] = -600.0
        rows[prefix] = v
    v = np.full(W, -np.inf)
    v[TOY_EOS] = 0.0
    rows[(0, 1)] = v
    lm = TableLM(rows, W, log=True)
    g = COMP.compile_regex("ab")
    ex = enumerate_exact(lm, [], g, max_new_tokens=4)
    assert ex.log_z == pytest.approx(np.logaddexp(-1450.0, -1400.0), abs=1e-9)
    asap = ASAp()
    asap.run(lm, [], g, max_new_tokens=4, num_samples=60, rng=0)
    assert asap.is_exhausted()
    assert asap.log_theta(()) == pytest.approx(ex.log_z, abs=1e-9)
    q = ex.log_q()
    for w, lq in q.items():
        assert asap.log_sampling_prob(lm, [], g, w, max_new_tokens=4) == pytest.approx(lq, abs=1e-9)


def test_save_load_roundtrip_and_context_checks(tmp_path):
    lm = random_table_lm(W, seed=26)
    g = COMP.compile_regex("(ab|ba|a)+c?")
    asap = ASAp()
    asap.run(lm, [], g, max_new_tokens=5, num_samples=25, rng=0)
    path = tmp_path / "trie.npz"
    asap.save(path)
    back = ASAp.load(path)
    a = {p: (n.log_theta, n.log_rest, n.expanded, n.terminal) for p, n in asap.nodes()}
    b = {p: (n.log_theta, n.log_rest, n.expanded, n.terminal) for p, n in back.nodes()}
    assert a == b and back.num_samples == asap.num_samples and back.context == asap.context
    # the loaded trie continues exactly like the original
    r1 = asap.run(lm, [], g, max_new_tokens=5, num_samples=10, rng=9)
    r2 = back.run(lm, [], g, max_new_tokens=5, num_samples=10, rng=9)
    assert [s.tokens for s in r1.samples] == [s.tokens for s in r2.samples]
    # another prompt, constraint, budget or temperature is refused
    with pytest.raises(ValueError, match="prompt"):
        asap.run(lm, [1], g, max_new_tokens=5)
    with pytest.raises(ValueError, match="constraint"):
        asap.run(lm, [], COMP.compile_regex("ab"), max_new_tokens=5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        asap.run(lm, [], g, max_new_tokens=6)
    from constrain.sampling import Warper

    with pytest.raises(ValueError, match="warper"):
        asap.run(lm.with_warper(Warper(0.5)), [], g, max_new_tokens=5)
    asap.reset()
    asap.run(lm, [1], g, max_new_tokens=5)


def test_a_trie_is_refused_for_a_schema_that_only_shares_a_long_prefix():
    """Grammar sources are truncated labels: the context check must read the whole schema and
    the options, or a trie would be reused for another language."""
    lm = random_table_lm(W, seed=27)
    filler = {f"p{i:03d}": {"type": "string"} for i in range(40)}  # sorted first: 200+ characters
    first = COMP.compile_json_schema({"properties": filler, "zz": 1, "type": "object"})
    other = COMP.compile_json_schema({"properties": filler, "zz": 2, "type": "object"})
    assert first.source == other.source  # the labels alone cannot tell them apart
    asap = ASAp()
    asap.run(lm, [], first, max_new_tokens=3, num_samples=2, rng=0)
    with pytest.raises(ValueError, match="constraint"):
        asap.run(lm, [], other, max_new_tokens=3)
    with pytest.raises(ValueError, match="constraint"):
        asap.run(lm, [], COMP.compile_json_schema({"properties": filler, "zz": 1, "type": "object"},
                                                  whitespace="compact"), max_new_tokens=3)
    asap.run(lm, [], COMP.compile_json_schema({"properties": filler, "zz": 1, "type": "object"}),
             max_new_tokens=3, num_samples=2, rng=1)  # the same schema and options again: accepted


def test_asap_with_a_predicate_constraint_and_through_generate_ids():
    lm = random_table_lm(W, seed=27)
    no_aa = PredicateConstraint(lambda t, final: b"aa" not in t and (not final or len(t) >= 3), V,
                                name="no-aa,len>=3")
    T = 4
    ex = enumerate_exact(lm, [], no_aa, max_new_tokens=T)
    asap = ASAp()
    for _ in range(5):
        res = generate_ids(lm, [], no_aa, sampler=asap, max_new_tokens=T, temperature=1.0,
                           num_samples=20, seed=_)
        for s in res.samples:
            if s.complete:
                text = V.decode_bytes(s.body)
                assert b"aa" not in text and len(text) >= 3
    for w in ex.leaves():
        asap.observe(lm, [], no_aa, w, max_new_tokens=T)
    assert asap.is_exhausted() and abs(asap.log_theta(()) - ex.log_z) < TOL


def test_everything_allowed():
    """Unconstrained: c(u) = P(EOS within the budget | u); ASAp converges to it."""
    from constrain.sampling import Unconstrained

    lm = random_table_lm(W, seed=28, zero=(TOY_BOS,))
    T = 3
    ex = enumerate_exact(lm, [], Unconstrained(V), max_new_tokens=T)
    asap = ASAp()
    res = asap.run(lm, [], Unconstrained(V), max_new_tokens=T, num_samples=300, rng=0)
    assert all(s.complete for s in res.samples)
    for w in ex.leaves():
        asap.observe(lm, [], Unconstrained(V), w, max_new_tokens=T)
    assert asap.is_exhausted() and abs(asap.log_theta(()) - ex.log_z) < TOL
