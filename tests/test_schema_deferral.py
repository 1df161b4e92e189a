"""Member values and array elements built when first reached (constrain.schema_deferral): what is
proven deferrable, and that building later changes nothing a compile reports or accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

import constrain
from constrain import json_schema
from constrain.schema_deferral import DECLARED_ORDER_NOTE, STRICT_PROPERTIES_NOTE
from constrain.terms import LAZY_K, TermStore
from constrain.vocab import Vocabulary

ROOT = Path(__file__).resolve().parent.parent
BENCH = next((p for p in [ROOT.parent / "shared" / "jsonschemabench", Path("/work/shared/jsonschemabench")]
              if p.is_dir()), None)
ANY_ORDER = {"strict_properties": False, "property_order": "any"}


def notes(schema, sub, **options):
    """Deferral.notes of ``sub`` (a JSON pointer into ``schema``), as a compiler of ``schema`` sees it."""
    return notes_and_warnings(schema, sub, **options)[0]


def notes_and_warnings(schema, sub, **options):
    """notes(), and the warnings of the parts built now to prove it."""
    compiler = json_schema._SchemaCompiler(schema, TermStore(), **options)
    node = compiler.root
    for part in sub.split("/")[1:]:
        node = node[int(part) if isinstance(node, list) else part]
    return compiler.deferral().notes(node, "#" + sub), compiler.warnings


OBJECT = {"type": "object", "required": ["a"],
          "properties": {"a": {"type": "string", "format": "date"},
                         "b": {"type": "array", "items": {"enum": ["x", 1, None]}, "minItems": 1},
                         "c": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
                         "d": {"anyOf": [{"type": "boolean"}, {"$ref": "#/$defs/leaf"}]}}}
DEFS = {"leaf": {"type": "object", "additionalProperties": {"type": "null"}}}


def test_proven_schemas_and_their_warnings():
    root = {"properties": {"o": OBJECT}, "$defs": DEFS}
    assert notes(root, "/properties/o", **ANY_ORDER) == frozenset()
    # strict_properties and declaration order add their warnings, known without building
    assert notes(root, "/properties/o") == {STRICT_PROPERTIES_NOTE, DECLARED_ORDER_NOTE}
    assert notes(root, "/properties/o", strict_properties=False) == {DECLARED_ORDER_NOTE}
    bounded = {"properties": {"n": {"type": ["integer", "null"], "exclusiveMinimum": 1, "maximum": 2}}}
    assert notes(bounded, "/properties/n") == {json_schema.BOUNDED_NUMBERS_NOTE}
    one = {"properties": {"o": {"properties": {"a": {}}}}}
    assert notes(one, "/properties/o", strict_properties=False) == {DECLARED_ORDER_NOTE}  # a and extras
    assert notes(one, "/properties/o", property_order="any") == {STRICT_PROPERTIES_NOTE}
    only_patterns = {"properties": {"o": {"type": "object", "properties": {"a": {}}, "additionalProperties": False,
                                          "patternProperties": {"^x_": {}}}}}
    assert notes(only_patterns, "/properties/o", strict_properties=False) == {DECLARED_ORDER_NOTE}  # a and x_...


def test_patterns_that_no_key_shares_are_proven():
    # each key is of one pattern at most (proven by a search), and no declared name is of any:
    # every member's value is a schema of the document, not a merged copy
    sub = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}},
           "patternProperties": {"^batch_jobs$": OBJECT, "^batch_exporters$": {"type": "integer", "minimum": 1},
                                 "^(title|description)_[a-z]{2}$": {"type": "string"}},
           "additionalProperties": {"type": "null"}}
    root = {"properties": {"s": sub}, "$defs": DEFS}
    assert notes(root, "/properties/s", **ANY_ORDER) == {json_schema.BOUNDED_NUMBERS_NOTE}


def test_an_all_of_is_proven_as_the_schema_it_merges_into():
    sub = {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}},
                     {"$ref": "#/$defs/b"}, {"required": ["a"], "properties": {"a": {"maxLength": 3}}}]}
    root = {"properties": {"s": sub}, "$defs": {"b": {"properties": {"b": {"type": "null"}}}}}
    assert notes(root, "/properties/s", **ANY_ORDER) == frozenset()
    # lenient: a later build would not find the merged parts built now (warnings name paths)
    assert notes(root, "/properties/s", lenient=True, **ANY_ORDER) is None
    # where it merges into false (a is a string and, as an undeclared member of the other, null)
    root["$defs"]["b"]["additionalProperties"] = {"type": "null"}
    assert notes(root, "/properties/s", **ANY_ORDER) is None


@pytest.mark.parametrize("sub", [
    {"type": "string", "pattern": "^a"},  # may be refused, or empty
    {"type": "integer", "minimum": 3, "maximum": 2},  # empty
    {"type": "integer", "exclusiveMinimum": 2, "maximum": 2.5},  # no integer between
    {"type": "number", "minimum": 0, "exclusiveMaximum": 0.5},  # close bounds: not proven
    {"type": "integer", "multipleOf": 3},  # a warning with a digit budget, or a refusal
    {"type": "string", "minLength": 3, "maxLength": 2},  # empty
    {"type": "integer", "enum": ["a", "b"]},  # no value kept: empty
    {"type": "object", "properties": {"a": False}, "required": ["a"]},
    {"type": "object", "required": ["a"], "additionalProperties": False},
    {"type": "string", "format": "uuid"},  # a subset format: a warning
    {"type": "string", "format": "date", "maxLength": 5},  # lengths a format may not meet
    {"oneOf": [{"type": "string"}, {"minLength": 1}]},  # overlapping branches need exclusions
    {"type": "array", "uniqueItems": True},
    {"enum": [{"k": 1}]},
    {"$ref": "#/$defs/tree"},  # recursive: a grammar hole
    {"type": "object", "patternProperties": {"^a": {}, "b$": {}}},  # "ab": a copy merging both
    {"type": "object", "properties": {"ab": {}}, "patternProperties": {"^a": {}}},  # "ab" merges both
    {"type": "object", "required": ["ab"], "patternProperties": {"^a": {"type": "string"}}},
    {"type": "object", "patternProperties": {"(?<=ab)c": {}}},  # refused where compiled
    {"type": "object", "patternProperties": {"^a": {"type": "string", "pattern": "^a", "maxLength": 5}}},
    {"allOf": [{"type": "string", "pattern": "^a"}, {"type": "string"}]},  # a part is not proven
    {"allOf": [{"type": "string"}, {"type": "integer"}]},  # merges into false
    {"allOf": [{"type": "array", "contains": {"type": "string"}}, {"contains": {"type": "integer"}}]},  # apart
])
def test_unproven_schemas_are_built_at_once(sub):
    root = {"properties": {"s": sub},
            "$defs": {"tree": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/tree"}}}}}}
    assert notes(root, "/properties/s", **ANY_ORDER) is None


def test_unproven_parts_of_a_deferred_value_are_built_now():
    # a constant object of 5 keys: written in its key order, a warning (not proven), and built
    # now: its term has no AND/NOT, so it is nonempty by its structure
    sub = {"type": "object", "properties": {"deep": {"properties": {"k": {"const": dict.fromkeys("abcde", 1)}}}}}
    root = {"properties": {"s": sub}}
    proven, warnings = notes_and_warnings(root, "/properties/s", **ANY_ORDER)
    assert proven == frozenset()
    assert any("constants" in w for w in warnings)  # recorded at compile time, by the part built now
    # a part whose emptiness would need a search (AND/NOT) keeps its holder from waiting
    searched = {"type": "object", "properties": {"p": {"type": "string", "pattern": "^a", "maxLength": 5}}}
    assert notes({"properties": {"s": searched}}, "/properties/s", **ANY_ORDER) is None


def deferred_terms(grammar) -> int:
    store = grammar.store
    return sum(1 for node in store.nodes if node[0] == LAZY_K and node[1][0] == "deferred")


def without_paths(warning: str) -> str:
    """A subschema reached along two paths is reported at the one compiled first, which building
    parts earlier may change (both are pointers to it)."""
    return re.sub(r" at #[^:]*", "", warning)


def compile_both(compiler, schema, options, monkeypatch):
    """The schema compiled with deferral and without: (grammar or None, what it reported) each."""
    out = []
    for defer in (True, False):
        monkeypatch.setattr(json_schema._SchemaCompiler, "defer", defer)
        try:
            grammar = compiler.compile_json_schema(schema, **options)
            out.append((grammar, sorted(without_paths(w) for w in grammar.warnings)))
        except constrain.UnsupportedSchemaError as exc:
            out.append((None, ("UnsupportedSchemaError", exc.keyword, without_paths(exc.detail))))
        except constrain.ConstrainError as exc:
            out.append((None, (type(exc).__name__, str(exc))))
    return out


def check_same(compiler, schema, instances, options, monkeypatch, *, validator_too: bool = True) -> int:
    """Deferred and eager compiles report the same and accept the same texts (the validator's
    verdicts too, unless not ``validator_too``); returns how many values were deferred."""
    (lazy, lazy_report), (eager, eager_report) = compile_both(compiler, schema, options, monkeypatch)
    assert lazy_report == eager_report
    if lazy is None:
        return 0
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for instance in instances:
        text = json.dumps(instance, ensure_ascii=False).encode()  # (\\u escapes only with unicode_escapes)
        verdicts = []
        for grammar in (lazy, eager):
            state = grammar.advance(grammar.initial_state(), text)
            verdicts.append(state is not None and grammar.is_accepting(state))
        assert verdicts[0] == verdicts[1], (schema, instance)
        assert not validator_too or verdicts[0] == validator.is_valid(instance), (schema, instance)
    return deferred_terms(lazy)  # (a value built while matching that warns raises: see note())


@pytest.fixture(scope="module")
def byte_compiler():
    vocab = Vocabulary([bytes([i]) for i in range(256)] + [None], eos_token_ids=[256])
    return constrain.Compiler(vocab, cache_size=0)


@pytest.mark.parametrize("options", [ANY_ORDER, {}, {"lenient": True}])
def test_deferred_and_eager_compiles_agree(byte_compiler, options, monkeypatch):
    schema = {"type": "object", "properties": {"o": OBJECT, "n": {"type": "integer", "minimum": 3}},
              "required": ["o"], "$defs": DEFS}
    instances = [
        {"o": {"a": "2024-01-31"}},
        {"o": {"a": "2024-01-31", "b": ["x", 1], "c": 5, "d": {"z": None}}, "n": 4},
        {"o": {"a": "2024-02-30"}},  # no such date
        {"o": {"a": "2024-01-31", "b": []}},  # minItems
        {"o": {"a": "2024-01-31", "c": 1.5}},
        {"o": {"a": "2024-01-31", "d": {"z": 1}}},
        {"o": {}},
        {"n": 2, "o": {"a": "2024-01-31"}},
    ]
    assert check_same(byte_compiler, schema, instances, options, monkeypatch) > 0


@pytest.mark.parametrize("options", [ANY_ORDER, {}, {"lenient": True}])
def test_deferred_patterns_and_merged_all_of_agree(byte_compiler, options, monkeypatch):
    tagged = {"type": "object", "properties": {"id": {"type": "integer"}},
              "patternProperties": {"^title_[a-z]{2}$": {"type": "string", "maxLength": 4},
                                    "^n_": {"allOf": [{"type": "integer"}, {"maximum": 9}]}},
              "additionalProperties": False}
    merged = {"allOf": [{"type": "object", "properties": {"k": {"enum": [1, 2, "x"]}}},
                        {"properties": {"k": {"type": "integer"}, "m": tagged}, "required": ["k"]}]}
    schema = {"type": "object", "properties": {"t": tagged, "m": merged}}
    instances = [
        {"t": {"id": 1, "title_en": "abc", "n_1": 9}, "m": {"k": 2, "m": {"title_fr": ""}}},
        {"t": {"title_en": "abcde"}},  # maxLength
        {"t": {"title_e": "a"}},  # no pattern, and no additional member
        {"t": {"n_": 10}},
        {"t": {"n_x": 1.5}},
        {"m": {"k": "x"}},  # not an integer
        {"m": {"m": {}}},  # k is required
        {"m": {"k": 1, "m": {"id": "a"}}},
    ]
    # (strict_properties, the default, generates no undeclared member: a subset of the validator's)
    deferred = check_same(byte_compiler, schema, instances, options, monkeypatch, validator_too=options is ANY_ORDER)
    assert deferred >= 2  # t, and m (an allOf merged) or, where lenient, the one inside m


def bench_cases(step: int):
    if BENCH is None:
        pytest.skip("../shared/jsonschemabench not found (set it up beside this checkout)")
    files = sorted(p for d in ("maskbench", "maskbench_extra") for p in (BENCH / d).glob("*.json"))
    return [json.loads(p.read_text()) for p in files[::step]]


def check_bench(compiler, step: int, options, monkeypatch) -> None:
    deferred = 0
    for case in bench_cases(step):
        # (agreement with the validator is MaskBench's measure: here, deferral changes no verdict)
        deferred += check_same(compiler, case["schema"], [t["data"] for t in case["tests"]], options, monkeypatch,
                               validator_too=False)
    assert deferred > 0  # the corpus's large documents do defer


def test_deferred_and_eager_agree_on_jsonschemabench_sample(byte_compiler, monkeypatch):
    check_bench(byte_compiler, 40, ANY_ORDER, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("options", [ANY_ORDER, {}])
def test_deferred_and_eager_agree_on_jsonschemabench(byte_compiler, options, monkeypatch):
    check_bench(byte_compiler, 1, options, monkeypatch)
