"""AWRS: E[w·1[x=a]] = P(a)·1[a allowed], exactly by enumerating both rounds' visiting orders
(as permutations with their Plackett–Luce probabilities) for vocabularies up to 7, and within
±4 standard errors by Monte Carlo with the real Gumbel orders for large ones."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest

import constrain
from constrain.sampling import AWRS, AllOf, PredicateConstraint, Unconstrained, awrs_step, \
    enumerate_exact, gumbel_order, sample_order
from constrain.sampling.loop import logsumexp
from constrain.sampling.toys import random_table_lm, toy_vocabulary

from .sampling_stats import chi2_upper, chi_square, t_statistic


def _pl_logprob(logp, seq, support):
    """Plackett–Luce log-probability that sampling without replacement from ``support`` starts
    with ``seq`` (denominators re-summed over what remains: no cancellation)."""
    remaining = set(support)
    total = 0.0
    for t in seq:
        total += logp[t] - logsumexp([logp[r] for r in remaining])
        remaining.discard(t)
    return total


def _scripted(orders):
    """An ``order`` function that replays the given visiting orders, one per round."""
    it = iter(orders)

    def order(logp, rng, exclude):
        return list(next(it))

    return order


def _decision_prefixes(candidates, allowed):
    """Every order prefix that decides a round: rejected tokens then the first allowed one (or
    all candidates rejected).  Each stands for all permutations that start with it."""
    out = []

    def rec(prefix, rest):
        if not rest:
            out.append(prefix)
            return
        for t in rest:
            if allowed[t]:
                out.append(prefix + [t])
            else:
                rec(prefix + [t], [r for r in rest if r != t])

    rec([], list(candidates))
    return out


def _exact_expectations(logp, allowed, *, full_permutations: bool):
    """log E[w·1[x=a]] for each a, log P(nothing), by enumeration through the real awrs_step."""
    V = len(logp)
    support = [t for t in range(V) if logp[t] > -math.inf]
    terms: dict = {a: [] for a in range(V)}
    x_terms: dict = {a: [] for a in range(V)}
    none_terms = []
    total_prob = []

    def orders(cands):
        if full_permutations:
            return [list(p) for p in itertools.permutations(cands)]
        return _decision_prefixes(cands, allowed)

    for o1 in orders(support):
        lp1 = _pl_logprob(logp, o1, support)
        first = awrs_step(logp, lambda t: bool(allowed[t]), None, order=_scripted([o1, []]),
                          second_round=False)
        if first.token is None:
            none_terms.append(lp1)
            total_prob.append(lp1)
            st = awrs_step(logp, lambda t: bool(allowed[t]), None, order=_scripted([o1]))
            assert st.token is None and st.log_weight == -math.inf and st.checks1 == len(support)
            continue
        r1 = set(first.rejected1)
        rest = [t for t in support if t not in r1]
        for o2 in orders(rest):
            lp2 = _pl_logprob(logp, o2, rest)
            checked = []
            st = awrs_step(logp, lambda t: (checked.append(t), bool(allowed[t]))[1], None,
                           order=_scripted([o1, o2]))
            assert st.token == first.token and st.rejected1 == first.rejected1
            # x is never checked twice; every rejected token is checked once
            assert st.checks1 == len(st.rejected1) + 1
            assert st.checks2 == len(st.rejected2) + (0 if st.token in o2[: len(st.rejected2) + 1]
                                                      and o2[len(st.rejected2)] == st.token else 1)
            assert len(checked) == len(set(checked)) == st.checks
            terms[st.token].append(lp1 + lp2 + st.log_weight)
            x_terms[st.token].append(lp1 + lp2)
            total_prob.append(lp1 + lp2)
    return ({a: logsumexp(v) for a, v in terms.items()}, {a: logsumexp(v) for a, v in x_terms.items()},
            logsumexp(none_terms), logsumexp(total_prob))


CASES = [
    # (V, seed, allowed pattern)
    (5, 0, [1, 0, 1, 0, 0]),
    (5, 1, [0, 0, 0, 0, 1]),
    (5, 2, [1, 1, 1, 1, 1]),   # everything allowed
    (5, 3, [0, 0, 0, 0, 0]),   # nothing allowed
    (6, 4, [0, 1, 0, 0, 1, 0]),
    (7, 5, [1, 0, 0, 1, 0, 0, 1]),
    (7, 6, [0, 0, 0, 0, 0, 0, 1]),
    (7, 7, [0, 1, 1, 1, 1, 1, 1]),
]


@pytest.mark.parametrize("V,seed,pattern", CASES)
def test_awrs_weight_is_exactly_unbiased_by_enumeration(V, seed, pattern):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(V, 0.7))
    if seed % 2:  # a zero-probability token: never visited
        p[V - 2] = 0.0
        p /= p.sum()
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    allowed = np.array(pattern, dtype=bool)
    full = V <= 5
    e, px, none, total = _exact_expectations(logp, allowed, full_permutations=full)
    assert abs(total) < 1e-12  # the enumerated orders carry probability 1
    z = logsumexp([logp[a] for a in range(V) if allowed[a]])
    for a in range(V):
        target = logp[a] if allowed[a] else -math.inf
        if target == -math.inf:
            assert e[a] == -math.inf and px[a] == -math.inf
        else:
            assert abs(e[a] - target) < 1e-12, (a, e[a], target)
            assert abs(px[a] - (target - z)) < 1e-12  # x is an exact constrained sample
    if z == -math.inf:
        assert abs(none) < 1e-12  # nothing allowed: round 1 always exhausts, weight 0
    else:
        assert none == -math.inf


def test_full_permutations_and_decision_prefixes_agree():
    rng = np.random.default_rng(11)
    logp = np.log(rng.dirichlet(np.ones(5)))
    allowed = np.array([0, 1, 0, 1, 0], dtype=bool)
    a = _exact_expectations(logp, allowed, full_permutations=True)
    b = _exact_expectations(logp, allowed, full_permutations=False)
    for k in range(5):
        assert (a[0][k] == b[0][k] == -math.inf) or abs(a[0][k] - b[0][k]) < 1e-12


def test_exact_with_tiny_probabilities_in_log_space():
    # the allowed tokens carry e^-800 and e^-805: 1 - P(R1) must not cancel to 0
    logp = np.array([-800.0, 0.0, -805.0, math.log(0.5), -1.0, -2.0])
    logp = logp - logsumexp(logp)
    allowed = np.array([1, 0, 1, 0, 0, 0], dtype=bool)
    e, px, none, total = _exact_expectations(logp, allowed, full_permutations=False)
    for a in (0, 2):
        assert abs(e[a] - logp[a]) < 1e-9
    assert e[1] == -math.inf
    # and a single step returns a finite, tiny weight
    st = awrs_step(logp, lambda t: bool(allowed[t]), np.random.default_rng(0))
    assert st.token in (0, 2) and -820 < st.log_weight < -790


@pytest.mark.parametrize("order", [gumbel_order, sample_order])
def test_orders_visit_the_support_once_in_plackett_luce_order(order):
    rng = np.random.default_rng(0)
    logp = np.log(rng.dirichlet(np.ones(300)))
    logp[[3, 7]] = -np.inf
    excl = np.zeros(300, dtype=bool)
    excl[[10, 11, 12]] = True
    seq = list(order(logp, rng, excl))
    assert sorted(seq) == sorted(set(range(300)) - {3, 7, 10, 11, 12})
    # the first three positions follow Plackett–Luce (chi-square over ordered triples); one
    # dominant token makes sample_order rebuild after its first draw
    p = np.array([0.7, 0.12, 0.08, 0.05, 0.03, 0.02])
    logp = np.log(p)
    n = 6000
    counts = Counter(tuple(itertools.islice(order(logp, rng), 3)) for _ in range(n))
    probs = {t: math.exp(_pl_logprob(logp, list(t), range(6))) for t in itertools.permutations(range(6), 3)}
    stat, df = chi_square(counts, probs, n)
    assert stat < chi2_upper(df), (stat, df)


def test_sample_order_reaches_tokens_far_below_the_rest():
    logp = np.array([0.0, -1.0, -900.0, -950.0, -2.0])
    logp -= logsumexp(logp)
    rng = np.random.default_rng(1)
    for _ in range(20):
        seq = list(sample_order(logp, rng))
        assert set(seq[:3]) == {0, 1, 4} and seq[3:] == [2, 3]


@pytest.mark.parametrize("order", [sample_order, gumbel_order])
def test_monte_carlo_large_vocabulary_within_4_sigma(order):
    V = 4000
    rng = np.random.default_rng(1)
    logits = rng.normal(size=V) * 2.5
    logp = logits - logsumexp(logits)
    allowed = rng.random(V) < 0.05
    allowed[np.argsort(-logp)[:20]] = False  # the most likely tokens are all rejected
    n = 4000
    ws = np.zeros(n)
    xs = np.zeros(n, dtype=np.int64)
    checks = 0
    for i in range(n):
        st = awrs_step(logp, lambda t: bool(allowed[t]), rng, order=order)
        ws[i], xs[i] = math.exp(st.log_weight), st.token
        checks += st.checks
    z = math.exp(logsumexp(logp[allowed]))
    assert abs(t_statistic(ws, z)) < 4
    top = np.argsort(-np.where(allowed, logp, -np.inf))[:3]
    for a in top:
        assert abs(t_statistic(ws * (xs == a), math.exp(logp[a]))) < 4
    assert checks / n < 200  # a few dozen checks instead of |V| = 4000


def _toy():
    V = toy_vocabulary()
    return V, constrain.Compiler(V)


def test_awrs_sequences_weights_are_unbiased_and_proposals_are_masking():
    V, comp = _toy()
    lm = random_table_lm(V.size, seed=31)
    g = comp.compile_regex("(ab|ba|a)+c?")
    T = 5
    ex = enumerate_exact(lm, [], g, max_new_tokens=T)
    n = 3000
    res = AWRS().run(lm, [], g, max_new_tokens=T, num_samples=n, rng=4)
    ws = np.array([math.exp(s.log_weight) if s.complete else 0.0 for s in res.samples])
    assert abs(t_statistic(ws, math.exp(ex.log_z))) < 4
    # E[w·1[x = w0]] = P(w0) for the most likely outputs
    for w0 in sorted(ex.log_p, key=ex.log_p.get, reverse=True)[:4]:
        ind = np.array([tuple(s.tokens) == w0 for s in res.samples])
        assert abs(t_statistic(ws * ind, math.exp(ex.log_p[w0]))) < 4
    # the proposal is the masking distribution
    q_gcd = {w: math.exp(v) for w, v in ex.log_q_gcd().items()}
    dead = ex.mask_dead_mass()
    counts = Counter(tuple(s.tokens) if s.complete else "dead" for s in res.samples)
    if dead > 0:
        q_gcd["dead"] = dead
    stat, df = chi_square(counts, q_gcd, n)
    assert stat < chi2_upper(df)
    assert res.stats["checks_per_token"] > 0 and res.log_z is not None


def test_awrs_with_a_predicate_only_constraint_counts_checks():
    V, comp = _toy()
    lm = random_table_lm(V.size, seed=32, zero=(V.size - 1,))  # BOS (no bytes) never comes
    calls = []

    def pred(text, final):
        calls.append(text)
        ok = b"aa" not in text and b"bb" not in text and len(text) <= 6
        return ok and (not final or len(text) >= 2)

    c = PredicateConstraint(pred, V, name="no doubles")
    # a budget that never binds (at most 6 tokens + EOS): every check is a predicate call
    res = AWRS().run(lm, [], c, max_new_tokens=10, num_samples=200, rng=0)
    assert all(s.complete for s in res.samples)
    for s in res.samples:
        if s.complete:
            t = V.decode_bytes(s.body)
            assert b"aa" not in t and b"bb" not in t and len(t) >= 2
    total_checks = sum(s.checks for s in res.samples)
    assert total_checks == len(calls)
    assert res.stats["checks_per_token"] == pytest.approx(total_checks / res.stats["steps"])
    # conjunction with a grammar, exact Z_L
    both = AllOf(comp.compile_regex("[abc]{2,4}"), c)
    ex = enumerate_exact(lm, [], both, max_new_tokens=5)
    res = AWRS().run(lm, [], both, max_new_tokens=5, num_samples=1500, rng=1)
    ws = [math.exp(s.log_weight) if s.complete else 0.0 for s in res.samples]
    assert abs(t_statistic(ws, math.exp(ex.log_z))) < 4


def test_everything_and_nothing_allowed():
    V, comp = _toy()
    lm = random_table_lm(V.size, seed=33, zero=(V.size - 1,))
    res = AWRS().run(lm, [], Unconstrained(V), max_new_tokens=3, num_samples=50, rng=0)
    for s in res.samples:
        assert s.complete
        if len(s.tokens) < 3:
            assert s.log_weight == 0.0  # w = 1/(0+0+1) at every step
    res = AWRS().run(lm, [], comp.compile_regex("zz"), max_new_tokens=100, num_samples=4, rng=0)
    for s in res.samples:
        assert s.status == "dead" and s.log_weight == -math.inf and s.tokens == []
        assert s.checks == 7  # every token of positive probability, once (BOS has p = 0)
