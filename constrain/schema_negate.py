"""``not`` as a positive schema, where one says the same thing exactly.

Compiling ``{"not": S}`` as the complement of a superset of S is sound but makes automata whose
states are intersections with complements, which are costly to explore. Many negations in real
schemas have an exact positive form that compiles to an ordinary automaton instead:

>>> negate({"required": ["a", "b"]})
{'type': 'object', 'anyOf': [{'properties': {'a': False}}, {'properties': {'b': False}}]}
>>> negate({"type": ["string", "null"]})
{'type': ['array', 'boolean', 'number', 'object']}

``negate(S)`` returns a schema valid exactly where S is not, or ``None`` where it knows no such form
(the caller then complements). Subschemas it cannot negate stay wrapped in ``not``. ``$ref`` is
not followed: the caller resolves it first.
"""

from __future__ import annotations

from typing import Any

TYPES = ("array", "boolean", "null", "number", "object", "string")
# keywords that never change validity (annotations, definitions, identifiers)
_INERT = {"title", "description", "$comment", "examples", "default", "deprecated", "readOnly", "writeOnly",
          "$schema", "$id", "$anchor", "$defs", "definitions", "$dynamicAnchor", "$vocabulary",
          "contentMediaType", "contentEncoding", "contentSchema"}


def negate(schema: Any) -> Any:
    """A schema valid exactly for the instances ``schema`` rejects, or None."""
    if schema is True:
        return False
    if schema is False:
        return True
    if not isinstance(schema, dict):
        return None
    keys = {k for k in schema if k not in _INERT}
    if not keys:
        return False
    if keys == {"not"}:
        return schema["not"]
    if keys == {"anyOf"} or keys == {"allOf"}:
        parts = [negate(b) for b in schema[next(iter(keys))]]
        if any(p is None for p in parts):
            return None
        return {"allOf" if keys == {"anyOf"} else "anyOf": parts}
    if keys == {"type"}:
        return _other_types(schema["type"])
    if keys <= {"type", "required", "properties"} and _is_object_type(schema.get("type", "object")):
        return _negated_object(schema)
    return None


def _other_types(t: Any) -> Any:
    types = {t} if isinstance(t, str) else set(t)
    if "integer" in types and "number" not in types:
        return None  # "not an integer" includes 1.5, which no type list says
    others = sorted(set(TYPES) - types - ({"number"} if "integer" in types else set()))
    return {"type": others} if others else False


def _is_object_type(t: Any) -> bool:
    return t == "object" or t == ["object"]


def _negated_object(schema: dict) -> Any:
    """Not (object with every required name and every property valid): an object missing a
    required name or with an invalid property; a non-object too where ``type`` says object."""
    options: list[Any] = [{"properties": {name: False}} for name in dict.fromkeys(schema.get("required", []))]
    for name, sub in schema.get("properties", {}).items():
        if sub is not True:
            inverse = negate(sub)
            options.append({"required": [name], "properties": {name: {"not": sub} if inverse is None else inverse}})
    if "type" in schema:
        # properties hold for non-objects, so every option admits them: no type needed
        return {"anyOf": options} if options else {"type": [t for t in TYPES if t != "object"]}
    if not options:
        return False
    return {"type": "object", "anyOf": options}
