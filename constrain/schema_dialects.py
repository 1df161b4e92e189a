"""Schemas of older drafts, rewritten as draft 2020-12 schemas with the same verdicts.

``jsonschema.Draft202012Validator`` reads the root schema by draft 2020-12's rules whatever its
``$schema`` says, but a subschema that declares another dialect in ``$schema`` switches the
validator to that draft's class (``validator.evolve`` looks the class up with ``validator_for``),
for the subschema and for everything evaluated from it (subschemas and reference targets) until
another ``$schema`` switches again. A reference to a document that declares ``$schema`` switches
too; a reference to ``#/definitions/x`` of a draft-4 root does not (the target itself has no
``$schema``, so it is read by the rules in force where the reference is).

``constrain.schema_refs`` copies every subschema into the linked document, and calls
``translate`` on each one evaluated with another draft's class, so that the compiler only ever
sees draft 2020-12. ``translate`` works on one schema object; its subschemas are translated by the
caller, each in its own class. What it does, exactly as the installed ``jsonschema`` decides
(``Draft{4,6,7,201909}Validator.VALIDATORS``, ``_legacy_keywords``, ``_types``):

- keywords whose implementation is the same function as in draft 2020-12 are kept;
- keywords of draft 2020-12 that the draft lacks are dropped, as that draft's validator ignores
  them (draft 4: ``const``, ``contains``, ``propertyNames``, ``if``; drafts 4-7: ``prefixItems``,
  ``dependentRequired``, ``dependentSchemas``, ``unevaluated*``, ``minContains``/``maxContains``;
  draft 6: ``if``; every draft before 2020-12: ``$dynamicRef``);
- up to draft 7, ``$ref`` hides its siblings (``ignore_ref_siblings``): ``{"$ref": ...}`` alone.
  Which keywords apply is decided by the class of the validator that *reaches* the schema, not
  by the schema's own: ``descend`` (properties, items, allOf, anyOf, a ``$ref`` target, ...)
  applies its own class's ``applicable_validators`` with the evolved class's implementations,
  while ``evolve(...).is_valid`` (``not``, ``if``, ``contains``, ``oneOf`` past its first valid
  branch) uses the evolved class's. So a draft 7 schema with ``$ref`` and siblings reached by
  ``descend`` from a draft 2020-12 one has its siblings applied (by draft 7's rules), and a
  draft 2020-12 schema reached by ``descend`` from a draft 7 one has them ignored; the caller
  says which (``alone``);
- draft 4's ``maximum``/``minimum`` with a true ``exclusiveMaximum``/``exclusiveMinimum`` become
  ``exclusiveMaximum``/``exclusiveMinimum`` (a flag without its bound does nothing);
- ``items`` as an array (with ``additionalItems``) becomes ``prefixItems`` (and ``items``);
  ``additionalItems`` does nothing beside an ``items`` schema or without ``items``;
- ``dependencies`` becomes ``dependentRequired`` (arrays) and ``dependentSchemas`` (schemas);
- drafts 6 and 7's ``contains`` is draft 2020-12's without ``minContains``/``maxContains``;
- draft 4's type checker counts only Python ints as integers, so ``1.0`` (a float once parsed) is
  not an ``integer`` there. ``type`` keeps its value and, where it admits integers but not all
  numbers, gains the private keyword ``INTEGER_TEXT``: ``{"$constrain:integer_text": "plain"}``
  means that a number is valid only if written without fraction or exponent (``1``, ``-20``; not
  ``1.0`` or ``1e2``, which ``json.loads`` reads as floats). It constrains the text, not the
  value: the compiler reads it where it writes numbers (``_SchemaCompiler.number``, ``enum`` and
  ``const`` values). Under ``allOf`` it simply adds up (it only narrows numbers), and
  ``schema_negate`` knows no positive form for a schema that has it (it complements instead).
  Users cannot write it: ``schema_refs`` drops it from their schemas (to the validator it is an
  unknown keyword, which validates nothing);
- ``format``: the validator's ``format_checker`` (``FormatChecker()``, every format) is the one
  instance carried through ``evolve``, whatever the class, so formats are kept as they are.

Identifiers (``id`` of draft 4, ``$id`` beside ``$ref`` up to draft 7) are left to
``referencing``: ``schema_refs`` resolves each reference with the resolver the validator would
use, built with the specification of the class that descends into the subschema.

Malformed keywords of the older draft raise ``SchemaError`` (``items`` that is neither a schema
nor an array of schemas, ``dependencies`` values that are neither arrays nor schemas, ...; draft
4's exclusive flags are read by their truth value, as the validator reads them). What has no
exact draft 2020-12 form raises ``Untranslatable`` (the caller refuses it as keyword
``$schema``): draft 3 and unknown validator classes, draft 2019-09's ``$recursiveRef`` and its
own ``unevaluatedItems``/``unevaluatedProperties``, and schemas on which the validator itself
fails (draft 4's boolean ``items``, ``additionalItems`` beside a boolean ``items``).

>>> from jsonschema import Draft4Validator
>>> translate({"type": "integer", "minimum": 0, "exclusiveMinimum": True, "items": [{}, {}],
...            "additionalItems": False, "const": 3}, Draft4Validator, "#")[0]
{'type': 'integer', '$constrain:integer_text': 'plain', 'exclusiveMinimum': 0, 'prefixItems': [{}, {}], 'items': False}
"""

from __future__ import annotations

import functools
from typing import Any

import referencing
import referencing.jsonschema
from jsonschema import (Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator,
                        Draft202012Validator, _legacy_keywords)
from jsonschema.validators import validator_for

from .errors import SchemaError
from .schema_check import check_schema
from .schema_types import escape_pointer

INTEGER_TEXT = "$constrain:integer_text"  # private: numbers written as plain integers (see above)
LATEST = Draft202012Validator
TRANSLATED = (Draft4Validator, Draft6Validator, Draft7Validator, Draft201909Validator)
REF_ALONE = (Draft4Validator, Draft6Validator, Draft7Validator)  # applicable_validators=ignore_ref_siblings
# Draft 2020-12 keywords read by another keyword: kept where the draft's reader is draft 2020-12's.
_COMPANIONS = {"then": "if", "else": "if", "minContains": "contains", "maxContains": "contains"}
# Older implementations that mean draft 2020-12's once the companions above are dropped.
_EQUIVALENT = {"contains": _legacy_keywords.contains_draft6_draft7}
_ITEMS = (_legacy_keywords.items_draft3_draft4, _legacy_keywords.items_draft6_draft7_draft201909)
_BOUNDS = {"minimum": ("exclusiveMinimum", _legacy_keywords.minimum_draft3_draft4),
           "maximum": ("exclusiveMaximum", _legacy_keywords.maximum_draft3_draft4)}
# Subschema positions of draft 2020-12 (where the caller translates children).
_IN_VALUE = ("additionalProperties", "contains", "else", "if", "items", "not", "propertyNames", "then")
_IN_ARRAY = ("allOf", "anyOf", "oneOf", "prefixItems")
_IN_OBJECT = ("dependentSchemas", "patternProperties", "properties")


class Untranslatable(Exception):
    """A schema of an older draft with no exact draft 2020-12 form (the message says why)."""


def name(cls: type) -> str:
    return cls.__name__.removesuffix("Validator")


def dialect(schema: Any, current: type) -> type:
    """The validator class that evaluates ``schema`` when reached from one of class ``current``
    (``validator.evolve``: its own ``$schema`` if known, else ``current``)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("$schema"), str):
        return current
    return validator_for(schema, default=current)


@functools.cache
def specification(cls: type) -> referencing.Specification:
    """The ``referencing`` specification a validator class descends with (``create``'s)."""
    return referencing.jsonschema.specification_with(
        dialect_id=cls.ID_OF(cls.META_SCHEMA) or "urn:unknown-dialect", default=referencing.Specification.OPAQUE)


def translate(schema: dict, cls: type, path: str, alone: bool = False) -> tuple[dict, dict[str, str]]:
    """``schema`` (an object evaluated by validator class ``cls``) as a draft 2020-12 object with
    the same verdicts, its subschemas left as they are; and, for keywords that come from another
    one, the keyword they come from (for paths). ``alone``: ``$ref`` hides its siblings there
    (which the class that reaches the schema decides; see ``schema_refs``). See the module
    docstring."""
    ours = LATEST.VALIDATORS
    if alone and schema.get("$ref") is not None:
        if cls.VALIDATORS.get("$ref") is not ours["$ref"]:
            raise Untranslatable(f"{name(cls)} schemas are not translated to draft 2020-12")
        return {"$ref": schema["$ref"]}, {}
    if cls is LATEST:
        return schema, {}
    if cls not in TRANSLATED:
        raise Untranslatable(f"{name(cls)} schemas are not translated to draft 2020-12")
    theirs = cls.VALIDATORS
    legacy_bounds = theirs.get("minimum") is _BOUNDS["minimum"][1]
    special = {"items", "additionalItems", "dependencies", "type"}
    if legacy_bounds:
        special |= {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    out: dict = {}
    origin: dict[str, str] = {}
    for key, value in schema.items():
        if key in special:
            continue
        if key in _COMPANIONS:
            if theirs.get(_COMPANIONS[key]) is ours[_COMPANIONS[key]]:
                out[key] = value  # else its reader is absent or ignores it (contains of drafts 6, 7)
        elif key in ours:
            if theirs.get(key) is ours[key] or key in _EQUIVALENT and theirs.get(key) is _EQUIVALENT[key]:
                out[key] = value
            elif key in theirs:
                raise Untranslatable(f"its {key!r} is evaluated otherwise than in draft 2020-12")
            # else: not a keyword of that draft, which ignores it
        elif key in theirs:
            raise Untranslatable(f"{key!r} has no draft 2020-12 form")
        else:
            out[key] = value  # annotations, identifiers, unknown keywords
    if "type" in schema:
        _type(schema["type"], cls, theirs, ours, out)
    if legacy_bounds:
        _legacy_bounds(schema, path, out, origin)
    if "items" in schema:
        _items(schema, cls, path, out, origin)
    if "dependencies" in schema and "dependencies" in theirs:
        _dependencies(schema["dependencies"], path, out, origin)
    elif "dependencies" in schema:
        out["dependencies"] = schema["dependencies"]  # draft 2019-09: an unknown keyword
    # every keyword of the translated object in its draft 2020-12 shape (those renamed above are
    # checked there, under their own names; subschemas are checked as they are translated)
    check_schema(_shallow(out), path)
    return out, origin


def _type(types: Any, cls: type, theirs: dict, ours: dict, out: dict) -> None:
    if theirs.get("type") is not ours["type"]:
        raise Untranslatable("its 'type' is evaluated otherwise than in draft 2020-12")
    out["type"] = types
    names = [types] if isinstance(types, str) else types
    if (isinstance(names, list) and "integer" in names and "number" not in names
            and not cls.TYPE_CHECKER.is_type(1.0, "integer")):
        out[INTEGER_TEXT] = "plain"  # draft 4: 1.0 parses as a float, which is no integer there


def _legacy_bounds(schema: dict, path: str, out: dict, origin: dict[str, str]) -> None:
    """Draft 4: ``minimum`` with ``exclusiveMinimum: true`` is draft 2020-12's ``exclusiveMinimum``.
    The flag is read as ``minimum_draft3_draft4`` reads it, by its truth value (a schema may be
    read by two drafts: as a draft 2020-12 number elsewhere)."""
    for bound, (flag, _) in _BOUNDS.items():
        if bound in schema:
            if isinstance(schema[bound], bool) or not isinstance(schema[bound], (int, float)):
                raise SchemaError(f"{bound!r} must be a number, not {schema[bound]!r}", f"{path}/{bound}")
            key = flag if schema.get(flag, False) else bound
            out[key] = schema[bound]
            origin[key] = bound


def _items(schema: dict, cls: type, path: str, out: dict, origin: dict[str, str]) -> None:
    items = schema["items"]
    if cls.VALIDATORS.get("items") not in _ITEMS:
        raise Untranslatable("its 'items' is evaluated otherwise than in draft 2020-12")
    if isinstance(items, list):
        if not all(isinstance(s, (dict, bool)) for s in items):
            raise SchemaError("'items' must be a schema or an array of schemas", f"{path}/items")
        if items:
            out["prefixItems"] = items
            origin["prefixItems"] = "items"
        if "additionalItems" in schema:
            extra = schema["additionalItems"]
            if not isinstance(extra, (dict, bool)):
                raise SchemaError(f"'additionalItems' must be a schema, not {extra!r}", f"{path}/additionalItems")
            if extra is not True:
                out["items"] = extra
                origin["items"] = "additionalItems"
    elif isinstance(items, dict):
        out["items"] = items  # additionalItems does nothing beside an items schema
    elif isinstance(items, bool):
        if cls is Draft4Validator:  # items_draft3_draft4 iterates a non-object items: TypeError
            raise Untranslatable("draft 4 fails on arrays where 'items' is a boolean")
        if "additionalItems" in schema:  # additionalItems takes len(items): TypeError
            raise Untranslatable("the validator fails on arrays where 'additionalItems' is beside a boolean 'items'")
        out["items"] = items
    else:
        raise SchemaError(f"'items' must be a schema or an array of schemas, not {items!r}", f"{path}/items")


def _dependencies(deps: Any, path: str, out: dict, origin: dict[str, str]) -> None:
    """``dependencies_draft4_draft6_draft7``: an array names required properties, anything else
    is a schema the object must be valid under (where the property is present)."""
    if not isinstance(deps, dict):
        raise SchemaError(f"'dependencies' must be an object, not {deps!r}", f"{path}/dependencies")
    required: dict = {}
    schemas: dict = {}
    for prop, dep in deps.items():
        if isinstance(dep, list):
            if not all(isinstance(n, str) for n in dep):
                raise SchemaError("'dependencies' arrays must hold property names",
                                  f"{path}/dependencies/{escape_pointer(prop)}")
            required[prop] = dep
        elif isinstance(dep, (dict, bool)):
            schemas[prop] = dep
        else:
            raise SchemaError(f"'dependencies' values must be arrays or schemas, not {dep!r}",
                              f"{path}/dependencies/{escape_pointer(prop)}")
    if required:
        out["dependentRequired"] = required
        origin["dependentRequired"] = "dependencies"
    if schemas:
        out["dependentSchemas"] = schemas
        origin["dependentSchemas"] = "dependencies"


def _shallow(schema: dict) -> dict:
    """``schema`` with every subschema replaced by ``true`` (its own keywords only)."""
    out = dict(schema)
    for key in _IN_VALUE:
        if key in out:
            out[key] = True if isinstance(out[key], (dict, bool)) else out[key]
    for key in _IN_ARRAY:
        if isinstance(out.get(key), list):
            out[key] = [True if isinstance(s, (dict, bool)) else s for s in out[key]]
    for key in _IN_OBJECT:
        if isinstance(out.get(key), dict):
            out[key] = {k: True if isinstance(s, (dict, bool)) else s for k, s in out[key].items()}
    for key in ("$defs", "definitions"):
        out.pop(key, None)
    return out
