"""Which subschemas the JSON Schema compiler may build later, when generation first reaches them.

A large document (a Kubernetes resource, a CI configuration) declares hundreds of properties, and
one generated instance writes a few of them: building every member's value up front is most of
such a compile. A value can wait (``TermStore.lazy``) where building it later changes nothing
that the compile reports:

- it refuses nothing and adds no warning but the ones known in advance (returned here, and
  recorded at compile time): an error or a narrowing must surface when compiling, not during
  generation;
- its language is nonempty (emptiness decides which members and states exist while compiling);
- it reaches no recursive reference (holes make the language context-free, which the compile
  decides).

``Deferral.notes`` proves these syntactically, for the keywords where the proof is short:
``type``, ``enum``/``const`` of scalars, ``properties``, ``required``, ``additionalProperties``,
``patternProperties`` that no key and no declared name shares (a search, as the compiler makes),
``items``/``prefixItems`` with ``minItems``/``maxItems``, string lengths, ``format``s compiled
exactly, numeric bounds with room between them, non-recursive ``$ref``, ``anyOf``, ``oneOf``
whose branches are disjoint, and ``allOf`` whose parts merge into one schema (proven as that
schema). Anything else (``multipleOf``; ``pattern``, which may be refused or empty; ``not``, ...)
is built at once, as before, and its own members may still wait.
Such a part may also be built at once *inside* a value that waits (where the compiler would
compile that very subschema object: a member's value, an element, a reference's target): its
warnings and refusals come now, its term is memoized for later, and where that term is nonempty
by its structure (no AND/NOT, no grammar hole) the value around it still waits.

Example::

    >>> from jsonschema import Draft202012Validator
    >>> from constrain.schema_refs import LinkedSchema
    >>> linked = LinkedSchema({"properties": {"a": {"type": "object", "properties": {"b": {}}},
    ...                                       "n": {"type": "integer", "minimum": 0},
    ...                                       "p": {"type": "string", "pattern": "^x"}}})
    >>> check = Deferral(linked, frozenset(), Draft202012Validator(linked.root), lambda s: False,
    ...                  lambda patterns: False, lambda s: None, lambda s, path: False, strict_properties=False,
    ...                  any_order=True)
    >>> [check.notes(linked.root["properties"][name], "#/properties/" + name) for name in "anp"]
    [frozenset(), frozenset({'bounded numbers are written without exponent'}), None]
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from .formats import SUBSET_FORMATS, format_patterns
from .numbers import bound_decimal
from .schema_dialects import INTEGER_TEXT
from .schema_refs import LinkedSchema
from .schema_types import TYPES, VALIDATION, escape_pointer, json_type, type_list

STRICT_PROPERTIES_NOTE = "undeclared properties are not generated (strict_properties)"
DECLARED_ORDER_NOTE = "declared properties are written in declaration order"
BOUNDED_NUMBERS_NOTE = "bounded numbers are written without exponent"

# keywords whose compilation is proven quiet and nonempty below; any other validation keyword
# (or reference-like "$" keyword) makes a schema be built at once
_PROVEN = {"type", "enum", "const", "properties", "required", "additionalProperties", "items",
           "prefixItems", "minItems", "maxItems", "minLength", "maxLength", "format", "$ref", "anyOf",
           "oneOf", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "patternProperties",
           INTEGER_TEXT}
_PROVEN_PATTERNS = 16  # patternProperties of at most this many patterns (a search for each pair)
_BOUNDS = {"minimum": (True, False), "exclusiveMinimum": (True, True),  # (lower, strict)
           "maximum": (False, False), "exclusiveMaximum": (False, True)}
_INERT_DOLLAR = {"$comment", "$id", "$schema", "$anchor", "$defs", "$dynamicAnchor", "$vocabulary"}


class Deferral:
    """Decides, once per subschema of one linked document, whether its value may be built later."""

    def __init__(self, refs: LinkedSchema, formats: frozenset[str], validator: Any,
                 disjoint_one_of: Callable[[dict], bool], patterns_apart: Callable[[list[str]], bool],
                 merged_all_of: Callable[[dict], Any], build_now: Callable[[Any, str], bool], *,
                 strict_properties: bool, any_order: bool):
        self.refs = refs
        self.disjoint_one_of = disjoint_one_of  # whether the compiler needs no exclusions for a oneOf
        self.patterns_apart = patterns_apart  # whether patternProperties lower quietly, no key of two
        self.merged_all_of = merged_all_of  # the one schema an allOf compiles as, or None
        self.build_now = build_now
        self._built: dict[int, tuple[Any, bool]] = {}  # by id: (the schema, build_now's answer)
        self.formats = formats
        self.validator = validator
        self.strict_properties = strict_properties
        self.any_order = any_order
        # by id: (the schema, kept alive so that its id is not reused; its notes or None)
        self._memo: dict[int, tuple[Any, frozenset[str] | None]] = {}

    def notes(self, schema: Any, path: str, kept: bool = False) -> frozenset[str] | None:
        """The warnings that compiling ``schema`` (as a subset, at JSON pointer ``path``) adds,
        where it is proven to add no other, to refuse nothing, to accept some value and to reach
        no recursive reference; None where that is not proven.

        ``kept``: the compiler compiles this very schema object here (a member's value, an
        element, a reference's target), not a copy merged with siblings. What is not proven is
        then built now (``build_now``: its warnings and refusals now, its term memoized for later)
        and counts as proven where it is nonempty and has no grammar hole: a deferred value may
        hold a part built at once.
        """
        if schema is True:
            return frozenset()
        if not isinstance(schema, dict):
            return None  # false (empty), or not a schema: compiled at once, which reports it
        got = self._memo.get(id(schema))
        if got is None:
            self._memo[id(schema)] = (schema, None)  # a cycle (none without recursion) proves nothing
            got = self._memo[id(schema)] = (schema, self._notes(schema, path))
        if got[1] is not None or not kept:
            return got[1]
        built = self._built.get(id(schema))
        if built is None:
            built = self._built[id(schema)] = (schema, self.build_now(schema, path))
        return frozenset() if built[1] else None

    def _notes(self, schema: dict, path: str) -> frozenset[str] | None:
        if "allOf" in schema:  # proven as the schema its parts merge into, where they all do
            merged = self.merged_all_of(schema)
            return None if merged is None else self.notes(merged, path)
        for kw in schema:
            if kw in VALIDATION and kw not in _PROVEN or kw.startswith("$") and kw not in _PROVEN | _INERT_DOLLAR:
                return None
        if "$ref" in schema:
            return self._reference(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = schema[key]
                if any(kw in VALIDATION for kw in schema if kw != key) or not isinstance(branches, list) or not branches:
                    return None  # (siblings are merged into each branch: not proven here)
                if key == "oneOf" and "anyOf" in schema or key == "oneOf" and not self.disjoint_one_of(schema):
                    return None
                # (branches are compiled merged with the siblings: copies, so none is built now)
                return _union(self.notes(branch, f"{path}/{key}/{i}") for i, branch in enumerate(branches))
        if "enum" in schema or "const" in schema:
            return None if INTEGER_TEXT in schema else self._enumeration(schema)
        types = type_list(schema)
        if not types or any(t not in TYPES for t in types):
            return None
        notes = [frozenset()]
        for t in types:  # every type listed is compiled: each must be quiet and nonempty
            if t == "number" or t == "integer" and "number" not in types:  # (number covers integer)
                notes.append(self._number(schema, t == "integer" or schema.get(INTEGER_TEXT) == "plain"))
            elif t == "string":
                notes.append(self._string(schema))
            elif t == "array":
                notes.append(self._array(schema, path))
            elif t == "object":
                notes.append(self._object(schema, path))
        return _union(notes)

    def _reference(self, schema: dict) -> frozenset[str] | None:
        ref = schema["$ref"]
        if any(kw in VALIDATION for kw in schema if kw != "$ref") or not isinstance(ref, str):
            return None  # merged with its siblings: not proven here
        target = self.refs.target(ref)
        if target.error is not None or self.refs.is_recursive(ref):
            return None
        return self.notes(target.contents, target.path, kept=True)

    def _enumeration(self, schema: dict) -> frozenset[str] | None:
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list) or not all(_scalar(v) for v in values):
            return None  # constant objects may add a warning (key order)
        if "const" in schema and "enum" in schema:
            return None
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        if all(k == "type" or k not in VALIDATION for k in rest):  # the usual case: types only
            types = set(type_list(rest))
            kept = any(json_type(v) in types or json_type(v) == "integer" and "number" in types for v in values)
        else:  # as compiling it keeps them: the validator decides
            check = self.validator.evolve(schema=rest)
            kept = any(check.is_valid(v) for v in values)
        return frozenset() if kept else None

    def _number(self, schema: dict, integer: bool) -> frozenset[str] | None:
        if schema.get(INTEGER_TEXT, "plain") != "plain":
            return None
        lo = hi = None  # (bound, strict), the tightest, as the compiler picks them
        for key, (lower, strict) in _BOUNDS.items():
            if key not in schema:
                continue
            v = schema[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not abs(v) <= 2 ** 53:
                return None  # (huge or odd bounds: not proven here)
            b = bound_decimal(v, strict, lower=lower)
            if lower and (lo is None or b > lo[0] or b == lo[0] and strict):
                lo = (b, strict)
            if not lower and (hi is None or b < hi[0] or b == hi[0] and strict):
                hi = (b, strict)
        if lo is None and hi is None:
            return frozenset()
        if lo is not None and hi is not None:
            if integer:  # the least integer above the lower bound must not pass the upper one
                n = math.ceil(lo[0])
                n += lo[1] and n == lo[0]
                if n > hi[0] or hi[1] and n == hi[0]:
                    return None
            elif hi[0] - lo[0] < 1:  # (room for a short decimal between them)
                return None
        return frozenset({BOUNDED_NUMBERS_NOTE})

    def _string(self, schema: dict) -> frozenset[str] | None:
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        if not _count(lo) or hi is not None and (not _count(hi) or hi < lo):
            return None
        fmt = schema.get("format")
        if fmt in self.formats:  # (formats the validator does not check are ignored)
            if fmt in SUBSET_FORMATS or format_patterns(fmt) is None or "minLength" in schema or "maxLength" in schema:
                return None  # a warning, a refusal, or lengths that the format may not meet
        return frozenset()

    def _array(self, schema: dict, path: str) -> frozenset[str] | None:
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if not _count(lo) or hi is not None and (not _count(hi) or hi < lo):
            return None
        prefix = schema.get("prefixItems", [])
        if not isinstance(prefix, list):
            return None
        items = schema.get("items", True)
        if items is False and lo == 0 and not prefix:
            return frozenset()  # only the empty array
        return _union([*(self.notes(s, f"{path}/prefixItems/{i}", kept=True) for i, s in enumerate(prefix)),
                       self.notes(items, path + "/items", kept=True)])

    def _object(self, schema: dict, path: str) -> frozenset[str] | None:
        props = schema.get("properties", {})
        required = schema.get("required", [])
        additional = schema.get("additionalProperties", True)
        patterns = schema.get("patternProperties", {})
        if not isinstance(props, dict) or not isinstance(required, list) or not isinstance(patterns, dict):
            return None
        strict = self.strict_properties and bool(props)  # then undeclared members are not compiled
        extras = not strict and (additional is not False or bool(patterns))
        notes = []
        if patterns:  # proven where each key is of one pattern at most, and no declared name is
            if len(patterns) > _PROVEN_PATTERNS or not self.patterns_apart(list(patterns)):
                return None
            if any(re.search(p, name) for p in patterns for name in (*props, *required)):
                return None  # (its value merges the pattern's schema with another: a copy)
            if not strict:
                notes += [self.notes(s, f"{path}/patternProperties/{escape_pointer(p)}", kept=True)
                          for p, s in patterns.items()]
        # (false ones: not proven, see notes)
        notes += [self.notes(s, f"{path}/properties/{escape_pointer(name)}", kept=True) for name, s in props.items()]
        for name in required:
            if name not in props:  # its value: additionalProperties (false: empty)
                notes.append(self.notes(additional, f"{path}/properties/{escape_pointer(name)}", kept=True))
        if extras and additional is not False:
            notes.append(self.notes(additional, path + "/additionalProperties", kept=True))
        out = _union(notes)
        if out is None:
            return None
        # the object's own warnings, as the compiler's object_members adds them
        names = set(props) | set(required)
        if strict:
            out |= {STRICT_PROPERTIES_NOTE}
        if not self.any_order and (len(names) > 1 or names and extras):
            out |= {DECLARED_ORDER_NOTE}
        return out


def _union(parts) -> frozenset[str] | None:
    out: frozenset[str] = frozenset()
    for p in parts:
        if p is None:
            return None
        out |= p
    return out


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, str)) or isinstance(v, float) and math.isfinite(v)


def _count(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n >= 0
