"""The diffusion sampling loop against exact answers, with an oracle denoiser (the exact
conditionals of a known joint distribution over canvases of 4 tokens from {a, b, ab, EOS}).

- One token per step, any order rule: the unconstrained sampler's output distribution, enumerated
  exactly, *is* the joint (to 1e-12); its samples pass a chi-square test against it.
- The unweighted constrained sampler (``"sample"``) matches its own enumerated distribution
  (chi-square), and that distribution is far from the target ``Q = joint | L``: its KL to Q is
  printed and must exceed 0.1.
- SMC with the exact step normalizers as weights targets Q: its ``Z`` estimate and its
  unnormalized weight of each of the five likeliest outputs are unbiased (|t| < 4 over 150 runs
  of 16 particles), and its pooled output is much closer to Q than the unweighted sampler's.
- With two tokens per step SMC targets the (factorized) sampler conditioned on L: its ``Z``
  estimate agrees with the unconstrained sampler's acceptance rate (two-sample z < 4).

Statistical bounds: chi-square statistic below the Wilson-Hilferty quantile at z = 4 (tail about
3e-5); t statistics within ±4; fixed seeds throughout.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

import constrain
from constrain.diffusion import DiffusionAdapter, REMASKING, as_token_dfa, generate
from constrain.diffusion.exact import conditioned_joint, kl, sampler_distribution
from constrain.diffusion.toys import OracleDenoiser, random_joint
from constrain.sampling.toys import toy_vocabulary

from .sampling_stats import chi2_upper, chi_square, t_statistic

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB = toy_vocabulary((b"a", b"b", b"ab"), bos=False)  # ids 0..2, EOS 3; mask id 4
GRAMMAR = constrain.Compiler(VOCAB).compile_regex("(ab|b)+a?")
N = 4


@pytest.fixture(scope="module")
def oracle():
    joint = random_joint(VOCAB.size, N, np.random.default_rng(3), alpha=0.5)
    orc = OracleDenoiser(joint)
    return joint, DiffusionAdapter(orc, orc.mask_id)


def _joint_dict(joint):
    return {x: float(joint[x]) for x in np.ndindex(joint.shape)}


@pytest.mark.parametrize("rule", REMASKING)
def test_unconstrained_one_token_per_step_is_the_joint_exactly(oracle, rule):
    joint, ad = oracle
    dist = sampler_distribution(ad, [], N, remasking=rule)
    err = max(abs(dist.get(x, 0.0) - p) for x, p in _joint_dict(joint).items())
    assert err < 1e-12


@pytest.mark.parametrize("rule", ["low_confidence", "random"])
def test_unconstrained_samples_pass_chi_square(oracle, rule):
    joint, ad = oracle
    n = 20000
    res = generate(ad, [], None, gen_length=N, method="unconstrained", remasking=rule,
                   num_samples=n, seed=7)
    counts = Counter(tuple(s.tokens) for s in res.samples)
    stat, df = chi_square(counts, _joint_dict(joint), n)
    assert stat < chi2_upper(df), (stat, df)


def test_sample_method_matches_its_exact_distribution(oracle):
    _, ad = oracle
    dfa = as_token_dfa(GRAMMAR)
    exact = sampler_distribution(ad, [], N, dfa=dfa)
    n = 3000
    res = generate(ad, [], GRAMMAR, gen_length=N, method="sample", num_samples=n, seed=8)
    assert all(s.valid for s in res.samples)
    counts = Counter(tuple(s.tokens) for s in res.samples)
    stat, df = chi_square(counts, exact, n)
    assert stat < chi2_upper(df), (stat, df)


def test_smc_targets_the_conditioned_joint_and_unweighted_sampling_does_not(oracle):
    joint, ad = oracle
    dfa = as_token_dfa(GRAMMAR)
    q, z = conditioned_joint(joint, dfa)
    kl_sample = kl(sampler_distribution(ad, [], N, dfa=dfa), q)

    runs, particles = 150, 16
    top = sorted(q, key=q.get, reverse=True)[:5]
    z_hat, mass = [], {x: [] for x in top}
    pooled: Counter = Counter()
    for seed in range(runs):
        res = generate(ad, [], GRAMMAR, gen_length=N, method="smc", num_particles=particles, seed=seed)
        assert all(s.valid for s in res.samples)
        w = np.exp([s.log_weight for s in res.samples])
        z_hat.append(w.mean())
        for x in top:
            mass[x].append(sum(wi for wi, s in zip(w, res.samples) if tuple(s.tokens) == x) / particles)
        for s, wi in zip(res.samples, w):
            pooled[tuple(s.tokens)] += wi
    assert abs(t_statistic(z_hat, z)) < 4, (np.mean(z_hat), z)
    for x in top:
        assert abs(t_statistic(mass[x], z * q[x])) < 4, (x, np.mean(mass[x]), z * q[x])
    total = sum(pooled.values())
    kl_smc = kl({x: v / total for x, v in pooled.items()}, q)
    print(f"\nKL(unweighted constrained sampling || Q) = {kl_sample:.4f}   "
          f"KL(SMC, {runs}x{particles} particles pooled || Q) = {kl_smc:.4f}")
    assert kl_sample > 0.1
    assert kl_smc < kl_sample / 5, (kl_smc, kl_sample)


def test_smc_with_two_tokens_per_step_estimates_the_samplers_acceptance(oracle):
    _, ad = oracle
    n = 20000
    plain = generate(ad, [], GRAMMAR, gen_length=N, steps=2, method="unconstrained", num_samples=n, seed=9)
    acc = np.array([s.valid for s in plain.samples], dtype=float)
    z_hat = [math.exp(generate(ad, [], GRAMMAR, gen_length=N, steps=2, method="smc", num_particles=8,
                               seed=100 + s).log_z) for s in range(150)]
    se = math.sqrt(acc.var(ddof=1) / n + np.var(z_hat, ddof=1) / len(z_hat))
    assert abs(acc.mean() - np.mean(z_hat)) / se < 4, (acc.mean(), np.mean(z_hat))
