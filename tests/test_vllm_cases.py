"""Shared pieces of the vLLM end-to-end tests and of ``benchmarks/vllm_throughput.py``: where the
model is, how a CPU engine is configured, the constrained requests, and their validators.

No tests here; importing it needs neither vLLM nor a model.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# CPU engine settings small enough for a 2-core / 24 GiB machine shared with other work
CPU_ENV = {
    "VLLM_CPU_OMP_THREADS_BIND": "nobind",  # do not pin threads to cores others use
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache (default would take a large share of RAM)
    "VLLM_TARGET_DEVICE": "cpu",
    "TOKENIZERS_PARALLELISM": "false",
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
}
ENGINE_KW = dict(max_model_len=1024, max_num_seqs=16, enforce_eager=True, dtype="float32", seed=0)
MAX_TOKENS = 96


def set_cpu_env(in_process: bool = True) -> None:
    for k, v in CPU_ENV.items():
        os.environ.setdefault(k, v)
    if in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"


def model_dir() -> Path:
    """The default model as a Hugging Face directory (converted from its GGUF on first use)."""
    env = os.environ.get("CONSTRAIN_VLLM_MODEL")
    if env:
        return Path(env)
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import convert_default_model as conv
    finally:
        sys.path.pop(0)
    out = conv.default_out_dir()
    if not (out / ".complete").is_file():
        subprocess.run([sys.executable, str(REPO / "scripts" / "convert_default_model.py"), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
    return out


# ------------------------------------------------------------------------------------ cases
def _obj(props: dict, required=None) -> dict:
    return {"type": "object", "properties": props, "required": list(required or props),
            "additionalProperties": False}


NAME = {"type": "string", "minLength": 1, "maxLength": 12}
SCHEMAS = [
    _obj({"name": NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}}),
    _obj({"city": NAME, "country": NAME, "population_millions": {"type": "integer", "minimum": 0,
                                                                   "maximum": 5000}}),
    _obj({"answer": {"type": "boolean"}, "confidence": {"enum": ["low", "medium", "high"]}}),
    _obj({"title": NAME, "tags": {"type": "array", "items": {"type": "string", "maxLength": 8},
                                  "minItems": 1, "maxItems": 3}}),
    _obj({"color": {"enum": ["red", "green", "blue", "yellow"]}, "count": {"type": "integer",
                                                                          "minimum": 1, "maximum": 9}}),
    _obj({"product": NAME, "price_cents": {"type": "integer", "minimum": 0, "maximum": 99999},
          "in_stock": {"type": "boolean"}}),
    _obj({"user": _obj({"id": {"type": "integer", "minimum": 1, "maximum": 999}, "nick": NAME}),
          "active": {"type": "boolean"}}),
    {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 100}, "minItems": 2,
     "maxItems": 5},
]
SCHEMA_PROMPTS = [
    "Describe a fictional person.",
    "Describe a large city.",
    "Is the sky blue?",
    "Give a blog post title with tags.",
    "Pick a color and a small number.",
    "Describe a product in a shop.",
    "Describe a user account.",
    "List a few small numbers.",
]

# a grammar for arithmetic without parentheses, regular and therefore given as a regex
ARITH_GRAMMAR_AS_REGEX = r"-?[0-9]{1,3}( [-+*] -?[0-9]{1,3}){1,3}"
REGEXES = [
    (r"[0-9]{3}-[0-9]{4}", "Give a phone number like 555-1234."),
    (r"(yes|no)", "Is water wet? Answer yes or no."),
    (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", "Give a date in ISO format."),
    (r"[A-Z][a-z]{1,9}( [A-Z][a-z]{1,9})?", "Name a famous scientist."),
    (ARITH_GRAMMAR_AS_REGEX, "Write an arithmetic expression."),
]
UNCONSTRAINED = ["Tell me a joke.", "What is the capital of France?", "Write a haiku about rain."]

# A Lark grammar (the recursive ones are exercised by tests/test_cfg_*.py without vLLM).
LARK_GRAMMAR = r'''
start: greeting " " NAME "!"
greeting: "Hello" | "Hi" | "Hey"
NAME: /[A-Z][a-z]{1,9}/
'''


def chat_prompt(tokenizer, user: str, system: str | None = None) -> str:
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def schema_system(schema) -> str:
    return f"Answer with JSON only, matching this JSON Schema: {json.dumps(schema)}"


def cases() -> list[dict]:
    """The 16 requests of the batch test: 8 schemas, 4 regexes, a Lark grammar, 3 unconstrained."""
    out = []
    for s, p in zip(SCHEMAS, SCHEMA_PROMPTS):
        out.append({"kind": "json_schema", "constraint": s, "user": p, "system": schema_system(s)})
    for r, p in REGEXES:
        out.append({"kind": "regex", "constraint": r, "user": p, "system": None})
    out[-1] = {"kind": "grammar", "constraint": LARK_GRAMMAR, "user": "Greet someone.", "system": None}
    for p in UNCONSTRAINED:
        out.append({"kind": None, "constraint": None, "user": p, "system": None})
    assert len(out) == 16
    return out


def extra_args(case: dict) -> dict | None:
    if case["kind"] is None:
        return None
    c = case["constraint"]
    if case["kind"] == "json_schema":
        return {"json_schema": json.dumps(c)}
    if case["kind"] == "grammar":
        return {"grammar": c, "grammar_syntax": "lark"}
    return {case["kind"]: c}


def check_output(case: dict, text: str) -> None:
    """Raise AssertionError when ``text`` is not in the case's language."""
    kind, c = case["kind"], case["constraint"]
    if kind == "json_schema":
        import jsonschema

        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise AssertionError(f"not JSON: {text!r}: {e}") from e
        v = jsonschema.Draft202012Validator(c, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        errors = [e.message for e in v.iter_errors(value)]
        assert not errors, f"{text!r} violates the schema: {errors}"
    elif kind == "regex":
        assert re.fullmatch(c, text), f"{text!r} does not match {c!r}"
    elif kind == "grammar":
        import lark

        lark.Lark(c, start="start", parser="earley", lexer="dynamic_complete").parse(text)
