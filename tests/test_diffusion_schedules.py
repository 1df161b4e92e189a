"""Schedules (tokens per step, semi-autoregressive blocks), remasking rules, and the argument
checks of ``constrain.diffusion.generate``."""

from __future__ import annotations

import numpy as np
import pytest

import constrain
from constrain.diffusion import DiffusionAdapter, generate, plan
from constrain.diffusion.schedules import select_positions, transfer_counts
from constrain.diffusion.toys import OracleDenoiser, random_joint
from constrain.sampling.toys import toy_vocabulary


def test_transfer_counts_and_plan():
    assert transfer_counts(10, 4) == [3, 3, 2, 2]
    assert transfer_counts(3, 5) == [1, 1, 1, 0, 0]
    assert [tuple(s) for s in plan(6, 4, 3)] == [(0, 3, 2), (0, 3, 1), (3, 6, 2), (3, 6, 1)]
    assert [tuple(s) for s in plan(2, 4)] == [(0, 2, 1), (0, 2, 1)]  # empty steps dropped
    with pytest.raises(ValueError, match="must divide"):
        plan(6, 4, 4)
    with pytest.raises(ValueError, match="multiple of the number of blocks"):
        plan(6, 3, 3)


def _logp(rows):
    with np.errstate(divide="ignore"):
        return np.log(np.array(rows, dtype=np.float64))[None]


def test_rules_pick_the_expected_positions():
    # position 0: peaked; 1: two-way tie (small margin); 2: flat over three (high entropy, low top-1)
    # 3: 0.5/0.5 top-2 but low entropy vs 2
    lp = _logp([[0.9, 0.05, 0.05, 0.0], [0.45, 0.45, 0.1, 0.0], [0.34, 0.33, 0.33, 0.0],
                [0.7, 0.3, 0.0, 0.0]])
    rng = np.random.default_rng(0)
    eligible = np.ones((1, 4), dtype=bool)
    assert select_positions(lp, eligible, 1, "low_confidence", rng).tolist() == [[0]]
    assert select_positions(lp, eligible, 2, "low_confidence", rng).tolist() == [[0, 3]]
    assert select_positions(lp, eligible, 2, "margin", rng).tolist() == [[0, 3]]
    assert select_positions(lp, eligible, 3, "entropy", rng).tolist() == [[0, 1, 3]]
    eligible[0, 0] = False
    assert select_positions(lp, eligible, 1, "low_confidence", rng).tolist() == [[3]]
    picks = {select_positions(lp, np.ones((1, 4), bool), 1, "random", rng)[0, 0] for _ in range(50)}
    assert picks == {0, 1, 2, 3}


def test_positions_stay_in_the_current_block():
    vocab = toy_vocabulary((b"a", b"b"), bos=False)
    orc = OracleDenoiser(random_joint(vocab.size, 4, np.random.default_rng(1)))
    seen = []

    class Spy(DiffusionAdapter):
        def logprobs(self, canvas, lo=0, hi=None):
            seen.append(canvas.copy())
            return super().logprobs(canvas, lo, hi)

    generate(Spy(orc, orc.mask_id), [], None, gen_length=4, steps=4, block_length=2,
             method="unconstrained", num_samples=3, seed=0)
    masked = [(c == orc.mask_id).sum(axis=0).tolist() for c in seen]
    # the second block stays fully masked until the first is done
    assert masked[0] == [3, 3, 3, 3] and masked[1][2:] == [3, 3] and masked[2][:2] == [0, 0]


def test_greedy_unconstrained_takes_the_argmax():
    vocab = toy_vocabulary((b"a", b"b"), bos=False)
    joint = random_joint(vocab.size, 3, np.random.default_rng(2))
    orc = OracleDenoiser(joint)
    res = generate(DiffusionAdapter(orc, orc.mask_id), [], None, gen_length=3, method="unconstrained",
                   greedy=True, seed=0)
    assert res.log_z is None
    x = res.samples[0].tokens
    assert np.isclose(np.exp(res.samples[0].log_prob), joint[tuple(x)])


def test_argument_errors():
    vocab = toy_vocabulary((b"a", b"b"), bos=False)
    g = constrain.Compiler(vocab).compile_regex("a+")
    orc = OracleDenoiser(random_joint(vocab.size, 2, np.random.default_rng(0)))
    ad = DiffusionAdapter(orc, orc.mask_id)
    with pytest.raises(ValueError, match="unknown method"):
        generate(ad, [], g, gen_length=2, method="beam")
    with pytest.raises(ValueError, match="needs a constraint"):
        generate(ad, [], None, gen_length=2, method="dingo")
    with pytest.raises(ValueError, match="greedy applies"):
        generate(ad, [], g, gen_length=2, method="smc", greedy=True)
    with pytest.raises(ValueError, match="unknown remasking"):
        generate(ad, [], g, gen_length=2, remasking="topk")
    with pytest.raises(TypeError, match="Denoiser"):
        generate(orc, [], g, gen_length=2)
    with pytest.raises(ValueError, match="convention"):
        DiffusionAdapter(orc, orc.mask_id, convention="bert")
