"""Small readings of JSON Schema documents and JSON values, shared by the schema modules."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
VALIDATION = frozenset(Draft202012Validator.VALIDATORS)  # the keywords that validate (draft 2020-12)


def type_list(schema: dict) -> list[str]:
    """The types ``schema`` names (every type where it has no ``type``)."""
    t = schema.get("type", list(TYPES))
    return [t] if isinstance(t, str) else list(t)


def json_type(v: Any) -> str:
    """The JSON Schema type of a JSON value (a float with no fraction is an integer)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or isinstance(v, float) and v.is_integer():
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def escape_pointer(name: Any) -> str:
    """``name`` (a key, or an array index) as one token of a JSON pointer."""
    text = str(name)
    return text.replace("~", "~0").replace("/", "~1") if "~" in text or "/" in text else text
