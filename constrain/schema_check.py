"""Fast structural check of a JSON Schema: every keyword we read has a value of the right shape.

The 2020-12 metaschema check in ``jsonschema`` costs 20-30 ms per schema (its ``$dynamicRef``
resolution), more than compiling. This walk checks the same shapes for the validation and
applicator keywords in well under a millisecond and reports the JSON pointer of the first problem.
"""

from __future__ import annotations

from numbers import Number
from typing import Any

from jsonschema import Draft202012Validator as _LATEST
from jsonschema.validators import validator_for

from .errors import SchemaError
from .schema_types import TYPES, escape_pointer

_TYPE_NAMES = frozenset(TYPES)

_SCHEMA = "schema"
_SCHEMA_LIST = "schema list"
_SCHEMA_MAP = "schema map"
_NON_NEGATIVE = "non-negative integer"
_NUMBER = "number"
_POSITIVE = "positive number"
_STRING = "string"
_STRING_LIST = "array of unique strings"
_BOOL = "boolean"
_ANY = "any"
_TYPE = "type"
_ARRAY = "array"
_DEPENDENCIES = "dependencies"

_SHAPES = {
    "allOf": _SCHEMA_LIST, "anyOf": _SCHEMA_LIST, "oneOf": _SCHEMA_LIST, "prefixItems": _SCHEMA_LIST,
    "not": _SCHEMA, "if": _SCHEMA, "then": _SCHEMA, "else": _SCHEMA, "items": _SCHEMA,
    "contains": _SCHEMA, "additionalProperties": _SCHEMA, "propertyNames": _SCHEMA,
    "unevaluatedItems": _SCHEMA, "unevaluatedProperties": _SCHEMA,
    "properties": _SCHEMA_MAP, "patternProperties": _SCHEMA_MAP, "dependentSchemas": _SCHEMA_MAP,
    "$defs": _SCHEMA_MAP, "definitions": _SCHEMA_MAP,
    "maxLength": _NON_NEGATIVE, "minLength": _NON_NEGATIVE, "maxItems": _NON_NEGATIVE,
    "minItems": _NON_NEGATIVE, "maxProperties": _NON_NEGATIVE, "minProperties": _NON_NEGATIVE,
    "maxContains": _NON_NEGATIVE, "minContains": _NON_NEGATIVE,
    "minimum": _NUMBER, "maximum": _NUMBER, "exclusiveMinimum": _NUMBER, "exclusiveMaximum": _NUMBER,
    "multipleOf": _POSITIVE,
    "pattern": _STRING, "format": _STRING, "$ref": _STRING, "$anchor": _STRING, "$id": _STRING,
    "$dynamicRef": _STRING, "$dynamicAnchor": _STRING,
    "required": _STRING_LIST, "uniqueItems": _BOOL, "enum": _ARRAY, "const": _ANY, "type": _TYPE,
    "dependentRequired": _DEPENDENCIES,
}


def check_schema(schema: Any, path: str = "#") -> None:
    """Raise ``SchemaError`` naming the JSON pointer of the first malformed keyword."""
    # where a node is: None at the root, else (its parent's place, key or index), spelled out only
    # for an error (formatting a pointer for every keyword took a fifth of the walk)
    stack: list[tuple[Any, Any]] = [(schema, None)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, bool):
            continue
        if not isinstance(node, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(node).__name__}",
                              _pointer(path, where))
        if where is not None and isinstance(node.get("$schema"), str) and validator_for(node, default=_LATEST) is not _LATEST:
            continue  # read by an older draft's rules: checked as translated (constrain.schema_dialects)
        for key, value in node.items():
            shape = _SHAPES.get(key)
            if shape is None:
                continue
            at = (where, key)
            if shape == _SCHEMA:
                stack.append((value, at))
            elif shape == _SCHEMA_LIST:
                if not isinstance(value, list) or not value:
                    raise SchemaError(f"{key!r} must be a non-empty array of schemas", _pointer(path, at))
                stack.extend((v, (at, i)) for i, v in enumerate(value))
            elif shape == _SCHEMA_MAP:
                if not isinstance(value, dict):
                    raise SchemaError(f"{key!r} must be an object of schemas", _pointer(path, at))
                stack.extend((v, (at, k)) for k, v in value.items())
            elif shape == _NON_NEGATIVE:
                if not _is_integer(value) or value < 0:
                    raise SchemaError(f"{key!r} must be a non-negative integer, not {value!r}", _pointer(path, at))
            elif shape == _NUMBER:
                if not _is_number(value):
                    raise SchemaError(f"{key!r} must be a number, not {value!r}", _pointer(path, at))
            elif shape == _POSITIVE:
                if not _is_number(value) or value <= 0:
                    raise SchemaError(f"{key!r} must be a number greater than 0, not {value!r}", _pointer(path, at))
            elif shape == _STRING:
                if not isinstance(value, str):
                    raise SchemaError(f"{key!r} must be a string, not {value!r}", _pointer(path, at))
            elif shape == _STRING_LIST:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value) \
                        or len(set(value)) != len(value):
                    raise SchemaError(f"{key!r} must be an array of unique strings", _pointer(path, at))
            elif shape == _BOOL:
                if not isinstance(value, bool):
                    raise SchemaError(f"{key!r} must be a boolean, not {value!r}", _pointer(path, at))
            elif shape == _ARRAY:
                if not isinstance(value, list):
                    raise SchemaError(f"{key!r} must be an array", _pointer(path, at))
            elif shape == _TYPE:
                names = [value] if isinstance(value, str) else value
                if not isinstance(names, list) or not names or not all(isinstance(t, str) for t in names) \
                        or len(set(names)) != len(names) or not set(names) <= _TYPE_NAMES:
                    raise SchemaError(f"'type' must be one of {sorted(_TYPE_NAMES)} or a non-empty array of "
                                      f"them, not {value!r}", _pointer(path, at))
            elif shape == _DEPENDENCIES:
                if not isinstance(value, dict) or not all(
                        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in value.values()):
                    raise SchemaError(f"{key!r} must map names to arrays of strings", _pointer(path, at))


def _pointer(root: str, where: Any) -> str:
    parts = []
    while where is not None:
        where, step = where
        parts.append(escape_pointer(step))
    return "/".join([root, *reversed(parts)])


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or isinstance(value, float) and value.is_integer()


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)
