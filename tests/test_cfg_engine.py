"""The context-free engine: recognizer against lark, masks against brute force, the Matcher API."""

from __future__ import annotations

import random

import lark
import numpy as np
import pytest

from constrain.cfg.engine import CompiledCFG
from constrain.cfg.lark_frontend import parse_lark
from constrain.compiler import Compiler
from constrain.errors import BudgetExceededError, GrammarError
from tests.tokenizers import load_tokenizer

GRAMMARS = {
    "arith": ("""
        start: sum
        ?sum: product | sum ("+" | "-") product
        ?product: atom | product ("*" | "/") atom
        ?atom: NUMBER | "-" atom | "(" sum ")"
        NUMBER: /[0-9]+(\\.[0-9]+)?/
        %ignore " "
    """, "0123456789.+-*/() "),
    "names": ("""
        start: item+
        item: NAME | NAME "=" NAME | "<" | "<=" | "<<"
        NAME: /[a-c]+/
        %ignore /[ ]+/
    """, "abc=<  "),
    "strings": ("""
        start: "[" [ESCAPED_STRING ("," ESCAPED_STRING)*] "]"
        %import common.ESCAPED_STRING
        %import common.WS
        %ignore WS
    """, '[]",\\a '),
    "nullable": ("""
        start: a b a
        a: "x"? | a "y"
        b: | "z" b "z"
    """, "xyz"),
    "ambiguous": ("""
        start: e
        e: e e | "a" | "(" e ")" |
    """, "a()"),
}


@pytest.fixture(scope="module")
def compiler():
    return Compiler(load_tokenizer("smollm2"))


def _lark_accepts(parser: lark.Lark, text: str) -> bool:
    try:
        parser.parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


def _accepts(g: CompiledCFG, text: str) -> bool:
    state = g.advance(g.initial_state(), text.encode())
    if not text:
        state = g.initial_state()
    return state is not None and g.is_accepting(state)


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_recognizer_agrees_with_lark_earley(compiler, name):
    """Random short texts over the grammar's alphabet: accepted exactly when lark accepts them."""
    text, alphabet = GRAMMARS[name]
    g = compiler.compile_lark(text)
    parser = lark.Lark(text, parser="earley", lexer="dynamic_complete")
    rng = random.Random(name)
    accepted = 0
    for _ in range(600):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7)))
        if name == "strings" and rng.random() < 0.7:  # random texts are rarely framed by [ ]
            s = "[" + s + "]"
        want = _lark_accepts(parser, s)
        assert _accepts(g, s) == want, (name, s, want)
        accepted += want
    assert accepted > 10  # the comparison covered accepted texts, not only rejections


def _brute_force_mask(g: CompiledCFG, state) -> set[int]:
    out = set()
    for tid, data in enumerate(g.vocab.token_bytes):
        if data and tid not in g.eos_ids and g.advance(state, data) is not None:
            out.add(tid)
    if g.is_accepting(state):
        out |= set(g.eos_ids)
    return out


def _mask_ids(g: CompiledCFG, state) -> set[int]:
    bits = np.unpackbits(g.mask_of(state).view(np.uint8), bitorder="little")[: g.vocab.size]
    return set(np.flatnonzero(bits).tolist())


@pytest.mark.parametrize("name,text", [
    ("arith", "(12 + 3.5) * -4"),
    ("strings", '["a\\"b", "c"]'),
    ("names", "ab = c <<= a"),
])
def test_mask_equals_brute_force(compiler, name, text):
    """At every byte boundary of a sentence, the mask is exactly the tokens that advance."""
    g = compiler.compile_lark(GRAMMARS[name][0])
    state = g.initial_state()
    cuts = sorted(random.Random(1).sample(range(1, len(text)), 3))
    prev = 0
    for cut in [0] + cuts:
        if cut:
            state = g.advance(state, text[prev:cut].encode())
            prev = cut
        assert state is not None
        assert _mask_ids(g, state) == _brute_force_mask(g, state), (name, text[:cut])


def test_matcher_api_on_a_grammar(compiler):
    tok = load_tokenizer("smollm2")
    g = compiler.compile_lark(GRAMMARS["arith"][0])
    m = g.matcher()
    ids = tok.encode("(1 + 2) * 3", add_special_tokens=False)
    for i in ids:
        assert int(i) in set(m.allowed_token_ids().tolist())
        assert m.accept_token(i)
    assert m.is_accepting()
    copy = m.copy()
    m.rollback(len(ids))
    assert not m.is_accepting() and m.num_accepted() == 0
    assert copy.is_accepting()
    assert not m.accept_token(tok.encode(")", add_special_tokens=False)[0])
    eos = next(iter(g.eos_ids))
    assert copy.accept_token(eos) and copy.is_terminated()


@pytest.mark.parametrize("text,match", [
    ("start: foo", "not defined"),
    ("start: A\nA: /x*/", "empty string"),
    ("start: \"a\" start", "empty language"),
    ("start: (", "line 1"),
    ("start: A\nA: /[/", "A"),
    ("start: B\n%declare B", "B"),
])
def test_malformed_grammars_raise_grammar_error(compiler, text, match):
    with pytest.raises(GrammarError, match=match):
        compiler.compile_lark(text)


def test_syntax_error_carries_position():
    with pytest.raises(GrammarError) as info:
        parse_lark("start: \"a\"\nfoo: ) bar")
    assert info.value.position is not None and info.value.position >= len("start: \"a\"\n")


def test_left_recursive_ambiguity_collapses(compiler):
    """Hash-consed charts: every split of a+ under a left-recursive star reaches one chart."""
    g = compiler.compile_lark('start: A*\nA: /a+/')
    state = g.advance(g.initial_state(), b"a" * 2000)
    assert state is not None and g.is_accepting(state) and len(state.configs) <= 4  # bounded, not 2000


def test_ambiguous_lexing_hits_a_budget_not_a_hang(compiler):
    g = compiler.compile_lark('start: A start |\nA: /a+/')  # right recursion: every split its own chart
    state = g.advance(g.initial_state(), b"a" * 100)
    assert state is not None and g.is_accepting(state)
    with pytest.raises(BudgetExceededError):
        g.advance(state, b"a" * 1000)
