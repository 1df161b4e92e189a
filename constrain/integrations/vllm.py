"""vLLM integration: a logits-processor plugin that constrains requests with our engine.

Install ``constrain`` next to vLLM and it is picked up through the ``vllm.logits_processors``
entry point (or pass the class: ``LLM(..., logits_processors=[ConstrainLogitsProcessor])`` or
``vllm serve ... --logits-processors constrain.integrations.vllm:ConstrainLogitsProcessor``).
A request opts in through ``SamplingParams.extra_args`` (``vllm_xargs`` over HTTP), with exactly
one of these keys:

``json_schema``  a JSON Schema, as JSON text (or a dict/bool offline)
``regex``        a regular expression the whole output must match (``re.fullmatch``)
``grammar``      a Lark or GBNF grammar (``grammar_syntax``: ``"lark"`` or ``"gbnf"``, default:
                 guessed)

Requests without these keys are not touched (their logits are never written).

How it works
------------
* ``validate_params`` runs at submission, in the front-end process, with no tokenizer: it
  compiles the constraint against a 256-token byte vocabulary, which raises exactly the
  errors the real compilation raises for a bad schema / regex / grammar (all of them are
  independent of the vocabulary).  vLLM turns the ``ValueError`` into an HTTP 400.
* In the engine, a new request's constraint is compiled on a background thread as soon as the
  request enters the batch (``update_state``/``add_request``, i.e. *before* the forward pass of
  its prefill step), together with the mask of its start state.  Compiled grammars are cached
  by content, across requests, and concurrent requests with the same constraint share one
  compilation.
* In ``apply`` (after the forward pass) each constrained row's matcher is brought up to date
  with the request's output tokens (which vLLM exposes: the list that ``update_state`` receives
  is the request's running output list in the V1 model runner; in the V2 model runner the last
  sampled token is the row's input id), its packed int32 mask is written into a host bitmask, and
  the masks are applied in place: on an accelerator the int32 words go to the device in one copy
  and are unpacked there (:func:`constrain.bitmask.apply_token_bitmask_`); for logits in host
  memory (vLLM on CPU) numpy unpacks them into a boolean array that torch uses without a copy.

Compilation versus the batch (the choice, honestly): a constrained row can never be sampled
without its mask (that could emit a token outside the language, and nothing can take it back),
and a logits processor cannot hold one row back while the others sample.  So when a row's
grammar is still compiling when its first token is sampled, ``apply`` waits for that
compilation: that one step of the whole batch is delayed by the rest of the compile time.  The
compile starts when the request enters the batch, so it overlaps the prefill forward pass and
the wait is usually zero (compiles take milliseconds, a prefill step longer; see
``docs/vllm.md``).  In the V2 model runner a row whose prompt is still being prefilled in chunks
is not waited for, since its sampled token is discarded anyway (the V1 runner does not tell a
processor which rows those are).  Never: sampling that row unconstrained, or masking it to
nothing (all ``-inf`` makes vLLM sample garbage).

Failures after submission (a constraint that cannot be compiled for this tokenizer, a budget
exceeded, a sampled token the grammar rejects because another processor emptied the allowed
set) cannot fail one request from inside a logits processor, so that row is masked to EOS only
(the request ends at once, with the output it had) and the error is logged.

Both of vLLM's logits-processor interfaces are implemented by the one class (the entry-point
group is shared, and each model runner refuses classes of the other interface): the V1 model
runner's (``vllm.v1.sample.logits_processor.LogitsProcessor``) and, when the installed vLLM has
it, the V2 model runner's (``vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor``).
Speculative decoding is not supported (vLLM itself refuses custom logits processors with it in
the V1 runner).
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
from vllm.v1.sample.logits_processor import LogitsProcessor as _V1LogitsProcessor

try:  # the V2 model runner's interface (vLLM >= 0.2x); absent from older releases
    from vllm.v1.worker.gpu.sample.logits_processor.interface import (
        LogitsProcessor as _V2LogitsProcessor,
    )
except Exception:  # pragma: no cover - depends on the installed vLLM
    _V2LogitsProcessor = None

__all__ = [
    "ConstrainLogitsProcessor",
    "CONSTRAINT_KEYS",
    "constraint",
    "constraint_from_params",
    "validate_constraint",
]

logger = logging.getLogger("constrain.vllm")

CONSTRAINT_KEYS = ("json_schema", "regex", "grammar")
_OPTION_KEYS = ("grammar_syntax",)

_PLACEHOLDER = -1  # vLLM's not-yet-known output token id (async scheduling)


# --------------------------------------------------------------------------------- requests
def constraint(*, json_schema: Any = None, regex: str | None = None, grammar: str | None = None,
               grammar_syntax: str | None = None) -> dict[str, Any]:
    """The ``extra_args`` (``vllm_xargs``) entries for one constraint; give exactly one kind.

    >>> SamplingParams(max_tokens=200, extra_args=constraint(json_schema=schema))  # doctest: +SKIP

    ``json_schema`` may be a dict: it is sent as JSON text, which is what the server accepts.
    """
    given = {k: v for k, v in (("json_schema", json_schema), ("regex", regex), ("grammar", grammar))
             if v is not None}
    if len(given) != 1:
        raise ValueError("give exactly one of json_schema=, regex=, grammar=")
    out: dict[str, Any] = {}
    for k, v in given.items():
        out[k] = v if isinstance(v, str) else json.dumps(v)
    if grammar_syntax is not None:
        out["grammar_syntax"] = grammar_syntax
    return out


def constraint_from_params(params: Any) -> tuple | None:
    """``(kind, text, syntax)`` for the constraint in ``params.extra_args``, or None.

    ``kind``: ``"json_schema"``, ``"regex"`` or ``"grammar"``; ``text``: the constraint as a
    string (a dict schema is dumped with sorted keys, so equal schemas share a cache entry).
    Raises ``ValueError`` (with a message meant for the API user) on malformed entries.
    """
    extra = getattr(params, "extra_args", None)
    if not extra:
        return None
    if not isinstance(extra, dict):
        return None
    present = [k for k in CONSTRAINT_KEYS if extra.get(k) is not None]
    if not present:
        for k in _OPTION_KEYS:
            if k in extra:
                raise ValueError(f"constrain: {k!r} given without 'grammar'")
        return None
    if len(present) > 1:
        raise ValueError(f"constrain: give one constraint per request, got {present}")
    kind = present[0]
    value = extra[kind]
    syntax = None
    if kind == "json_schema":
        if isinstance(value, (dict, bool)):
            text = json.dumps(value, sort_keys=True)
        elif isinstance(value, str):
            text = value
        else:
            raise ValueError(f"constrain: 'json_schema' must be JSON text (or a dict), "
                             f"got {type(value).__name__}")
    else:
        if not isinstance(value, str):
            raise ValueError(f"constrain: {kind!r} must be a string, got {type(value).__name__}")
        text = value
        if kind == "grammar":
            syntax = extra.get("grammar_syntax")
            if syntax is None:
                syntax = "auto"  # Compiler.compile_grammar tells the dialects apart
            elif syntax not in ("lark", "gbnf"):
                raise ValueError(f"constrain: 'grammar_syntax' must be 'lark' or 'gbnf', got {syntax!r}")
    if kind != "grammar" and "grammar_syntax" in extra:
        raise ValueError("constrain: 'grammar_syntax' applies to 'grammar' only")
    if getattr(params, "structured_outputs", None) is not None:
        raise ValueError("constrain: a request cannot use both vLLM's structured_outputs and a "
                         "constrain constraint (extra_args); pick one")
    return (kind, text, syntax)


def _size_of(fut: Future) -> int:
    """Estimated memory of a compiled grammar (0 while compiling, or if compiling failed)."""
    if not fut.done() or fut.exception() is not None:
        return 0
    return fut.result().approx_nbytes()


def _compile(compiler, key: tuple):
    kind, text, syntax = key
    if kind == "json_schema":
        return compiler.compile_json_schema(text)
    if kind == "regex":
        return compiler.compile_regex(text)
    return compiler.compile_grammar(text, dialect=syntax)


_VALIDATION_COMPILER = None
_VALIDATION_LOCK = threading.Lock()


def _validation_compiler():
    """A Compiler over the 256 single-byte tokens: every constraint error, no tokenizer needed."""
    global _VALIDATION_COMPILER
    with _VALIDATION_LOCK:
        if _VALIDATION_COMPILER is None:
            from ..compiler import Compiler
            from ..vocab import Vocabulary

            vocab = Vocabulary([bytes([b]) for b in range(256)] + [None], eos_token_ids=[256],
                               name="constrain-validation-bytes")
            _VALIDATION_COMPILER = Compiler(vocab)
        return _VALIDATION_COMPILER


def validate_constraint(params: Any) -> tuple | None:
    """Check the constraint in ``params.extra_args``; returns its key or None (no constraint).

    Raises ``ValueError`` naming the problem (vLLM answers HTTP 400 with it).
    """
    from ..errors import ConstrainError

    key = constraint_from_params(params)
    if key is None:
        return None
    kind = key[0]
    try:
        _compile(_validation_compiler(), key)
    except ConstrainError as e:
        raise ValueError(f"constrain: invalid {kind}: {e}") from e
    except (RecursionError, MemoryError) as e:
        raise ValueError(f"constrain: {kind} too large or too deeply nested: {type(e).__name__}") from e
    return key


# ----------------------------------------------------------------------------- row state
class _Row:
    """One constrained request in the batch."""

    __slots__ = ("key", "future", "matcher", "consumed", "dead", "out", "error_logged", "stop_ids")

    def __init__(self, key: tuple, future: Future, out: list[int] | None, params: Any = None):
        self.key = key
        self.future = future  # Future[CompiledGrammar]
        self.matcher = None  # created when the grammar is ready
        self.consumed = 0  # output tokens fed to the matcher (EOS included)
        self.dead = False  # no grammar / a token the grammar refused: EOS only from now on
        self.out = out  # V1: the request's running output-token list (a live reference)
        self.error_logged = False
        stop = ()
        try:
            stop = tuple(int(t) for t in (getattr(params, "all_stop_token_ids", None) or ()))
        except Exception:
            pass
        self.stop_ids = stop  # the tokens that end this request (EOS and stop_token_ids)


def _describe(key: tuple) -> str:
    kind, text, _ = key
    return f"{kind} {text[:80]!r}{'...' if len(text) > 80 else ''}"


def _apply_mask_host(logits, bm: np.ndarray, indices: list[int], n: int):
    """``-inf`` where ``bm`` (one row per index) disallows, for logits in host memory.

    numpy unpacks the inverted words straight into a boolean "disallowed" array (one C pass, a
    byte per token), which torch then uses in place without a copy: a few times faster on a CPU
    than unpacking with torch bitwise ops on int32 tensors.
    """
    import torch

    width = logits.shape[-1]
    inv = np.ascontiguousarray(~bm).astype("<i4", copy=False)
    dis = np.unpackbits(inv.view(np.uint8), axis=-1, bitorder="little").view(np.bool_)
    m = min(width, dis.shape[-1])
    dis_t = torch.from_numpy(dis)
    ninf = float("-inf")
    if len(indices) == n:
        logits[:, :m].masked_fill_(dis_t[:, :m], ninf)
        if m < width:
            logits[:, m:] = ninf
    else:
        for j, i in enumerate(indices):
            logits[i, :m].masked_fill_(dis_t[j, :m], ninf)
            if m < width:
                logits[i, m:] = ninf
    return logits


# ------------------------------------------------------------------------------ processor
_BASES: tuple = (_V1LogitsProcessor,) if _V2LogitsProcessor is None else (_V1LogitsProcessor, _V2LogitsProcessor)


class ConstrainLogitsProcessor(*_BASES):  # type: ignore[misc]
    """vLLM logits processor: JSON Schema / regex (/ grammar) constraints per request.

    Constructed by vLLM, once per engine: ``(vllm_config, device, is_pin_memory)`` by the V1
    model runner, ``(vllm_config, req_states)`` by the V2 one.
    """

    #: threads compiling grammars (compiles are short and mostly hold the GIL: one is enough)
    compile_workers = 1
    #: compiled grammars kept (by constraint content) across requests, together holding about
    #: ``cache_bytes`` at most (``approx_nbytes``: a grammar grows as it is used)
    cache_size = 256
    cache_bytes = 512 << 20

    def __init__(self, vllm_config: Any, device_or_state: Any = None, is_pin_memory: bool = False):
        self._v2 = (
            _V2LogitsProcessor is not None
            and hasattr(device_or_state, "all_token_ids")
            and hasattr(device_or_state, "prompt_len")
        )
        import torch

        if self._v2:
            self._req_states = device_or_state
            self.device = torch.device(device_or_state.device)
        else:
            self._req_states = None
            self.device = torch.device(device_or_state) if device_or_state is not None else torch.device("cpu")
        self.vllm_config = vllm_config
        model_config = getattr(vllm_config, "model_config", None)
        self._model_config = model_config
        self._logits_width: int | None = None
        try:
            self._logits_width = int(model_config.get_vocab_size())
        except Exception:
            pass
        self._rows: dict[int, _Row] = {}
        self._compiler = None
        self._compiler_error: BaseException | None = None
        self._compiler_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._grammars: "OrderedDict[tuple, Future]" = OrderedDict()
        self._grammars_lock = threading.Lock()
        self._bitmask: np.ndarray | None = None
        # counters, for tests and monitoring
        self.num_compiles = 0
        self.num_compile_waits = 0
        self.num_dead_rows = 0

    # -- vLLM interface: both runners ---------------------------------------------------------
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        validate_constraint(sampling_params)

    def is_argmax_invariant(self) -> bool:
        return False  # masking changes the argmax

    # -- V1 model runner -----------------------------------------------------------------------
    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if not batch_update:
            return
        rows = self._rows
        # in the order vLLM documents: removed, added, moved
        for index in batch_update.removed:
            rows.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            key = self._key_of(params)
            if key is None:
                rows.pop(index, None)
            else:
                rows[index] = _Row(key, self._grammar_future(key), output_ids, params)
        if rows:
            for a, b, direction in batch_update.moved:
                ra = rows.pop(a, None)
                rb = rows.pop(b, None)
                if ra is not None:
                    rows[b] = ra
                if rb is not None and direction == MoveDirectionality.SWAP:
                    rows[a] = rb

    def apply(self, logits, ctx: Any = None):
        if not self._rows:
            return logits
        if ctx is not None:
            return self._apply_v2(logits, ctx)
        n = logits.shape[0]
        indices = sorted(i for i in self._rows if i < n)
        if not indices:
            return logits
        bm = self._bitmask_rows(len(indices), logits.shape[-1])
        for j, i in enumerate(indices):
            row = self._rows[i]
            out = row.out
            known = len(out)
            while known and out[known - 1] == _PLACEHOLDER:  # not replaced yet (async scheduling)
                known -= 1
            if known != len(out) and not row.dead:  # vLLM did not resolve a sampled token
                self._kill(row, "the previous sampled token is unknown (async scheduling placeholder)")
            self._fill_row(row, out, known, bm[j])
        return self._apply_mask(logits, bm, indices, n)

    # -- V2 model runner -----------------------------------------------------------------------
    def add_request(self, req_idx: int, sampling_params: Any) -> bool:
        key = self._key_of(sampling_params)
        if key is None:
            self._rows.pop(req_idx, None)
            return False
        self._rows[req_idx] = _Row(key, self._grammar_future(key), None, sampling_params)
        return True

    def apply_staged_writes(self) -> None:
        pass

    def _apply_v2(self, logits, ctx):
        import torch

        slots = np.asarray(ctx.idx_mapping_np)
        n = logits.shape[0]
        mine = [(i, int(s)) for i, s in enumerate(slots.tolist()) if int(s) in self._rows]
        if not mine:
            return logits
        if n != len(slots):
            raise NotImplementedError("constrain: speculative decoding is not supported")
        seq_lens = np.asarray(ctx.seq_lens_upper_bound_np)
        prompt_lens = self._req_states.prompt_len.np
        # how many output tokens each row has, and which it still has to feed its matcher
        plan = []
        need_input = []
        for i, slot in mine:
            row = self._rows[slot]
            n_out = int(seq_lens[i]) - int(prompt_lens[slot])
            if n_out < 0:
                continue  # prompt still being prefilled in chunks: this sample is discarded
            plan.append((i, slot, n_out))
            if n_out > row.consumed:
                need_input.append(i)
        last_tok: dict[int, int] = {}
        if need_input:
            idx = torch.as_tensor(need_input, dtype=torch.long, device=ctx.input_ids.device)
            for i, t in zip(need_input, ctx.input_ids.index_select(0, idx).tolist()):
                last_tok[i] = int(t)
        if not plan:
            return logits
        indices = [i for i, _, _ in plan]
        bm = self._bitmask_rows(len(indices), logits.shape[-1])
        for j, (i, slot, n_out) in enumerate(plan):
            row = self._rows[slot]
            start = min(row.consumed, n_out)
            toks: list[int] = []
            if n_out > start:  # output positions [start, n_out): history, then the last token
                p0 = int(prompt_lens[slot])
                if n_out - 1 > start:  # more than one new token (resumed request): read back
                    hist = self._req_states.all_token_ids.gpu[slot, p0 + start:p0 + n_out - 1]
                    toks = [int(t) for t in hist.tolist()]
                toks.append(last_tok.get(i, _PLACEHOLDER))
            self._fill_row(row, toks, n_out, bm[j], base=start)
        return self._apply_mask(logits, bm, indices, n)

    # -- shared machinery --------------------------------------------------------------------
    def _key_of(self, params: Any) -> tuple | None:
        try:
            return constraint_from_params(params)
        except ValueError:
            # validate_params has already refused it at submission; never crash the engine here
            logger.exception("constrain: ignoring a malformed constraint that passed validation")
            return None

    def _bitmask_rows(self, k: int, width: int) -> np.ndarray:
        # one word per 32 logits of the model's vocabulary (what the compiler was built for)
        words = (int(self._logits_width or width) + 31) // 32
        bm = self._bitmask
        if bm is None or bm.shape[0] < k or bm.shape[1] != words:
            bm = self._bitmask = np.empty((max(k, 16), words), dtype=np.int32)
        return bm[:k]

    def _apply_mask(self, logits, bm: np.ndarray, indices: list[int], n: int):
        if logits.device.type == "cpu":
            return _apply_mask_host(logits, bm, indices, n)
        from ..bitmask import apply_token_bitmask_

        # on an accelerator: only the int32 words travel; they are unpacked on the device
        if len(indices) == n:  # every row constrained: apply to the whole tensor
            apply_token_bitmask_(logits, bm)
        else:
            apply_token_bitmask_(logits, bm, indices=indices)
        return logits

    def _fill_row(self, row: _Row, toks, known: int, out_row: np.ndarray, *, base: int = 0) -> None:
        """Bring ``row``'s matcher to ``known`` output tokens and write its mask into ``out_row``.

        ``toks[k]`` is output token ``base + k`` (V1 passes the whole output list, base 0).
        """
        if row.matcher is None and not row.dead:
            fut = row.future
            if not fut.done():
                self.num_compile_waits += 1
            try:
                grammar = fut.result()  # blocks only while this row's grammar still compiles
            except BaseException as e:  # noqa: BLE001 - any failure: this row ends, the engine lives
                self._kill(row, f"cannot compile {_describe(row.key)}: {type(e).__name__}: {e}")
            else:
                row.matcher = grammar.matcher()
                row.consumed = 0
        if not row.dead:
            m = row.matcher
            if known < row.consumed:  # output cut back (preemption, discarded tokens)
                try:
                    m.rollback(row.consumed - known)
                    row.consumed = known
                except Exception:
                    m.reset()
                    row.consumed = 0
            if known > row.consumed:
                if row.consumed < base:  # cannot replay tokens we were not given
                    self._kill(row, "lost track of the output (tokens before this step unknown)")
                else:
                    for pos in range(row.consumed, known):
                        t = toks[pos - base]
                        if m.is_terminated():  # tokens after EOS (ignore_eos): nothing to check
                            row.consumed = known
                            break
                        if t == _PLACEHOLDER or not m.accept_token(t):
                            self._kill(row, f"token {t} at output position {pos} is outside "
                                            f"{_describe(row.key)}")
                            break
                        row.consumed = pos + 1
        if row.dead:
            self._fill_stop_only(row, out_row)
        else:
            row.matcher.fill_bitmask(out_row)

    def _fill_stop_only(self, row: _Row, out_row: np.ndarray) -> None:
        """Allow only the tokens that end the request (its stop ids, the vocabulary's EOS)."""
        ids = set(row.stop_ids)
        if row.matcher is not None:
            ids.update(row.matcher.grammar.eos_ids)
        width = out_row.shape[0] * 32
        words = np.zeros(out_row.shape[0], dtype=np.uint32)
        for t in ids:
            if 0 <= t < width:
                words[t >> 5] |= np.uint32(1 << (t & 31))
        out_row[:] = words.view(np.int32)
        if not ids:  # nothing known that ends it: EOS of the tokenizer as a last resort
            eos = self._tokenizer_eos()
            if eos is not None and 0 <= eos < width:
                words[eos >> 5] |= np.uint32(1 << (eos & 31))
                out_row[:] = words.view(np.int32)
            else:  # an all -inf row would make vLLM sample garbage; say so loudly
                logger.error("constrain: no stop token known; leaving a failed row unmasked")
                out_row.fill(-1)

    def _tokenizer_eos(self) -> int | None:
        try:
            eos = self._tokenizer().eos_token_id
            return None if eos is None else int(eos)
        except Exception:
            return None

    def _kill(self, row: _Row, why: str) -> None:
        row.dead = True
        self.num_dead_rows += 1
        if not row.error_logged:
            row.error_logged = True
            logger.error("constrain: %s; ending this request (EOS only)", why)

    # grammar compilation ----------------------------------------------------------------------
    def _grammar_future(self, key: tuple) -> Future:
        from ..compiler import evict_least_recent

        with self._grammars_lock:
            fut = self._grammars.get(key)
            if fut is not None:
                self._grammars.move_to_end(key)
                if not (fut.done() and fut.exception() is not None):
                    return fut
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.compile_workers,
                                                    thread_name_prefix="constrain-compile")
            fut = self._executor.submit(self._build_grammar, key)
            self._grammars[key] = fut
            # an evicted grammar stays alive for the requests holding it
            evict_least_recent(self._grammars, _size_of, self.cache_size, self.cache_bytes)
            return fut

    def _build_grammar(self, key: tuple):
        grammar = _compile(self._get_compiler(), key)
        self.num_compiles += 1
        m = grammar.matcher()  # warm the start state's mask, so the first step is a cache hit
        m.fill_bitmask(np.empty((grammar.vocab.size + 31) // 32, dtype=np.int32))
        return grammar

    def _tokenizer(self):
        mc = self._model_config
        if mc is None or getattr(mc, "skip_tokenizer_init", False):
            raise RuntimeError("constrain needs the tokenizer; the engine runs with skip_tokenizer_init")
        tok = None
        try:
            from vllm.tokenizers import cached_tokenizer_from_config

            tok = cached_tokenizer_from_config(mc)
        except Exception:
            tok = None
        if tok is None or not (hasattr(tok, "backend_tokenizer") or hasattr(tok, "_tokenizer")):
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(mc.tokenizer, revision=getattr(mc, "tokenizer_revision", None),
                                                trust_remote_code=getattr(mc, "trust_remote_code", False))
        return tok

    def _get_compiler(self):
        with self._compiler_lock:
            if self._compiler is not None:
                return self._compiler
            if self._compiler_error is not None:
                raise self._compiler_error
            try:
                from ..api import compiler_for

                gen_cfg = None
                try:
                    gen_cfg = self._model_config.try_get_generation_config()
                except Exception:
                    gen_cfg = None
                self._compiler = compiler_for(self._tokenizer(), logits_width=self._logits_width,
                                              generation_config=gen_cfg or None)
            except BaseException as e:
                self._compiler_error = e
                raise
            return self._compiler

    def __del__(self):  # pragma: no cover - interpreter shutdown order varies
        ex = getattr(self, "_executor", None)
        if ex is not None:
            try:
                ex.shutdown(wait=False, cancel_futures=True)
            except Exception:
                pass
