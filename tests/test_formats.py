"""String formats agree with jsonschema's FormatChecker: never accept an invalid string; accept
every valid one, except outside the documented common form of the SUBSET formats."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from constrain.automaton import DEAD, LazyDFA
from constrain.formats import SUBSET_FORMATS, checked_formats, format_patterns
from constrain.json_schema import compile_schema_term
from constrain.terms import TermStore

SUPPORTED = sorted(f for f in checked_formats() if format_patterns(f) is not None)

EXAMPLES = [
    "", "a", "x@y", "@", "2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "0000-01-01", "2024-13-01",
    "2024-01-01T10:20:30Z", "2024-01-01t10:20:30.5+01:00", "2024-01-01T24:00:00Z", "2024-01-01T10:20:30Z\n",
    "10:20:30Z", "10:20:30", "23:59:60Z", "192.168.0.1", "256.1.1.1", "01.2.3.4", "1.2.3",
    "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000", "123e4567e89b12d3a456426614174000",
    "http://a.com", "https://x.y/z?q=1#f", "a:b", "no scheme", "http://[::1]/", "http://a b", "%41:x",
    "http://é.com", "/a/b", "#f", "//host", "%zz", "example.com", "-a.com", "a-.com", "EXAMPLE.com.", "a..b",
    "1.2.3.4", "/", "/a~0b", "/a~2", "~0", "/a~", "a" * 64 + ".com",
]


def _accepts(fmt: str):
    schema = {"type": "string", "format": fmt}
    store = TermStore()
    term, _, _ = compile_schema_term(schema, store)
    dfa = LazyDFA(store, term)

    def accepts(text: str) -> bool:
        state = dfa.step(dfa.start, json.dumps(text, ensure_ascii=False).encode())
        return state != DEAD and bool(dfa.accepting[state])

    return accepts, Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.mark.parametrize("fmt", SUPPORTED)
def test_examples_agree_with_the_validator(fmt):
    accepts, validator = _accepts(fmt)
    for text in EXAMPLES:
        got, valid = accepts(text), validator.is_valid(text)
        if got:
            assert valid, (fmt, text)
        elif valid and fmt not in SUBSET_FORMATS:
            pytest.fail(f"{fmt}: valid {text!r} rejected")


ALPHABET = st.sampled_from(list("0123456789abcdefAEZTz:-.+/@%#?[]~ _é\n"))


@pytest.mark.parametrize("fmt", SUPPORTED)
@settings(max_examples=150, deadline=None)
@given(text=st.lists(ALPHABET, max_size=24).map("".join))
def test_random_strings_never_accepted_when_invalid(fmt, text):
    accepts, validator = _accepts(fmt)
    if accepts(text):
        assert validator.is_valid(text), (fmt, text)
    elif fmt not in SUBSET_FORMATS:
        assert not validator.is_valid(text), (fmt, text)
