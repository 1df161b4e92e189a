"""String ``format``s as regular languages, exactly as ``jsonschema.FormatChecker`` decides them.

Each entry is a Python-``re`` pattern for ``re.fullmatch`` over the decoded string. Where the
checker's own language is wider than what a model should ever write (``uuid`` through ``UUID()``
also takes braces, ``urn:uuid:`` and integer-literal quirks), we generate the canonical subset and
say so in ``SUBSET_FORMATS``; everything generated is valid.
"""

from __future__ import annotations

import re

from jsonschema import FormatChecker

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

SUBSET_FORMATS = {"uuid", "hostname"}


def checked_formats() -> frozenset[str]:
    """Formats the validator actually checks here (it ignores the others, and so must we)."""
    return frozenset(FormatChecker().checkers)


def format_patterns(fmt: str) -> list[tuple[str, str]] | None:
    """``[(pattern, "fullmatch" | "search"), ...]`` whose intersection is the format, or None."""
    if fmt in SEARCH_PATTERNS:
        return [(SEARCH_PATTERNS[fmt], "search")]
    if fmt == "hostname":
        return [(FORMAT_PATTERNS[fmt], "fullmatch"), (_HOSTNAME_LENGTH, "fullmatch")]
    if fmt == "time":
        return [_time_pattern()]
    if fmt in FORMAT_PATTERNS:
        return [(FORMAT_PATTERNS[fmt], "fullmatch")]
    rule = _RFC3987_RULES.get(fmt)
    if rule is not None and _uses_rfc3987(fmt):
        import rfc3987

        # The checker calls rfc3987.parse, which matches this very pattern (with `regex` when it
        # is installed, which allows repeated group names: groups do not change the language).
        pattern = rfc3987.get_compiled_pattern("^%%(%s)s$" % rule).pattern
        return [(_without_group_names(pattern), "search")]
    return None


def _time_pattern() -> tuple[str, str]:
    """``FormatChecker()`` registers draft 3's ``time`` last, so "time" there means
    ``datetime.strptime(s, "%H:%M:%S")``; its regex comes from this Python's own ``_strptime``.
    Where the RFC 3339 checker is the one registered, it is the partial-time of date-time."""
    func = FormatChecker().checkers["time"][0]
    if func.__name__ == "is_draft3_time":
        import _strptime

        pattern = _strptime.TimeRE().pattern("%H:%M:%S")
        return _without_group_names(pattern), "fullmatch"
    return _TIME, "fullmatch"


_RFC3987_RULES = {"uri": "URI", "uri-reference": "URI_reference", "iri": "IRI",
                  "iri-reference": "IRI_reference"}


def _uses_rfc3987(fmt: str) -> bool:
    """Whether the installed checker for ``fmt`` is jsonschema's rfc3987-based one."""
    entry = FormatChecker().checkers.get(fmt)
    if entry is None:
        return False
    func = entry[0]
    if func.__module__ != "jsonschema._format":
        return False
    try:
        import rfc3987  # noqa: F401
    except ImportError:
        return False
    import inspect

    try:
        return "rfc3987.parse" in inspect.getsource(func)
    except (OSError, TypeError):
        return False


def _without_group_names(pattern: str) -> str:
    """Named groups to plain groups: they do not change the language, and some libraries repeat names."""
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern)
