"""Matcher API semantics: accept/reject, EOS and termination, rollback, copy, reset, mask caching."""

from __future__ import annotations

import functools
import random
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import constrain
from tests.tokenizers import load_tokenizer

TOKENIZERS = ["smollm2", "llama3.2"]


@functools.lru_cache(maxsize=None)
def compiler(name: str) -> constrain.Compiler:
    return constrain.Compiler(load_tokenizer(name))


def ids_of(c: constrain.Compiler, text: str) -> list[int]:
    """A tokenization of ``text`` (greedy longest match over the vocabulary)."""
    by_bytes = _by_bytes(c)
    data = text.encode()
    out, i = [], 0
    while i < len(data):
        for j in range(len(data), i, -1):
            t = by_bytes.get(data[i:j])
            if t is not None:
                out.append(t)
                i = j
                break
        else:
            raise AssertionError(f"no token for {data[i:]!r}")
    return out


@functools.lru_cache(maxsize=None)
def _by_bytes_cached(cid: int, c: constrain.Compiler) -> dict:
    out = {}
    for i, b in enumerate(c.vocab.token_bytes):
        if b:
            out.setdefault(b, i)
    return out


def _by_bytes(c):
    return _by_bytes_cached(id(c), c)


def tok1(c: constrain.Compiler, s: str) -> int:
    """The single token whose bytes are ``s``."""
    return _by_bytes(c)[s.encode()]


def mask_of(m: constrain.Matcher) -> np.ndarray:
    row = constrain.allocate_token_bitmask(1, m.vocab_size)[0]
    m.fill_bitmask(row)
    return row


def snapshot(m: constrain.Matcher):
    return (m.num_accepted(), m.state, m.is_accepting(), m.is_terminated(), mask_of(m).tobytes())


def eos(c) -> int:
    return min(c.vocab.eos_token_ids)


def bit(row, t) -> bool:
    return bool((int(row[t // 32]) >> (t % 32)) & 1)


# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TOKENIZERS)
def test_mask_shape_and_vocab_size(name):
    c = compiler(name)
    m = c.compile_regex("abc").matcher()
    assert m.vocab_size == c.vocab.size
    bm = constrain.allocate_token_bitmask(3, m.vocab_size)
    assert bm.shape == (3, (c.vocab.size + 31) // 32) and bm.dtype == np.int32
    m.fill_bitmask(bm[1])
    assert (bm[0] == -1).all() and (bm[2] == -1).all(), "fill_bitmask wrote outside its row"
    assert np.array_equal(np.flatnonzero(np.unpackbits(bm[1].view(np.uint8), bitorder="little")),
                          m.allowed_token_ids())


@pytest.mark.parametrize("name", TOKENIZERS)
def test_rejected_token_leaves_state_unchanged(name):
    c = compiler(name)
    m = c.compile_regex("ab(c|d)*e").matcher()
    assert m.accept_token(tok1(c, "a"))
    before = snapshot(m)
    for bad in [tok1(c, "x"), tok1(c, "a"), tok1(c, "e"), eos(c), -1, c.vocab.size, c.vocab.size + 100,
                *[i for i, b in enumerate(c.vocab.token_bytes) if b is None][:5]]:
        assert not m.is_token_allowed(bad)
        assert m.accept_token(bad) is False
        assert snapshot(m) == before
    assert m.accept_token(tok1(c, "b"))
    assert m.num_accepted() == 2


@pytest.mark.parametrize("name", TOKENIZERS)
def test_accept_token_agrees_with_mask(name):
    """For a sample of tokens (all allowed ones and random others), accept_token == mask bit."""
    c = compiler(name)
    g = c.compile_regex(r"[a-c]{2}\d+(x|yz)?")
    m = g.matcher()
    m.accept_token(tok1(c, "a"))
    row = mask_of(m)
    allowed = m.allowed_token_ids()
    rnd = random.Random(0)
    sample = list(allowed[:200]) + [rnd.randrange(c.vocab.size) for _ in range(300)]
    for t in sample:
        t = int(t)
        assert m.is_token_allowed(t) == bit(row, t)
        assert m.copy().accept_token(t) == bit(row, t)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_eos_only_when_accepting_then_terminated(name):
    c = compiler(name)
    g = c.compile_regex("ab+")
    m = g.matcher()
    e = eos(c)
    assert not m.is_accepting() and e not in m.allowed_token_ids()
    assert not m.accept_token(e) and not m.is_terminated()
    assert m.accept_token(tok1(c, "a"))
    assert not m.accept_token(e)
    assert m.accept_token(tok1(c, "b"))
    assert m.is_accepting() and e in m.allowed_token_ids()
    assert m.accept_token(e)
    assert m.is_terminated()
    # after termination: only EOS in the mask, and nothing (not even EOS) is accepted
    assert list(m.allowed_token_ids()) == sorted(c.vocab.eos_token_ids)
    row = mask_of(m)
    assert np.array_equal(np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little")),
                          sorted(c.vocab.eos_token_ids))
    n = m.num_accepted()
    assert not m.accept_token(tok1(c, "b"))
    assert not m.accept_token(e)
    assert not m.accept_bytes(b"b")
    assert not m.is_token_allowed(e)
    assert m.num_accepted() == n and m.is_terminated()


@pytest.mark.parametrize("name", TOKENIZERS)
def test_rollback_across_eos(name):
    c = compiler(name)
    m = c.compile_regex("ab*").matcher()
    e = eos(c)
    states = [snapshot(m)]
    for t in [tok1(c, "a"), tok1(c, "b"), tok1(c, "b")]:
        assert m.accept_token(t)
        states.append(snapshot(m))
    assert m.accept_token(e) and m.is_terminated() and m.num_accepted() == 4
    m.rollback(1)
    assert not m.is_terminated()
    assert snapshot(m) == states[3]
    assert m.accept_token(tok1(c, "b"))  # can continue after undoing EOS
    assert m.accept_token(e)
    m.rollback(3)
    assert snapshot(m) == states[2]
    m.rollback(0)
    assert snapshot(m) == states[2]
    m.rollback(2)
    assert snapshot(m) == states[0]
    with pytest.raises(ValueError):
        m.rollback(1)
    with pytest.raises(ValueError):
        m.rollback(-1)
    assert snapshot(m) == states[0]


@pytest.mark.parametrize("name", TOKENIZERS)
def test_rollback_too_far_changes_nothing(name):
    c = compiler(name)
    m = c.compile_regex("a*").matcher()
    m.accept_tokens([tok1(c, "a")] * 3)
    before = snapshot(m)
    with pytest.raises(ValueError):
        m.rollback(4)
    assert snapshot(m) == before


@pytest.mark.parametrize("name", TOKENIZERS)
def test_copy_is_independent(name):
    c = compiler(name)
    m = c.compile_regex("(ab)+").matcher()
    assert m.accept_token(tok1(c, "a"))
    m2 = m.copy()
    assert snapshot(m2) == snapshot(m)
    assert m2.accept_token(tok1(c, "b")) and m2.is_accepting()
    assert m.num_accepted() == 1 and not m.is_accepting()
    assert m.accept_token(tok1(c, "b"))
    m.rollback(2)
    assert m2.num_accepted() == 2 and m2.is_accepting()
    assert m2.accept_token(eos(c))
    m3 = m2.copy()
    assert m3.is_terminated()
    m3.rollback(1)
    assert not m3.is_terminated() and m2.is_terminated()


@pytest.mark.parametrize("name", TOKENIZERS)
def test_reset(name):
    c = compiler(name)
    g = c.compile_regex("ab")
    m = g.matcher()
    fresh = snapshot(m)
    m.accept_tokens([tok1(c, "a"), tok1(c, "b"), eos(c)])
    assert m.is_terminated()
    m.reset()
    assert snapshot(m) == fresh and m.num_accepted() == 0
    assert m.accept_tokens([tok1(c, "a"), tok1(c, "b")]) and m.is_accepting()


@pytest.mark.parametrize("name", TOKENIZERS)
def test_accept_tokens_all_or_nothing(name):
    c = compiler(name)
    m = c.compile_regex("abcd").matcher()
    a, b, cc, d = (tok1(c, x) for x in "abcd")
    assert m.accept_tokens([a, b])
    before = snapshot(m)
    assert not m.accept_tokens([cc, a])  # second fails: the first is undone too
    assert snapshot(m) == before
    assert m.accept_tokens([])
    assert m.accept_tokens([cc, d, eos(c)]) and m.is_terminated()
    assert not m.accept_tokens([eos(c)])


@pytest.mark.parametrize("name", TOKENIZERS)
def test_accept_bytes(name):
    c = compiler(name)
    m = c.compile_regex("héllo|help").matcher()
    assert m.accept_bytes("h".encode())
    assert m.accept_bytes(b"\xc3")  # half of é
    before = snapshot(m)
    assert not m.accept_bytes(b"l")
    assert snapshot(m) == before
    assert m.accept_bytes(b"\xa9llo") and m.is_accepting()
    assert m.accept_token(eos(c)) and m.is_terminated()


def test_compile_cache_is_bounded_by_bytes():
    """Cached grammars hold ``cache_bytes`` at most in all, counting what they built since."""
    vocab = compiler("smollm2").vocab
    size = constrain.Compiler(vocab).compile_regex("[0-9]+").approx_nbytes()
    c = constrain.Compiler(vocab, cache_bytes=2 * size + size // 2)
    a, b = c.compile_regex("[0-9]+"), c.compile_regex("[a-z]+")
    assert c.compile_regex("[0-9]+") is a and c.compile_regex("[a-z]+") is b  # both fit
    c.compile_regex("x")  # a third does not: the least recently used goes
    assert c.compile_regex("[a-z]+") is b and c.compile_regex("[0-9]+") is not a
    # masks and states built after caching count: a grammar grown past the budget goes too
    g = c.compile_regex("[a-z]{0,50}")
    m = g.matcher()
    for ch in "abcdefghijklmnopqrstuvwxyz":
        mask_of(m)
        assert m.accept_bytes(ch.encode())
    assert g.approx_nbytes() > c._cache_bytes
    c.compile_regex("y")
    assert c.compile_regex("[a-z]{0,50}") is not g
    # a grammar over the budget on its own is returned but not kept
    off = constrain.Compiler(vocab, cache_bytes=0)
    assert off.compile_regex("[0-9]+") is not off.compile_regex("[0-9]+")


def test_grammar_size_estimate_grows_with_use():
    """A context-free grammar's estimate counts what it builds as it is used (masks, lexical
    paths, lexer states), so the byte-bounded cache sees it."""
    c = compiler("smollm2")
    g = c.compile_lark('start: "[" (item ("," item)*)? "]"\nitem: /[a-z]+/ | start')
    before = g.approx_nbytes()
    m = g.matcher()
    for ch in "[ab,[c,[d]],e]":
        mask_of(m)
        assert m.accept_bytes(ch.encode())
    assert g.approx_nbytes() > before + 4 * g.eos_only_mask.nbytes


@pytest.mark.parametrize("name", TOKENIZERS)
def test_cache_hit_masks_identical(name):
    c = compiler(name)
    g = c.compile_regex(r"[a-z]{0,100}\.")
    m = g.matcher()
    first = mask_of(m)
    n = g.num_cached_masks
    assert np.array_equal(mask_of(m), first)
    assert np.array_equal(mask_of(g.matcher()), first)
    assert g.num_cached_masks == n
    # Different counts of the same repetition share a cache entry once far from the bound.
    m.accept_tokens(ids_of(c, "abcdefghij"))
    after10 = mask_of(m)
    m.accept_tokens(ids_of(c, "abcdefghij"))
    after20 = mask_of(m)
    assert np.array_equal(after10, after20)
    # rollback returns exactly the earlier mask
    m.rollback(m.num_accepted())
    assert np.array_equal(mask_of(m), first)
    # the returned row is the caller's: mutating it does not corrupt the cache
    row = mask_of(m)
    row[:] = 0
    assert np.array_equal(mask_of(m), first)
    allowed = m.allowed_token_ids()
    allowed[:] = 0
    assert np.array_equal(mask_of(m), first)


@pytest.mark.parametrize("name", TOKENIZERS)
def test_json_matcher_end_to_end(name):
    c = compiler(name)
    g = c.compile_json_schema({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    m = g.matcher()
    text = '{"n": 12}'
    ids = ids_of(c, text)
    for t in ids:
        assert bit(mask_of(m), t)
        assert m.accept_token(t)
    assert m.is_accepting()
    assert m.accept_token(eos(c)) and m.is_terminated()


def test_two_compilers_same_grammar_same_masks():
    """Compiling the same regex twice (cache hit or not) gives identical masks."""
    c = compiler("smollm2")
    g1 = c.compile_regex("x[0-9]+y")
    g2 = constrain.Compiler(c.vocab).compile_regex("x[0-9]+y")
    m1, m2 = g1.matcher(), g2.matcher()
    for t in [None] + ids_of(c, "x12"):
        if t is not None:
            assert m1.accept_token(t) and m2.accept_token(t)
        assert np.array_equal(mask_of(m1), mask_of(m2))


def test_concurrent_fill_bitmask():
    """A CompiledGrammar is shared by threads: masks computed concurrently equal sequential ones."""
    c = compiler("smollm2")
    pattern = r"(\w+ ){1,30}\d{1,5}[.!?]"
    texts = ["hello world 123.", "a b c 9!", "foo 77777?", "xyz 1."]
    g_ref = constrain.Compiler(c.vocab).compile_regex(pattern)
    expected = {}
    for text in texts:
        m = g_ref.matcher()
        masks = [mask_of(m).tobytes()]
        for t in ids_of(c, text):
            assert m.accept_token(t)
            masks.append(mask_of(m).tobytes())
        expected[text] = masks
    c2 = constrain.Compiler(c.vocab)
    g = c2.compile_regex(pattern)
    errors = []

    def work(text):
        try:
            m = g.matcher()
            got = [mask_of(m).tobytes()]
            for t in ids_of(c, text):
                assert m.accept_token(t)
                got.append(mask_of(m).tobytes())
            assert got == expected[text]
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in texts * 2]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors


def test_padded_logits_width():
    """With logits wider than the tokenizer, padding ids are never allowed."""
    tok = load_tokenizer("smollm2")
    n = len(compiler("smollm2").vocab.token_bytes)
    c = constrain.Compiler(tok, logits_width=n + 70)
    assert c.vocab.size == n + 70
    g = c.compile_regex(".*")
    m = g.matcher()
    bm = constrain.allocate_token_bitmask(1, c.vocab.size)
    assert bm.shape[1] == (n + 70 + 31) // 32
    m.fill_bitmask(bm[0])
    allowed = m.allowed_token_ids()
    assert allowed.max() < n
    bits = np.unpackbits(bm[0].view(np.uint8), bitorder="little")
    assert not bits[n:].any()
    assert not m.accept_token(n + 5)


# --------------------------------------------------------------------------------------------------
# A random walk of operations against a simple model of the matcher
# --------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(st.sampled_from(["accept", "accept_bad", "eos", "rollback", "copy", "reset"]),
                              st.integers(0, 10_000)), max_size=40))
def test_random_operation_sequences(ops):
    """Drive a matcher with random operations; compare with a model: the list of accepted texts."""
    c = compiler("smollm2")
    pattern = "(ab|cd)*e?"
    g = c.compile_regex(pattern)
    import re

    m = g.matcher()
    model: list[str] = []  # accepted pieces, "<eos>" for EOS
    good = [tok1(c, s) for s in ["a", "b", "c", "d", "e", "ab", "cd"] if s.encode() in _by_bytes(c)]
    for op, n in ops:
        text = "".join(p for p in model if p != "<eos>")
        terminated = bool(model) and model[-1] == "<eos>"
        assert m.is_terminated() == terminated
        assert m.num_accepted() == len(model)
        assert m.is_accepting() == (re.fullmatch(pattern, text) is not None)
        if op == "accept":
            t = good[n % len(good)]
            piece = c.vocab.token_bytes[t].decode()
            viable = not terminated and any(re.fullmatch(pattern, text + piece + rest)
                                            for rest in ["", "b", "d", "e", "be", "de"])
            assert m.accept_token(t) == viable
            if viable:
                model.append(piece)
        elif op == "accept_bad":
            assert not m.accept_token(tok1(c, "z"))
        elif op == "eos":
            ok = not terminated and re.fullmatch(pattern, text) is not None
            assert m.accept_token(eos(c)) == ok
            if ok:
                model.append("<eos>")
        elif op == "rollback":
            k = n % (len(model) + 1)
            m.rollback(k)
            del model[len(model) - k:]
        elif op == "copy":
            m2 = m.copy()
            if n % 2:
                m2.reset()  # must not affect m
            else:
                m2.accept_token(good[0])
            if n % 3 == 0:
                m = m.copy()  # continue on a copy: same behaviour
        else:
            m.reset()
            model.clear()
