"""The vLLM plugin's own logic against vLLM's real interface types, without a model.

Needs vLLM importable (run in the vLLM venv: ``scripts/setup_vllm.sh``); skipped otherwise.
Covers: request parsing and ``validate_params``; the V1 model runner protocol (added / removed /
moved / swapped rows, requests re-added with output already generated, output cut back,
tokens the grammar refuses, compile failures, unconstrained rows left bit-for-bit alone); the
V2 model runner protocol with stand-ins for its request state; compilation off the caller's
thread.  The end-to-end tests with a real ``vllm.LLM`` are in ``test_vllm_e2e_*.py``.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (see scripts/setup_vllm.sh)")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.vllm

from vllm import SamplingParams  # noqa: E402
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality  # noqa: E402
from vllm.v1.sample.logits_processor import LogitsProcessor as V1LogitsProcessor  # noqa: E402

import constrain  # noqa: E402
from constrain.bitmask import unpack_bitmask_np  # noqa: E402
from constrain.integrations import vllm as cv  # noqa: E402
from constrain.vocab import Vocabulary  # noqa: E402

TOKENS = [b"a", b"b", b"c", b"ab", b"0", b"1", b"2", b"12", b"-", b"{", b"}", b'"', b":", b"x"]
EOS = len(TOKENS)  # 14
WIDTH = 24  # padded logits


def _compiler():
    return constrain.Compiler(Vocabulary(TOKENS + [None], size=WIDTH, eos_token_ids=[EOS]))


def _proc(compiler=None) -> cv.ConstrainLogitsProcessor:
    cfg = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: WIDTH,
                                                       skip_tokenizer_init=False))
    p = cv.ConstrainLogitsProcessor(cfg, torch.device("cpu"), False)
    p._compiler = compiler or _compiler()
    return p


def _params(**extra) -> SamplingParams:
    return SamplingParams(max_tokens=16, extra_args=extra or None)


def _allowed(logits_row) -> set[int]:
    return set(np.flatnonzero(np.isfinite(logits_row.numpy())).tolist())


def _upd(n, added=(), removed=(), moved=()):
    return BatchUpdate(batch_size=n, added=list(added), removed=list(removed), moved=list(moved))


def _ids(text: bytes) -> list[int]:
    """Greedy tokenization over TOKENS (longest match), for building outputs."""
    out, i = [], 0
    while i < len(text):
        best = max((t for t in range(len(TOKENS)) if text.startswith(TOKENS[t], i)),
                   key=lambda t: len(TOKENS[t]))
        out.append(best)
        i += len(TOKENS[best])
    return out


# ----------------------------------------------------------------------------------- requests
def test_is_a_v1_logits_processor_and_not_argmax_invariant():
    assert issubclass(cv.ConstrainLogitsProcessor, V1LogitsProcessor)
    assert _proc().is_argmax_invariant() is False


def test_is_also_a_v2_logits_processor_when_vllm_has_that_interface():
    try:
        from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as V2
    except ImportError:
        pytest.skip("this vLLM has no V2 model runner interface")
    assert issubclass(cv.ConstrainLogitsProcessor, V2)


def test_constraint_helper():
    assert cv.constraint(regex="a+") == {"regex": "a+"}
    assert cv.constraint(json_schema={"type": "integer"}) == {"json_schema": '{"type": "integer"}'}
    with pytest.raises(ValueError):
        cv.constraint(regex="a", json_schema={})
    with pytest.raises(ValueError):
        cv.constraint()


def test_validate_accepts_good_constraints_and_ignores_unconstrained():
    V = cv.ConstrainLogitsProcessor.validate_params
    V(_params())
    V(SamplingParams(extra_args={"unrelated": 1}))
    V(_params(regex=r"\d{3}-\d{4}"))
    V(_params(json_schema='{"type": "object", "properties": {"a": {"type": "integer"}}}'))
    V(_params(json_schema={"type": "string", "maxLength": 3}))


@pytest.mark.parametrize("extra, needle", [
    ({"json_schema": "{not json"}, "json_schema"),
    ({"json_schema": '{"type": "array", "items": {"type": "string"}, "uniqueItems": true}'}, "uniqueItems"),
    ({"json_schema": '{"type": "strnig"}'}, "json_schema"),
    ({"json_schema": 12}, "JSON text"),
    ({"regex": "(unclosed"}, "regex"),
    ({"regex": 5}, "string"),
    ({"regex": "a", "json_schema": "{}"}, "one constraint"),
    ({"grammar_syntax": "lark"}, "without 'grammar'"),
    ({"regex": "a", "grammar_syntax": "lark"}, "grammar"),
])
def test_validate_rejects_bad_constraints_with_a_clear_message(extra, needle):
    with pytest.raises(ValueError) as ei:
        cv.ConstrainLogitsProcessor.validate_params(SamplingParams(extra_args=extra))
    msg = str(ei.value)
    assert msg.startswith("constrain:") and needle in msg, msg


def test_grammars_are_accepted_and_bad_ones_refused():
    cv.ConstrainLogitsProcessor.validate_params(_params(grammar='start: "a"+', grammar_syntax="lark"))
    cv.ConstrainLogitsProcessor.validate_params(_params(grammar='root ::= "a" root | "b"'))
    with pytest.raises(ValueError, match="undefined|not defined"):
        cv.ConstrainLogitsProcessor.validate_params(_params(grammar="start: foo", grammar_syntax="lark"))


def test_structured_outputs_and_constrain_together_are_refused():
    from vllm.sampling_params import StructuredOutputsParams

    p = SamplingParams(extra_args={"regex": "a"}, structured_outputs=StructuredOutputsParams(regex="b"))
    with pytest.raises(ValueError, match="structured_outputs"):
        cv.ConstrainLogitsProcessor.validate_params(p)


# ------------------------------------------------------------------------------- V1 protocol
def test_v1_rows_masks_and_untouched_rows():
    p = _proc()
    out0, out1, out2 = [], [], []
    p.update_state(_upd(3, added=[(0, _params(regex="ab[0-2]"), [7], out0),
                                  (1, _params(), [7], out1),
                                  (2, _params(json_schema='{"type": "integer", "maximum": 99}'), [7], out2)]))
    logits = torch.randn(3, WIDTH)
    before = logits.clone()
    p.apply(logits)
    assert _allowed(logits[0]) == {0, 3}  # "a", "ab"
    assert torch.equal(logits[1], before[1])  # unconstrained: untouched, bit for bit
    assert _allowed(logits[2]) == {4, 5, 6, 7, 8}  # digits, "12", "-"
    # vLLM appends sampled tokens to the same lists
    out0.append(3)
    out2.extend([5, 6])
    logits = torch.randn(3, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {4, 5, 6}
    assert _allowed(logits[2]) == {EOS}  # "12" is complete, "123" > 99
    out0.append(6)
    out2.append(EOS)
    logits = torch.randn(3, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {EOS}
    assert _allowed(logits[2]) == {EOS}  # terminated: EOS only
    assert p.num_dead_rows == 0


def test_v1_removed_moved_swapped_and_replaced_rows():
    p = _proc()
    a, b, c = [], [3], []
    p.update_state(_upd(3, added=[(0, _params(regex="a[0-2]"), None, a),
                                  (1, _params(regex="ab1"), None, b),
                                  (2, _params(regex="x"), None, c)]))
    # remove row 0; condense moves 2 -> 0 (unidirectional)
    p.update_state(_upd(2, removed=[0], moved=[(2, 0, MoveDirectionality.UNIDIRECTIONAL)]))
    logits = torch.zeros(2, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {13}  # "x" (the former row 2)
    assert _allowed(logits[1]) == {5}  # "ab" then "1"
    p.update_state(_upd(2, moved=[(0, 1, MoveDirectionality.SWAP)]))
    logits = torch.zeros(2, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {5} and _allowed(logits[1]) == {13}
    # an unconstrained request replaces row 1: it must no longer be masked
    p.update_state(_upd(2, added=[(1, _params(), None, [])]))
    logits = torch.zeros(2, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {5} and _allowed(logits[1]) == set(range(WIDTH))


def test_v1_readded_request_with_output_and_output_cut_back():
    p = _proc()
    out = _ids(b'12-')  # resumed after preemption: output already there
    p.update_state(_upd(1, added=[(0, _params(regex=r"\d+-\d+"), None, out)]))
    logits = torch.zeros(1, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {4, 5, 6, 7}
    out.append(5)
    p.apply(torch.zeros(1, WIDTH))
    del out[-2:]  # vLLM discarded the last two tokens: the matcher rolls back
    logits = torch.zeros(1, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {4, 5, 6, 7, 8}  # after "12": digit, or "-"
    assert p._rows[0].consumed == len(out)


def test_v1_token_outside_the_grammar_ends_the_row_with_eos_only():
    p = _proc()
    out = []
    p.update_state(_upd(1, added=[(0, _params(regex="ab"), None, out)]))
    p.apply(torch.zeros(1, WIDTH))
    out.append(13)  # "x": something else let it through
    logits = torch.zeros(1, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {EOS}
    assert p.num_dead_rows == 1


class _FailingCompiler:
    vocab = None

    def compile_regex(self, pattern):
        raise constrain.BudgetExceededError("too big") if hasattr(constrain, "BudgetExceededError") else RuntimeError()


def test_v1_compile_failure_ends_only_that_row():
    p = _proc(compiler=_FailingCompiler())
    out = []
    sp = SamplingParams(max_tokens=4, extra_args={"regex": "a"}, stop_token_ids=[EOS])
    p.update_state(_upd(2, added=[(0, sp, None, out), (1, _params(), None, [])]))
    logits = torch.zeros(2, WIDTH)
    p.apply(logits)
    assert _allowed(logits[0]) == {EOS}
    assert _allowed(logits[1]) == set(range(WIDTH))


class _SlowCompiler:
    """Wraps a Compiler; each compile takes ``delay`` seconds."""

    def __init__(self, inner, delay):
        self.inner, self.delay, self.vocab = inner, delay, inner.vocab
        self.threads = []

    def compile_regex(self, pattern):
        self.threads.append(threading.current_thread().name)
        time.sleep(self.delay)
        return self.inner.compile_regex(pattern)


def test_compilation_runs_off_the_engine_thread_and_is_shared():
    slow = _SlowCompiler(_compiler(), 0.5)
    p = _proc(compiler=slow)
    outs = [[], [], []]
    t0 = time.perf_counter()
    p.update_state(_upd(3, added=[(0, _params(regex="ab"), None, outs[0]),
                                  (1, _params(), None, outs[1]),
                                  (2, _params(regex="ab"), None, outs[2])]))
    assert time.perf_counter() - t0 < 0.25  # update_state did not wait for the compile
    logits = torch.zeros(3, WIDTH)
    p.apply(logits)  # the rows' first sample must wait for their grammar
    assert _allowed(logits[0]) == {0, 3} and _allowed(logits[2]) == {0, 3}
    assert len(slow.threads) == 1 and slow.threads[0].startswith("constrain-compile")
    assert p.num_compile_waits >= 1
    # a later request with the same constraint: cached, no compile, no wait
    waits = p.num_compile_waits
    p.update_state(_upd(3, added=[(1, _params(regex="ab"), None, [])]))
    p.apply(torch.zeros(3, WIDTH))
    assert len(slow.threads) == 1 and p.num_compile_waits == waits


def test_grammar_cache_is_bounded_by_bytes():
    """The plugin keeps compiled grammars within ``cache_bytes`` (estimates taken afresh at each
    new compile; one still compiling counts from the next): past it, the least recently used go."""
    p = _proc()
    key = lambda pattern: ("regex", pattern, None)  # noqa: E731
    first = p._grammar_future(key("ab")).result()
    p.cache_bytes = first.approx_nbytes() * 2 + first.approx_nbytes() // 2
    p._grammar_future(key("ba")).result()
    p._grammar_future(key("aab")).result()
    assert p._grammar_future(key("ab")).result() is first and p.num_compiles == 3
    p._grammar_future(key("bb")).result()  # three done and over the budget: "ba", the least recent, goes
    assert p._grammar_future(key("ab")).result() is first and p.num_compiles == 4
    p._grammar_future(key("ba")).result()
    assert p.num_compiles == 5


def test_padded_logits_columns_are_masked():
    p = _proc()
    p.update_state(_upd(1, added=[(0, _params(regex="[a-c]"), None, [])]))
    logits = torch.zeros(1, WIDTH)
    p.apply(logits)
    assert max(_allowed(logits[0])) < len(TOKENS)


def test_bfloat16_logits():
    p = _proc()
    p.update_state(_upd(2, added=[(1, _params(regex="x"), None, [])]))
    logits = torch.zeros(2, WIDTH, dtype=torch.bfloat16)
    p.apply(logits)
    assert _allowed(logits[1].float()) == {13} and _allowed(logits[0].float()) == set(range(WIDTH))


# ------------------------------------------------------------------------------- V2 protocol
class _Uva:
    def __init__(self, arr):
        self.np = arr


class _Staged:
    def __init__(self, t):
        self.gpu = t


def _v2_proc(max_reqs=4, max_len=32):
    try:
        from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsContext
    except ImportError:
        pytest.skip("this vLLM has no V2 model runner interface")
    state = SimpleNamespace(device=torch.device("cpu"), max_num_reqs=max_reqs, vocab_size=WIDTH,
                            all_token_ids=_Staged(torch.zeros(max_reqs, max_len, dtype=torch.int32)),
                            prompt_len=_Uva(np.zeros(max_reqs, dtype=np.int32)),
                            prefill_len=_Uva(np.zeros(max_reqs, dtype=np.int32)),
                            total_len=_Staged(torch.zeros(max_reqs, dtype=torch.int32)))
    cfg = SimpleNamespace(model_config=SimpleNamespace(get_vocab_size=lambda: WIDTH,
                                                       skip_tokenizer_init=False))
    p = cv.ConstrainLogitsProcessor(cfg, state)
    assert p._v2
    p._compiler = _compiler()

    def ctx(slots, seq_lens, input_ids):
        idx = torch.tensor(slots, dtype=torch.int32)
        return LogitsContext(expanded_idx_mapping=idx, idx_mapping=idx, idx_mapping_np=np.array(slots),
                             expanded_local_pos=torch.zeros(len(slots), dtype=torch.int32),
                             input_ids=torch.tensor(input_ids, dtype=torch.int32),
                             pos=torch.tensor(seq_lens) - 1, seq_lens_upper_bound_np=np.array(seq_lens))

    return p, state, ctx


def test_v2_protocol():
    p, state, ctx = _v2_proc()
    # slot 2: constrained, prompt of 3 tokens; slot 0: unconstrained
    assert p.add_request(2, _params(regex=r"ab\d\d")) is True
    assert p.add_request(0, _params()) is False
    state.prompt_len.np[2] = 3
    state.prompt_len.np[0] = 5
    logits = torch.zeros(2, WIDTH)
    p.apply(logits, ctx([0, 2], [5, 3], [9, 9]))  # prefill step: no output yet
    assert _allowed(logits[0]) == set(range(WIDTH)) and _allowed(logits[1]) == {0, 3}
    # decode: the row's input id is the token sampled last step ("ab")
    state.all_token_ids.gpu[2, 3] = 3
    logits = torch.zeros(2, WIDTH)
    p.apply(logits, ctx([2, 0], [4, 6], [3, 1]))  # rows reordered
    assert _allowed(logits[0]) == {4, 5, 6, 7} and _allowed(logits[1]) == set(range(WIDTH))
    # resumed after preemption with two outputs ("ab", "1"), then one more ("2") on the same step
    assert p.add_request(2, _params(regex=r"ab\d\d")) is True
    state.all_token_ids.gpu[2, 3:5] = torch.tensor([3, 5])
    logits = torch.zeros(1, WIDTH)
    p.apply(logits, ctx([2], [5], [5]))  # prefill of prompt + 2 outputs; input id = last ("1")
    assert _allowed(logits[0]) == {4, 5, 6}
    # chunked prefill (sequence shorter than the prompt): no wait, nothing fed
    assert p.add_request(1, _params(regex="x")) is True
    state.prompt_len.np[1] = 10
    p.apply(torch.zeros(1, WIDTH), ctx([1], [4], [0]))
    assert p._rows[1].consumed == 0


# ------------------------------------------------------------------------------ real tokenizer
def test_real_tokenizer_from_model_config(tmp_path):
    """The processor builds its compiler from the engine's tokenizer (SmolLM2 when available)."""
    from pathlib import Path
    import os

    model_dir = Path(os.environ.get("CONSTRAIN_VLLM_MODEL", Path.home() / ".cache/constrain/smollm2-hf"))
    if not (model_dir / "tokenizer.json").is_file():
        pytest.skip("converted default model not found (scripts/convert_default_model.py)")
    mc = SimpleNamespace(tokenizer=str(model_dir), tokenizer_revision=None, trust_remote_code=False,
                         skip_tokenizer_init=False, get_vocab_size=lambda: 49152,
                         try_get_generation_config=lambda: {"eos_token_id": 2})
    p = cv.ConstrainLogitsProcessor(SimpleNamespace(model_config=mc), torch.device("cpu"), False)
    comp = p._get_compiler()
    assert comp.vocab.size == 49152 and 2 in comp.vocab.eos_token_ids
    out = []
    p.update_state(_upd(1, added=[(0, _params(regex="(yes|no)"), None, out)]))
    logits = torch.zeros(1, 49152)
    p.apply(logits)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    texts = {tok.decode([t]) for t in _allowed(logits[0])}
    assert texts and all("yes".startswith(t) or "no".startswith(t) for t in texts), texts
