"""JSON Schema to a byte-level term: the JSON texts whose values the validator accepts.

Semantics are those of ``jsonschema.Draft202012Validator`` with ``FormatChecker()``. This module
supports a first subset of keywords exactly; any other validation keyword raises
``UnsupportedSchemaError`` with its JSON pointer (or, with ``lenient=True``, is dropped with a
warning the caller can read). Keywords the validator ignores (unknown ones, annotations), we
ignore too.

Deliberate narrowings, each recorded in the grammar's ``warnings`` (what we generate is always
valid; some valid texts are not generated):

- properties are written in declaration order; extra properties are not generated even when the
  schema allows them;
- values of unconstrained type (``{}``, missing ``items``) nest at most ``any_depth`` levels;
- strings use raw UTF-8 with the escapes ``json.dumps`` writes (no ``\\uXXXX`` for printable
  characters); numbers are plain decimal (``integer`` also as ``1.0``).
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError as JsonSchemaSchemaError

from . import charset as cs
from .errors import SchemaError, UnsupportedSchemaError
from .formats import FORMAT_PATTERNS, SUBSET_FORMATS, checked_formats
from .regex import Encoding, Lowering
from .terms import EMPTY, EPS, INF, TermStore

WHITESPACE_STYLES = ("flexible", "compact", "dumps")
TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")

# Keywords the validator reads that carry no constraint we need to enforce.
_STRUCTURAL = {"$defs", "definitions", "$schema", "$id", "$anchor", "$comment", "$vocabulary",
               "$dynamicAnchor"}
_VALIDATION = set(Draft202012Validator.VALIDATORS)
_SUPPORTED = {"type", "properties", "required", "additionalProperties", "enum", "const", "items",
              "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "$ref"}
# Keywords that constrain only instances of some types: ignored when the schema allows none of them.
_KEYWORD_TYPES = {
    **dict.fromkeys(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"],
                    {"number", "integer"}),
    **dict.fromkeys(["minLength", "maxLength", "pattern", "format"], {"string"}),
    **dict.fromkeys(["items", "prefixItems", "minItems", "maxItems", "contains", "minContains",
                     "maxContains", "uniqueItems", "unevaluatedItems"], {"array"}),
    **dict.fromkeys(["properties", "required", "additionalProperties", "patternProperties",
                     "propertyNames", "minProperties", "maxProperties", "dependentRequired",
                     "dependentSchemas", "unevaluatedProperties"], {"object"}),
}


def load_schema(schema: dict | bool | str | bytes) -> dict | bool:
    """Accept a schema as a dict, a bool or JSON text."""
    if isinstance(schema, (str, bytes)):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"schema is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if not isinstance(schema, (dict, bool)):
        raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}")
    return schema


def parse_schema(schema: dict | bool | str | bytes) -> dict | bool:
    """Load ``schema`` and check it against the 2020-12 metaschema."""
    schema = load_schema(schema)
    try:
        Draft202012Validator.check_schema(schema)
    except JsonSchemaSchemaError as exc:
        pointer = "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in exc.absolute_path)
        raise SchemaError(f"invalid schema: {exc.message}", pointer.rstrip("/") or "#") from None
    return schema


def compile_schema_term(schema: dict | bool, store: TermStore, *, whitespace: str = "flexible",
                        max_whitespace: int = 24, lenient: bool = False,
                        any_depth: int = 3) -> tuple[int, list[str]]:
    """Lower ``schema`` into ``store``; return the term and the list of warnings."""
    if whitespace not in WHITESPACE_STYLES:
        raise ValueError(f"whitespace must be one of {WHITESPACE_STYLES}, not {whitespace!r}")
    compiler = _SchemaCompiler(schema, store, whitespace, max_whitespace, lenient, any_depth)
    term = compiler.value(schema, "#")
    return term, sorted(compiler.warnings)


class _SchemaCompiler:
    def __init__(self, root, store: TermStore, whitespace: str, max_whitespace: int, lenient: bool,
                 any_depth: int):
        self.root = root
        self.st = store
        self.low = Lowering(store)
        self.lenient = lenient
        self.any_depth = any_depth
        self.warnings: set[str] = set()
        self.formats = checked_formats()
        self.validator = Draft202012Validator(root, format_checker=FormatChecker())
        self._ref_stack: list[str] = []
        self._memo: dict[tuple[int, str], int] = {}
        st = store
        if whitespace == "flexible":
            ws = st.rep(st.byte_set(_mask(b" \t\n\r")), 0, max_whitespace)
            self.item_sep = st.seq(ws, st.literal(b","), ws)
            self.key_sep = st.seq(ws, st.literal(b":"), ws)
            self.inner_ws = ws
        elif whitespace == "compact":
            self.item_sep, self.key_sep, self.inner_ws = st.literal(b","), st.literal(b":"), EPS
        else:
            self.item_sep, self.key_sep, self.inner_ws = st.literal(b", "), st.literal(b": "), EPS
        self.json_char = self.low.charset(cs.ANY, Encoding.JSON)
        self._any: dict[int, int] = {}

    # -- helpers ------------------------------------------------------------------------------
    def unsupported(self, keyword: str, path: str, detail: str = "") -> None:
        if not self.lenient:
            raise UnsupportedSchemaError(keyword, path, detail)
        self.warnings.add(f"ignored {keyword!r} at {path}" + (f": {detail}" if detail else ""))

    def note(self, message: str) -> None:
        self.warnings.add(message)

    # -- values ---------------------------------------------------------------------------------
    def value(self, schema, path: str) -> int:
        if schema is True:
            return self.any_value(self.any_depth)
        if schema is False:
            return EMPTY
        key = (id(schema), path)
        got = self._memo.get(key)
        if got is None:
            got = self._value(schema, path)
            self._memo[key] = got
        return got

    def _value(self, schema: dict, path: str) -> int:
        types = schema.get("type", list(TYPES))
        types = [types] if isinstance(types, str) else list(types)
        for kw in schema:
            if kw in _VALIDATION and kw not in _SUPPORTED:
                applies = _KEYWORD_TYPES.get(kw)
                if applies is None or applies & set(types):
                    self.unsupported(kw, path)
        if "$ref" in schema:
            return self.ref(schema, path)
        if "enum" in schema or "const" in schema:
            return self.enumeration(schema, path)
        if "integer" in types and "number" in types:
            types.remove("integer")
        return self.st.alt(*[self.typed(t, schema, path) for t in types])

    def typed(self, t: str, schema: dict, path: str) -> int:
        st = self.st
        if t == "null":
            return st.literal(b"null")
        if t == "boolean":
            return st.alt(st.literal(b"true"), st.literal(b"false"))
        if t == "integer":
            return self.integer()
        if t == "number":
            return self.number()
        if t == "string":
            return self.string(schema, path)
        if t == "array":
            return self.array(schema, path)
        return self.object(schema, path)

    def ref(self, schema: dict, path: str) -> int:
        ref = schema["$ref"]
        siblings = [k for k in schema if k in _VALIDATION and k != "$ref"]
        if siblings:
            self.unsupported("$ref", path, f"$ref beside validation keywords {siblings} is not supported yet")
        if ref in self._ref_stack:
            self.unsupported("$ref", path, f"recursive reference {ref!r} needs the context-free engine")
            return self.any_value(self.any_depth)
        target = self.resolve(ref, path)
        self._ref_stack.append(ref)
        try:
            return self.value(target, ref)
        finally:
            self._ref_stack.pop()

    def resolve(self, ref: str, path: str):
        if not ref.startswith("#"):
            self.unsupported("$ref", path, f"only local references are supported, not {ref!r}")
            return True
        fragment = unquote(ref[1:])
        if fragment and not fragment.startswith("/"):
            found = _find_anchor(self.root, fragment)
            if found is None:
                raise SchemaError(f"$ref {ref!r} names no $anchor", path)
            return found
        node = self.root
        for part in fragment.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} does not resolve", path)
        return node

    def enumeration(self, schema: dict, path: str) -> int:
        values = list(schema["enum"]) if "enum" in schema else None
        if "const" in schema:
            values = [schema["const"]] if values is None else [v for v in values if _equal(v, schema["const"])]
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        # The other keywords filter the candidates; the validator itself decides, so this is exact.
        check = self.validator.evolve(schema=rest)
        kept = [v for v in values if check.is_valid(v)]
        return self.st.alt(*[self.literal_value(v) for v in kept])

    def literal_value(self, v: Any) -> int:
        st = self.st
        if v is None or isinstance(v, bool):
            return st.literal(json.dumps(v).encode())
        if isinstance(v, int):
            return st.alt(st.literal(str(v).encode()), st.literal(f"{v}.0".encode()))
        if isinstance(v, float):
            forms = {json.dumps(v)}
            if math.isfinite(v) and v.is_integer() and abs(v) < 1e16:
                forms.add(str(int(v)))
            return st.alt(*[st.literal(f.encode()) for f in forms])
        if isinstance(v, str):
            return self.string_literal(v)
        if isinstance(v, list):
            if not v:
                return st.seq(st.literal(b"["), self.inner_ws, st.literal(b"]"))
            items = [self.literal_value(x) for x in v]
            body = [items[0]]
            for x in items[1:]:
                body += [self.item_sep, x]
            return st.seq(st.literal(b"["), self.inner_ws, *body, self.inner_ws, st.literal(b"]"))
        if not v:
            return st.seq(st.literal(b"{"), self.inner_ws, st.literal(b"}"))
        members = []
        for i, (k, x) in enumerate(v.items()):
            if i:
                members.append(self.item_sep)
            members += [self.string_literal(k), self.key_sep, self.literal_value(x)]
        return st.seq(st.literal(b"{"), self.inner_ws, *members, self.inner_ws, st.literal(b"}"))

    def string_literal(self, s: str) -> int:
        st = self.st
        chars = [self.low.charset(cs.single(ord(c)), Encoding.JSON) for c in s]
        return st.seq(st.literal(b'"'), *chars, st.literal(b'"'))

    # -- scalars ----------------------------------------------------------------------------------
    def integer(self) -> int:
        st = self.st
        digits = st.byte_range(0x30, 0x39)
        natural = st.alt(st.literal(b"0"), st.seq(st.byte_range(0x31, 0x39), st.star(digits)))
        zeros = st.opt(st.seq(st.literal(b"."), st.rep(st.literal(b"0"), 1)))
        return st.seq(st.opt(st.literal(b"-")), natural, zeros)

    def number(self) -> int:
        st = self.st
        digits = st.byte_range(0x30, 0x39)
        natural = st.alt(st.literal(b"0"), st.seq(st.byte_range(0x31, 0x39), st.star(digits)))
        frac = st.opt(st.seq(st.literal(b"."), st.rep(digits, 1)))
        exp = st.opt(st.seq(st.byte_set(_mask(b"eE")), st.opt(st.byte_set(_mask(b"+-"))), st.rep(digits, 1)))
        return st.seq(st.opt(st.literal(b"-")), natural, frac, exp)

    def string(self, schema: dict, path: str) -> int:
        st = self.st
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        content = st.rep(self.json_char, int(lo), INF if hi is None else int(hi))
        if "pattern" in schema:
            content = st.and_(content, self.low.search(schema["pattern"], Encoding.JSON))
        fmt = schema.get("format")
        if fmt is not None and fmt in self.formats:
            if fmt not in FORMAT_PATTERNS:
                self.unsupported("format", path, f"format {fmt!r} is not supported yet")
            else:
                if fmt in SUBSET_FORMATS:
                    self.note(f"format {fmt!r}: only the canonical form is generated")
                content = st.and_(content, self.low.fullmatch(FORMAT_PATTERNS[fmt], Encoding.JSON))
        return st.seq(st.literal(b'"'), content, st.literal(b'"'))

    # -- containers -------------------------------------------------------------------------------
    def array(self, schema: dict, path: str) -> int:
        st = self.st
        items = schema.get("items", True)
        if items is True:
            self.note(f"array items without a schema nest at most {self.any_depth} levels")
        item = self.value(items, path + "/items")
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        hi = INF if hi is None else int(hi)
        open_, close = st.seq(st.literal(b"["), self.inner_ws), st.seq(self.inner_ws, st.literal(b"]"))
        if hi != INF and hi < lo:
            return EMPTY
        if item == EMPTY:
            return st.seq(open_, close) if lo == 0 else EMPTY
        more = st.rep(st.seq(self.item_sep, item), max(lo - 1, 0), INF if hi == INF else hi - 1)
        body = st.seq(item, more)
        if lo == 0:
            body = st.opt(body) if hi != 0 else EPS
        return st.seq(open_, body, close)

    def object(self, schema: dict, path: str) -> int:
        st = self.st
        props = dict(schema.get("properties", {}))
        required = list(dict.fromkeys(schema.get("required", [])))
        additional = schema.get("additionalProperties", True)
        for name in required:
            if name not in props:
                if additional is False:
                    return EMPTY  # a required property that may not appear
                props[name] = additional
        if additional is not False:
            if not props:
                return self.free_object(additional, path)
            self.note("extra properties are not generated (the schema allows them)")
        names = list(props)
        members = []
        for name in names:
            value = self.value(props[name], f"{path}/properties/{_escape(name)}")
            if value == EMPTY:
                if name in required:
                    return EMPTY
                continue
            members.append((st.seq(self.string_literal(name), self.key_sep, value), name in required))
        # first[i]: members i.. with none written yet; later[i]: members i.. after at least one.
        first, later = EPS, EPS
        for member, is_required in reversed(members):
            new_later = st.seq(self.item_sep, member, later)
            new_first = st.seq(member, later)
            if not is_required:
                new_later = st.alt(new_later, later)
                new_first = st.alt(new_first, first)
            first, later = new_first, new_later
        return st.seq(st.literal(b"{"), self.inner_ws, first, self.inner_ws, st.literal(b"}"))

    def free_object(self, additional, path: str) -> int:
        """An object with any keys whose values all follow ``additional``."""
        st = self.st
        key = st.seq(st.literal(b'"'), st.star(self.json_char), st.literal(b'"'))
        member = st.seq(key, self.key_sep, self.value(additional, path + "/additionalProperties"))
        return st.seq(st.literal(b"{"), self.inner_ws, st.opt(st.seq(member, st.star(st.seq(self.item_sep, member)))),
                      self.inner_ws, st.literal(b"}"))

    def any_value(self, depth: int) -> int:
        got = self._any.get(depth)
        if got is not None:
            return got
        st = self.st
        string = st.seq(st.literal(b'"'), st.star(self.json_char), st.literal(b'"'))
        scalars = [st.literal(b"null"), st.literal(b"true"), st.literal(b"false"), self.number(), string]
        if depth <= 0:
            term = st.alt(*scalars)
        else:
            self.note(f"values of unconstrained type nest at most {self.any_depth} levels")
            inner = self.any_value(depth - 1)
            array = st.seq(st.literal(b"["), self.inner_ws,
                           st.opt(st.seq(inner, st.star(st.seq(self.item_sep, inner)))),
                           self.inner_ws, st.literal(b"]"))
            member = st.seq(string, self.key_sep, inner)
            obj = st.seq(st.literal(b"{"), self.inner_ws,
                         st.opt(st.seq(member, st.star(st.seq(self.item_sep, member)))),
                         self.inner_ws, st.literal(b"}"))
            term = st.alt(*scalars, array, obj)
        self._any[depth] = term
        return term


def _mask(chars: bytes) -> int:
    m = 0
    for b in chars:
        m |= 1 << b
    return m


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _equal(a: Any, b: Any) -> bool:
    from jsonschema._utils import equal

    return equal(a, b)


def _find_anchor(node, name: str):
    if isinstance(node, dict):
        if node.get("$anchor") == name:
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_anchor(child, name)
        if found is not None:
            return found
    return None
