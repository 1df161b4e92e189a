"""Language models for the samplers: next-token log-probabilities of a batch of sequences that
grow together, with forking (for resampling) and cropping (for ASAp), and the warping that turns
raw logits into the distribution P the samplers align to.

Warping order
-------------
:class:`Warper` turns raw logits into log-probabilities in this order, the order Hugging Face
``generate()`` applies its warpers in:

1. **temperature**: ``logits / T``;
2. **top-k**: keep the ``k`` largest logits (ties with the k-th are kept), the rest get ``-inf``;
3. **top-p** (nucleus): keep the smallest set of most probable tokens whose probability sums to at
   least ``p`` (computed on the softmax of the logits left by steps 1-2), the rest get ``-inf``;
4. ``log_softmax`` over what is left (in float64).

The result is the *unconstrained* next-token distribution ``P(. | prefix)`` and it is **the P every
sampler aligns to**: the target is ``Q(w) = P(w)·1[w ∈ L] / Z_L`` with ``P`` the product of the
warped local distributions. The constraint is applied *after* warping (warp, then mask). This
differs from ``model.generate()`` with a logits processor, where the mask runs before the warpers;
with top-k/top-p the warped P can give every allowed token probability zero, and then the
sequence has weight 0 (no sampler can find it).  Prefer temperature-only warping with constraints.

Greedy decoding (``MaskSampler(greedy=True)``) ignores the warper: it takes the allowed token
with the largest raw logit, as ``generate()`` does.

Models
------
- :class:`HFLanguageModel`: a Hugging Face causal LM with a KV cache
  (``transformers.DynamicCache``); all rows of a :class:`Batch` share the prompt and have the same
  number of generated tokens, so no padding is ever needed; forking is ``index_select`` on the
  cache's batch dimension.
- :class:`TableLM`: a table ``prefix -> next-token distribution`` for exact tests.
- :class:`CachedLM`: memoizes the raw logits of every (prompt, prefix) it has seen, so repeated
  sampling from a small language (ASAp, repeated SMC runs, benchmarks) costs one forward pass per
  distinct prefix; a step whose rows are all cached runs no forward pass at all.

Log-probabilities are returned on the host as float64 numpy arrays ``(rows, W)`` where ``W`` is
the logits width (it may exceed the tokenizer's vocabulary: padding ids are simply never allowed
by a constraint).  One such transfer per generation step is the price of the samplers' exact
float64 bookkeeping.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Mapping, Sequence

import numpy as np

__all__ = ["Warper", "LanguageModel", "Batch", "HFLanguageModel", "TableLM", "CachedLM", "log_softmax"]


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """float64 log-softmax that tolerates rows of all ``-inf`` (they stay ``-inf``)."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        lse = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return x - lse


class Warper:
    """Temperature → top-k → top-p, then log-softmax (see the module docstring).

    ``temperature`` must be > 0 (use ``MaskSampler(greedy=True)`` for greedy decoding);
    ``top_k``: None or 0 disables; ``top_p``: None or 1.0 disables.
    """

    __slots__ = ("temperature", "top_k", "top_p")

    def __init__(self, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None):
        temperature = float(temperature)
        if not temperature > 0 or not math.isfinite(temperature):
            raise ValueError(f"temperature must be a positive number, got {temperature}")
        if top_k is not None and int(top_k) < 0:
            raise ValueError(f"top_k must be >= 0, got {top_k}")
        if top_p is not None and not 0.0 < float(top_p) <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.temperature = temperature
        self.top_k = int(top_k) if top_k else None
        self.top_p = float(top_p) if top_p is not None and float(top_p) < 1.0 else None

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1.0 and self.top_k is None and self.top_p is None

    def key(self) -> tuple:
        return (self.temperature, self.top_k, self.top_p)

    def __repr__(self) -> str:
        return f"Warper(temperature={self.temperature}, top_k={self.top_k}, top_p={self.top_p})"

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """Warped log-probabilities (float64, same shape) of raw ``logits`` ``(..., W)``."""
        x = np.array(logits, dtype=np.float64, copy=True)
        if self.temperature != 1.0:
            x /= self.temperature
        if self.top_k is not None and self.top_k < x.shape[-1]:
            kth = -np.partition(-x, self.top_k - 1, axis=-1)[..., self.top_k - 1: self.top_k]
            x[x < kth] = -np.inf
        if self.top_p is not None:
            lp = log_softmax(x)
            order = np.argsort(lp, axis=-1, kind="stable")  # ascending, like HF's TopPLogitsWarper
            sorted_p = np.exp(np.take_along_axis(lp, order, axis=-1))
            cum = np.cumsum(sorted_p, axis=-1)
            remove_sorted = cum <= 1.0 - self.top_p
            remove_sorted[..., -1] = False  # always keep the most probable token
            remove = np.zeros_like(remove_sorted)
            np.put_along_axis(remove, order, remove_sorted, axis=-1)
            x[remove] = -np.inf
        return log_softmax(x)


class Batch(ABC):
    """Rows that share a prompt and have all generated the same number of tokens.

    ``logprobs()`` is the warped next-token distribution of every row; ``extend`` appends one (or
    ``k``) tokens to every row; ``select`` keeps/duplicates rows (resampling, dropping finished
    sequences); ``crop`` forgets generated tokens (back to a shorter common length).
    Forward passes are lazy: ``extend`` only queues tokens, ``logprobs`` runs the model.
    """

    def __init__(self, n: int, warper: Warper):
        self.n = int(n)
        self.warper = warper
        self.tokens = np.zeros((self.n, 0), dtype=np.int64)  # generated tokens, (n, length)
        self._logprobs: np.ndarray | None = None

    @property
    def length(self) -> int:
        return int(self.tokens.shape[1])

    def logprobs(self) -> np.ndarray:
        """``(n, W)`` float64 warped log-probabilities of the next token (do not modify)."""
        if self._logprobs is None:
            self._logprobs = self.warper(self._raw_logits())
        return self._logprobs

    def raw_logits(self) -> np.ndarray:
        """``(n, W)`` float64 raw logits of the next token (for greedy decoding)."""
        return self._raw_logits()

    def extend(self, tokens) -> None:
        """Append ``tokens`` (shape ``(n,)`` or ``(n, k)``) to the rows."""
        t = np.asarray(tokens, dtype=np.int64)
        if t.ndim == 1:
            t = t[:, None]
        if t.shape[0] != self.n:
            raise ValueError(f"extend: got {t.shape[0]} rows of tokens for a batch of {self.n}")
        if t.shape[1] == 0:
            return
        self.tokens = np.concatenate([self.tokens, t], axis=1)
        self._logprobs = None
        self._on_extend(t)

    def select(self, rows) -> None:
        """Keep rows ``rows`` (indices into the current rows; repeats fork a row)."""
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= self.n):
            raise IndexError(f"select: row index out of range for a batch of {self.n}")
        self.tokens = self.tokens[idx]
        if self._logprobs is not None:
            self._logprobs = self._logprobs[idx]
        self.n = len(idx)
        self._on_select(idx)

    def crop(self, length: int) -> None:
        """Forget generated tokens beyond the first ``length`` of every row."""
        length = int(length)
        if not 0 <= length <= self.length:
            raise ValueError(f"crop: length {length} outside [0, {self.length}]")
        if length == self.length:
            return
        self.tokens = self.tokens[:, :length]
        self._logprobs = None
        self._on_crop(length)

    # hooks -------------------------------------------------------------------------------
    @abstractmethod
    def _raw_logits(self) -> np.ndarray: ...

    @abstractmethod
    def _on_extend(self, t: np.ndarray) -> None: ...

    @abstractmethod
    def _on_select(self, idx: np.ndarray) -> None: ...

    @abstractmethod
    def _on_crop(self, length: int) -> None: ...


class LanguageModel(ABC):
    """Something that opens :class:`Batch` es for a prompt."""

    warper: Warper

    @property
    @abstractmethod
    def width(self) -> int:
        """Logits width ``W`` (number of token ids the model scores)."""

    @abstractmethod
    def batch(self, prompt_ids: Sequence[int], n: int = 1) -> Batch:
        """``n`` rows holding ``prompt_ids`` and no generated token yet."""

    def with_warper(self, warper: Warper) -> "LanguageModel":
        """A view of this model with another warper (shares weights and caches)."""
        import copy

        other = copy.copy(self)
        other.warper = warper
        return other


# --------------------------------------------------------------------------- table LM
class TableLM(LanguageModel):
    """A language model given as a table or a function: ``prefix tuple -> next-token distribution``.

    ``table``: a mapping from token-id tuples (the generated tokens, the prompt excluded) to a
    probability vector of length ``width`` (or a ``{token: prob}`` dict), or a callable
    ``f(prefix_tuple) -> vector``.  ``default``: the distribution of prefixes missing from the
    table (None: raise ``KeyError``).  ``log=True``: the table holds log-probabilities.  The
    warper sees ``log p`` as logits.
    """

    def __init__(self, table: Mapping | Callable, width: int, *, default=None, log: bool = False,
                 warper: Warper | None = None, prompt_sensitive: bool = False):
        self._table = table
        self._width = int(width)
        self._default = default
        self._log = log
        self.warper = warper or Warper()
        self.prompt_sensitive = prompt_sensitive  # if True the table is keyed by prompt + prefix
        self.calls = 0  # number of prefixes looked up (like forward passes)

    @property
    def width(self) -> int:
        return self._width

    def _vector(self, v) -> np.ndarray:
        if isinstance(v, Mapping):
            out = np.full(self._width, -np.inf if self._log else 0.0)
            for k, p in v.items():
                out[int(k)] = p
            v = out
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self._width,):
            raise ValueError(f"TableLM: distribution of shape {v.shape}, expected ({self._width},)")
        if self._log:
            return v
        with np.errstate(divide="ignore"):
            return np.log(v)

    def next_logits(self, prefix: tuple) -> np.ndarray:
        self.calls += 1
        t = self._table
        if callable(t) and not isinstance(t, Mapping):
            return self._vector(t(prefix))
        v = t.get(prefix)
        if v is None:
            if self._default is None:
                raise KeyError(f"TableLM: no distribution for prefix {prefix}")
            v = self._default
        return self._vector(v)

    def batch(self, prompt_ids: Sequence[int], n: int = 1) -> "TableBatch":
        return TableBatch(self, tuple(int(t) for t in prompt_ids), n)


class TableBatch(Batch):
    def __init__(self, lm: TableLM, prompt: tuple, n: int):
        super().__init__(n, lm.warper)
        self.lm = lm
        self.prompt = prompt

    def _raw_logits(self) -> np.ndarray:
        base = self.prompt if self.lm.prompt_sensitive else ()
        rows = [self.lm.next_logits(base + tuple(int(t) for t in r)) for r in self.tokens]
        return np.stack(rows) if rows else np.zeros((0, self.lm.width))

    def _on_extend(self, t):
        pass

    def _on_select(self, idx):
        pass

    def _on_crop(self, length):
        pass


# --------------------------------------------------------------------------- HF LM
def _transformers_major() -> int:
    import transformers

    try:
        return int(transformers.__version__.split(".")[0])
    except ValueError:  # pragma: no cover
        return 5


def _crop_cache(cache, new_len: int) -> None:
    cur = int(cache.get_seq_length())
    if new_len >= cur:
        return
    if _transformers_major() >= 5:
        cache.crop(-(cur - new_len))  # 5.x: a negative count of tokens to remove
    else:  # pragma: no cover - transformers 4.x: the length to keep
        cache.crop(new_len)


class HFLanguageModel(LanguageModel):
    """A Hugging Face causal LM (``AutoModelForCausalLM``) with a KV cache.

    The prompt's forward pass is memoized (a few prompts, LRU) so that opening many batches for
    the same prompt (ASAp's repeated samples, repeated SMC runs) costs one prefill.
    """

    def __init__(self, model, *, warper: Warper | None = None, prompt_cache_size: int = 4):
        self.model = model
        self.warper = warper or Warper()
        self._prompt_cache: dict[tuple, tuple] = {}
        self._prompt_cache_size = int(prompt_cache_size)
        self.forward_calls = 0
        self.forward_tokens = 0

    @property
    def device(self):
        import torch

        dev = getattr(self.model, "device", None)
        return dev if dev is not None else torch.device("cpu")

    @property
    def width(self) -> int:
        emb = self.model.get_output_embeddings()
        if emb is not None and getattr(emb, "weight", None) is not None:
            return int(emb.weight.shape[0])
        return int(self.model.config.vocab_size)

    def forward(self, input_ids, cache):
        """One forward pass; returns (last-position logits as float64 numpy, cache)."""
        import torch
        from transformers import DynamicCache

        if cache is None:
            try:
                cache = DynamicCache(config=self.model.config)
            except TypeError:  # pragma: no cover - transformers 4.x
                cache = DynamicCache()
        with torch.inference_mode():
            out = self.model(input_ids=input_ids.to(self.device), past_key_values=cache, use_cache=True)
        self.forward_calls += 1
        self.forward_tokens += int(input_ids.numel())
        logits = out.logits[:, -1, :].to(torch.float64).cpu().numpy()
        return logits, out.past_key_values

    def _prefill(self, prompt: tuple):
        import copy

        import torch

        hit = self._prompt_cache.pop(prompt, None)
        if hit is None:
            if not prompt:
                raise ValueError("HFLanguageModel needs a non-empty prompt (e.g. the BOS token)")
            ids = torch.tensor([prompt], dtype=torch.long)
            logits, cache = self.forward(ids, None)
            hit = (logits, cache)
        self._prompt_cache[prompt] = hit
        while len(self._prompt_cache) > self._prompt_cache_size:
            self._prompt_cache.pop(next(iter(self._prompt_cache)))
        logits, cache = hit
        return logits.copy(), copy.deepcopy(cache)

    def batch(self, prompt_ids: Sequence[int], n: int = 1) -> "HFBatch":
        return HFBatch(self, tuple(int(t) for t in prompt_ids), n)


class HFBatch(Batch):
    def __init__(self, lm: HFLanguageModel, prompt: tuple, n: int):
        super().__init__(n, lm.warper)
        self.lm = lm
        self.prompt = prompt
        logits, cache = lm._prefill(prompt)
        if n != 1:
            cache.batch_repeat_interleave(n)
            logits = np.repeat(logits, n, axis=0)
        self._prompt_logits = logits[:1].copy()
        self._cache = cache
        self._fed_logits: np.ndarray | None = logits  # raw logits after the last fed token
        self._fed = 0  # generated tokens already in the cache

    def _raw_logits(self) -> np.ndarray:
        if self.n == 0:
            return np.zeros((0, self.lm.width))
        if self._fed_logits is None or self._fed < self.length:
            import torch

            pending = np.ascontiguousarray(self.tokens[:, self._fed:])
            self._fed_logits, self._cache = self.lm.forward(torch.from_numpy(pending), self._cache)
            self._fed = self.length
        return self._fed_logits

    def _on_extend(self, t):
        pass  # fed lazily by _raw_logits

    def _on_select(self, idx):
        import torch

        if len(idx):
            self._cache.batch_select_indices(torch.from_numpy(idx).to(self.lm.device))
        if self._fed_logits is not None:
            self._fed_logits = self._fed_logits[idx]

    def _on_crop(self, length):
        if length >= self._fed:
            return  # only queued tokens were dropped; the cache and its logits stay valid
        if length == 0:
            _crop_cache(self._cache, len(self.prompt))
            self._fed = 0
            self._fed_logits = np.repeat(self._prompt_logits, self.n, axis=0)
            return
        # keep length-1 tokens in the cache and re-feed the last one to get its logits
        _crop_cache(self._cache, len(self.prompt) + length - 1)
        self._fed = length - 1
        self._fed_logits = None


# --------------------------------------------------------------------------- prefix cache
class CachedLM(LanguageModel):
    """Wraps a :class:`LanguageModel` and memoizes raw next-token logits by (prompt, prefix).

    A batch step where every row is cached runs no forward pass; otherwise the wrapped batch
    (which tracks the same rows, lazily) runs one and every row's logits are stored.  Caching
    never changes a distribution, only the cost.  ``max_entries`` bounds the cache (LRU);
    ``dtype``: store logits in this dtype (``np.float32`` is lossless for a float32 model and
    halves the memory; the default keeps what the model returns).
    """

    def __init__(self, lm: LanguageModel, *, max_entries: int = 4096, dtype=None):
        from collections import OrderedDict

        self.lm = lm
        self.warper = lm.warper
        self.max_entries = int(max_entries)
        self.dtype = dtype
        self._cache: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def width(self) -> int:
        return self.lm.width

    def batch(self, prompt_ids: Sequence[int], n: int = 1) -> "CachedBatch":
        return CachedBatch(self, tuple(int(t) for t in prompt_ids), n)

    def _get(self, key):
        v = self._cache.get(key)
        if v is not None:
            self._cache.move_to_end(key)
        return v

    def _put(self, key, logits: np.ndarray) -> None:
        self._cache[key] = np.array(logits, dtype=self.dtype or logits.dtype, copy=True)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)

    def clear(self) -> None:
        self._cache.clear()


class CachedBatch(Batch):
    def __init__(self, lm: CachedLM, prompt: tuple, n: int):
        super().__init__(n, lm.warper)
        self.lm = lm
        self.prompt = prompt
        self.inner = lm.lm.batch(prompt, n)

    def _raw_logits(self) -> np.ndarray:
        keys = [(self.prompt, tuple(int(t) for t in row)) for row in self.tokens]
        got = [self.lm._get(k) for k in keys]
        if all(g is not None for g in got):
            self.lm.hits += len(keys)
            return np.stack(got).astype(np.float64) if got else np.zeros((0, self.lm.width))
        raw = self.inner.raw_logits()
        self.lm.misses += sum(g is None for g in got)
        self.lm.hits += sum(g is not None for g in got)
        for k, row in zip(keys, raw):
            self.lm._put(k, row)
        return np.asarray(raw, dtype=np.float64)

    def _on_extend(self, t):
        self.inner.extend(t)

    def _on_select(self, idx):
        self.inner.select(idx)

    def _on_crop(self, length):
        self.inner.crop(length)
