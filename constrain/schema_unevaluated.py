"""``unevaluatedProperties`` and ``unevaluatedItems`` as an exact rewrite into plain keywords.

Semantics are those of ``jsonschema.Draft202012Validator`` (``find_evaluated_property_keys_by_schema``
and ``find_evaluated_item_indexes_by_schema``): the members (elements) a node N *evaluated* are
the ones its in-place applicators annotate, collected from N's own keywords and, recursively,
from the subschemas of ``allOf``/``anyOf``/``oneOf`` that are valid, from ``if`` when it holds
(then also ``then``) or ``else`` when it does not, from ``dependentSchemas`` whose name is
present, and from ``$ref`` targets. ``not`` contributes nothing. ``unevaluatedProperties: U``
holds when every member that is not evaluated is valid under U (likewise for elements).

**Annotation cases.** An annotation case of a schema S is a pair (C, E): a condition C (a
conjunction of schemas) and an evaluated set E. For properties, E is (names, patterns, all):
the members named in ``properties``, those whose key matches a ``patternProperties`` pattern
(``re.search``), or every member (``all``: ``additionalProperties`` or a nested
``unevaluatedProperties`` is present: the subschema being valid, each other member is valid
under it, hence annotated). For items, E is (n, contains, all): the first n elements
(``prefixItems``), the elements valid under one of the ``contains`` schemas, or every element
(``items`` or a nested ``unevaluatedItems``). ``cases(S)`` is a list such that, for every
instance x valid under S,

- (completeness) some case holds on x (x satisfies C) with E exactly the set S evaluates on x;
- (soundness) every case that holds on x has E contained in the set S evaluates on x.

Cases compose (a product takes the union of the E's and the conjunction of the C's):

- ``true`` evaluates nothing: [(true, {})]; ``false`` is never valid: [] (no case);
- a node whose ``type`` excludes objects (arrays) evaluates nothing that matters: [(true, {})];
- a node with ``additionalProperties``/nested ``unevaluatedProperties`` (``items``/nested
  ``unevaluatedItems``): [(true, all)];
- a node's own ``properties``/``patternProperties`` (``prefixItems``/``contains``) give one
  unconditional case; ``allOf``, ``$ref`` and ``dependentSchemas`` multiply with it;
- ``allOf``: the product of its branches' cases (every branch holds where S does);
- ``anyOf``: the product over branches of {(true, {})} ∪ {(branch ∧ C, E) for its cases}: each
  branch either contributes nothing or holds with one of its cases (the choice "exactly the
  valid branches" witnesses completeness);
- ``oneOf``: the union over branches of (branch ∧ C, E). Where S holds exactly one branch is
  valid, so "branch i holds" already excludes the others: the ``not anyOf(others)`` the plain
  definition would add is implied and is left out (it would only cost complements);
- ``if``/``then``/``else``: (if ∧ C_if ∧ C_then, E_if ∪ E_then) for the cases of if and then,
  and ({"not": if} ∧ C_else, E_else) for the cases of else (just {"not": if} without else);
- ``dependentSchemas`` name → D: {(true, {})} ∪ {({"required": [name]} ∧ C, E) for D's cases};
- ``$ref``: the cases of its target, found through the compiler's resolver. The compiler works
  on a *linked* document (``constrain.schema_refs``): every reference is a local pointer to a
  placeless copy of its target, ``$dynamicRef`` included, and a subschema means the same
  anywhere, so conditions and ``contains`` schemas taken out of a target keep their meaning
  where N is compiled (no base URI to carry along);
- ``not``, ``then``/``else`` without ``if``, and non-applicator keywords: nothing.

**The rewrite.** For N with ``unevaluatedProperties: U`` and N' = N without it::

    N  ≡  N' ∧ anyOf[ C_c ∧ cover(E_c)  for the cases c of N' ]
    cover(E) = {"properties": {p: true for p in names}, "patternProperties": {q: true for q in
                patterns}, "additionalProperties": U}     (true when E is all)

and for ``unevaluatedItems: U``, ``cover(E) = {"prefixItems": [true] * n, "items": {"anyOf":
[*contains, U]}}``. cover(E) says: every member (element) outside E is valid under U.
Proof: (⇒) x valid under N satisfies N'; the complete case holds with E the evaluated set, so
cover(E) is exactly the keyword's own test. (⇐) x satisfies N' and some case c with cover(E_c);
by soundness E_c is contained in the evaluated set, so every unevaluated member lies outside
E_c and is valid under U. Both keywords on one node are rewritten from N without either (the
other one annotates nothing of this kind); a keyword is dropped where N's ``type`` excludes
objects (arrays). Non-objects (non-arrays) satisfy every cover, and some case always holds
where N' does, so they are untouched. The cases' conditions are the subschemas themselves (the
same objects), compiled where N is; nested ``unevaluated*`` keywords are rewritten when their
own node is compiled (``schema_merge`` never merges such a node with one whose keywords
annotate: that would put cousins' annotations in its sight). Each case is written cover first
and the cover names members in the order the compiler declares them ($ref target, N's own,
then allOf, anyOf, oneOf, if/then/else, dependentSchemas), so that merging keeps the
declaration order N's compiled members follow.

**Simplifications** (each keeps both properties above): conditions ``true`` are dropped and a
case with a ``false`` one is impossible; a case is dropped when another has a subset of its
conditions and a superset of its E; a list whose cases all evaluate nothing becomes [(true,
{})] (the unconditional case is sound and complete there); cases with equal E are joined into
one with ``anyOf`` of their conditions; ``U: true`` is no constraint at all.

**Refused** (``UnsupportedSchemaError`` naming the keyword and N's JSON pointer): more than
``MAX_CASES`` cases after simplification; a ``$ref`` that reaches itself through in-place
applicators (its cases would be an infinite product); a reference the resolver refuses, or one
that is not a local pointer, and a ``$dynamicRef`` (neither is left in a linked document). Where
the compiler is lenient, or builds a superset (the operand of a complement), a refused keyword
is dropped instead: a wider schema.
"""

from __future__ import annotations

import re
from typing import Any, Callable, NamedTuple

from .errors import SchemaError

MAX_CASES = 64
KEYWORDS = ("unevaluatedProperties", "unevaluatedItems")


class _Ev(NamedTuple):
    """An evaluated set: for properties ``keys`` are names and ``more`` patterns; for items
    ``keys`` is ``(n,)`` (the prefix length) and ``more`` the contains schemas."""
    keys: tuple
    more: tuple
    all: bool


class _Case(NamedTuple):
    conds: tuple  # schemas, all of which hold (distinct objects)
    ev: _Ev


class _Refused(Exception):
    pass


def rewrite_unevaluated(schema: dict, path: str, resolve: Callable[[str], Any],
                        unsupported: Callable[[str, str, str], None]) -> dict:
    """``schema`` without ``unevaluatedProperties``/``unevaluatedItems``, each replaced by an
    ``allOf`` entry that is its exact equivalent (see the module docstring).

    ``resolve(ref)`` is the compiler's resolver (``LinkedSchema.target``: a ``Target`` with
    ``contents`` and ``error``). A keyword that cannot be rewritten goes to
    ``unsupported(keyword, path, reason)``, which raises unless the compiler is lenient or
    building a superset, where the keyword is dropped (a wider schema); a dangling reference is a
    ``SchemaError``, as the compiler reports it."""
    out = {k: v for k, v in schema.items() if k not in KEYWORDS}
    extra = []
    for kw in KEYWORDS:
        if kw not in schema:
            continue
        try:
            got = _Rewriter(kw, path, resolve).rewrite(out, schema[kw])
        except _Refused as exc:
            unsupported(kw, path, str(exc))
            continue
        if got is not True:
            extra.append(got)
    if extra:
        out["allOf"] = list(out.get("allOf", [])) + extra
    return out


class _Rewriter:
    def __init__(self, keyword: str, path: str, resolve: Callable[[str], Any]):
        self.props = keyword == "unevaluatedProperties"
        self.kind = "object" if self.props else "array"
        self.path = path
        self.resolve = resolve
        self._negations: dict[int, tuple[Any, Any]] = {}  # id(if) -> (if, {"not": if}), kept alive
        self._required: dict[str, dict] = {}
        self.none = _Ev((0,) if not self.props else (), (), False)
        self.everything = _Ev((0,) if not self.props else (), (), True)
        self.trivial = _Case((), self.none)

    # -- the rewrite ----------------------------------------------------------------------------
    def rewrite(self, rest: dict, sub: Any) -> Any:
        """The schema that stands for ``keyword: sub`` beside ``rest`` (true: no constraint)."""
        if sub is True or not _admits(rest, self.kind):
            return True
        cases = self.cases(rest, ())
        parts = []
        for conds, ev in self.joined(cases):
            cover = self.cover(ev, sub)
            # the cover first: merged with the conditions, its names keep N's declaration order
            members = ([cover] if cover is not True else []) + [*conds]
            if not members:
                return True
            parts.append(members[0] if len(members) == 1 else {"allOf": members})
        if not parts:
            return False
        return parts[0] if len(parts) == 1 else {"anyOf": parts}

    def cover(self, ev: _Ev, sub: Any) -> Any:
        """Every member (element) outside ``ev`` is valid under ``sub``."""
        if ev.all:
            return True
        out: dict = {}
        if self.props:
            if ev.keys:
                out["properties"] = dict.fromkeys(ev.keys, True)
            if ev.more:
                out["patternProperties"] = dict.fromkeys(ev.more, True)
            out["additionalProperties"] = sub
            return out
        n = ev.keys[0]
        if n:
            out["prefixItems"] = [True] * n
        options = [s for s in (*ev.more, sub) if s is not False]
        out["items"] = False if not options else options[0] if len(options) == 1 else {"anyOf": options}
        return out

    def joined(self, cases: list[_Case]) -> list[tuple[list, _Ev]]:
        """Cases with equal evaluated sets as one, with ``anyOf`` of their conditions."""
        groups: dict[tuple, list[_Case]] = {}
        for c in cases:
            groups.setdefault(self.ev_key(c.ev), []).append(c)
        out = []
        for group in groups.values():
            ev = group[0].ev
            if len(group) == 1:
                out.append((list(group[0].conds), ev))
            elif any(not c.conds for c in group):
                out.append(([], ev))
            else:
                alts = [c.conds[0] if len(c.conds) == 1 else {"allOf": list(c.conds)} for c in group]
                out.append(([{"anyOf": alts}], ev))
        return out

    # -- annotation cases -----------------------------------------------------------------------
    def cases(self, schema: Any, refs: tuple) -> list[_Case]:
        if schema is True or not isinstance(schema, dict):
            return [self.trivial]
        if schema is False:
            return []
        if not _admits(schema, self.kind):
            return [self.trivial]
        if "$dynamicRef" in schema:
            raise _Refused("$dynamicRef in an in-place subschema")
        own = self.own(schema)
        if own.all:
            return [_Case((), self.everything)]
        parts: list[list[_Case]] = []
        if "$ref" in schema:
            parts.append(self.ref_cases(schema["$ref"], refs))
        parts.append([_Case((), own)])
        for branch in schema.get("allOf", []):
            parts.append(self.cases(branch, refs))
        if "anyOf" in schema:
            for branch in schema["anyOf"]:
                parts.append(self.simplified([self.trivial, *self.under(branch, self.cases(branch, refs))]))
        if "oneOf" in schema:
            parts.append(self.simplified([c for b in schema["oneOf"] for c in self.under(b, self.cases(b, refs))]))
        if "if" in schema:
            cond = schema["if"]
            then = self.product(self.under(cond, self.cases(cond, refs)), self.cases(schema.get("then", True), refs))
            other = self.under(self.negation(cond), self.cases(schema.get("else", True), refs))
            parts.append(self.simplified(then + other))
        if self.props:
            for name, sub in schema.get("dependentSchemas", {}).items():
                parts.append(self.simplified([self.trivial, *self.under(self.required(name), self.cases(sub, refs))]))
        out = [self.trivial]
        for part in parts:
            out = self.product(out, part)
        return out

    def own(self, schema: dict) -> _Ev:
        if self.props:
            every = "additionalProperties" in schema or "unevaluatedProperties" in schema
            return _Ev(tuple(schema.get("properties", {})), tuple(schema.get("patternProperties", {})), every)
        every = "items" in schema or "unevaluatedItems" in schema or schema.get("contains") is True
        contains = (schema["contains"],) if "contains" in schema and schema["contains"] is not False else ()
        return _Ev((len(schema.get("prefixItems", [])),), contains, every)

    def ref_cases(self, ref: Any, refs: tuple) -> list[_Case]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Refused(f"$ref {ref!r} is not a local reference")
        if ref in refs:
            raise _Refused(f"$ref {ref!r} reaches itself through in-place applicators")
        target = self.resolve(ref)
        if target.error is not None:
            _, message, refused = target.error
            if not refused:
                raise SchemaError(message, self.path)
            raise _Refused(message)
        return self.cases(target.contents, refs + (ref,))

    def negation(self, schema: Any) -> Any:
        if schema is True:
            return False
        if schema is False:
            return True
        got = self._negations.get(id(schema))
        if got is None:
            got = self._negations[id(schema)] = (schema, {"not": schema})
        return got[1]

    def required(self, name: str) -> dict:
        return self._required.setdefault(name, {"required": [name]})

    # -- case algebra ---------------------------------------------------------------------------
    def under(self, cond: Any, cases: list[_Case]) -> list[_Case]:
        """``cases`` with ``cond`` added to their conditions."""
        if cond is True:
            return cases
        if cond is False:
            return []
        return [_Case(_conj((cond,), c.conds), c.ev) for c in cases]

    def product(self, a: list[_Case], b: list[_Case]) -> list[_Case]:
        return self.simplified([_Case(_conj(x.conds, y.conds), self.union(x.ev, y.ev)) for x in a for y in b])

    def union(self, a: _Ev, b: _Ev) -> _Ev:
        if a.all or b.all:
            return self.everything
        more = a.more + tuple(s for s in b.more if not any(s is t for t in a.more))
        if self.props:
            return _Ev(tuple(dict.fromkeys(a.keys + b.keys)), tuple(dict.fromkeys(more)), False)
        return _Ev((max(a.keys[0], b.keys[0]),), more, False)

    def ev_key(self, ev: _Ev) -> tuple:
        if ev.all:
            return (True,)
        if self.props:
            return False, frozenset(ev.keys), frozenset(ev.more)
        return False, ev.keys[0], frozenset(id(s) for s in ev.more)

    def contained(self, a: _Ev, b: _Ev) -> bool:
        """Whether ``a`` evaluates nothing that ``b`` does not (on every instance)."""
        if b.all:
            return True
        if a.all:
            return False
        if not self.props:
            return a.keys[0] <= b.keys[0] and all(any(s is t for t in b.more) for s in a.more)
        return (set(a.more) <= set(b.more)
                and all(k in b.keys or any(_searches(p, k) for p in b.more) for k in a.keys))

    def simplified(self, cases: list[_Case]) -> list[_Case]:
        cases = [c for c in cases if c.conds is not None]
        unique: dict[tuple, _Case] = {}
        for c in cases:
            unique.setdefault((frozenset(map(id, c.conds)), self.ev_key(c.ev)), c)
        cases = list(unique.values())
        if cases and all(self.ev_key(c.ev) == self.ev_key(self.none) for c in cases):
            return [self.trivial]
        conds = [set(map(id, c.conds)) for c in cases]

        def covers(j: int, i: int) -> bool:  # case j holds wherever case i does, and evaluates more
            return conds[j] <= conds[i] and self.contained(cases[i].ev, cases[j].ev)

        # of cases covering each other (equal conditions, equivalent sets) the first one stays
        kept = [a for i, a in enumerate(cases)
                if not any(j != i and covers(j, i) and (j < i or not covers(i, j)) for j in range(len(cases)))]
        if len(kept) > MAX_CASES:
            raise _Refused(f"more than {MAX_CASES} annotation cases")
        return kept


def _conj(a: tuple | None, b: tuple | None) -> tuple | None:
    """The conjunction of two condition tuples (None: impossible)."""
    if a is None or b is None:
        return None
    out = list(a)
    for s in b:
        if s is False:
            return None
        if s is not True and not any(s is t for t in out):
            out.append(s)
    if any(s is False for s in out):
        return None
    return tuple(s for s in out if s is not True)


def _searches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except (re.error, TypeError):
        return False


def _admits(schema: dict, kind: str) -> bool:
    """Whether ``schema``'s ``type`` allows ``kind`` (object or array) instances."""
    t = schema.get("type")
    if t is None:
        return True
    return kind in ([t] if isinstance(t, str) else list(t))
