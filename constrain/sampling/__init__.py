"""Distribution-aligned sampling: our own generation loop and samplers over any constraint.

Plain masking samples ``Q_GCD(w) = Π_t P(w_t|u_t) / Z_loc(u_t)``, not the model conditioned on
the constraint, ``Q(w) = P(w)·1[w∈L] / Z_L``.  The samplers here fix that:

=========  ==================================================================================
``mask``   :class:`MaskSampler`: plain masked sampling (or greedy); reports ``log Z_loc`` per step
``asap``   :class:`ASAp`: persistent trie of upper bounds on the expected future grammaticality
``awrs``   :class:`AWRS`: adaptive weighted rejection sampling (few checks, unbiased weights)
``smc``    :class:`SMC`: sequential Monte Carlo with AWRS (or full-mask) proposals
=========  ==================================================================================

**The P we align to** is the model's *warped* next-token distribution: raw logits →
temperature → top-k → top-p → log-softmax (:class:`Warper`; the order of Hugging Face's
``generate()``).  The constraint is applied after warping.  See :mod:`constrain.sampling.lm`.

The budget is part of the constraint: ``max_new_tokens`` counts the EOS token, and a sequence
that cannot end within it has weight 0 (see :mod:`constrain.sampling.loop`).

Building blocks: :class:`HFLanguageModel` (a transformers causal LM with a KV cache, batched;
forking and cropping of sequences), :class:`TableLM` (exact tests), the constraint interface of
:mod:`constrain.sampling.constraints` (grammars, Python predicates, conjunctions), and
:func:`enumerate_exact` (exact Q, Q_GCD, c(u), Z_L for small languages).

>>> from constrain.sampling import generate_ids                              # doctest: +SKIP
>>> res = generate_ids(model, prompt_ids, grammar, sampler="smc", max_new_tokens=32, seed=0)
>>> res.draw().tokens, res.log_z                                             # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

from .asap import ASAp
from .awrs import AWRS, awrs_step, gumbel_order, sample_order
from .constraints import AllOf, Constraint, GrammarConstraint, PredicateConstraint, Unconstrained, \
    as_constraint
from .exact import ExactDistribution, enumerate_exact, kl_divergence
from .lm import Batch, CachedLM, HFLanguageModel, LanguageModel, TableLM, Warper
from .loop import Sample, Sampler, SamplingResult
from .mask import MaskSampler
from .smc import SMC

__all__ = [
    "ASAp",
    "AWRS",
    "AllOf",
    "Batch",
    "CachedLM",
    "Constraint",
    "ExactDistribution",
    "GrammarConstraint",
    "HFLanguageModel",
    "LanguageModel",
    "MaskSampler",
    "PredicateConstraint",
    "SMC",
    "SAMPLERS",
    "Sample",
    "Sampler",
    "SamplingResult",
    "TableLM",
    "Unconstrained",
    "Warper",
    "as_constraint",
    "awrs_step",
    "enumerate_exact",
    "generate_ids",
    "get_sampler",
    "gumbel_order",
    "kl_divergence",
    "sample_order",
]

SAMPLERS = ("mask", "asap", "awrs", "smc")


def get_sampler(spec, *, greedy: bool = False, num_particles: int | None = None) -> Sampler:
    """A :class:`Sampler` from a name (``"mask"``, ``"asap"``, ``"awrs"``, ``"smc"``) or an
    instance (returned as is: pass an :class:`ASAp` object to keep its trie across calls)."""
    if isinstance(spec, Sampler):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"sampler must be one of {SAMPLERS} or a Sampler instance, got {spec!r}")
    name = spec.strip().lower()
    if name == "mask":
        return MaskSampler(greedy=greedy)
    if greedy:
        raise ValueError(f"sampler {name!r} samples; greedy decoding is sampler='mask' without sampling")
    if name == "asap":
        return ASAp()
    if name == "awrs":
        return AWRS()
    if name == "smc":
        return SMC(num_particles=num_particles or 16)
    raise ValueError(f"unknown sampler {spec!r}; choose one of {', '.join(SAMPLERS)}")


def _as_lm(model, warper: Warper | None) -> LanguageModel:
    """``model`` as a LanguageModel; ``warper`` None keeps a LanguageModel's own warper."""
    if isinstance(model, LanguageModel):
        if warper is None or model.warper.key() == warper.key():
            return model
        return model.with_warper(warper)
    return _hf_lm(model, warper or Warper())


_HF_LMS: "dict[tuple, tuple]" = {}


def _hf_lm(model, warper: Warper) -> HFLanguageModel:
    """One HFLanguageModel per (model object, warper), so that prompt caches and ASAp's cached
    distributions are reused across calls."""
    key = (id(model), warper.key())
    hit = _HF_LMS.get(key)
    if hit is not None and hit[0] is model:
        return hit[1]
    base = next((lm for (mid, _), (m, lm) in _HF_LMS.items() if m is model), None)
    lm = HFLanguageModel(model, warper=warper) if base is None else base.with_warper(warper)
    if len(_HF_LMS) >= 16:
        _HF_LMS.clear()
    _HF_LMS[key] = (model, lm)
    return lm


def generate_ids(model, prompt_ids: Sequence[int], constraint, *, sampler="mask",
                 max_new_tokens: int = 256, temperature: float | None = None,
                 top_k: int | None = None, top_p: float | None = None, greedy: bool | None = None,
                 num_samples: int = 1, num_particles: int | None = None,
                 seed=None) -> SamplingResult:
    """Run ``sampler`` on ``model`` (a transformers causal LM or a :class:`LanguageModel`) after
    ``prompt_ids`` under ``constraint`` (a CompiledGrammar, a Matcher or a constraint state).

    ``temperature``/``top_k``/``top_p`` build the :class:`Warper` (temperature → top-k → top-p);
    none given: temperature 1 for a transformers model, a LanguageModel's own warper otherwise.
    ``greedy``: default True for ``"mask"`` when no temperature/top-k/top-p is given, else False.
    ``num_samples``: independent samples (mask, awrs), successive samples (asap), or particles
    (smc, same as ``num_particles``).  Returns a :class:`SamplingResult`; ``result.draw()`` picks
    one output ∝ weight.
    """
    import numpy as np

    sampling_args = temperature is not None or top_k is not None or top_p is not None
    if isinstance(sampler, str):
        name = sampler.strip().lower()
        if greedy is None:
            greedy = name == "mask" and not sampling_args
        s = get_sampler(name, greedy=bool(greedy), num_particles=num_particles)
    else:
        s = get_sampler(sampler)
    warper = Warper(temperature if temperature is not None else 1.0, top_k, top_p) if sampling_args else None
    lm = _as_lm(model, warper)
    n = num_particles if (isinstance(s, SMC) and num_particles) else num_samples
    return s.run(lm, [int(t) for t in prompt_ids], as_constraint(constraint),
                 max_new_tokens=int(max_new_tokens), num_samples=int(n),
                 rng=np.random.default_rng(seed))
