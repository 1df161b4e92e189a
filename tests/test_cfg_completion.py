"""Completing partial outputs with holes: witnesses that lark parses, emptiness against brute force."""

from __future__ import annotations

import functools
import itertools
import json
import random
import time

import lark
import pytest

from constrain.cfg.completion import Completion, CompletionChecker, completable
from constrain.cfg.lark_frontend import parse_lark
from constrain.cfg.sampler import mutate, sample_sentence
from constrain.errors import BudgetExceededError
from constrain.grammars import load, names

# Small grammars for brute force: every character their terminals can use is in the alphabet,
# so the shortest filling found by enumeration is the shortest filling there is. They cover
# ignored terminals, nullable rules, terminals that overlap, and a lazy (first-match) terminal.
SMALL = {
    "parens": ('start: e\ne: | "(" e ")" e | "a"', "()a"),
    "arith": ("""
        start: sum
        ?sum: atom | sum "+" atom
        ?atom: NUM | "(" sum ")"
        NUM: /1+/
        %ignore " "
    """, "1+() "),
    "nullable": ("""
        start: a b a
        a: "x"? | a "y"
        b: | "z" b "z"
    """, "xyz"),
    "lexing": ("""
        start: item+
        item: NAME | NAME "=" NAME | "<" | "<<"
        NAME: /[ab]+/
        %ignore /[ ]+/
    """, "ab=< "),
    "quoted": ("""
        start: Q ("," Q)*
        Q: /'[a,']*?'/
    """, "a,'"),
}
# A finite language (no sentence is longer than FINITE_MAX): a search bounded by that length is
# a proof of emptiness, so here "empty" must agree with brute force exactly.
FINITE = ("""
    start: a? b c?
    a: "x" | "xy"
    b: "y" | "yx" |
    c: "z" "z"?
""", "xyz")
FINITE_MAX = 6


@functools.cache
def _lark(source: str) -> lark.Lark:
    return lark.Lark(source, parser="earley", lexer="dynamic_complete")


@functools.cache
def _grammar(source: str):
    return parse_lark(source)


@functools.cache
def _accepts(source: str, text: str) -> bool:
    try:
        _lark(source).parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


def _punch(text: str | bytes, rng: random.Random, holes: int) -> list:
    """The pieces left of ``text`` after removing ``holes`` random spans (some empty, adjacent
    or at an end)."""
    cuts = sorted(rng.randint(0, len(text)) if rng.random() < 0.7 else rng.choice([0, len(text)])
                  for _ in range(2 * holes))
    pieces, last = [], 0
    for a, b in zip(cuts[::2], cuts[1::2]):
        pieces.append(text[last:a])
        last = b
    pieces.append(text[last:])
    return pieces


def _removed(text: str | bytes, pieces: list) -> int:
    """How many bytes the holes took out of ``text``: one filling, so ours is no longer."""
    return len(_utf8(text)) - sum(len(_utf8(p)) for p in pieces)


def _utf8(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def _assert_witness(source: str, pieces: list, got: Completion | None) -> None:
    assert got is not None, pieces
    assert len(got.fillings) == len(pieces) - 1
    joined = pieces[0]
    for filling, piece in zip(got.fillings, pieces[1:]):
        joined += filling + piece
    assert joined == (got.text if isinstance(joined, str) else got.text.encode())
    assert _accepts(source, got.text), (pieces, got)


def _cost(got: Completion) -> int:
    return sum(len(_utf8(f)) for f in got.fillings)


@pytest.mark.parametrize("name", names("lark"))
def test_punched_library_sentences_complete(name):
    source = load(name)
    grammar = _grammar(source)
    checker = CompletionChecker(grammar)
    rng = random.Random(7)
    for _ in range(10):
        sentence = sample_sentence(grammar, rng, max_depth=4)
        pieces = _punch(sentence, rng, rng.randint(0, 3))
        got = checker.check(pieces)
        _assert_witness(source, pieces, got)
        assert _cost(got) <= _removed(sentence, pieces)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_punched_small_sentences_complete(name):
    source, _ = SMALL[name]
    grammar = _grammar(source)
    checker = CompletionChecker(grammar)
    rng = random.Random(3)
    for _ in range(30):
        sentence = sample_sentence(grammar, rng)
        pieces = _punch(sentence, rng, rng.randint(0, 3))
        got = checker.check(pieces)
        _assert_witness(source, pieces, got)
        assert _cost(got) <= _removed(sentence, pieces)


def test_no_hole_is_membership():
    source, _ = SMALL["lexing"]
    grammar = _grammar(source)
    rng = random.Random(5)
    for _ in range(40):
        text = sample_sentence(grammar, rng).encode()
        if rng.random() < 0.5:
            text = mutate(text, rng)
        try:
            expected = _accepts(source, text.decode())
        except UnicodeDecodeError:
            expected = False
        assert (completable(grammar, [text]) is not None) == expected, text


def test_holes_split_utf8_characters():
    source = 'start: W (" " W)*\nW: /[aé€]+/'
    grammar = _grammar(source)
    rng = random.Random(11)
    for _ in range(30):
        data = sample_sentence(grammar, rng).encode()
        pieces = _punch(data, rng, rng.randint(1, 3))
        got = completable(grammar, pieces)
        _assert_witness(source, pieces, got)
        assert all(isinstance(f, bytes) for f in got.fillings)
        assert _cost(got) <= _removed(data, pieces)
    assert completable(grammar, ["", "\xe9".encode()[1:]]).fillings == (b"\xc3",)
    assert completable(grammar, ["\u20ac".encode()[:2], b" a"]).fillings == (b"\xac",)
    assert completable(grammar, [b"\xa9"]) is None
    assert completable(grammar, [b"a\xc3", b""]) is not None


def _brute_force(source: str, alphabet: str, pieces: list[str], bound: int) -> int | None:
    """The fewest characters filling the holes (all fillings of at most ``bound`` in all), or
    None when none of them does."""
    holes = len(pieces) - 1
    for total in range(bound + 1):
        for text in itertools.product(alphabet, repeat=total):
            for split in _splits(total, holes):
                fillings, at = [], 0
                for n in split:
                    fillings.append("".join(text[at:at + n]))
                    at += n
                if _accepts(source, _join(pieces, fillings)):
                    return total
    return None


def _splits(total: int, parts: int):
    if parts == 0:
        if total == 0:
            yield ()
        return
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        bounds = (-1, *cut, total + parts - 1)
        yield tuple(b - a - 1 for a, b in zip(bounds, bounds[1:]))


def _join(pieces: list[str], fillings: list[str]) -> str:
    return pieces[0] + "".join(f + p for f, p in zip(fillings, pieces[1:]))


def _random_partial(grammar, alphabet: str, rng: random.Random) -> list[str]:
    holes = rng.randint(1, 2)
    if rng.random() < 0.5:
        return _punch(sample_sentence(grammar, rng, max_depth=4), rng, holes)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 3))) for _ in range(holes + 1)]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shortest_filling_matches_brute_force(name):
    """Bound: fillings of at most 4 characters in all (3 with two holes). Where brute force finds
    one, ours is as short; where ours is None or longer than the bound, brute force finds none."""
    source, alphabet = SMALL[name]
    grammar = _grammar(source)
    checker = CompletionChecker(grammar)
    rng = random.Random(13)
    outcomes = set()
    for _ in range(40):
        pieces = _random_partial(grammar, alphabet, rng)
        got = checker.check(pieces)
        bound = 4 if len(pieces) == 2 else 3
        expected = _brute_force(source, alphabet, pieces, bound)
        if got is None:
            assert expected is None, pieces
        else:
            _assert_witness(source, pieces, got)
            assert expected == (_cost(got) if _cost(got) <= bound else None), (pieces, got)
        outcomes.add("empty" if got is None else "short" if expected is not None else "long")
    assert {"empty", "short"} <= outcomes  # both directions were exercised


def test_finite_language_emptiness_is_exact():
    """In a language whose sentences have at most FINITE_MAX characters, brute force up to that
    length proves emptiness: ours is None exactly then."""
    source, alphabet = FINITE
    grammar = _grammar(source)
    checker = CompletionChecker(grammar)
    rng = random.Random(17)
    verdicts = set()
    for _ in range(40):
        pieces = _random_partial(grammar, alphabet, rng)
        bound = max(0, FINITE_MAX - len("".join(pieces)))
        expected = _brute_force(source, alphabet, pieces, bound)
        got = checker.check(pieces)
        assert (got is None) == (expected is None), pieces
        if got is not None:
            _assert_witness(source, pieces, got)
            assert _cost(got) == expected
        verdicts.add(got is None)
    assert verdicts == {True, False}


def test_edge_cases():
    source, _ = SMALL["parens"]
    grammar = _grammar(source)
    assert completable(grammar, [""]).text == ""  # no hole: the empty text, which "e" derives
    assert _cost(completable(grammar, ["((((", "a"])) == 4
    assert completable(grammar, ["", "", ")"]).fillings == ("(", "")  # adjacent holes
    assert completable(grammar, [")", ""]) is None
    with pytest.raises(ValueError):
        completable(grammar, [])
    with pytest.raises(ValueError):
        completable(grammar, "()")
    with pytest.raises(TypeError):
        completable(grammar, ["(", 1])
    with pytest.raises(BudgetExceededError):
        CompletionChecker(grammar, max_items=5).check(["(((", ""])


def test_json_timing():
    source = load("json")
    checker = CompletionChecker(_grammar(source))
    doc = json.dumps({"name": "constrain", "version": [0, 1, 2], "tags": ["cfg", "diffusion"],
                      "nested": {"a": 1.5e3, "b": None, "c": True, "d": {"e": "f\ng", "list": [1, {"x": -3}]}},
                      "text": "the quick brown fox jumps over the lazy dog"})
    pieces = [doc[:40], doc[55:120], doc[131:170], doc[190:]]
    assert len(doc) > 200
    start = time.perf_counter()
    got = checker.check(pieces)
    elapsed = time.perf_counter() - start
    _assert_witness(source, pieces, got)
    start = time.perf_counter()
    assert checker.check(pieces[:-1] + [doc[190:] + "@"]) is None
    empty = time.perf_counter() - start
    print(f"\nJSON, {len(doc)} bytes, 3 holes: completable in {elapsed * 1e3:.1f} ms "
          f"(fillings {got.fillings}); empty in {empty * 1e3:.1f} ms")
