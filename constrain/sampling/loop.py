"""The generation loop shared by the samplers, and their common result types.

Semantics of a run (all samplers):

- ``P(a | u)`` is the model's *warped* next-token distribution (temperature → top-k → top-p, see
  :mod:`constrain.sampling.lm`): the P the samplers align to.
- The constraint includes the token budget: ``max_new_tokens`` counts EOS, so at the last slot
  (``max_new_tokens - 1`` tokens generated) only EOS may come, and only when the constraint
  accepts it.  A sequence that cannot finish within the budget is outside the language; its
  weight is 0 (status ``"length"``), never an infinite loop.
- A *complete* output ends with an EOS token (kept in ``Sample.tokens``; ``Sample.body`` drops it).
- The language of the run is ``L = {w : the constraint accepts every token of w, w ends with EOS,
  len(w) <= max_new_tokens}``; ``Z_L = Σ_{w∈L} P(w)`` and the target is ``Q(w) = P(w)·1[w∈L]/Z_L``.
- ``Sample.log_weight`` is a log importance weight w.r.t. the unnormalized target ``P·1[L]``:
  ``E[exp(log_weight)·1[tokens = w]] = P(w)·1[w∈L]``, so the mean weight estimates ``Z_L`` and the
  self-normalized weights estimate ``Q``.  (Greedy decoding has no weight: 0.0.)
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .constraints import as_constraint
from .lm import LanguageModel

__all__ = [
    "Sample",
    "SamplingResult",
    "Sampler",
    "step_allowed_mask",
    "step_is_allowed",
    "masked_local",
    "draw",
    "logsumexp",
    "logmeanexp",
    "run_independent",
]

NEG_INF = -math.inf


def pooled_posterior(weighted: list[tuple[tuple, float]]) -> dict[tuple, float]:
    """Self-normalized weights summed per key, from ``(key, log weight)`` pairs (``-inf``: none)."""
    lw = np.array([w for _, w in weighted], dtype=np.float64)
    total = logsumexp(lw)
    out: dict[tuple, float] = {}
    if total == NEG_INF:
        return out
    for (k, _), w in zip(weighted, lw):
        if w > NEG_INF:
            out[k] = out.get(k, 0.0) + math.exp(w - total)
    return out


def logsumexp(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return NEG_INF
    m = float(np.max(x))
    if m == NEG_INF:
        return NEG_INF
    if m == math.inf:
        return math.inf
    return m + math.log(float(np.sum(np.exp(x - m))))


def logmeanexp(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return logsumexp(x) - math.log(x.size) if x.size else NEG_INF


@dataclass
class Sample:
    """One generated sequence.

    ``tokens``: generated ids (EOS included when complete).  ``status``: ``"eos"`` (complete),
    ``"dead"`` (no allowed token had positive probability), ``"length"`` (the budget ran out
    before the constraint could accept).  ``log_prob``: ``log P(tokens)`` under the warped model.
    ``log_weight``: log importance weight (see the module docstring); ``-inf`` unless complete.
    ``log_proposal``: log probability that the sampler proposed exactly these tokens (for mask
    and AWRS: the masking distribution; for ASAp: the trie's distribution at that time).
    ``log_zloc``: per step, the log weight increment: ``log Z_loc`` = log of the allowed mass for
    ``mask`` (0.0 when greedy); AWRS's unbiased estimate of it for ``awrs``.
    ``checks``: constraint checks (``is_token_allowed`` calls) made for this sequence (AWRS).
    """

    tokens: list[int]
    status: str = "eos"
    log_prob: float = 0.0
    log_weight: float = 0.0
    log_proposal: float = 0.0
    log_zloc: list[float] = field(default_factory=list)
    checks: int = 0

    @property
    def complete(self) -> bool:
        return self.status == "eos"

    @property
    def body(self) -> list[int]:
        """The tokens without the final EOS."""
        return self.tokens[:-1] if self.complete else list(self.tokens)

    def text(self, vocab) -> bytes:
        """Bytes of the body under ``vocab`` (a :class:`~constrain.vocab.Vocabulary`)."""
        return vocab.decode_bytes(self.body)

    def take(self, token: int, log_p: float, eos_token_ids) -> bool:
        """Record an accepted token; returns whether the sequence goes on (it ends at EOS)."""
        self.tokens.append(int(token))
        self.log_prob += float(log_p)
        if token in eos_token_ids:
            self.status = "eos"
            return False
        return True


@dataclass
class SamplingResult:
    """What a sampler returns: samples with log weights and an estimate of ``log Z_L``.

    ``log_z``: log of the mean weight (an unbiased estimate of ``Z_L`` on the linear scale);
    None for greedy decoding.  ``stats``: sampler-specific figures (checks, resamples, ...).
    """

    samples: list[Sample]
    sampler: str
    log_z: float | None = None
    stats: dict = field(default_factory=dict)

    def posterior(self) -> dict[tuple, float]:
        """Self-normalized weights summed per distinct output (token tuple without EOS)."""
        return pooled_posterior([(tuple(s.body), s.log_weight if s.complete else NEG_INF)
                                 for s in self.samples])

    def draw(self, rng: np.random.Generator | None = None) -> Sample | None:
        """One complete sample chosen with probability ∝ its weight (the only one when there is
        a single sample); None when none is complete."""
        done = [s for s in self.samples if s.complete]
        if not done:
            return None
        if len(done) == 1 or self.log_z is None:
            return done[0]
        rng = rng if rng is not None else np.random.default_rng()
        lw = np.array([s.log_weight for s in done])
        if logsumexp(lw) == NEG_INF:
            return None
        p = np.exp(lw - logsumexp(lw))
        return done[int(rng.choice(len(done), p=p / p.sum()))]


class Sampler(ABC):
    """A sequence sampler: ``run(lm, prompt_ids, constraint, max_new_tokens=..., rng=...)``.

    ``constraint``: a Matcher, a CompiledGrammar or a constraint state (see
    :mod:`constrain.sampling.constraints`); it is copied, never advanced.
    """

    name = "sampler"

    @abstractmethod
    def run(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint, *,
            max_new_tokens: int, num_samples: int = 1,
            rng: np.random.Generator | int | None = None) -> SamplingResult: ...


def token_budget(max_new_tokens) -> int:
    """``max_new_tokens`` as an int, checked: EOS takes a slot, so at least one."""
    budget = int(max_new_tokens)
    if budget < 1:
        raise ValueError("max_new_tokens must be >= 1 (EOS takes a slot)")
    return budget


def as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ------------------------------------------------------------------------ one step
def _eos_mask(eos, width: int) -> np.ndarray:
    m = np.zeros(width, dtype=bool)
    for e in eos:
        if 0 <= e < width:
            m[e] = True
    return m


def step_allowed_mask(constraint, step: int, max_new_tokens: int, width: int) -> np.ndarray:
    """Boolean mask over the logits width: tokens the constraint allows at generation step
    ``step`` (0-based), with the budget applied (only EOS at the last slot)."""
    m = constraint.allowed_mask()
    if m.shape[0] != width:
        out = np.zeros(width, dtype=bool)
        k = min(width, m.shape[0])
        out[:k] = m[:k]
        m = out
    if step >= max_new_tokens - 1:
        m = m & _eos_mask(constraint.eos_token_ids, width)
    return m


def step_is_allowed(constraint, step: int, max_new_tokens: int) -> Callable[[int], bool]:
    """Single-token check at step ``step`` with the budget applied."""
    if step >= max_new_tokens - 1:
        eos = constraint.eos_token_ids
        return lambda t: (int(t) in eos) and constraint.is_token_allowed(int(t))
    return constraint.is_token_allowed


def masked_local(logp: np.ndarray, allowed: np.ndarray) -> tuple[float, np.ndarray]:
    """``(log Z_loc, log q)``: the allowed mass and the renormalized constrained distribution
    (``-inf`` off the allowed set); ``log q`` is all ``-inf`` when ``Z_loc = 0``."""
    masked = np.where(allowed, logp, NEG_INF)
    lz = logsumexp(masked)
    if lz == NEG_INF:
        return lz, masked
    return lz, masked - lz


def draw(logq: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn from the (normalized) log-distribution ``logq`` by inverse CDF."""
    m = float(np.max(logq))
    p = np.exp(logq - m)
    c = np.cumsum(p)
    u = rng.random() * c[-1]
    i = int(np.searchsorted(c, u, side="right"))
    i = min(i, len(c) - 1)
    while p[i] == 0.0:  # u landed exactly on a boundary: step back to a positive entry
        i -= 1
    return i


# ------------------------------------------------------------------------ the batched loop
StepFn = Callable[[np.ndarray, "np.ndarray | None", object, int, np.random.Generator],
                  "tuple[int | None, float, float, int]"]


def run_independent(lm: LanguageModel, prompt_ids: Sequence[int], constraint, n: int, *,
                    max_new_tokens: int, step_fn: StepFn, rng: np.random.Generator,
                    need_raw: bool = False) -> list[Sample]:
    """Generate ``n`` independent sequences in one batch.

    ``step_fn(logp_row, raw_row, state, step, rng) -> (token | None, log_w_inc, log_q_inc,
    checks)``: one sampler step; ``None`` means no token can come (weight 0).  Finished rows
    leave the batch, so the forward passes shrink as sequences end.
    """
    max_new_tokens = token_budget(max_new_tokens)
    base = as_constraint(constraint)
    states = [base.copy() for _ in range(n)]
    samples = [Sample(tokens=[], status="active") for _ in range(n)]
    batch = lm.batch(prompt_ids, n)
    active = list(range(n))  # sample index of each batch row
    for step in range(max_new_tokens):
        if not active:
            break
        logp = batch.logprobs()
        raw = batch.raw_logits() if need_raw else None
        keep_rows, keep_tokens = [], []
        for r, i in enumerate(active):
            s, st = samples[i], states[i]
            tok, lw, lq, checks = step_fn(logp[r], None if raw is None else raw[r], st, step, rng)
            s.checks += checks
            if tok is None:
                s.status = death_status(st, step, max_new_tokens)
                s.log_weight = NEG_INF
                s.log_zloc.append(lw)
                continue
            if not st.accept_token(tok):  # pragma: no cover - a sampler bug, never the model's
                raise RuntimeError(f"sampler chose token {tok} that the constraint rejects")
            s.log_weight += lw
            s.log_proposal += lq
            s.log_zloc.append(lw)
            if s.take(tok, logp[r, tok], st.eos_token_ids):
                keep_rows.append(r)
                keep_tokens.append(tok)
        if len(keep_rows) != len(active):
            batch.select(keep_rows)
        active = [active[r] for r in keep_rows]
        if active:
            batch.extend(np.asarray(keep_tokens, dtype=np.int64))
    for s in samples:
        if s.status == "active":  # cannot happen: the last slot allows only EOS
            s.status, s.log_weight = "length", NEG_INF
    return samples


def death_status(state, step: int, max_new_tokens: int) -> str:
    """Why no token could come: ``"length"`` when the budget, not the constraint, is to blame (at
    the last slot the constraint does not accept yet but allows other tokens), else ``"dead"``."""
    if step >= max_new_tokens - 1:
        if not any(state.is_token_allowed(e) for e in state.eos_token_ids) and state.allowed_mask().any():
            return "length"
    return "dead"
