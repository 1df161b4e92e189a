"""String formats agree with jsonschema's FormatChecker: never accept an invalid string; accept
every valid one, except outside the documented common form of the SUBSET formats."""

import functools
import ipaddress
import itertools
import json
import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from constrain.automaton import DEAD, LazyDFA
from constrain.formats import SUBSET_FORMATS, checked_formats, format_patterns
from constrain.json_schema import compile_schema_term
from constrain.terms import TermStore

SUPPORTED = sorted(f for f in checked_formats() if format_patterns(f) is not None)

EXAMPLES = [
    "", "a", "x@y", "@", "2024-02-29", "2023-02-29", "2000-02-29", "1900-02-29", "0000-01-01", "2024-13-01",
    "2024-01-01T10:20:30Z", "2024-01-01t10:20:30.5+01:00", "2024-01-01T24:00:00Z", "2024-01-01T10:20:30Z\n",
    "10:20:30Z", "10:20:30", "23:59:60Z", "192.168.0.1", "256.1.1.1", "01.2.3.4", "1.2.3",
    "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000", "123e4567e89b12d3a456426614174000",
    "http://a.com", "https://x.y/z?q=1#f", "a:b", "no scheme", "http://[::1]/", "http://a b", "%41:x",
    "http://é.com", "/a/b", "#f", "//host", "%zz", "example.com", "-a.com", "a-.com", "EXAMPLE.com.", "a..b",
    "1.2.3.4", "/", "/a~0b", "/a~2", "~0", "/a~", "a" * 64 + ".com",
]


@functools.cache
def _accepts(fmt: str):
    schema = {"type": "string", "format": fmt}
    store = TermStore()
    term, _, _ = compile_schema_term(schema, store)
    dfa = LazyDFA(store, term)

    def accepts(text: str) -> bool:
        state = dfa.step(dfa.start, json.dumps(text, ensure_ascii=False).encode())
        return state != DEAD and bool(dfa.accepting[state])

    return accepts, Draft202012Validator(schema, format_checker=FormatChecker())


@pytest.mark.parametrize("fmt", SUPPORTED)
def test_examples_agree_with_the_validator(fmt):
    accepts, validator = _accepts(fmt)
    for text in EXAMPLES:
        got, valid = accepts(text), validator.is_valid(text)
        if got:
            assert valid, (fmt, text)
        elif valid and fmt not in SUBSET_FORMATS:
            pytest.fail(f"{fmt}: valid {text!r} rejected")


ALPHABET = st.sampled_from(list("0123456789abcdefAEZTz:-.+/@%#?[]~ _é\n"))


@pytest.mark.parametrize("fmt", SUPPORTED)
@settings(max_examples=150, deadline=None)
@given(text=st.lists(ALPHABET, max_size=24).map("".join))
def test_random_strings_never_accepted_when_invalid(fmt, text):
    accepts, validator = _accepts(fmt)
    if accepts(text):
        assert validator.is_valid(text), (fmt, text)
    elif fmt not in SUBSET_FORMATS:
        assert not validator.is_valid(text), (fmt, text)


# -- formats built from the checkers' own rules: ipv6, relative-json-pointer, color, uri-template
# (exact); duration, idn-hostname, regex (subsets) ------------------------------------------------

EXACT_BUILT = ["ipv6", "relative-json-pointer", "color", "uri-template"]
SUBSET_BUILT = ["duration", "idn-hostname", "regex"]


def _conforms(text: str, fmt: str) -> bool:
    """The checker's answer; where it raises instead (relative-json-pointer's int("²"), duration's
    Decimal overflow) the validator would crash, so that string counts as invalid."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # for regex: a FutureWarning from re.compile counts as invalid
            return FormatChecker().conforms(text, fmt)
    except Exception:  # noqa: BLE001
        return False


def _ours(fmt: str):
    return _accepts(fmt)[0]


def _agree(fmt: str, text: str) -> None:
    got, valid = _ours(fmt)(text), _conforms(text, fmt)
    if got:
        assert valid, (fmt, text)
    elif fmt not in SUBSET_FORMATS:
        assert not valid, (fmt, text)


def test_built_formats_are_supported_and_classified():
    assert set(EXACT_BUILT + SUBSET_BUILT) <= set(SUPPORTED)
    assert not set(EXACT_BUILT) & SUBSET_FORMATS
    assert set(SUBSET_BUILT) <= SUBSET_FORMATS


TRICKY = {
    "ipv6": [
        "::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::3:4:5:6:7:8",
        "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", ":::", "1:::2", "1::2::3",
        ":", "1", "", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
        "1:2:3:4:5::1.2.3.4", "1:2:3:4:5:6::1.2.3.4", "::01.2.3.4", "::256.1.1.1", "::1.2.3", "1.2.3.4::",
        "::1.2.3.4:1", "00000::", "0000::", "ABCD:ef01::", "g::", "::1%eth0", "::1%", "::1/64", " ::1",
        "::1\n", "::١", "fe80::1%1", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
    ],
    "relative-json-pointer": [
        "0", "1", "9", "10", "100", "01", "00", "0#", "1#", "0##", "#", "", "0/", "0/a", "0/a~0b~1", "0/a~",
        "0/a~2", "3/", "3//", "0a", "1/a/b", "²", "1²", "²1", "1²/a", "٣", "٣٠", "١٠٠", "𝟏𝟎", "0\n",
        "0/\n", "-1", "+1", " 1",
    ],
    "color": [
        "red", "RED", "Red", "rebeccapurple", "lightgoldenrodyellow", "blac\u212a", "\u212ahaki", "grey", "gray",
        "transparent", "#fff", "#FFF", "#ffffff", "#fffffff", "#ff", "#ffff", "#fff\n", "#fff\n\n", "red\n",
        "#ggg", "fff", "", "#", "#\u212a00", " red", "rgb(0,0,0)",
    ],
    "uri-template": [
        "", "a", "{a}", "{a,b}", "{+a}", "{#a}", "{.a}", "{/a}", "{;a}", "{?a}", "{&a}", "{,a}", "{,+a}",
        "{=a}", "{!a}", "{@a}", "{|a}", "{}", "{+}", "{,}", "{,+}", "{a,}", "{a,,}", "{a.}", "{a;}", "{a&}",
        "{a/b}", "{a:3}", "{a:0}", "{a:000}", "{a:007}", "{a:1000}", "{a:}", "{a*}", "{a[]}", "{a*[]}",
        "{a[]*}", "{a:3*}", "{a=x}", "{a={b}", "{a=}", "{a=x,y}", "{%41}", "{a%41}", "{a%4}", "{a%4G}",
        "{_a}", "{1}", "{-a}", "{a b}", "{a\n}", "{a=x\n}", "{a=\nx}", "{+a=\nx}", "{a\n,b}", "{a{b}",
        "{{a}", "a}", "{a", "}{", "{a}{b}", "/x/{a}/y{?q,r*}", "é{a}é", "{a=é}", "{é}", "{a.b.c}",
        "{.a*}", "{?a[],b:12}",
    ],
    "duration": [
        "P1D", "PT1H", "P1Y2M3DT4H5M6S", "P1W", "-P1D", "+P1D", "P1.5D", "P1,5D", "P0.5W", "PT0S", "P1Y1D",
        "PT1H1S", "P", "PT", "P1", "P1Y2", "P1M1Y", "PT1S1H", "P1WT1H", "P1DT", "p1d", "P1d", "1D", "P1D\n",
        "P" + "9" * 20 + "Y", "P" + "9" * 21 + "Y", "P1e3Y", "P-1Y", "P0Y1W", "P1Y2T1H", "P1e1000000Y",
    ],
    "idn-hostname": [
        "a", "a.b", "example.com", "example.com.", "EXAMPLE.COM", "a-b.c", "-a", "a-", "ab--cd", "a--b",
        "abc--d", "xn--nxasmq6b", "xn--abc", "a..b", ".", "", "a" * 63, "a" * 64, ".".join(["a" * 63] * 4),
        ".".join(["a" * 63] * 3 + ["a" * 61]), ".".join(["a" * 63] * 3 + ["a" * 61]) + ".", "a_b", "é.com",
        "a\u3002b", "1.2.3.4", "a b",
    ],
    "regex": [
        "", "a", "^[a-z]+$", "^\\d{3}-\\d{4}$", "^[a-zA-Z0-9_.-]+$", "(foo|bar)*", "(?:a|b)+?", "a{2,}", "a{,3}",
        "a{2,10}", "a{10,2}", "a{3,3}", "[^-]", "[-]", "[]", "[", "(", ")", "a**", "*", "^*", "\\", "\\q", "\\1",
        "[z-a]", "[\\d-z]", "[[a]", "[a--b]", "[--]", "[^--]", "[-a-]", "[a-z-]", "[a&&b]", "[a|b]", "((((a))))",
        "(((a)))", "\\u00e9", "\\x4", "a{99999}",
    ],
}

COMMON = {  # strings of each subset's documented form: these must be generated
    "duration": ["P1D", "PT1H", "P1Y2M3DT4H5M6S", "P1W", "-P1D", "P1.5D", "PT0S", "P1Y1D", "P1WT1H"],
    "idn-hostname": ["a", "example.com", "example.com.", "EXAMPLE.COM", "a-b.c", "1.2.3.4"],
    "regex": ["", "a", "^[a-z]+$", "^\\d{3}-\\d{4}$", "^[a-zA-Z0-9_.-]+$", "(foo|bar)*", "(?:a|b)+?", "a{2,10}",
              "^[\\w.-]+@[\\w-]+\\.[a-z]{2,}$", "\\.json$", "^https?://"],
}


@pytest.mark.parametrize("fmt", EXACT_BUILT + SUBSET_BUILT)
def test_built_formats_tricky_cases(fmt):
    for text in TRICKY[fmt] + EXAMPLES:
        _agree(fmt, text)
    for text in COMMON.get(fmt, []):
        assert _ours(fmt)(text), (fmt, text)


# Every string up to a length over a small alphabet chosen to hit the format's rules.
EXHAUSTIVE = [
    ("ipv6", "1:.", 10),
    ("ipv6", "0f:", 9),
    ("ipv6", "0:.%/", 6),
    ("relative-json-pointer", ["0", "1", "²", "٣", "٠", "#", "/", "~", "a"], 5),
    ("color", ["#", "a", "F", "0", "\n", "K"], 5),
    ("color", ["r", "e", "d", "R", "t", "a", "n", "\u212a"], 4),
    ("uri-template", "{}a,=*:1%\n+.[]", 4),
    ("uri-template", "{}a,=:0%F/;", 5),
    ("duration", "PTYMDWHS01.,-", 4),
    ("idn-hostname", "a-.1X", 6),
    ("regex", "a(|)*?{},1[]^-\\", 4),
    ("regex", "a(|)*?{}1,[-b\\:", 4),
]
EXHAUSTIVE_SLOW = [
    ("ipv6", "1:.", 11),
    ("ipv6", "0f:", 10),
    ("ipv6", "0:.%/", 7),
    ("uri-template", "{}a,=*:1%\n+.[]", 5),
    ("uri-template", "{}a,=:0%F/;", 6),
    ("duration", "PTYMDWHS01.,-", 5),
    ("idn-hostname", "a-.1X", 7),
    ("regex", "a(|)*?{},1[]^-\\", 5),
    ("regex", "a(|)*?{}1,[-b\\:", 5),
]


@pytest.mark.parametrize("fmt,alphabet,length", EXHAUSTIVE + [pytest.param(*case, marks=pytest.mark.slow)
                                                              for case in EXHAUSTIVE_SLOW])
def test_built_formats_exhaustive_short_strings(fmt, alphabet, length):
    for n in range(length + 1):
        for chars in itertools.product(alphabet, repeat=n):
            _agree(fmt, "".join(chars))


@st.composite
def ipv6_texts(draw):
    if draw(st.booleans()):
        address = ipaddress.IPv6Address(draw(st.integers(0, 2 ** 128 - 1) | st.integers(0, 2 ** 32)
                                             | st.integers(0, 2 ** 32).map(lambda v: v | 0xFFFF << 32)))
        mapped = "::ffff:" + str(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return draw(st.sampled_from([str(address), address.exploded, str(address).upper(), mapped]))
    units = [draw(st.from_regex("[0-9a-fA-F]{1,4}", fullmatch=True)) for _ in range(8)]
    v4 = draw(st.booleans())
    if v4:
        units[6:] = [".".join(str(draw(st.integers(0, 255))) for _ in range(4))]
    if draw(st.booleans()):
        return ":".join(units)
    count = 7 if v4 else 8  # hextet positions, the IPv4 tail counting as one unit after index 5
    i = draw(st.integers(0, count - 1))
    j = draw(st.integers(i + 1, count))
    if v4 and j == count:
        j = count - 1 if i < count - 1 else count
    return ":".join(units[:i]) + "::" + ":".join(units[j:])


@st.composite
def uri_templates(draw):
    names = st.from_regex("[A-Za-z0-9_](?:[A-Za-z0-9_./]|%[0-9A-Fa-f]{2}){0,4}", fullmatch=True)
    modifiers = st.sampled_from(["", "*", "[]", ":1", ":10", ":999", ":007"])
    defaults = st.sampled_from(["", "=", "=x", "=a b", "=é{", "=:;&"])
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        if draw(st.booleans()):
            parts.append(draw(st.text(st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)),
                                      max_size=4)))
        else:
            var_list = ",".join(draw(names) + draw(modifiers) + draw(defaults)
                                for _ in range(draw(st.integers(1, 3))))
            op = draw(st.sampled_from(["", "+", "#", ".", "/", ";", "?", "&", ",", ",+"]))
            parts.append("{" + op + var_list + draw(st.sampled_from(["", ",", ".", "/", ";", "&"])) + "}")
    return "".join(parts)


def _iso_duration(draw) -> str:
    number = st.from_regex("[0-9]{1,3}(?:[.,][0-9]{1,2})?", fullmatch=True)

    def designated(letters: str) -> str:
        chosen = [c for c in letters if draw(st.booleans())] or [draw(st.sampled_from(letters))]
        return "".join(draw(number) + c for c in chosen)

    sign = draw(st.sampled_from(["", "-", "+"]))
    kind = draw(st.sampled_from(["date", "time", "both", "week"]))
    date = designated("YMD") if kind in ("date", "both") else draw(number) + "W" if kind == "week" else ""
    time = "T" + designated("HMS") if kind in ("time", "both") else ""
    return f"{sign}P{date}{time}"


@st.composite
def regex_texts(draw, depth: int = 3):
    """Regexes of the documented subset, built from its grammar (not from our pattern)."""
    literal = st.characters(blacklist_characters="\\.^$*+?{}[]|()", blacklist_categories=("Cs",))
    escape = st.sampled_from(list("dDwWsSntrfv.\\[]{}()|^$*+?-/ é")).map(lambda c: "\\" + c) | st.sampled_from(
        ["\\x41", "\\u00e9"])
    class_char = st.characters(blacklist_characters="\\[]-^&~|", blacklist_categories=("Cs",))
    class_range = st.sampled_from(["0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]).flatmap(
        lambda run: st.tuples(st.integers(0, len(run) - 1), st.integers(0, len(run) - 1)).map(
            lambda ij: f"{run[min(ij)]}-{run[max(ij)]}"))
    class_item = class_char | escape | st.just("\\b") | class_range

    def klass() -> str:
        inner = "".join(draw(st.lists(class_item, min_size=1, max_size=4)))
        inner = draw(st.sampled_from(["", "-"])) + inner + draw(st.sampled_from(["", "-"]))
        return "[" + draw(st.sampled_from(["", "^"])) + draw(st.sampled_from([inner, "-", "--"])) + "]"

    def quantifier() -> str:
        n = draw(st.integers(0, 9999))
        m = draw(st.integers(0, 9999))
        n, m = min(n, m), max(n, m)
        if len(str(n)) == len(str(m)) > 2:
            n = n // 100
        q = draw(st.sampled_from(["", "*", "+", "?", f"{{{n}}}", f"{{{n},}}", f"{{,{m}}}", f"{{{n},{m}}}"]))
        return q + (draw(st.sampled_from(["", "?"])) if q else "")

    def alternation(level: int) -> str:
        out = []
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["literal", "literal", "dot", "escape", "class", "anchor", "bar", "group"]))
            if kind == "anchor":
                out.append(draw(st.sampled_from(["^", "$", "\\A", "\\b", "\\B", "\\Z"])))
            elif kind == "bar":
                out.append("|")
            else:
                if kind == "group" and level > 0:
                    atom = "(" + draw(st.sampled_from(["", "?:"])) + alternation(level - 1) + ")"
                elif kind == "class":
                    atom = klass()
                elif kind == "escape":
                    atom = draw(escape)
                elif kind == "dot":
                    atom = "."
                else:
                    atom = draw(literal)
                out.append(atom + quantifier())
        return "".join(out)

    return alternation(depth)


@st.composite
def valid_texts(draw, fmt):
    """Strings of the format (of its documented form, for subsets)."""
    if fmt == "ipv6":
        return draw(ipv6_texts())
    if fmt == "relative-json-pointer":
        digits = draw(st.sampled_from(["0", "1", "7", "12", "٣", "²", "1٠", "99"]))
        token = st.text(max_size=3).map(lambda t: "/" + t.replace("~", "~0").replace("/", "~1"))
        rest = draw(st.sampled_from(["", "#"]) | st.lists(token, max_size=3).map("".join))
        return digits + rest
    if fmt == "color":
        import webcolors

        name = draw(st.sampled_from(webcolors.names("css3"))
                    | st.from_regex("#[0-9a-f]{3}|#[0-9a-f]{6}", fullmatch=True))
        return "".join(c.upper() if draw(st.booleans()) else c for c in name)
    if fmt == "uri-template":
        return draw(uri_templates())
    if fmt == "duration":
        return _iso_duration(draw)
    if fmt == "idn-hostname":
        label = st.from_regex("[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True).filter(
            lambda s: s[2:4] != "--")
        return ".".join(draw(st.lists(label, min_size=1, max_size=4))) + draw(st.sampled_from(["", "."]))
    assert fmt == "regex"
    return draw(regex_texts())


MUTATION_CHARS = list("0123456789afAFgzZK:.%/#~{}[](),=*+?|^$-\\ \n PTYMDWHS²٣é\u212a")


@st.composite
def mutated(draw, fmt):
    text = list(draw(valid_texts(fmt)))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if action == "insert" or not text:
            text.insert(at, draw(st.sampled_from(MUTATION_CHARS)))
        elif action == "delete":
            del text[min(at, len(text) - 1)]
        elif action == "replace":
            text[min(at, len(text) - 1)] = draw(st.sampled_from(MUTATION_CHARS))
        else:
            end = draw(st.integers(at, len(text)))
            text[at:at] = text[at:end]
    return "".join(text)


@pytest.mark.parametrize("fmt", EXACT_BUILT + SUBSET_BUILT)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_built_formats_accept_their_valid_strings(fmt, data):
    text = data.draw(valid_texts(fmt))
    assert _conforms(text, fmt), (fmt, text)
    assert _ours(fmt)(text), (fmt, text)


@pytest.mark.parametrize("fmt", EXACT_BUILT + SUBSET_BUILT)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_built_formats_on_mutations(fmt, data):
    _agree(fmt, data.draw(mutated(fmt)))


@pytest.mark.parametrize("fmt", EXACT_BUILT + SUBSET_BUILT)
@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(MUTATION_CHARS + ["::", "1.2.3.4", "{a}", "xn--", "~0", "red"]),
                     max_size=16).map("".join))
def test_built_formats_on_random_strings(fmt, text):
    _agree(fmt, text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="ascii"), max_size=40) | st.from_regex(
    "(?:[a-zA-Z0-9-]{1,6}\\.){0,3}[a-zA-Z0-9-]{1,6}\\.?", fullmatch=True))
def test_idn_hostname_is_exact_on_ascii_without_a_labels(text):
    """The subset leaves out only non-ASCII names and xn-- labels."""
    if any(label.lower().startswith("xn--") for label in text.split(".")):
        return
    assert _ours("idn-hostname")(text) == _conforms(text, "idn-hostname"), text


@settings(max_examples=300, deadline=None)
@given(text=regex_texts())
def test_regex_subset_always_compiles_without_warnings(text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        re.compile(text)
    assert _ours("regex")(text)


@pytest.mark.parametrize("rule", ["URI", "URI_reference", "IRI", "IRI_reference"])
def test_rfc3987_patterns_are_the_ones_the_checker_compiles(rule):
    rfc3987 = pytest.importorskip("rfc3987")
    from constrain.formats import _rfc3987_pattern

    template = "^%%(%s)s$" % rule
    assert _rfc3987_pattern(template) == rfc3987.get_compiled_pattern(template).pattern


@pytest.mark.parametrize("fmt", SUPPORTED)
def test_format_terms_are_json_string_contents(fmt):
    """A string's contents are a format's term alone where no length or pattern comes with it
    (``_SchemaCompiler.string``), so every text of that term must be JSON string contents."""
    from constrain import charset as cs
    from constrain.regex import Encoding, Lowering

    store = TermStore()
    low = Lowering(store)
    store.search_budget = 10**7
    contents = store.star(low.charset(cs.ANY, Encoding.JSON))
    for pattern, mode in format_patterns(fmt):
        term = low.search(pattern, Encoding.JSON) if mode == "search" else low.fullmatch(pattern, Encoding.JSON)
        assert store.is_empty(store.and_(term, store.not_(contents))), (fmt, pattern)
