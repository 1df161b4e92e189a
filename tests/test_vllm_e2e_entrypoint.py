"""The plugin found through the ``vllm.logits_processors`` entry point, with vLLM in its default
multiprocess mode (engine core in a child process), without passing the class anywhere.

Runs a small script in a fresh interpreter (vLLM's own process layout, our default env), and
checks its outputs here.  Needs the vLLM venv with constrain installed (``scripts/setup_vllm.sh``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (see scripts/setup_vllm.sh)")

from tests import test_vllm_cases as C  # noqa: E402

pytestmark = pytest.mark.vllm

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from importlib.metadata import entry_points


    def main():  # vLLM spawns its engine core: the work must not run at import
        eps = [f"{e.name}={e.value}" for e in entry_points(group="vllm.logits_processors")]
        from vllm import LLM, SamplingParams
        cases = json.loads(sys.argv[2])
        llm = LLM(model=sys.argv[1], **json.loads(sys.argv[3]))
        tok = llm.get_tokenizer()
        prompts, params = [], []
        for c in cases:
            msgs = ([{"role": "system", "content": c["system"]}] if c["system"] else [])
            msgs.append({"role": "user", "content": c["user"]})
            prompts.append(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
            params.append(SamplingParams(max_tokens=int(sys.argv[4]), temperature=0.0, extra_args=c["xargs"]))
        outs = llm.generate(prompts, params, use_tqdm=False)
        print("RESULT " + json.dumps({
            "entry_points": eps,
            "multiprocessing": os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING"),
            "outputs": [[o.outputs[0].text, o.outputs[0].finish_reason] for o in outs],
        }), flush=True)


    if __name__ == "__main__":
        main()
''')


def test_entry_point_in_default_multiprocess_mode(tmp_path):
    picked = [C.cases()[i] for i in (0, 4, 8, 9, 13)]  # 2 schemas, 2 regexes, 1 unconstrained
    payload = [dict(c, xargs=C.extra_args(c)) for c in picked]
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    for k, v in C.CPU_ENV.items():
        env.setdefault(k, v)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    # cwd outside the repository: the installed distribution's entry points are what counts
    proc = subprocess.run(
        [sys.executable, str(script), str(C.model_dir()), json.dumps(payload), json.dumps(C.ENGINE_KW),
         str(C.MAX_TOKENS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{proc.stderr[-4000:]}"
    res = json.loads(lines[-1][len("RESULT "):])
    assert "constrain=constrain.integrations.vllm:ConstrainLogitsProcessor" in res["entry_points"], res
    assert res["multiprocessing"] is None  # vLLM's default: the engine core runs in its own process
    # the engine core really was a separate process
    assert "EngineCore" in proc.stderr or "EngineCore" in proc.stdout
    for case, (text, finish) in zip(picked, res["outputs"]):
        if case["kind"] is None:
            continue
        assert finish == "stop", (case, text)
        C.check_output(case, text)
