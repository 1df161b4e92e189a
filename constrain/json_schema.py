"""JSON Schema to a byte-level term: the JSON texts whose values the validator accepts.

Semantics are those of ``jsonschema.Draft202012Validator`` with ``FormatChecker()``. Every
keyword is either enforced, ignored because the validator ignores it too (unknown keywords,
annotations, formats the checker does not check), or refused with ``UnsupportedSchemaError``
naming the keyword and the JSON pointer of its subschema (``lenient=True`` drops it instead and
records a warning).

How keywords compile:

- ``$ref`` and ``$dynamicRef`` resolve as the validator resolves them (``$id`` base URIs,
  ``$anchor``, JSON pointers, the dynamic scope, remote documents given as ``resources``; see
  ``constrain.schema_refs``); the target is inlined and merged with its siblings. A recursive
  reference is a grammar nonterminal (``compile_schema``, ``constrain.schema_grammar``), or
  unrolled ``max_recursion`` times (deeper nesting is not generated) with ``recursion="unroll"``,
  under an intersection or complement, and where it has sibling keywords.
- Two polarities: the compiler builds a *subset* of the valid texts (what it generates, with the
  narrowings below) and, for the operands of complements, a *superset* (no narrowing; a keyword
  it cannot enforce is simply dropped there). ``not S`` is the complement of S's superset (and
  the superset of ``not S`` the complement of S's subset), so both stay sound and are exact
  where S compiles exactly. ``constrain.schema_negate`` first turns common negations into
  positive schemas (``not required`` → ``properties: {name: false}``, De Morgan, type lists),
  which need no complement at all.
- ``allOf`` merges its branches into one schema (``schema_merge``); pairs with no exact merged
  form are intersected as languages. ``anyOf`` distributes its siblings into each branch.
  ``oneOf``: one branch and no other, "no other" as negated schemas or complements (skipped
  where the branches are provably disjoint: by type, or a required property with disjoint
  ``const``/``enum`` values). ``if``/``then``/``else``: (if and then) or (not if and else).
- ``enum``/``const`` keep the values the validator accepts under the whole schema.
- numbers: ``minimum``/``maximum``/exclusive bounds exactly over plain decimal text
  (``constrain.numbers``); ``multipleOf`` as a remainder automaton over the digits, exact for the
  validator's float arithmetic within 15 significant digits (a decimal step that is not a binary
  float, such as 0.01, only on integers).
- strings: lengths in code points, ``pattern`` with ``re.search`` semantics, exact formats.
- arrays: ``prefixItems``, ``items``, ``minItems``/``maxItems``, ``contains`` with
  ``minContains``/``maxContains`` (counted exactly: a text's elements split in one way), and
  ``uniqueItems`` where every position allows finitely many values (the values written so far are
  the automaton's state).
- objects: ``properties``/``required`` in declaration order, extra members (when the schema allows
  them and ``strict_properties=False``) anywhere between them, or with ``property_order="any"``
  every member in any order (an automaton over the names written so far, built lazily as it is
  visited); ``patternProperties`` (undeclared keys split by the patterns they match),
  ``propertyNames``; ``minProperties``/``maxProperties`` and ``dependentRequired`` follow the
  members as they are written (a count and the set of names involved); ``dependentSchemas`` as
  one merged schema per set of names present.
- ``unevaluatedProperties``/``unevaluatedItems``: rewritten into plain keywords per annotation
  case (``constrain.schema_unevaluated``).
- Member values and array elements that provably refuse nothing, warn only as known in advance,
  accept some value and hold no recursion are built when generation first reaches them
  (``constrain.schema_deferral``): an instance of a large document visits a few of its members.

Repeated keys: a text with a key twice means what its parser makes of it (``json.loads`` keeps
the last). Generated texts are checked member by member, which is sound for them; the supersets
that complements use treat member counts as key counts, so under ``not`` a text that repeats a
key may be judged by its text rather than by its parsed value.

Deliberate narrowings, each recorded in the grammar's ``warnings`` (what is generated is always
valid; some valid texts are not): declared properties in declaration order (unless
``property_order="any"``); ``integer`` is written without exponent; bounded numbers without exponent;
multiples with at most 15 significant digits; undeclared members count once towards
``minProperties`` (two may share a key, which ``json.loads`` keeps once); under ``maxContains``,
no element that may or may not match ``contains`` (an enum's 1 written as 1.00); names present in
a ``dependentSchemas`` case are declared (required) there.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from decimal import Decimal
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema._utils import equal

from . import charset as cs
from .errors import RegexError, SchemaError, UnsupportedSchemaError
from .formats import SUBSET_FORMATS, checked_formats, format_patterns
from .numbers import SIGNIFICANT_DIGITS, MultipleRefused, NumberTerms, bound_decimal, multiple_step
from .regex import Encoding, Lowering
from .cfg.ir import Grammar
from .schema_check import check_schema
from .schema_merge import merge
from .schema_negate import negate
from .schema_deferral import BOUNDED_NUMBERS_NOTE, DECLARED_ORDER_NOTE, STRICT_PROPERTIES_NOTE, Deferral
from .schema_dialects import INTEGER_TEXT
from .schema_refs import LinkedSchema
from .schema_types import TYPES, VALIDATION, escape_pointer, json_type, type_list
from .schema_grammar import MAX_LAZY_STATES, NotContextFree, grammar_of
from .terms import EMPTY, EPS, INF, HoleReached, TermStore

WHITESPACE_STYLES = ("flexible", "compact", "dumps")
PROPERTY_ORDERS = ("declared", "any")

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
_COMBINATORS = {"$ref", "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "enum", "const"}
_HANDLED = {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
            "maxLength", "pattern", "format", "items", "prefixItems", "minItems", "maxItems",
            "contains", "minContains", "properties", "required", "additionalProperties",
            "patternProperties", "propertyNames", "minProperties", "maxProperties", "multipleOf",
            "maxContains", "dependentRequired", "dependentSchemas", "uniqueItems"} | _COMBINATORS


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
    """Load ``schema`` and check the shape of every keyword (``constrain.schema_check``)."""
    schema = load_schema(schema)
    check_schema(schema)
    return schema


def compile_schema_term(schema: dict | bool, store: TermStore, *, whitespace: str = "flexible",
                        max_whitespace: int = 24, lenient: bool = False,
                        max_recursion: int = 4, strict_properties: bool = True,
                        format_assertion: bool = True, unicode_escapes: bool = False,
                        property_order: str = "declared",
                        resources: Mapping[str, Any] | None = None) -> tuple[int, list[str], int]:
    """Lower ``schema`` into ``store``; return the term, the sorted warnings, and the term of one
    string character (which the string-body token shortcut recognises).

    ``strict_properties`` (the default) never generates properties the schema does not declare,
    even where it allows them: a narrower, still valid, language, and what small models need
    (allowed to, they copy the schema's own keywords as extra members). ``strict_properties=False``
    accepts every undeclared member the schema allows, between the declared ones. ``format_assertion=False`` treats
    ``format`` as an annotation, as a validator without a format checker does.
    ``unicode_escapes=True`` also accepts ``\\uXXXX`` for every character in strings (the
    ``ensure_ascii=True`` layout of ``json.dumps``); by default only control characters use it.
    ``property_order="any"`` accepts an object's members in every order, not only in declaration order.
    ``resources`` maps URIs to the schema documents that references to them resolve to (a
    reference to a URI that is neither there nor an official metaschema is refused).
    """
    language = compile_schema(schema, store, whitespace=whitespace, max_whitespace=max_whitespace,
                              lenient=lenient, max_recursion=max_recursion,
                              strict_properties=strict_properties, format_assertion=format_assertion,
                              unicode_escapes=unicode_escapes, property_order=property_order,
                              resources=resources, recursion="unroll")
    return language.term, language.warnings, language.json_char


@dataclass(frozen=True)
class SchemaLanguage:
    """A compiled schema: a regular ``term``, or where recursion makes the language context-free,
    a ``grammar`` whose lexemes are terms of the same store (``constrain.schema_grammar``)."""

    term: int
    warnings: list[str]
    json_char: int
    grammar: Grammar | None = None


def compile_schema(schema: dict | bool, store: TermStore, *, recursion: str = "grammar",
                   max_recursion: int = 4, **options: Any) -> SchemaLanguage:
    """Lower ``schema`` into ``store`` (options as ``compile_schema_term``).

    ``recursion="grammar"`` compiles a recursive reference as a nonterminal: the language is then
    a context-free grammar, exact at any depth. Where a part with one has no context-free form
    (under ``not``, or intersected with another schema), that part alone is unrolled; with
    ``recursion="unroll"``, every recursive reference is unrolled ``max_recursion`` times instead
    (recorded narrowings).
    """
    whitespace = options.get("whitespace", "flexible")
    if whitespace not in WHITESPACE_STYLES:
        raise ValueError(f"whitespace must be one of {WHITESPACE_STYLES}, not {whitespace!r}")
    order = options.get("property_order", "declared")
    if order not in PROPERTY_ORDERS:
        raise ValueError(f"property_order must be one of {PROPERTY_ORDERS}, not {order!r}")
    if recursion not in ("grammar", "unroll"):
        raise ValueError(f"recursion must be 'grammar' or 'unroll', not {recursion!r}")
    if recursion == "grammar":
        compiler = _SchemaCompiler(schema, store, max_recursion=max_recursion, **options)
        compiler.bodies = {}
        try:
            term = compiler.value(compiler.root, "#")
            grammar = None
            if compiler.bodies:
                built = grammar_of(store, term, compiler.bodies, unroll=max_recursion,
                                   sizes=compiler.automaton_sizes)
                grammar = built.grammar
                for where in built.unrolled:
                    compiler.note(f"recursive references under {where} are unrolled {max_recursion} levels deep")
            compiler.sealed = True
            return SchemaLanguage(term, sorted(compiler.warnings), compiler.json_char, grammar)
        except (NotContextFree, HoleReached):
            compiler.sealed = True  # unrolled below, with the narrowing recorded
    compiler = _SchemaCompiler(schema, store, max_recursion=max_recursion, **options)
    term = compiler.value(compiler.root, "#")
    compiler.sealed = True
    return SchemaLanguage(term, sorted(compiler.warnings), compiler.json_char)


class _BaseTerms(NamedTuple):
    """Terms every schema compiler uses, the same for given whitespace and escape options."""

    item_sep: int
    key_sep: int
    inner_ws: int
    json_char: int
    any_string: int
    unsigned_number: int  # with an optional exponent
    long_number: int  # texts of 16 digits or more (a float may round them onto another value)
    exponent_number: int


def _base_terms(st: TermStore, low: Lowering, num: NumberTerms, whitespace: str, max_whitespace: int) -> _BaseTerms:
    if whitespace == "flexible":
        ws = st.rep(st.byte_set(_mask(b" \t\n\r")), 0, max_whitespace)
        item_sep, key_sep, inner_ws = st.seq(ws, st.literal(b","), ws), st.seq(ws, st.literal(b":"), ws), ws
    elif whitespace == "compact":
        item_sep, key_sep, inner_ws = st.literal(b","), st.literal(b":"), EPS
    else:
        item_sep, key_sep, inner_ws = st.literal(b", "), st.literal(b": "), EPS
    json_char = low.charset(cs.ANY, Encoding.JSON)
    any_string = st.seq(st.literal(b'"'), st.star(json_char), st.literal(b'"'))
    exponent = st.seq(st.byte_set(_mask(b"eE")), st.opt(st.byte_set(_mask(b"+-"))), st.rep(num.digit, 1))
    unsigned_number = st.seq(num.natural, st.opt(num.fraction), st.opt(exponent))
    digit_after = st.seq(st.star(st.byte_set(_mask(b"-.eE+"))), num.digit)
    long_number = st.and_(st.seq(st.opt(st.literal(b"-")), unsigned_number),
                          st.seq(st.rep(digit_after, 16, 16), st.not_(EMPTY)))
    exponent_number = st.seq(st.opt(st.literal(b"-")), num.natural, st.opt(num.fraction), exponent)
    return _BaseTerms(item_sep, key_sep, inner_ws, json_char, any_string, unsigned_number, long_number,
                      exponent_number)


@dataclass(frozen=True)
class _Prelude:
    low: Lowering  # and its store
    num: NumberTerms
    terms: _BaseTerms


@functools.lru_cache(maxsize=16)
def _prelude(whitespace: str, max_whitespace: int, unicode_escapes: bool) -> _Prelude:
    """The base terms built once per options, in a store that new stores copy (faster than
    building them again: about a third of compiling a small schema)."""
    store = TermStore()
    low, num = Lowering(store, unicode_escapes=unicode_escapes), NumberTerms(store)
    return _Prelude(low, num, _base_terms(store, low, num, whitespace, max_whitespace))


class _SchemaCompiler:
    defer = True  # build proven member values and elements when first reached (tests compare with False)

    def __init__(self, root, store: TermStore, *, whitespace: str = "flexible", max_whitespace: int = 24,
                 lenient: bool = False, max_recursion: int = 4,
                 strict_properties: bool = True, format_assertion: bool = True,
                 unicode_escapes: bool = False, property_order: str = "declared",
                 resources: Mapping[str, Any] | None = None):
        # every reference resolved once, into a document whose subschemas mean the same anywhere
        self.refs = LinkedSchema(root, resources)
        self.root = self.refs.root
        self.any_order = property_order == "any"
        self.st = store
        if store.is_new():  # it starts as a copy of the prelude
            prelude = _prelude(whitespace, max_whitespace, unicode_escapes)
            store.adopt(prelude.low.store)
            self.low, self.num = prelude.low.rebound(store), prelude.num.rebound(store)
            base = prelude.terms
        else:
            self.low, self.num = Lowering(store, unicode_escapes=unicode_escapes), NumberTerms(store)
            base = _base_terms(store, self.low, self.num, whitespace, max_whitespace)
        (self.item_sep, self.key_sep, self.inner_ws, self.json_char, self.any_string,
         self.unsigned_number, self.long_number, self.exponent_number) = base
        self.lenient = lenient
        self.max_recursion = max_recursion
        self.strict_properties = strict_properties
        self.warnings: set[str] = set()
        self.sealed = False  # the compile has returned (what is built now is a deferred value)
        self.formats = checked_formats() if format_assertion else frozenset()
        self.validator = Draft202012Validator(self.root, format_checker=FormatChecker() if format_assertion else None)
        self._unrolled = 0  # recursive references being expanded (ref() stops at max_recursion)
        # recursive targets compiled as grammar holes: their bodies (None while being compiled);
        # None: recursion is unrolled
        self.bodies: dict[str, int | None] | None = None
        # lazy automata with holes: how many states they reach (up to past MAX_LAZY_STATES)
        self.automaton_sizes: dict[int, int] = {}
        # Polarity: False builds a subset of the valid texts (what we generate), True a superset
        # (the operands of complements); narrowings apply only to subsets, refusals only to subsets.
        self.over = False
        self._memo: dict[tuple, tuple[dict, int]] = {}
        self._strings: dict[str, int] = {}
        self._any: int | None = None  # any_value(), built once
        # member values and array elements proven to change nothing else are built when first
        # reached (constrain.schema_deferral); by the schema's id (the entry holds the schema)
        self._deferrals: dict[int, Deferral] = {}  # by self._unrolled: what is built now differs
        self._deferred: dict[tuple, tuple[Any, int]] = {}
        self._overlaps: dict[int, tuple[dict, list[list[int]]]] = {}  # by the oneOf schema's id (held)

    # -- helpers ------------------------------------------------------------------------------
    def unsupported(self, keyword: str, path: str, detail: str = "") -> None:
        if self.over:  # a superset may drop any constraint: every caller widens after this call
            return
        self._check_open(f"refused {keyword!r} at {path}")
        if not self.lenient:
            raise UnsupportedSchemaError(keyword, path, detail)
        self.warnings.add(f"ignored {keyword!r} at {path}" + (f": {detail}" if detail else ""))

    def note(self, message: str) -> None:
        if not self.over and message not in self.warnings:  # supersets narrow nothing
            self._check_open(message)
            self.warnings.add(message)

    def _check_open(self, what: str) -> None:
        """A deferred value built after the compile (deferred_value) must not refuse or warn: the
        compile has reported already. Loud, should that proof ever fail."""
        if self.sealed:
            raise AssertionError(f"a value built after compiling reported {what!r} (constrain.schema_deferral)")

    def flipped(self, schema, path: str) -> int:
        """``schema`` compiled in the other polarity (a superset while building a subset, and the
        other way round), for the operands of ``not`` and of the conditions that stand for it."""
        if schema is True and not self.over:
            return self.st.not_(EMPTY)  # every text: the complement is empty at once
        self.over = not self.over
        try:
            return self.value(schema, path)
        finally:
            self.over = not self.over

    def braces(self, open_: bytes, body: int, close: bytes) -> int:
        st = self.st
        return st.seq(st.literal(open_), self.inner_ws, body, self.inner_ws, st.literal(close))

    def separated(self, item: int, lo: int = 0, hi: int = INF) -> int:
        """``item (sep item)*`` with between ``lo`` and ``hi`` items (possibly none)."""
        st = self.st
        if hi != INF and hi < lo:
            return EMPTY
        if hi == 0:
            return EPS
        more = st.rep(st.seq(self.item_sep, item), max(lo - 1, 0), INF if hi == INF else hi - 1)
        body = st.seq(item, more)
        return st.opt(body) if lo == 0 else body

    # -- values ---------------------------------------------------------------------------------
    def deferred_value(self, schema, path: str) -> int:
        """``value(schema, path)``, built when generation (or an emptiness search) first reaches
        it where constrain.schema_deferral proves that changes nothing else: its warnings are
        recorded now, and it refuses nothing, is nonempty and has no recursive reference."""
        if self.over or not self.defer or not isinstance(schema, dict) or not (_CONTAINERS & schema.keys()):
            return self.value(schema, path)  # (scalars are as cheap to build now)
        key = (id(schema), self._unrolled)
        got = self._deferred.get(key)
        if got is not None:
            return got[1]
        notes = self.deferral().notes(schema, path)
        if notes is None:
            return self.value(schema, path)
        for message in notes:
            self.note(message)
        unrolled = self._unrolled

        def define() -> int:
            # built later, maybe inside another value's superset (an emptiness search): as now
            saved = self.over, self._unrolled
            self.over, self._unrolled = False, unrolled
            try:
                return self.value(schema, path)
            finally:
                self.over, self._unrolled = saved

        term = self.st.lazy(("deferred", self.st.fresh_key()), define, nullable=False, empty=None, min_len=1)
        self._deferred[key] = (schema, term)
        return term

    def deferral(self) -> Deferral:
        """What may wait, at the current depth of unrolled recursion (parts built now differ)."""
        got = self._deferrals.get(self._unrolled)
        if got is None:
            got = self._deferrals[self._unrolled] = Deferral(
                self.refs, self.formats, self.validator, self.disjoint_one_of, self.patterns_apart,
                self.merged_all_of, self.built_now,
                strict_properties=self.strict_properties, any_order=self.any_order)
        return got

    def built_now(self, schema, path: str) -> bool:
        """``value(schema, path)`` built now, for a deferred value that holds it: whether it can
        wait inside one (nonempty by its structure, without AND/NOT: an emptiness search here
        cost more than deferring saved; and without grammar holes)."""
        term = self.value(schema, path)
        st = self.st
        return term != EMPTY and not st.has_bool[term] and not st.has_hole[term]

    def value(self, schema, path: str) -> int:
        if schema is True:
            return self.any_value()
        if schema is False:
            return EMPTY
        if not isinstance(schema, dict):
            raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}", path)
        # The term depends on the references being expanded only through how many of them are
        # recursive (ref() cuts at max_recursion of them). A linked schema stands for one target
        # under one base URI and dynamic scope (constrain.schema_refs copies a target per base), so
        # its id covers the base.
        key = (id(schema), self.over, self._unrolled)
        got = self._memo.get(key)
        if got is None:
            # A merged schema (allOf, $ref beside siblings, oneOf branches) is a new dict each time
            # it is made: it is found again by its content, its subschemas by identity. Not where
            # lenient: its warnings name the path of each keyword dropped.
            twin = None if self.lenient else (_content_key(schema), self.over, self._unrolled)
            found = self._memo.get(twin) if twin is not None else None
            # each entry holds its own schema: merged schemas are temporary, and a freed one's id
            # is reused (a twin's entry holds the twin, and the subschemas its key names)
            got = (schema, self._value(schema, path) if found is None else found[1])
            if twin is not None and found is None:
                self._memo[twin] = got
            self._memo[key] = got
        return got[1]

    def _value(self, schema: dict, path: str) -> int:
        st = self.st
        if "unevaluatedProperties" in schema or "unevaluatedItems" in schema:
            # an exact rewrite into plain keywords, one allOf entry each (constrain.schema_unevaluated)
            from .schema_unevaluated import rewrite_unevaluated
            return self.value(rewrite_unevaluated(schema, path, self.refs.target, self.unsupported), path)
        if "$ref" in schema:
            return self.ref(schema, path)
        if "allOf" in schema:
            return self.all_of(schema, path)
        if "anyOf" in schema or "oneOf" in schema:
            return self.any_of(schema, path)
        if "not" in schema:
            # under(not S) = ¬over(S) and over(not S) = ¬under(S): both sound, exact where they meet
            rest = _without(schema, "not")
            inverse = negate(schema["not"])
            if inverse is not None:  # a positive schema says it exactly, without a complement
                return self.conjunction(rest, path, [(inverse, path + "/not")])
            return st.and_(self.value(rest, path), st.not_(self.flipped(schema["not"], path + "/not")))
        if "if" in schema:
            return self.conditional(schema, path)
        rest = _without(schema, "then", "else")
        types = type_list(schema)
        for kw in schema:  # in the schema's order: the first refused keyword is the one reported
            if kw in VALIDATION and kw not in _HANDLED:
                applies = _KEYWORD_TYPES.get(kw)
                if applies is None or applies & set(types):
                    self.unsupported(kw, path)
        if "enum" in schema or "const" in schema:
            return self.enumeration(rest, path)
        if "integer" in types and "number" in types:
            types.remove("integer")
        return st.alt(*[self.typed(t, rest, path) for t in types])

    def typed(self, t: str, schema: dict, path: str) -> int:
        st = self.st
        if t == "null":
            return st.literal(b"null")
        if t == "boolean":
            return st.alt(st.literal(b"true"), st.literal(b"false"))
        if t in ("integer", "number"):
            return self.number(schema, path, t == "integer")
        if t == "string":
            return self.string(schema, path)
        if t == "array":
            return self.array(schema, path)
        return self.object(schema, path)

    # -- references and combinators -----------------------------------------------------------
    def ref(self, schema: dict, path: str) -> int:
        ref = schema["$ref"]  # linked: it names one absolute target (constrain.schema_refs)
        target = self.resolve(ref, path)
        where = self.refs.target(ref).path
        rest = _without(schema, "$ref")
        recursive = self.is_recursive(ref)
        if recursive and self.bodies is not None and not self.over and not any(k in VALIDATION for k in rest):
            return self.hole(ref, target, where)
        if recursive and self._unrolled >= self.max_recursion:
            self.note(f"recursive references are unrolled {self.max_recursion} levels deep")
            return self.st.not_(EMPTY) if self.over else EMPTY
        self._unrolled += recursive
        try:
            if not any(k in VALIDATION for k in rest):
                return self.value(target, where)
            merged = merge(target, rest) if isinstance(target, dict) or isinstance(target, bool) else None
            if merged is None:
                return self.st.and_(self.value(target, where), self.value(rest, path))
            return self.value(merged, path)
        finally:
            self._unrolled -= recursive

    def hole(self, ref: str, target, where: str) -> int:
        """The grammar nonterminal of a recursive target; its body is compiled once (references to
        it inside are holes already). Supersets unroll instead: a complement needs an automaton."""
        if ref not in self.bodies:
            self.bodies[ref] = None
            self.bodies[ref] = self.value(target, where)
        return self.st.hole(ref)

    def is_recursive(self, ref: str) -> bool:
        """Whether the target of the linked reference ``ref`` can reach itself (then it is
        unrolled ``max_recursion`` times): the one place that decides it."""
        return self.refs.is_recursive(ref)

    def resolve(self, ref: str, path: str):
        """The linked schema that ``ref`` (a reference of the linked document) stands for; a
        reference that does not resolve is refused, or is a SchemaError (a dangling pointer or
        anchor), naming the JSON pointer ``path`` of the schema holding it."""
        target = self.refs.target(ref)
        if target.error is not None:
            keyword, message, unsupported = target.error
            if not unsupported:
                raise SchemaError(message, path)
            self.unsupported(keyword, path, message)
            return True
        return target.contents

    def all_of(self, schema: dict, path: str) -> int:
        return self.conjunction(_without(schema, "allOf"), path,
                                [(b, f"{path}/allOf/{i}") for i, b in enumerate(schema["allOf"])])

    def conjunction(self, base: Any, path: str, parts: list[tuple[Any, str]]) -> int:
        """``base`` and every part (with its path): merged into one schema where that is exact,
        so that one builder sees every constraint, else intersected as languages."""
        acc, separate = self.merged(base, parts)
        terms = [self.value(b, p) for b, p in separate]
        if not terms or acc is not True and (not isinstance(acc, dict) or VALIDATION & acc.keys()):
            terms.append(self.value(acc, path))  # (what constrains nothing adds nothing)
        return self.st.and_(*terms)

    def merged_all_of(self, schema: dict) -> Any:
        """The one schema that ``value`` compiles for ``schema``, an ``allOf`` whose parts all
        merge (a copy, for constrain.schema_deferral to read), else None. None where lenient:
        its build later would not find the parts built now by their content (see value)."""
        if self.lenient or "$ref" in schema or _UNEVALUATED & schema.keys():  # (not through all_of)
            return None
        parts = schema["allOf"]
        if not isinstance(parts, list):
            return None
        acc, separate = self.merged(_without(schema, "allOf"), [(b, "") for b in parts])
        return None if separate else acc

    def merged(self, base: Any, parts: list[tuple[Any, str]]) -> tuple[Any, list[tuple[Any, str]]]:
        """``base`` with the parts merged in where that is exact, and the parts that stay apart."""
        acc = base
        separate = []
        todo = list(reversed(parts))
        while todo:
            sub, sub_path = todo.pop()
            sub = self._resolved(sub)
            if isinstance(sub, dict) and "allOf" in sub and not _UNEVALUATED & sub.keys():
                # its own allOf flattened: each piece merges on its own (exact: conjunction is
                # associative; unevaluated* would see the pieces' annotations, so those stay whole)
                pieces = [(_without(sub, "allOf"), sub_path)]
                pieces += [(b, f"{sub_path}/allOf/{i}") for i, b in enumerate(sub["allOf"])]
                todo += reversed(pieces)
                continue
            m = merge(acc, sub)
            if isinstance(m, dict) and "allOf" in m and _both_any_of(acc, sub):
                m = _distributed(acc, sub)  # two anyOfs: one anyOf of their merged pairs
            if m is None or (isinstance(m, dict) and "allOf" in m):
                separate.append((sub, sub_path))
            else:
                acc = m
        return acc, separate

    def any_of(self, schema: dict, path: str) -> int:
        st = self.st
        key = "anyOf" if "anyOf" in schema else "oneOf"
        branches = self.branches(schema, key, path)
        if key == "anyOf" or len(branches) < 2:
            return st.alt(*[self.value(b, p) for b, p in branches])
        # exactly one: branch i and no other that an instance of it may also satisfy, "no other"
        # as positive schemas where negate knows one, else outside the other polarity of the
        # branch (a superset where this is a subset)
        inverses = [negate(b) for b in schema[key]]
        overlapping = self.one_of_overlaps(schema, branches)
        out = []
        for i, (b, bpath) in enumerate(branches):
            others = overlapping[i]
            term = self.conjunction(b, bpath, [(inverses[j], f"{path}/oneOf/{j}") for j in others
                                               if inverses[j] is not None])
            rivals = [self.flipped(schema[key][j], f"{path}/oneOf/{j}") for j in others if inverses[j] is None]
            out.append(st.and_(term, st.not_(st.alt(*rivals))) if rivals else term)
        return st.alt(*out)

    def branches(self, schema: dict, key: str, path: str) -> list[tuple[Any, str]]:
        """The ``anyOf``/``oneOf`` branches with their siblings merged in, and their paths."""
        rest = _without(schema, key)
        out = []
        for i, b in enumerate(schema[key]):
            m = merge(rest, self._resolved(b))
            bpath = f"{path}/{key}/{i}"
            out.append((m, bpath) if m is not None and not (isinstance(m, dict) and "allOf" in m and "allOf" not in rest)
                       else ({"allOf": [rest, b]}, bpath))
        return out

    def one_of_overlaps(self, schema: dict, branches: list[tuple[Any, str]] | None = None) -> list[list[int]]:
        """``overlaps`` of the ``oneOf`` branches of ``schema`` (merged with their siblings), once
        per schema: constrain.schema_deferral asks too."""
        got = self._overlaps.get(id(schema))
        if got is None:
            branches = self.branches(schema, "oneOf", "#") if branches is None else branches
            got = self._overlaps[id(schema)] = (schema, self.overlaps([self._read(b) for b, _ in branches]))
        return got[1]

    def disjoint_one_of(self, schema: dict) -> bool:
        """Whether any_of compiles the ``oneOf`` of ``schema`` as the union of its branches (no two
        may overlap, so none needs the others excluded)."""
        return not any(self.one_of_overlaps(schema))

    def patterns_apart(self, patterns: list[str]) -> bool:
        """Whether no key matches two of ``patterns`` (patternProperties), each of which lowers
        without refusal to a language with some key (proven by its structure, and for each pair
        by an emptiness search, which key_cells finds memoized): then every key of an object is
        of at most one pattern, and its value is that pattern's schema itself, not a merged copy.
        Nothing is reported here (a pattern that is refused is refused where it is compiled)."""
        st = self.st
        keys = []
        for pattern in patterns:
            try:
                key = self.low.search(pattern, Encoding.JSON)
            except RegexError:
                return False
            if key == EMPTY or st.has_bool[key]:
                return False
            keys.append(self.key_matching(pattern, "#"))
        return all(st.is_empty(st.and_(a, b)) for a, b in itertools.combinations(keys, 2))

    def conditional(self, schema: dict, path: str) -> int:
        st = self.st
        rest = _without(schema, "if", "then", "else")
        cond = schema["if"]
        # "then" where the condition holds (in this polarity); "else" where it fails: a positive
        # schema where negate knows one, else outside the condition's other polarity
        then_t = self.conjunction(rest, path, [(cond, path + "/if"), (schema.get("then", True), path + "/then")])
        inverse = negate(cond)
        if inverse is not None:
            return st.alt(then_t, self.conjunction(rest, path, [(inverse, path + "/if"),
                                                               (schema.get("else", True), path + "/else")]))
        else_t = self.conjunction(rest, path, [(schema.get("else", True), path + "/else")])
        return st.alt(then_t, st.and_(else_t, st.not_(self.flipped(cond, path + "/if"))))

    def overlaps(self, schemas: list) -> list[list[int]]:
        """For each schema, the others (in order) that some instance may satisfy together with it:
        each pair tested once, with each schema's types and values read once (a oneOf of n
        branches has n(n-1)/2 pairs)."""
        kinds = [(_type_set(s), _values(s)) if isinstance(s, dict) else None for s in schemas]
        out: list[list[int]] = [[] for _ in schemas]
        for i, j in itertools.combinations(range(len(schemas)), 2):
            if not self.disjoint(schemas[i], schemas[j], kinds[i], kinds[j]):
                out[i].append(j)
                out[j].append(i)
        return out

    def disjoint(self, a, b, kind_a: tuple | None, kind_b: tuple | None) -> bool:
        """Whether no instance can be valid under both schemas (a sufficient, syntactic test);
        ``kind_*``: a dict schema's type set and its const/enum values (None for a boolean)."""
        if kind_a is None or kind_b is None:
            return a is False or b is False
        (ta, va), (tb, vb) = kind_a, kind_b
        if not ta & tb:
            return True
        if va is not None and vb is not None and not any(equal(x, y) for x in va for y in vb):
            return True
        return (ta <= {"object"} or tb <= {"object"}) and self._discriminated(a, b)

    def _discriminated(self, a: dict, b: dict) -> bool:
        """A property one of them requires is one the other forbids, or takes values it disallows."""
        pa, pb = a.get("properties", {}), b.get("properties", {})
        for name in set(a.get("required", [])) | set(b.get("required", [])):
            if name in a.get("required", []) and _forbids(b, name) or name in b.get("required", []) and _forbids(a, name):
                return True
            va, vb = _values(self._resolved(pa.get(name, True))), _values(self._resolved(pb.get(name, True)))
            if va is not None and vb is not None and not any(equal(x, y) for x in va for y in vb):
                return True
        return False

    def _read(self, schema, depth: int = 0):
        """``schema`` resolved and with its ``allOf`` merged in where that is exact: to read its
        constraints (``disjoint``), not to compile it."""
        schema = self._resolved(schema, recursive=True)
        if not isinstance(schema, dict) or "allOf" not in schema or depth > 8:
            return schema
        acc = _without(schema, "allOf")
        for part in schema["allOf"]:
            acc = merge(acc, self._read(part, depth + 1))
            if acc is None or isinstance(acc, dict) and "allOf" in acc:
                return schema
        return acc

    def _resolved(self, schema, recursive: bool = False):
        """``schema`` with its ``$ref``s replaced by their targets merged with the siblings (where
        that has no exact merged form, the ``$ref`` stays: ref() intersects the two), recursive
        ones too where ``recursive`` (to read a schema, not to compile it)."""
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 8:
            ref = schema["$ref"]
            if self.refs.target(ref).error is not None or self.is_recursive(ref) and not recursive:
                break  # compiled through ref(): errors reported with their path, recursion counted
            merged = merge(self.resolve(ref, "#"), _without(schema, "$ref"))
            if merged is None:
                break
            schema = merged
            seen += 1
        return schema

    def enumeration(self, schema: dict, path: str) -> int:
        values = _values(schema)
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const")}
        # The other keywords filter the candidates; the validator itself decides, so this is exact.
        check = self.validator.evolve(schema=rest)
        kept = [v for v in values if check.is_valid(v)]
        terms = [self.literal_value(v, wide=self.over) for v in kept]
        if rest.get(INTEGER_TEXT) == "plain":  # numbers written as plain integers (draft 4's integer)
            plain = self.st.seq(self.st.opt(self.st.literal(b"-")), self.num.natural)
            terms = [self.st.and_(t, plain) if json_type(v) in ("integer", "number") else t for v, t in zip(kept, terms)]
        return self.st.alt(*terms)

    def literal_value(self, v: Any, wide: bool = False) -> int:
        """The texts of the value ``v``; ``wide``: a superset of them (every number text that may
        parse equal, objects of many keys in any form)."""
        st = self.st
        if v is None or isinstance(v, bool):
            return st.literal(json.dumps(v).encode())
        if wide and isinstance(v, (int, float)):
            return self.near_number(v)
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
                return self.braces(b"[", EPS, b"]")
            items = [self.literal_value(x, wide) for x in v]
            body = [items[0]]
            for x in items[1:]:
                body += [self.item_sep, x]
            return self.braces(b"[", st.seq(*body), b"]")
        # Object equality ignores key order: small objects are accepted in every order.
        pairs = [st.seq(self.string_literal(k), self.key_sep, self.literal_value(x, wide)) for k, x in v.items()]
        if not pairs:
            return self.braces(b"{", EPS, b"}")
        if wide and len(pairs) > 4:
            return st.seq(st.literal(b"{"), st.not_(EMPTY))
        orders = itertools.permutations(pairs) if len(pairs) <= 4 else [pairs]
        if len(pairs) > 4:
            self.note("object constants with more than 4 keys are written in their given key order")
        bodies = []
        for order in orders:
            members = [order[0]]
            for pair in order[1:]:
                members += [self.item_sep, pair]
            bodies.append(st.seq(*members))
        return self.braces(b"{", st.alt(*bodies), b"}")

    def string_literal(self, s: str) -> int:
        """The JSON texts of the string ``s``: each character raw or in any escape form."""
        got = self._strings.get(s)
        if got is None:  # memoized: names recur (as members, as undeclared-key exclusions, in enums)
            got = self._strings[s] = self.low.json_string(s)
        return got

    # -- scalars ----------------------------------------------------------------------------------
    def number(self, schema: dict, path: str, integer: bool) -> int:
        st = self.st
        num = self.num
        sign = st.opt(st.literal(b"-"))
        plain = schema.get(INTEGER_TEXT) == "plain"  # draft 4's integers (constrain.schema_dialects)
        if plain:
            integer, base = True, st.seq(sign, num.natural)
        elif integer:
            # "N.0" parses as a float: past 308 digits it is inf, which is no integer
            short = st.alt(st.literal(b"0"), st.seq(num.nonzero, st.rep(num.digit, 0, 307)))
            base = st.seq(sign, st.alt(num.natural, st.seq(short, num.zero_fraction)))
        else:
            base = st.seq(sign, self.unsigned_number)
        lo = hi = None
        lo_strict = hi_strict = False
        for key, strict in (("minimum", False), ("exclusiveMinimum", True)):
            if key in schema:
                b = bound_decimal(schema[key], strict, lower=True)
                if lo is None or b > lo or (b == lo and strict):
                    lo, lo_strict = b, strict
        for key, strict in (("maximum", False), ("exclusiveMaximum", True)):
            if key in schema:
                b = bound_decimal(schema[key], strict, lower=False)
                if hi is None or b < hi or (b == hi and strict):
                    hi, hi_strict = b, strict
        parts = [base, self.multiple(schema, path, integer)]
        if lo is not None or hi is not None:
            self.note(BOUNDED_NUMBERS_NOTE)
            parts.append(num.decimal_range(lo, lo_strict, hi, hi_strict))
        exact = st.and_(*parts)
        if not self.over:
            return exact
        # a superset: also the forms the subset leaves out, exponents, and texts of 16 digits or
        # more, whose float may round onto a bound, a multiple or an integer (15 digits round-trip)
        if plain:  # no exponent is a plain integer
            return st.alt(exact, st.and_(base, self.long_number))
        return st.alt(exact, self.exponent_number, self.long_number)

    def multiple(self, schema: dict, path: str, integer: bool) -> int:
        """Signed texts that ``multipleOf`` accepts (every text when absent or trivial)."""
        st = self.st
        divisor = schema.get("multipleOf")
        if divisor is None or integer and divisor == 1:
            return st.not_(EMPTY)
        try:
            unsigned = self.num.multiples(multiple_step(divisor, integer))
        except MultipleRefused as exc:
            self.unsupported("multipleOf", path, str(exc))
            return st.not_(EMPTY)
        self.note(f"numbers with multipleOf are written without exponent, with at most "
                  f"{SIGNIFICANT_DIGITS} significant digits")
        return st.seq(st.opt(st.literal(b"-")), unsigned)

    def string(self, schema: dict, path: str) -> int:
        st = self.st
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        # Patterns and formats lower to JSON string contents, so a length bound is the only other
        # part: without one, a pattern alone is no intersection.
        parts = [st.rep(self.json_char, int(lo), INF if hi is None else int(hi))] if lo or hi is not None else []
        if "pattern" in schema:
            parts.append(self.pattern_term(schema["pattern"], path + "/pattern"))
        fmt = schema.get("format")
        if fmt is not None and fmt in self.formats and not (self.over and fmt in SUBSET_FORMATS):
            patterns = format_patterns(fmt)
            if patterns is None:
                self.unsupported("format", path, f"format {fmt!r} is not supported yet")
            else:
                if fmt in SUBSET_FORMATS:
                    self.note(f"format {fmt!r}: only its common form is generated")
                for pattern, mode in patterns:
                    lowered = self.low.search if mode == "search" else self.low.fullmatch
                    parts.append(lowered(pattern, Encoding.JSON))
        content = st.and_(*parts) if parts else st.star(self.json_char)
        return st.seq(st.literal(b'"'), content, st.literal(b'"'))

    # -- containers -------------------------------------------------------------------------------
    def array(self, schema: dict, path: str) -> int:
        st = self.st
        prefix = [self.deferred_value(s, f"{path}/prefixItems/{i}") for i, s in enumerate(schema.get("prefixItems", []))]
        items = schema.get("items", True)
        item = self.deferred_value(items, path + "/items")
        lo = int(schema.get("minItems", 0))
        hi = schema.get("maxItems")
        hi = INF if hi is None else int(hi)
        if hi != INF and hi < lo:
            return EMPTY
        unique = self.unique_elements(schema, path, lo, hi) if schema.get("uniqueItems") and not self.over else None
        if "contains" in schema:
            body = self.contains_body(schema, path, prefix, item, lo, hi)
            return self.braces(b"[", body if unique is None else st.and_(unique, body), b"]")
        return self.braces(b"[", self.elements(prefix, item, lo, hi) if unique is None else unique, b"]")

    def unique_elements(self, schema: dict, path: str, lo: int, hi: int) -> int | None:
        """Elements with no two equal, where each position allows finitely many values: a node is
        the set of values written so far (their count is the position). None where refused."""
        if hi != INF and hi <= 1:
            return None
        st = self.st
        allowed = [self.finite_values(s) for s in schema.get("prefixItems", [])]
        allowed.append(self.finite_values(schema.get("items", True)))
        if any(vals is None for vals in allowed):
            self.unsupported("uniqueItems", path, "its items are not from a finite set of values")
            return None
        kinds: list = []  # one value per class of equal values

        def kind(v: Any) -> int:
            found = next((i for i, u in enumerate(kinds) if equal(u, v)), None)
            if found is None:
                kinds.append(v)
                found = len(kinds) - 1
            return found

        options = [[(kind(v), self.literal_value(v)) for v in vals] for vals in allowed]
        memo: dict[frozenset, int] = {}

        def node(used: frozenset) -> int:
            if used not in memo:
                if len(memo) >= _UNIQUE_STATES:
                    raise _Refused
                lead = self.item_sep if used else EPS
                more = [st.seq(lead, text, node(used | {k})) for k, text in options[min(len(used), len(options) - 1)]
                        if k not in used] if hi == INF or len(used) < hi else []
                memo[used] = st.alt(EPS if len(used) >= lo else EMPTY, *more)
            return memo[used]

        try:
            return node(frozenset())
        except _Refused:
            self.unsupported("uniqueItems", path, f"more than {_UNIQUE_STATES} sets of distinct items")
            return None

    def finite_values(self, schema) -> list | None:
        """The values valid for ``schema`` where it names them (enum, const, null, boolean), else None."""
        schema = self._resolved(schema)
        if schema is False:
            return []
        if not isinstance(schema, dict):
            return None
        values = _values(schema)
        if values is None:
            types = set(type_list(schema)) if "type" in schema else set(TYPES)
            if not types <= {"null", "boolean"}:
                return None
            values = ([None] if "null" in types else []) + ([True, False] if "boolean" in types else [])
        if schema.get(INTEGER_TEXT) == "plain" and any(json_type(v) in ("integer", "number") for v in values):
            return None  # which texts of a number are valid depends on the text (draft 4's integer)
        check = self.validator.evolve(schema=schema)  # the validator itself decides: exact
        return [v for v in values if check.is_valid(v)]

    def elements(self, prefix: list[int], item: int, lo: int, hi: int) -> int:
        """Comma-separated elements: ``prefix[j]`` for the first ones, then ``item``; lo..hi of them."""
        st = self.st
        if not prefix:
            return self.separated(item, lo, hi)
        k = len(prefix)

        def after(j: int) -> int:  # the elements after the first j, each preceded by a separator
            if j >= k:
                return st.rep(st.seq(self.item_sep, item), max(lo - j, 0), INF if hi == INF else hi - j)
            more = st.seq(self.item_sep, prefix[j], after(j + 1)) if hi == INF or j + 1 <= hi else EMPTY
            return st.alt(more, EPS) if j >= lo else more

        first = st.seq(prefix[0], after(1)) if hi == INF or hi >= 1 else EMPTY
        return st.alt(first, EPS) if lo == 0 else first

    def contains_body(self, schema: dict, path: str, prefix: list[int], item: int, lo: int, hi: int) -> int:
        """Elements with minContains..maxContains of them valid for ``contains``.

        A hit is an element in the compiled ``contains`` (a subset of its valid texts). With
        maxContains the other elements must be outside a superset of them, so that no uncounted
        element is valid; the elements in between are not generated.
        """
        st = self.st
        element = st.alt(*prefix, item)
        need = int(schema.get("minContains", 1))
        matches = self.value(schema["contains"], path + "/contains")
        hit = st.and_(element, matches)
        other, most = element, INF
        if "maxContains" in schema and not self.over:  # a superset may drop maxContains
            over = self.flipped(schema["contains"], path + "/contains")  # a superset: this is a subset
            other, most = st.and_(element, st.not_(over)), int(schema["maxContains"])
            if over != matches:
                self.note("under maxContains, elements that may match contains in another form are not generated")
        if need == 0 and most == INF:
            return self.elements(prefix, item, lo, hi)
        body = self.counted(other, hit, need, most)
        if prefix or lo or hi != INF:  # every element is an `element`: the positions and count decide
            body = st.and_(body, self.elements(prefix, item, lo, hi))
        return body

    def counted(self, other: int, hit: int, lo: int, hi: int) -> int:
        """Comma-separated elements of ``other`` or ``hit``, ``lo``..``hi`` of them in ``hit``.

        A text's elements split in exactly one way, so where ``other`` and ``hit`` are disjoint
        this counts the hits exactly, and otherwise it bounds them from below."""
        st = self.st
        sep_other = st.seq(self.item_sep, other)
        options = [self.separated(other)] if lo == 0 else []
        if hi == INF or hi >= 1:
            more = st.rep(st.seq(st.star(sep_other), self.item_sep, hit), max(lo, 1) - 1, INF if hi == INF else hi - 1)
            options.append(st.seq(st.star(st.seq(other, self.item_sep)), hit, more, st.star(sep_other)))
        return st.alt(*options)

    def near_number(self, v: int | float) -> int:
        """Every number text that may parse equal to ``v``."""
        st = self.st
        if not math.isfinite(v):
            return st.not_(EMPTY)
        # a float equal to v lies within an ulp of it; exponent texts are not compared
        ulp = Decimal(math.ulp(float(v))) * 2
        near = self.num.decimal_range(Decimal(v) - ulp, False, Decimal(v) + ulp, False)
        return st.alt(near, self.exponent_number)

    def object(self, schema: dict, path: str) -> int:
        st = self.st
        split = self.dependent_cases(schema, path)
        if split is not None:
            return split
        base = _without(schema, "dependentRequired", "dependentSchemas")
        rules = {name: list(names) for name, names in schema.get("dependentRequired", {}).items() if names}
        tracked = {n for name, names in rules.items() for n in (name, *names)}
        # the object's own members follow dependentRequired where few names take part, else AND does
        chained = rules if 2 ** len(tracked) <= _TRACKED_STATES or self.unordered else {}
        term, member = self.object_members(base, path, chained)
        if term == EMPTY or member == EMPTY:
            return term
        then = [] if chained else [(name, st.and_(*[self.object_has(member, n) for n in names]))
                                   for name, names in rules.items()]
        for name, sub in schema.get("dependentSchemas", {}).items():
            if sub is not True:
                then.append((name, self.dependent_schema(base, sub, f"{path}/dependentSchemas/{escape_pointer(name)}")))
        return st.and_(term, *[st.alt(st.not_(self.object_has(member, name)), t) for name, t in then])

    def dependent_cases(self, schema: dict, path: str) -> int | None:
        """dependentSchemas as one schema per set of present names (required there, false when
        absent) merged with their subschemas; None where some case does not merge or too many."""
        subs = {name: sub for name, sub in schema.get("dependentSchemas", {}).items() if sub is not True}
        if not subs or len(subs) > _DEPENDENT_CASES:
            return None
        required = set(schema.get("required", []))
        cases = []
        for present in itertools.product([False, True], repeat=len(subs)):
            on = [name for name, p in zip(subs, present) if p]
            off = [name for name, p in zip(subs, present) if not p]
            if required & set(off):
                continue
            presence = {"type": "object", "required": on}
            if off:
                presence["properties"] = dict.fromkeys(off, False)
            case: Any = merge(_without(schema, "dependentSchemas"), presence)
            for name in on:
                case = None if case is None else merge(case, self._resolved(subs[name]))
            if case is None:
                return None
            cases.append(case)
        return self.st.alt(*[self.value(case, path) for case in cases])

    def object_has(self, member: int, name: str) -> int:
        """Objects whose members are ``member``s, one of them with key ``name``: exact, since a
        text's members split in exactly one way (nested keys are inside some member's value)."""
        st = self.st
        named = st.and_(member, st.seq(self.string_literal(name), st.not_(EMPTY)))
        body = st.seq(st.star(st.seq(member, self.item_sep)), named, st.star(st.seq(self.item_sep, member)))
        return self.braces(b"{", body, b"}")

    @property
    def unordered(self) -> bool:
        """Whether objects take their members in any order (always in a superset)."""
        return self.any_order or self.over

    def unordered_body(self, members: list[tuple[str, int, bool]], extras: list[tuple[str | None, int]],
                       lo: int, hi: int | None, rules: dict[str, list[str]]) -> int:
        """Members in any order: the required ones present, ``rules`` (dependentRequired) kept, at
        most ``hi`` members, and at least ``lo`` keys. Extras with a name are the undeclared
        names ``rules`` mention.

        An automaton over what has been written: the tracked names (required, in ``rules``, and
        every declared one where a subset counts distinct keys for ``lo`` > 1, undeclared members
        counted once as two may share a key), whether an undeclared member was, and how many
        members (a superset counts members: equal to keys in a text without a repeated key).
        Its states are lazy terms, built as visited (there may be 2**names of them); only states
        whose counts and names can still be completed are made, and a state is empty exactly when
        a name it still needs has an empty member (decided when asked, not while compiling).
        """
        st = self.st
        hi = None if hi is None else int(hi)
        distinct = lo > 1 and not self.over
        # members are counted up to count_to (more are alike): to hi, and to lo unless keys are
        count_to = max(hi or 0, 0 if distinct else lo)
        in_rules = {n for name, names in rules.items() for n in (name, *names)}
        tracked = frozenset({n for n, _, r in members if r or distinct or n in in_rules}
                            | {n for n, _ in extras if n is not None})
        available = {n for n, _, _ in members} | {n for n, _ in extras if n is not None}
        undeclared = [t for n, t in extras if n is None]
        required = frozenset(n for n, _, r in members if r)
        term_of = {n: m for n, m, _ in members} | {n: t for n, t in extras if n is not None}
        holes = any(st.has_hole[m] for _, m, _ in members) or any(st.has_hole[t] for _, t in extras)
        tag = ("object", st.fresh_key())

        needs: dict[frozenset, set | None] = {}

        def needed(seen: frozenset) -> set | None:
            """The names a completion must still write (None if one cannot be written); callers
            only read it, so it is memoized (asked for every state and move)."""
            if seen not in needs:
                needs[seen] = _needed(seen)
            return needs[seen]

        def _needed(seen: frozenset) -> set | None:
            need, todo = set(required), list(seen | required)
            while todo:
                for dep in rules.get(todo.pop(), ()):
                    if dep not in need:
                        need.add(dep)
                        todo.append(dep)
            need -= seen
            return need if need <= available else None

        def completable(seen: frozenset, extra: bool, count: int) -> bool:
            need = needed(seen)
            if need is None:
                return False
            writes = len(need)  # each write adds one name (or one member)
            if distinct:
                if len(seen) + extra + len(available - seen) + (bool(undeclared) and not extra) < lo:
                    return False
                writes = max(writes, lo - len(seen) - extra)
            elif count < lo:
                if not (available or undeclared):
                    return False
                writes = max(writes, lo - count)
            return hi is None or count + writes <= hi

        def state(seen: frozenset, extra: bool, count: int, written: bool) -> int:
            need = needed(seen) or set()  # (states are made only where completable: not None)
            enough = len(seen) + extra >= lo if distinct else count >= lo
            done = enough and not need
            # Members without AND/NOT are nonempty by their structure (an EMPTY one is never
            # among them): then so is the state, which keeps the object free of AND/NOT too.
            searched = [term_of[n] for n in need if st.has_bool[term_of[n]]]
            return st.lazy(tag + (seen, extra, count, written), lambda: define(seen, extra, count, written),
                           nullable=done, empty=(lambda: any(st.is_empty(t) for t in searched)) if searched else None,
                           holes=holes, min_len=sum(st.min_len[term_of[n]] for n in need))

        def moves(seen: frozenset, extra: bool, count: int) -> dict[tuple, list[int]]:
            """The next (seen, extra) after one more member, with the member terms leading there."""
            out: dict[tuple, list[int]] = {}
            if hi is None or count < hi:
                for name, m, _ in members:
                    out.setdefault((seen | {name} if name in tracked else seen, extra), []).append(m)
                for name, t in extras:
                    out.setdefault((seen | {name}, extra) if name is not None else (seen, extra or distinct),
                                   []).append(t)
            after = min(count + 1, count_to)
            return {(seen2, extra2, after): terms for (seen2, extra2), terms in out.items()
                    if completable(seen2, extra2, after)}

        def define(seen: frozenset, extra: bool, count: int, written: bool) -> int:
            options = [EPS] if st.nullable[state(seen, extra, count, written)] else []
            for nxt, terms in moves(seen, extra, count).items():
                lead = st.seq(self.item_sep, st.alt(*terms)) if written else st.alt(*terms)
                options.append(st.seq(lead, state(*nxt, True)))
            return st.alt(*options)

        def states(limit: int) -> int:
            """How many states the automaton reaches, counted up to just past ``limit`` (no
            terms are built)."""
            found, todo = {(*start, False)}, [start]
            while todo and len(found) <= limit:
                for nxt in moves(*todo.pop()):
                    if (*nxt, True) not in found:
                        found.add((*nxt, True))
                        todo.append(nxt)
            return len(found)

        start = (frozenset(), False, 0)
        if not completable(*start):
            return EMPTY
        term = state(*start, False)
        if holes:  # the grammar expands it into rules, unless it has too many states
            self.automaton_sizes[term] = states(MAX_LAZY_STATES)
        return term

    def dependent_schema(self, base: dict, sub, path: str) -> int:
        """The objects valid for ``base`` and ``sub`` (merged, so that ``sub`` sees base's properties)."""
        merged = merge(base, self._resolved(sub))
        return self.value(sub if merged is None else merged, path)

    def object_members(self, schema: dict, path: str, rules: dict[str, list[str]]) -> tuple[int, int]:
        """The object term, following ``rules`` (dependentRequired), and the term of one member."""
        st = self.st
        props = dict(schema.get("properties", {}))
        required = list(dict.fromkeys(schema.get("required", [])))
        for name in required:
            if name not in props:
                props[name] = True
        members = []
        for name in props:
            m = self.member(schema, name, f"{path}/properties/{escape_pointer(name)}")
            if m == EMPTY:
                if name in required:
                    return EMPTY, EMPTY
                continue
            members.append((name, m, name in required))
        tracked = sorted({n for name, names in rules.items() for n in (name, *names)})
        loose = [n for n in tracked if n not in props]  # only undeclared members can bring them
        extras = [(None, self.extra_member(schema, path, list(props) + loose))]
        if not (self.strict_properties and schema.get("properties") and not self.over):
            extras += [(n, self.member(schema, n, f"{path}/additionalProperties")) for n in loose]
        extras = [(n, t) for n, t in extras if t != EMPTY]
        lo, hi = int(schema.get("minProperties", 0)), schema.get("maxProperties")
        member = st.alt(*[t for _, t in extras], *[m for _, m, _ in members])
        if lo > 1 and not self.over and any(n is None for n, _ in extras):
            self.note("undeclared properties count once towards minProperties (they may repeat a key)")
            if lo > len(members) + len(extras):
                self.unsupported("minProperties", path, "it needs undeclared properties with distinct keys")
                lo = 0
        if self.unordered:
            return self.braces(b"{", self.unordered_body(members, extras, lo, hi, rules), b"}"), member
        if len(props) > 1 or members and extras:
            self.note(DECLARED_ORDER_NOTE)
        tracker = _Tracker(lo, hi, rules)
        if tracker.states() > _TRACKED_STATES and hi is not None:  # count the members apart: they split in one way
            tracker = _Tracker(lo, None, rules)
            body = st.and_(self.member_chain(members, extras, tracker), self.separated(member, 0, int(hi)))
        else:
            body = self.member_chain(members, extras, tracker)
        return self.braces(b"{", body, b"}"), member

    def member(self, schema: dict, name: str, path: str) -> int:
        """``"name": value`` as the schema allows it (EMPTY where propertyNames rejects the name)."""
        names_schema = schema.get("propertyNames", True)
        if names_schema is not True and not self.validator.evolve(schema=names_schema).is_valid(name):
            return EMPTY
        value = self.deferred_value(self.property_schema(schema, name), path)
        return self.st.seq(self.string_literal(name), self.key_sep, value)

    def member_chain(self, members: list[tuple[str, int, bool]], extras: list[tuple[str | None, int]],
                     tracker: _Tracker) -> int:
        """Object bodies: the declared ``members`` in order (the required ones always), ``extras``
        anywhere between them, the names written so far followed by ``tracker``.

        ``node(i, state, written)``: what may follow, with member i next, the tracker's state, and
        whether a separator comes first; ``here`` is the same without skipping member i. Extras
        that leave the state as it is repeat (a star); the others only grow it, so this ends.
        Without tracking this is one star of extras before each member and at the end.
        """
        st = self.st
        nodes: dict[tuple, int] = {}
        heres: dict[tuple, int] = {}

        def node(i: int, state: Any, written: bool) -> int:
            key = (i, state, written)
            if key not in nodes:
                skip = node(i + 1, state, written) if i < len(members) and not members[i][2] else EMPTY
                nodes[key] = st.alt(here(i, state, written), skip)
            return nodes[key]

        def here(i: int, state: Any, written: bool) -> int:
            key = (i, state, written)
            if key in heres:
                return heres[key]

            def lead(t: int) -> int:
                return st.seq(self.item_sep, t) if written else t

            options = [EPS if i == len(members) and tracker.accepts(state) else EMPTY]
            if i < len(members):
                name, m, _ = members[i]
                nxt = tracker.step(state, name, True)
                if nxt is not None:
                    options.append(st.seq(lead(m), node(i + 1, nxt, True)))
            loops = []
            for name, t in extras:
                nxt = tracker.step(state, name, False)
                if nxt == state and written:
                    loops.append(t)
                elif nxt is not None:
                    options.append(st.seq(lead(t), here(i, nxt, True)))
            heres[key] = st.seq(st.star(st.seq(self.item_sep, st.alt(*loops))), st.alt(*options))
            return heres[key]

        return node(0, tracker.start, False)

    def property_schema(self, schema: dict, name: str):
        """The schema a declared property's value must satisfy (properties and matching patterns)."""
        parts = [schema["properties"][name]] if name in schema.get("properties", {}) else []
        for pat, sub in schema.get("patternProperties", {}).items():
            if re.search(pat, name):
                parts.append(sub)
        if not parts:
            parts.append(schema.get("additionalProperties", True))
        out: Any = True
        for p in parts:
            m = merge(out, p)
            out = m if m is not None else {"allOf": [out, p]}
        return out

    def extra_member(self, schema: dict, path: str, declared: list[str]) -> int:
        """``"key": value`` for keys not in ``declared``, as additionalProperties/patternProperties allow."""
        st = self.st
        additional = schema.get("additionalProperties", True)
        patterns = list(schema.get("patternProperties", {}).items())
        if self.strict_properties and schema.get("properties") and not self.over:
            self.note(STRICT_PROPERTIES_NOTE)
            return EMPTY
        key_universe = self.any_string
        if declared:
            key_universe = st.and_(key_universe, st.not_(st.alt(*[self.string_literal(n) for n in declared])))
        names_schema = schema.get("propertyNames", True)
        if names_schema is not True:
            key_universe = st.and_(key_universe, self.value(names_schema, path + "/propertyNames"))
        cells = self.key_cells(key_universe, [(self.key_matching(pat, f"{path}/patternProperties/{escape_pointer(pat)}"), sub)
                                              for pat, sub in patterns], path)
        options = []
        for key, subs in cells:
            merged: Any = True
            for s in subs or [additional]:
                m = merge(merged, s)
                merged = m if m is not None else {"allOf": [merged, s]}
            value = self.value(merged, path + ("/patternProperties" if subs else "/additionalProperties"))
            if value != EMPTY:
                options.append(st.seq(key, self.key_sep, value))
        return st.alt(*options)

    def key_cells(self, universe: int, patterns: list[tuple[int, Any]], path: str) -> list[tuple[int, list]]:
        """The keys of ``universe`` split by which of ``patterns`` (key terms, with their
        subschemas) they match: (keys, subschemas of the patterns they match) for each kind (a
        kind no key is of may be among them, see below).

        A kind is kept as the patterns its keys match (``pos``) and those they do not (``neg``).
        Patterns of schemas mostly exclude one another (``^name:``, ``^url:``): a kind that matches
        one cannot match a pattern disjoint from it, and needs no "does not match" for it either,
        so its term stays small and most splits need no emptiness search. Kinds no key is of are
        dropped only where there are more than ``_UNPRUNED_KINDS``: a member whose key is empty
        accepts nothing, and the automaton skips it as it goes, while proving a kind empty or not
        is a search through an intersection of string languages (a millisecond or more each)."""
        st = self.st
        disjoint_memo: dict[tuple[int, int], bool] = {}

        def disjoint(p: int, q: int) -> bool:
            got = disjoint_memo.get((p, q))
            if got is None:
                got = disjoint_memo[p, q] = disjoint_memo[q, p] = st.is_empty(st.and_(p, q))
            return got

        def term(pos: list[int], neg: list[int]) -> int:
            return st.and_(universe, *pos, *[st.not_(n) for n in neg if not any(disjoint(p, n) for p in pos)])

        kinds: list[tuple[list[int], list[int], list, int]] = [([], [], [], universe)]
        for pk, sub in patterns:
            split = []
            for pos, neg, subs, keys in kinds:
                if any(disjoint(p, pk) for p in pos):  # none of these keys matches pk
                    split.append((pos, neg + [pk], subs, keys))
                    continue
                for kind in ((pos + [pk], neg, subs + [sub]), (pos, neg + [pk], subs)):
                    split.append((*kind, term(kind[0], kind[1])))
            if len(split) > _UNPRUNED_KINDS:  # else an empty kind costs less than its search
                split = [kind for kind in split if not st.is_empty(kind[3])]
            kinds = split
            if len(kinds) > _PATTERN_CELLS:
                self.unsupported("patternProperties", path, f"its patterns split keys into more than {_PATTERN_CELLS} kinds")
                break
        return [(keys, subs) for _, _, subs, keys in kinds]

    def key_matching(self, pattern: str, path: str) -> int:
        st = self.st
        return st.seq(st.literal(b'"'), self.pattern_term(pattern, path), st.literal(b'"'))

    def pattern_term(self, pattern: str, path: str) -> int:
        """String contents matched by ``pattern`` as ``re.search`` does (what the validator runs)."""
        try:
            return self.low.search(pattern, Encoding.JSON)
        except RegexError as exc:
            try:
                re.compile(pattern)
            except re.error as bad:
                raise SchemaError(f"invalid regular expression {pattern!r}: {bad}", path) from None
            self.unsupported("pattern", path, str(exc))
            return self.low.search("", Encoding.JSON)

    def any_value(self) -> int:
        """Every JSON value, nested to any depth: a lazy term that refers to itself inside brackets
        (its automaton's states, the open brackets, are built as a text visits them). Exact, so
        both polarities share it."""
        if self._any is None:
            st = self.st
            scalars = st.alt(st.literal(b"null"), st.literal(b"true"), st.literal(b"false"),
                             self.number({}, "#", integer=False), self.any_string)

            def define() -> int:
                array = self.braces(b"[", self.separated(value), b"]")
                member = st.seq(self.any_string, self.key_sep, value)
                return st.alt(scalars, array, self.braces(b"{", self.separated(member), b"}"))

            value = self._any = st.lazy(("json value", st.fresh_key()), define, nullable=False,
                                        empty=None, min_len=1)
        return self._any


# keywords of a schema worth deferring (constrain.schema_deferral): it has subschemas to build
_CONTAINERS = {"properties", "patternProperties", "items", "prefixItems", "additionalProperties", "$ref", "anyOf",
               "oneOf", "allOf"}
_TRACKED_STATES = 4096  # tracker states of an object (min/maxProperties counts, dependentRequired names)
_DEPENDENT_CASES = 4  # dependentSchemas names split into cases (2**n of them); more are intersected
_UNIQUE_STATES = 4096  # sets of distinct values written, for uniqueItems
_DISTRIBUTED_PAIRS = 16  # anyOf branches made by merging two anyOfs
_UNPRUNED_KINDS = 4  # kinds of undeclared keys kept without checking that some key is of each
_PATTERN_CELLS = 64  # kinds of undeclared keys, by the patternProperties they match


class _Refused(Exception):
    """A construction ran past its budget."""


class _Tracker:
    """What an object's members must add up to: at most ``hi`` members, ``lo`` distinct keys, and
    for each name of ``rules`` written, the names it requires.

    A state is (members written, distinct keys counted, tracked names written). Members counted
    as keys: declared ones (each written once), tracked names (once), and one untracked undeclared
    member: two of those may share a key, and ``json.loads`` keeps one (a sound lower bound; exact
    where ``lo`` <= 1). The member count bounds the keys from above.
    """

    def __init__(self, lo: int, hi: int | None, rules: dict[str, list[str]]):
        self.lo, self.hi = lo, INF if hi is None else int(hi)
        self.rules = rules
        self.names = frozenset(n for name, names in rules.items() for n in (name, *names))
        self.start = (0, 0, frozenset())

    def states(self) -> int:
        return (1 + max(self.hi, 0)) * (1 + self.lo) * 2 ** (len(self.names) + (self.lo > 1))

    def step(self, state: tuple, name: str | None, declared: bool) -> tuple | None:
        """After writing member ``name`` (None: an untracked undeclared one); None past ``hi``."""
        written, keys, seen = state
        if self.hi != INF:
            written += 1
            if written > self.hi:
                return None
        if declared or name not in seen:
            keys = min(keys + 1, self.lo)
            if name in self.names or name is None and self.lo > 1:
                seen = seen | {name}
        return written, keys, seen

    def accepts(self, state: tuple) -> bool:
        _, keys, seen = state
        return keys >= self.lo and all(set(self.rules[n]) <= seen for n in seen if n in self.rules)


def _mask(chars: bytes) -> int:
    m = 0
    for b in chars:
        m |= 1 << b
    return m


def _both_any_of(a: Any, b: Any) -> bool:
    return isinstance(a, dict) and isinstance(b, dict) and "anyOf" in a and "anyOf" in b


def _distributed(a: dict, b: dict) -> dict | None:
    """Two schemas with an anyOf each as one: their other keywords merged, and one anyOf of the
    merged pairs of branches; None where something does not merge or the product is large."""
    if len(a["anyOf"]) * len(b["anyOf"]) > _DISTRIBUTED_PAIRS:
        return None
    base = merge(_without(a, "anyOf"), _without(b, "anyOf"))
    pairs = [merge(x, y) for x in a["anyOf"] for y in b["anyOf"]]
    if not isinstance(base, dict) or "allOf" in base or any(p is None for p in pairs):
        return None
    return {**base, "anyOf": pairs}


_UNEVALUATED = {"unevaluatedProperties", "unevaluatedItems"}


def _forbids(schema: dict, name: str) -> bool:
    """Whether ``schema`` (an object schema) rejects every object with a member ``name``."""
    if schema.get("properties", {}).get(name, True) is False:
        return True
    if name in schema.get("properties", {}) or schema.get("additionalProperties", True) is not False:
        return False
    try:
        return not any(re.search(p, name) for p in schema.get("patternProperties", {}))
    except re.error:
        return False


def _content_key(schema: dict) -> tuple:
    """Equal for schemas with the same keywords and values, down to the subschemas inside a
    keyword's value, which count by identity (merging copies a schema, and the maps and lists
    that change, but keeps the subschemas). Types count: 1, 1.0 and true are other constants."""
    return tuple((k, _shallow(v)) for k, v in schema.items())


def _shallow(v: Any) -> Any:
    if isinstance(v, dict):
        return ("{",) + tuple((k, _identity(x)) for k, x in v.items())
    if isinstance(v, list):
        return ("[",) + tuple(_identity(x) for x in v)
    return _identity(v)


def _identity(v: Any) -> Any:
    return (v.__class__, v) if isinstance(v, (str, int, float)) or v is None else id(v)


def _without(schema: dict, *keys: str) -> dict:
    """``schema`` less ``keys`` (itself where it has none of them: callers never modify it)."""
    for k in keys:  # (a loop, not any(): this runs for every subschema compiled)
        if k in schema:
            return {k: v for k, v in schema.items() if k not in keys}
    return schema


def _type_set(schema: dict) -> set[str]:
    """The JSON types a schema admits, as far as ``type``, ``const`` and ``enum`` say."""
    types = set(type_list(schema))
    if "number" in types:
        types.add("integer")
    values = _values(schema)
    if values is not None:
        types &= {json_type(v) for v in values} | ({"number"} if any(json_type(v) == "integer" for v in values) else set())
    return types


def _values(schema) -> list | None:
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        vals = [schema["const"]]
        if "enum" in schema:
            vals = [v for v in vals if any(equal(v, e) for e in schema["enum"])]
        return vals
    if "enum" in schema:
        return list(schema["enum"])
    return None

