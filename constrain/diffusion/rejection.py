"""Denoising under a context-free constraint: propose, check, mask and retry; and SMC weighted by
unbiased estimates of the accepted mass.

For a :class:`~constrain.cfg.engine.CompiledCFG` there is no token DFA, so the step normalizer
of :mod:`.filtering` is out of reach.  A step instead fills its chosen positions (picked from the
*unconstrained* confidences, as for every method) one at a time, in increasing position order.
For position ``i`` with the denoiser's distribution ``p`` (from the step's forward pass):

1. tokens already proven to break the canvas are removed (:meth:`~.completability.
   CanvasChecker.candidates`: byte alphabet, factors of sentences, EOS structure, the engine's
   mask after a committed prefix);
2. tokens are proposed in the order of sampling ``p`` without replacement; each proposal is
   checked — the canvas with it at ``i`` (still-masked positions as one-token holes, text ended
   by EOS) goes to :meth:`~.completability.CanvasChecker.verdict` — and a rejected one is masked
   out of ``p`` and the next is drawn.  The first accepted token is an exact draw from ``p``
   restricted to the accepted set ``A``.

**``"sample"``** (:class:`RejectionSample`) accepts only ``YES`` verdicts, which come with a
witness, and keeps the row's current witness.  Invariant: *every committed canvas has a witness*,
i.e. is exactly completable.  It holds at the start (the empty canvas's witness, or an error), and
each position keeps it: an accepted token brings its own witness; after ``max_rejections``
rejections (or when every candidate is rejected) the position takes the current witness's token,
which keeps that witness valid.  So a finished canvas, being its own witness, is always in the
language.  A row that had to take a token of probability 0 that way is marked ``dead`` (its
output is still valid; its ``log_prob`` is ``-inf``).  The outputs are *not* distributed as the
model conditioned on the language (like left-to-right masking, each step renormalizes locally).

**``"smc"``** (:class:`RejectionSMC`) accepts every token not proven to break the canvas
(``YES`` or ``UNKNOWN``), runs the rejection loop to its end (no cap), and multiplies the
particle's weight by an unbiased estimate of the accepted mass ``Z_i = Σ_{a∈A} p(a)`` (AWRS,
Lipkin et al. 2025; :func:`~constrain.sampling.awrs.awrs_step`): after the first round (rejected
tokens ``R₁``, accepted ``x``), a second round samples without replacement from ``V∖R₁`` until a
token is accepted (rejects ``R₂``, checks cached), and

    ŵ = p(V∖R₁) / (|R₁| + |R₂| + 1),

where ``V`` is the candidate set after step 1 (the removed tokens are not in ``A``, so ``Z_i``
is unchanged) and ``p`` is unnormalized over it.

*Unbiasedness:* ``E[ŵ · 1[x = a]] = p(a) · 1[a ∈ A]`` for every token ``a``.  Proof.  Round 1
reads a Plackett–Luce permutation ``π`` of ``V`` (sampling ``p`` without replacement) up to its
first accepted token.  For a sequence ``r`` of rejected tokens, ``R₁ = r`` and ``x = a`` exactly
when ``π`` starts with ``r`` and the next token is ``a``, which has probability
``P(π starts with r) · p(a)/p(V∖r)``.  Given that, round 2 is a fresh permutation ``σ`` of
``V∖r``, so

    E[ŵ 1[x=a]] = p(a) · Σ_r P(π starts with r) · E_σ[1 / (|r| + |R₂(σ)| + 1)].

By the chain rule of Plackett–Luce, ``P(π starts with r) · P(σ) = P(ρ)`` for the permutation
``ρ = r·σ`` of ``V``.  A permutation ``ρ`` with ``L(ρ)`` rejected tokens before its first accepted
one arises from exactly ``L(ρ) + 1`` pairs ``(r, σ)`` — ``r`` any of its first ``0 … L(ρ)``
tokens — and every one of them has ``|r| + |R₂(σ)| = L(ρ)``.  So the sum is
``Σ_ρ P(ρ) (L(ρ)+1)/(L(ρ)+1) = 1``.  (If ``A`` is empty, ``x`` is None, ``ŵ = 0`` and both
sides vanish.)  ∎

*Over a step and a run.*  The positions of a step are filled one after another, each ``A_j``
depending on the tokens before it; by the tower rule the product of the position weights
satisfies ``E[Πŵ_j · 1[x = a]] = Π_j p_j(a_j) · 1[a_j ∈ A_j]``, and likewise over the steps of a
run: the particle is properly weighted for ``P(trajectory) · Π 1[accepted]``, where ``P`` is the
unconstrained sampler with the same schedule.  That product of indicators is ``1[x ∈ L]`` for
every trajectory: if ``x ∈ L`` every intermediate canvas is completable (``x`` completes it), so
never proven ``NO``; if ``x ∉ L`` the last position's check is of a fully committed canvas,
which is always decided exactly.  Hence the weights target ``Q(x) ∝ P(x) · 1[x ∈ L]``, and
``mean(w)`` is an unbiased estimate of ``Z_L`` (resampling on low ESS sets every weight to the
mean, which keeps that).  Each ``ŵ_j ≤ 1``, so weights never exceed 1.

The weight does not need the checks to be exact for the masked part: ``UNKNOWN`` canvases are
accepted (a search budget only costs particles that die later, weight 0), and ``NO`` is only
answered with a proof.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..sampling.awrs import awrs_step, sample_order
from .completability import NO, YES, CanvasChecker
from .loop import Committer
from .slots import OPEN, candidates
from .smc import init_resampling, resample_rows

__all__ = ["RejectionCommitter", "RejectionSample", "RejectionSMC"]

NEG_INF = -math.inf


class RejectionCommitter(Committer):
    """Fills the chosen positions one at a time by propose-check-retry (see the module docstring).

    ``checker``: a :class:`~.completability.CanvasChecker`.  ``initial_witness``: a witness of
    the empty canvas (required by ``"sample"``).  ``stats``: ``checks`` (verdicts asked),
    ``proposals`` (tokens proposed, rejected ones included), ``fallbacks`` (positions that took
    the witness's token).
    """

    strict = True  # accept only YES verdicts (else everything but NO)

    def __init__(self, mask_id: int, checker: CanvasChecker, *, top_k: int | None = None,
                 initial_witness: Sequence[int] | None = None, max_rejections: int | None = None):
        super().__init__(mask_id, None, top_k)
        self.checker = checker
        self.initial = None if initial_witness is None else tuple(int(t) for t in initial_witness)
        self.max_rejections = None if max_rejections is None else int(max_rejections)
        self.witness: list[tuple[int, ...] | None] = []
        self.stats = {"checks": 0, "proposals": 0, "fallbacks": 0}

    def reset(self, rows: int) -> None:
        super().reset(rows)
        self.witness = [self.initial] * rows

    def commit(self, gen, logp, positions, offset, rng):
        for r in range(len(gen)):
            for p in positions[r].tolist():
                self._fill(gen, logp, r, int(p), offset, rng)
        return None

    # -- one position ------------------------------------------------------------------------------
    def _canvas(self, row: np.ndarray) -> tuple[int, ...]:
        return tuple(OPEN if t == self.mask_id else int(t) for t in row.tolist())

    def _proposal(self, lp: np.ndarray, allowed: np.ndarray, top_k: int | None) -> np.ndarray:
        keep = allowed & np.isfinite(lp)
        if top_k is not None:
            top = np.zeros(len(lp), dtype=bool)
            top[candidates(lp, top_k)[0]] = True
            keep &= top
        return np.where(keep, lp, NEG_INF)

    def _checker_fn(self, canvas: tuple[int, ...], i: int, found: dict, hint):
        """``check(t)``: whether the canvas with ``t`` at ``i`` is accepted; witnesses of ``YES``
        verdicts go to ``found``."""
        ck, eos = self.checker, self.checker.eos_ids
        hints = () if hint is None else (hint,)

        def check(t: int) -> bool:
            self.stats["proposals"] += 1
            if t not in eos and not ck.is_factor(t):
                return False
            self.stats["checks"] += 1
            v = ck.verdict(canvas[:i] + (t,) + canvas[i + 1:], hints)
            if v.status == YES:
                found[t] = v.witness
            return v.status == YES if self.strict else v.status != NO

        return check

    def _write_one(self, gen, logp, r: int, p: int, offset: int, t: int) -> None:
        gen[r, offset + p] = t
        lp = logp[r, p, t]
        self.log_prob[r] += lp if lp > NEG_INF else NEG_INF  # a forced token of probability 0

    def _fill(self, gen, logp, r: int, p: int, offset: int, rng) -> None:
        raise NotImplementedError


class RejectionSample(RejectionCommitter):
    """``"sample"``: propose-check-retry with witnesses; every committed canvas stays exactly
    completable, so every output is in the language (module docstring)."""

    strict = True

    def __init__(self, mask_id: int, checker: CanvasChecker, *, top_k: int | None = None,
                 initial_witness: Sequence[int], max_rejections: int | None = 64):
        if initial_witness is None:
            raise ValueError("RejectionSample needs a witness of the empty canvas")
        super().__init__(mask_id, checker, top_k=top_k, initial_witness=initial_witness,
                         max_rejections=max_rejections)

    def _fill(self, gen, logp, r, p, offset, rng):
        i = offset + p
        lp = logp[r, p]
        canvas = self._canvas(gen[r])
        w = self.witness[r]
        found: dict[int, tuple[int, ...]] = {}
        check = self._checker_fn(canvas, i, found, w)
        lq = self._proposal(lp, self.checker.candidates(canvas, i, len(lp)), self.top_k)
        tok, rejected = None, 0
        for t in sample_order(lq, rng):
            if check(t):
                tok = t
                break
            rejected += 1
            if self.max_rejections is not None and rejected >= self.max_rejections:
                break
        if tok is None:  # the witness's token keeps the witness valid
            tok = w[i]
            self.stats["fallbacks"] += 1
            if not lp[tok] > NEG_INF:
                self.dead[r] = True
                self.log_weight[r] = NEG_INF
        else:
            w = found[tok]
        self.witness[r] = w
        self._write_one(gen, logp, r, p, offset, tok)


class RejectionSMC(RejectionCommitter):
    """``"smc"``: particles proposed by propose-check-retry, weighted by the AWRS estimate of each
    position's accepted mass, resampled when the ESS drops below ``ess_threshold · N``
    (module docstring).  ``stats`` adds ``resamples`` and ``ess`` per step."""

    strict = False

    def __init__(self, mask_id: int, checker: CanvasChecker, *, top_k: int | None = None,
                 initial_witness: Sequence[int] | None = None, ess_threshold: float = 0.5,
                 resampling: str = "systematic"):
        super().__init__(mask_id, checker, top_k=top_k, initial_witness=initial_witness)
        init_resampling(self, ess_threshold, resampling)

    def commit(self, gen, logp, positions, offset, rng):
        super().commit(gen, logp, positions, offset, rng)
        anc = resample_rows(self, rng)
        if anc is not None:
            self.witness = [self.witness[a] for a in anc]
        return anc

    def _fill(self, gen, logp, r, p, offset, rng):
        i = offset + p
        lp = logp[r, p]
        if self.dead[r]:  # weight 0: finish cheaply
            self._write_one(gen, logp, r, p, offset, int(np.argmax(lp)))
            return
        canvas = self._canvas(gen[r])
        found: dict[int, tuple[int, ...]] = {}
        check = self._checker_fn(canvas, i, found, self.witness[r])
        allowed = self.checker.candidates(canvas, i, len(lp))
        st = awrs_step(self._proposal(lp, allowed, self.top_k), check, rng)
        if st.token is None and self.top_k is not None:  # nothing in the top k: every token
            st = awrs_step(self._proposal(lp, allowed, None), check, rng)
        if st.token is None:
            self.dead[r] = True
            self.log_weight[r] = NEG_INF
            self.witness[r] = None
            self._write_one(gen, logp, r, p, offset, int(np.argmax(lp)))
            return
        tok = int(st.token)
        self.log_weight[r] += st.log_weight
        w = found.get(tok)
        if w is None:
            old = self.witness[r]
            w = old if old is not None and old[i] == tok else None
        self.witness[r] = w
        self._write_one(gen, logp, r, p, offset, tok)
