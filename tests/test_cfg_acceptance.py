"""Issue 3's acceptance: every ready grammar, sampled sentences and their one-byte mutations.

- Sentences sampled from each grammar's IR are accepted token by token (each token inside the
  mask, EOS allowed at the end) under three real tokenizers: SmolLM2 (49k), Llama-3.2 (128k) and
  Gemma-3 (262k, byte fallback), tokenized canonically and at random.
- Single-byte mutations of them are accepted exactly when lark's Earley parser
  (``lexer="dynamic_complete"``, the grammar's context-free language) parses the mutated text.

The default run checks hundreds of sentences and thousands of mutations per grammar; ``-m slow``
runs ten times as many.
"""

from __future__ import annotations

import functools
import random

import lark
import numpy as np
import pytest

from constrain import grammars
from constrain.cfg.gbnf import parse_gbnf
from constrain.cfg.lark_frontend import parse_lark
from constrain.cfg.sampler import mutate, sample_sentence
from tests.tokenizers import TokenizerUnderTest

LARK_NAMES = grammars.names()
GBNF_NAMES = grammars.names("gbnf")
TOKENIZERS = ("smollm2", "llama3.2", "gemma3")


@functools.lru_cache(maxsize=None)
def _tokenizer(name: str) -> TokenizerUnderTest:
    return TokenizerUnderTest(name)


@functools.lru_cache(maxsize=None)
def _lark(name: str) -> lark.Lark:
    return lark.Lark(grammars.load(name), parser="earley", lexer="dynamic_complete")


def _sentences(name: str, dialect: str, n: int, seed: int) -> list[str]:
    ir = parse_lark(grammars.load(name)) if dialect == "lark" else parse_gbnf(grammars.load(name, "gbnf"))
    rng = random.Random(f"{name}.{dialect}.{seed}")
    return [sample_sentence(ir, rng, max_depth=6) for _ in range(n)]


def _compile(tok: TokenizerUnderTest, name: str, dialect: str):
    return tok.compiler.compile_grammar(grammars.load(name, dialect), dialect=dialect)


def _in_mask(mask: np.ndarray, token: int) -> bool:
    return bool((int(mask[token >> 5]) >> (token & 31)) & 1)


def _check_tokens(grammar, tok: TokenizerUnderTest, text: str, ids: list[int]) -> None:
    m = grammar.matcher()
    row = np.zeros(tok.vocab.size // 32 + 1, dtype=np.int32)
    for k, t in enumerate(ids):
        m.fill_bitmask(row[: (tok.vocab.size + 31) // 32])
        assert _in_mask(row, t), (text, k, tok.vocab.token_bytes[t])
        assert m.accept_token(t), (text, k, tok.vocab.token_bytes[t])
    m.fill_bitmask(row[: (tok.vocab.size + 31) // 32])
    assert m.is_accepting() and _in_mask(row, tok.eos), text


def _token_cases(slow: bool):
    n = 400 if slow else 40
    return [(g, d, t, n) for g in LARK_NAMES for d in ("lark", "gbnf") for t in TOKENIZERS
            if d == "lark" or g in GBNF_NAMES]


@pytest.mark.parametrize("name,dialect,tokenizer,n", _token_cases(slow=False))
def test_sampled_sentences_are_accepted_token_by_token(name, dialect, tokenizer, n):
    _accepted_token_by_token(name, dialect, tokenizer, n, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name,dialect,tokenizer,n", _token_cases(slow=True))
def test_many_sampled_sentences_are_accepted_token_by_token(name, dialect, tokenizer, n):
    _accepted_token_by_token(name, dialect, tokenizer, n, seed=1)


def _accepted_token_by_token(name, dialect, tokenizer, n, seed):
    tok = _tokenizer(tokenizer)
    grammar = _compile(tok, name, dialect)
    rng = random.Random(seed)
    checked = 0
    for text in _sentences(name, dialect, n, seed):
        if any(bytes([b]) not in tok.by_bytes for b in text.encode()):
            continue  # a byte this vocabulary cannot spell (SmolLM2 lacks 21 of the 256)
        checked += 1
        ids = list(tok.hf.encode(text, add_special_tokens=False))
        if b"".join(tok.vocab.token_bytes[i] for i in ids) == text.encode():  # else the tokenizer
            _check_tokens(grammar, tok, text, ids)  # normalizes the text: no canonical tokens
        _check_tokens(grammar, tok, text, tok.random_tokens(text.encode(), rng))
    assert checked >= n // 2


def _lark_accepts(name: str, data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False  # every terminal is text: no invalid UTF-8 is in any language
    try:
        _lark(name).parse(text)
        return True
    except lark.exceptions.LarkError:
        return False


def _mutation_cases(name: str, sentences: int, per_sentence: int, seed: int):
    rng = random.Random(f"mutations.{name}.{seed}")
    for text in _sentences(name, "lark", sentences, seed):
        for _ in range(per_sentence):
            yield text, mutate(text, rng)


@pytest.mark.parametrize("name", LARK_NAMES)
def test_mutations_are_accepted_exactly_when_lark_accepts(name):
    _mutations_agree(name, sentences=200, per_sentence=10, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", LARK_NAMES)
def test_many_mutations_are_accepted_exactly_when_lark_accepts(name):
    _mutations_agree(name, sentences=2000, per_sentence=10, seed=1)


def _mutations_agree(name: str, sentences: int, per_sentence: int, seed: int) -> None:
    tok = _tokenizer("smollm2")
    grammar = _compile(tok, name, "lark")
    agree = accepted = 0
    for text, data in _mutation_cases(name, sentences, per_sentence, seed):
        state = grammar.advance(grammar.initial_state(), data) if data else grammar.initial_state()
        ours = state is not None and grammar.is_accepting(state)
        want = _lark_accepts(name, data)
        assert ours == want, (name, text, data, want)
        agree += 1
        accepted += want
    assert agree == sentences * per_sentence
    assert 0 < accepted < agree  # both verdicts occurred: the comparison can fail either way


@pytest.mark.parametrize("name", GBNF_NAMES)
def test_gbnf_grammars_have_the_lark_grammars_language(name):
    """The GBNF version accepts the Lark version's sentences and mutations exactly as lark does."""
    tok = _tokenizer("smollm2")
    grammar = _compile(tok, name, "gbnf")
    for text, data in _mutation_cases(name, sentences=100, per_sentence=5, seed=2):
        for sample in (text.encode(), data):
            state = grammar.advance(grammar.initial_state(), sample) if sample else grammar.initial_state()
            ours = state is not None and grammar.is_accepting(state)
            assert ours == _lark_accepts(name, sample), (name, sample)
