"""TermStore constructors checked against their definitions."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from constrain.terms import EMPTY, TermStore

ALPHABET = range(4)  # sequences over four bytes: every string up to length 3 is enumerated
masks = st.integers(min_value=1, max_value=(1 << len(ALPHABET)) - 1)
sequences = st.lists(st.lists(masks, min_size=1, max_size=3).map(tuple), min_size=1, max_size=8)


def accepts(store: TermStore, term: int, text: tuple[int, ...]) -> bool:
    for b in text:
        term = store.deriv(term, b)
        if term == EMPTY:
            return False
    return store.nullable[term]


@settings(max_examples=200, deadline=None)
@given(seqs=sequences)
def test_byte_sequences_is_the_union_of_its_sequences(seqs):
    store = TermStore()
    term = store.byte_sequences(seqs)
    for n in range(4):
        for text in itertools.product(ALPHABET, repeat=n):
            expected = any(len(s) == n and all(m >> b & 1 for m, b in zip(s, text)) for s in seqs)
            assert accepts(store, term, text) == expected, (seqs, text)


@settings(max_examples=200, deadline=None)
@given(seqs=sequences)
def test_byte_sequences_is_deterministic(seqs):
    """Every derivative, at every depth, is a term the constructor built: the trie's branches
    split the bytes, so deriving picks one of them instead of building a union of tails."""
    store = TermStore()
    frontier = [store.byte_sequences(seqs)]
    built = len(store.nodes)
    while frontier:
        term = frontier.pop()
        for b in range(256):
            d = store.deriv(term, b)
            if d != EMPTY:
                frontier.append(d)
    assert len(store.nodes) == built


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=6), other=st.binary(max_size=7))
def test_literal_is_its_bytes_and_travels_between_stores(data, other):
    store = TermStore()
    term = store.literal(data)
    assert accepts(store, term, tuple(data)) and accepts(store, term, tuple(other)) == (other == data)
    assert len(store.nodes) <= 3 + len(data)  # one node, and one per derivative taken
    copy = TermStore()
    moved = copy.import_term(store.export_term(term))
    assert moved == copy.literal(data) and accepts(copy, moved, tuple(data))


# -- emptiness -------------------------------------------------------------------------------------
def _closure_is_empty(store: TermStore, term: int) -> bool:
    """The oracle: every derivative reachable from ``term``, breadth first, none nullable."""
    seen, frontier = {term}, [term]
    while frontier:
        u = frontier.pop()
        if store.nullable[u]:
            return False
        for b in ALPHABET:
            d = store.deriv(u, b)
            if d not in seen:
                seen.add(d)
                frontier.append(d)
    return True


@st.composite
def boolean_terms(draw):
    """Terms over four bytes built from sequences with AND, NOT, ALT, CAT and counted repetition."""
    store = TermStore()

    def leaf():
        return store.byte_sequences(draw(sequences))

    def build(depth: int) -> int:
        if depth == 0:
            return leaf()
        op = draw(st.sampled_from(["and", "not", "alt", "cat", "rep", "leaf"]))
        if op == "leaf":
            return leaf()
        if op == "not":
            return store.not_(build(depth - 1))
        if op == "rep":
            lo = draw(st.integers(0, 3))
            return store.rep(build(depth - 1), lo, lo + draw(st.integers(0, 3)))
        a, b = build(depth - 1), build(depth - 1)
        return {"and": store.and_, "alt": store.alt, "cat": store.cat}[op](a, b)

    return store, build(3)


@settings(max_examples=300, deadline=None)
@given(case=boolean_terms())
def test_emptiness_search_agrees_with_the_whole_closure(case):
    """The witness search (best first, successors one class at a time) proves emptiness exactly
    when no derivative is nullable, whatever order it visits them in."""
    store, term = case
    store.search_budget = 10**6
    assert store.is_empty(term) == _closure_is_empty(store, term)


def test_an_intersection_with_every_text_is_the_other_part():
    store = TermStore()
    every, word = store.not_(EMPTY), store.literal(b"ab")
    assert store.and_(word, every) == word and not store.has_bool[store.and_(every, word)]
    assert store.and_(every, every) == every
    both = store.and_(word, store.literal(b"a"), every)  # (empty, but an intersection to search)
    assert store.has_bool[both] and store.is_empty(both)


def test_witness_search_does_not_walk_optional_whitespace_first():
    """An object that must have a member, as an AND: the bound ``min_len`` says 2 (``{}``) but
    the NOT rules that out. Steps into the optional whitespace keep the bound where it was; had
    they the same priority as progress, the search would walk every whitespace run to its
    maximum length (24) before it reads a key (over 300 derivatives here)."""
    store = TermStore()
    ws = store.rep(store.byte_set(sum(1 << b for b in b" \t\n\r")), 0, 24)
    key = store.seq(store.literal(b'"'), store.rep(store.byte_range(ord("a"), ord("z")), 1), store.literal(b'"'))
    obj = store.seq(store.literal(b"{"), ws, store.alt(store.literal(b"}"), store.seq(key, ws, store.literal(b"}"))))
    term = store.and_(obj, store.not_(store.seq(store.literal(b"{"), ws, store.literal(b"}"))))
    before = len(store._deriv)
    assert store.is_empty(term) is False
    assert len(store._deriv) - before < 100


def empty_only_by_its_product(store: TermStore, width: int) -> int:
    """x & ~x, for x = "a 0b01 byte ``width`` bytes from the end": empty, but only the whole product
    proves it (~3,100 derivatives at width 8, ~12,300 at 10)."""
    x = store.seq(store.rep(store.byte_set(0b11), 0), store.byte_set(0b01), store.rep(store.byte_set(0b11), width, width))
    return store.and_(x, store.not_(x))


def test_compiling_searches_within_the_compile_budget_and_restores_the_full_one():
    """While compiling, an emptiness search gives up at COMPILE_SEARCH_BUDGET (the part is kept,
    not proven empty); afterwards, and after a failed compile, the store has its full budget."""
    from constrain import terms

    def hard(store: TermStore) -> int:
        return empty_only_by_its_product(store, 10)

    store = TermStore()
    with store.compiling():
        assert store.search_budget == terms.COMPILE_SEARCH_BUDGET
        assert store.is_empty(hard(store)) is False  # gave up: not proven empty, the part is kept
    assert store.search_budget == terms.SEARCH_BUDGET
    fresh = TermStore()
    fresh.search_budget = 10**6
    assert fresh.is_empty(hard(fresh)) is True  # what the compile budget gave up on
    try:
        with store.compiling():
            raise ValueError
    except ValueError:
        pass
    assert store.search_budget == terms.SEARCH_BUDGET
    copy = TermStore()
    with copy.compiling():
        copy.adopt(TermStore())  # a prelude copied in keeps this store's setting
        assert copy.search_budget == terms.COMPILE_SEARCH_BUDGET


def test_a_search_given_up_while_compiling_is_searched_again_after_it():
    """Giving up inside ``compiling`` is provisional: not searched again in the compile (and
    nothing that rests on it is remembered as decided), then searched with the full budget."""

    store = TermStore()
    hard = empty_only_by_its_product(store, 8)  # more than the compile budget, less than the full one
    around = store.seq(store.literal(b"["), hard)
    with store.compiling():
        assert store.is_empty(around) is False  # gave up
        searched = len(store._deriv)
        assert store.is_empty(hard) is False and store.is_empty(around) is False
        assert len(store._deriv) == searched  # not again in this compile
    assert store.is_empty(around) is True  # with the full budget, after it
    assert store._empty[hard] is True


def test_a_start_state_the_compile_gave_up_on_is_decided_by_generation():
    """No array of at most two distinct booleans contains "a": proving the language empty takes
    more than the compile budget. The start state stays (the compile does not spend generation's
    budget on it), but the first mask searches the states after it with the full budget, and
    allows nothing: generation cannot write ``[`` and then find nothing allowed."""
    import constrain
    from constrain import terms
    from constrain.vocab import Vocabulary

    compiler = constrain.Compiler(Vocabulary([bytes([i]) for i in range(256)] + [None], eos_token_ids=[256]))
    grammar = compiler.compile_json_schema({"type": "array", "items": {"type": "boolean"}, "uniqueItems": True,
                                            "contains": {"enum": ["a"]}, "maxItems": 2})
    assert grammar.store.search_budget == terms.SEARCH_BUDGET
    assert grammar.matcher().allowed_token_ids().size == 0


def test_stores_copied_from_one_prelude_do_not_share_what_they_gave_up_on():
    def hard(store: TermStore) -> int:
        return empty_only_by_its_product(store, 8)

    prelude = TermStore()
    prelude.literal(b"prelude")
    first, second = TermStore(), TermStore()
    first.adopt(prelude)
    second.adopt(prelude)
    with first.compiling(100):
        assert first.is_empty(hard(first)) is False  # given up on, in this store only
    with second.compiling(10**6):
        assert hard(second) == hard(first)  # the same term id in the other store
        assert second.is_empty(hard(second)) is True
