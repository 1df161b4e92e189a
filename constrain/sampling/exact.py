"""Exact answers by enumeration, for small languages: every sequence of ``L`` with its
probability, ``Z_L``, ``Q``, the masking distribution ``Q_GCD`` and the expected future
grammaticality ``c(u)`` of every allowed prefix.

Works with any :class:`~constrain.sampling.lm.LanguageModel` (a table, a tiny transformer, or the
default model on a small grammar): the allowed-prefix tree is walked breadth first, one batched
forward pass per depth, through the same :class:`~constrain.sampling.lm.Batch` and budget rules
as the samplers, so the numbers are those the samplers see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .constraints import as_constraint
from .lm import LanguageModel
from .loop import logsumexp, step_allowed_mask

__all__ = ["ExactDistribution", "enumerate_exact", "kl_divergence"]

NEG_INF = -math.inf


@dataclass
class ExactDistribution:
    """``log_p[w]``: log P(w) for every complete ``w ∈ L`` (token tuples ending with EOS).
    ``log_c[u]``: log c(u) for every allowed prefix ``u`` (EOS excluded).  ``log_zloc[u]``: log of
    the allowed mass at ``u``.  ``children[u]``: ``[(a, log P(a|u))]`` over allowed ``a``."""

    log_p: dict[tuple, float]
    log_c: dict[tuple, float]
    log_zloc: dict[tuple, float]
    children: dict[tuple, list] = field(repr=False, default_factory=dict)

    @property
    def log_z(self) -> float:
        """log Z_L."""
        return self.log_c[()]

    def log_q(self) -> dict[tuple, float]:
        """log Q(w) = log P(w) − log Z_L."""
        z = self.log_z
        return {w: lp - z for w, lp in self.log_p.items()}

    def log_q_gcd(self) -> dict[tuple, float]:
        """log of the masking distribution: Σ_t log P(w_t|u_t) − log Z_loc(u_t)."""
        out = {}
        for w in self.log_p:
            s = 0.0
            for t in range(len(w)):
                u = w[:t]
                s += dict(self.children[u])[w[t]] - self.log_zloc[u]
            out[w] = s
        return out

    def dead_ends(self) -> list[tuple]:
        """Allowed prefixes where no token can come (the constraint or the budget is stuck)."""
        return [u for u, ch in self.children.items() if not ch]

    def leaves(self) -> list[tuple]:
        """Every complete output and every dead end: walking all of them explores the whole
        allowed-prefix tree."""
        return sorted(self.log_p) + sorted(self.dead_ends())

    def mask_dead_mass(self) -> float:
        """Probability that masking reaches a prefix with no allowed token (or runs out of budget)."""
        return max(0.0, 1.0 - sum(math.exp(v) for v in self.log_q_gcd().values()))


def enumerate_exact(lm: LanguageModel, prompt_ids: Sequence[int], constraint, *, max_new_tokens: int,
                    max_nodes: int = 200_000) -> ExactDistribution:
    """Walk every allowed prefix (of positive probability) up to the budget."""
    T = int(max_new_tokens)
    base = as_constraint(constraint)
    W = lm.width
    log_p: dict[tuple, float] = {}
    log_zloc: dict[tuple, float] = {}
    children: dict[tuple, list] = {}
    prefix_lp: dict[tuple, float] = {(): 0.0}
    frontier: list[tuple[tuple, object]] = [((), base.copy())]
    batch = lm.batch(prompt_ids, 1)
    n_nodes = 1
    for step in range(T):
        if not frontier:
            break
        logp = batch.logprobs()
        nxt, rows, toks = [], [], []
        for r, (u, st) in enumerate(frontier):
            allowed = step_allowed_mask(st, step, T, W) & np.isfinite(logp[r])
            ids = np.flatnonzero(allowed)
            log_zloc[u] = logsumexp(logp[r, ids])
            children[u] = [(int(a), float(logp[r, a])) for a in ids]
            for a in ids:
                a = int(a)
                w = u + (a,)
                lpw = prefix_lp[u] + float(logp[r, a])
                if a in st.eos_token_ids:
                    log_p[w] = lpw
                    continue
                s2 = st.copy()
                s2.accept_token(a)
                prefix_lp[w] = lpw
                nxt.append((w, s2))
                rows.append(r)
                toks.append(a)
                n_nodes += 1
                if n_nodes > max_nodes:
                    raise RuntimeError(f"enumerate_exact: more than {max_nodes} prefixes; raise "
                                       "max_nodes or use a smaller language")
        frontier = nxt
        if frontier:
            batch.select(rows)
            batch.extend(np.asarray(toks, dtype=np.int64))
    # c(u) bottom-up: c(u·EOS) = 1, c(u) = Σ_a P(a|u)·c(ua)
    log_c: dict[tuple, float] = {}
    for u in sorted(children, key=len, reverse=True):
        terms = []
        for a, la in children[u]:
            w = u + (a,)
            if w in log_p:
                terms.append(la)
            elif w in log_c:
                terms.append(la + log_c[w])
        log_c[u] = logsumexp(terms)
    return ExactDistribution(log_p=log_p, log_c=log_c, log_zloc=log_zloc, children=children)


def kl_divergence(p: dict, log_q: dict) -> float:
    """KL(p ‖ q) for a probability dict ``p`` and a log-probability dict ``log_q``
    (``inf`` if p puts mass where q has none)."""
    total = 0.0
    for k, pk in p.items():
        if pk <= 0:
            continue
        lq = log_q.get(k, NEG_INF)
        if lq == NEG_INF:
            return math.inf
        total += pk * (math.log(pk) - lq)
    return total
