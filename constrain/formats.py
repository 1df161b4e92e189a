"""String ``format``s as regular languages, exactly as ``jsonschema.FormatChecker`` decides them.

Each entry is a Python-``re`` pattern for ``re.fullmatch`` over the decoded string. Where the
checker's own language is wider than what a model should ever write (``uuid`` through ``UUID()``
also takes braces, ``urn:uuid:`` and integer-literal quirks), we generate the canonical subset and
say so in ``SUBSET_FORMATS``; everything generated is valid.
"""

from __future__ import annotations

from jsonschema import FormatChecker

_DIGIT = "[0-9]"
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"  # 0001-9999
# Years divisible by 4 (and by 400 when divisible by 100), for February 29.
_LEAP_YEAR = "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
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
    "time": _TIME,
    "email": "[\\s\\S]*@[\\s\\S]*",
    "idn-email": "[\\s\\S]*@[\\s\\S]*",
    "ipv4": f"{_OCTET}\\.{_OCTET}\\.{_OCTET}\\.{_OCTET}",
    "uuid": f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
}

SUBSET_FORMATS = {"uuid"}


def checked_formats() -> frozenset[str]:
    """Formats the validator actually checks here (it ignores the others, and so must we)."""
    return frozenset(FormatChecker().checkers)
