"""ConstrainLogitsProcessor on a toy vocabulary and a tiny random transformers model (no download).

Covers: per-row matchers, greedy / sampling / beam search / num_return_sequences through the
real ``model.generate``, reuse across calls, rollback when rows are cut back, finished rows.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import constrain
from constrain.integrations.transformers import ConstrainLogitsProcessor
from constrain.vocab import Vocabulary

TOKENS = [b"a", b"b", b"c", b"ab", b"ba", b"abc", b"0", b"1", b"2", b"12", b"-", b" ", b"x", b"yz"]
EOS = len(TOKENS)  # 14
PAD = EOS + 1  # 15: a special token without bytes
WIDTH = 24  # padded logits: ids 16..23 belong to no token


def _vocab():
    return Vocabulary(TOKENS + [None, None], size=WIDTH, eos_token_ids=[EOS], special_token_ids=[PAD])


@pytest.fixture(scope="module")
def compiler():
    return constrain.Compiler(_vocab())


def _text(ids):
    out = b""
    for t in ids:
        if t in (EOS, PAD):
            break
        out += TOKENS[t]
    return out.decode()


def _tiny_model(seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=WIDTH, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      bos_token_id=0, eos_token_id=EOS, pad_token_id=PAD)
    model = LlamaForCausalLM(cfg)
    model.eval()
    return model


def _allowed_after(grammar, ids):
    m = grammar.matcher()
    for t in ids:
        assert m.accept_token(t), ids
    return set(m.allowed_token_ids().tolist())


def test_masks_follow_each_row(compiler):
    g = compiler.compile_regex(r"(ab|c)+")
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    prompt = torch.tensor([[11, 12], [12, 11]])
    scores = proc(prompt, torch.zeros(2, WIDTH))
    start = _allowed_after(g, [])
    for r in range(2):
        assert set(torch.nonzero(torch.isfinite(scores[r])).flatten().tolist()) == start
    ids = torch.cat([prompt, torch.tensor([[3], [2]])], 1)  # "ab", "c"
    scores = proc(ids, torch.zeros(2, WIDTH))
    assert set(torch.nonzero(torch.isfinite(scores[0])).flatten().tolist()) == _allowed_after(g, [3])
    assert set(torch.nonzero(torch.isfinite(scores[1])).flatten().tolist()) == _allowed_after(g, [2])
    assert EOS in _allowed_after(g, [3])
    assert proc.prompt_length == 2


def test_finished_rows_only_eos_or_pad(compiler):
    g = compiler.compile_regex(r"c")
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    ids = torch.tensor([[11]])
    proc(ids, torch.zeros(1, WIDTH))
    ids = torch.tensor([[11, 2]])
    proc(ids, torch.zeros(1, WIDTH))
    ids = torch.tensor([[11, 2, EOS]])
    s = proc(ids, torch.zeros(1, WIDTH))
    assert set(torch.nonzero(torch.isfinite(s[0])).flatten().tolist()) == {EOS, PAD}
    assert proc.matchers[0].is_terminated()
    ids = torch.tensor([[11, 2, EOS, PAD]])
    s = proc(ids, torch.zeros(1, WIDTH))
    assert set(torch.nonzero(torch.isfinite(s[0])).flatten().tolist()) == {EOS, PAD}


def test_rejected_token_marks_row_dead(compiler):
    g = compiler.compile_regex(r"c+")
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    proc(torch.tensor([[11]]), torch.zeros(1, WIDTH))
    s = proc(torch.tensor([[11, 0]]), torch.zeros(1, WIDTH))  # "a" is not allowed
    assert proc.num_rejected == 1
    assert set(torch.nonzero(torch.isfinite(s[0])).flatten().tolist()) == {EOS, PAD}


def test_reuse_and_reset_detection(compiler):
    g = compiler.compile_regex(r"[0-9]{3}")
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    proc(torch.tensor([[11]]), torch.zeros(1, WIDTH))
    proc(torch.tensor([[11, 9]]), torch.zeros(1, WIDTH))  # "12"
    # new generation whose prompt happens to be one token longer than the last input
    s = proc(torch.tensor([[12, 11, 10]]), torch.zeros(1, WIDTH))
    assert proc.prompt_length == 3
    assert set(torch.nonzero(torch.isfinite(s[0])).flatten().tolist()) == _allowed_after(g, [])
    # same prompt again (a second generate call with the same input): starts over
    s = proc(torch.tensor([[12, 11, 10]]), torch.zeros(1, WIDTH))
    assert proc.matchers[0].num_accepted() == 0
    # a longer prompt that extends the previous input (a chat continuation): new generation
    proc(torch.tensor([[12, 11, 10, 6]]), torch.zeros(1, WIDTH))
    s = proc(torch.tensor([[12, 11, 10, 6, 9, 11, 7]]), torch.zeros(1, WIDTH))
    assert proc.prompt_length == 7 and proc.matchers[0].num_accepted() == 0
    assert set(torch.nonzero(torch.isfinite(s[0])).flatten().tolist()) == _allowed_after(g, [])
    # batch size change
    proc(torch.tensor([[1], [2]]), torch.zeros(2, WIDTH))
    assert len(proc.matchers) == 2 and proc.prompt_length == 1


def test_reorder_duplicate_and_cut_back(compiler):
    g = compiler.compile_regex(r"(ab|c)+")
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    proc(torch.tensor([[11], [11]]), torch.zeros(2, WIDTH))
    proc(torch.tensor([[11, 3], [11, 2]]), torch.zeros(2, WIDTH))
    # beam-style: both rows now continue row 1 ("c"), one with "ab", one with "c"
    s = proc(torch.tensor([[11, 2, 3], [11, 2, 2]]), torch.zeros(2, WIDTH))
    assert [m.num_accepted() for m in proc.matchers] == [2, 2]
    for r, ids in enumerate([[2, 3], [2, 2]]):
        assert set(torch.nonzero(torch.isfinite(s[r])).flatten().tolist()) == _allowed_after(g, ids)
    # assisted-generation-style cut back to one generated token, then a new one
    s = proc(torch.tensor([[11, 2], [11, 2]]), torch.zeros(2, WIDTH))
    assert [m.num_accepted() for m in proc.matchers] == [1, 1]
    s = proc(torch.tensor([[11, 2, 3], [11, 2, 2]]), torch.zeros(2, WIDTH))
    assert [m.num_accepted() for m in proc.matchers] == [2, 2]


def test_padded_logit_columns_masked(compiler):
    g = compiler.compile_regex(r"[a-z]+")
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    s = proc(torch.tensor([[11]]), torch.zeros(1, WIDTH))
    assert torch.isneginf(s[0, 16:]).all()


@pytest.mark.parametrize("mode", ["greedy", "sample", "beam", "multi"])
def test_generate_with_tiny_model(compiler, mode):
    pattern = r"(ab|c)+-[0-9]{1,3}"
    g = compiler.compile_regex(pattern)
    model = _tiny_model()
    proc = ConstrainLogitsProcessor(g, pad_token_id=PAD)
    prompt = torch.tensor([[11, 12, 13], [12, 12, 11]])
    kw = dict(max_new_tokens=20, eos_token_id=EOS, pad_token_id=PAD,
              logits_processor=[proc])
    if mode == "sample":
        kw.update(do_sample=True, temperature=1.5, top_k=0)
    elif mode == "beam":
        kw.update(num_beams=3, num_return_sequences=2, do_sample=False)
    elif mode == "multi":
        kw.update(do_sample=True, num_return_sequences=3, top_k=0)
    else:
        kw.update(do_sample=False)
    for seed in range(2):  # reuse of the processor across generate calls
        torch.manual_seed(seed)
        out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), **kw)
        gen = out[:, prompt.shape[1]:].tolist()
        n_rows = {"beam": 4, "multi": 6}.get(mode, 2)
        assert len(gen) == n_rows
        for row in gen:
            m = g.matcher()
            for t in row:
                if m.is_terminated():
                    assert t in (EOS, PAD)
                    continue
                assert m.accept_token(t), (mode, row)
            text = _text(row)
            # every prefix is viable; the rows that stopped are complete matches
            if EOS in row:
                assert re.fullmatch(pattern, text), (mode, text)
        if mode != "beam":
            assert proc.num_rejected == 0
