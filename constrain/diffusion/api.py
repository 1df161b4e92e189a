"""Front door: ``generate(adapter, prompt_ids, constraint, method=...)``."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import BudgetExceededError
from ..sampling.loop import logmeanexp
from .adapters import Denoiser
from .completability import NO, UNKNOWN, canvas_checker
from .errors import UnsatisfiableError
from .loop import Committer, DiffusionResult, DiffusionSample, Dingo, ExactSample, Unconstrained, denoise
from .rejection import RejectionCommitter, RejectionSample, RejectionSMC
from .schedules import REMASKING
from .slots import OPEN
from .smc import SMCCommitter
from .token_dfa import as_token_dfa

__all__ = ["METHODS", "generate"]

METHODS = ("unconstrained", "dingo", "sample", "smc")


def generate(adapter: Denoiser, prompt_ids: Sequence[int], constraint=None, *, gen_length: int,
             steps: int | None = None, block_length: int | None = None, method: str = "dingo",
             remasking: str = "low_confidence", num_samples: int = 1, num_particles: int = 16,
             greedy: bool = False, top_k: int | None = None, ess_threshold: float = 0.5,
             max_rejections: int | None = 64, search_budget: int = 64, seed=None) -> DiffusionResult:
    """Fill ``gen_length`` masked positions after ``prompt_ids`` under ``constraint``.

    ``adapter``: a :class:`~.adapters.Denoiser` (wrap a model in
    :class:`~.adapters.DiffusionAdapter`).  ``constraint``: a CompiledGrammar (regex or JSON
    Schema), a :class:`~.token_dfa.TokenDFA`, or a context-free
    :class:`~constrain.cfg.engine.CompiledCFG` (Lark/GBNF grammar; see below); None only for
    ``method="unconstrained"``.  The canvas is the language with EOS padding: the text, then EOS
    up to ``gen_length``.

    ``steps`` (default ``gen_length``: one token per step), ``block_length`` (default
    ``gen_length``: no semi-autoregressive blocks) and ``remasking`` (one of
    :data:`~.schedules.REMASKING`) make the schedule (:mod:`.schedules`).

    ``method``:

    - ``"unconstrained"``: the plain sampler (``greedy``: argmax instead of sampling); with a
      constraint, ``valid`` and a weight ``1[valid]`` are reported;
    - ``"dingo"``: at each step the most probable completable assignment (greedy);
    - ``"sample"``: at each step an exact draw among completable assignments (unweighted: its
      outputs are *not* distributed as the model conditioned on the constraint; the weights it
      reports correct that);
    - ``"smc"``: ``num_particles`` particles with those draws as proposals, weighted by the exact
      step normalizers and resampled on low ESS; ``log_z`` estimates ``Z_L`` and
      ``result.draw()`` picks an output ∝ weight.

    ``num_samples``: independent canvases (all methods but ``"smc"``).  ``top_k``: restrict each
    committed position to its ``top_k`` most probable tokens (for large vocabularies; a step
    with no valid assignment in the top k retries with every token).  ``seed``: an int or a
    numpy Generator.

    Context-free constraints (:mod:`.rejection`): ``"sample"`` fills each chosen position by
    propose-check-retry (a rejected token is masked out and another drawn) and keeps every
    committed canvas exactly completable, so every output is in the language; after
    ``max_rejections`` rejections at a position it takes the token of the row's current witness
    (None: no cap; a row that must take a witness token of probability 0 is marked ``"dead"``,
    its output still valid); it reports no weights (``log_z`` None).  ``"smc"`` weights the
    particles by unbiased (AWRS) estimates of the accepted mass; ``log_z`` estimates ``Z_L``.
    ``"dingo"`` needs a regular constraint.  ``search_budget``: relaxed checks one completability
    verdict may spend (:mod:`.completability`).  ``max_rejections`` and ``search_budget`` are
    ignored for regular constraints.

    Raises :class:`~.errors.UnsatisfiableError` when no string of the language fits.

    >>> res = generate(adapter, prompt, grammar, gen_length=32, steps=16, block_length=8,
    ...                method="smc", num_particles=8, seed=0)                # doctest: +SKIP
    >>> res.draw().text(grammar.vocab)                                        # doctest: +SKIP
    """
    if not isinstance(adapter, Denoiser):
        raise TypeError(f"adapter must be a Denoiser (wrap models in DiffusionAdapter), got {type(adapter).__name__}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if remasking not in REMASKING:
        raise ValueError(f"unknown remasking rule {remasking!r}; choose one of {', '.join(REMASKING)}")
    if greedy and method != "unconstrained":
        raise ValueError("greedy applies to method='unconstrained' (DINGO is greedy; sample/smc sample)")
    if top_k is not None and int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    gen_length = int(gen_length)
    steps = gen_length if steps is None else int(steps)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    if _is_cfg(constraint):
        return _generate_cfg(adapter, prompt_ids, constraint, gen_length=gen_length, steps=steps,
                             block_length=block_length, method=method, remasking=remasking,
                             num_samples=num_samples, num_particles=num_particles, greedy=greedy, top_k=top_k,
                             ess_threshold=ess_threshold, max_rejections=max_rejections,
                             search_budget=search_budget, rng=rng)
    dfa = None if constraint is None else as_token_dfa(constraint)
    if dfa is None and method != "unconstrained":
        raise ValueError(f"method {method!r} needs a constraint")
    if dfa is not None and not dfa.can_finish(dfa.start, gen_length):
        d = dfa.distance(dfa.start)
        raise UnsatisfiableError(gen_length, None if d == math.inf else int(d))

    mask = adapter.mask_id
    committer: Committer
    if method == "unconstrained":
        committer, rows = Unconstrained(mask, greedy=greedy), int(num_samples)
    elif method == "dingo":
        committer, rows = Dingo(mask, dfa, top_k), int(num_samples)
    elif method == "sample":
        committer, rows = ExactSample(mask, dfa, top_k), int(num_samples)
    else:
        committer = SMCCommitter(mask, dfa, top_k=top_k, ess_threshold=ess_threshold)
        rows = int(num_particles)
    if rows < 1:
        raise ValueError("num_samples and num_particles must be >= 1")

    gen = denoise(adapter, prompt_ids, rows, committer, gen_length=gen_length, steps=steps,
                  block_length=block_length, remasking=remasking, rng=rng)

    samples = []
    for r in range(rows):
        tokens = [int(t) for t in gen[r]]
        valid = None if dfa is None else dfa.accepts(tokens)
        weight = float(committer.log_weight[r])
        if valid is False:
            weight = -math.inf
        samples.append(DiffusionSample(tokens, float(committer.log_prob[r]), weight,
                                       "dead" if committer.dead[r] else "done", valid))
    stats: dict = {"rows": rows, "dead": int(committer.dead.sum())}
    if isinstance(committer, ExactSample):
        stats["max_state_sets"] = committer.max_sets
    if isinstance(committer, SMCCommitter):
        stats.update(resamples=committer.resamples, ess=committer.ess_history)
    weighted = method in ("sample", "smc") or (method == "unconstrained" and dfa is not None and not greedy)
    log_z = logmeanexp([s.log_weight for s in samples]) if weighted else None
    return DiffusionResult(samples, method, log_z, stats)


def _is_cfg(constraint) -> bool:
    if constraint is None:
        return False
    from ..cfg.engine import CompiledCFG

    return isinstance(constraint, CompiledCFG)


def _generate_cfg(adapter, prompt_ids, cfg, *, gen_length, steps, block_length, method, remasking,
                  num_samples, num_particles, greedy, top_k, ess_threshold, max_rejections, search_budget,
                  rng) -> DiffusionResult:
    """``generate`` for a CompiledCFG (:mod:`.rejection`)."""
    if method == "dingo":
        raise ValueError("method 'dingo' needs a regular constraint (a token DFA); for a context-free "
                         "grammar use 'sample' or 'smc'")
    if int(search_budget) < 1:
        raise ValueError(f"search_budget must be >= 1, got {search_budget}")
    if max_rejections is not None and int(max_rejections) < 1:
        raise ValueError(f"max_rejections must be >= 1 or None, got {max_rejections}")
    checker = canvas_checker(cfg, search_budget=int(search_budget))
    witness = None
    if method != "unconstrained":
        v = checker.verdict((OPEN,) * gen_length)
        if v.status == NO:
            short = checker.shortest_sentence()
            why = ("the grammar's language is empty" if short is None else
                   f"no sentence of the grammar can be spelled in at most {gen_length} tokens "
                   f"(a shortest sentence is {short!r})")
            raise UnsatisfiableError(gen_length, None, why)
        if v.status == UNKNOWN and method == "sample":
            raise BudgetExceededError(
                f"no sentence of the grammar that fits in {gen_length} tokens was found within the search "
                f"budget ({search_budget} relaxed checks); raise search_budget or gen_length")
        witness = v.witness

    mask = adapter.mask_id
    committer: Committer
    if method == "unconstrained":
        committer, rows = Unconstrained(mask, greedy=greedy), int(num_samples)
    elif method == "sample":
        committer = RejectionSample(mask, checker, top_k=top_k, initial_witness=witness,
                                    max_rejections=max_rejections)
        rows = int(num_samples)
    else:
        committer = RejectionSMC(mask, checker, top_k=top_k, initial_witness=witness,
                                 ess_threshold=ess_threshold)
        rows = int(num_particles)
    if rows < 1:
        raise ValueError("num_samples and num_particles must be >= 1")

    before = dict(checker.stats)
    gen = denoise(adapter, prompt_ids, rows, committer, gen_length=gen_length, steps=steps,
                  block_length=block_length, remasking=remasking, rng=rng)
    samples = []
    for r in range(rows):
        tokens = [int(t) for t in gen[r]]
        valid = checker.accepts(tokens)
        weight = float(committer.log_weight[r]) if valid else -math.inf
        samples.append(DiffusionSample(tokens, float(committer.log_prob[r]), weight,
                                       "dead" if committer.dead[r] else "done", valid))
    stats: dict = {"rows": rows, "dead": int(committer.dead.sum())}
    if isinstance(committer, RejectionCommitter):
        stats.update(committer.stats)
        stats["verdicts"] = {k: checker.stats[k] - before.get(k, 0) for k in ("yes", "no", "unknown")}
        stats["search_nodes"] = checker.stats["search_nodes"] - before.get("search_nodes", 0)
    if isinstance(committer, RejectionSMC):
        stats.update(resamples=committer.resamples, ess=committer.ess_history)
    if method == "sample":
        log_z = None  # propose-check-retry reports no weights
    elif method == "smc" or not greedy:
        log_z = logmeanexp([s.log_weight for s in samples])
    else:
        log_z = None
    return DiffusionResult(samples, method, log_z, stats)
