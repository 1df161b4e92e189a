"""``not``, ``oneOf``, ``if``/``then``/``else`` and objects in any order, against the validator.

The compiler builds a subset of the valid texts (what it generates) and, for the operands of
complements, a superset; ``negate`` turns common negations into positive schemas. Here random
schemas mixing these keywords are compiled in the exact-language options (members in any order,
undeclared members allowed, ``\\uXXXX`` escapes accepted) and random instances, serialized with
``json.dumps``, are run through the automaton byte by byte: the verdict must equal
``Draft202012Validator``'s for every instance (no exponents in the instances, so no documented
narrowing applies unless the compiler records one).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

import constrain
from constrain.automaton import DEAD, LazyDFA
from constrain.json_schema import compile_schema_term
from constrain.schema_negate import negate
from constrain.terms import TermStore

EXACT = dict(property_order="any", strict_properties=False, unicode_escapes=True)


def valid(schema, instance) -> bool:
    return Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(instance)


def compiled(schema) -> LazyDFA:
    return compiled_with_warnings(schema)[0]


def compiled_with_warnings(schema) -> tuple[LazyDFA, list[str]]:
    store = TermStore()
    term, warnings, _ = compile_schema_term(schema, store, **EXACT)
    return LazyDFA(store, term), warnings


def accepts(dfa: LazyDFA, instance) -> bool:
    state = dfa.step(dfa.start, json.dumps(instance).encode())
    return state != DEAD and bool(dfa.accepting[state])


# -- strategies -----------------------------------------------------------------------------------
names = st.sampled_from(["a", "b", "c"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, -1.25, 2.0]),
                    st.sampled_from(["", "x", "ab", "a"]))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=2), st.dictionaries(names, c, max_size=3)),
                      max_leaves=5)
leaves = st.one_of(
    st.sampled_from([{"type": t} for t in ("null", "boolean", "integer", "number", "string", "array", "object")]),
    st.sampled_from([{"type": ["string", "null"]}, {"minimum": 1}, {"maxLength": 1}, {"minItems": 1},
                     {"minProperties": 2}, {"maxProperties": 1}, True, False, {}]),
    st.builds(lambda vs: {"enum": vs}, st.lists(scalars, min_size=1, max_size=3)),
    st.builds(lambda v: {"const": v}, values),
    st.builds(lambda r: {"required": r}, st.lists(names, min_size=1, max_size=2, unique=True)),
)


@st.composite
def objects(draw, children):
    props = draw(st.dictionaries(names, children, max_size=2))
    s: dict = {"properties": props}
    if draw(st.booleans()):
        s["type"] = "object"
    if draw(st.booleans()):
        s["required"] = draw(st.lists(names, unique=True, max_size=2))
    if draw(st.integers(0, 3)) == 0:
        s["additionalProperties"] = False
    if draw(st.integers(0, 3)) == 0:
        s["minProperties"] = draw(st.integers(1, 2))
    return s


def combinators(children):
    branches = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        objects(children),
        st.builds(lambda s: {"not": s}, children),
        st.builds(lambda bs: {"oneOf": bs}, branches),
        st.builds(lambda bs: {"anyOf": bs}, branches),
        st.builds(lambda bs: {"allOf": bs}, branches),
        st.builds(lambda c, t, e: {"if": c, "then": t, "else": e}, children, children, children),
        st.builds(lambda c, t: {"if": c, "then": t}, children, children),
        st.builds(lambda s: {"type": "array", "items": s}, children),
    )


schemas = st.recursive(leaves, combinators, max_leaves=5)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- tests ----------------------------------------------------------------------------------------
@settings(max_examples=80, **SETTINGS)
@given(schema=schemas, instances=st.lists(values, min_size=4, max_size=8))
def test_verdict_equals_validator(schema, instances):
    """Never accepts an invalid instance; accepts every valid one unless the compiler recorded a
    narrowing that may apply (e.g. undeclared members counted once towards minProperties)."""
    try:
        dfa, warnings = compiled_with_warnings(schema)
    except constrain.UnsupportedSchemaError:
        return  # refusing is allowed (minProperties over undeclared keys); the error tests cover it
    exact = not warnings
    for x in instances:
        verdict, truth = accepts(dfa, x), valid(schema, x)
        assert verdict == truth if exact else not verdict or truth, (schema, x, warnings)


@settings(max_examples=300, **SETTINGS)
@given(schema=schemas, instances=st.lists(values, min_size=4, max_size=8))
def test_negate_is_exact(schema, instances):
    inverse = negate(schema)
    if inverse is None:
        return
    for x in instances:
        assert valid(inverse, x) == (not valid(schema, x)), (schema, inverse, x)


@pytest.mark.parametrize("schema,inverse", [
    (True, False),
    ({"not": {"type": "string"}}, {"type": "string"}),
    ({"type": "integer"}, None),  # "not an integer" includes 1.5: no type list says it
    ({"type": "number"}, {"type": ["array", "boolean", "null", "object", "string"]}),
    ({"required": ["a"]}, {"type": "object", "anyOf": [{"properties": {"a": False}}]}),
    ({"type": "object", "properties": {"a": {"const": 1}}},
     {"anyOf": [{"required": ["a"], "properties": {"a": {"not": {"const": 1}}}}]}),
    ({"anyOf": [{"required": ["a"]}, {"type": "null"}]},
     {"allOf": [{"type": "object", "anyOf": [{"properties": {"a": False}}]},
                {"type": ["array", "boolean", "number", "object", "string"]}]}),
    ({"minimum": 3}, None),
])
def test_negate_forms(schema, inverse):
    assert negate(schema) == inverse


@pytest.mark.parametrize("schema,good,bad", [
    # a complement of a superset: integers written with a fraction are still integers
    ({"not": {"type": "integer"}}, [1.5, "1", None, [1]], [1, 2.0, -3]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [1, 0, 2.5, "x"], [2, 3.0]),
    ({"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 1}], [{"a": 1, "b": 2}, {}, 3]),
    ({"if": {"properties": {"k": {"const": "n"}}, "required": ["k"]},
      "then": {"properties": {"v": {"type": "number"}}},
      "else": {"properties": {"v": {"type": "string"}}}},
     [{"k": "n", "v": 1}, {"k": "s", "v": "x"}, {"v": "x"}], [{"k": "n", "v": "x"}, {"v": 1}]),
    ({"not": {"not": {"maxLength": 1}}}, ["a", 12], ["ab"]),
    ({"properties": {"a": {"not": {"enum": [1, "x"]}}}}, [{"a": 2}, {"a": "y"}, {}], [{"a": 1}, {"a": 1.0}, {"a": "x"}]),
])
def test_hand_cases(schema, good, bad):
    dfa = compiled(schema)
    for x in good:
        assert valid(schema, x) and accepts(dfa, x), x
    for x in bad:
        assert not valid(schema, x) and not accepts(dfa, x), x


def test_any_order_accepts_every_order_and_counts_keys():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
              "required": ["a", "b"], "minProperties": 3, "dependentRequired": {"c": ["d"]}}
    dfa = compiled(schema)
    assert accepts(dfa, {"b": "x", "z": None, "a": 1})
    assert accepts(dfa, {"z": 0, "a": 1, "b": "x"})
    assert not accepts(dfa, {"b": "x", "a": 1})            # two keys, minProperties 3
    assert not accepts(dfa, {"b": "x", "a": 1, "c": 0})    # c requires d
    assert accepts(dfa, {"d": 0, "b": "x", "a": 1, "c": 0})
    # declaration order (the default) still refuses other orders: a narrowing it records
    store = TermStore()
    term, warnings, _ = compile_schema_term(schema, store, strict_properties=False)
    dfa = LazyDFA(store, term)
    assert not accepts(dfa, {"b": "x", "a": 1, "z": 0})
    assert any("declaration order" in w for w in warnings)


def test_property_order_is_checked():
    with pytest.raises(ValueError, match="property_order"):
        compile_schema_term({}, TermStore(), property_order="sorted")


def test_compiler_option_reaches_the_matcher():
    from tests.test_json_schema import get_tok, matcher_verdict
    tok = get_tok("smollm2")
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]}
    grammar = tok.compiler.compile_json_schema(schema, property_order="any")
    assert matcher_verdict(tok, grammar, tok.canonical('{"b": 1, "a": 2}'))
    assert not matcher_verdict(tok, tok.compiler.compile_json_schema(schema), tok.canonical('{"b": 1, "a": 2}'))
    assert not matcher_verdict(tok, grammar, tok.canonical('{"b": 1}'))


def test_grammar_of_prunes_parts_with_an_empty_language():
    """A hole-free part whose language is empty (an intersection with nothing in it) derives
    nothing: the rules using it are dropped instead of becoming a lexeme that matches nothing,
    and a grammar left without a start rule gives up cleanly (the compiler then unrolls)."""
    from constrain.schema_grammar import NotContextFree, grammar_of

    st = TermStore()
    a = st.literal(b"a")
    dead = st.and_(a, st.not_(a))
    body = st.alt(st.literal(b"x"), st.seq(st.literal(b"["), st.hole("t"), dead))
    grammar = grammar_of(st, st.hole("t"), {"t": body}).grammar
    assert [lex.term for lex in grammar.lexemes.values()] == [st.literal(b"x")]
    with pytest.raises(NotContextFree):
        grammar_of(st, st.hole("t"), {"t": st.seq(st.literal(b"["), st.hole("t"), dead)})


def test_lexeme_pruning_searches_little_and_keeps_what_it_cannot_decide():
    """A lexeme's emptiness search only prunes: it stops at LEXEME_SEARCH_BUDGET, inside a compile
    or not, and the lexeme it could not decide stays (matching nothing, as a search past any budget
    leaves it); the store's own budget is back afterwards."""
    from constrain import schema_grammar, terms
    from constrain.schema_grammar import grammar_of

    st = TermStore()
    x = st.seq(st.rep(st.byte_set(0b11), 0), st.byte_set(0b01), st.rep(st.byte_set(0b11), 10, 10))
    hard = st.and_(x, st.not_(x))  # empty, but only a search through its whole product shows it
    body = st.alt(st.literal(b"x"), st.seq(st.literal(b"["), st.hole("t"), hard))
    before = len(st._deriv)
    lexemes = grammar_of(st, st.hole("t"), {"t": body}).grammar.lexemes.values()
    assert len(st._deriv) - before <= schema_grammar.LEXEME_SEARCH_BUDGET < terms.COMPILE_SEARCH_BUDGET
    assert sorted(lex.term for lex in lexemes) == sorted([st.literal(b"x"), st.literal(b"["), hard])
    assert st.search_budget == terms.SEARCH_BUDGET
    fresh = TermStore()
    fresh.search_budget = 10**6
    x = fresh.seq(fresh.rep(fresh.byte_set(0b11), 0), fresh.byte_set(0b01), fresh.rep(fresh.byte_set(0b11), 10, 10))
    assert fresh.is_empty(fresh.and_(x, fresh.not_(x)))  # what it gave up on


def test_objects_in_any_order_are_free_of_intersections_where_their_members_are():
    """A state of an object written in any order is empty exactly when a member it still needs
    is: where those members have no AND/NOT (nonempty by their structure), neither does the
    state, so the object needs no emptiness search (and may be built when first reached)."""
    def term_of(schema) -> tuple[TermStore, int]:
        store = TermStore()
        return store, compile_schema_term(schema, store, **EXACT)[0]

    plain = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
             "required": ["a"], "dependentRequired": {"b": ["a"]}}
    store, term = term_of(plain)
    assert not store.has_bool[term] and not store.is_empty(term)
    for longest in (3, 1):  # a needed member that is an intersection: searched, nonempty or not
        hard = {**plain, "properties": {**plain["properties"],
                                        "a": {"type": "string", "pattern": "^xy", "maxLength": longest}}}
        store, term = term_of(hard)
        assert store.has_bool[term] and store.is_empty(term) == (longest == 1)
        dfa = LazyDFA(store, term)
        for instance in [{"a": "xy"}, {"a": "xyz"}, {"a": "x"}, {"b": 1}, {"a": "xy", "b": 1}, {}]:
            assert accepts(dfa, instance) == valid(hard, instance), instance


def test_prelude_copy_builds_the_same_language():
    """A new store starts as a copy of the prelude (base terms built once per options); a store
    in use builds them afresh: both compile a schema to the same language."""
    schema = {"type": "object", "properties": {"a": {"type": "number", "minimum": 1.5}, "b": {"not": {"type": "string"}}},
              "required": ["a"], "additionalProperties": {"type": "array", "items": {"type": "string"}}}
    used = TermStore()
    used.literal(b"something else first")
    assert not used.is_new()
    dfas = []
    for store in (TermStore(), used):
        term, _, _ = compile_schema_term(schema, store, **EXACT)
        dfas.append(LazyDFA(store, term))
    for x in [{"a": 2}, {"a": 1}, {"a": 1.5, "b": 3}, {"a": 9, "b": "s"}, {"a": 2, "c": ["x"]}, {"a": 2, "c": [1]}, {}]:
        assert {accepts(dfa, x) for dfa in dfas} == {Draft202012Validator(schema).is_valid(x)}, x
    with pytest.raises(ValueError):
        used.adopt(TermStore())


KEY_PATTERNS = ["^a", "^ab", "b$", "^c", "x", "^[ab]$", "^name:(en|nl)$", "^url:"]
KEYS = ["a", "ab", "abc", "b", "cb", "c", "x", "ax", "ba", "", "name:en", "name:de", "url:x", "urn"]


@settings(max_examples=120, **SETTINGS)
@given(patterns=st.dictionaries(st.sampled_from(KEY_PATTERNS), leaves, min_size=1, max_size=5),
       declared=st.dictionaries(st.sampled_from(["a", "ab", "url:x", "q"]), leaves, max_size=2),
       additional=st.sampled_from([None, False, {"type": "integer"}, {"type": "string"}]),
       instances=st.lists(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3), min_size=4, max_size=8))
def test_pattern_properties_split_keys_by_the_patterns_they_match(patterns, declared, additional, instances):
    """Undeclared keys take the allOf of the subschemas of every pattern they match, or
    additionalProperties where they match none: overlapping patterns (``^a``, ``^ab``, ``b$``)
    and mutually exclusive ones (``^name:``, ``^url:``) alike."""
    schema: dict = {"type": "object", "patternProperties": patterns, "properties": declared}
    if additional is not None:
        schema["additionalProperties"] = additional
    try:
        dfa, warnings = compiled_with_warnings(schema)
    except constrain.UnsupportedSchemaError:
        return
    for x in instances:
        verdict, truth = accepts(dfa, x), valid(schema, x)
        assert verdict == truth if not warnings else not verdict or truth, (schema, x, warnings)
