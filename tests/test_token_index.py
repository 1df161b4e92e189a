"""The vectorized trie walk and the string-body shortcut agree with a token-by-token check."""

import numpy as np
import pytest

import constrain
from constrain.automaton import DEAD
from constrain.token_index import PLAIN_START_BYTES
from tests.tokenizers import load_tokenizer


@pytest.fixture(scope="module")
def compiler():
    return constrain.Compiler(load_tokenizer("smollm2"))


def _brute_force(grammar, sid):
    dfa = grammar.dfa
    out = []
    for tid, data in enumerate(grammar.vocab.token_bytes):
        if data and tid not in grammar.eos_ids and dfa.step(sid, data) != DEAD:
            out.append(tid)
    return np.asarray(out)


SCHEMAS = [
    {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                      "tags": {"type": "array", "items": {"type": "string"}}},
     "required": ["name"]},
    {"type": "string", "pattern": "^[a-z]+-[0-9]{2}$"},
    {"type": "array", "items": {"type": "integer", "minimum": -3, "maximum": 250}, "maxItems": 4},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_masks_equal_brute_force_along_an_instance(compiler, schema):
    grammar = compiler.compile_json_schema(schema)
    instance = {0: '{"name": "Ada Lovelace", "tags": ["x", "y\\"z"]}', 1: '"abc-42"', 2: "[1, -3, 250]"}[
        SCHEMAS.index(schema)]
    m = grammar.matcher()
    shortcut_used = False
    for tid in compiler.vocab.token_bytes and load_tokenizer("smollm2").encode(instance, add_special_tokens=False):
        key = grammar.dfa.mask_key(m.state, grammar.lookahead)
        if grammar.store.repeated_head(grammar.dfa.term_of[key], grammar._json_char, PLAIN_START_BYTES):
            shortcut_used = True
        got = np.sort(grammar._allowed(key))
        assert np.array_equal(got, _brute_force(grammar, key))
        assert np.array_equal(np.sort(grammar.trie.allowed_tokens(grammar.dfa, key)), got)
        assert m.accept_token(tid)
    assert m.is_accepting()
    if SCHEMAS.index(schema) == 0:
        assert shortcut_used
