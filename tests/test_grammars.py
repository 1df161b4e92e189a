"""The ready-made grammars (constrain/grammars): each loads in Lark, accepts typical texts and
rejects near misses, and accepts sentences sampled from it; the GBNF versions define the same
languages as the Lark ones. Also ``constrain.grammars.load`` and the sampler's helpers."""

from __future__ import annotations

import functools
import json
import random
import re

import lark
import pytest

from constrain import grammars
from constrain.cfg.gbnf import parse_gbnf
from constrain.cfg.ir import Grammar, Lexeme, Rule
from constrain.cfg.sampler import SentenceSampler, mutate, sample_sentence

LARK = ["json", "arithmetic", "csv", "sql_select", "python_expr", "smiles"]
GBNF = ["json", "arithmetic", "csv", "smiles"]
SAMPLES = 300
# Lark's Earley parser is slow on long texts: keep the sentences short.
MAX_LEXEMES = {"sql_select": 16, "python_expr": 12, "smiles": 20}


@functools.cache
def lark_parser(text: str) -> lark.Lark:
    return lark.Lark(text, parser="earley", lexer="dynamic_complete")


def accepts(text: str, sentence: str) -> bool:
    try:
        lark_parser(text).parse(sentence)
    except lark.exceptions.LarkError:
        return False
    return True


@functools.cache
def grammar_of_lark(text: str) -> Grammar:
    """The IR of a Lark grammar, read off the rules and terminals that Lark compiled."""
    parser = lark_parser(text)
    lexemes = {}
    for terminal in parser.terminals:
        pattern = terminal.pattern
        if pattern.type == "re":
            assert not pattern.flags, terminal
            regex = pattern.value
        else:  # a string, perhaps case-insensitive ("select"i)
            fold = "i" in pattern.flags
            regex = "".join(f"[{c.lower()}{c.upper()}]" if fold and c.lower() != c.upper() else re.escape(c)
                            for c in pattern.value)
        lexemes[terminal.name] = Lexeme(terminal.name, regex)
    rules = tuple(Rule(str(r.origin.name), tuple(str(s.name) for s in r.expansion)) for r in parser.rules)
    return Grammar(lexemes, rules, "start", tuple(parser.ignore_tokens))


def lark_of_grammar(grammar: Grammar) -> str:
    """A Lark grammar for the IR ``grammar`` (symbols renamed to Lark's conventions)."""
    names = {n: f"r{i}" for i, n in enumerate(grammar.nonterminals)}
    names.update({n: f"T{i}" for i, n in enumerate(grammar.lexemes)})
    lines = [f"start: {names[grammar.start]}"]
    for nt in grammar.nonterminals:
        lines.append(f"{names[nt]}: " + " | ".join(" ".join(names[s] for s in r.rhs) for r in grammar.rules_of(nt)))
    for name, lexeme in grammar.lexemes.items():
        slashed = lexeme.pattern.replace("/", "\\/")
        lines.append(f"{names[name]}: /{slashed}/")
    lines += [f"%ignore {names[n]}" for n in grammar.ignore]
    return "\n".join(lines)


def samples(grammar: Grammar, name: str, seed: int) -> list[str]:
    sampler = SentenceSampler(grammar, max_lexemes=MAX_LEXEMES.get(name, 30))
    rng = random.Random(seed)
    return [sampler.sample(rng) for _ in range(SAMPLES)]


# -- the package ----------------------------------------------------------------------------------


def test_names_and_load():
    assert grammars.names("lark") == sorted(LARK)
    assert grammars.names("gbnf") == sorted(GBNF)
    assert grammars.load("json") == grammars.path("json").read_text()
    assert grammars.load("csv", "gbnf").startswith("# CSV")


def test_unknown_names_list_the_available_ones():
    with pytest.raises(ValueError, match="no lark grammar 'yaml'; available: arithmetic, csv, json"):
        grammars.load("yaml")
    with pytest.raises(ValueError, match="available: arithmetic, csv, json, smiles$"):
        grammars.path("sql_select", "gbnf")
    with pytest.raises(ValueError, match="unknown grammar dialect 'ebnf'"):
        grammars.load("json", "ebnf")


# -- typical texts ------------------------------------------------------------------------------

EXAMPLES = {
    "json": (['{"a": [1, 2.5e-3, -0, true, false, null], "b": {"c": "x\\n\\u00e9\\/"}}', " [] ", '"é"'],
             ['{"a":01}', "[1,]", '"\t"', "{'a':1}", "[1 2]", '"\\x41"', "+1", "nul"]),
    "arithmetic": (["1 + 2 * (3 - -4) / 5", "--1", "1.5*2", "(((1)))", " 7 "],
                   ["1 +", "1 2", "1.", "()", "2**3"]),
    "csv": (['a,b,c\r\n1,"x, ""y""",3\n', "", "a", '"multi\nline",x', ",,\n"],
            ['"a"b', 'a"b', '"unterminated', 'x,"y"z']),
    "sql_select": (["SELECT a, b AS x, COUNT(*) FROM t WHERE a = 1 AND NOT b IS NULL ORDER BY a DESC LIMIT 10;",
                    "select distinct t.a, sum(b) total from t1 as t left outer join t2 u on t.id = u.id "
                    "group by t.a having count(distinct u.x) > 2",
                    "SELECT * FROM t WHERE x IN (1, 2) OR y BETWEEN 1 AND 3 OR z NOT LIKE 'a%'",
                    "SELECT a FROM (SELECT a FROM t) AS s WHERE (a + 1) * 2 >= 3 LIMIT 5 OFFSET 10"],
                   ["SELECTaFROMt", "SELECT a FROMt", "SELECT a FROM t WHEREa=1", "select a from t order bya",
                    "SELECT FROM t", "SELECT a FROM t LIMIT x"]),
    "python_expr": (["a.b(c, d=1, *e, **f)[1:2, ::3]", "not x and y or z", "x if y else z", "-x ** 2 + 3 // 4 % 5",
                     "{'a': [1, 2.0, .5e3]}", "f()", "(1,)", "a < b <= c != d", "x not in y", "a is not None",
                     "'s' \"t\"", "0x1F | 7 ^ 3 & ~1 << 2", "{1, 2}"],
                    ["x if y elsez", "a andb", "1.real", "x if y", "a b", "007", "lambda: 1", "f(", "a.1"]),
    "smiles": (["CCO", "c1ccccc1", "C(=O)O", "[13CH4]", "[NH4+]", "C[C@@H](O)C(=O)O", "[Na+].[Cl-]", "C%12CC%12",
                "F/C=C/F", "[Fe+2]", "[se]1cccc1", "Br[Br]", "[O--]", "[C@TB12]"],
               ["C(", "[C", "Xx", "[CH4", "1CC", "C(C)(", "[Q]", "C%1", "()"]),
}


@pytest.mark.parametrize("name", LARK)
def test_lark_grammar_accepts_typical_texts(name):
    text = grammars.load(name)
    good, bad = EXAMPLES[name]
    assert [s for s in good if not accepts(text, s)] == []
    assert [s for s in bad if accepts(text, s)] == []


@pytest.mark.parametrize("name", GBNF)
def test_gbnf_grammar_accepts_the_same_typical_texts(name):
    text = lark_of_grammar(parse_gbnf(grammars.load(name, "gbnf")))
    good, bad = EXAMPLES[name]
    assert [s for s in good if not accepts(text, s)] == []
    assert [s for s in bad if accepts(text, s)] == []


# -- sampled sentences --------------------------------------------------------------------------


@pytest.mark.parametrize("name", LARK)
def test_lark_grammar_accepts_its_samples(name):
    text = grammars.load(name)
    sentences = samples(grammar_of_lark(text), name, seed=1)
    assert len(set(sentences)) > SAMPLES // 3
    assert [s for s in sentences if not accepts(text, s)] == []


@pytest.mark.parametrize("name", GBNF)
def test_gbnf_samples_are_in_the_lark_language(name):
    sentences = samples(parse_gbnf(grammars.load(name, "gbnf")), name, seed=2)
    assert [s for s in sentences if not accepts(grammars.load(name), s)] == []


@pytest.mark.parametrize("name", GBNF)
def test_lark_samples_are_in_the_gbnf_language(name):
    sentences = samples(grammar_of_lark(grammars.load(name)), name, seed=3)
    gbnf = lark_of_grammar(parse_gbnf(grammars.load(name, "gbnf")))
    assert [s for s in sentences if not accepts(gbnf, s)] == []


def test_json_samples_are_json():
    for grammar in (grammar_of_lark(grammars.load("json")), parse_gbnf(grammars.load("json", "gbnf"))):
        for s in samples(grammar, "json", seed=4):
            json.loads(s)


@pytest.mark.parametrize("name", GBNF)
def test_lark_and_gbnf_agree_on_near_misses(name):
    lark_text = grammars.load(name)
    gbnf = lark_of_grammar(parse_gbnf(grammars.load(name, "gbnf")))
    rng = random.Random(5)
    rejected = 0
    for s in samples(grammar_of_lark(lark_text), name, seed=5)[:100]:
        try:
            text = mutate(s, rng).decode("utf-8")
        except UnicodeDecodeError:
            continue
        verdict = accepts(lark_text, text)
        assert accepts(gbnf, text) == verdict, text
        if name == "json":
            assert _is_json(text) == verdict, text
        rejected += not verdict
    assert rejected > 10


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# -- the sampler ----------------------------------------------------------------------------------


def test_sample_sentence_is_seeded_and_bounded():
    grammar = grammar_of_lark(grammars.load("arithmetic"))
    first = [sample_sentence(grammar, random.Random(7), max_lexemes=8) for _ in range(3)]
    assert first == [sample_sentence(grammar, random.Random(7), max_lexemes=8)] * 3
    lengths = [len(sample_sentence(grammar, random.Random(i), max_lexemes=8, ignore_prob=0)) for i in range(50)]
    assert max(lengths) < 8 * 24


def test_sampler_skips_unproductive_rules_and_ends_recursion():
    grammar = Grammar({"A": Lexeme("A", "a")},
                      (Rule("s", ("s", "s")), Rule("s", ("A",)), Rule("s", ("dead",)), Rule("dead", ("dead", "A"))),
                      "s")
    for i in range(20):
        assert re.fullmatch("a+", sample_sentence(grammar, random.Random(i), max_depth=5))


def test_mutate_changes_one_byte():
    rng = random.Random(0)
    for _ in range(200):
        out = mutate("héllo", rng)
        before = "héllo".encode()
        assert out != before and abs(len(out) - len(before)) <= 1
    assert len(mutate(b"", rng)) == 1


def test_sampled_sentences_do_not_depend_on_what_was_built_before():
    """The sampler walks lexeme automata whose state ids depend on the store's history (lowered
    patterns are rebuilt from a cache shared across stores): the same seed must give the same
    sentences either way."""
    from constrain import regex as regex_module

    def sentences() -> list[str]:
        sampler = SentenceSampler(grammar_of_lark(grammars.load("csv")), max_lexemes=30)
        rng = random.Random(5)
        return [sampler.sample(rng) for _ in range(20)]

    regex_module._PORTABLE.clear()
    lowered = sentences()
    assert regex_module._PORTABLE  # the csv patterns are cached now
    assert sentences() == lowered
