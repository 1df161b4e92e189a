"""Numeric bounds over decimal text agree with Python's comparison of the value json.loads gives."""

import itertools
import json
import random

import pytest

from constrain.automaton import DEAD, LazyDFA
from constrain.numbers import NumberTerms, bound_decimal
from constrain.terms import TermStore


def _texts(seed: int = 0, n: int = 400) -> set[str]:
    rng = random.Random(seed)
    out = {"0", "-0", "0.0", "-0.0", "5", "5.0", "5.5", "-5", "-5.5", "10", "9.99", "100", "1e5", "01",
           "1.", ".5", "0.1", "0.10", "0.09999999999999999999", "0.10000000000000000001", "-0.1"}
    for _ in range(n):
        ip = rng.choice(["0"] + [str(rng.randint(1, 10 ** rng.randint(1, 4))) for _ in range(3)])
        fp = rng.choice(["", "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 4)))])
        out.add(rng.choice(["", "-"]) + ip + fp)
    return out


def _significant_digits(text: str) -> int:
    return len(text.lstrip("-").replace(".", "").lstrip("0"))


BOUNDS = [None, 0, 5, -5, 5.5, -5.5, 0.1, 10, 99.99, 100]


@pytest.mark.parametrize("lo,hi", list(itertools.product(BOUNDS, BOUNDS)))
def test_decimal_range_matches_python_comparison(lo, hi):
    texts = _texts()
    for lo_strict, hi_strict in itertools.product([False, True], repeat=2):
        store = TermStore()
        terms = NumberTerms(store)
        low = None if lo is None else bound_decimal(lo, lo_strict, lower=True)
        high = None if hi is None else bound_decimal(hi, hi_strict, lower=False)
        dfa = LazyDFA(store, terms.decimal_range(low, lo_strict, high, hi_strict))
        for text in texts:
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            expected = value is not None and "e" not in text
            if expected and lo is not None:
                expected = value > lo if lo_strict else value >= lo
            if expected and hi is not None:
                expected = value < hi if hi_strict else value <= hi
            state = dfa.step(dfa.start, text.encode())
            got = state != DEAD and bool(dfa.accepting[state])
            if got:  # sound: nothing outside the bounds, ever
                assert expected, (lo, lo_strict, hi, hi_strict, text)
            elif expected:  # complete, except for text finer than a float can tell from the bound
                assert _significant_digits(text) > 15, (lo, lo_strict, hi, hi_strict, text)


def test_strict_float_bound_is_sound_at_the_rounding_edge():
    # 0.10000000000000000001 parses to the float 0.1, which is not > 0.1
    store = TermStore()
    terms = NumberTerms(store)
    dfa = LazyDFA(store, terms.decimal_range(bound_decimal(0.1, True, lower=True), True, None, False))
    state = dfa.step(dfa.start, b"0.10000000000000000001")
    assert state == DEAD or not dfa.accepting[state]
