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
