"""compile_json_schema against ``jsonschema.Draft202012Validator`` with ``FormatChecker()``.

Instances are serialized with ``json.dumps`` (default separators), compact separators and
``indent=2`` (each also with ``ensure_ascii=False``), fed token by token, and the matcher's verdict
(every token accepted and the text a complete match) is compared with the validator's:

- an invalid instance must ALWAYS be rejected (soundness has no exceptions);
- a valid instance must be accepted whenever it is in the form we generate (properties in
  declaration order, no extra properties,
  no ``\\uXXXX`` escapes of printable characters, integers without exponents, canonical uuids).
  Valid instances outside those documented narrowings are only fed, not judged.

Schemas come from a hand-written list covering each supported keyword, from a hypothesis
strategy over the supported keywords, and from the JSON Schema Test Suite.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError as JsonSchemaSchemaError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

import constrain
from constrain.cfg.engine import CompiledCFG
from constrain.formats import FORMAT_PATTERNS, SUBSET_FORMATS
from tests.tokenizers import TokenizerUnderTest

SUITE = Path("/work/shared/json-schema-test-suite/tests/draft2020-12")
REMOTES = SUITE.parent.parent / "remotes"  # served at http://localhost:1234/ for the suite's refs
FORMAT_CHECKER = FormatChecker()


def validator(schema, resources=None) -> Draft202012Validator:
    registry = Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT202012)) for uri, doc in (resources or {}).items())
    return Draft202012Validator(schema, format_checker=FORMAT_CHECKER, registry=registry)


@functools.cache
def suite_remotes() -> dict:
    if not REMOTES.is_dir():
        return {}
    return {f"http://localhost:1234/{p.relative_to(REMOTES).as_posix()}": json.loads(p.read_text())
            for p in sorted(REMOTES.rglob("*.json"))}


# --------------------------------------------------------------------------------------------------
# Tokenizers, tokenizations, the matcher's verdict
# --------------------------------------------------------------------------------------------------


class Tok(TokenizerUnderTest):
    def __init__(self, name: str):
        super().__init__(name)
        self.has_closer = np.zeros(self.vocab.size, dtype=bool)
        for i, b in enumerate(self.vocab.token_bytes):
            if b and any(ch in b for ch in b'"]}'):
                self.has_closer[i] = True


@functools.lru_cache(maxsize=None)
def get_tok(name: str) -> Tok:
    return Tok(name)


def bit(row: np.ndarray, t: int) -> bool:
    return bool((int(row[t // 32]) >> (t % 32)) & 1)


def matcher_verdict(tok: Tok, grammar, ids: list[int], *, full_check: bool = False) -> bool:
    """Feed ``ids``; True iff every token is accepted and the text is a complete match.

    Checks on the way: a token is accepted exactly when its mask bit is set, a rejected token
    leaves the matcher unchanged, and (``full_check``) the mask equals ``allowed_token_ids`` with
    EOS exactly when accepting and no other special token.
    """
    m = grammar.matcher()
    row = constrain.allocate_token_bitmask(1, tok.vocab.size)[0]
    for t in ids:
        m.fill_bitmask(row)
        if full_check:
            allowed = m.allowed_token_ids()
            assert np.array_equal(np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little")), allowed)
            specials = set(allowed[tok.is_special[allowed]].tolist())
            assert specials == ({tok.eos} if m.is_accepting() else set())
        in_mask = bit(row, t)
        before = (m.num_accepted(), m.state)
        ok = m.accept_token(t)
        assert ok == in_mask
        if not ok:
            assert (m.num_accepted(), m.state) == before
            return False
    m.fill_bitmask(row)
    assert bit(row, tok.eos) == m.is_accepting()
    if m.is_accepting():
        assert m.accept_token(tok.eos) and m.is_terminated()
    return m.is_terminated()


def random_walk(tok: Tok, grammar, rnd: random.Random, max_steps: int = 150) -> bytes | None:
    """Sample a text from the grammar's masks: random allowed tokens (often ones that close a string or
    container, so that walks end), EOS now and then when allowed. None if it did not end in time."""
    m = grammar.matcher()
    out = []
    for _ in range(max_steps):
        allowed = m.allowed_token_ids()
        assert len(allowed), f"dead end after {b''.join(out)!r}: nothing allowed, not even EOS"
        if m.is_accepting() and rnd.random() < 0.4:
            t = tok.eos
        else:
            pool = allowed[tok.has_closer[allowed]] if rnd.random() < 0.35 else allowed
            if not len(pool):
                pool = allowed
            t = int(pool[rnd.randrange(len(pool))])
        assert m.accept_token(t), t
        if t == tok.eos:
            assert m.is_terminated()
            return b"".join(out)
        out.append(tok.vocab.token_bytes[t])
    return None


def check_walks(tok: Tok, grammar, schema, rnd: random.Random, n: int) -> int:
    """Every text sampled from the masks is JSON whose value the validator accepts (soundness of
    the masks themselves, beyond json.dumps forms). Returns how many walks ended."""
    ended = 0
    v = validator(schema)
    for _ in range(n):
        data = random_walk(tok, grammar, rnd)
        if data is None:
            continue
        ended += 1
        text = data.decode("utf-8")  # must be valid UTF-8
        value = json.loads(text)
        assert v.is_valid(value), f"sampled text invalid: schema={json.dumps(schema)} text={text!r}"
    return ended


def serializations(instance, *, ascii_too: bool = True) -> list[tuple[str, bool]]:
    """(text, in our generated form as text) for the three layouts, raw UTF-8 and (maybe) ASCII-escaped."""
    out = []
    has_non_ascii = not json.dumps(instance).isascii() or json.dumps(instance) != json.dumps(instance, ensure_ascii=False)
    for kw in ({}, {"separators": (",", ":")}, {"indent": 2}):
        out.append((json.dumps(instance, ensure_ascii=False, **kw), True))
        if ascii_too and has_non_ascii:
            out.append((json.dumps(instance, **kw), False))  # \uXXXX escapes: outside our form
    return out


# --------------------------------------------------------------------------------------------------
# Our generated form (the documented narrowings), decided conservatively: False when unsure
# --------------------------------------------------------------------------------------------------


class Unknown(Exception):
    pass


def resolve(root, ref: str):
    if not ref.startswith("#"):
        raise Unknown(ref)
    frag = ref[1:]
    if frag and not frag.startswith("/"):
        found = find_anchor(root, frag)
        if found is None:
            raise Unknown(ref)
        return found
    node = root
    for part in frag.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit():
            node = node[int(part)]
        else:
            raise Unknown(ref)
    return node


def find_anchor(node, name: str):
    if isinstance(node, dict):
        if node.get("$anchor") == name:
            return node
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find_anchor(child, name)
        if found is not None:
            return found
    return None


# Keywords whose effect on our generated form in_form() knows; any other validation keyword makes
# it answer "not known to be in form" (only soundness is then checked).
KNOWN_KEYWORDS = {"type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems",
                  "maxItems", "minLength", "maxLength", "pattern", "format", "$ref"}
VALIDATION_KEYWORDS = set(Draft202012Validator.VALIDATORS)


def type_of(x) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, int):
        return "integer"
    if isinstance(x, float):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    return "object"


def in_any(x) -> bool:
    if isinstance(x, (list, dict)):
        return all(map(in_any, x if isinstance(x, list) else x.values()))
    return number_form_ok(x, "number") if type_of(x) in ("integer", "number") else True


def number_form_ok(x, as_type: str) -> bool:
    text = json.dumps(x)
    if as_type == "integer":
        return re.fullmatch(r"-?(0|[1-9][0-9]*)(\.0+)?", text) is not None
    return re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", text) is not None


def same_form(v, x) -> bool:
    """``x`` is written exactly as the enum/const value ``v`` would be (same key order, etc.)."""
    if isinstance(v, dict):
        return isinstance(x, dict) and list(v) == list(x) and all(same_form(v[k], x[k]) for k in v)
    if isinstance(v, list):
        return isinstance(x, list) and len(v) == len(x) and all(same_form(a, b) for a, b in zip(v, x))
    if type_of(v) in ("integer", "number"):
        if type_of(x) not in ("integer", "number") or v != x:
            return False
        forms = {json.dumps(v)}
        if isinstance(v, int):
            forms.add(f"{v}.0")
        elif math.isfinite(v) and v.is_integer() and abs(v) < 1e16:
            forms.add(str(int(v)))
        return json.dumps(x) in forms
    return type_of(v) == type_of(x) and v == x


def in_form(schema, x, root) -> bool:
    if '"$id"' in json.dumps(root):  # resolve() knows no base URIs
        return False
    try:
        return _in_form(schema, x, root, 0)
    except (Unknown, RecursionError):
        return False


def _in_form(schema, x, root, refs: int) -> bool:
    if schema is True:
        return in_any(x)
    if schema is False:
        return False
    unknown = (set(schema) & VALIDATION_KEYWORDS) - KNOWN_KEYWORDS
    if unknown or (schema.get("format") in SUBSET_FORMATS and schema.get("format") != "uuid"):
        raise Unknown(unknown)
    if "$ref" in schema:
        if refs > 20 or set(schema) & VALIDATION_KEYWORDS != {"$ref"}:
            raise Unknown("deep refs, or $ref beside other keywords")
        return _in_form(resolve(root, schema["$ref"]), x, root, refs + 1)
    if "enum" in schema or "const" in schema:
        values = list(schema.get("enum", [])) if "enum" in schema else [schema["const"]]
        return any(same_form(v, x) for v in values)
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or ["null", "boolean", "object", "array", "number",
                                                                    "string", "integer"])
    t = type_of(x)
    if t == "integer" and "integer" not in types and "number" in types:
        t = "number"
    if t == "number" and "number" not in types and "integer" in types and float(x).is_integer():
        t = "integer"
    if t not in types:
        return False
    if t in ("integer", "number"):
        return number_form_ok(x, "number" if "number" in types else t)
    if t == "string":
        if schema.get("format") == "uuid":
            return re.fullmatch(FORMAT_PATTERNS["uuid"], x) is not None
        return True
    if t == "array":
        items = schema.get("items", True)
        return all(_in_form(items, v, root, refs) for v in x)
    if t == "object":
        props = dict(schema.get("properties", {}))
        additional = schema.get("additionalProperties", True)
        for name in schema.get("required", []):
            if name not in props:
                props[name] = additional
        if not props and additional is not False:
            return all(_in_form(additional, v, root, refs) for v in x.values())
        order = list(props)
        pos = [order.index(k) if k in props else -1 for k in x]
        if -1 in pos or pos != sorted(pos):
            return False
        return all(_in_form(props[k], v, root, refs) for k, v in x.items())
    return True


# --------------------------------------------------------------------------------------------------
# The check every test uses
# --------------------------------------------------------------------------------------------------


def check_instance(tok: Tok, grammar, schema, instance, *, rnd: random.Random | None = None,
                   layouts=None, full_check: bool = False, resources=None) -> None:
    valid = validator(schema, resources).is_valid(instance)
    form = in_form(schema, instance, schema)
    for text, text_form in layouts or serializations(instance):
        id_lists = [tok.canonical(text)]
        if rnd is not None:
            id_lists.append(tok.random_tokens(text.encode(), rnd))
        for ids in id_lists:
            got = matcher_verdict(tok, grammar, ids, full_check=full_check)
            if not valid:
                assert not got, f"invalid instance accepted: schema={json.dumps(schema)} text={text!r}"
            elif form and text_form:
                assert got, f"valid instance rejected: schema={json.dumps(schema)} text={text!r}"


# --------------------------------------------------------------------------------------------------
# Instance generation and mutation
# --------------------------------------------------------------------------------------------------

STRING_POOL = ["", "a", "ab", "abc", "b", "x", "y", "xy", "123", "é", "aé", "abcd", "cd", "abab", "zzzz", "a b",
               "Ab", "a\n", '1"2\\3', "\t", "😀", "a/b", "日本語", "xxxxxxxxxxxxx", "\x01", "ABC-12"]
FORMAT_POOL = {
    "date": ["2024-02-29", "2023-02-29", "1999-12-31", "2024-13-01", "0000-01-01"],
    "date-time": ["2024-01-01T12:00:00Z", "2024-01-01t12:00:00.5+01:00", "2024-01-01 12:00:00Z",
                  "2023-02-29T00:00:00Z"],
    "time": ["12:34:56", "12:34:56Z", "1:2:3", "25:00:00", "23:59:60", "12:34:56.5+01:00"],
    "hostname": ["example.com", "a", "-a.com", "a..b", "xn--bcher-kva.example", "a" * 64, "EXAMPLE.com."],
    "json-pointer": ["", "/a", "/a~1b/0", "a", "/~2", "/"],
    "uri": ["http://example.com/a?b#c", "urn:isbn:123", "relative/path", "http://[::1]/", "ht tp://x"],
    "email": ["a@b", "joe@example.com", "nope", "@"],
    "ipv4": ["127.0.0.1", "256.0.0.1", "01.2.3.4", "1.2.3"],
    "uuid": ["12345678-1234-1234-1234-123456789abc", "12345678-1234-1234-1234-123456789ABC",
             "12345678-1234-1234-1234-123456789ab"],
}


class NoInstance(Exception):
    pass


def gen_any(rnd: random.Random, depth: int):
    kinds = ["null", "bool", "int", "float", "str"] + (["list", "dict"] if depth > 0 else [])
    k = rnd.choice(kinds)
    if k == "null":
        return None
    if k == "bool":
        return rnd.random() < 0.5
    if k == "int":
        return rnd.randint(-50, 50)
    if k == "float":
        return rnd.choice([0.5, -2.25, 1e-05, 3.0, 1e20])
    if k == "str":
        return rnd.choice(STRING_POOL)
    if k == "list":
        return [gen_any(rnd, depth - 1) for _ in range(rnd.randint(0, 2))]
    return {rnd.choice(["k", "key", "é"]) + str(i): gen_any(rnd, depth - 1) for i in range(rnd.randint(0, 2))}


def gen_instance(schema, rnd: random.Random, root, depth: int = 0):
    """A random instance meant to be valid and in our form (the validator has the last word)."""
    if depth > 12:
        raise NoInstance
    if schema is True:
        return gen_any(rnd, 2)
    if schema is False:
        raise NoInstance
    if "$ref" in schema:
        return gen_instance(resolve(root, schema["$ref"]), rnd, root, depth + 1)
    if "enum" in schema or "const" in schema:
        values = list(schema["enum"]) if "enum" in schema else [schema["const"]]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        if "const" in schema and "enum" in schema:
            values = [schema["const"]]
        values = [v for v in values if validator(rest).is_valid(v)]
        if not values:
            raise NoInstance
        return copy.deepcopy(rnd.choice(values))
    types = schema.get("type", ["null", "boolean", "integer", "number", "string", "array", "object"])
    t = rnd.choice([types] if isinstance(types, str) else types)
    if t == "null":
        return None
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "integer":
        return rnd.choice([0, 1, -7, 42, 123456789])
    if t == "number":
        return rnd.choice([0, 2.5, -0.125, 1e-05, 7])
    if t == "string":
        return gen_string(schema, rnd)
    if t == "array":
        items = schema.get("items", True)
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", lo + 3)
        if hi < lo:
            raise NoInstance
        n = rnd.randint(lo, min(hi, lo + 3))
        return [gen_instance(items, rnd, root, depth + 1) for _ in range(n)]
    props = dict(schema.get("properties", {}))
    required = schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    for name in required:
        if name not in props:
            if additional is False:
                raise NoInstance
            props[name] = additional
    out = {}
    for name, sub in props.items():
        if name in required or rnd.random() < 0.6:
            try:
                out[name] = gen_instance(sub, rnd, root, depth + 1)
            except NoInstance:
                if name in required:
                    raise
    return out


def gen_string(schema, rnd: random.Random) -> str:
    fmt = schema.get("format")
    pool = list(FORMAT_POOL.get(fmt, [])) or list(STRING_POOL)
    lo, hi = schema.get("minLength", 0), schema.get("maxLength")
    rnd.shuffle(pool)
    check = validator({k: v for k, v in schema.items() if k in ("minLength", "maxLength", "pattern", "format")})
    for s in pool:
        if check.is_valid(s):
            return s
    # lengths alone: pad or cut something from the pool
    s = (rnd.choice(STRING_POOL) + "x" * lo)[: hi if hi is not None else None]
    return s


def sites(x, path=()):
    yield path, x
    if isinstance(x, list):
        for i, v in enumerate(x):
            yield from sites(v, path + (i,))
    elif isinstance(x, dict):
        for k, v in x.items():
            yield from sites(v, path + (k,))


def replace_at(x, path, new):
    if not path:
        return new
    x = copy.deepcopy(x)
    node = x
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = new
    return x


def mutate(instance, rnd: random.Random):
    """A small random edit: wrong type, dropped or extra key, longer/shorter string or array, ..."""
    path, node = rnd.choice(list(sites(instance)))
    ops = ["type"]
    if isinstance(node, dict):
        ops += ["extra", "extra"] + (["drop", "drop", "reorder"] if node else [])
    if isinstance(node, list):
        ops += ["append", "append"] + (["pop"] if node else [])
    if isinstance(node, str):
        ops += ["longer", "shorter", "char"]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        ops += ["fraction", "string"]
    op = rnd.choice(ops)
    if op == "type":
        new = rnd.choice([None, True, 3, 2.5, "s", [], {}, [1], {"a": 1}])
    elif op == "extra":
        new = dict(node)
        new[rnd.choice(["zz", "extra", "a", "é"])] = rnd.choice([1, "x", None])
    elif op == "drop":
        new = dict(node)
        del new[rnd.choice(list(new))]
    elif op == "reorder":
        items = list(node.items())
        rnd.shuffle(items)
        new = dict(items)
    elif op == "append":
        new = node + [copy.deepcopy(node[0]) if node and rnd.random() < 0.7 else rnd.choice([1, "x", None])]
    elif op == "pop":
        new = node[:-1]
    elif op == "longer":
        new = node + rnd.choice(["x", "xxxxxxxxxx", "é", "\n"])
    elif op == "shorter":
        new = node[:-1]
    elif op == "char":
        new = node + rnd.choice(['"', "\\", "\x00", "😀"])
    elif op == "fraction":
        new = node + 0.5 if abs(node) < 1e15 else node * 10
    else:
        new = str(node)
    return replace_at(instance, path, new)


# --------------------------------------------------------------------------------------------------
# Hand-written schemas, one or more per keyword
# --------------------------------------------------------------------------------------------------

HAND = [
    # (schema, instances); every instance is judged by the validator
    ({"type": "null"}, [None, 0, False, "null"]),
    ({"type": "boolean"}, [True, False, None, 1]),
    ({"type": "integer"}, [0, -1, 123456789012345678901234567890, 1.0, -3.0, 1.5, "1", True]),
    ({"type": "number"}, [0, 1.5, -2.25e-7, 1e300, -0.0, 3, "3", None]),
    ({"type": "string"}, ["", "hi", 'q"uote', "back\\slash", "\x00\x1f\x7f", "é😀", "/", 3]),
    ({"type": ["string", "null"]}, ["a", None, 1]),
    ({"type": ["integer", "number"]}, [1, 1.5, "1"]),
    ({"type": ["integer", "boolean"]}, [1, 2.0, True, 1.5]),
    ({}, [None, 1, "x", [1, [2, [3]]], {"a": {"b": [None]}}, [[[[[]]]]]]),
    (True, [None, 1, {"a": [1, {"b": 2}]}]),
    (False, [None, 1, {}, []]),
    ({"enum": [1, "a", None, [1, 2], {"k": "v"}, True, 2.5]},
     [1, 1.0, "a", None, [1, 2], [1.0, 2], {"k": "v"}, True, 2.5, 2, "b", [2, 1], {"k": "w"}, False, 0]),
    ({"enum": [0, False]}, [0, False, 0.0, None]),
    ({"enum": ["a", "b", 3], "type": "string"}, ["a", "b", 3]),
    ({"enum": ["short", "longer"], "maxLength": 5}, ["short", "longer"]),
    ({"const": {"a": [1, "x"], "b": None}}, [{"a": [1, "x"], "b": None}, {"a": [1, "x"]}, {"a": [1, "y"], "b": None}]),
    ({"const": "é\n\"😀"}, ["é\n\"😀", "é\n"]),
    ({"const": 3, "enum": [1, 3]}, [3, 1]),
    ({"const": 3, "enum": [1, 2]}, [3, 1]),
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
     [{}, {"a": 1}, {"b": "x"}, {"a": 1, "b": "x"}, {"b": "x", "a": 1}, {"a": "x"}, {"a": 1, "c": 2}, [], None]),
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["b"]},
     [{"b": ""}, {"a": 1, "b": ""}, {"a": 1}, {}]),
    ({"type": "object", "required": ["x", "y"]}, [{"x": 1, "y": [2]}, {"x": 1}, {"y": 1, "x": 2}]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a", "z"]},
     [{"a": 1, "z": None}, {"a": 1}, {"z": 1}]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["z"], "additionalProperties": False},
     [{"a": 1}, {"z": 1}, {}]),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False},
     [{}, {"a": 1}, {"a": 1, "b": 2}, {"b": 2}]),
    ({"type": "object", "additionalProperties": {"type": "integer"}}, [{}, {"a": 1, "b": 2}, {"a": "x"}]),
    ({"type": "object", "additionalProperties": False}, [{}, {"a": 1}]),
    ({"type": "object", "properties": {"a": False}}, [{}, {"a": 1}]),
    ({"type": "object", "properties": {"a": False}, "required": ["a"]}, [{}, {"a": 1}]),
    ({"type": "object", "properties": {"é \"/~q": {"const": 1}}}, [{"é \"/~q": 1}, {"é \"/~q": 2}]),
    ({"type": "array", "items": {"type": "integer"}}, [[], [1, 2, 3], [1, "2"], {}, [1.0]]),
    ({"type": "array", "items": False}, [[], [1]]),
    ({"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "boolean"}},
     [[True], [True, False], [True, False, True], [True] * 4, [1, 2]]),
    ({"type": "array", "minItems": 1}, [[], [1], [[[]]]]),
    ({"type": "array", "maxItems": 0}, [[], [1]]),
    ({"type": "array", "minItems": 3, "maxItems": 2}, [[], [1, 2]]),
    ({"type": "array", "items": {"type": "array", "items": {"type": "string", "maxLength": 1}}},
     [[["a", "b"], []], [["ab"]], [[1]]]),
    ({"type": "string", "minLength": 2, "maxLength": 3}, ["a", "ab", "abc", "abcd", "éé", "😀😀😀", "😀😀😀😀", '""']),
    ({"type": "string", "maxLength": 0}, ["", "a"]),
    ({"type": "string", "minLength": 1}, ["", "\n"]),
    ({"type": "string", "pattern": "^[a-z]+$"}, ["abc", "", "aBc", "abc\n", "ab c"]),
    ({"type": "string", "pattern": "b"}, ["b", "abc", "ac", "\nb\n"]),
    ({"type": "string", "pattern": "^\\d{3}-\\w+$", "maxLength": 6}, ["123-ab", "123-abc", "12-ab", "٣٣٣-é"]),
    ({"type": "string", "pattern": "x$"}, ["x", "ax", "x\n", "x\n\n", "xa"]),
    ({"type": "string", "pattern": "\\\\\"|/"}, ['a\\"b', "a/b", "ab"]),
    ({"pattern": "^a"}, ["abc", "b", 3, None]),
    ({"type": "string", "format": "date"}, ["2024-02-29", "2023-02-29", "2024-1-01", "2024-01-01T00:00:00Z"]),
    ({"type": "string", "format": "date-time"},
     ["2024-01-01T12:00:00Z", "2024-01-01t12:00:00.123+05:30", "2024-01-01T25:00:00Z", "2024-01-01"]),
    ({"type": "string", "format": "email"}, ["a@b.c", "ab", "@"]),
    ({"type": "string", "format": "ipv4"}, ["1.2.3.4", "255.255.255.255", "256.1.1.1", "1.2.3", "01.1.1.1"]),
    ({"type": "string", "format": "uuid"},
     ["12345678-1234-1234-1234-123456789abc", "ABCDEF01-1234-1234-1234-123456789ABC", "12345678123412341234123456789abc",
      "12345678-1234-1234-1234-123456789abz"]),
    ({"type": "string", "format": "no-such-format"}, ["anything"]),
    ({"type": "integer", "minLength": 3, "pattern": "x", "items": False}, [1, "x"]),  # keywords of other types
    ({"$defs": {"pos": {"type": "integer"}}, "type": "object", "properties": {"n": {"$ref": "#/$defs/pos"}}},
     [{"n": 1}, {"n": "x"}]),
    ({"definitions": {"s": {"type": "string", "maxLength": 2}}, "type": "array", "items": {"$ref": "#/definitions/s"}},
     [["ab"], ["abc"]]),
    ({"$defs": {"a": {"$anchor": "thing", "enum": ["p", "q"]}}, "$ref": "#thing"}, ["p", "r"]),
    ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"type": "null"}}, "$ref": "#/$defs/a"}, [None, 0]),
    ({"$defs": {"x~y/z": {"type": "boolean"}}, "$ref": "#/$defs/x~0y~1z"}, [True, 0]),
    ({"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
        "when": {"type": "string", "format": "date"},
        "meta": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
                 "additionalProperties": False}},
      "required": ["name", "meta"], "additionalProperties": False},
     [{"name": "x", "meta": {"ok": True}}, {"name": "x", "tags": ["a", "b"], "when": "2024-01-01", "meta": {"ok": False}},
      {"name": "", "meta": {"ok": True}}, {"name": "x", "tags": ["a", "b", "a"], "meta": {"ok": True}},
      {"name": "x", "meta": {"ok": True, "extra": 1}}, {"name": "x", "meta": {}}, {"meta": {"ok": True}, "name": "x"}]),
]


@pytest.mark.parametrize("case", range(len(HAND)), ids=lambda i: json.dumps(HAND[i][0])[:60])
def test_hand_written_schemas(case):
    schema, instances = HAND[case]
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema(schema)
    rnd = random.Random(case)
    for inst in instances:
        check_instance(tok, grammar, schema, inst, rnd=rnd, full_check=True)
        for _ in range(3):
            check_instance(tok, grammar, schema, mutate(inst, rnd), rnd=rnd)
    if validator(schema).is_valid(instances[0]) or any(validator(schema).is_valid(x) for x in instances):
        check_walks(tok, grammar, schema, rnd, 4)


@pytest.mark.parametrize("case", [0, 5, 11, 19, 32, 38, 50, len(HAND) - 1])
def test_hand_written_schemas_llama(case):
    schema, instances = HAND[case]
    tok = get_tok("llama3.2")
    grammar = tok.compiler.compile_json_schema(schema)
    rnd = random.Random(case)
    for inst in instances:
        check_instance(tok, grammar, schema, inst, rnd=rnd, full_check=True)


def test_valid_instances_are_accepted():
    """The hand-written lists do exercise completeness: count the valid, in-form instances."""
    n = sum(1 for schema, insts in HAND for x in insts
            if validator(schema).is_valid(x) and in_form(schema, x, schema))
    assert n > 80


# Keywords beyond the first subset (bounds, prefixItems, contains, combinators, patternProperties, ...):
# only soundness is asserted here (in_form() does not know them, so valid instances are not judged),
# plus sampling from the masks. A keyword that is refused must be refused with UnsupportedSchemaError.
BEYOND = [
    ({"type":"integer","minimum":3,"maximum":17}, [2,3,17,18,10,-5,3.0,17.5]),
    ({"type":"number","exclusiveMinimum":-1.5,"exclusiveMaximum":2}, [-1.5,-1.49,2,1.999,0,1e-5,-1e-7, 1.9e0]),
    ({"type":"number","minimum":0.1}, [0.1, 0.09999, 1e-1, 0.10000001, 5]),
    ({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":False}, [["a",1],["a"],[],["a",1,2],[1,"a"]]),
    ({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"null"},"minItems":2}, [["a",None],["a"],["a",None,None],["a",1]]),
    ({"type":"array","contains":{"const":5},"minContains":2}, [[5,5],[5],[1,5,2,5],[]]),
    ({"anyOf":[{"type":"string","maxLength":2},{"type":"integer","minimum":10}]}, ["ab","abc",10,9,None]),
    ({"oneOf":[{"type":"string"},{"type":"string","maxLength":1}]}, ["a","ab",""]),
    ({"oneOf":[{"type":"integer"},{"type":"number","minimum":2}]}, [1,2,3,2.5,1.5]),
    ({"allOf":[{"type":"string"},{"minLength":2},{"pattern":"^a"}]}, ["ab","a","ba"]),
    ({"type":"string","not":{"enum":["x","y"]}}, ["x","z","y"]),
    ({"if":{"type":"string"},"then":{"maxLength":1},"else":{"type":"null"}}, ["a","ab",None,1]),
    ({"type":"object","patternProperties":{"^x":{"type":"integer"}},"additionalProperties":False}, [{"x1":1},{"x1":"a"},{"y":1},{}]),
    ({"type":"object","propertyNames":{"maxLength":2},"additionalProperties":{"type":"integer"}}, [{"ab":1},{"abc":1}]),
    ({"type":"object","minProperties":1,"maxProperties":2}, [{},{"a":1},{"a":1,"b":2},{"a":1,"b":2,"c":3}]),
    ({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"patternProperties":{"^b":{"type":"string"}}}, [{"a":1,"b":"x"},{"a":1,"b":1},{"b":"x","a":1},{"a":1,"bb":2,"c":None}]),
    ({"$defs":{"t":{"type":"object","properties":{"c":{"$ref":"#/$defs/t"}},"additionalProperties":False}},"$ref":"#/$defs/t"}, [{},{"c":{}},{"c":{"c":{"d":1}}}]),
    ({"type":"array","uniqueItems":True,"maxItems":1}, [[],[1],[1,1]]),
    ({"$ref":"#/$defs/a","maxLength":2,"$defs":{"a":{"type":"string","minLength":1}}}, ["","a","abc"]),
    ({"type":["integer","string"],"minimum":5,"maxLength":1}, [4,5,"ab","a"]),
    ({"enum":[1,"a",None],"minimum":2}, [1,"a",None]),
    ({"type":"integer","minimum":1e308}, [1,10**309]),
    ({"type":"integer","maximum":-0.5}, [0,-1,-0.0]),
    ({"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":{"type":"string"}}, [{"a":1,"a ":"x"},{"b":"x","a":1},{"a":1,"b":2}]),
    ({"type":"integer","multipleOf":7,"minimum":-50,"maximum":100}, [14,15,-49,105,0,7.0,-0.0,-49.0]),
    ({"type":"number","multipleOf":0.25,"exclusiveMaximum":3}, [0.25,0.3,3,2.75,-1.75,1e0,2.5e-1]),
    ({"multipleOf":2.5}, [5,2.5,7.5,1,"x",-0.0,12.50]),
    ({"type":"integer","multipleOf":1e-8}, [12391239123,1,1.5]),
    ({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{}},"dependentRequired":{"a":["b"],"c":["a","b"]}},
     [{},{"a":1},{"a":1,"b":"x"},{"c":None},{"a":1,"b":"x","c":None},{"b":"x","c":1}]),
    ({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"}},"dependentSchemas":{"a":{"properties":{"b":{"maxLength":1}}},"b":{"required":["a"]}}},
     [{},{"a":1},{"a":1,"b":"x"},{"a":1,"b":"xy"},{"b":"x"}]),
    ({"type":"object","properties":{"a":{"type":"integer"},"b":{}},"minProperties":1,"maxProperties":1}, [{},{"a":1},{"b":[]},{"a":1,"b":2}]),
    ({"type":"array","items":{"type":"integer"},"contains":{"const":1},"minContains":1,"maxContains":2}, [[1],[1,1],[1,1,1],[2],[1,2,1,3]]),
    ({"type":"array","prefixItems":[{"type":"string"}],"contains":{"type":"string"},"maxContains":1}, [["a"],["a","b"],["a",1],[1]]),
    ({"type":"array","items":{"enum":["a","b",1,1.0]},"uniqueItems":True}, [[],["a","b"],["a","a"],[1],[1,"a",1]]),
    ({"type":"array","prefixItems":[{"type":"boolean"}],"items":{"enum":[True,None]},"uniqueItems":True,"minItems":2},
     [[True,None],[False,True,None],[True,True],[True]]),
]


@pytest.mark.parametrize("case", range(len(BEYOND)), ids=lambda i: json.dumps(BEYOND[i][0])[:60])
def test_beyond_first_subset_is_sound(case):
    schema, instances = BEYOND[case]
    tok = get_tok("smollm2")
    try:
        grammar = tok.compiler.compile_json_schema(schema)
    except constrain.UnsupportedSchemaError as exc:
        assert exc.keyword in json.dumps(schema)
        return
    rnd = random.Random(case)
    for x in instances:
        check_instance(tok, grammar, schema, x, rnd=rnd)
        for _ in range(3):
            check_instance(tok, grammar, schema, mutate(x, rnd), rnd=rnd)
    check_walks(tok, grammar, schema, rnd, 6)


# --------------------------------------------------------------------------------------------------
# Whitespace styles
# --------------------------------------------------------------------------------------------------

WS_SCHEMA = {"type": "object", "properties": {"a": {"type": "array", "items": {"type": "integer"}},
                                              "b": {"type": "object", "properties": {"c": {"type": "null"}}}}}
WS_INSTANCE = {"a": [1, 2], "b": {"c": None}}


@pytest.mark.parametrize("style,accepted", [
    ("flexible", {"dumps", "compact", "indent"}),
    ("compact", {"compact"}),
    ("dumps", {"dumps"}),
])
def test_whitespace_styles(style, accepted):
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema(WS_SCHEMA, whitespace=style)
    texts = {"dumps": json.dumps(WS_INSTANCE), "compact": json.dumps(WS_INSTANCE, separators=(",", ":")),
             "indent": json.dumps(WS_INSTANCE, indent=2)}
    for name, text in texts.items():
        assert matcher_verdict(tok, grammar, tok.canonical(text)) == (name in accepted), (style, name)
    # Empty containers too.
    empty = {"a": [], "b": {}}
    for name, kw in (("dumps", {}), ("compact", {"separators": (",", ":")})):
        text = json.dumps(empty, **kw)
        assert matcher_verdict(tok, grammar, tok.canonical(text)) == (name in accepted), (style, text)


def test_flexible_whitespace_is_bounded():
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema({"type": "array", "items": {"type": "integer"}})
    assert matcher_verdict(tok, grammar, tok.canonical("[" + " " * 24 + "1]"))
    assert not matcher_verdict(tok, grammar, tok.canonical("[" + " " * 25 + "1]"))
    m = grammar.matcher()
    assert m.accept_bytes(b"[1" + b"\n" * 24)
    assert not m.accept_bytes(b"\n")
    assert m.accept_bytes(b"]") and m.is_accepting()


def test_whitespace_option_is_checked():
    with pytest.raises(ValueError):
        get_tok("smollm2").compiler.compile_json_schema({"type": "null"}, whitespace="lots")


# --------------------------------------------------------------------------------------------------
# Generated schemas
# --------------------------------------------------------------------------------------------------

PATTERNS = ["^[a-z]+$", "^a", "b$", "[0-9]", "^(ab|cd)*$", "x?y", "é", "^.{2,3}$", "\\d{3}", "^[^\"\\\\]*$", "\\s"]
FORMATS = ["date", "date-time", "time", "email", "ipv4", "uuid", "hostname", "json-pointer", "uri"]


@st.composite
def string_schema(draw):
    s = {"type": "string"}
    if draw(st.booleans()):
        s["minLength"] = draw(st.integers(0, 4))
    if draw(st.booleans()):
        s["maxLength"] = draw(st.integers(s.get("minLength", 0), 8))
    if draw(st.integers(0, 3)) == 0:
        s["pattern"] = draw(st.sampled_from(PATTERNS))
    elif draw(st.integers(0, 4)) == 0:
        s["format"] = draw(st.sampled_from(FORMATS))
    return s


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.5, -1.25, 2.0]),
                         st.text(alphabet="abé\n\"", max_size=3))
json_values = st.recursive(json_scalars, lambda c: st.one_of(st.lists(c, max_size=2),
                                                             st.dictionaries(st.sampled_from("abc"), c, max_size=2)),
                           max_leaves=4)

leaf_schema = st.one_of(
    string_schema(),
    st.sampled_from([{"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"},
                     {"type": ["string", "null"]}, {"type": ["integer", "string"]}, {}, True]),
    st.builds(lambda vs: {"enum": vs}, st.lists(json_values, min_size=1, max_size=4)),
    st.builds(lambda v: {"const": v}, json_values),
)


@st.composite
def object_schema(draw, children):
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "name", "é", "k\"q"]), unique=True, max_size=4))
    props = {n: draw(children) for n in names}
    s = {"type": "object", "properties": props}
    if names and draw(st.booleans()):
        s["required"] = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    if draw(st.integers(0, 2)) > 0:
        s["additionalProperties"] = False
    return s


@st.composite
def array_schema(draw, children):
    s = {"type": "array", "items": draw(children)}
    if draw(st.booleans()):
        s["minItems"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        s["maxItems"] = draw(st.integers(s.get("minItems", 0), 4))
    return s


schemas = st.recursive(leaf_schema, lambda c: st.one_of(object_schema(c), array_schema(c)), max_leaves=6)


def with_defs(schema, use: bool):
    """Move the schema's first property (or its items) into $defs and refer to it."""
    if not use or not isinstance(schema, dict):
        return schema
    schema = copy.deepcopy(schema)
    if schema.get("properties"):
        name = next(iter(schema["properties"]))
        schema["$defs"] = {"d": schema["properties"][name]}
        schema["properties"][name] = {"$ref": "#/$defs/d"}
    elif "items" in schema:
        schema["$defs"] = {"d": schema["items"]}
        schema["items"] = {"$ref": "#/$defs/d"}
    return schema


def run_generated(schema, rnd: random.Random, tok_name: str = "smollm2", n_instances: int = 3) -> None:
    tok = get_tok(tok_name)
    grammar = tok.compiler.compile_json_schema(schema)
    instances = []
    for _ in range(n_instances):
        try:
            x = gen_instance(schema, rnd, schema)
        except NoInstance:
            continue
        instances += [x, mutate(x, rnd), mutate(mutate(x, rnd), rnd)]
    instances += [gen_any(rnd, 2)]
    for x in instances:
        check_instance(tok, grammar, schema, x, rnd=rnd)
    if grammar.matcher().allowed_token_ids().size:
        check_walks(tok, grammar, schema, rnd, 2)


GEN_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=70, **GEN_SETTINGS)
@given(schema=schemas, defs=st.booleans(), rnd=st.randoms(use_true_random=False))
def test_generated_schemas(schema, defs, rnd):
    run_generated(with_defs(schema, defs), rnd)


@settings(max_examples=15, **GEN_SETTINGS)
@given(schema=schemas, rnd=st.randoms(use_true_random=False))
def test_generated_schemas_llama(schema, rnd):
    run_generated(schema, rnd, "llama3.2", n_instances=1)


@pytest.mark.slow
@settings(max_examples=800, **GEN_SETTINGS)
@given(schema=st.recursive(leaf_schema, lambda c: st.one_of(object_schema(c), array_schema(c)), max_leaves=14),
       defs=st.booleans(), rnd=st.randoms(use_true_random=False))
def test_generated_schemas_slow(schema, defs, rnd):
    run_generated(with_defs(schema, defs), rnd, n_instances=5)


def test_generator_makes_valid_instances():
    """The instance generator mostly produces valid, in-form instances (else the completeness half is idle)."""
    rnd = random.Random(3)
    good = 0
    for schema, _ in HAND:
        for _ in range(3):
            try:
                x = gen_instance(schema, rnd, schema)
            except NoInstance:
                continue
            good += validator(schema).is_valid(x) and in_form(schema, x, schema)
    assert good > 100


# --------------------------------------------------------------------------------------------------
# JSON Schema Test Suite
# --------------------------------------------------------------------------------------------------

SUITE_FILES = ["type", "enum", "const", "properties", "required", "items", "minItems", "maxItems", "minLength",
               "maxLength", "pattern", "additionalProperties", "ref", "format", "multipleOf", "contains",
               "minContains", "maxContains", "uniqueItems", "dependentRequired", "dependentSchemas",
               "minProperties", "maxProperties", "allOf", "not", "refRemote", "anchor", "defs", "dynamicRef",
               "unevaluatedProperties", "unevaluatedItems"]


def suite_groups():
    if not SUITE.is_dir():
        return []
    out = []
    for name in SUITE_FILES:
        for i, group in enumerate(json.loads((SUITE / f"{name}.json").read_text())):
            marks = [pytest.mark.xfail(strict=True, reason=SUITE_KNOWN[(name, i)])] if (name, i) in SUITE_KNOWN else []
            out.append(pytest.param(group, id=f"{name}-{i}-{group['description'][:40]}", marks=marks))
    return out


SUITE_KNOWN: dict[tuple[str, int], str] = {}  # (file, group) -> reason, for strict xfails


@pytest.mark.skipif(not SUITE.is_dir(), reason="JSON Schema Test Suite not found")
@pytest.mark.parametrize("group", suite_groups())
def test_json_schema_test_suite(group):
    schema = group["schema"]
    tok = get_tok("smollm2")
    resources = suite_remotes()
    try:
        grammar = tok.compiler.compile_json_schema(schema, resources=resources)
    except constrain.UnsupportedSchemaError as exc:
        assert exc.keyword and "#" in exc.path  # "#/..." or, in another document, "<uri>#/..."
        return
    except constrain.SchemaError:
        # Only acceptable where jsonschema itself rejects the schema (e.g. a regex Python can't read).
        with pytest.raises(JsonSchemaSchemaError):
            Draft202012Validator.check_schema(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        return
    rnd = random.Random(group["description"])
    for test in group["tests"]:
        check_instance(tok, grammar, schema, test["data"], rnd=rnd, full_check=True, resources=resources)


# --------------------------------------------------------------------------------------------------
# Errors and lenient mode
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema,keyword,path", [
    ({"multipleOf": 0.01}, "multipleOf", "#"),
    ({"type": "number", "multipleOf": 0.1}, "multipleOf", "#"),
    ({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "number", "multipleOf": 0.01}}}},
     "multipleOf", "#/properties/a/items"),
    ({"type": "object", "properties": {"a/b~": {"uniqueItems": True}}}, "uniqueItems", "#/properties/a~1b~0"),
    ({"type": "object", "additionalProperties": {"uniqueItems": True}}, "uniqueItems", "#/additionalProperties"),
    ({"$defs": {"x": {"multipleOf": 0.3}}, "$ref": "#/$defs/x"}, "multipleOf", "#/$defs/x"),
    ({"type": "object", "properties": {"a": {"minProperties": 2}}}, "minProperties", "#/properties/a"),
    ({"type": "object", "properties": {"a": {"items": {"type": "string"}, "uniqueItems": True}}},
     "uniqueItems", "#/properties/a"),
    ({"$defs": {"n": {"anyOf": [{"properties": {"a": True}}, {"$ref": "#/$defs/n"}]}}, "$ref": "#/$defs/n",
      "unevaluatedProperties": False}, "unevaluatedProperties", "#"),  # in-place recursion: endless cases
    ({"anyOf": [{"type": "null"}, {"items": {"type": "string"}, "uniqueItems": True}]}, "uniqueItems", "#/anyOf/1"),
    ({"$ref": "https://example.com/schema"}, "$ref", "#"),
])
def test_unsupported_keywords(schema, keyword, path):
    """A keyword we cannot enforce raises, naming the keyword and the JSON pointer of its subschema.

    (The first subset also refused ``minimum``; it is enforced now, so ``multipleOf`` stands in.)
    """
    with pytest.raises(constrain.UnsupportedSchemaError) as info:
        get_tok("smollm2").compiler.compile_json_schema(schema)
    assert info.value.keyword == keyword
    assert info.value.path == path
    assert isinstance(info.value, constrain.ConstrainError)
    assert keyword in str(info.value)


def test_keyword_of_another_type_is_ignored():
    grammar = get_tok("smollm2").compiler.compile_json_schema({"type": "string", "minimum": 3, "uniqueItems": True})
    tok = get_tok("smollm2")
    assert matcher_verdict(tok, grammar, tok.canonical('"x"'))


@pytest.mark.parametrize("schema", ['{"type": ', "[1, 2", "{'type': 'null'}", "", "nope"])
def test_invalid_json_text(schema):
    with pytest.raises(constrain.SchemaError):
        get_tok("smollm2").compiler.compile_json_schema(schema)


@pytest.mark.parametrize("schema", [{"type": 3}, {"type": "strung"}, {"minLength": -1}, {"required": "a"},
                                    {"properties": []}, {"enum": "x"}, 3, [], None, {"pattern": "("}])
def test_invalid_schema(schema):
    with pytest.raises(constrain.SchemaError) as info:
        get_tok("smollm2").compiler.compile_json_schema(schema)
    assert isinstance(info.value, constrain.ConstrainError)


def test_schema_as_json_text():
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema('{"type": "array", "items": {"type": "boolean"}, "maxItems": 1}')
    assert matcher_verdict(tok, grammar, tok.canonical("[true]"))
    assert not matcher_verdict(tok, grammar, tok.canonical("[true, false]"))


def test_dangling_ref_is_a_schema_error():
    with pytest.raises(constrain.SchemaError):
        get_tok("smollm2").compiler.compile_json_schema({"$ref": "#/$defs/missing"})
    with pytest.raises(constrain.SchemaError):
        get_tok("smollm2").compiler.compile_json_schema({"$ref": "#no-such-anchor"})


def nested(depth: int, leaf) -> dict:
    x = leaf
    for i in range(depth):
        x = {"v": i, "next": x}
    return x


@pytest.mark.parametrize("recursion", ["grammar", "unroll"])
def test_recursive_ref_is_exact_through_a_grammar(recursion):
    """A recursive reference compiles to a context-free grammar (CompiledCFG): every depth is
    accepted and checked. ``recursion="unroll"`` unrolls it instead (sound, shallower, recorded)."""
    schema = {"$defs": {"node": {"type": "object", "properties": {"v": {"type": "integer"},
                                                                  "next": {"$ref": "#/$defs/node"}},
                                 "additionalProperties": False}},
              "$ref": "#/$defs/node"}
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema(schema, recursion=recursion)
    deep_ok = recursion == "grammar"
    assert isinstance(grammar, CompiledCFG) == deep_ok
    assert any("recursive" in w for w in grammar.warnings) != deep_ok
    rnd = random.Random(0)
    shallow = [{}, {"v": 1}, {"v": 1, "next": {"v": 2}}, {"next": {}}]
    invalid = [{"v": "x"}, {"next": {"v": "x"}}, {"next": {"next": {"w": 1}}}, {"next": 3},
               nested(4, {"v": 1.5}), nested(12, {"v": "x"}), nested(12, 3)]
    deep = nested(12, {})
    assert validator(schema).is_valid(deep)
    assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(deep))) == deep_ok
    for x in shallow:
        assert validator(schema).is_valid(x)
        for text in (json.dumps(x), json.dumps(x, indent=2)):
            assert matcher_verdict(tok, grammar, tok.canonical(text)), text
    for x in invalid:
        check_instance(tok, grammar, schema, x, rnd=rnd)


def test_lenient_records_warnings():
    tok = get_tok("smollm2")
    schema = {"type": "object", "properties": {"n": {"type": "number", "multipleOf": 0.01}}, "required": ["n"]}
    with pytest.raises(constrain.UnsupportedSchemaError):
        tok.compiler.compile_json_schema(schema)
    grammar = tok.compiler.compile_json_schema(schema, lenient=True)
    assert any("multipleOf" in w and "#/properties/n" in w for w in grammar.warnings), grammar.warnings
    # The ignored keyword is not enforced (that is what lenient means), but the rest is.
    assert matcher_verdict(tok, grammar, tok.canonical('{"n": 5}'))
    assert not matcher_verdict(tok, grammar, tok.canonical('{"n": "5"}'))
    strict = tok.compiler.compile_json_schema({"type": "integer"})
    assert not any("multipleOf" in w for w in strict.warnings)


def test_merged_copies_are_built_once_and_told_apart_by_type():
    """Merged schemas are new dicts each time: the compiler finds an equal one by content, its
    subschemas by identity (constrain.json_schema._content_key). Constants of other types (1,
    1.0, true) are other schemas; a lenient compile still names every path it dropped a keyword at."""
    tok = get_tok("smollm2")
    note = {"$comment": "merged"}
    schema = {"type": "object", "properties": {
        "i": {"allOf": [{"const": 1}, note]}, "f": {"allOf": [{"const": 1.5}, note]},
        "t": {"allOf": [{"const": True}, note]}, "z": {"allOf": [{"const": 0}, note]},
        "n": {"allOf": [{"const": None}, note]}, "s": {"allOf": [{"const": "1"}, note]}}}
    grammar = tok.compiler.compile_json_schema(schema)
    for name, value in [("i", 1), ("f", 1.5), ("t", True), ("z", 0), ("n", None), ("s", "1")]:
        for other in [1, 1.5, True, 0, False, None, "1"]:
            check_instance(tok, grammar, schema, {name: other})
        check_instance(tok, grammar, schema, {name: value})
    lenient = {"properties": {name: {"allOf": [{"multipleOf": 0.01}, note]} for name in "ab"}}
    warnings = tok.compiler.compile_json_schema(lenient, lenient=True).warnings
    for name in "ab":
        assert any(f"'multipleOf' at #/properties/{name}" in w for w in warnings), warnings


def test_unconstrained_values_nest_to_any_depth():
    """``{}`` and items without a schema are every JSON value, however deep (no narrowing)."""
    tok = get_tok("smollm2")
    g = tok.compiler.compile_json_schema({"type": "object", "properties": {"a": {}, "b": {"type": "array"}}})
    assert not any("nest" in w for w in g.warnings), g.warnings
    deep = nested(40, [1, {"x": None}])
    for instance in ({"a": deep, "b": [deep, [[[[[[]]]]]]]}, {"a": [[[[[[[[[["s"]]]]]]]]]], "b": []}):
        assert matcher_verdict(tok, g, tok.canonical(json.dumps(instance)), full_check=True)
    for bad in ('{"a": [[[1]], "b": []}', '{"a": [[[1]]]], "b": []}', '{"a": {"k": [1,]}, "b": []}'):
        assert not matcher_verdict(tok, g, tok.canonical(bad)), bad


def test_narrowings_are_recorded_as_warnings():
    tok = get_tok("smollm2")
    g = tok.compiler.compile_json_schema({"type": "object", "properties": {"a": {}, "b": {}}})
    assert any("order" in w for w in g.warnings), g.warnings
    g = tok.compiler.compile_json_schema({"type": "string", "format": "uuid"})
    assert any("uuid" in w for w in g.warnings)


# --------------------------------------------------------------------------------------------------
# References: base URIs ($id), anchors, remote resources, the dynamic scope (constrain.schema_refs)
# --------------------------------------------------------------------------------------------------


def assert_verdicts(schema, cases, resources=None, **options):
    """The grammar accepts exactly the instances the validator accepts (each written with
    json.dumps; expected verdicts are stated too, so the test says what the semantics are)."""
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema(schema, resources=resources, **options)
    check = validator(schema, resources)
    for x, expected in cases:
        assert check.is_valid(x) == expected, x
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == expected, x
    return grammar


def test_ref_resolves_against_the_nearest_base_uri():
    """The same ref string means different targets under different $id bases (relative,
    absolute-path and sibling references included)."""
    schema = {"$id": "http://example.com/root.json",
              "$defs": {"a": {"type": "integer"},
                        "inner": {"$id": "folder/inner.json", "$defs": {"a": {"type": "string"}},
                                  "properties": {"x": {"$ref": "#/$defs/a"}, "y": {"$ref": "/root.json#/$defs/a"},
                                                 "z": {"$ref": "sibling.json"}}},
                        "sibling": {"$id": "folder/sibling.json", "type": "boolean"}},
              "properties": {"p": {"$ref": "folder/inner.json"}, "q": {"$ref": "#/$defs/a"}}}
    assert_verdicts(schema, [({"p": {"x": "s"}}, True), ({"p": {"x": 1}}, False), ({"p": {"y": 1}}, True),
                             ({"p": {"y": "s"}}, False), ({"p": {"z": True}}, True), ({"p": {"z": 1}}, False),
                             ({"q": 1}, True), ({"q": "s"}, False)])
    # a subschema with $id reached by descending into it, not through a reference
    inline = {"$id": "http://example.com/root.json", "$defs": {"a": {"type": "integer"}},
              "items": {"$id": "sub/", "$defs": {"a": {"type": "string"}}, "items": {"$ref": "#/$defs/a"}}}
    assert_verdicts(inline, [([["s"]], True), ([[1]], False)])


def test_ref_target_merged_with_siblings_keeps_its_base_uri():
    """A target under its own $id, merged with siblings under the root's base: each side's
    references keep resolving against their own base."""
    schema = {"$id": "http://example.com/r.json",
              "$defs": {"t": {"$id": "t/", "$defs": {"n": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/n"}}},
                        "n": {"type": "string"}},
              "$ref": "t/", "properties": {"b": {"$ref": "#/$defs/n"}}}
    assert_verdicts(schema, [({"a": 1, "b": "x"}, True), ({"a": "x"}, False), ({"b": 1}, False), ({"b": "x"}, True)])


def test_urn_base_uris():
    urn = "urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed"
    schema = {"$id": urn, "$defs": {"s": {"type": "string"}},
              "properties": {"a": {"$ref": f"{urn}#/$defs/s"}, "b": {"$ref": "#/$defs/s"}}}
    assert_verdicts(schema, [({"a": "x"}, True), ({"a": 1}, False), ({"b": "x"}, True), ({"b": 1}, False)])
    embedded = {"$ref": "urn:example:thing", "$defs": {"x": {"$id": "urn:example:thing", "type": "null"}}}
    assert_verdicts(embedded, [(None, True), (0, False)])


def test_anchors_are_scoped_to_their_resource():
    schema = {"$id": "http://example.com/a.json",
              "$defs": {"one": {"$id": "one.json", "$anchor": "it", "type": "integer"},
                        "two": {"$id": "two.json", "$anchor": "it", "type": "string"},
                        "here": {"$anchor": "it", "type": "boolean"}},
              "properties": {"x": {"$ref": "one.json#it"}, "y": {"$ref": "two.json#it"}, "z": {"$ref": "#it"}}}
    assert_verdicts(schema, [({"x": 1}, True), ({"x": "s"}, False), ({"y": "s"}, True), ({"y": 1}, False),
                             ({"z": True}, True), ({"z": 1}, False)])


def test_recursion_without_a_context_free_form_is_unrolled():
    """A recursive reference intersected with another schema has no context-free form here: it
    is unrolled there (sound; the narrowing is recorded), never refused or crashed."""
    tok = get_tok("smollm2")
    schema = {"$defs": {"n": {"type": "array", "items": {"$ref": "#/$defs/n"}}},
              "allOf": [{"$ref": "#/$defs/n"}, {"not": {"maxItems": 0}}]}
    grammar = tok.compiler.compile_json_schema(schema)
    assert any("recursive" in w for w in grammar.warnings), grammar.warnings
    for x in ([[]], [[], [[]]], [], [1], [[1]]):
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), x


def test_only_the_intersected_part_of_a_recursive_schema_is_unrolled():
    """Recursion under an intersection is unrolled there alone: the rest of the grammar stays
    exact at any depth."""
    tok = get_tok("smollm2")
    leaf = {"type": "array", "items": {"$ref": "#/$defs/leaf"}}
    schema = {"$defs": {"leaf": leaf, "t": {"type": "object", "properties": {
        "kids": {"type": "array", "items": {"$ref": "#/$defs/t"}},
        "leaf": {"allOf": [{"$ref": "#/$defs/leaf"}, {"not": {"maxItems": 0}}]}}}},
        "$ref": "#/$defs/t"}
    grammar = tok.compiler.compile_json_schema(schema)
    assert isinstance(grammar, CompiledCFG)
    assert any("under an intersection" in w for w in grammar.warnings), grammar.warnings
    deep: dict = {"leaf": [[]]}
    for _ in range(12):
        deep = {"kids": [deep, {}]}
    for x in (deep, {"leaf": [[[]], []]}, {"leaf": []}, {"kids": [{"leaf": [1]}]}, {"kids": [{"leaf": [[], [[]]]}]}):
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), x


def test_recursion_through_an_object_of_many_required_members_in_any_order():
    """Members in any order with n required names take 2**n automaton states: too many to expand
    into grammar rules, so that object's recursion is unrolled (recorded) and it compiles fast."""
    tok = get_tok("smollm2")
    names = [f"k{i}" for i in range(12)]
    node = {"type": "object", "required": names,
            "properties": {**{n: {"type": "integer"} for n in names}, "next": {"$ref": "#/$defs/node"}}}
    schema = {"$defs": {"node": node}, "type": "array", "items": {"$ref": "#/$defs/node"}}
    grammar = tok.compiler.compile_json_schema(schema, property_order="any")
    assert any("many required members" in w for w in grammar.warnings), grammar.warnings
    leaf = {n: i for i, n in enumerate(reversed(names))}
    for x in ([leaf, {**leaf, "next": leaf}], [{**leaf, "next": {**leaf, "next": leaf}}], [], [{"k0": 1}],
              [{**leaf, "next": {"k1": 2}}], [{**leaf, "k3": "x"}]):
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), x


@pytest.mark.parametrize("extra", [{}, {"maxProperties": 2}, {"minProperties": 3},
                                   {"dependentRequired": {"a": ["b", "c"], "b": ["d"]}}])
@pytest.mark.parametrize("required", [2, 7, 8, 9])
def test_object_automaton_sizes_match_the_states_the_grammar_would_define(required, extra):
    """The compiler counts an object automaton's states without building them, so the grammar
    builder knows one too large to expand before defining its states: the count must be the one
    found by defining them (as the builder does without it), up to the limit."""
    from constrain.json_schema import _SchemaCompiler
    from constrain.schema_grammar import MAX_LAZY_STATES, _Builder
    from constrain.terms import TermStore

    names = [f"k{i}" for i in range(required)]
    if "maxProperties" in extra:  # room for two members besides the required ones
        extra = {"maxProperties": required + extra["maxProperties"]}
    node = {"type": "object", "required": names, **extra,
            "properties": {**{n: {"type": "integer"} for n in names + ["a", "b", "c", "d"]},
                           "next": {"$ref": "#/$defs/node"}}}
    store = TermStore()
    compiler = _SchemaCompiler({"$defs": {"node": node}, "$ref": "#/$defs/node"}, store, property_order="any")
    compiler.bodies = {}
    compiler.value(compiler.root, "#")
    assert compiler.automaton_sizes
    for term, size in compiler.automaton_sizes.items():
        defined = _Builder(store, compiler.bodies, 4, {}).lazy_states(term, MAX_LAZY_STATES)
        assert min(size, MAX_LAZY_STATES + 1) == min(defined, MAX_LAZY_STATES + 1)


def test_one_of_needs_no_intersection_between_disjoint_branches():
    """``oneOf`` excludes only the branches an instance could also satisfy: here every pair is
    told apart by type or by a required discriminator, so the recursive schema stays a grammar,
    exact at any depth, with no narrowing."""
    tok = get_tok("smollm2")
    schema = {"$defs": {"node": {"oneOf": [
        {"type": "string"},
        {"type": "string", "pattern": "^[a-z]+$"},
        {"type": "object", "required": ["type", "fields"], "properties": {
            "type": {"enum": ["record"]}, "fields": {"type": "array", "items": {"$ref": "#/$defs/node"}}}},
        {"type": "object", "required": ["items"], "additionalProperties": False, "properties": {
            "items": {"$ref": "#/$defs/node"}}}]}},
        "$ref": "#/$defs/node"}
    grammar = tok.compiler.compile_json_schema(schema, property_order="any", strict_properties=False)
    assert isinstance(grammar, CompiledCFG) and not grammar.warnings, grammar.warnings
    deep: object = "A"
    for i in range(10):
        deep = {"type": "record", "fields": [deep, "B"]} if i % 2 else {"items": deep}
    for x in (deep, "abc", "ABC", {"items": "abc"}, {"type": "record", "fields": ["x"]},
              {"type": "record", "fields": [], "items": "A"}, {"items": {"items": "Q"}}):
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), x


def test_one_of_branches_told_apart_by_a_sibling_requirement():
    """Branches discriminated by a property the siblings require (each branch only fixes its
    value): exact, and every instance the validator accepts is accepted."""
    tok = get_tok("smollm2")
    schema = {"type": "object", "required": ["msg"], "properties": {"msg": {"type": "string"}},
              "oneOf": [{"properties": {"msg": {"enum": ["open"]}, "n": {"type": "integer"}}, "required": ["n"]},
                        {"properties": {"msg": {"enum": ["close"]}}},
                        {"properties": {"msg": {"enum": ["open", "x"]}}, "required": ["k"]}]}
    grammar = tok.compiler.compile_json_schema(schema, property_order="any", strict_properties=False)
    for x in ({"msg": "open", "n": 1}, {"msg": "close"}, {"msg": "close", "n": 1}, {"msg": "x", "k": 0},
              {"msg": "open", "n": 1, "k": 2}, {"msg": "open", "k": 2}, {"msg": "nope"}, {"n": 1}, {"msg": "open"}):
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), x


def test_ref_siblings_without_a_merged_form_are_kept():
    """A ``$ref`` whose target does not merge with its sibling keywords (properties beside
    patternProperties) keeps both under allOf and oneOf (a regression: the siblings were dropped,
    and ``{"c": 5}`` was accepted)."""
    tok = get_tok("smollm2")
    target = {"type": "object", "patternProperties": {"^a": {"type": "integer"}}, "properties": {"b": {}}}
    part = {"$ref": "#/$defs/t", "properties": {"c": {"type": "string"}}}
    for schema in ({"$defs": {"t": target}, "allOf": [part]},
                   {"$defs": {"t": target}, "oneOf": [part, {"type": "string"}]}):
        grammar = tok.compiler.compile_json_schema(schema, property_order="any", strict_properties=False)
        for x in ({"c": 5}, {"c": "x"}, {"a1": "s"}, {"a1": 2, "b": [1]}, "s"):
            assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), (schema, x)


def test_unrolled_retry_does_not_reuse_the_grammar_attempt():
    """The unrolled compile after a failed grammar attempt shares the store: its lazy object
    automata must not meet the attempt's (a regression: they did, and took its definitions)."""
    tok = get_tok("smollm2")
    schema = {"$defs": {"n": {"type": "object", "additionalProperties": False,
                              "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"type": "integer"}}}},
              "allOf": [{"$ref": "#/$defs/n"}, {"not": {"maxProperties": 0}}]}
    grammar = tok.compiler.compile_json_schema(schema, property_order="any")
    assert any("recursive" in w for w in grammar.warnings), grammar.warnings
    for x in ({"b": 1}, {"a": {"b": 2}, "b": 1}, {"b": 1, "x": 2}, {"a": {"x": 1}}, {}, {"a": {}}):
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))) == validator(schema).is_valid(x), x


def test_recursion_is_detected_by_absolute_target():
    """'#' inside an embedded resource is that resource, not the root; recursion through it is
    a grammar like any other."""
    schema = {"$defs": {"a": {"$id": "http://example.com/a", "type": "array", "items": {"$ref": "#"}}},
              "items": {"$ref": "http://example.com/a"}}
    grammar = assert_verdicts(schema, [([[[]]], True), ([[1]], False), ([1], False), ([[], [[]]], True),
                                       ([[[[[[[[[]]]]]]]]], True), ([[[[[[[[[1]]]]]]]]], False)])
    assert isinstance(grammar, CompiledCFG)
    node = {"$id": "http://example.com/node.json", "type": "object", "additionalProperties": False,
            "properties": {"v": {"type": "integer"}, "next": {"$ref": "node.json"}}}
    assert_verdicts(node, [({"v": 1, "next": {"next": {"v": 2}}}, True), ({"next": {"v": "x"}}, False)])


def test_remote_resources():
    resources = {
        "http://example.com/defs.json": {"$defs": {"pos": {"type": "integer", "minimum": 1},
                                                   "name": {"$ref": "#/$defs/str"},
                                                   "str": {"type": "string", "maxLength": 3}}},
        "http://example.com/item.json": {"type": "object", "properties": {"id": {"$ref": "defs.json#/$defs/pos"}},
                                         "required": ["id"]},
    }
    schema = {"type": "array", "items": {"$ref": "http://example.com/item.json"}}
    assert_verdicts(schema, [([{"id": 1}], True), ([{"id": 0}], False), ([{}], False), ([], True)], resources)
    named = {"$ref": "http://example.com/defs.json#/$defs/name"}
    assert_verdicts(named, [("abc", True), ("abcd", False), (1, False)], resources)
    # resources of other drafts are read by their draft's rules (draft 4's boolean exclusiveMaximum)
    old = {"http://example.com/old.json": {"$schema": "http://json-schema.org/draft-04/schema#",
                                           "maximum": 3, "exclusiveMaximum": True}}
    assert_verdicts({"type": "null"}, [(None, True)], old)
    assert_verdicts({"$ref": "http://example.com/old.json"}, [(2.5, True), (3, False), ("s", True)], old)


def test_official_metaschemas_are_known():
    simple_types = {"$ref": "https://json-schema.org/draft/2020-12/meta/validation#/$defs/simpleTypes"}
    assert_verdicts(simple_types, [("string", True), ("strung", False)])


# --------------------------------------------------------------------------------------------------
# Older drafts through $ref: a subschema or reference target that declares an older draft in
# $schema is evaluated by that draft's validator class, and is compiled as its draft 2020-12
# translation (constrain.schema_dialects)
# --------------------------------------------------------------------------------------------------

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT6 = "http://json-schema.org/draft-06/schema#"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
DRAFT2019 = "https://json-schema.org/draft/2019-09/schema"
ANYWHERE = {"strict_properties": False, "property_order": "any"}


def in_draft(draft: str, schema: dict, **extra) -> dict:
    """``schema`` as a $defs entry that declares ``draft``, referenced from a draft 2020-12 root."""
    return {"$ref": "#/$defs/old", "$defs": {"old": {"$schema": draft, **schema}, **extra}}


def assert_refused(schema, keyword: str, path: str, resources=None, **options):
    with pytest.raises(constrain.UnsupportedSchemaError) as info:
        get_tok("smollm2").compiler.compile_json_schema(schema, resources=resources, **options)
    assert info.value.keyword == keyword and info.value.path == path, (str(info.value), schema)
    return info.value


def test_only_a_schema_that_declares_a_draft_switches_the_validator():
    """The root is read as draft 2020-12 whatever its $schema; a reference to the root switches
    (it declares draft 4), a reference to #/definitions/x of that root does not (x declares
    nothing: it is read by the referring schema's draft)."""
    schema = {"$schema": DRAFT4, "definitions": {"x": {"type": "integer"}},
              "properties": {"a": {"type": "integer"}, "d": {"$ref": "#/definitions/x"}, "self": {"$ref": "#"}}}
    assert_verdicts(schema, [({"a": 1.0}, True), ({"self": {"a": 1.0}}, False), ({"self": {"a": 1}}, True),
                             ({"self": {"self": {"a": 2.0}}}, False), ({"d": 1.0}, True), ({"self": {"d": 1.0}}, False),
                             ({"self": {"d": 1}}, True)], **ANYWHERE)


def test_draft4_exclusive_bounds():
    schema = in_draft(DRAFT4, {"minimum": 1, "exclusiveMinimum": True, "maximum": 5, "exclusiveMaximum": False,
                               "type": "number"})
    assert_verdicts(schema, [(1, False), (1.5, True), (5, True), (5.5, False), (0, False)])
    flag_alone = in_draft(DRAFT4, {"exclusiveMaximum": True, "maximum": 2, "exclusiveMinimum": True})
    assert_verdicts(flag_alone, [(2, False), (1.9, True), (-100, True), ("s", True)])
    truthy = in_draft(DRAFT4, {"maximum": 2, "exclusiveMaximum": 1, "minimum": 0, "exclusiveMinimum": 0})
    assert_verdicts(truthy, [(2, False), (0, True)])


def test_draft4_integer_is_written_without_fraction():
    """Draft 4's type checker counts only Python ints as integers: 1.0 and 1e2 parse as floats."""
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema(in_draft(DRAFT4, {"type": "integer", "maximum": 200}))
    check = validator(in_draft(DRAFT4, {"type": "integer", "maximum": 200}))
    for text, expected in [("1", True), ("-20", True), ("0", True), ("1.0", False), ("1e2", False),
                           ("100.00", False), ("2.5", False), ("201", False)]:
        assert check.is_valid(json.loads(text)) == expected, text
        assert matcher_verdict(tok, grammar, tok.canonical(text)) == expected, text
    # integer beside other types; "number" admits every number; under not, 1.0 is "not an integer"
    assert_verdicts(in_draft(DRAFT4, {"type": ["integer", "string"]}), [(1, True), (1.0, False), ("a", True), (None, False)])
    assert_verdicts(in_draft(DRAFT4, {"type": ["integer", "number"]}), [(1, True), (1.0, True), (1.5, True)])
    assert_verdicts({"not": {"$ref": "#/$defs/i"}, "$defs": {"i": {"$schema": DRAFT4, "type": "integer"}}},
                    [(1, False), (1.0, True), (2.5, True), ("a", True)])
    # enum and const compare values (1 equals 1.0), the type then wants the plain text
    assert_verdicts(in_draft(DRAFT4, {"type": "integer", "enum": [1, 2.0, 2.5, "a"]}),
                    [(1, True), (1.0, False), (2, True), (2.0, False), (2.5, False), ("a", False)])
    assert_verdicts(in_draft(DRAFT4, {"enum": [1, 2.0]}), [(1, True), (1.0, True), (2, True), (2.0, True)])
    assert_verdicts(in_draft(DRAFT4, {"type": "integer", "multipleOf": 3}), [(3, True), (3.0, False), (4, False), (-6, True)])
    # merged with draft 2020-12 siblings
    merged = {"allOf": [{"$ref": "#/$defs/i"}, {"type": "number", "minimum": 2}],
              "$defs": {"i": {"$schema": DRAFT4, "type": ["integer", "null"]}}}
    assert_verdicts(merged, [(2, True), (2.0, False), (1, False), (None, False)])


def test_private_integer_text_keyword_means_nothing_in_user_schemas():
    """``$constrain:integer_text`` is the compiler's own keyword: in a user's schema it is an
    unknown keyword, which the validator ignores, and so does the compiler."""
    assert_verdicts({"type": "number", "$constrain:integer_text": "plain"}, [(1, True), (1.0, True), (1.5, True)])


def test_items_arrays_and_additional_items():
    schema = in_draft(DRAFT4, {"items": [{"type": "string"}, {"type": "boolean"}], "additionalItems": False})
    assert_verdicts(schema, [([], True), (["a"], True), (["a", True], True), (["a", True, 1], False), ([1], False),
                             ({}, True)])
    typed = in_draft(DRAFT7, {"items": [{"type": "string"}], "additionalItems": {"type": "null"}})
    assert_verdicts(typed, [(["a", None, None], True), (["a", 1], False), ([None], False)])
    # additionalItems does nothing beside an items schema, or without items
    assert_verdicts(in_draft(DRAFT6, {"items": {"type": "string"}, "additionalItems": False}), [(["a", "b"], True), ([1], False)])
    assert_verdicts(in_draft(DRAFT6, {"additionalItems": False}), [([1, 2], True)])
    # draft 7 has no prefixItems (ignored); draft 2019-09 neither, but has minContains
    assert_verdicts(in_draft(DRAFT7, {"prefixItems": [{"type": "null"}]}), [([1], True)])
    assert_verdicts(in_draft(DRAFT2019, {"items": [{"type": "string"}], "prefixItems": [{"type": "null"}],
                                         "contains": {"type": "integer"}, "minContains": 2}),
                    [(["a", 1, 2], True), (["a", 1], False), ([None, 1, 2], False)])


def test_dependencies():
    schema = in_draft(DRAFT7, {"dependencies": {"a": ["b"], "c": {"required": ["d"]}},
                               "dependentRequired": {"x": ["y"]}})
    assert_verdicts(schema, [({}, True), ({"a": 1}, False), ({"a": 1, "b": 2}, True), ({"c": 1}, False),
                             ({"c": 1, "d": 1}, True), ({"x": 1}, True)], **ANYWHERE)
    # draft 2019-09 has no dependencies (ignored), but dependentRequired
    assert_verdicts(in_draft(DRAFT2019, {"dependencies": {"a": ["b"]}, "dependentRequired": {"x": ["y"]}}),
                    [({"a": 1}, True), ({"x": 1}, False), ({"x": 1, "y": 1}, True)], **ANYWHERE)


def test_keywords_absent_from_the_draft_are_ignored():
    draft4 = in_draft(DRAFT4, {"const": 5, "contains": {"type": "null"}, "propertyNames": {"maxLength": 1},
                               "if": {"type": "string"}, "then": False, "dependentSchemas": {"a": False},
                               "unevaluatedProperties": False})
    assert_verdicts(draft4, [(6, True), ("ab", True), ([1], True), ({"abc": 1}, True), ({"a": 1}, True)], **ANYWHERE)
    draft6 = in_draft(DRAFT6, {"const": 5, "if": {"type": "integer"}, "then": False})
    assert_verdicts(draft6, [(5, True), (6, False)])
    draft7 = in_draft(DRAFT7, {"if": {"type": "string"}, "then": {"maxLength": 1}, "else": {"type": "integer"}})
    assert_verdicts(draft7, [(5, True), ("ab", False), ("a", True), (5.5, False)])
    contains = in_draft(DRAFT7, {"contains": {"type": "null"}, "minContains": 2, "maxContains": 0})
    assert_verdicts(contains, [([None], True), ([None, None], True), ([1], False), ([], False)])
    assert_verdicts(in_draft(DRAFT6, {"propertyNames": {"maxLength": 1}}), [({"a": 1}, True), ({"ab": 1}, False)],
                    **ANYWHERE)


def test_ref_siblings_follow_the_class_that_reaches_the_schema():
    """Up to draft 7 $ref hides its siblings; which keywords apply is the reaching validator's
    choice (``descend`` applies its own class's rule), the implementations the schema's class."""
    string = {"type": "string"}
    # reached by descend from draft 2020-12: maxLength applies
    assert_verdicts(in_draft(DRAFT7, {"$ref": "#/$defs/s", "maxLength": 1}, s=string), [("a", True), ("ab", False), (1, False)])
    # below a draft 7 schema: ignored
    below = in_draft(DRAFT7, {"items": {"$ref": "#/$defs/s", "maxLength": 1}}, s=string)
    assert_verdicts(below, [(["abc"], True), ([1], False)])
    # reached by evolve (not, if, contains): the schema's own class decides
    assert_verdicts({"not": {"$schema": DRAFT7, "$ref": "#/$defs/s", "maxLength": 1}, "$defs": {"s": string}},
                    [("abc", False), ("a", False), (1, True)])
    # a draft 2020-12 schema reached by descend from a draft 7 one: ignored too
    back = in_draft(DRAFT7, {"items": {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                       "$ref": "#/$defs/s", "maxLength": 1}}, s=string)
    assert_verdicts(back, [(["abc"], True), ([1], False)])
    # draft 2019-09 reads them
    assert_verdicts(in_draft(DRAFT2019, {"$ref": "#/$defs/s", "maxLength": 2}, s=string), [("ab", True), ("abc", False)])


def test_formats_are_checked_in_every_draft():
    """The validator's format checker (every format) is carried to the older draft's class."""
    assert_verdicts(in_draft(DRAFT4, {"format": "date"}), [("2020-01-01", True), ("nope", False), (1, True)])


def test_older_draft_shapes_are_checked_by_their_draft():
    """A subschema declaring draft 4 may hold a boolean exclusiveMaximum and an items array (the
    root's check leaves it to the translation); malformed ones are SchemaErrors there."""
    compiler = get_tok("smollm2").compiler
    compiler.compile_json_schema({"items": {"$schema": DRAFT4, "maximum": 3, "exclusiveMaximum": True, "items": [{}]}})
    with pytest.raises(constrain.SchemaError) as info:
        compiler.compile_json_schema(in_draft(DRAFT4, {"minimum": "1", "exclusiveMinimum": True}))
    assert info.value.path == "#/$defs/old/minimum"
    with pytest.raises(constrain.SchemaError):
        compiler.compile_json_schema(in_draft(DRAFT4, {"items": [{"type": "null"}, 3]}))
    with pytest.raises(constrain.SchemaError):
        compiler.compile_json_schema(in_draft(DRAFT7, {"dependencies": {"a": 3}}))


def test_untranslatable_older_drafts_are_refused():
    """What has no exact draft 2020-12 form is refused as keyword $schema, naming its path."""
    draft3 = "http://json-schema.org/draft-03/schema#"
    assert_refused(in_draft(draft3, {"type": "string"}), "$schema", "#/$defs/old")
    error = assert_refused(in_draft(DRAFT7, {"items": True, "additionalItems": False}), "$schema", "#/$defs/old")
    assert "Draft7" in str(error)
    assert_refused(in_draft(DRAFT2019, {"$recursiveRef": "#"}), "$schema", "#/$defs/old")
    assert_refused(in_draft(DRAFT2019, {"unevaluatedProperties": False}), "$schema", "#/$defs/old")
    # a oneOf branch past the first is read by two classes' rules (descend, then evolve)
    assert_refused({"oneOf": [{"type": "null"}, {"$schema": DRAFT7, "$ref": "#/$defs/s", "maxLength": 1}],
                    "$defs": {"s": {"type": "string"}}}, "$schema", "#/oneOf/1")
    # unevaluatedProperties sees the annotations of the original keywords (dependencies: none)
    annotated = {"allOf": [{"$ref": "#/$defs/old"}], "unevaluatedProperties": False,
                 "$defs": {"old": {"$schema": DRAFT7, "properties": {"a": True}, "dependencies": {"a": {"properties": {"b": True}}}}}}
    assert_refused(annotated, "$schema", "#")
    same = {"allOf": [{"$ref": "#/$defs/old"}], "unevaluatedProperties": False,
            "$defs": {"old": {"$schema": DRAFT7, "properties": {"a": {"type": "integer"}}}}}
    assert_verdicts(same, [({"a": 1}, True), ({"a": 1, "b": 2}, False), ({"a": 1.0}, True)])


OLDER_SUITES = {
    DRAFT4: ("draft4", ["type", "maximum", "minimum", "items", "additionalItems", "dependencies", "enum", "ref",
                        "not", "oneOf", "uniqueItems"]),
    DRAFT6: ("draft6", ["items", "additionalItems", "contains", "const", "propertyNames", "dependencies",
                        "exclusiveMaximum", "ref", "type"]),
    DRAFT7: ("draft7", ["if-then-else", "items", "additionalItems", "contains", "dependencies", "ref"]),
    DRAFT2019: ("draft2019-09", ["items", "additionalItems", "minContains", "dependentRequired", "ref"]),
}


def older_suite_groups():
    out = []
    for uri, (folder, names) in OLDER_SUITES.items():
        for name in names:
            path = SUITE.parent / folder / f"{name}.json"
            if not path.is_file():
                continue
            for i, group in enumerate(json.loads(path.read_text())):
                if isinstance(group["schema"], dict):
                    out.append(pytest.param(uri, group, id=f"{folder}-{name}-{i}-{group['description'][:30]}"))
    return out


@pytest.mark.skipif(not SUITE.is_dir(), reason="JSON Schema Test Suite not found")
@pytest.mark.parametrize("uri,group", older_suite_groups())
def test_older_draft_suites_through_ref(uri, group):
    """Each older draft's suite schema, declaring its draft, as the target of a draft 2020-12 root:
    the grammar against the validator (which reads the target by that draft's rules)."""
    resources = {**suite_remotes(), "http://example.com/old.json": {**group["schema"], "$schema": uri}}
    schema = {"$ref": "http://example.com/old.json"}
    tok = get_tok("smollm2")
    try:
        grammar = tok.compiler.compile_json_schema(schema, resources=resources)
    except constrain.UnsupportedSchemaError as exc:
        assert exc.keyword != "$schema" or "$recursiveRef" in str(exc) or "unevaluated" in str(exc), str(exc)
        return
    rnd = random.Random(group["description"])
    for test in group["tests"]:
        check_instance(tok, grammar, schema, test["data"], rnd=rnd, resources=resources)


def test_oneof_branch_identifiers_are_read_as_the_validator_reads_them():
    """``not``/``if``/``contains`` evaluate a subschema with the parent's base URI (evolve), the
    other applicators with the subschema's own $id (descend); a oneOf branch past the first is
    read both ways, refused (keyword $id) where that changes what its references mean."""
    root = "http://example.com/root"
    schema = {"$id": root, "$defs": {"a": {"type": "integer"}}, "not": {"$id": "http://example.com/sub/", "$ref": "#/$defs/a"}}
    assert_verdicts(schema, [(1, False), ("x", True)])
    assert_refused({"$id": root, "$defs": {"a": {"type": "integer"}},
                    "oneOf": [{"type": "null"}, {"$id": "http://example.com/sub/", "$ref": "#/$defs/a"}]}, "$id", "#/oneOf/1")


def test_unknown_remote_is_refused():
    compiler = get_tok("smollm2").compiler
    with pytest.raises(constrain.UnsupportedSchemaError) as info:
        compiler.compile_json_schema({"type": "object", "properties": {"a": {"$ref": "http://example.com/missing.json#/x"}}})
    assert info.value.keyword == "$ref" and info.value.path == "#/properties/a"
    assert "http://example.com/missing.json" in str(info.value) and "resources" in str(info.value)
    with pytest.raises(constrain.UnsupportedSchemaError) as info:  # relative: named as resolved against $id
        compiler.compile_json_schema({"$id": "http://example.com/r.json", "items": {"$ref": "other.json"}},
                                     resources={"http://example.com/else.json": {}})
    assert info.value.path == "#/items" and "http://example.com/other.json" in str(info.value)
    grammar = compiler.compile_json_schema({"items": {"$ref": "http://example.com/missing.json"}, "maxItems": 1},
                                           lenient=True)
    assert any("$ref" in w and "#/items" in w for w in grammar.warnings), grammar.warnings


def test_dangling_reference_into_a_resource_is_a_schema_error():
    compiler = get_tok("smollm2").compiler
    resources = {"http://example.com/d.json": {"$defs": {"a": {"type": "null"}}}}
    with pytest.raises(constrain.SchemaError) as info:
        compiler.compile_json_schema({"properties": {"a": {"$ref": "http://example.com/d.json#/$defs/b"}}},
                                     resources=resources)
    assert info.value.path == "#/properties/a" and "#/$defs/b" in str(info.value)
    with pytest.raises(constrain.SchemaError):
        compiler.compile_json_schema({"$ref": "http://example.com/d.json#nope"}, resources=resources)
    with pytest.raises(constrain.SchemaError) as info:  # a malformed resource names its URI
        compiler.compile_json_schema({"$ref": "http://example.com/bad.json"},
                                     resources={"http://example.com/bad.json": {"minLength": -1}})
    assert "http://example.com/bad.json#" in str(info.value)


def test_refusals_inside_a_resource_name_their_document():
    resources = {"http://example.com/x.json": {"properties": {"a": {"type": "number", "multipleOf": 0.01}}}}
    with pytest.raises(constrain.UnsupportedSchemaError) as info:
        get_tok("smollm2").compiler.compile_json_schema({"$ref": "http://example.com/x.json"}, resources=resources)
    assert info.value.keyword == "multipleOf" and info.value.path == "http://example.com/x.json#/properties/a"


def test_resources_are_part_of_the_cache_key():
    compiler = get_tok("smollm2").compiler
    tok = get_tok("smollm2")
    schema = {"$ref": "http://example.com/t.json"}
    integer = compiler.compile_json_schema(schema, resources={"http://example.com/t.json": {"type": "integer"}})
    string = compiler.compile_json_schema(schema, resources={"http://example.com/t.json": {"type": "string"}})
    assert compiler.compile_json_schema(schema, resources={"http://example.com/t.json": {"type": "integer"}}) is integer
    assert integer is not string
    assert matcher_verdict(tok, integer, tok.canonical("1")) and not matcher_verdict(tok, integer, tok.canonical('"a"'))
    assert matcher_verdict(tok, string, tok.canonical('"a"')) and not matcher_verdict(tok, string, tok.canonical("1"))


def test_compiling_pauses_the_collector_and_restores_it():
    """Off while any compile runs (nested or failing ones too), back on after the last; never turned
    on where the caller had it off."""
    import gc

    from constrain.compiler import _collector_paused

    compiler = constrain.Compiler(get_tok("smollm2").vocab, cache_size=0)
    seen = []
    with _collector_paused():
        with _collector_paused():
            seen.append(gc.isenabled())
        seen.append(gc.isenabled())
    assert seen == [False, False] and gc.isenabled()
    with pytest.raises(constrain.SchemaError):
        compiler.compile_json_schema({"type": "string", "minLength": -1})
    assert gc.isenabled()
    gc.disable()
    try:
        compiler.compile_json_schema({"type": "integer"})
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_dynamic_ref_follows_the_dynamic_scope():
    """A generic list whose items are whatever the outermost ``$dynamicAnchor: item`` says."""
    resources = {"http://example.com/list": {"$id": "http://example.com/list", "type": "array",
                                             "items": {"$dynamicRef": "#item"},
                                             "$defs": {"default": {"$dynamicAnchor": "item"}}}}
    ints = {"$id": "http://example.com/ints", "$ref": "list", "$defs": {"int": {"$dynamicAnchor": "item", "type": "integer"}}}
    assert_verdicts(ints, [([1, 2], True), (["a"], False), ("a", False)], resources)
    anything = {"$ref": "http://example.com/list"}  # no other anchor in scope: the list's own
    assert_verdicts(anything, [([1, "a"], True), ("a", False)], resources)
    # one target reached in two dynamic scopes means two things
    both = {"$id": "http://example.com/both", "properties": {"ints": {"$ref": "ints"}, "strs": {"$ref": "strs"}},
            "$defs": {"ints": {"$id": "ints", "$ref": "list", "$defs": {"i": {"$dynamicAnchor": "item", "type": "integer"}}},
                      "strs": {"$id": "strs", "$ref": "list", "$defs": {"s": {"$dynamicAnchor": "item", "type": "string"}}}}}
    assert_verdicts(both, [({"ints": [1], "strs": ["a"]}, True), ({"strs": [1]}, False), ({"ints": ["a"]}, False)],
                    resources)
    plain = {"$defs": {"s": {"$anchor": "s", "type": "string"}}, "items": {"$dynamicRef": "#s"}}  # like $ref
    assert_verdicts(plain, [(["a"], True), ([1], False)])


def test_linked_keywords_are_the_validators():
    """The subschema positions schema_refs follows are those of referencing's DRAFT202012."""
    from constrain import schema_refs

    ours = ({(k, "value") for k in schema_refs._IN_VALUE} | {(k, "array") for k in schema_refs._IN_SUBARRAY}
            | {(k, "object") for k in schema_refs._IN_SUBVALUES}
            | {("contentSchema", "value"), ("$defs", "object"), ("definitions", "object")})
    candidates = set(Draft202012Validator.VALIDATORS) | {k for k, _ in ours} | {"dependencies", "additionalItems"}
    theirs = set()
    for key in candidates:
        marker: dict = {}
        for kind, value in (("value", marker), ("array", [marker]), ("object", {"x": marker})):
            try:
                found = any(s is marker for s in DRAFT202012.subresources_of({key: value}))
            except (AttributeError, TypeError):
                continue
            if found:
                theirs.add((key, kind))
    assert ours == theirs


# --------------------------------------------------------------------------------------------------
# Formats, and known disagreements (xfail strict: they fail once fixed, so the marks get removed)
# --------------------------------------------------------------------------------------------------


def test_format_time_matches_oracle():
    """FormatChecker() checks "time" with draft 3's rule (strptime "%H:%M:%S"), not RFC 3339's."""
    tok = get_tok("smollm2")
    schema = {"type": "string", "format": "time"}
    grammar = tok.compiler.compile_json_schema(schema)
    for value in ["12:34:56Z", "12:34:56", "12:34:56+01:00", "1:2:3"]:
        valid = validator(schema).is_valid(value)
        got = matcher_verdict(tok, grammar, tok.canonical(json.dumps(value)))
        assert got == valid, (value, valid, got)


def test_allof_prefixitems_merge_is_sound():
    tok = get_tok("smollm2")
    schema = {"allOf": [{"prefixItems": [{"minimum": 3}]}], "items": {"minimum": 5}}
    grammar = tok.compiler.compile_json_schema(schema)
    assert not validator(schema).is_valid([3, 5])
    assert not matcher_verdict(tok, grammar, tok.canonical("[3, 5]"))


def test_extra_properties_are_generated_when_allowed():
    """With strict_properties=False, undeclared members are accepted between declared ones when
    additionalProperties allows them; declared ones stay in order. By default they are not."""
    tok = get_tok("smollm2")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
              "additionalProperties": {"type": "boolean"}}
    strict = tok.compiler.compile_json_schema(schema)
    assert not matcher_verdict(tok, strict, tok.canonical(json.dumps({"a": 1, "z": False})))
    assert matcher_verdict(tok, strict, tok.canonical(json.dumps({"a": 1, "b": "x"})))
    grammar = tok.compiler.compile_json_schema(schema, strict_properties=False)
    rnd = random.Random(5)
    for x in [{"z": True, "a": 1}, {"a": 1, "z": False, "b": "x"}, {"a": 1, "b": "x", "y": True}]:
        assert validator(schema).is_valid(x)
        assert matcher_verdict(tok, grammar, tok.canonical(json.dumps(x)))
    for x in [{"z": 1, "a": 1}, {"a": 1, "b": "x", "a2": None}]:
        check_instance(tok, grammar, schema, x, rnd=rnd)


def test_format_date_year_zero():
    tok = get_tok("smollm2")
    for schema, value in [({"type": "string", "format": "date"}, "0000-02-29"),
                          ({"type": "string", "format": "date-time"}, "0000-02-29T00:00:00Z")]:
        assert not validator(schema).is_valid(value)
        grammar = tok.compiler.compile_json_schema(schema)
        assert not matcher_verdict(tok, grammar, tok.canonical(json.dumps(value))), value


# --------------------------------------------------------------------------------------------------
# Counting and arithmetic: multipleOf, dependentRequired, dependentSchemas, min/maxProperties beside
# declared properties, maxContains, uniqueItems. Instances are in our form by construction (declared
# order, no extras, json.dumps numbers), so the verdict must equal the validator's both ways.
# --------------------------------------------------------------------------------------------------


def assert_exact(tok: Tok, grammar, schema, instances, **dumps) -> None:
    v = validator(schema)
    for x in instances:
        text = json.dumps(x, **dumps)
        got = matcher_verdict(tok, grammar, tok.canonical(text))
        assert got == v.is_valid(x), f"schema={json.dumps(schema)} text={text!r} valid={v.is_valid(x)}"


OBJECT_NAMES = ["a", "b", "c", "d"]
OBJECT_VALUES = [1, "x"]


@st.composite
def dependent_object_schema(draw):
    props = {n: draw(st.sampled_from([{"type": "integer"}, {"type": "string"}, {}])) for n in OBJECT_NAMES}
    s = {"type": "object", "properties": props}
    names = st.sampled_from(OBJECT_NAMES + ["e"])  # "e" is never declared
    if draw(st.booleans()):
        s["required"] = draw(st.lists(st.sampled_from(OBJECT_NAMES), unique=True, max_size=2))
    if draw(st.booleans()):
        s["dependentRequired"] = draw(st.dictionaries(names, st.lists(names, unique=True, max_size=2), max_size=3))
    if draw(st.booleans()):
        sub = st.one_of(st.builds(lambda n: {"required": [n]}, names),
                        st.builds(lambda n, t: {"properties": {n: {"type": t}}}, names, st.sampled_from(["integer", "string"])),
                        st.builds(lambda k: {"maxProperties": k}, st.integers(0, 3)),
                        st.builds(lambda k: {"minProperties": k}, st.integers(0, 3)),
                        st.sampled_from([True, False]))
        s["dependentSchemas"] = draw(st.dictionaries(names, sub, max_size=3))
    if draw(st.booleans()):
        s["minProperties"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        s["maxProperties"] = draw(st.integers(0, 4))
    return s


def object_instances(rnd: random.Random, n: int) -> list[dict]:
    out = [{}, {name: 1 for name in OBJECT_NAMES}]
    for _ in range(n):
        out.append({name: rnd.choice(OBJECT_VALUES) for name in OBJECT_NAMES if rnd.random() < 0.5})
    return out


@settings(max_examples=60, **GEN_SETTINGS)
@given(schema=dependent_object_schema(), rnd=st.randoms(use_true_random=False))
def test_dependencies_and_property_counts_are_exact(schema, rnd):
    tok = get_tok("smollm2")
    grammar = tok.compiler.compile_json_schema(schema)
    assert_exact(tok, grammar, schema, object_instances(rnd, 14))
    # undeclared members allowed: sound (they may repeat a key, so they count once for minProperties)
    try:
        loose = tok.compiler.compile_json_schema(schema, strict_properties=False)
    except constrain.UnsupportedSchemaError as exc:
        assert exc.keyword == "minProperties"
        return
    for x in object_instances(rnd, 4):
        check_instance(tok, loose, schema, x, rnd=rnd)
        check_instance(tok, loose, schema, dict(x, e=1), rnd=rnd)
    if loose.matcher().allowed_token_ids().size:
        check_walks(tok, loose, schema, rnd, 2)


ARRAY_VALUES = ["a", "b", 1, True, None]


@st.composite
def counted_array_schema(draw):
    values = st.lists(st.sampled_from(ARRAY_VALUES), min_size=1, max_size=4, unique_by=json.dumps)
    s = {"type": "array", "items": draw(st.one_of(st.builds(lambda v: {"enum": v}, values),
                                                  st.just({"type": "boolean"}), st.just({"type": ["null", "string"]})))}
    if draw(st.booleans()):
        s["prefixItems"] = [draw(st.builds(lambda v: {"enum": v}, values))]
    if draw(st.booleans()):
        s["uniqueItems"] = True
    if draw(st.booleans()):
        s["contains"] = draw(st.one_of(st.builds(lambda v: {"enum": v}, values), st.builds(lambda v: {"const": v},
                                                                                             st.sampled_from(ARRAY_VALUES))))
        if draw(st.booleans()):
            s["minContains"] = draw(st.integers(0, 2))
        if draw(st.booleans()):
            s["maxContains"] = draw(st.integers(0, 3))
    if draw(st.booleans()):
        s["minItems"] = draw(st.integers(0, 2))
    if draw(st.booleans()):
        s["maxItems"] = draw(st.integers(0, 4))
    return s


@settings(max_examples=60, **GEN_SETTINGS)
@given(schema=counted_array_schema(), rnd=st.randoms(use_true_random=False))
def test_contains_counts_and_unique_items_are_exact(schema, rnd):
    tok = get_tok("smollm2")
    try:
        grammar = tok.compiler.compile_json_schema(schema)
    except constrain.UnsupportedSchemaError as exc:  # uniqueItems over strings is not regular
        assert exc.keyword == "uniqueItems" and "string" in json.dumps(schema["items"]), schema
        return
    instances = [[], [rnd.choice(ARRAY_VALUES)]]
    instances += [[rnd.choice(ARRAY_VALUES) for _ in range(rnd.randint(2, 5))] for _ in range(14)]
    assert_exact(tok, grammar, schema, instances)
    if grammar.matcher().allowed_token_ids().size:
        check_walks(tok, grammar, schema, rnd, 2)


@settings(max_examples=40, **GEN_SETTINGS)
@given(divisor=st.sampled_from([2, 3, 7, 12, 0.5, 1.5, 2.125, 6.75, 1.0, 1e-8, 0.01]),
       integer=st.booleans(), bounded=st.booleans(), rnd=st.randoms(use_true_random=False))
def test_multiple_of_is_exact(divisor, integer, bounded, rnd):
    schema = {"type": "integer" if integer else "number", "multipleOf": divisor}
    if bounded:
        schema.update(minimum=-40, exclusiveMaximum=rnd.choice([20, 20.5]))
    tok = get_tok("smollm2")
    try:
        grammar = tok.compiler.compile_json_schema(schema)
    except constrain.UnsupportedSchemaError as exc:
        assert exc.keyword == "multipleOf" and divisor in (0.01, 1e-8) and not integer
        return
    step = divisor if isinstance(divisor, int) else float(divisor)
    values = [k * step for k in range(-30, 31, 3)] + [rnd.randint(-10**6, 10**6) * step for _ in range(5)]
    values += [v + d for v in values[:6] for d in (0.5, 1, 0.25)] + [int(v) for v in values if float(v).is_integer()]
    values += list(range(-20, 21, 7))
    assert_exact(tok, grammar, schema, [v for v in values if abs(v) < 1e12 and "e" not in json.dumps(v)])
    if grammar.matcher().allowed_token_ids().size:
        check_walks(tok, grammar, schema, rnd, 3)


def test_merged_schemas_do_not_share_terms():
    """Terms are memoized by schema identity; merged schemas are temporary, so a freed one's id
    came back for another and got its term (here: arrays rejected under "only")."""
    tok = get_tok("smollm2")
    schema = {"properties": {"skip": {"oneOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "string"}}]},
                             "only": {"oneOf": [{"type": "array", "items": {"type": "object"}}, {"type": "string"}]}}}
    grammar = tok.compiler.compile_json_schema(schema)
    assert_exact(tok, grammar, schema, [{"only": []}, {"skip": True, "only": [{}]}, {"skip": [1]}, {"only": [1]},
                                        {"skip": ["x"], "only": "y"}])


@pytest.mark.parametrize("schema,instances", [
    ({"allOf": [{"not": {"type": "string"}}, {"not": {"type": "null"}}]}, ["x", None, 1]),
    ({"allOf": [{"if": {"type": "string"}, "then": {"maxLength": 1}}, {"if": {"maxLength": 3}, "then": {"minLength": 1}}]},
     ["abc", "", "a", "abcd"]),
    ({"type": "array", "allOf": [{"contains": {"const": "a"}, "maxContains": 1}, {"contains": {"const": "b"}}]},
     [["a", "b"], ["a", "a", "b"], ["b"], ["a"]]),
])
def test_allof_keeps_keyword_groups_apart(schema, instances):
    """Two nots, two ifs (with their then/else), two contains (with their counts) all apply:
    merging them into one would weaken the schema."""
    tok = get_tok("smollm2")
    try:
        grammar = tok.compiler.compile_json_schema(schema)
    except constrain.UnsupportedSchemaError:
        return
    assert_exact(tok, grammar, schema, instances)


def test_integer_with_zero_fraction_stays_finite():
    """``1e308``-sized integers written with ``.0`` parse to a float; past 308 digits that is inf,
    which the validator does not count as an integer."""
    from constrain.automaton import DEAD, LazyDFA
    from constrain.json_schema import compile_schema_term
    from constrain.terms import TermStore
    import jsonschema

    store = TermStore()
    term, _, _ = compile_schema_term({"type": "integer"}, store)
    dfa = LazyDFA(store, term)
    validator = jsonschema.Draft202012Validator({"type": "integer"})
    for digits in (1, 308, 309, 400):
        for text in ("9" * digits, "9" * digits + ".0"):
            s = dfa.step(dfa.start, text.encode())
            ours = s != DEAD and bool(dfa.accepting[s])
            assert ours == validator.is_valid(json.loads(text)), (digits, text[-4:])


# --------------------------------------------------------------------------------------------------
# unevaluated*: rewritten into plain keywords (constrain.schema_unevaluated). Undeclared members
# are allowed (strict_properties=False) in every order (property_order="any"), so the verdict must
# equal the validator's both ways; the default grammar (declared members, in order) must be sound.
# --------------------------------------------------------------------------------------------------

UNEVALUATED = [
    # adjacent and nested properties, cousins
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "allOf": [{"properties": {"b": {"type": "string"}}}],
      "unevaluatedProperties": False},
     [{}, {"a": 1}, {"a": 1, "b": "x"}, {"b": "x", "a": 1}, {"a": 1, "c": 1}, {"b": 1}, "s"]),
    ({"allOf": [{"properties": {"a": True}}, {"unevaluatedProperties": False}]}, [{}, {"a": 1}, 3]),
    ({"properties": {"a": True}, "allOf": [{"properties": {"b": True}, "unevaluatedProperties": False}]},
     [{}, {"b": 1}, {"a": 1}, {"a": 1, "b": 1}]),
    ({"allOf": [{"unevaluatedProperties": {"type": "integer"}}], "unevaluatedProperties": False}, [{}, {"z": 1}, {"z": "x"}]),
    ({"properties": {"x": {"properties": {"a": True}, "unevaluatedProperties": False}}, "unevaluatedProperties": False},
     [{"x": {"a": 1}}, {"x": {"b": 1}}, {"y": 1}, {"x": {}, "y": 1}]),
    ({"patternProperties": {"^p": {"type": "integer"}}, "unevaluatedProperties": {"type": "boolean"}},
     [{"p1": 1, "q": True}, {"q": 1}, {"p1": "x"}, {"p": 2, "pp": 3}]),
    ({"properties": {"a": True}, "additionalProperties": {"type": "string"}, "unevaluatedProperties": False},
     [{"a": 1, "b": "x"}, {"b": 1}]),
    # anyOf: the annotations of every valid branch
    ({"anyOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                {"properties": {"b": {"type": "integer"}}, "required": ["b"]}], "unevaluatedProperties": False},
     [{"a": 1}, {"b": 1}, {"a": 1, "b": 1}, {"b": 1, "a": "x"}, {"a": 1, "c": 1}, {"a": 1, "b": "x"}, {}]),
    # oneOf: the annotations of the one valid branch
    ({"oneOf": [{"properties": {"a": {"const": 1}}, "required": ["a"]}, {"properties": {"b": {"const": 1}}, "required": ["b"]}],
      "unevaluatedProperties": {"type": "string"}},
     [{"a": 1}, {"a": 1, "b": "x"}, {"a": 1, "b": 2}, {"a": 1, "b": 1}, {"c": "x", "b": 1}, {"c": 2, "b": 1}]),
    # if/then/else: if's and then's annotations where it holds, else's where it does not
    ({"if": {"properties": {"kind": {"const": "n"}}, "required": ["kind"]}, "then": {"properties": {"n": {"type": "integer"}}},
      "else": {"properties": {"s": {"type": "string"}}}, "unevaluatedProperties": False},
     [{"kind": "n", "n": 1}, {"kind": "n", "s": "x"}, {"kind": "m", "s": "x"}, {"s": "x"}, {"kind": "n"}, {"n": 1}]),
    ({"if": {"patternProperties": {"^f": {"type": "string"}}}, "unevaluatedProperties": False},
     [{"foo": "x"}, {"foo": 1}, {"bar": 1}, {}]),
    # $ref: the target's annotations
    ({"$defs": {"base": {"properties": {"a": {"type": "integer"}}}}, "$ref": "#/$defs/base", "properties": {"b": True},
      "unevaluatedProperties": False},
     [{"a": 1, "b": 2}, {"b": 2, "a": 1}, {"c": 1}, {"a": "x"}]),
    ({"$defs": {"ab": {"oneOf": [{"properties": {"a": True}, "required": ["a"]}, {"properties": {"b": True}, "required": ["b"]}]}},
      "allOf": [{"$ref": "#/$defs/ab"}], "properties": {"c": True}, "unevaluatedProperties": False},
     [{"a": 1, "c": 1}, {"b": 1}, {"a": 1, "b": 1}, {"a": 1, "d": 1}, {"c": 1}]),
    # dependentSchemas: the subschema's annotations where its name is present
    ({"properties": {"a": True}, "dependentSchemas": {"a": {"properties": {"b": {"type": "integer"}}}},
      "unevaluatedProperties": False},
     [{"a": 1, "b": 1}, {"b": 1}, {"a": 1, "b": "x"}, {"a": 1}]),
    # not contributes nothing; booleans
    ({"not": {"not": {"properties": {"a": True}}}, "unevaluatedProperties": False}, [{"a": 1}, {}]),
    ({"allOf": [True, {"properties": {"a": True}}], "anyOf": [False, {"properties": {"b": True}}],
      "unevaluatedProperties": False},
     [{"a": 1, "b": 1}, {"c": 1}, {}]),
    # ignored where the type excludes objects
    ({"type": "string", "unevaluatedProperties": False}, ["x", {}]),
    # items: prefixItems, items, contains, nested
    ({"prefixItems": [True], "contains": {"type": "string"}, "unevaluatedItems": False},
     [[1, "a"], [1, 2], [1, "a", 2], ["a"], [1, "a", "b"], []]),
    ({"prefixItems": [{"type": "string"}], "allOf": [{"prefixItems": [True, {"type": "integer"}]}], "unevaluatedItems": False},
     [["a", 1], ["a", 1, 2], ["a"], [1]]),
    ({"allOf": [{"contains": {"const": 2}}, {"contains": {"const": 3}}], "unevaluatedItems": {"type": "string"}},
     [[2, 3], [2, 3, "x"], [2, 3, 4], [3, 2, 2], [2]]),
    ({"anyOf": [{"prefixItems": [{"const": 1}]}, {"prefixItems": [True, {"const": 2}]}], "unevaluatedItems": {"type": "string"}},
     [[1], [1, 2], [1, "x"], [1, 3], [0, 2], [0, 2, "s"], [0, 2, 5], [5]]),
    ({"if": {"contains": {"const": "a"}}, "then": {"prefixItems": [True, {"type": "integer"}]}, "unevaluatedItems": False},
     [["a", 1], ["a"], ["b"], ["a", "b"], ["a", 1, "a"], ["a", 1, "c"], []]),
    ({"oneOf": [{"items": {"type": "integer"}}, {"prefixItems": [{"type": "string"}]}], "unevaluatedItems": False},
     [[1, 2], ["a"], ["a", 1], [], [1, "a"]]),
    ({"$defs": {"pair": {"prefixItems": [True, True]}}, "$ref": "#/$defs/pair", "unevaluatedItems": {"type": "null"}},
     [[1, 2], [1, 2, None], [1, 2, 3]]),
    ({"items": {"type": "array", "prefixItems": [True], "unevaluatedItems": False}, "unevaluatedItems": False},
     [[[1]], [[1, 2]], [], [[], [3]]]),
    # both keywords on one node
    ({"type": ["object", "array"], "properties": {"a": True}, "prefixItems": [True],
      "unevaluatedProperties": False, "unevaluatedItems": False},
     [{"a": 1}, {"b": 1}, [1], [1, 2], "s"]),
]


def unevaluated_grammar(schema):
    return get_tok("smollm2").compiler.compile_json_schema(schema, strict_properties=False, property_order="any")


@pytest.mark.parametrize("case", range(len(UNEVALUATED)), ids=lambda i: json.dumps(UNEVALUATED[i][0])[:60])
def test_unevaluated_hand_written(case):
    schema, instances = UNEVALUATED[case]
    tok = get_tok("smollm2")
    verdicts = [validator(schema).is_valid(x) for x in instances]
    assert any(verdicts) and not all(verdicts)  # each case tells valid from invalid
    assert_exact(tok, unevaluated_grammar(schema), schema, instances)
    grammar = tok.compiler.compile_json_schema(schema)  # declared members only, in order: sound
    rnd = random.Random(case)
    for x in instances:
        check_instance(tok, grammar, schema, x, rnd=rnd)
    if grammar.matcher().allowed_token_ids().size:
        check_walks(tok, grammar, schema, rnd, 3)


def test_unevaluated_refusals():
    """Beyond the budget of annotation cases, and through in-place recursion: refused, naming the keyword."""
    many = {"anyOf": [{"properties": {n: True}} for n in "abcdefg"], "unevaluatedProperties": False}
    recursive = {"$defs": {"n": {"anyOf": [{"prefixItems": [True]}, {"$ref": "#/$defs/n"}]}}, "$ref": "#/$defs/n",
                 "unevaluatedItems": False}
    for schema, keyword in ((many, "unevaluatedProperties"), (recursive, "unevaluatedItems")):
        with pytest.raises(constrain.UnsupportedSchemaError) as info:
            get_tok("smollm2").compiler.compile_json_schema(schema)
        assert info.value.keyword == keyword and info.value.path == "#"
        grammar = get_tok("smollm2").compiler.compile_json_schema(schema, lenient=True)  # dropped, with a warning
        assert any(keyword in w for w in grammar.warnings)


UNEVAL_NAMES = ["a", "b", "c"]
UNEVAL_VALUES = [1, "x", None]
uneval_values = st.sampled_from([{"type": "integer"}, {"type": "string"}, {"const": 1}, True, False])


def uneval_schemas(props: bool):
    """Small schemas built from the in-place applicators around keywords that annotate members
    (props) or elements; "#/$defs/d" is always defined (by uneval_root)."""
    names = st.sampled_from(UNEVAL_NAMES)
    if props:
        own = st.one_of(
            st.builds(lambda n, s: {"properties": {n: s}}, names, uneval_values),
            st.builds(lambda n, s: {"properties": {n: s}, "required": [n]}, names, uneval_values),
            st.builds(lambda s: {"patternProperties": {"^[ab]": s}}, uneval_values),
            st.builds(lambda s: {"additionalProperties": s}, uneval_values),
            st.builds(lambda n: {"required": [n]}, names),
        )
        nested = st.builds(lambda s: {"unevaluatedProperties": s}, uneval_values)
    else:
        own = st.one_of(
            st.builds(lambda p: {"prefixItems": p}, st.lists(uneval_values, min_size=1, max_size=2)),
            st.builds(lambda s: {"items": s}, uneval_values),
            st.builds(lambda s: {"contains": s}, uneval_values),
            st.builds(lambda s: {"contains": s, "minContains": 0}, uneval_values),
            st.builds(lambda k: {"minItems": k}, st.integers(1, 2)),
        )
        nested = st.builds(lambda s: {"unevaluatedItems": s}, uneval_values)
    leaf = st.one_of(own, nested, st.sampled_from([True, False, {"$ref": "#/$defs/d"}]))

    def around(children):
        branches = st.lists(children, min_size=1, max_size=2)
        applicator = st.one_of(
            st.builds(lambda bs: {"allOf": bs}, branches),
            st.builds(lambda bs: {"anyOf": bs}, branches),
            st.builds(lambda bs: {"oneOf": bs}, branches),
            st.builds(lambda i, t: {"if": i, "then": t}, children, children),
            st.builds(lambda i, e: {"if": i, "else": e}, children, children),
            st.builds(lambda s: {"not": s}, children),
            *([st.builds(lambda n, s: {"dependentSchemas": {n: s}}, names, children)] if props else []),
        )
        return st.builds(lambda o, a: {**o, **a} if isinstance(o, dict) else a, st.one_of(own, st.just(True)), applicator)

    return st.recursive(leaf, around, max_leaves=4)


@st.composite
def uneval_root(draw, props: bool):
    node = draw(uneval_schemas(props))
    node = dict(node) if isinstance(node, dict) else {"allOf": [node]}
    keyword = "unevaluatedProperties" if props else "unevaluatedItems"
    node[keyword] = draw(st.sampled_from([False, {"type": "string"}, {"type": "integer"}]))
    defs = draw(uneval_schemas(props).filter(lambda s: "$ref" not in json.dumps(s)))
    return {**node, "$defs": {"d": defs}}


def uneval_instances(rnd: random.Random, props: bool) -> list:
    out: list = [{} if props else [], 3, None]
    for _ in range(12):
        if props:
            keys = rnd.sample(UNEVAL_NAMES + ["zz"], rnd.randint(1, 3))
            out.append({k: rnd.choice(UNEVAL_VALUES) for k in keys})
        else:
            out.append([rnd.choice(UNEVAL_VALUES) for _ in range(rnd.randint(1, 3))])
    return out


def negated_one_of(schema, root, negated: bool = False, depth: int = 0) -> bool:
    """Whether a oneOf sits under not, an if or another oneOf (the compiler's superset of a oneOf,
    for the complement there, is its anyOf: some valid instances are then rejected)."""
    if not isinstance(schema, dict) or depth > 20:
        return False
    if "oneOf" in schema and negated:
        return True
    subs = [(s, negated) for k in ("allOf", "anyOf") for s in schema.get(k, [])]
    subs += [(s, True) for s in schema.get("oneOf", [])] + [(schema[k], True) for k in ("not", "if") if k in schema]
    subs += [(schema[k], negated) for k in ("then", "else") if k in schema]
    subs += [(s, negated) for s in schema.get("dependentSchemas", {}).values()]
    if "$ref" in schema:
        subs.append((root["$defs"]["d"], negated))
    return any(negated_one_of(s, root, n, depth + 1) for s, n in subs)


def check_unevaluated(schema, rnd: random.Random, props: bool) -> None:
    tok = get_tok("smollm2")
    try:
        grammar = unevaluated_grammar(schema)
    except constrain.UnsupportedSchemaError as exc:  # only the budget of annotation cases
        assert exc.keyword in ("unevaluatedProperties", "unevaluatedItems") and "cases" in exc.detail, exc
        return
    instances = uneval_instances(rnd, props)
    if not negated_one_of(schema, schema):
        assert_exact(tok, grammar, schema, instances)
        return
    check = validator(schema)
    for x in instances:  # sound: every accepted instance is valid
        if not check.is_valid(x):
            assert not matcher_verdict(tok, grammar, tok.canonical(json.dumps(x))), (schema, x)


@settings(max_examples=60, **GEN_SETTINGS)
@given(schema=uneval_root(True), rnd=st.randoms(use_true_random=False))
def test_unevaluated_properties_generated(schema, rnd):
    check_unevaluated(schema, rnd, props=True)


@settings(max_examples=60, **GEN_SETTINGS)
@given(schema=uneval_root(False), rnd=st.randoms(use_true_random=False))
def test_unevaluated_items_generated(schema, rnd):
    check_unevaluated(schema, rnd, props=False)
