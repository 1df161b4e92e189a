"""The GBNF front end: syntax, lowering to the IR (collapsed regular rules, helper rules for
repetitions), and errors with the rule and line:column."""

from __future__ import annotations

import itertools
import json
import random
import re

import pytest

from constrain import grammars
from constrain.cfg.gbnf import parse_gbnf
from constrain.cfg.ir import Grammar, Rule
from constrain.cfg.lexemes import lexeme_term
from constrain.errors import GrammarError
from constrain.terms import TermStore
from tests.test_grammars import accepts, lark_of_grammar


def language(gbnf: str, texts) -> set[str]:
    """The texts of ``texts`` that the grammar accepts (checked by Lark on the IR)."""
    lark_text = lark_of_grammar(parse_gbnf(gbnf))
    return {t for t in texts if accepts(lark_text, t)}


def words(alphabet: str, up_to: int) -> list[str]:
    return ["".join(w) for n in range(up_to + 1) for w in itertools.product(alphabet, repeat=n)]


def only_lexeme(grammar: Grammar) -> str:
    (lexeme,) = grammar.lexemes.values()
    return lexeme.pattern


# -- syntax -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, pattern", [
    ('"a" [b-d]+ "\\n"', "a[b-d]+\\x0a"),
    ('"\\x41\\u00e9\\U0001F600\\t\\"\\\\\\[\\]"', 'Aé😀\\x09"\\\\\\[\\]'),
    ('"ab"{2,3} "c"{2} "d"{1,} "e"{0,}', "(?:ab){2,3}c{2}d+e*"),
    ('("a" | "b" | [c-e]) "x"?', "[a-e]x?"),
    ('("ab" | "cd")* "."', "(?:ab|cd)*\\."),
    ('[\\]^-]', "[\\-\\]\\^]"),
    ('[a-]', "[\\-a]"),
    ('[ -~]', "[ -~]"),
])
def test_regular_start_rule_is_one_lexeme(body, pattern):
    g = parse_gbnf(f"root ::= {body}")
    assert only_lexeme(g) == pattern
    assert g.rules == (Rule("root", tuple(g.lexemes)),)


def test_classes_dot_and_escapes_mean_what_llama_cpp_says():
    def matches(body: str, text: str) -> bool:
        return re.fullmatch(only_lexeme(parse_gbnf(f"root ::= {body}")), text) is not None

    assert matches(".", "\n") and matches(".", "😀") and not matches(".", "ab")
    assert matches("[^a-z\\]]", "A") and matches("[^a-z\\]]", "\n")
    assert not matches("[^a-z\\]]", "q") and not matches("[^a-z\\]]", "]")
    assert matches("[\\x00-\\x1f]", "\x1f") and not matches("[\\x00-\\x1f]", " ")
    assert matches('"\\r\\n"', "\r\n")


def test_comments_line_breaks_and_multi_line_rules():
    text = ("# a comment\r\n\r\n"
            "root ::= (   # inside parentheses a rule goes on\n"
            '   "a" |\n'
            '   "b"\n'
            ") tail\n"
            "tail ::=\n"
            '  "c" |  # after ::= and after | as well\n'
            '  "d"\n'
            "\n# trailing comment")
    assert language(text, words("abcd", 2)) == {"ac", "ad", "bc", "bd"}


def test_a_rule_ends_at_a_line_break():
    with pytest.raises(GrammarError, match="at line 2, column 3"):
        parse_gbnf('root ::= "a"\n  "b"')


def test_start_rule_can_be_chosen():
    g = parse_gbnf('doc ::= item+\nitem ::= "x"', start="doc")
    assert g.start == "doc" and only_lexeme(g) == "x+"


# -- collapsing ---------------------------------------------------------------------------------


def test_json_strings_and_numbers_become_lexemes():
    g = parse_gbnf(grammars.load("json", "gbnf"))
    assert {"string", "number", "ws"} <= set(g.lexemes)
    assert {"root", "value", "object", "array", "member"} <= set(g.nonterminals)
    assert not {"string", "number", "ws"} & set(g.nonterminals)
    rng = random.Random(0)
    for _ in range(200):
        s = "".join(chr(rng.choice([rng.randrange(0x20), rng.randrange(0x20, 0x80), rng.randrange(0x80, 0xD800)]))
                    for _ in range(rng.randrange(6)))
        assert re.fullmatch(g.lexemes["string"].pattern, json.dumps(s, ensure_ascii=rng.random() < 0.5))
        number = json.dumps(rng.choice([rng.randrange(-10**6, 10**6), rng.uniform(-1e30, 1e30)]))
        assert re.fullmatch(g.lexemes["number"].pattern, number)
    for bad in ['"\\x"', '"\t"', '"a', "01", "1.", "-", "1e", ".5"]:
        assert not re.fullmatch(g.lexemes["string"].pattern, bad) and not re.fullmatch(g.lexemes["number"].pattern, bad)


def test_regular_runs_merge_into_one_lexeme():
    g = parse_gbnf('root ::= "[" ws item ws "]"\nitem ::= "x" | root\nws ::= " "*')
    assert g.rules_of("root") == (Rule("root", ("root#1", "item", "root#2")),)
    assert g.lexemes["root#1"].pattern == "\\[ *" and g.lexemes["root#2"].pattern == " *\\]"


def test_nullable_regular_parts_become_optional_lexemes():
    g = parse_gbnf('root ::= ws "x" root ws | ""\nws ::= [ \\t]*')
    assert g.lexemes["ws"].pattern == "[\\x09 ]+"
    assert set(g.rules_of("ws?")) == {Rule("ws?", ()), Rule("ws?", ("ws",))}
    assert language(grammars.load("csv", "gbnf"), ["", "\n", "a", '""']) == {"", "\n", "a", '""'}


def test_recursive_rules_stay_rules():
    g = parse_gbnf('root ::= a\na ::= "x" b | "y"\nb ::= "(" a ")"')
    assert set(g.nonterminals) == {"root", "a", "b"}
    assert language('root ::= a\na ::= "x" b | "y"\nb ::= "(" a ")"', words("xy()", 5)) == {"y", "x(y)"}


@pytest.mark.parametrize("quantifier, counts", [
    ("*", {0, 1, 2, 3}), ("+", {1, 2, 3}), ("?", {0, 1}), ("{2}", {2}), ("{2,}", {2, 3}), ("{1,3}", {1, 2, 3}),
    ("{0,2}", {0, 1, 2}),
])
def test_repetitions_of_rules_that_are_not_regular(quantifier, counts):
    text = f'root ::= item{quantifier}\nitem ::= "(" item* ")"'
    assert all(r.lhs in ("root", "item") or "#" in r.lhs for r in parse_gbnf(text).rules)
    assert language(text, ["()" * n for n in range(4)]) == {"()" * n for n in counts}


def test_random_regular_grammars_match_python_regexes():
    """Lowering (simplification, nullable parts, rendering) against a direct translation."""
    rng = random.Random(0)
    texts = words("ab", 5)
    for _ in range(150):
        gbnf, regex = _random_expression(rng, 3)
        g = parse_gbnf(f"root ::= {gbnf}")
        (rule,) = g.rules_of("root")
        assert len(rule.rhs) <= 1
        for lexeme in g.lexemes.values():
            lexeme_term(TermStore(), lexeme)  # the engine takes the pattern
        pattern = next(iter(g.lexemes.values())).pattern if g.lexemes else "(?!)"
        nullable = not rule.rhs or rule.rhs[0].endswith("?")
        got = {t for t in texts if re.fullmatch(pattern, t) or (nullable and t == "")}
        assert got == {t for t in texts if re.fullmatch(regex, t)}, (gbnf, pattern)


def _random_expression(rng: random.Random, depth: int) -> tuple[str, str]:
    """A GBNF expression over {a, b} and the same language as a Python regex."""
    kind = rng.randrange(6) if depth else rng.randrange(2)
    if kind == 0:
        word = "".join(rng.choice("ab") for _ in range(rng.randrange(3)))
        return f'"{word}"', f"(?:{word})"
    if kind == 1:
        return rng.choice([("[ab]", "[ab]"), ("[^b]", "[^b]"), ("[a-a]", "a"), (".", "(?s:.)")])
    parts = [_random_expression(rng, depth - 1) for _ in range(rng.randrange(1, 4))]
    if kind == 2:
        return "(" + " ".join(g for g, _ in parts) + ")", "(?:" + "".join(r for _, r in parts) + ")"
    if kind == 3:
        return "(" + " | ".join(g for g, _ in parts) + ")", "(?:" + "|".join(r for _, r in parts) + ")"
    quant = rng.choice(["*", "+", "?", "{2}", "{0,2}", "{1,}"])
    gbnf, regex = parts[0]
    return f"({gbnf}){quant}", f"(?:{regex}){quant}"


@pytest.mark.parametrize("name", grammars.names("gbnf"))
def test_every_lexeme_lowers_to_a_byte_term(name):
    store = TermStore()
    for lexeme in parse_gbnf(grammars.load(name, "gbnf")).lexemes.values():
        lexeme_term(store, lexeme)


def test_unused_rules_are_left_out():
    g = parse_gbnf('root ::= "(" root ")" | "x"\nunused ::= "(" unused ")" | "y"')
    assert set(g.nonterminals) == {"root"}


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message, rule, line, column", [
    ('root ::= "a" @', "unexpected character '@'", "root", 1, 14),
    ('root ::= "a"\nx ::= "b" | ( "c"', "unexpected end of the grammar", "x", 2, 18),
    ('root ::= *', "unexpected '\\*'", "root", 1, 10),
    ('root ::= "abc', "unexpected character '\"'", "root", 1, 10),
    ('root ::= x\nx ::= "a" \\\n', "unexpected character", "x", 2, 11),
    ('root ::= foo bar\nfoo ::= "x"', "undefined rule 'bar'", "root", 1, 14),
    ('root ::= "a"\nword ::= "a\\q"', "unknown escape \\\\q", "word", 2, 12),
    ('root ::= "\\x4"', "unknown escape \\\\x at", "root", 1, 11),
    ('root ::= [\\U00110000]', "not a Unicode scalar value", "root", 1, 11),
    ('root ::= [^\\x00-\\U0010FFFF]', "matches no character", "root", 1, 10),
    ('root ::= [z-a]', "bad character range", "root", 1, 10),
    ('root ::= "a"{3,2}', "maximum below its minimum", "root", 1, 13),
    ('root ::= "a"{2001}', "above 2000", "root", 1, 13),
    ('root ::= "a"\nroot ::= "b"', "defined twice", "root", 2, 1),
])
def test_errors_carry_rule_and_line_column(text, message, rule, line, column):
    with pytest.raises(GrammarError, match=message) as info:
        parse_gbnf(text)
    assert info.value.rule == rule
    assert f"at line {line}, column {column}" in str(info.value)
    offset = info.value.position
    assert text.count("\n", 0, offset) + 1 == line


def test_missing_start_rule_and_empty_language():
    with pytest.raises(GrammarError, match="no start rule 'root'") as info:
        parse_gbnf('value ::= "x"')
    assert info.value.rule == "root"
    with pytest.raises(GrammarError, match="empty language") as info:
        parse_gbnf('root ::= "a" root')
    assert info.value.rule == "root"
