"""Merge JSON Schemas under ``allOf`` semantics: one schema valid exactly when both are.

Merging keeps combinations of keywords in one schema, so that the object and array builders see
every constraint at once (``allOf: [{properties: a}, {required: [b]}]`` must generate objects with
``a`` and ``b``, which intersecting two separately built languages would not).

``merge(a, b)`` returns the merged schema, or ``None`` where a keyword pair has no exact merged
form (the caller then intersects the two compiled languages instead, which is sound).
Subschemas are merged recursively with ``allOf`` left in place; ``$ref`` must be resolved by the
caller before merging a schema at top level.
"""

from __future__ import annotations

import re
from typing import Any

from jsonschema._utils import equal

_MAX_KEYS = {"maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum"}
_MIN_KEYS = {"minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum"}
_SCHEMA_KEYS = {"items", "propertyNames", "additionalProperties", "unevaluatedItems", "unevaluatedProperties"}
# Keywords read together: a side's minContains/maxContains count its own contains; then/else follow
# its own if. Two different groups (or two different nots) both apply, so they are kept apart.
_GROUPS = (("contains", "minContains", "maxContains"), ("if", "then", "else"), ("not",))
_IGNORED = {"title", "description", "$comment", "examples", "default", "deprecated", "readOnly",
            "writeOnly", "$schema", "$id", "$anchor", "$defs", "definitions", "$dynamicAnchor",
            "contentMediaType", "contentEncoding", "contentSchema", "$vocabulary"}
# unevaluatedProperties/Items see the annotations of their own schema's keywords: merged beside
# another schema's annotating keywords (cousins, under allOf), they would see those too.
_APPLICATORS = {"allOf", "anyOf", "oneOf", "if", "then", "else", "$ref", "$dynamicRef"}
_ANNOTATING = {
    "unevaluatedProperties": {"properties", "patternProperties", "additionalProperties", "unevaluatedProperties",
                              "dependentSchemas"} | _APPLICATORS,
    "unevaluatedItems": {"prefixItems", "items", "contains", "unevaluatedItems"} | _APPLICATORS,
}


def merge_all(schemas: list) -> Any:
    """Merge a list of schemas; ``None`` if some pair cannot be merged exactly."""
    out: Any = True
    for s in schemas:
        out = merge(out, s)
        if out is None:
            return None
    return out


def merge(a: Any, b: Any) -> Any:
    if a is True:
        return b
    if b is True:
        return a
    if a is False or b is False:
        return False
    for x, y in ((a, b), (b, a)):
        if any(kw in x and not _ANNOTATING[kw].isdisjoint(y) for kw in _ANNOTATING):
            return None
    out: dict = {k: v for k, v in a.items() if k not in _IGNORED}
    grouped = _merge_groups(a, b, out)
    for key, bv in b.items():
        if key in _IGNORED or key in grouped:
            continue
        if key not in out:
            out[key] = bv
            continue
        av = out[key]
        if key == "type":
            types = _types(av) & _types(bv)
            if "number" in types:
                types.discard("integer")
            if not types:
                return False
            out[key] = sorted(types)
        elif key in _MAX_KEYS:
            out[key] = min(av, bv)
        elif key in _MIN_KEYS:
            out[key] = max(av, bv)
        elif key in ("enum", "const"):
            if key == "const":
                if not equal(av, bv):
                    return False
            else:
                kept = [x for x in av if any(equal(x, y) for y in bv)]
                if not kept:
                    return False
                out[key] = kept
        elif key == "required":
            out[key] = list(dict.fromkeys(list(av) + list(bv)))
        elif key == "uniqueItems":
            out[key] = bool(av) or bool(bv)
        elif key == "allOf":
            out[key] = list(av) + list(bv)
        elif key in ("anyOf", "oneOf"):  # keep both: the second goes into allOf
            out["allOf"] = list(out.get("allOf", [])) + [{key: bv}]
        elif key == "$ref":
            out["allOf"] = list(out.get("allOf", [])) + [{"$ref": bv}]
        elif key in ("pattern", "format", "multipleOf"):
            if av != bv:
                out["allOf"] = list(out.get("allOf", [])) + [{key: bv}]
        elif key == "properties":
            if "patternProperties" in a or "patternProperties" in b:
                return None
            props = dict(av)
            for name, sub in bv.items():
                props[name] = merge(props[name], sub) if name in props else sub
                if props[name] is None:
                    return None
            out[key] = props
        elif key == "dependentRequired":
            deps = {k: list(v) for k, v in av.items()}
            for k, v in bv.items():
                deps[k] = list(dict.fromkeys(deps.get(k, []) + list(v)))
            out[key] = deps
        elif key in _SCHEMA_KEYS:
            m = merge(av, bv)
            if m is None:
                return None
            out[key] = m
        else:
            if av != bv:
                return None
    if not _properties_consistent(a, b, out):
        return None
    if "prefixItems" in a or "prefixItems" in b:
        return _merge_positions(a, b, out)
    return out


def _merge_groups(a: dict, b: dict, out: dict) -> set[str]:
    """Put each of b's keyword groups into ``out``: as it is where a lacks the group (or has the
    same), else into ``allOf``. Returns the keys it took care of."""
    done: set[str] = set()
    for group in _GROUPS:
        mine = {k: b[k] for k in group if k in b}
        done.update(mine)
        if not mine:
            continue
        theirs = {k: a[k] for k in group if k in a}
        if not theirs:
            out.update(mine)
        elif theirs != mine:
            out["allOf"] = list(out.get("allOf", [])) + [mine]
    return done


def _merge_positions(a: dict, b: dict, out: dict) -> Any:
    """Element i must satisfy each side's schema for position i: its prefixItems[i] if it has one,
    else its items (which, beside no prefixItems, applies to every element)."""
    pa, pb = a.get("prefixItems", []), b.get("prefixItems", [])
    prefix = []
    for i in range(max(len(pa), len(pb))):
        sa = pa[i] if i < len(pa) else a.get("items", True)
        sb = pb[i] if i < len(pb) else b.get("items", True)
        m = merge(sa, sb)
        if m is None:
            return None
        prefix.append(m)
    out["prefixItems"] = prefix
    items = merge(a.get("items", True), b.get("items", True))
    if items is None:
        return None
    if items is True:
        out.pop("items", None)
    else:
        out["items"] = items
    return out


def _types(t: Any) -> set[str]:
    """The type set, with "number" implying "integer" so that intersection is plain set algebra."""
    types = {t} if isinstance(t, str) else set(t)
    if "number" in types:
        types.add("integer")
    return types


def _properties_consistent(a: Any, b: Any, out: dict) -> bool:
    """A property declared by one side is also subject to the other side's additionalProperties."""
    for side, other in ((a, b), (b, a)):
        if not isinstance(other, dict):
            continue
        extra = other.get("additionalProperties", True)
        if extra is True:
            continue
        other_props = other.get("properties", {})
        patterns = other.get("patternProperties", {})
        if isinstance(side, dict) and any(p not in patterns for p in side.get("patternProperties", {})):
            return False  # keys matching side's pattern stay subject to other's additionalProperties
        for name in (side.get("properties", {}) if isinstance(side, dict) else {}):
            if name in other_props or any(re.search(p, name) for p in patterns):
                continue
            merged = merge(out["properties"][name], extra)
            if merged is None:
                return False
            if out["properties"] is side["properties"]:  # taken over from one side: copy, never edit the input
                out["properties"] = dict(out["properties"])
            out["properties"][name] = merged
    return True
