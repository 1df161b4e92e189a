"""compile_regex against Python's ``re.fullmatch``, token by token, on real tokenizers.

Regexes are generated as small ASTs (literals written in every escape form, classes, ``.``,
quantifiers, alternation, groups) and rendered to pattern text; strings are drawn at random from a
small alphabet and *from the regex itself* (so that many match), and mutated (so that many nearly
match). Each string is fed to a matcher in its canonical tokenization and in a random other one
(any token sequence whose bytes concatenate to the string is a valid tokenization). At every step
the bitmask and ``allowed_token_ids`` must agree exactly, special tokens must be blocked and EOS
allowed exactly when the text so far is a complete match.
"""

from __future__ import annotations

import functools
import json
import random
import re
import time
import unicodedata
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import constrain
from constrain import charset as cs
from constrain.automaton import DEAD, LazyDFA
from constrain.regex import Encoding, Lowering
from constrain.regex_parser import has_lazy_quantifier, parse
from constrain.terms import TermStore
from tests.tokenizers import TokenizerUnderTest

TOKENIZERS = ["smollm2", "llama3.2"]

# The random-string alphabet: ASCII letters, a non-ASCII letter (2 bytes), a CJK letter (3 bytes),
# an emoji (4 bytes), a newline (which `.` excludes) and a metacharacter.
ALPHABET = ["a", "b", "c", "é", "中", "😀", "\n", "."]
# Extra characters that classes and `.` may produce in generated strings (digits of other scripts,
# Unicode spaces, `_` for \w, a tab).
EXTRAS = ["z", "1", "٣", " ", "\t", "_", "\u00a0", "Ω", "-"]
CANDIDATES = ALPHABET + EXTRAS


# --------------------------------------------------------------------------------------------------
# Shared helpers: compilers, tokenizations, a checked feed
# --------------------------------------------------------------------------------------------------


class Tok(TokenizerUnderTest):
    """A tokenizer, its compiler and what random tokenizations need."""

    def tokenizations(self, text: str, rnd: random.Random) -> list[list[int]]:
        return [self.canonical(text), self.random_tokens(text.encode(), rnd)]


@functools.lru_cache(maxsize=None)
def get_tok(name: str) -> Tok:
    return Tok(name)


def bit(row: np.ndarray, t: int) -> bool:
    return bool((int(row[t // 32]) >> (t % 32)) & 1)


def check_mask(tok: Tok, m: constrain.Matcher) -> tuple[np.ndarray, set]:
    """The bitmask equals allowed_token_ids; specials blocked; EOS allowed iff accepting."""
    row = constrain.allocate_token_bitmask(1, tok.vocab.size)[0]
    row[:] = 0x5A5A5A5A  # garbage that fill_bitmask must overwrite
    m.fill_bitmask(row)
    allowed = m.allowed_token_ids()
    bits = np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little"))
    assert np.array_equal(bits, allowed), "bitmask bits differ from allowed_token_ids"
    assert allowed.size == 0 or allowed[-1] < tok.vocab.size
    specials_allowed = set(allowed[tok.is_special[allowed]].tolist())
    if m.is_terminated():
        assert specials_allowed == set(tok.eos_ids) and len(allowed) == len(tok.eos_ids)
    elif m.is_accepting():
        assert specials_allowed == set(tok.eos_ids)
    else:
        assert specials_allowed == set()
    return row, set(allowed.tolist())


def feed(tok: Tok, m: constrain.Matcher, ids: list[int], *, full_check: bool = True) -> bool:
    """Feed ``ids`` one by one, checking the mask before each; return whether all were accepted.

    A token is accepted exactly when its mask bit is set; a rejected token leaves the matcher as it
    was.
    """
    for t in ids:
        if full_check:
            row, allowed = check_mask(tok, m)
            in_mask = bit(row, t)
            assert in_mask == (t in allowed)
        else:
            row = constrain.allocate_token_bitmask(1, tok.vocab.size)[0]
            m.fill_bitmask(row)
            in_mask = bit(row, t)
        before = (m.num_accepted(), m.state, m.is_accepting())
        ok = m.accept_token(t)
        assert ok == in_mask, f"accept_token({t}) returned {ok} but mask bit is {in_mask}"
        if not ok:
            assert (m.num_accepted(), m.state, m.is_accepting()) == before
            return False
    return True


def random_walk(tok: Tok, grammar, rnd: random.Random, max_steps: int = 40) -> bytes | None:
    """Sample a text from the masks (random allowed tokens, EOS now and then); None if it ran long.

    Every live state must allow something: a byte-level vocabulary can always spell a completion.
    """
    m = grammar.matcher()
    out = []
    eos = tok.eos
    for _ in range(max_steps):
        allowed = m.allowed_token_ids()
        assert len(allowed), f"dead end after {b''.join(out)!r} in {grammar.source!r}"
        if m.is_accepting() and rnd.random() < 0.4:
            t = eos
        else:
            short = allowed[allowed < 512] if rnd.random() < 0.5 else allowed  # favour short tokens
            pool = short if len(short) else allowed
            t = int(pool[rnd.randrange(len(pool))])
        assert m.accept_token(t)
        if t == eos:
            return b"".join(out)
        out.append(tok.vocab.token_bytes[t])
    return None


def check_walks(tok: Tok, grammar, pattern: str, rnd: random.Random, n: int) -> None:
    """Whatever the masks let through is a full match (soundness of the masks themselves)."""
    for _ in range(n):
        data = random_walk(tok, grammar, rnd)
        if data is not None:
            text = data.decode("utf-8")
            assert re.fullmatch(pattern, text), (pattern, text)


def assert_compile_regex_is_fullmatch(tok_name: str, pattern: str, strings: list[str]) -> None:
    """compile_regex's verdict equals re.fullmatch's on every string, in several tokenizations."""
    tok = get_tok(tok_name)
    grammar = tok.compiler.compile_regex(pattern)
    rnd = random.Random(0)
    for s in strings:
        expected = re.fullmatch(pattern, s) is not None
        for ids in tok.tokenizations(s, rnd):
            check_string(tok, grammar, s, ids, expected)


def check_string(tok: Tok, grammar, text: str, ids: list[int], expected: bool, *, full_check=True) -> None:
    m = grammar.matcher()
    fed = feed(tok, m, ids, full_check=full_check)
    if expected:
        assert fed, f"a token of {text!r} was rejected ({grammar.source!r}, ids {ids})"
        assert m.is_accepting(), f"{text!r} should be a complete match of {grammar.source!r}"
        row, allowed = check_mask(tok, m) if full_check else (None, None)
        eos = tok.eos
        if full_check:
            assert eos in allowed
        assert m.accept_token(eos) and m.is_terminated()
        if full_check:
            check_mask(tok, m)
    else:
        assert not (fed and m.is_accepting()), f"{text!r} wrongly accepted by {grammar.source!r}"
        if fed:
            assert not m.accept_token(tok.eos) and not m.is_terminated()


# --------------------------------------------------------------------------------------------------
# Regex ASTs: generation, rendering, sampling
# --------------------------------------------------------------------------------------------------
# ("lit", ch) | ("cls", items, negated) | ("esc", "d"|"w"|...) | ("dot",) | ("cat", [n...])
# | ("alt", [n...]) | ("rep", n, lo, hi|None, form, lazy) | ("grp", n, kind)
# | ("flags", n, on, off) (a scoped (?on-off:...)) | ("look", "="|"!"|"<="|"<!", atom)
# | ("anchor", "^"|"$"|"\\A"|"\\Z"|"\\b"|"\\B")
# class items: ("ch", c) | ("range", a, b) | ("esc", "d"|...)


def render_literal(c: str, form: int, in_class: bool = False) -> str:
    cp = ord(c)
    forms = []
    if c == "\n":
        forms.append("\\n")
    else:
        forms.append(re.escape(c) if not in_class else ("\\" + c if c in "\\]^-[" else c))
    if cp < 0x100:
        forms.append(f"\\x{cp:02x}")
    if cp < 0x10000:
        forms.append(f"\\u{cp:04X}")
    forms.append(f"\\U{cp:08x}")
    try:
        forms.append("\\N{%s}" % unicodedata.name(c))
    except ValueError:
        pass
    if cp < 0o100:
        forms.append(f"\\0{cp:o}")
    if c == "\n":
        forms.append("\n")  # a raw newline is a literal newline
    return forms[form % len(forms)]


def render(node, counter=None) -> str:
    if counter is None:
        counter = [0]
    kind = node[0]
    if kind == "lit":
        return render_literal(node[1], node[2])
    if kind == "dot":
        return "."
    if kind == "esc":
        return "\\" + node[1]
    if kind == "cls":
        parts = []
        for item in node[1]:
            if item[0] == "ch":
                parts.append(render_literal(item[1], item[2], in_class=True))
            elif item[0] == "range":
                parts.append(f"{render_literal(item[1], 0, True)}-{render_literal(item[2], 0, True)}")
            else:
                parts.append("\\" + item[1])
        return "[" + ("^" if node[2] else "") + "".join(parts) + "]"
    if kind == "cat":
        return "".join(render(n, counter) for n in node[1])
    if kind == "alt":
        return "|".join(render(n, counter) for n in node[1])
    if kind == "flags":
        return f"(?{node[2]}{'-' + node[3] if node[3] else ''}:{render(node[1], counter)})"
    if kind == "look":
        return f"(?{node[1]}{render(node[2], counter)})"
    if kind == "anchor":
        return node[1]
    if kind == "grp":
        inner = render(node[1], counter)
        if node[2] == "cap":
            return f"({inner})"
        if node[2] == "nocap":
            return f"(?:{inner})"
        counter[0] += 1
        return f"(?P<g{counter[0]}>{inner})"
    if kind == "rep":
        child = node[1]
        inner = render(child, counter)
        if child[0] in ("cat", "alt", "rep", "anchor"):  # Python repeats no bare anchor: ^* is an error
            inner = f"(?:{inner})"
        lo, hi, form, lazy = node[2], node[3], node[4], node[5]
        if form == "*":
            q = "*"
        elif form == "+":
            q = "+"
        elif form == "?":
            q = "?"
        elif hi is None:
            q = "{%d,}" % lo
        elif lo == hi and form == "{m}":
            q = "{%d}" % lo
        elif lo == 0 and form == "{,n}":
            q = "{,%d}" % hi
        else:
            q = "{%d,%d}" % (lo, hi)
        return inner + q + ("?" if lazy else "")
    raise AssertionError(node)


def _matching_chars(node) -> list[str]:
    """Candidate characters matched by a one-character node (decided by Python's re)."""
    rx = re.compile(render(node))
    return [c for c in CANDIDATES if rx.fullmatch(c)]


def sample(node, rnd: random.Random) -> str:
    """A random string generated from the AST (it matches unless a class matches no candidate)."""
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind in ("dot", "esc", "cls"):
        chars = _matching_chars(node)
        return rnd.choice(chars) if chars else "\U0001F600"
    if kind == "cat":
        return "".join(sample(n, rnd) for n in node[1])
    if kind == "alt":
        return sample(rnd.choice(node[1]), rnd)
    if kind in ("grp", "flags"):
        return sample(node[1], rnd)
    if kind in ("look", "anchor"):
        return ""
    if kind == "rep":
        lo, hi = node[2], node[3]
        n = rnd.randint(lo, lo + 3 if hi is None else hi)
        return "".join(sample(node[1], rnd) for _ in range(n))
    raise AssertionError(node)


def mutate(s: str, rnd: random.Random) -> str:
    chars = list(s)
    op = rnd.randrange(4)
    if op == 0 or not chars:
        chars.insert(rnd.randint(0, len(chars)), rnd.choice(CANDIDATES))
    elif op == 1:
        del chars[rnd.randrange(len(chars))]
    elif op == 2:
        chars[rnd.randrange(len(chars))] = rnd.choice(CANDIDATES)
    else:
        i = rnd.randrange(len(chars))
        chars.insert(i, chars[i])
    return "".join(chars)


literal_st = st.builds(lambda c, f: ("lit", c, f), st.sampled_from(ALPHABET), st.integers(0, 7))
shorthand = st.sampled_from(["d", "w", "s", "D", "W", "S"])
class_item = st.one_of(
    st.builds(lambda c, f: ("ch", c, f), st.sampled_from(ALPHABET), st.integers(0, 7)),
    st.sampled_from([("range", "a", "b"), ("range", "a", "é"), ("range", "b", "😀"), ("range", "\n", "a"),
                     ("range", "é", "中")]),
    st.builds(lambda e: ("esc", e), shorthand),
)
class_st = st.builds(lambda items, neg: ("cls", items, neg), st.lists(class_item, min_size=1, max_size=4),
                     st.booleans())
atom_st = st.one_of(literal_st, literal_st, class_st, st.just(("dot",)), st.builds(lambda e: ("esc", e), shorthand))


@st.composite
def rep_of(draw, children):
    child = draw(children)
    form = draw(st.sampled_from(["*", "+", "?", "{m}", "{m,n}", "{m,}", "{,n}"]))
    if form == "*":
        lo, hi = 0, None
    elif form == "+":
        lo, hi = 1, None
    elif form == "?":
        lo, hi = 0, 1
    elif form == "{m}":
        lo = hi = draw(st.integers(0, 3))
    elif form == "{m,}":
        lo, hi = draw(st.integers(0, 3)), None
    elif form == "{,n}":
        lo, hi = 0, draw(st.integers(0, 3))
    else:
        lo = draw(st.integers(0, 3))
        hi = draw(st.integers(lo, lo + 3))
    return ("rep", child, lo, hi, form, draw(st.booleans()))


def extend(children):
    return st.one_of(
        st.builds(lambda ns: ("cat", ns), st.lists(children, min_size=0, max_size=4)),
        st.builds(lambda ns: ("alt", ns), st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda n, k: ("grp", n, k), children, st.sampled_from(["cap", "nocap", "named"])),
        rep_of(children),
    )


regex_ast = st.recursive(atom_st, extend, max_leaves=10)


# --------------------------------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------------------------------


def run_property(tok_name: str, ast, rnd: random.Random, randoms: list[str]) -> None:
    tok = get_tok(tok_name)
    pattern = render(ast)
    rx = re.compile(pattern)
    grammar = tok.compiler.compile_regex(pattern)
    generated = [sample(ast, rnd) for _ in range(2)]
    strings = generated + [mutate(generated[0], rnd), mutate(generated[1], rnd)] + randoms
    for s in dict.fromkeys(strings):
        if len(s) > 40:
            continue
        expected = rx.fullmatch(s) is not None
        for ids in tok.tokenizations(s, rnd):
            check_string(tok, grammar, s, ids, expected)
    if grammar.matcher().allowed_token_ids().size:
        check_walks(tok, grammar, pattern, rnd, 2)
    check_rollback_copy_reset(tok, grammar, tok.random_tokens(generated[0].encode(), rnd), rnd)


def check_rollback_copy_reset(tok: Tok, grammar, ids: list[int], rnd: random.Random) -> None:
    """rollback(k) lands exactly where a fresh matcher fed the shorter prefix is; copies are
    independent; reset is a fresh matcher."""
    m = grammar.matcher()
    accepted = []
    for t in ids:
        if not m.accept_token(t):
            break
        accepted.append(t)
    if m.is_accepting():
        assert m.accept_token(tok.eos)
        accepted.append(tok.eos)
    full = m.copy()
    k = rnd.randint(0, len(accepted))
    m.rollback(k)
    fresh = grammar.matcher()
    assert fresh.accept_tokens(accepted[:len(accepted) - k])
    assert m.num_accepted() == fresh.num_accepted() == len(accepted) - k
    assert m.is_terminated() == fresh.is_terminated() and m.is_accepting() == fresh.is_accepting()
    assert np.array_equal(m.allowed_token_ids(), fresh.allowed_token_ids())
    assert full.num_accepted() == len(accepted)  # the copy did not roll back
    if accepted:
        assert full.is_terminated() == (accepted[-1] in tok.eos_ids)
    m.reset()
    assert m.num_accepted() == 0 and np.array_equal(m.allowed_token_ids(), grammar.matcher().allowed_token_ids())


PROPERTY_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@settings(max_examples=60, **PROPERTY_SETTINGS)
@given(ast=regex_ast, rnd=st.randoms(use_true_random=False),
       randoms=st.lists(st.text(alphabet=ALPHABET, max_size=6), max_size=2))
def test_regex_agrees_with_re(tok_name, ast, rnd, randoms):
    run_property(tok_name, ast, rnd, randoms)


@pytest.mark.slow
@pytest.mark.parametrize("tok_name", TOKENIZERS)
@settings(max_examples=600, **PROPERTY_SETTINGS)
@given(ast=st.recursive(atom_st, extend, max_leaves=25), rnd=st.randoms(use_true_random=False),
       randoms=st.lists(st.text(alphabet=ALPHABET, max_size=12), max_size=4))
def test_regex_agrees_with_re_slow(tok_name, ast, rnd, randoms):
    run_property(tok_name, ast, rnd, randoms)


def test_renderer_produces_python_regexes():
    """Sanity check of the generator itself: the rendered patterns are what we mean."""
    ast = ("cat", [("lit", "😀", 1), ("rep", ("cls", [("ch", "\n", 0), ("range", "a", "b")], True), 1, 2, "{m,n}", True),
                   ("grp", ("alt", [("lit", "é", 4), ("dot",)]), "named")])
    pattern = render(ast)
    assert pattern == "\\U0001f600[^\\na-b]{1,2}?(?P<g1>\\N{LATIN SMALL LETTER E WITH ACUTE}|.)"
    assert re.fullmatch(pattern, "😀cé") and not re.fullmatch(pattern, "😀\né")


# --------------------------------------------------------------------------------------------------
# Hand-written cases
# --------------------------------------------------------------------------------------------------

CASES = [
    # pattern, strings (the oracle is re.fullmatch)
    (r"abc", ["abc", "ab", "abcd", ""]),
    (r"^abc$", ["abc", "abc\n", "ab", "\nabc"]),
    (r"\Aabc\Z", ["abc", "abc\n"]),
    (r"^a|b$", ["a", "b", "ab", ""]),
    (r"(^a|b)c", ["ac", "bc", "c"]),
    (r"a$|^b", ["a", "b", "a\n"]),
    (r"^(a|b)$", ["a", "b", "ab"]),
    (r"^$", ["", "\n"]),
    (r"$", ["", "\n"]),
    (r"^", ["", "a"]),
    (r"x?y", ["y", "xy"]),
    (r"\d+", ["123", "٣٤", "1a", "", "１２"]),
    (r"\w+", ["héllo_1", "中文", "a-b", "😀"]),
    (r"\s*", [" \t\n\r\x0b\x0c", "\u00a0\u2003", "\u200b", "x"]),
    (r"\D\W\S", ["a a", "a-a", "1-a"]),
    (r".", ["a", "\n", "😀", "é", "\r", "\x00"]),
    (r"[^a]", ["b", "a", "\n", "😀"]),
    (r"[\s\S]", ["\n", "a", "😀"]),
    (r"[^\W\d]+", ["abc", "a1", "_é"]),
    (r"\x41\u00e9\U0001F600\N{GREEK SMALL LETTER ALPHA}\101\0", ["Aé😀α" + "A\x00", "Aé😀αA"]),
    (r"[\x00-\x1f]+", ["\x00\x1f", "\x20"]),
    (r"[\u0100-\U0010ffff]", ["\u0100", "\u00ff", "\U0010ffff", "中"]),
    (r"a{,3}", ["", "aaa", "aaaa"]),
    (r"a{2,}", ["a", "aa", "aaaaaaa"]),
    (r"a{3}", ["aa", "aaa", "aaaa"]),
    (r"(?:ab){2,3}?", ["ab", "abab", "ababab", "abababab"]),
    (r"a{,}b", ["b", "aaab"]),
    (r"a{}b{", ["a{}b{", "ab"]),
    (r"x{1,2", ["x{1,2", "x"]),
    (r"(?P<year>\d{4})-(?P<mon>\d\d)", ["2024-01", "2024-1"]),
    (r"(a)(?:b)(?#comment)c", ["abc", "ab"]),
    (r"a||b", ["", "a", "b"]),
    (r"()", [""]),
    (r"[]a]+", ["]a]", "a"]),
    (r"[^]a]", ["b", "]"]),
    (r"[a-]", ["-", "a", "b"]),
    (r"[\b]", ["\x08", "b"]),
    (r"\.\*\+\?\(\)\[\]\{\}\|\\\^\$", [".*+?()[]{}|\\^$"]),
    (r"[\d-]+", ["1-2", "a"]),
    (r"\\n", ["\\n", "\n"]),
    (r"é+|😀{2}", ["ééé", "😀😀", "😀"]),
    (r"(a|ab)(c|bcd)(d*)", ["abcd", "abcdd", "acd"]),
    (r"[ab]*?b", ["b", "aab", "aa"]),
    ("\\٣\\é", ["٣é"]),  # a non-ASCII character escaped is itself, even a digit
]


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@pytest.mark.parametrize("pattern,strings", CASES)
def test_hand_written(tok_name, pattern, strings):
    tok = get_tok(tok_name)
    grammar = tok.compiler.compile_regex(pattern)
    rnd = random.Random(pattern)
    for s in strings:
        expected = re.fullmatch(pattern, s) is not None
        for ids in tok.tokenizations(s, rnd) + [tok.random_tokens(s.encode(), rnd)]:
            check_string(tok, grammar, s, ids, expected)


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_empty_language(tok_name):
    """A regex that matches nothing leaves nothing allowed, not even EOS."""
    tok = get_tok(tok_name)
    for pattern in [r"[^\s\S]", r"a[^\s\S]b"]:
        m = tok.compiler.compile_regex(pattern).matcher()
        assert len(m.allowed_token_ids()) == 0
        assert not m.is_accepting()


# --------------------------------------------------------------------------------------------------
# Large bounded repetitions: no unrolling, exact counts
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@pytest.mark.parametrize("pattern,unit", [(r".{0,2000}", "é"), (r".{0,2000}", "a"), (r"[a-z]{0,2000}", "q")])
def test_large_bounded_repetition(tok_name, pattern, unit):
    tok = get_tok(tok_name)
    tok.compiler._cache.clear()
    t0 = time.perf_counter()
    grammar = tok.compiler.compile_regex(pattern)
    m = grammar.matcher()
    row = constrain.allocate_token_bitmask(1, tok.vocab.size)[0]
    m.fill_bitmask(row)
    elapsed = time.perf_counter() - t0
    print(f"{tok_name} {pattern}: compile + first mask {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    rnd = random.Random(0)
    ok = unit * 2000
    assert re.fullmatch(pattern, ok) and not re.fullmatch(pattern, ok + unit)
    ids = tok.canonical(ok)
    check_string(tok, grammar, ok, ids, True, full_check=False)
    check_string(tok, grammar, ok, tok.random_tokens(ok.encode(), rnd), True, full_check=False)
    for ids in (tok.canonical(ok + unit), tok.random_tokens((ok + unit).encode(), rnd)):
        check_string(tok, grammar, ok + unit, ids, False, full_check=False)
    # Near the bound the mask must shrink to tokens that fit: at 1995 characters, tokens of more than
    # five characters are blocked.
    m = grammar.matcher()
    assert m.accept_bytes((unit * 1995).encode())
    allowed = m.allowed_token_ids()
    for t in allowed.tolist():
        b = tok.vocab.token_bytes[t]
        if b is not None:
            assert sum(1 for x in b if not 0x80 <= x <= 0xBF) <= 5, b  # characters begun
    assert tok.by_bytes[unit.encode()[:1]] in allowed.tolist()
    print(f"{tok_name} {pattern}: {grammar.num_cached_masks} cached masks, {grammar.dfa.num_states} states")


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_large_repetition_of_group(tok_name):
    tok = get_tok(tok_name)
    pattern = r"(ab|cd){10,500}x"
    t0 = time.perf_counter()
    grammar = tok.compiler.compile_regex(pattern)
    grammar.matcher().allowed_token_ids()
    elapsed = time.perf_counter() - t0
    print(f"{tok_name} {pattern}: compile + first mask {elapsed * 1000:.1f} ms")
    assert elapsed < 1.0
    rnd = random.Random(1)
    for n, expected in [(9, False), (10, True), (250, True), (500, True), (501, False)]:
        body = "".join(rnd.choice(["ab", "cd"]) for _ in range(n))
        for s in (body + "x", body):
            exp = expected and s.endswith("x")
            assert (re.fullmatch(pattern, s) is not None) == exp
            for ids in tok.tokenizations(s, rnd):
                check_string(tok, grammar, s, ids, exp, full_check=False)


@pytest.mark.parametrize("tok_name", TOKENIZERS)
def test_large_repetition_masks_are_capped(tok_name):
    """Masks are cached by capped counter: walking 2000 characters builds few distinct masks."""
    tok = get_tok(tok_name)
    grammar = tok.compiler.compile_regex(r"[a-z]{0,1999}!")
    m = grammar.matcher()
    ids = tok.canonical("abcdefghij" * 199 + "abcdefgh!")
    assert feed(tok, m, ids, full_check=False) and m.is_accepting()
    assert grammar.num_cached_masks < 200, grammar.num_cached_masks


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

UNSUPPORTED = [
    # pattern, position, a word of the message
    ("(?=ab)c", 0, "lookaround"),
    ("a(?!b)", 1, "lookahead"),
    ("(?<=a)b", 0, "lookbehind"),
    ("x(?<!ab)c", 1, "lookaround"),
    ("(a)\\1", 3, "backreference"),
    ("(?P<x>a)(?P=x)", 8, "backreference"),
    ("\\bfoo", 0, "boundary"),
    ("a\\B", 1, "boundary"),
    ("(?t)abc", 2, "template"),
    ("(?>a)", 0, "atomic"),
    ("a*+", 1, "possessive"),
    ("ab++", 2, "possessive"),
    ("a?+", 1, "possessive"),
    ("a{2,3}+", 1, "possessive"),
    ("(a)?(?(1)b|c)", 4, "conditional"),
    ("x\\b", 1, "boundary"),  # at an end of the match, a word boundary looks outside it (a lexer's view)
    ("(?:\\Ba|b)c", 3, "boundary"),
    ("(?:^a){101}", 3, "repetition"),
]


@pytest.mark.parametrize("pattern,position,word", UNSUPPORTED)
def test_unsupported_constructs_raise_with_position(pattern, position, word):
    """As a lexer's terminal (matched inside a longer text), these raise, naming the position."""
    with pytest.raises(constrain.RegexError) as info:
        Lowering(TermStore()).fullmatch(pattern, Encoding.RAW)
    err = info.value
    assert isinstance(err, constrain.ConstrainError)
    assert err.position == position, str(err)
    assert word in str(err).lower()


@pytest.mark.parametrize("pattern", ["(?=ab)c", "a(?!b)", "(?<=a)b", "\\bfoo", "a\\B", "x\\b", "(?:\\Ba|b)c",
                                     "\\bfoo\\b", "(?<!a)b"])
def test_compile_regex_sees_the_whole_string(pattern):
    """compile_regex is re.fullmatch on the whole text: assertions at its ends see the ends."""
    assert_compile_regex_is_fullmatch("smollm2", pattern, ["", "a", "b", "c", "ab", "ac", "abc", "foo", "foo ",
                                                           " foo", "xb", "x", "ba", "bc"])


SYNTAX_ERRORS = ["(a", "a)", "[a", "*a", "a**", "\\", "\\q", "x{3,2}", "[b-a]", "\\x4", "\\N{no such name}",
                 "(?P<1>a)", "a|*", "\\u12", "\\U00110000", "[\\d-z]", "{2}", "a{2}{3}", "(?#unterminated",
                 "\\8", "[\\8]", "[\\A]", "\\18", "(a)\\2", "\\400", "[\\400]", "\\1a",
                 "(?<", "(?", "(?P", "(?P<", "(?P<n", "(?P<n>a)(?P<n>b)", "(?P<n>a)|(?P<n>b)", "\\N", "\\N{",
                 "\\N{}", "\\N{a",
                 # inline flags
                 "a(?i)b", "a|(?i)b", "(?:)(?i)", "(?x:a)(?i)", "(?L)a", "(?au)a", "(?-a:a)", "(?i-a:b)", "(?i-:a)",
                 "(?-i)a", "(?i", "(?-", "(?i-m", "(?i-i:a)", "(?iq)", "(?i-q:a)", "(?i;a)", "(?Q)", "(?x)a* ?",
                 "(?x)* a", "(?=a", "(?<!a",
                 # anchors and word boundaries repeat only in a group, as in Python
                 "^*", "a$+", "\\A?", "\\Z{2}", "\\b*", "a\\B+", "a|^{1,2}", "(?m)^*"]


@pytest.mark.parametrize("pattern", SYNTAX_ERRORS)
def test_syntax_errors_match_python(pattern):
    """Malformed patterns raise RegexError at the position Python reports."""
    with pytest.raises(re.error) as py:
        re.compile(pattern)
    with pytest.raises(constrain.RegexError) as ours:
        get_tok("smollm2").compiler.compile_regex(pattern)
    assert ours.value.position == py.value.pos, (str(ours.value), str(py.value))


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@pytest.mark.parametrize("pattern,strings", [
    (r"\123\101", ["SA", "\\123"]),  # three octal digits: an octal escape, not a backreference
    (r"\0\01\012\0123", ["\x00\x01\n\n3"]),
    (r"[\1\12\123]", ["\x01", "\n", "S"]),
    (r"\1234", ["S4"]),
])
def test_octal_escapes(tok_name, pattern, strings):
    assert_compile_regex_is_fullmatch(tok_name, pattern, strings)


PATTERN_PIECES = list("ab()[]{}|*+?.^$\\-,0123:<>=!PN#xuU") + [
    "\\d", "\\w", "\\s", "\\b", "\\A", "\\Z", "(?:", "(?P<n>", "{1,2}", "{2}", "{,1}", "[^", "é", "\n", "\\1"]
PROBE_CHARS = ["a", "b", "é", "\n", "x", "1", "-", ",", "{", "}", "(", ")", "*", "P", "<", ":", "0", "2", "\\", "^",
               "$", "N", "#", "U"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(PATTERN_PIECES), min_size=1, max_size=8),
       probes=st.lists(st.lists(st.sampled_from(PROBE_CHARS), max_size=5).map("".join), min_size=10, max_size=30))
def test_random_pattern_text_against_re(pieces, probes):
    """Random pattern *text* (mostly malformed): what Python rejects we reject with RegexError (never
    another exception); what we accept means what Python means."""
    pattern = "".join(pieces)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning: possible nested set
            rx = re.compile(pattern)
    except (re.error, OverflowError):
        rx = None
    try:
        grammar = get_tok("smollm2").compiler.compile_regex(pattern)
    except constrain.RegexError as exc:
        assert exc.position is None or 0 <= exc.position <= len(pattern)
        return
    assert rx is not None, f"{pattern!r} is not a Python regex but compiled"
    for s in probes + [""]:
        m = grammar.matcher()
        got = m.accept_bytes(s.encode()) and m.is_accepting()
        assert got == (rx.fullmatch(s) is not None), (pattern, s)


def test_not_a_string():
    with pytest.raises(constrain.RegexError):
        get_tok("smollm2").compiler.compile_regex(b"abc")


# --------------------------------------------------------------------------------------------------
# Character sets and UTF-8
# --------------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(ranges=st.lists(st.tuples(st.integers(0, 0x10FFFF), st.integers(0, 0x3000)), min_size=1, max_size=4),
       probes=st.lists(st.integers(0, 0x10FFFF), max_size=20))
def test_utf8_sequences_encode_exactly_the_set(ranges, probes):
    """Each code point is in the set iff its UTF-8 encoding is in the byte-range sequences."""
    s = cs.normalize([(lo, min(lo + w, 0x10FFFF)) for lo, w in ranges])
    seqs = cs.utf8_sequences(s)

    def encoded(cp):
        data = chr(cp).encode("utf-8", "surrogatepass")
        return any(len(seq) == len(data) and all(a <= b <= c for (a, c), b in zip(seq, data)) for seq in seqs)

    edges = [e + d for lo, hi in s for e in (lo, hi) for d in (-1, 0, 1)]
    for cp in edges + probes + [0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0xD7FF, 0xE000]:
        if not 0 <= cp <= 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            continue
        assert encoded(cp) == cs.contains(s, cp), hex(cp)
    # sequences are disjoint products of byte ranges, each a valid UTF-8 shape
    for seq in seqs:
        assert 1 <= len(seq) <= 4 and all(0 <= a <= b <= 255 for a, b in seq)
    assert all(not (0xD800 <= lo <= 0xDFFF or 0xD800 <= hi <= 0xDFFF) for lo, hi in s)


@settings(max_examples=300, deadline=None)
@given(a=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 30)), max_size=6),
       b=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 60)), max_size=8))
def test_is_subset_is_an_empty_difference(a, b):
    a = cs.normalize([(lo, lo + n) for lo, n in a])
    b = cs.normalize([(lo, lo + n) for lo, n in b])
    assert cs.is_subset(a, b) == (cs.difference(a, b) == ())


@pytest.mark.parametrize("cls", [r"[\w.-]", r"[^\W_]", r"[\w\s]", r"[\W\d]", r"[^\d]", r"[\D\s]", r"[\w\u2190-\u21ff]"])
@pytest.mark.parametrize("encoding", [Encoding.RAW, Encoding.JSON])
def test_classes_holding_a_large_one_lower_to_their_code_points(cls, encoding):
    """``[\\w.-]`` lowers as \\w's trie beside a trie of the rest: every code point is accepted
    exactly when ``re`` matches it (sampled, with all of the BMP's first 0x3000), raw and inside
    a JSON string."""
    rnd = random.Random(11)
    store = TermStore()
    lowering = Lowering(store)
    term = lowering.fullmatch(cls, Encoding.RAW) if encoding is Encoding.RAW else lowering.search(f"^{cls}$", Encoding.JSON)
    dfa = LazyDFA(store, term)
    rx = re.compile(cls)
    for cp in list(range(0x3000)) + [rnd.randrange(0x3000, 0x110000) for _ in range(3000)]:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        text = chr(cp) if encoding is Encoding.RAW else json.dumps(chr(cp), ensure_ascii=False)[1:-1]
        state = dfa.step(dfa.start, text.encode())
        assert (state != DEAD and bool(dfa.accepting[state])) == (rx.fullmatch(chr(cp)) is not None), hex(cp)


def test_shorthand_classes_sampled_against_re():
    """\\d \\w \\s are Python's Unicode classes (a sample of code points; the full sweep is slow)."""
    rnd = random.Random(7)
    cps = list(range(0, 0x3000)) + [rnd.randrange(0x3000, 0x110000) for _ in range(20000)]
    for name, pat in [("digit", r"\d"), ("word", r"\w"), ("space", r"\s")]:
        s = getattr(cs, name)()
        rx = re.compile(pat)
        for cp in cps:
            if 0xD800 <= cp <= 0xDFFF:
                continue
            assert (rx.fullmatch(chr(cp)) is not None) == cs.contains(s, cp), (name, hex(cp))


# --------------------------------------------------------------------------------------------------
# Inline flags, one-character lookarounds, lazy quantifiers (checked on the byte-level DFA)
# --------------------------------------------------------------------------------------------------


def dfa_fullmatch(pattern: str):
    """A predicate: does the byte-level DFA of ``pattern`` accept the whole text?"""
    store = TermStore()
    dfa = LazyDFA(store, Lowering(store).fullmatch(pattern, Encoding.RAW))

    def accepts(text: str) -> bool:
        state = dfa.step(dfa.start, text.encode())
        return state != DEAD and bool(dfa.accepting[state])

    return accepts


def check_against_re(pattern: str, strings) -> None:
    accepts = dfa_fullmatch(pattern)
    rx = re.compile(pattern)
    for s in dict.fromkeys(strings):
        assert accepts(s) == (rx.fullmatch(s) is not None), (pattern, s)


def all_strings(alphabet, max_len: int) -> list[str]:
    out = [""]
    for _ in range(max_len):
        out += [s + c for s in out if len(s) == len(out[-1]) for c in alphabet]
    return out


# Characters whose case rules are irregular: the Kelvin sign and long s (extra equivalences), ß and
# capital ß (only one of them is cased), dotted and dotless i, final sigma, the micro sign,
# titlecase DŽ, a Deseret letter (beyond the BMP).
CASE_CHARS = ["a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "ß", "\u1e9e", "i", "I", "\u0130", "\u0131",
              "σ", "Σ", "ς", "é", "É", "µ", "μ", "Μ", "\u01c4", "\u01c5", "\u01c6", "\U00010400", "\U00010428",
              "1", "_", " ", "\n", "-"]
CASE_GROUPS: dict[str, list[str]] = {}
for _c in CASE_CHARS:
    CASE_GROUPS.setdefault(_c.casefold(), []).append(_c)

case_literal = st.builds(lambda c, f: ("lit", c, f), st.sampled_from(CASE_CHARS), st.integers(0, 7))
case_class = st.builds(lambda items, neg: ("cls", items, neg), st.lists(st.one_of(
    st.builds(lambda c, f: ("ch", c, f), st.sampled_from(CASE_CHARS), st.integers(0, 7)),
    st.sampled_from([("range", "a", "z"), ("range", "A", "Z"), ("range", "K", "k"), ("range", "À", "ÿ"),
                     ("range", "\u0100", "\u024f"), ("range", "Α", "ω"), ("range", "\u2100", "\u2200")]),
    st.builds(lambda e: ("esc", e), shorthand)), min_size=1, max_size=3), st.booleans())
case_atom = st.one_of(case_literal, case_literal, case_class, st.just(("dot",)),
                      st.builds(lambda e: ("esc", e), shorthand))


@st.composite
def flagged(draw, children):
    on = draw(st.sampled_from(["", "i", "s", "m", "x", "a", "u", "is", "ix", "ia", "ms", "sx"]))
    off = "".join(c for c in draw(st.sampled_from(["", "i", "s", "x", "im"])) if c not in on)
    return ("flags", draw(children), on if on or off else "i", off)


case_ast = st.recursive(case_atom, lambda children: st.one_of(extend(children), flagged(children)), max_leaves=8)


def case_variant(s: str, rnd: random.Random) -> str:
    """``s`` with characters swapped for others of the same case fold, now and then."""
    return "".join(rnd.choice(CASE_GROUPS.get(c.casefold(), [c])) if rnd.random() < 0.7 else c for c in s)


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(ast=case_ast, head=st.sampled_from(["", "(?i)", "(?s)", "(?x)", "(?a)", "(?ai)", "(?ix)", "(?m)"]),
       rnd=st.randoms(use_true_random=False), randoms=st.lists(st.text(alphabet=CASE_CHARS, max_size=4), max_size=4))
def test_inline_flags_agree_with_re(ast, head, rnd, randoms):
    """Scoped and global flags (IGNORECASE with Unicode's irregular cases, DOTALL, VERBOSE, ASCII)."""
    pattern = head + render(ast)
    generated = [sample(ast, rnd) for _ in range(3)]
    strings = generated + [case_variant(g, rnd) for g in generated for _ in range(3)] + randoms
    check_against_re(pattern, strings + [mutate(g, rnd) for g in generated])


@pytest.mark.parametrize("pattern,strings", [
    ("(?i:select)", ["select", "SELECT", "SeLeCt", "ſelect", "selec", "selectt"]),
    ("(?i)straße", ["STRASSE", "strasse", "STRAẞE", "straße"]),
    ("(?i)[^k]", ["k", "K", "\u212a", "a"]),
    ("(?i)[a-z]+", ["ſK", "İ", "ı", "abc"]),
    ("(?i)\\w\\W[\\W\\d]", ["a-1", "Ⓐ-1", "a-Ⓐ"]),
    ("(?i)Σ+|µ", ["σςΣ", "μ", "Μ", "µ"]),
    ("(?i)\\U00010400\\u01c5", ["\U00010428\u01c4", "\U00010400\u01c6"]),
    ("(?ia)k[a-z]\\w", ["KKé", "\u212aka", "kK_"]),
    ("(?i)a(?-i:b)c", ["ABC", "AbC", "abc"]),
    ("(?s)a.b(?-s:.)", ["a\nbc", "a\nb\n"]),
    ("(?s:.)\n?.", ["\n\n", "\n\n\n", "a\n"]),
    ("(?x) a b # a comment\n c", ["abc", "a b c", "ab"]),
    ("(?x)[ #]a\\ b\\#", ["#a b#", " a b#", "ab#"]),
    ("(?x)a #c\n *b {2}", ["aaabb", "bb", "a b"]),
    ("(?x:a b)c d", ["abc d", "abcd"]),
    ("(?x)a(?-x: b)c", ["a bc", "abc"]),
    ("(?a)\\w\\d\\s", ["a1 ", "é1 ", "a٣ ", "a1\u00a0", "a1\x1c"]),
    ("(?a:\\w)(?u:\\w)", ["aé", "éa"]),
    ("(?m)a$\n^b", ["a\nb", "ab", "a\n\nb"]),
    ("(?m)^a|b$", ["a", "b", "ab"]),
    ("(?#c)(?i)(?s)A.", ["a\n", "A\n"]),
])
def test_inline_flags_hand_written(pattern, strings):
    check_against_re(pattern, strings)


@pytest.mark.parametrize("fragment", ["k", "ß", "\u1e9e", "[^k]", "[^\\W\\d]", "[\\W]", "[a-z\\d]", "\\S",
                                      "[\\u0100-\\U0010ffff]", "[^\\U00010400-\\U0001044f]", "[ſ-ǅ]"])
@pytest.mark.parametrize("ascii_only", [False, True])
def test_ignore_case_sets_against_re(fragment, ascii_only):
    """IGNORECASE sets, on every character IGNORECASE can affect and a sample of the others."""
    flags = "(?ai)" if ascii_only else "(?i)"
    chars = parse(flags + fragment)[1]
    rx = re.compile(flags + fragment)
    rnd = random.Random(fragment)
    cps = [cp for lo, hi in cs.case_sensitive() for cp in range(lo, hi + 1)]
    for cp in cps + list(range(0x300)) + [rnd.randrange(0x110000) for _ in range(3000)]:
        if not 0xD800 <= cp <= 0xDFFF:
            assert cs.contains(chars, cp) == (rx.fullmatch(chr(cp)) is not None), hex(cp)


@settings(max_examples=40, deadline=None)
@given(cp=st.sampled_from([cp for lo, hi in cs.case_sensitive() for cp in range(lo, hi + 1)]))
def test_ignore_case_literals_against_re(cp):
    """A case-insensitive literal matches what ``re`` says, among all characters IGNORECASE affects."""
    literal = re.escape(chr(cp))
    chars = parse("(?i)" + literal)[1]
    rx = re.compile("(?i)" + literal)
    for lo, hi in cs.case_sensitive():
        for other in range(lo, hi + 1):
            assert cs.contains(chars, other) == (rx.fullmatch(chr(other)) is not None), (hex(cp), hex(other))


def test_case_sensitive_set_is_its_definition():
    """The block-skipping scan finds exactly the cased code points (and their lowercase forms) that a
    test of every code point finds, plus ``re``'s extra case equivalences."""
    import _sre

    try:
        from re._casefix import _EXTRA_CASES  # Python 3.11+
    except ImportError:  # Python 3.10
        from sre_compile import _ignorecase_fixes as _EXTRA_CASES
    points = set()
    for cp in range(cs.MAX_CODE_POINT + 1):
        if _sre.unicode_iscased(cp):
            points.update((cp, _sre.unicode_tolower(cp)))
    for cp, others in _EXTRA_CASES.items():
        points.update((cp, *others))
    assert cs.case_sensitive() == cs.normalize((cp, cp) for cp in points)


def test_code_point_text_indexes_code_points():
    text = cs.code_point_text(0xE001)
    assert len(text) == 0xE001 and text[0x41] == "A" and text[0xD800] == "\ud800" and text[0xE000] == chr(0xE000)


def test_ascii_shorthand_classes_against_re():
    rnd = random.Random(3)
    cps = list(range(0x3000)) + [rnd.randrange(0x3000, 0x110000) for _ in range(5000)]
    for pat in [r"(?a)\d", r"(?a)\w", r"(?a)\s", r"(?a)\D", r"(?a)\W", r"(?a)\S", r"(?a:[\w\s-])"]:
        chars = parse(pat)[1]
        rx = re.compile(pat)
        for cp in cps:
            if not 0xD800 <= cp <= 0xDFFF:
                assert cs.contains(chars, cp) == (rx.fullmatch(chr(cp)) is not None), (pat, hex(cp))


LOOK_CHARS = ["a", "b", "\\", "\n", "é"]
look_atom = st.one_of(
    st.builds(lambda c, f: ("lit", c, f), st.sampled_from(LOOK_CHARS), st.integers(0, 7)),
    st.builds(lambda items, neg: ("cls", items, neg), st.lists(
        st.builds(lambda c, f: ("ch", c, f), st.sampled_from(LOOK_CHARS), st.integers(0, 7)), min_size=1, max_size=2),
        st.booleans()),
    st.just(("dot",)), st.builds(lambda e: ("esc", e), shorthand))
look_node = st.builds(lambda kind, atom: ("look", kind, atom), st.sampled_from(["=", "!", "<=", "<!"]), look_atom)


def _is_look(node) -> bool:
    """Does ``node`` render to one lookaround (in groups, among parts that render to nothing)?"""
    if node[0] == "cat":
        parts = [n for n in node[1] if render(n)]
        return len(parts) == 1 and _is_look(parts[0])
    return node[0] == "look" or node[0] == "grp" and _is_look(node[1])


def extend_bounded(children):
    """As ``extend``, with only bounded repetitions, of something other than a bare assertion (a
    lookaround in an unbounded repetition, or repeated itself, is refused)."""
    return st.one_of(
        st.builds(lambda ns: ("cat", ns), st.lists(children, min_size=0, max_size=4)),
        st.builds(lambda ns: ("alt", ns), st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda n, k: ("grp", n, k), children, st.sampled_from(["cap", "nocap", "named"])),
        rep_of(children.filter(lambda n: not _is_look(n))).filter(lambda n: n[3] is not None),
    )


look_ast = st.recursive(st.one_of(look_atom, look_node, look_node,
                                  st.builds(lambda a: ("rep", a, 0, None, "*", True), look_atom)),
                        extend_bounded, max_leaves=8)


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(first=look_atom, body=look_ast, last=look_atom, rnd=st.randoms(use_true_random=False),
       randoms=st.lists(st.text(alphabet=LOOK_CHARS, max_size=6), min_size=5, max_size=10))
def test_lookarounds_agree_with_re(first, body, last, rnd, randoms):
    """One-character lookarounds anywhere between a first and a last character (so that none looks
    outside the match) lower exactly."""
    ast = ("cat", [first, ("grp", body, "nocap"), last])
    pattern = render(ast)
    generated = [sample(ast, rnd) for _ in range(4)]
    check_against_re(pattern, generated + [mutate(g, rnd) for g in generated for _ in range(2)] + randoms)


@pytest.mark.parametrize("pattern,strings", [
    (r'".*?(?<!\\)(\\\\)*?"', ['""', '"a"', '"a\\"', '"a\\\\"', '"\\"', '"a\\"b"', '"a"b"', '"\\\\\\"']),
    (r"a(?=b)[a-z]", ["ab", "ac", "abb"]),
    (r"x(?:(?<=x)a|b)?(?=[ab])[ab]", ["xa", "xaa", "xab", "xba", "xb"]),
    (r"(?:a(?<!b)b?){0,3}c", ["abc", "aabc", "ababc", "abababc", "c"]),
    (r"a(?=b)(?=[^a])(?!c).", ["ab", "ac", "aa"]),
    (r"a(?<=a)(?<!b)b", ["ab"]),
    (r"(?m)a^b", ["ab", "a\nb"]),
])
def test_lookarounds_hand_written(pattern, strings):
    check_against_re(pattern, all_strings(["a", "b", "\\", '"'], 5) + strings)


LOOK_ERRORS = [
    # pattern, position, a word of the message
    ("(?<!a)b", 0, "lookbehind"),
    ("a?(?<=a)b", 2, "lookbehind"),
    ("(?:x|)(?<!a)b", 6, "lookbehind"),
    ("a(?=b)", 1, "lookahead"),
    ("a(?=b)c?", 1, "lookahead"),
    ("a(?=b)(?!c)", 1, "lookahead"),
    ("x(?:a|b(?=b))", 7, "lookahead"),
    ("(?:(?<!b)a)*", 3, "lookbehind"),
    ("x(?:a(?=b)b){101}", 5, "repetition"),
    ("x(?:a(?=b)b){50,}(?:a^){2,101}", 21, "repetition"),
    ("x(?<=ab)c", 1, "one character"),
    ("x(?=a*)c", 1, "one character"),
    ("(?t)a", 2, "template"),
]


@pytest.mark.parametrize("pattern,position,word", LOOK_ERRORS)
def test_lookaround_errors_have_positions(pattern, position, word):
    re.compile(pattern)  # Python accepts each of them
    with pytest.raises(constrain.RegexError) as info:
        Lowering(TermStore()).fullmatch(pattern)
    assert info.value.position == position, str(info.value)
    assert word in str(info.value).lower()


@pytest.mark.parametrize("pattern", ["(?m)^a", "(?m)b$", "(?m)^a$", "(?m)a$\n^b", "(?m:^a|b$)", "(?m)^$",
                                     "(?m)\\A^a", "(?m)^\\Aa", "(?m)a$\\Z", "(?m)a$$", "a(?=b)b", "(?m)a\n^"])
def test_search_with_multiline_anchors(pattern):
    store = TermStore()
    dfa = LazyDFA(store, Lowering(store).search(pattern, Encoding.RAW))
    rx = re.compile(pattern)
    for s in all_strings(["a", "b", "\n"], 5):
        state = dfa.step(dfa.start, s.encode())
        assert (state != DEAD and bool(dfa.accepting[state])) == (rx.search(s) is not None), (pattern, s)


# --------------------------------------------------------------------------------------------------
# Assertions anywhere: anchors, word boundaries and lookarounds in groups, alternatives, repetitions
# (search, as JSON Schema's pattern; fullmatch of a whole string; fullmatch as a lexer lowers it)
# --------------------------------------------------------------------------------------------------

ASSERT_CHARS = ["a", "b", "\n", " ", "é"]  # word characters (one of them not ASCII), a newline, a space
ASSERT_STRINGS = all_strings(ASSERT_CHARS, 4)
MODES = ["search", "search-json", "search-json-escapes", "fullmatch", "lexer"]


def _json_body(s: str, ascii_only: bool) -> bytes:
    return json.dumps(s, ensure_ascii=ascii_only)[1:-1].encode()


def lowered(pattern: str, mode: str):
    """A predicate on strings: does the byte-level DFA of ``pattern`` in ``mode`` accept the text?
    Raises RegexError where the lowering refuses."""
    store = TermStore()
    low = Lowering(store, unicode_escapes=mode == "search-json-escapes")
    encode = str.encode
    if mode == "search":
        term = low.search(pattern, Encoding.RAW)
    elif mode.startswith("search-json"):
        term = low.search(pattern, Encoding.JSON)
        encode = functools.partial(_json_body, ascii_only=mode == "search-json-escapes")
    else:
        term = low.fullmatch(pattern, Encoding.RAW, whole_string=mode == "fullmatch")
    dfa = LazyDFA(store, term)

    def accepts(text: str) -> bool:
        state = dfa.step(dfa.start, encode(text))
        return state != DEAD and bool(dfa.accepting[state])

    return accepts


def check_modes(pattern: str, strings, modes=MODES) -> None:
    """Every mode agrees with ``re.search`` / ``re.fullmatch`` on ``strings``; only the lexer's
    fullmatch may refuse (a lookaround or word boundary at an end of the match)."""
    rx = re.compile(pattern)
    for mode in modes:
        try:
            accepts = lowered(pattern, mode)
        except constrain.RegexError:
            if mode == "lexer":
                continue
            raise
        oracle = rx.search if mode.startswith("search") else rx.fullmatch
        wrong = [s for s in dict.fromkeys(strings) if accepts(s) != (oracle(s) is not None)]
        assert not wrong, (pattern, mode, wrong[:5])


ASSERTION_PATTERNS = [
    # from JSONSchemaBench
    r"^$|(^(?:\S+\s+){0,99}\S+$)", r"^(\+|-)?\d+$|^$", r"(^[a-z]+$)|(^\d+$)", r"^$[a-zA-Z0-9$_]*$",
    r"^(\/?((\.{2})|([a-z0-9\-]*))($|\/))*$", r"/^[0-9]{4}$/", r"import $X",
    # anchors in alternatives and groups
    r"^a|b$", r"(^a|b)c", r"a$|^b", r"(?:^|b)a", r"a(?:$|b)", r"(?:^|\n)a(?:$|\n)", r"(^|a)(b|$)",
    r"(?:^a|a)(?:^b|b)", r"^(a|b$)|b", r"x?(?:^a|b)", r"(?:a|^)(?:b|$)\n?",
    # anchors where they cannot hold, or hold only before a final newline
    r"a^b", r"a$b", r"a$\n", r"a\Z\n?", r"$\n$", r"$\n\Z", r"\n^", r"$ $", r"a?^b?", r"a*$b*", r"^^a$$",
    r"\A^a$\Z", r"$\n?$", r"(?:a|\n)$\n", r"$$\n",
    # anchors in repetitions
    r"(^a)*", r"(a$)+", r"(^a)+b", r"(a$)*\n", r"(?:^)*a", r"(?:$)+", r"(?:$)*\n", r"(a|^)+b", r"(?:a|^b)*$",
    r"(?:^a|b$)+", r"((^a)|b)*", r"(?:a\Z|b$|\n^)+", r"^(?:a|b$)*\n?$", r"(?:(?:^)?a)+", r"(?:$\n?)+",
    r"(?:^a|b){2,3}", r"(?:a$|b){1,2}\n?", r"(?:\Z|a){3}", r"(?:$\n|a){2,4}", r"(?:(?:^|a)b)*", r"(?:^|$)*",
    r"(?:a(?:^|$))*", r"^(?:a|b)*$", r"(?:\A|\n)+a",
    # MULTILINE
    r"(?m)^a$", r"(?m)(?:^a$\n?)+", r"(?m)a$\n^b", r"(?m)(^|a)+$", r"(?m:^a)|b$", r"(?m)\A^a$\Z", r"(?m)$\n^",
    r"(?m)a^", r"(?m)$a", r"(?m)(?:a|$\n)+^b", r"(?m)^$", r"(?m)(?:^\s*$)+",
    # word boundaries (Unicode word characters, ASCII ones under (?a))
    r"\b", r"\B", r"\ba\b", r"\Ba\B", r"a\b b", r"(?:\ba|b\B)+", r"\b(?:a+\b\s*)+$", r"(?a)\b", r"(?a:\bé)",
    r"é\b", r"(?:^|\b)a", r"\b$", r"^\B", r"(?:\b|\B)+", r"(?:a\b|\Bb)+", r"\b\w+\b", r"(?a)\B\w\B",
    # one-character lookarounds, now also at the ends of the pattern and in repetitions
    r"(?<!a)b", r"b(?!a)", r"(?=a)*b", r"(?:a|(?=b))*b", r"(?:(?<=a)b|a)*$", r"(?<![ab])\n", r"$(?!\n)",
    r"(?=\n)$", r"$(?=\n)\n", r"(?<=\n)^", r"(?m)(?<=\n)^", r"(?<=a)+b", r"a(?=b)*", r"(?=a){2}a", r"(?!\n)$",
    r"(?:(?<!a)a)+", r"(?:a(?!a))+$", r"(?<=\s)\b",
    # lookaheads on characters or the end, anywhere
    r"(?=\s|$)", r"a(?=\s|$)", r"a(?!\s|\Z)", r"a(?=b|(?m:$))", r"(?:a(?=\Z|b))+", r"a(?!\n|(?m:$))",
    r"(?:\b(?=a|$)|b)+", r"(?=)a", r"a(?!)|b",
    # other lookaheads, at the start of the string (from JSONSchemaBench: ^(?!pattern$).*$, ...)
    r"^(?!ab$).*$", r"^(?=[^ ]+$)(?!\s+$)(.|\n)+$", r"^(?!aa)[ab]+$", r"^(?!ab|b\n).*", r"^(?!$)",
    r"^(?=.*(?<!a)b)", r"^(?!a*$)(?!.*b\n)", r"(?:^(?!a)|b)+", r"^(?!a)|b(?=a|\n)", r"\A(?=a\Z)", r"^(?=(?!b))",
    r"(?:^(?=a\b)|\n)a", r"^(?=(?:a|b$)+)", r"(?m)\A(?!a$)",
    # trivia
    r"^", r"$", r"\A", r"\Z", r"^|$", r"(?:)", r"(?:^)", r"()$",
]


@pytest.mark.parametrize("pattern", ASSERTION_PATTERNS)
def test_assertions_anywhere_exhaustively(pattern):
    """Every string of up to 4 characters over a small alphabet with a newline."""
    check_modes(pattern, ASSERT_STRINGS + ["a" * 6, "ab\n", "a\n\n", "\n" * 5, "b a\n"])


anchor_node = st.builds(lambda a: ("anchor", a), st.sampled_from(["^", "$", "\\A", "\\Z", "\\b", "\\B"]))
assert_literal = st.builds(lambda c, f: ("lit", c, f), st.sampled_from(ASSERT_CHARS), st.integers(0, 7))
assert_atom = st.one_of(
    assert_literal, assert_literal,
    st.builds(lambda items, neg: ("cls", items, neg), st.lists(
        st.builds(lambda c, f: ("ch", c, f), st.sampled_from(ASSERT_CHARS), st.integers(0, 7)), min_size=1, max_size=2),
        st.booleans()),
    st.just(("dot",)), st.builds(lambda e: ("esc", e), st.sampled_from(["w", "W", "s", "S"])))
assert_look = st.builds(lambda kind, atom: ("look", kind, atom), st.sampled_from(["=", "!", "<=", "<!"]), assert_atom)
end_look = st.one_of(  # lookaheads on characters or the end: (?=X|$), (?!X|\Z), ...
    st.builds(lambda atom, end: ("look", "=", ("alt", [atom, end])), assert_atom,
              st.sampled_from([("anchor", "$"), ("anchor", "\\Z"), ("flags", ("anchor", "$"), "m", "")])),
    st.builds(lambda atom, end: ("look", "!", ("alt", [atom, end])), assert_atom,
              st.sampled_from([("anchor", "\\Z"), ("flags", ("anchor", "$"), "m", "")])))
assertion_ast = st.recursive(st.one_of(assert_atom, assert_atom, anchor_node, anchor_node, assert_look, end_look),
                             extend, max_leaves=8)


@settings(max_examples=150, **PROPERTY_SETTINGS)
@given(ast=assertion_ast, head=st.sampled_from(["", "", "(?m)", "(?a)", "(?s)", "(?ms)"]),
       rnd=st.randoms(use_true_random=False),
       randoms=st.lists(st.text(alphabet=ASSERT_CHARS + ["_", "1", "-"], max_size=8), max_size=8))
def test_assertions_anywhere_agree_with_re(ast, head, rnd, randoms):
    """Generated patterns with anchors, word boundaries and lookarounds anywhere (in groups,
    alternatives, bounded and unbounded repetitions): every mode against ``re``."""
    pattern = head + render(ast)
    generated = [sample(ast, rnd) for _ in range(4)]
    strings = all_strings(ASSERT_CHARS, 3) + generated + [mutate(g, rnd) for g in generated] + randoms
    strings += [a + g + b for g in generated for a, b in [("\n", ""), ("", "\n"), ("a", " "), (" ", "b")]]
    check_modes(pattern, strings, [m for m in MODES if m != "search-json-escapes"])


@settings(max_examples=60, **PROPERTY_SETTINGS)
@given(look=assertion_ast, negate=st.booleans(), body=assertion_ast, rnd=st.randoms(use_true_random=False))
def test_lookaheads_at_the_start_agree_with_re(look, negate, body, rnd):
    """Any lookahead right after ^ (its own pattern with anchors, lookarounds): a condition on the
    whole string."""
    ast = ("cat", [("anchor", "^"), ("look", "!" if negate else "=", look), body])
    pattern = render(ast)
    generated = [sample(look, rnd) + sample(body, rnd) for _ in range(3)] + [sample(body, rnd) for _ in range(3)]
    strings = all_strings(ASSERT_CHARS, 3) + generated + [mutate(g, rnd) for g in generated]
    check_modes(pattern, strings + [g + "\n" for g in generated], ["search", "search-json", "fullmatch"])


@pytest.mark.parametrize("pattern,position", [
    ("a(?!b|$)", 1),  # (?!X|$) is not a requirement on the next character (nor the end) alone
    ("^(?:(?!ab)[ab])*$", 4),
    ("(?=ab)", 0),  # in search, also where a match starts after the start of the string
    ("^a|(?=ab)", 3),
    ("(?m)^(?!ab)", 5),
    ("(?<=ab)", 0),
])
def test_lookarounds_on_more_are_refused_where_unsupported(pattern, position):
    re.compile(pattern)
    with pytest.raises(constrain.RegexError) as info:
        Lowering(TermStore()).search(pattern, Encoding.JSON)
    assert info.value.position == position, str(info.value)
    assert "one character" in str(info.value)
    with pytest.raises(constrain.RegexError):
        Lowering(TermStore()).fullmatch("^(?!ab)a")  # the lexer's fullmatch: the lookahead sees past the match


@pytest.mark.parametrize("pattern", [r"(?!\s|\Z)a", r"a\bb", r"a\B\w", r"x(?<!a)b", r"(?=a|$)a", r"a$\n", r"^a$",
                                     r"(?m)^a$\n^b", r"a(?=\n|$)\n", r"(?:a(?=b)|b)+b", r"\A\Z", r"(?m)$"])
def test_lexer_fullmatch_lowers_assertions_inside_the_match(pattern):
    """The lexer's fullmatch refuses only lookarounds and word boundaries that look past the match."""
    check_modes(pattern, ASSERT_STRINGS, ["lexer"])
    lowered(pattern, "lexer")


@pytest.mark.parametrize("tok_name", TOKENIZERS)
@pytest.mark.parametrize("pattern,strings", [
    (r"(^a|b)+", ["a", "ab", "ba", "abb", "aa", ""]),
    (r"a^b|c$", ["ab", "c", "c\n"]),
    (r"(?:a$\n|b)+", ["a\n", "ba\n", "a\nb", "a\na\n", "b"]),
    (r"(?m)(?:^a$\n?)+", ["a", "a\na", "a\na\n", "aa", "a\n\na"]),
    (r"x\b(?:y|\W)", ["xy", "x-", "x "]),
])
def test_assertions_through_compile_regex(tok_name, pattern, strings):
    """compile_regex (re.fullmatch on the whole text) token by token."""
    assert_compile_regex_is_fullmatch(tok_name, pattern, strings)


def test_assertions_in_long_repetitions():
    """A bounded repetition holding assertions unrolls up to 100 times; unbounded ones close."""
    for pattern in [r"(?:^a|b){100}", r"(?:a$|b){0,100}\n?", r"(?:\bb|\n){3,}", r"(?:(?<!b)a|b){50,}"]:
        texts = ["b" * 99, "b" * 100, "a" + "b" * 99, "b" * 99 + "a", "b" * 99 + "a\n", "\n" * 70, "ab" * 50,
                 "b\n" * 60, "a" * 60]
        check_modes(pattern, texts)


def test_word_boundary_follows_the_ascii_flag():
    for pattern in [r"\bé", r"(?a)\bé", r"(?a:é\b)", r"é\B", r"(?u)\B_"]:
        check_modes(pattern, ["é", " é", "aé", "é ", "éa", "_", "a_", ""])


@pytest.mark.parametrize("pattern,lazy", [
    ("a*?", True), ("a+?b", True), ("a??", True), ("a{1,2}?", True), ("a{2}?", True), ("a{,}?", True),
    ('".*?(?<!\\\\)(\\\\\\\\)*?"', True), ("(?:ab*?)+", True), ("(?x)a* ?", None),
    ("a*", False), ("a\\*?", False), ("[*?]+", False), ("(?:a*)?", False), ("(?x)a* # *?", False),
    ("a(?#*?)", False), ("a{?", False), ("a{1,2}", False), ("\\??", False),
])
def test_has_lazy_quantifier(pattern, lazy):
    if lazy is None:  # not a regex: the error is the parser's
        with pytest.raises(constrain.RegexError):
            has_lazy_quantifier(pattern)
    else:
        assert has_lazy_quantifier(pattern) is lazy


def lark_common_terminals() -> dict[str, str]:
    """Every terminal of Lark's common.lark, as the Python regex Lark compiles it to."""
    lark = pytest.importorskip("lark")
    from lark.load_grammar import load_grammar

    path = f"{lark.__path__[0]}/grammars/common.lark"
    with open(path, encoding="utf-8") as f:
        names = re.findall(r"^(\w+)\s*(?:\.\d+)?\s*:", f.read(), re.M)
    grammar = "start: " + " ".join(names) + "\n" + "\n".join(f"%import common.{n}" for n in names)
    loaded, _ = load_grammar(grammar, "<common>", [], False)
    terminals, _, _ = loaded.compile(["start"], set(names))
    return {t.name: t.pattern.to_regexp() for t in terminals}


# A match of each terminal of common.lark, and characters for random strings around them.
LARK_SAMPLES = ["7", "f", "42", "-42", "1.5", ".5", "e+3", "1e5", "+1.5e-3", "3.14", "-3", "abc", '"a\\"b\\\\"',
                '"\\\\\\""', "q", "Q", "Word", "_a1", " \t", " \n\x0c", "\r", "\n", "\r\n\n", "# hi", "// hi",
                "/* a\n*/", "/***/", "-- hi"]
LARK_CHARS = list("019afGz_+-.eE \t\x0c\r\n\"\\#/*x")


def test_lark_common_terminals_lower_and_agree_with_re():
    """Every terminal of common.lark lowers (but _STRING_ESC_INNER, a fragment of ESCAPED_STRING
    whose lookbehind can look before its match) and matches what ``re.fullmatch`` does."""
    rnd = random.Random(0)
    randoms = ["".join(rnd.choice(LARK_CHARS) for _ in range(rnd.randint(0, 8))) for _ in range(400)]
    mutated = [mutate(s, rnd) for s in LARK_SAMPLES for _ in range(5)]
    terminals = lark_common_terminals()
    assert {"ESCAPED_STRING", "SIGNED_NUMBER", "CNAME", "WS", "NEWLINE", "C_COMMENT", "CPP_COMMENT"} <= set(terminals)
    for name, pattern in terminals.items():
        if name == "_STRING_ESC_INNER":
            with pytest.raises(constrain.RegexError, match="lookbehind"):
                dfa_fullmatch(pattern)
            continue
        check_against_re(pattern, LARK_SAMPLES + mutated + randoms)
        assert any(re.fullmatch(pattern, s) for s in LARK_SAMPLES), name


FLAG_PIECES = PATTERN_PIECES + ["(?i)", "(?x)", "(?s", "(?m:", "(?a", "(?-i:", "i", "s", "m", "A", "K", "ſ", " ",
                                "#", "(?<!", "(?<=", "(?=", "(?!", "\n"]
FLAG_PROBES = PROBE_CHARS + ["A", "B", "K", "ſ", "\u212a", " "]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(st.sampled_from(FLAG_PIECES), min_size=1, max_size=8),
       probes=st.lists(st.lists(st.sampled_from(FLAG_PROBES), max_size=5).map("".join), min_size=10, max_size=30))
def test_random_pattern_text_with_flags_against_re(pieces, probes):
    """As test_random_pattern_text_against_re, with inline flags and lookarounds among the pieces."""
    pattern = "".join(pieces)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rx = re.compile(pattern)
    except (re.error, OverflowError, ValueError):
        rx = None
    try:
        accepts = dfa_fullmatch(pattern)
    except constrain.RegexError as exc:
        assert exc.position is None or 0 <= exc.position <= len(pattern)
        return
    assert rx is not None, f"{pattern!r} is not a Python regex but compiled"
    for s in probes + [""]:
        assert accepts(s) == (rx.fullmatch(s) is not None), (pattern, s)


def test_emptiness_search_work_is_bounded_and_an_undecided_search_is_not_a_proof():
    """``x & ~x`` is empty, but proving it explores the product of x's automaton (2**12 states
    here), and each derivative of the intersection derives its parts too. The search bounds its
    work, derivatives included: past the budget it answers "not proven empty" (False), and given
    budget enough it proves emptiness."""
    def empty_intersection(budget: int) -> tuple[bool, int]:
        store = TermStore()
        store.search_budget = budget
        x = Lowering(store).fullmatch("[ab]*a[ab]{11}", Encoding.RAW)
        t = store.and_(x, store.not_(x))
        before = len(store._deriv)
        return store.is_empty(t), len(store._deriv) - before

    verdict, work = empty_intersection(1_000)
    assert verdict is False
    assert work <= 1_000 + 3 * 256  # the budget, plus the derivatives of the last term expanded
    assert empty_intersection(10**6)[0] is True


PORTABLE_PATTERNS = [r"^[a-z0-9._-]+@[a-z]+\.[a-z]{2,6}$", r"(?<![0-9])\d{3}(?!x)", r"^[^\s\"]{2,40}$",
                     r"\bword\b", r"(ab|cd)*e{3,5}[^a]?", r"^$", r"colou?r"]


@pytest.mark.parametrize("pattern", PORTABLE_PATTERNS)
def test_exported_terms_rebuild_the_same_term(pattern):
    """A lowered pattern exported from one store and imported into another where the pattern was
    lowered from scratch is that very term there (hash-consing: the same structure), and so is
    an import into its own store."""
    from constrain import regex as regex_module

    regex_module._PORTABLE.clear()
    first = TermStore()
    term = Lowering(first, unicode_escapes=True).search(pattern, Encoding.JSON)
    graph = first.export_term(term)
    assert first.import_term(graph) == term
    regex_module._PORTABLE.clear()
    fresh = TermStore()
    fresh.literal(b"unrelated terms first, so that ids differ from the first store's")
    lowered = Lowering(fresh, unicode_escapes=True).search(pattern, Encoding.JSON)
    assert fresh.import_term(graph) == lowered


def test_utf8_tries_rebuilt_in_another_store_are_the_built_ones():
    from constrain import regex as regex_module

    regex_module._PORTABLE.clear()
    Lowering(TermStore()).charset(cs.word(), Encoding.RAW)  # built, then cached
    assert ("utf8", cs.word(), False) in regex_module._PORTABLE
    store = TermStore()
    store.literal(b"unrelated terms first, so that ids differ from the first store's")
    rebuilt = Lowering(store).charset(cs.word(), Encoding.RAW)
    assert rebuilt == store.byte_sequences(regex_module._utf8_masks(cs.word()))


def test_lowered_patterns_are_shared_across_stores_by_options():
    """The cross-store cache keys on the options that change the term (JSON escapes here): a
    pattern lowered with escapes allowed is not served to a store that refuses them."""
    from constrain import regex as regex_module

    regex_module._PORTABLE.clear()
    plain, escapes = TermStore(), TermStore()
    a = Lowering(plain).search("caf[eé]", Encoding.JSON)
    b = Lowering(escapes, unicode_escapes=True).search("caf[eé]", Encoding.JSON)
    dfa_a, dfa_b = LazyDFA(plain, a), LazyDFA(escapes, b)
    text = b"caf\\u00e9"
    end_a, end_b = dfa_a.step(dfa_a.start, text), dfa_b.step(dfa_b.start, text)  # (stepping may grow the arrays)
    assert end_a == DEAD or not dfa_a.accepting[end_a]
    assert dfa_b.accepting[end_b]

    def patterns() -> list:  # the cache also holds the UTF-8 tries of character sets
        return [key for key in regex_module._PORTABLE if key[0] != "utf8"]

    assert len(patterns()) == 2
    again = TermStore()  # a hit: rebuilt, the very term the plain store lowered
    c = Lowering(again).search("caf[eé]", Encoding.JSON)
    assert len(patterns()) == 2
    assert plain.import_term(again.export_term(c)) == a


# --------------------------------------------------------------------------------------------------
# JSON string contents
# --------------------------------------------------------------------------------------------------

ASSERTIONS = ["", "^", "$", r"\b", r"\B", "(?!a)", "(?<!b)", "(?=[ab])", r"\Z", r"\A"]


def _outside_json_contents(store: TermStore, low: Lowering, term: int) -> bool:
    """Whether ``term`` has a text that is not JSON string contents (searched to the end)."""
    store.search_budget = 10**7
    contents = store.star(low.charset(cs.ANY, Encoding.JSON))
    return not store.is_empty(store.and_(term, store.not_(contents)))


@settings(max_examples=80, **PROPERTY_SETTINGS)
@given(ast=regex_ast, before=st.sampled_from(ASSERTIONS), after=st.sampled_from(ASSERTIONS))
def test_json_encoded_patterns_are_json_string_contents(ast, before, after):
    """The schema compiler takes a pattern's term as a string's contents without intersecting it
    with JSON string contents (``_SchemaCompiler.string``): every text of the term must be some."""
    store = TermStore()
    low = Lowering(store)
    pattern = before + render(ast) + after
    try:
        term = low.search(pattern, Encoding.JSON)
    except constrain.RegexError:
        return  # refused (a lookaround it cannot lower): nothing to check
    assert not _outside_json_contents(store, low, term), pattern
