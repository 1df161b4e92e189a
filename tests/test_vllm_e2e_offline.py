"""A real ``vllm.LLM`` on CPU with the default model, in-process, with our plugin.

Acceptance of issue 8: a batch of 16 requests with different schemas, regexes and a grammar
(plus unconstrained ones) in the same batch all return outputs valid under their constraints,
and the unconstrained ones are exactly what the same engine produces without the plugin
(greedy).  Needs the vLLM venv (``scripts/setup_vllm.sh``); skipped when vLLM is missing.
"""

from __future__ import annotations

import gc
import time

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (see scripts/setup_vllm.sh)")

from tests import test_vllm_cases as C  # noqa: E402

pytestmark = pytest.mark.vllm

C.set_cpu_env(in_process=True)


def _shutdown(llm) -> None:
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception:
        pass


def _no_entry_point_plugins(mp):
    """Load only the processors passed by class, whatever is installed (no double instances)."""
    import vllm.v1.sample.logits_processor as lp

    mp.setattr(lp, "_load_logitsprocs_plugins", lambda: [])
    lp.cached_load_custom_logitsprocs.cache_clear()


def _sampling(case, i, **kw):
    from vllm import SamplingParams

    greedy = case["kind"] is None or i % 2 == 0  # half the constrained rows sample
    return SamplingParams(max_tokens=C.MAX_TOKENS, temperature=0.0 if greedy else 0.8, seed=i,
                          extra_args=C.extra_args(case), **kw)


@pytest.fixture(scope="module")
def setup():
    from vllm import LLM, SamplingParams

    path = str(C.model_dir())
    cases = C.cases()
    with pytest.MonkeyPatch.context() as mp:
        _no_entry_point_plugins(mp)
        # reference: the same prompts, the same engine settings, no plugin at all
        plain = LLM(model=path, **C.ENGINE_KW)
        tok = plain.get_tokenizer()
        prompts = [C.chat_prompt(tok, c["user"], c["system"]) for c in cases]
        ref = plain.generate(prompts, [SamplingParams(max_tokens=C.MAX_TOKENS, temperature=0.0)
                                       for _ in cases], use_tqdm=False)
        _shutdown(plain)
        del plain
        gc.collect()

        from constrain.integrations.vllm import ConstrainLogitsProcessor

        llm = LLM(model=path, logits_processors=[ConstrainLogitsProcessor], **C.ENGINE_KW)
        yield SimpleSetup(llm, cases, prompts, ref)
        _shutdown(llm)
        del llm
        gc.collect()


class SimpleSetup:
    def __init__(self, llm, cases, prompts, ref):
        self.llm, self.cases, self.prompts, self.ref = llm, cases, prompts, ref


@pytest.fixture(scope="module")
def mixed(setup):
    """The 16 requests, one batch, once."""
    t0 = time.perf_counter()
    outs = setup.llm.generate(setup.prompts, [_sampling(c, i) for i, c in enumerate(setup.cases)],
                              use_tqdm=False)
    return outs, time.perf_counter() - t0


def test_batch_of_16_mixed_requests(setup, mixed):
    cases = setup.cases
    outs, elapsed = mixed
    failures = []
    for i, (case, out) in enumerate(zip(cases, outs)):
        o = out.outputs[0]
        if case["kind"] is None:
            continue
        try:
            assert o.finish_reason == "stop", f"did not finish ({o.finish_reason}): {o.text!r}"
            C.check_output(case, o.text)
        except AssertionError as e:
            failures.append(f"request {i} ({case['kind']} {str(case['constraint'])[:60]}): {e}")
    print(f"\n16 requests in {elapsed:.1f}s")
    for case, out in zip(cases, outs):
        print(f"  {case['kind'] or 'free':12s} {out.outputs[0].text[:90]!r}")
    assert not failures, "\n".join(failures)


def test_unconstrained_requests_are_untouched(setup, mixed):
    """Greedy unconstrained rows, batched with constrained ones, equal a run without the plugin."""
    cases, (outs, _) = setup.cases, mixed
    n = 0
    for case, out, ref in zip(cases, outs, setup.ref):
        if case["kind"] is None:
            n += 1
            assert list(out.outputs[0].token_ids) == list(ref.outputs[0].token_ids), (
                f"unconstrained output changed:\n  plugin: {out.outputs[0].text!r}\n"
                f"  plain:  {ref.outputs[0].text!r}")
    assert n == 3


def test_bad_constraint_is_rejected_at_submission(setup):
    from vllm import SamplingParams

    try:
        from vllm.exceptions import VLLMValidationError as Invalid
    except ImportError:  # older vLLM: a plain ValueError
        Invalid = ValueError

    bad = SamplingParams(max_tokens=8, extra_args={"json_schema": '{"type": "array", "items": {"type": "string"}, "uniqueItems": true}'})
    with pytest.raises((ValueError, Invalid), match="constrain: invalid json_schema.*'uniqueItems'"):
        setup.llm.generate(["hi"], [bad], use_tqdm=False)
    # the engine is still fine afterwards
    ok = SamplingParams(max_tokens=8, temperature=0.0, extra_args={"regex": "(yes|no)"})
    out = setup.llm.generate([setup.prompts[9]], [ok], use_tqdm=False)
    assert out[0].outputs[0].text in ("yes", "no")


def test_same_schema_many_times_and_n_greater_than_one(setup):
    """Compiled grammars are shared across requests; n>1 children each get their own matcher."""
    from vllm import SamplingParams

    case = setup.cases[4]
    sp = SamplingParams(max_tokens=C.MAX_TOKENS, temperature=1.0, seed=7, n=3, extra_args=C.extra_args(case))
    outs = setup.llm.generate([setup.prompts[4]] * 2, [sp, sp], use_tqdm=False)
    texts = [o.text for out in outs for o in out.outputs]
    assert len(texts) == 6
    for t in texts:
        C.check_output(case, t)
