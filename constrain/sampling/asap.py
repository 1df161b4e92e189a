"""``"asap"``: adaptive sampling with approximate expected futures (Park et al., NeurIPS 2024).

``P(a | u)`` is the warped next-token distribution (temperature → top-k → top-p, see
:mod:`constrain.sampling.lm`): the P the trie's bounds refer to.

A persistent trie over the token prefixes sampled so far stores, per prefix ``u``, an upper bound
``θ(u)`` of the *expected future grammaticality*

    c(u) = Σ_{w ∈ L, u ⊑ w} P(w | u)     (the chance that continuing u ends inside L).

Unvisited allowed children count ``θ = 1``, disallowed ones ``0``, an EOS child ``1`` (exact).  A
sample walks from the root drawing ``a ∝ P(a | u)·θ(ua)``; afterwards ``θ`` is recomputed bottom-up
along the path: ``θ(u) = Σ_{a allowed} P(a | u)·θ(ua)``.

Sparse storage: a node keeps only its *visited* children (their ``log P(a|u)`` and ``θ``) and one
number for the rest, the log of the mass of its allowed but unvisited children,
``log_rest(u) = log Σ_{a allowed, unvisited} P(a | u)``.  Then

    θ(u) = rest(u) + Σ_{visited a} P(a|u)·θ(ua) = Z_loc(u) − Σ_{visited a} P(a|u)·(1 − θ(ua)),

the second form being the one in the paper; we evaluate the first, in log space, which never
subtracts (``rest`` is re-summed from the distribution when a child is first visited), so tiny
probabilities keep full precision.  ``θ`` never rises (each recomputation is also clamped to the
previous value against rounding), never drops below ``c``, and equals ``c`` once every prefix
below a node is explored; when the whole trie is explored the sampling distribution is exactly
``Q``.  The KL to ``Q`` need not fall monotonically with the number of samples.

Each sample also carries its exact proposal probability under the trie at the time it was drawn,
hence an importance weight ``P(w) / q(w)`` (unbiased for ``Z_L``).

The trie belongs to one context: model, prompt, constraint, warper and ``max_new_tokens`` (all
but the model are checked).  Keep the
:class:`ASAp` object to continue across calls (``generate(..., sampler=asap)``); ``save`` / ``load``
persist it (an ``.npz`` file).  Using it in another context raises ``ValueError``.

Distributions of visited nodes are cached (LRU, ``cache_mb``) so that walking down the explored
part of the trie needs no forward pass; a node whose children are all explored needs none at all.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from typing import Sequence

import numpy as np

from .constraints import as_constraint, constraint_key
from .lm import LanguageModel
from .loop import Sample, Sampler, SamplingResult, as_rng, death_status, draw, logmeanexp, \
    logsumexp, step_allowed_mask, token_budget

__all__ = ["ASAp"]

NEG_INF = -math.inf


class _Node:
    __slots__ = ("log_p", "log_theta", "log_rest", "log_zloc", "children", "expanded", "terminal")

    def __init__(self, log_p: float = 0.0):
        self.log_p = log_p  # log P(a | parent) of the edge into this node
        self.log_theta = 0.0  # log θ; θ = 1 until expanded
        self.log_rest = NEG_INF  # log mass of allowed, unvisited children (valid once expanded)
        self.log_zloc = NEG_INF  # log Z_loc (valid once expanded)
        self.children: dict[int, _Node] = {}
        self.expanded = False
        self.terminal = False  # an EOS node: complete output, θ = c = 1

    def children_mass(self) -> float:
        if not self.children:
            return NEG_INF
        return logsumexp([c.log_p + c.log_theta for c in self.children.values()])

    def current_sum(self) -> float:
        """log Σ_a P(a|u)·θ(ua) from the children as they stand (the sampling normalizer)."""
        return float(np.logaddexp(self.log_rest, self.children_mass()))


class ASAp(Sampler):
    """Grammar-aligned sampling with a persistent trie of upper bounds (see the module docstring).

    ``run(lm, prompt, constraint, max_new_tokens=..., num_samples=k)`` draws ``k`` samples one
    after the other, updating the trie after each.
    """

    name = "asap"

    def __init__(self, *, cache_mb: float = 256.0):
        self.root = _Node()
        self.context: dict | None = None
        self.num_samples = 0
        self.cache_bytes = int(cache_mb * 2**20)
        self._dist: "OrderedDict[int, tuple[_Node, np.ndarray]]" = OrderedDict()
        self._dist_bytes = 0
        self._batch = None
        self._batch_key = None
        self._batch_lm = None

    def __repr__(self) -> str:
        return f"ASAp(nodes={self.num_nodes}, samples={self.num_samples}, theta_root={self.theta(()):.6g})"

    # ------------------------------------------------------------------ context & caches
    def reset(self) -> None:
        """Forget the trie (and its context)."""
        self.__init__(cache_mb=self.cache_bytes / 2**20)

    def _bind(self, lm: LanguageModel, prompt: tuple, constraint, T: int) -> None:
        ctx = {
            "prompt": list(prompt),
            "constraint": repr(constraint_key(constraint)),
            "warper": list(lm.warper.key()),
            "max_new_tokens": T,
            "width": int(lm.width),
        }
        if self.context is None:
            self.context = ctx
            return
        for k, v in ctx.items():
            old = self.context.get(k)
            if k == "constraint" and (v == "None" or old == "None"):
                continue  # unidentifiable constraint (an anonymous predicate): trust the caller
            if json.loads(json.dumps(old)) != json.loads(json.dumps(v)):
                raise ValueError(f"this ASAp trie belongs to another {k} ({old!r} != {v!r}); use a "
                                 "new ASAp object or call reset()")

    def _get_batch(self, lm: LanguageModel, prompt: tuple):
        key = (prompt, lm.warper.key())
        if self._batch is None or self._batch_key != key or self._batch_lm is not lm:
            if self._batch_lm is not None and self._batch_lm is not lm:
                self._dist.clear()  # another model object: its distributions are not ours
                self._dist_bytes = 0
            self._batch = lm.batch(prompt, 1)
            self._batch_key = key
            self._batch_lm = lm
        return self._batch

    def _cache_get(self, node: _Node):
        hit = self._dist.get(id(node))
        if hit is not None and hit[0] is node:
            self._dist.move_to_end(id(node))
            return hit[1]
        return None

    def _cache_put(self, node: _Node, logp: np.ndarray) -> None:
        if self.cache_bytes <= 0 or logp.nbytes > self.cache_bytes:
            return
        self._dist[id(node)] = (node, logp)
        self._dist_bytes += logp.nbytes
        while self._dist_bytes > self.cache_bytes:
            _, (_, old) = self._dist.popitem(last=False)
            self._dist_bytes -= old.nbytes

    def _logp(self, node: _Node, batch, tokens: list[int]) -> np.ndarray:
        lp = self._cache_get(node)
        if lp is None:
            if batch.length != len(tokens):  # pragma: no cover - internal invariant
                raise RuntimeError("ASAp: batch out of step with the path")
            lp = np.array(batch.logprobs()[0], dtype=np.float64)
            self._cache_put(node, lp)
        return lp

    # ------------------------------------------------------------------ the walk
    def _walk(self, lm, prompt, constraint, T: int, rng, forced: Sequence[int] | None = None) -> Sample:
        """One root-to-leaf walk: sample (``forced`` None) or follow ``forced``; then update θ."""
        batch = self._get_batch(lm, prompt)
        batch.crop(0)
        state = constraint.copy()
        node = self.root
        path = [node]
        tokens: list[int] = []
        log_prob = log_q = 0.0
        status = "active"
        W = lm.width
        for step in range(T):
            allowed = None
            if not node.expanded:
                lp = self._logp(node, batch, tokens)
                allowed = step_allowed_mask(state, step, T, W) & np.isfinite(lp)
                node.log_zloc = node.log_rest = logsumexp(lp[allowed])
                node.expanded = True
                node.log_theta = min(node.log_theta, node.log_zloc)
            S = node.current_sum()
            if S == NEG_INF:
                status = death_status(state, step, T)
                break
            lp = None
            if forced is not None:
                if step >= len(forced):
                    raise ValueError("forced sequence ends before EOS")
                a = int(forced[step])
                child = node.children.get(a)
                if child is None:
                    lp = self._logp(node, batch, tokens)
                    if allowed is None:
                        allowed = step_allowed_mask(state, step, T, W) & np.isfinite(lp)
                    if not allowed[a]:
                        raise ValueError(f"forced token {a} at step {step} is not allowed "
                                         "(or has probability 0)")
            else:
                child = None
                if node.log_rest > NEG_INF and math.log(max(rng.random(), 1e-300)) < node.log_rest - S:
                    lp = self._logp(node, batch, tokens)
                    if allowed is None:
                        allowed = step_allowed_mask(state, step, T, W) & np.isfinite(lp)
                    cand = allowed.copy()
                    if node.children:
                        cand[np.fromiter(node.children, dtype=np.int64)] = False
                    a = draw(np.where(cand, lp, NEG_INF), rng)
                else:
                    items = list(node.children.items())
                    weights = np.array([c.log_p + c.log_theta for _, c in items])
                    k = draw(weights - logsumexp(weights), rng)
                    a, child = items[k]
            if child is None:  # first visit of edge a: move its mass out of `rest`
                child = _Node(float(lp[a]))
                node.children[a] = child
                cand = allowed.copy()
                cand[np.fromiter(node.children, dtype=np.int64)] = False
                node.log_rest = logsumexp(lp[cand])
                log_q += child.log_p - S  # θ(ua) = 1 when it was drawn
            else:
                log_q += child.log_p + child.log_theta - S
            if not state.accept_token(a):  # pragma: no cover - internal invariant
                raise RuntimeError(f"ASAp chose token {a} that the constraint rejects")
            tokens.append(a)
            log_prob += child.log_p
            path.append(child)
            node = child
            if a in state.eos_token_ids:
                node.terminal = node.expanded = True
                node.log_theta = 0.0
                status = "eos"
                break
            batch.extend([a])
        if status == "active":  # pragma: no cover - the last slot allows only EOS
            status = "length"
        self._backup(path)
        self.num_samples += forced is None
        done = status == "eos"
        return Sample(tokens=tokens, status=status, log_prob=log_prob,
                      log_weight=(log_prob - log_q) if done else NEG_INF,
                      log_proposal=log_q if done else NEG_INF)

    @staticmethod
    def _backup(path: list[_Node]) -> None:
        for node in reversed(path):
            if node.terminal or not node.expanded:
                continue
            node.log_theta = min(node.log_theta, node.current_sum())

    # ------------------------------------------------------------------ public API
    def run(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint, *,
            max_new_tokens: int, num_samples: int = 1, rng=None) -> SamplingResult:
        rng = as_rng(rng)
        T = token_budget(max_new_tokens)
        prompt = tuple(int(t) for t in prompt_ids)
        c = as_constraint(constraint)
        self._bind(lm, prompt, c, T)
        samples = [self._walk(lm, prompt, c, T, rng) for _ in range(int(num_samples))]
        log_z = logmeanexp([s.log_weight for s in samples])
        return SamplingResult(samples, self.name, log_z,
                              {"nodes": self.num_nodes, "theta_root": self.theta(())})

    def observe(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint, tokens: Sequence[int], *,
                max_new_tokens: int) -> Sample:
        """Add the path of ``tokens`` (ending with EOS, or where the constraint dies) to the trie
        and update the bounds along it, as if it had been sampled."""
        T = int(max_new_tokens)
        prompt = tuple(int(t) for t in prompt_ids)
        c = as_constraint(constraint)
        self._bind(lm, prompt, c, T)
        return self._walk(lm, prompt, c, T, None, forced=list(tokens))

    def _find(self, prefix: Sequence[int]) -> _Node | None:
        node = self.root
        for t in prefix:
            node = node.children.get(int(t))
            if node is None:
                return None
        return node

    def log_theta(self, prefix: Sequence[int] = ()) -> float:
        """log θ(prefix): the stored bound (0.0, i.e. θ = 1, for an unvisited prefix)."""
        node = self._find(prefix)
        return 0.0 if node is None else node.log_theta

    def theta(self, prefix: Sequence[int] = ()) -> float:
        return math.exp(self.log_theta(prefix))

    def nodes(self):
        """Yield ``(prefix_tuple, node)`` for every node of the trie (depth first)."""
        stack = [((), self.root)]
        while stack:
            prefix, node = stack.pop()
            yield prefix, node
            for a, c in node.children.items():
                stack.append((prefix + (a,), c))

    @property
    def num_nodes(self) -> int:
        return sum(1 for _ in self.nodes())

    def is_exhausted(self) -> bool:
        """Every prefix of positive probability has been explored: θ = c everywhere, and sampling
        is exactly Q."""
        for _, node in self.nodes():
            if node.terminal:
                continue
            if not node.expanded or node.log_rest > NEG_INF:
                return False
        return True

    def log_sampling_prob(self, lm: LanguageModel, prompt_ids: Sequence[int], constraint,
                          tokens: Sequence[int], *, max_new_tokens: int) -> float:
        """log probability that the next sample is exactly ``tokens`` (the trie is not changed):
        a complete output, or a dead end where the walk stops with weight 0.

        Below the explored part of the trie the walk samples like masking (every unvisited
        child has θ = 1), which is what this computes there."""
        T = int(max_new_tokens)
        prompt = tuple(int(t) for t in prompt_ids)
        state = as_constraint(constraint).copy()
        batch = lm.batch(prompt, 1)
        node: _Node | None = self.root
        total = 0.0
        W = lm.width
        for step, a in enumerate(tokens):
            a = int(a)
            lp = self._cache_get(node) if node is not None else None
            if lp is None:
                lp = np.array(batch.logprobs()[0])
            allowed = step_allowed_mask(state, step, T, W) & np.isfinite(lp)
            if not allowed[a]:
                return NEG_INF
            if node is not None and node.expanded:
                S = node.current_sum()
                child = node.children.get(a)
                total += (child.log_p + child.log_theta - S) if child is not None else (lp[a] - S)
                node = child
            else:
                total += lp[a] - logsumexp(lp[allowed])
                node = None
            state.accept_token(a)
            if a in state.eos_token_ids:
                return float(total)
            batch.extend([a])
        # not complete: the walk ends here only if no token can come (a dead end)
        lp = self._cache_get(node) if node is not None else None
        if lp is None:
            lp = np.array(batch.logprobs()[0])
        allowed = step_allowed_mask(state, len(tokens), T, W) & np.isfinite(lp)
        return float(total) if not allowed.any() else NEG_INF

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the trie and its context to ``path`` (a NumPy ``.npz`` file)."""
        parent, token, arrays = [], [], {k: [] for k in ("log_p", "log_theta", "log_rest", "log_zloc")}
        flags = []
        index: dict[int, int] = {}
        stack = [(-1, -1, self.root)]
        while stack:
            par, tok, node = stack.pop()
            index[id(node)] = len(parent)
            parent.append(par)
            token.append(tok)
            for k in arrays:
                arrays[k].append(getattr(node, k))
            flags.append(int(node.expanded) | (int(node.terminal) << 1))
            me = index[id(node)]
            for a, c in reversed(node.children.items()):  # popped in insertion order
                stack.append((me, a, c))
        meta = {"format": "constrain.asap/1", "context": self.context, "num_samples": self.num_samples}
        np.savez_compressed(path, parent=np.asarray(parent, dtype=np.int64),
                            token=np.asarray(token, dtype=np.int64),
                            flags=np.asarray(flags, dtype=np.uint8),
                            meta=np.asarray(json.dumps(meta)),
                            **{k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()})

    @classmethod
    def load(cls, path, *, cache_mb: float = 256.0) -> "ASAp":
        """An ASAp object with the trie saved by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != "constrain.asap/1":
                raise ValueError(f"{path}: not an ASAp trie file")
            parent, token, flags = z["parent"], z["token"], z["flags"]
            cols = {k: z[k] for k in ("log_p", "log_theta", "log_rest", "log_zloc")}
        self = cls(cache_mb=cache_mb)
        self.context = meta["context"]
        self.num_samples = int(meta["num_samples"])
        nodes: list[_Node] = []
        for i in range(len(parent)):
            node = self.root if i == 0 else _Node()
            for k, v in cols.items():
                setattr(node, k, float(v[i]))
            node.expanded = bool(flags[i] & 1)
            node.terminal = bool(flags[i] & 2)
            nodes.append(node)
            if parent[i] >= 0:
                nodes[parent[i]].children[int(token[i])] = node
        return self
