"""Numeric bounds and multiples over decimal text agree with what the validator computes on the value json.loads gives."""

import functools
import itertools
import json
import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from constrain.automaton import DEAD, LazyDFA
from constrain.numbers import SIGNIFICANT_DIGITS, MultipleRefused, NumberTerms, bound_decimal, multiple_step
from constrain.terms import EMPTY, LAZY_K, TermStore


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


_DIGITS = st.text("0123456789", min_size=1, max_size=9)


@settings(max_examples=150, deadline=None)
@given(int_part=_DIGITS, frac_part=st.text("0123456789", max_size=9), strict=st.booleans(), seed=st.integers(0, 10**6))
def test_unsigned_bounds_compare_decimal_text_exactly(int_part, frac_part, strict, seed):
    """``unsigned_ge``/``unsigned_le`` against exact decimal comparison, on texts that share a
    prefix with the bound and then differ (where a digit-by-digit construction can go wrong)."""
    bound = Decimal(f"{int_part}.{frac_part or '0'}")
    store = TermStore()
    terms = NumberTerms(store)
    ge = LazyDFA(store, store.and_(terms.unsigned(), terms.unsigned_ge(bound, strict)))
    le = LazyDFA(store, store.and_(terms.unsigned(), terms.unsigned_le(bound, strict)))
    rng = random.Random(seed)
    canonical = format(bound, "f")
    texts = {canonical, canonical.rstrip("0").rstrip("."), "0", "0.0"}
    for _ in range(60):
        cut = rng.randint(0, len(canonical))
        tail = "".join(rng.choice("0123456789.") for _ in range(rng.randint(0, 4)))
        texts.add(canonical[:cut] + tail)
    for text in texts:
        if text.lstrip("0") != text and not text.startswith("0.") and text != "0" or text.count(".") > 1 \
                or text.endswith(".") or text.startswith(".") or not text:
            continue  # not a JSON number's unsigned text
        value = Decimal(text)
        for dfa, expected in ((ge, value > bound if strict else value >= bound),
                              (le, value < bound if strict else value <= bound)):
            state = dfa.step(dfa.start, text.encode())
            assert (state != DEAD and bool(dfa.accepting[state])) == expected, (bound, strict, text)


def test_strict_float_bound_is_sound_at_the_rounding_edge():
    # 0.10000000000000000001 parses to the float 0.1, which is not > 0.1
    store = TermStore()
    terms = NumberTerms(store)
    dfa = LazyDFA(store, terms.decimal_range(bound_decimal(0.1, True, lower=True), True, None, False))
    state = dfa.step(dfa.start, b"0.10000000000000000001")
    assert state == DEAD or not dfa.accepting[state]


# --------------------------------------------------------------------------------------------------
# multipleOf: the multiples' language against the validator's float arithmetic
# --------------------------------------------------------------------------------------------------


DIVISORS = [2, 3, 7, 11, 13, 77, 100, 429, 1.0, 1.5, 0.5, 0.25, 2.5, 2.125, 6.75, 13.5, 10.0, 1e-8, 0.01, 0.1, 0.3,
            0.0001, 0.123456789, 1e-05, 1e20]


@functools.lru_cache(maxsize=None)
def _multiples_dfa(divisor, integer: bool):
    store = TermStore()
    terms = NumberTerms(store)
    try:
        step = multiple_step(divisor, integer)
        term = store.seq(store.opt(store.literal(b"-")), terms.multiples(step))
    except MultipleRefused:
        return None
    return LazyDFA(store, term), step


def _in_surface(text: str, step) -> bool:
    """Plain decimal, at most 15 significant digits, and the step's integer digits."""
    digits = text.lstrip("-")
    if "e" in digits or "E" in digits:
        return False
    whole = digits.split(".")[0]
    return len(whole.lstrip("0")) <= step.int_digits and _significant_digits(text) <= SIGNIFICANT_DIGITS


def _check_multiple(divisor, integer: bool, text: str) -> None:
    got_dfa = _multiples_dfa(divisor, integer)
    if got_dfa is None:  # refused: a non-exact float step on numbers, or one too far from its decimal
        exact = isinstance(divisor, int) or Fraction(Decimal(repr(divisor))) == Fraction(divisor)
        assert not exact and (not integer or divisor == 1e-05), (divisor, integer)
        return
    dfa, step = got_dfa
    value = json.loads(text)
    if integer and not (isinstance(value, int) or value.is_integer()):
        return  # the integer type rejects it anyway
    valid = Draft202012Validator({"multipleOf": divisor}).is_valid(value)
    state = dfa.step(dfa.start, text.encode())
    got = state != DEAD and bool(dfa.accepting[state])
    if got:
        assert valid, (divisor, integer, text)
    elif valid:
        assert not _in_surface(text, step), (divisor, integer, text)


def _text(value: Decimal, zeros: int) -> str:
    text = format(value, "f")
    if zeros:
        text += ("" if "." in text else ".") + "0" * zeros
    return text


@settings(max_examples=600, deadline=None)
@given(divisor=st.sampled_from(DIVISORS), integer=st.booleans(), n=st.integers(-10**17, 10**17),
       shift=st.sampled_from([Decimal(0), Decimal(0), Decimal(1), Decimal("0.001"), Decimal("1e-12"),
                              Decimal("0.5"), Decimal("1e-17")]),
       small=st.booleans(), zeros=st.integers(0, 3))
def test_multiple_of_matches_validator(divisor, integer, n, shift, small, zeros):
    step = Fraction(divisor) if isinstance(divisor, int) else Fraction(Decimal(repr(divisor)))
    if small:
        n %= 10**4
    value = Decimal(n * step.numerator) / Decimal(step.denominator) + shift
    _check_multiple(divisor, integer, _text(value, zeros))


@pytest.mark.parametrize("divisor", DIVISORS)
def test_multiple_of_small_values(divisor):
    """Every text with up to 2 decimals in [-30, 30], and the suite's edge cases."""
    texts = {"0", "-0", "0.0", "-0.0", "1e+308", "12391239123", "4.5000000000000001", "0.0075", "0.00751"}
    texts |= {_text(Decimal(k) / 100, z) for k in range(-3000, 3001, 7) for z in (0, 1)}
    for integer in (False, True):
        for text in sorted(texts):
            _check_multiple(divisor, integer, text)


@pytest.mark.parametrize("divisor,integer,accepted,rejected", [
    (3, True, ["0", "-0", "3", "-3", "9.0", "999999999999999"], ["4", "10.0", "1.5"]),
    (1.5, False, ["0", "4.5", "-4.5", "1.50", "3.0"], ["35", "4.4", "1.5e0"]),
    (0.25, False, ["0.25", "-0.75", "100", "0.2500"], ["0.2", "0.125"]),
    (1e-8, True, ["12391239123", "1", "0", "1.0"], ["1e+308"]),
    (0.01, True, ["7", "123456789012345"], ["0.07"]),
])
def test_multiple_of_examples(divisor, integer, accepted, rejected):
    dfa, _ = _multiples_dfa(divisor, integer)
    for text in accepted + rejected:
        state = dfa.step(dfa.start, text.encode())
        assert (state != DEAD and bool(dfa.accepting[state])) == (text in accepted), text


def test_multiple_of_refusals():
    with pytest.raises(MultipleRefused):
        multiple_step(0.01, integer=False)  # 0.07 / 0.01 == 7.000000000000001
    with pytest.raises(MultipleRefused):
        NumberTerms(TermStore()).multiples(multiple_step(2**-20, integer=False))  # 20 decimals
    with pytest.raises(MultipleRefused):
        NumberTerms(TermStore()).multiples(multiple_step(999983, integer=False), budget=1000)


@pytest.mark.parametrize("divisor,integer", [(7, True), (13.5, False), (0.25, False), (2.125, False), (77, True),
                                              (6.75, False), (1e-8, True)])
def test_multiples_are_built_as_reached_and_every_state_built_completes(divisor, integer):
    store = TermStore()
    step = multiple_step(divisor, integer)
    start = NumberTerms(store).multiples(step)

    def states() -> list[int]:
        return [t for t, node in enumerate(store.nodes) if node[0] == LAZY_K and node[1][0][0] == "multiples"]

    def built() -> list[int]:
        return [t for t in states() if isinstance(store._definitions[t], int)]

    dfa = LazyDFA(store, start)
    dfa.step(dfa.start, b"1234")
    assert 0 < len(built()) <= 8  # the states of "1", "12", "123", "1234" and their fractions, not all
    # build every state a text reaches (digits and the point, as deep as the digits allow)
    frontier, seen = [start], {start}
    while frontier:
        t = frontier.pop()
        for b in b"0123456789.":
            d = store.deriv(t, b)
            if d != EMPTY and d not in seen:
                seen.add(d)
                frontier.append(d)
    shortest = {}  # each state's shortest completion, by a breadth-first search of its derivatives
    for t in states():
        level, depth, found = {t}, 0, None
        while level and found is None:
            if any(store.nullable[u] for u in level):
                found = depth
            level = {d for u in level for b in b"0123456789." if (d := store.deriv(u, b)) != EMPTY}
            depth += 1
        shortest[t] = found
    assert len(shortest) >= min(step.modulus, 7) and all(n is not None for n in shortest.values())
    for t, n in shortest.items():  # min_len is a lower bound, 0 exactly where a text may end
        assert store.min_len[t] <= n and (store.min_len[t] == 0) == (n == 0) == store.nullable[t], t


def test_multiples_refused_by_the_states_texts_reach():
    # 25 / 10**2: 13 integer digits, whose residue mod 25 / gcd(25, 100) = 1 is always 0, then a
    # first fraction digit from remainder 0, and a second from at most 10 (10 c mod 25 for digit c)
    step = multiple_step(0.25, False)
    NumberTerms(TermStore()).multiples(step, budget=13 + 1 + 10)
    with pytest.raises(MultipleRefused):
        NumberTerms(TermStore()).multiples(step, budget=13 + 1 + 10 - 1)