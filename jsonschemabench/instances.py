"""Seeded samples for micro-benchmarks: a random string matching a regex, and a simple valid
instance of a JSON Schema (checked with ``jsonschema`` by the caller)."""

from __future__ import annotations

import random
import string

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _p

_PRINTABLE = [c for c in string.ascii_letters + string.digits + " -_.,:;!?/()[]{}@#"]
_CATEGORY = {
    _c.CATEGORY_DIGIT: string.digits,
    _c.CATEGORY_NOT_DIGIT: string.ascii_letters + " -_",
    _c.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    _c.CATEGORY_NOT_WORD: " -.,:;!?",
    _c.CATEGORY_SPACE: " ",
    _c.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
}


def sample_regex(pattern: str, rng: random.Random, max_repeat: int = 40) -> str:
    """A random string that ``re.fullmatch(pattern, s)`` accepts (ASCII; anchors ignored).
    Counted repetitions draw their count uniformly in [min, max]; open-ended ones in
    [min, min + max_repeat]."""
    return _gen(_p.parse(pattern), rng, max_repeat)


def _class_chars(items) -> list[str]:
    pool = [chr(i) for i in range(32, 127)]
    neg = bool(items) and items[0][0] == _c.NEGATE
    if neg:
        items = items[1:]

    def hit(ch):
        o = ord(ch)
        for op, av in items:
            if op == _c.LITERAL and av == o:
                return True
            if op == _c.RANGE and av[0] <= o <= av[1]:
                return True
            if op == _c.CATEGORY and ch in _CATEGORY.get(av, ""):
                return True
        return False

    out = [ch for ch in pool if hit(ch) != neg]
    if not out and not neg:  # non-ASCII class: take the first literal/range start
        for op, av in items:
            if op == _c.LITERAL:
                return [chr(av)]
            if op == _c.RANGE:
                return [chr(av[0])]
    return out or ["a"]


def _gen(parsed, rng, max_repeat) -> str:
    out = []
    for op, av in parsed:
        if op == _c.LITERAL:
            out.append(chr(av))
        elif op == _c.NOT_LITERAL:
            out.append(rng.choice([c for c in _PRINTABLE if ord(c) != av]))
        elif op == _c.ANY:
            out.append(rng.choice(_PRINTABLE))
        elif op == _c.IN:
            out.append(rng.choice(_class_chars(list(av))))
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            hi = lo + max_repeat if hi == _c.MAXREPEAT else hi
            for _ in range(rng.randint(lo, hi)):
                out.append(_gen(sub, rng, max_repeat))
        elif op == _c.SUBPATTERN:
            out.append(_gen(av[-1], rng, max_repeat))
        elif op == _c.BRANCH:
            out.append(_gen(rng.choice(av[1]), rng, max_repeat))
        elif op == _c.AT:
            pass
        elif op == _c.CATEGORY:
            out.append(rng.choice(_CATEGORY.get(av, "a")))
        else:
            raise ValueError(f"cannot sample regex construct {op}")
    return "".join(out)


_FORMATS = {
    "date-time": "2024-05-17T09:30:00Z", "date": "2024-05-17", "time": "09:30:00Z",
    "email": "ada.lovelace@example.com", "uri": "https://example.com/a/b", "uuid":
    "3f2c1a9e-8b7d-4c6e-9f01-23456789abcd", "ipv4": "192.168.10.20", "ipv6": "2001:db8::1",
    "hostname": "example.com", "uri-reference": "/a/b",
}


def sample_instance(schema, rng: random.Random, root=None, depth: int = 0):
    """A simple instance of ``schema`` (local ``$ref``, type, properties, items, enum/const,
    formats, patterns, length/number bounds). Not complete: validate the result."""
    root = root if root is not None else schema
    if schema is True or schema == {}:
        return "x"
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema and schema["$ref"].startswith("#"):
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            if part:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return sample_instance(node, rng, root, depth + 1)
    if "examples" in schema and schema["examples"]:
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    for k in ("anyOf", "oneOf"):
        if k in schema:
            return sample_instance(schema[k][0], rng, root, depth + 1)
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), t[0])
    if t is None:
        t = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if t == "object":
        out = {}
        for k, sub in (schema.get("properties") or {}).items():
            if depth < 6 or k in schema.get("required", []):
                out[k] = sample_instance(sub, rng, root, depth + 1)
        return out
    if t == "array":
        n = max(schema.get("minItems", 0), min(2, schema.get("maxItems", 2)))
        return [sample_instance(schema.get("items", {}), rng, root, depth + 1) for _ in range(n)]
    if t == "string":
        if schema.get("format") in _FORMATS:
            return _FORMATS[schema["format"]]
        if "pattern" in schema:
            return sample_regex(schema["pattern"], rng, max_repeat=3)
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength", max(lo, 12))
        n = rng.randint(lo, max(lo, min(hi, lo + 12)))
        return "".join(rng.choice(string.ascii_letters + " ") for _ in range(n)).strip() or \
            "x" * max(lo, 1 if hi else 0)
    if t in ("integer", "number"):
        lo = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if "exclusiveMinimum" in schema else 0))
        hi = schema.get("maximum", lo + 100)
        v = rng.randint(int(lo), max(int(lo), int(hi)))
        m = schema.get("multipleOf")
        if m:
            v = int(v // m * m) if isinstance(m, int) else v // m * m
        return v if t == "integer" else v + (0.5 if v + 0.5 <= hi else 0)
    if t == "boolean":
        return rng.random() < 0.5
    return None
