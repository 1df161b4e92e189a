"""String ``format``s as regular languages, exactly as ``jsonschema.FormatChecker`` decides them.

Each entry is a Python-``re`` pattern for ``re.fullmatch`` over the decoded string. Where the
checker's own language is wider than what a model should ever write (``uuid`` through ``UUID()``
also takes braces, ``urn:uuid:`` and integer-literal quirks), we generate the canonical subset and
say so in ``SUBSET_FORMATS``; everything generated is valid.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from jsonschema import FormatChecker

from . import charset as cs

_DIGIT = "[0-9]"
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"  # 0001-9999
# Years divisible by 4 (and by 400 when divisible by 100; 0000 is no year), for February 29.
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = ("(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              "|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_DATE = f"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# rfc3339_validator upper-cases first, so t and z are accepted; its `$` also admits one final newline.
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])\n?"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_HEX = "[0-9a-fA-F]"

FORMAT_PATTERNS: dict[str, str] = {
    "date": _DATE,
    "date-time": f"{_DATE}[Tt]{_TIME}",
    "email": "[\\s\\S]*@[\\s\\S]*",
    "idn-email": "[\\s\\S]*@[\\s\\S]*",
    "ipv4": f"{_OCTET}\\.{_OCTET}\\.{_OCTET}\\.{_OCTET}",
    "uuid": f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
}

_LABEL = "[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?"

# Patterns for re.search (anchored by their own ^ and $) rather than re.fullmatch.
SEARCH_PATTERNS: dict[str, str] = {
    # jsonpointer: "" or "/"-separated tokens where "~" only starts "~0" or "~1"
    "json-pointer": "^(?:/(?:[^/~]|~[01])*)*\\Z",
}

FORMAT_PATTERNS.update({
    # fqdn.FQDN(min_labels=1): labels of 1-63 letters, digits, inner hyphens; at most 253
    # characters besides a final dot. Generated: ASCII only (the checker lower-cases first and
    # its \\d is Unicode), checked by the intersection with the length bound.
    "hostname": f"(?:{_LABEL}\\.)*{_LABEL}\\.?",
})
_HOSTNAME_LENGTH = "[\\s\\S]{1,253}|[\\s\\S]{1,253}\\."

SUBSET_FORMATS = {"uuid", "hostname", "duration", "regex", "idn-hostname"}


def checked_formats() -> frozenset[str]:
    """Formats the validator actually checks here (it ignores the others, and so must we)."""
    return frozenset(FormatChecker().checkers)


def format_patterns(fmt: str) -> list[tuple[str, str]] | None:
    """``[(pattern, "fullmatch" | "search"), ...]`` whose intersection is the format, or None."""
    entry = FormatChecker.checkers.get(fmt)
    return _format_patterns(fmt, entry[0] if entry is not None else None)


@functools.lru_cache(maxsize=None)
def _format_patterns(fmt: str, checker: Any) -> list[tuple[str, str]] | None:
    """The patterns of ``fmt`` where ``checker`` is the function registered for it: built once
    per format and checker (reading a checker's source takes ~130 µs, draft 3's time regex ~120
    µs, and every string with a format asks). Callers do not modify the list."""
    if fmt in SEARCH_PATTERNS:
        return [(SEARCH_PATTERNS[fmt], "search")]
    if fmt == "hostname":
        return [(FORMAT_PATTERNS[fmt], "fullmatch"), (_HOSTNAME_LENGTH, "fullmatch")]
    if fmt == "time":
        return [_time_pattern(checker)]
    if fmt in FORMAT_PATTERNS:
        return [(FORMAT_PATTERNS[fmt], "fullmatch")]
    built = _BUILT.get(fmt)
    if built is not None and _checker_name(checker) == built[0]:
        return built[1]()
    rule = _RFC3987_RULES.get(fmt)
    if rule is not None and _uses_rfc3987(checker):
        return [(_without_group_names(_rfc3987_pattern("^%%(%s)s$" % rule)), "search")]
    return None


def _rfc3987_pattern(template: str) -> str:
    """The pattern that ``rfc3987.get_compiled_pattern(template)`` compiles, which the checker's
    ``rfc3987.parse`` matches (with ``regex`` when it is installed, which allows repeated group
    names: groups do not change the language). Read, not compiled: compiling it with ``regex``
    took 40-80 ms on first use."""
    import rfc3987

    if rfc3987.NARROW_BUILD:
        table = rfc3987.bmp_patterns if rfc3987.REGEX else rfc3987.bmp_upatterns_no_names
    else:
        table = rfc3987.patterns if rfc3987.REGEX else rfc3987.upatterns_no_names
    return table.get(template) or template % table


def _time_pattern(checker: Any) -> tuple[str, str]:
    """``FormatChecker()`` registers draft 3's ``time`` last, so "time" there means
    ``datetime.strptime(s, "%H:%M:%S")``; its regex comes from this Python's own ``_strptime``.
    Where the RFC 3339 checker is the one registered, it is the partial-time of date-time."""
    if checker.__name__ == "is_draft3_time":
        import _strptime

        pattern = _strptime.TimeRE().pattern("%H:%M:%S")
        return _without_group_names(pattern), "fullmatch"
    return _TIME, "fullmatch"


_RFC3987_RULES = {"uri": "URI", "uri-reference": "URI_reference", "iri": "IRI",
                  "iri-reference": "IRI_reference"}


def _uses_rfc3987(checker: Any) -> bool:
    """Whether ``checker`` (the function registered for a format) is jsonschema's rfc3987-based one."""
    if checker is None or checker.__module__ != "jsonschema._format":
        return False
    try:
        import rfc3987  # noqa: F401
    except ImportError:
        return False
    import inspect

    try:
        return "rfc3987.parse" in inspect.getsource(checker)
    except (OSError, TypeError):
        return False


def _without_group_names(pattern: str) -> str:
    """Named groups to plain groups: they do not change the language, and some libraries repeat names."""
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern)


# -- formats whose patterns are built from the checker's own rules -------------------------------------
# Each entry of _BUILT is (name of the checker function it was derived from, builder); a different
# checker registered under the format (another jsonschema, a user's FormatChecker) leaves it unsupported.

def _checker_name(checker: Any) -> str | None:
    if checker is None or getattr(checker, "__module__", None) != "jsonschema._format":
        return None
    return checker.__name__


def _char_class(chars) -> str:
    """A ``[...]`` class of exactly ``chars`` (code points written as escapes)."""
    cps = sorted({ord(c) for c in chars})
    ranges: list[list[int]] = []
    for cp in cps:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])

    def esc(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"

    return "[" + "".join(esc(lo) if lo == hi else f"{esc(lo)}-{esc(hi)}" for lo, hi in ranges) + "]"


# ipv6: ipaddress.IPv6Address(s) and no scope id. A "%" always fails (an empty scope id raises, any
# other makes the checker answer False), and so does "/". What is left is RFC 4291's text form, as
# _ip_int_from_string reads it: 1-4 ASCII hex digits per hextet (leading zeros allowed), either 8
# hextets, or one "::" standing for at least one zero hextet beside at most 7 written ones; the last
# two hextets may be written as an IPv4 address (the ipv4 format: no leading zeros).
_H16 = "[0-9A-Fa-f]{1,4}"
_IPV4 = f"{_OCTET}\\.{_OCTET}\\.{_OCTET}\\.{_OCTET}"


@functools.cache
def _ipv6() -> list[tuple[str, str]]:
    alts = [f"(?:{_H16}:){{7}}{_H16}", f"(?:{_H16}:){{6}}{_IPV4}"]
    for left in range(8):  # hextets written before the "::"; those after it number at most 7 - left
        head = "" if left == 0 else f"(?:{_H16}:){{{left - 1}}}{_H16}"
        tails = []
        if left <= 6:
            tails.append(f"(?:{_H16}:){{0,{6 - left}}}{_H16}")
        if left <= 5:
            tails.append(f"(?:{_H16}:){{0,{5 - left}}}{_IPV4}")
        alts.append(f"{head}::" + (f"(?:{'|'.join(tails)})?" if tails else ""))
    return [("|".join(f"(?:{a})" for a in alts), "fullmatch")]


# relative-json-pointer: jsonschema's own loop. The leading run of str.isdigit() characters (Unicode:
# also superscripts, other scripts' digits) must be non-empty; every one of them but the last is read
# with int() and must not be 0 (so "100" is refused, as the checker does, and a non-decimal digit such
# as "²" there makes the checker raise ValueError: refused here); the rest is "#" or a JSON pointer.
@functools.cache
def _relative_json_pointer() -> list[tuple[str, str]]:
    # str.isdigit() implies \w (re's \w is str.isalnum(), which includes it): only word
    # characters are tested one by one
    text = cs.code_point_text(cs.word()[-1][1] + 1)
    words = "".join(text[lo:hi + 1] for lo, hi in cs.word())
    digits, nonzero = [c for c in words if c.isdigit()], []
    for c in digits:
        try:
            if int(c) != 0:
                nonzero.append(c)
        except ValueError:
            pass
    pointer = "(?:/(?:[^/~]|~[01])*)*"
    return [(f"{_char_class(nonzero)}*{_char_class(digits)}(?:#|{pointer})", "fullmatch")]


# color (draft 3's CSS 2.1 checker): webcolors.name_to_hex(s), which looks s.lower() up among the CSS3
# names, or else webcolors.normalize_hex(s.lower()), a match of ^#([a-fA-F0-9]{3}|[a-fA-F0-9]{6})$
# (whose $ also takes a final newline). Finite: each character of a name or of the hex form may be any
# character that lower-cases to it (A for a, and the Kelvin sign for k).
@functools.cache
def _color() -> list[tuple[str, str]] | None:
    import webcolors

    if not callable(getattr(webcolors, "names", None)):  # webcolors before 24.6: not the library read here
        return None
    names = webcolors.names("css3")
    targets = set("".join(names)) | set("#0123456789abcdef\n")
    preimages: dict[str, list[str]] = {}
    # A character qualifies only if it is a target or lower() changes it; a block of code points
    # that lower() leaves as it is holds none of the latter (most blocks: this takes ~5 ms).
    every = cs.code_point_text()
    changed = set()
    for i in range(0, len(every), 512):
        block = every[i:i + 512]
        if block.lower() != block:
            changed.update(c for c in block if c.lower() != c)
    for c in sorted(targets | changed):
        low = c.lower()
        if all(x in targets for x in low):
            if len(low) != 1:  # none in this Python's Unicode; refuse rather than guess
                return None
            preimages.setdefault(low, []).append(c)

    def cls(x: str) -> str:
        return _char_class(preimages[x])

    hexdigit = _char_class([c for x in "0123456789abcdef" for c in preimages[x]])
    alts = ["".join(cls(x) for x in name) for name in sorted(names)]
    alts.append(f"{cls('#')}(?:{hexdigit}{{3}}|{hexdigit}{{6}}){cls(chr(10))}?")
    return [("|".join(alts), "fullmatch")]


# uri-template: uri_template.validate(s), i.e. URITemplate(s) raises nothing. The template splits at
# "{" ... "}" (from a "{" to the next "}"); literal parts hold no brace; an expression {X} is either
# simple (X matches ^([a-zA-Z0-9_]|%HH).*$: no newline but a final one) or starts with an operator
# (+ # . / ; ? & , or ",+", every other first character raises). After the operator, one trailing
# joiner (, . / ; &) is dropped and the rest splits at "," into variables: a name (first character
# [A-Za-z0-9_], then [A-Za-z0-9_./] or %HH), one modifier (":" and 1-3 digits not all 0, "*" or "[]"),
# then "=" and a default holding anything but "," and "}". The language is regular and this is it.
@functools.cache
def _uri_template() -> list[tuple[str, str]]:
    name = "[A-Za-z0-9_](?:[A-Za-z0-9_./]|%[0-9A-Fa-f]{2})*"
    modifier = "(?::(?:[1-9]|0[1-9]|[1-9][0-9]|00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})|\\*|\\[\\])?"

    def var(default: str) -> str:
        return f"{name}{modifier}(?:={default}*)?"

    joiner = "[,./;&]"
    operator_vars = f"{var('[^,}]')}(?:,{var('[^,}]')})*{joiner}?"
    # A simple expression: newlines only as the very last character, which is then in a default.
    line_var = var("[^,}\\n]")
    simple_vars = (f"(?:{line_var},)*(?:{line_var}{joiner}?|{name}{modifier}=[^,}}\\n]*\\n)")
    expression = f"\\{{(?:{simple_vars}|(?:[+#./;?&]|,\\+?){operator_vars})\\}}"
    return [(f"(?:[^{{}}]|{expression})*", "fullmatch")]


# duration: isoduration.parse_duration(s) and s ends with one of DMYWHMS. Not regular as the library
# reads it: each number goes through sign * Decimal(text), which raises Overflow for large exponents
# ("P1e1000000Y") or over a million digits, and underflow turns tiny values into the zero that a week
# needs beside other designators ("P0Y1W" is valid, "P1Y1W" is not). The parser also takes exponents,
# signs and "," inside numbers, skips an undesignated number before "T" ("P1Y2T1H") and hands some
# strings to arrow. Generated: the ISO 8601 form, an optional sign, then P, then Y M D (any of them,
# in that order) or W, and/or T with H M S (any of them, in that order); each number has at most 20
# integer digits and an optional fraction after "." or ",", so no Decimal overflow can happen.
@functools.cache
def _duration() -> list[tuple[str, str]]:
    n = "[0-9]{1,20}(?:[.,][0-9]+)?"
    date = f"(?:{n}Y(?:{n}M)?(?:{n}D)?|{n}M(?:{n}D)?|{n}D|{n}W)"
    time = f"T(?:{n}H(?:{n}M)?(?:{n}S)?|{n}M(?:{n}S)?|{n}S)"
    return [(f"[-+]?P(?:{date}(?:{time})?|{time})", "fullmatch")]


# idn-hostname: idna.encode(s). Its U-labels are IDNA 2008 in full (NFC, per-code-point classes, joiner
# and bidi rules, Punycode within 63 octets), and labels may also split at U+3002, U+FF0E, U+FF61.
# Generated: ASCII names, where idna checks the lower-cased label: labels of 1-63 letters, digits and
# inner hyphens, never "--" in the 3rd and 4th places (so no "xn--" A-label either), "." between them,
# an optional final ".", at most 253 characters besides that dot.
_A = "[A-Za-z0-9]"
_AH = "[-A-Za-z0-9]"
_IDN_LABEL = f"{_A}(?:{_AH}{{0,2}}{_A}|{_AH}(?:{_A}{_AH}|-{_A}){_AH}{{0,58}}{_A})?"


@functools.cache
def _idn_hostname() -> list[tuple[str, str]]:
    return [(f"(?:{_IDN_LABEL}\\.)*{_IDN_LABEL}\\.?", "fullmatch"), (_HOSTNAME_LENGTH, "fullmatch")]


# regex: re.compile(s) succeeds. Not regular (parentheses nest). Generated: items and "|" in any
# order, where an item is an anchor (^ $ \A \b \B \Z, never quantified) or an atom with at most one
# quantifier, lazy or not: * + ? {n} {n,} {,n} {n,m}, numbers below 10000 written without leading
# zeros, and in {n,m} either n with fewer digits than m or both of at most 2 digits with n <= m.
# An atom is a literal (any character but \ . ^ $ * + ? { } [ ] | ( )), ".", an escape, a class, or a
# group "(...)" or "(?:...)" of the same, nested at most 3 deep. An escape is \ and a character that
# is not an ASCII letter or digit, or \d \D \w \W \s \S \n \t \r \f \v, \xHH or \uHHHH. A class is
# "[", an optional "^", an optional "-", then one or more of: a character but \ [ ] - ^ & ~ |, an
# escape or \b, a range x-y with x <= y both digits, both lower-case or both upper-case ASCII
# letters; then an optional "-" and "]" (also "[-]", "[--]" and their "^" forms).
# Why re.compile takes each (re._parser of 3.11): escapes of other characters are literals, these
# letters are known escapes; a quantifier always follows an atom (never an anchor: "nothing to
# repeat"), never another quantifier ("multiple repeat"); bounds are below MAXREPEAT and ordered; a
# class never starts with "]" or "[" and is closed, its ranges have literal ends in order, a "-" is
# never between two items, and no "--", "&&", "~~", "||" or "[[" raises 3.11's FutureWarning; groups
# are balanced; nothing else is special without flags.
_REGEX_DEPTH = 3


@functools.cache
def _regex() -> list[tuple[str, str]]:
    hex_escapes = r"x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}"
    escape = r"\\(?:[^0-9A-Za-z]|[dDwWsSntrfv]|" + hex_escapes + ")"
    class_escape = r"\\(?:[^0-9A-Za-z]|[dDwWsSntrfvb]|" + hex_escapes + ")"
    ranges = "|".join(f"{x}-[{x}-{end}]" for lo, end in (("0", "9"), ("a", "z"), ("A", "Z"))
                      for x in map(chr, range(ord(lo), ord(end) + 1)))
    items = r"(?:[^\\\[\]\-^&~|]|" + class_escape + "|" + ranges + ")+"
    klass = r"\[\^?(?:-?" + items + "-?|--?)]"
    number = "(?:0|[1-9][0-9]{0,3})"
    pairs = ["[0-9],[1-9][0-9]{1,3}", "[1-9][0-9],[1-9][0-9]{2,3}", "[1-9][0-9]{2},[1-9][0-9]{3}"]
    pairs += [f"{a},[{a}-9]" for a in range(10)]
    pairs += [f"{a}{b},(?:{a}[{b}-9]" + (f"|[{a + 1}-9][0-9])" if a < 9 else ")")
              for a in range(1, 10) for b in range(10)]
    bounds = r"\{(?:" + number + ",?|," + number + "|" + "|".join(pairs) + r")\}"
    quantifier = r"(?:(?:[*+?]|" + bounds + r")\??)"
    anchor = r"[$^]|\\[AbBZ]"
    base = r"[^\\.^$*+?{}\[\]|()]|\.|" + escape + "|" + klass
    alternation = "(?:(?:" + base + ")" + quantifier + "?|" + anchor + r"|\|)*"
    for _ in range(_REGEX_DEPTH):
        atom = base + r"|\((?:\?:)?" + alternation + r"\)"
        alternation = "(?:(?:" + atom + ")" + quantifier + "?|" + anchor + r"|\|)*"
    return [(alternation, "fullmatch")]


_BUILT = {
    "ipv6": ("is_ipv6", _ipv6),
    "relative-json-pointer": ("is_relative_json_pointer", _relative_json_pointer),
    "color": ("is_css21_color", _color),
    "uri-template": ("is_uri_template", _uri_template),
    "duration": ("is_duration", _duration),
    "idn-hostname": ("is_idn_host_name", _idn_hostname),
    "regex": ("is_regex", _regex),
}
