"""Token DFAs for a canvas: EOS padding, agreement of the grammar-backed DFA with the Matcher,
distances to acceptance against brute force, and the unsatisfiable-canvas error."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import constrain
from constrain.diffusion import FINAL, DiffusionAdapter, TokenDFA, UnsatisfiableError, as_token_dfa, generate
from constrain.diffusion.toys import random_token_dfa
from constrain.sampling.toys import toy_vocabulary

TOKENS = (b"a", b"b", b"ab", b"ba", b"c", b"ca")
VOCAB = toy_vocabulary(TOKENS, bos=False)  # EOS = 6
EOS = 6
COMP = constrain.Compiler(VOCAB)


def test_eos_is_padding():
    dfa = as_token_dfa(COMP.compile_regex("(ab|ba)+c?"))
    assert dfa.accepts([2, 4, EOS, EOS])
    assert dfa.accepts([0, 1, 3])  # fills the canvas, no EOS needed
    assert not dfa.accepts([2, EOS, 0])  # text after padding
    assert not dfa.accepts([0, EOS])  # EOS before a match
    assert dfa.step(dfa.run([2, EOS]), EOS) == FINAL
    assert dfa.successors(FINAL)[0].tolist() == [EOS]


@pytest.mark.parametrize("pattern", ["(ab|ba)+c?", "a*(bc|ca)+", "[abc]{2,4}", "(a|b)*c(a|b)*"])
def test_grammar_dfa_agrees_with_the_matcher(pattern):
    g = COMP.compile_regex(pattern)
    dfa = as_token_dfa(g)
    rng = np.random.default_rng(0)
    for _ in range(30):
        m, q = g.matcher(), dfa.start
        for _ in range(5):
            ids, _ = dfa.successors(q)
            assert ids.tolist() == m.allowed_token_ids().tolist()
            text = [t for t in ids.tolist() if t != EOS]
            if not text:
                break
            t = int(rng.choice(text))
            m.accept_token(t)
            q = dfa.step(q, t)
            assert dfa.is_accepting(q) == m.is_accepting()


def _brute_distance(dfa: TokenDFA, width: int, q_tokens=(), max_len: int = 5) -> float:
    for m in range(max_len + 1):
        if any(dfa.accepts(list(q_tokens) + list(x)) for x in itertools.product(range(width), repeat=m)):
            return float(m)
    return math.inf


def test_distances_against_brute_force():
    rng = np.random.default_rng(4)
    for _ in range(60):
        dfa, tokens = random_token_dfa(rng)
        d = dfa.distance(dfa.start)
        brute = _brute_distance(dfa, len(tokens))
        assert d == brute or (d > 5 and brute == math.inf), (d, brute)
        # the table's all-states computation equals the generic breadth-first search
        for q in range(dfa.table.shape[0]):
            assert TokenDFA._bfs(dfa, q) == dfa.distance(q)


def test_grammar_distances_use_multi_byte_tokens():
    dfa = as_token_dfa(COMP.compile_regex("abab(ca)?"))
    assert dfa.distance(dfa.start) == 2  # ab ab


def test_unsatisfiable_canvas_is_a_typed_error():
    ad = DiffusionAdapter(lambda ids: np.zeros(tuple(np.asarray(ids).shape) + (8,)), 7)
    with pytest.raises(UnsatisfiableError, match="takes 5 tokens") as e:
        generate(ad, [], COMP.compile_regex("a{5}"), gen_length=3)
    assert (e.value.length, e.value.needed) == (3, 5)
    with pytest.raises(UnsatisfiableError, match="cannot spell"):
        generate(ad, [], COMP.compile_regex("d"), gen_length=3)
    with pytest.raises(constrain.ConstrainError):
        generate(ad, [], COMP.compile_regex("a{5}"), gen_length=4)


def test_only_regular_constraints():
    with pytest.raises(TypeError, match="CompiledGrammar or a TokenDFA"):
        as_token_dfa("a+")
