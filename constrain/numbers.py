"""Numeric ranges as regular languages over JSON number text.

A bound such as ``minimum: -2.5`` or ``exclusiveMaximum: 100`` is exact over plain decimal text
(``-?(0|[1-9][0-9]*)(\\.[0-9]+)?``). Text with an exponent is not generated for bounded numbers:
whether ``12e-1 <= 1.2`` needs the exponent's value compared with a digit count, which no finite
automaton can do for unbounded exponents.

The construction splits by sign and compares digit strings:

- unsigned value >= a: longer integer part, or equal length and lexicographically greater, or the
  same integer part and a fraction that compares >= digit by digit;
- unsigned value <= b: symmetric;
- a range is the intersection (AND) of the two, so each side stays simple.
"""

from __future__ import annotations

from decimal import Decimal

from .terms import EMPTY, EPS, TermStore

_ZERO_TO_NINE = (0x30, 0x39)


class NumberTerms:
    """Builders of number-text terms in one ``TermStore``."""

    def __init__(self, store: TermStore):
        self.st = store
        st = store
        self.digit = st.byte_range(*_ZERO_TO_NINE)
        self.digits = st.star(self.digit)
        self.nonzero = st.byte_range(0x31, 0x39)
        self.natural = st.alt(st.literal(b"0"), st.seq(self.nonzero, self.digits))
        self.fraction = st.seq(st.literal(b"."), st.rep(self.digit, 1))
        self.zero_fraction = st.seq(st.literal(b"."), st.rep(st.literal(b"0"), 1))

    def _digit_above(self, d: str) -> int:
        return self.st.byte_range(ord(d) + 1, 0x39) if d < "9" else EMPTY

    def _digit_below(self, d: str) -> int:
        return self.st.byte_range(0x30, ord(d) - 1) if d > "0" else EMPTY

    # -- unsigned decimal text: natural, optional fraction -----------------------------------
    def unsigned(self) -> int:
        return self.st.seq(self.natural, self.st.opt(self.fraction))

    def _int_greater(self, a: str) -> int:
        """Canonical naturals (no leading zeros) greater than the natural ``a``."""
        st = self.st
        longer = st.seq(self.nonzero, st.rep(self.digit, len(a)))
        same = []
        for k in range(len(a)):
            head = st.literal(a[:k].encode())
            same.append(st.seq(head, self._digit_above(a[k]), st.rep(self.digit, len(a) - k - 1, len(a) - k - 1)))
        return st.alt(longer, *same)

    def _int_less(self, b: str) -> int:
        """Canonical naturals less than the natural ``b``."""
        st = self.st
        if b == "0":
            return EMPTY
        shorter = [st.literal(b"0")] if len(b) > 1 else []
        if len(b) > 2:
            shorter.append(st.seq(self.nonzero, st.rep(self.digit, 0, len(b) - 2)))
        elif len(b) == 2:
            shorter.append(self.nonzero)
        same = []
        for k in range(len(b)):
            head = st.literal(b[:k].encode())
            low = self._digit_below(b[k]) if k else (st.byte_range(0x31, ord(b[0]) - 1) if b[0] > "1" else EMPTY)
            if len(b) == 1:
                low = self._digit_below(b[0])
            same.append(st.seq(head, low, st.rep(self.digit, len(b) - k - 1, len(b) - k - 1)))
        return st.alt(*shorter, *same)

    def _frac_ge(self, a: str, strict: bool) -> int:
        """Optional fractions ``.F`` (or none) with ``0.F >= 0.a`` (``>`` if strict); ``a`` has no trailing 0."""
        st = self.st
        if not a:
            if strict:  # need a fraction with a nonzero digit
                return st.seq(st.literal(b"."), self.digits, self.nonzero, self.digits)
            return st.opt(self.fraction)
        options = []
        for k in range(len(a)):
            options.append(st.seq(st.literal(a[:k].encode()), self._digit_above(a[k]), self.digits))
        tail = st.seq(self.digits, self.nonzero, self.digits) if strict else self.digits
        options.append(st.seq(st.literal(a.encode()), tail))
        return st.seq(st.literal(b"."), st.alt(*options))

    def _frac_le(self, b: str, strict: bool) -> int:
        """Optional fractions with ``0.F <= 0.b`` (``<`` if strict); ``b`` has no trailing 0."""
        st = self.st
        if not b:
            if strict:
                return EMPTY
            return st.opt(self.zero_fraction)
        options = []
        for k in range(len(b)):
            # equal so far and then smaller, or ended early (smaller since b continues with a nonzero)
            options.append(st.seq(st.literal(b[:k].encode()), self._digit_below(b[k]), self.digits))
            if k:
                options.append(st.literal(b[:k].encode()))
        if not strict:
            options.append(st.seq(st.literal(b.encode()), st.star(st.literal(b"0"))))
        return st.alt(EPS, st.seq(st.literal(b"."), st.alt(*options)))

    def unsigned_ge(self, a: Decimal, strict: bool) -> int:
        st = self.st
        ai, af = _split(a)
        return st.alt(st.seq(self._int_greater(ai), st.opt(self.fraction)),
                      st.seq(st.literal(ai.encode()), self._frac_ge(af, strict)))

    def unsigned_le(self, b: Decimal, strict: bool) -> int:
        st = self.st
        bi, bf = _split(b)
        return st.alt(st.seq(self._int_less(bi), st.opt(self.fraction)),
                      st.seq(st.literal(bi.encode()), self._frac_le(bf, strict)))

    # -- signed ranges --------------------------------------------------------------------------
    def decimal_range(self, lo: Decimal | None, lo_strict: bool, hi: Decimal | None, hi_strict: bool) -> int:
        """Plain decimal text (no exponent) whose value lies in the interval."""
        st = self.st
        if lo is not None and hi is not None and (lo > hi or (lo == hi and (lo_strict or hi_strict))):
            return EMPTY
        parts = []
        # value >= 0 (text without '-'), and "-0", "-0.00" which are 0 too
        if hi is None or hi > 0 or (hi == 0 and not hi_strict):
            conds = [self.unsigned()]
            if lo is not None and lo > 0 or (lo == 0 and lo_strict):
                conds.append(self.unsigned_ge(lo, lo_strict))
            if hi is not None:
                conds.append(self.unsigned_le(hi, hi_strict))
            parts.append(st.and_(*conds))
            zero_ok = (lo is None or lo < 0 or (lo == 0 and not lo_strict)) and \
                      (hi is None or hi > 0 or (hi == 0 and not hi_strict))
            if zero_ok:
                parts.append(st.seq(st.literal(b"-0"), st.opt(self.zero_fraction)))
        # value < 0: "-" then an unsigned text u > 0 with -u in range, i.e. u in [-hi, -lo]
        if lo is None or lo < 0:
            conds = [self.unsigned(), self.unsigned_ge(Decimal(0), True)]
            if hi is not None and hi < 0:
                conds.append(self.unsigned_ge(-hi, hi_strict))
            if lo is not None:
                conds.append(self.unsigned_le(-lo, lo_strict))
            parts.append(st.seq(st.literal(b"-"), st.and_(*conds)))
        return st.alt(*parts)


def bound_decimal(value: int | float, strict: bool, lower: bool) -> Decimal:
    """The decimal bound that makes text comparison agree with Python's comparison of the parsed value.

    ``json.loads`` turns number text into an int or a float, and the validator compares those with
    the bound. Rounding to float is monotone, so a non-strict bound is safe as the shortest repr of
    a float (within 2**53, no integer lies between it and the exact value) and as the exact value of
    an int. A strict bound moves to the midpoint towards the next float: text at or inside it may
    round onto the bound itself, which a strict comparison rejects.
    """
    import math

    if not strict:
        if isinstance(value, int) or abs(value) >= 2.0**53:
            return Decimal(value)
        return Decimal(repr(value))
    x = float(value)
    nxt = math.nextafter(x, math.inf if lower else -math.inf)
    mid = (Decimal(x) + Decimal(nxt)) / 2
    if isinstance(value, int) and abs(value) > 2**53:
        # the float may not be the int itself; never admit anything at or beyond the exact int
        mid = max(mid, Decimal(value)) if lower else min(mid, Decimal(value))
    return mid


def _split(x: Decimal) -> tuple[str, str]:
    """Integer digits (no leading zeros) and fraction digits (no trailing zeros) of |x|."""
    text = format(abs(x), "f")
    if "." in text:
        i, f = text.split(".")
        f = f.rstrip("0")
    else:
        i, f = text, ""
    i = i.lstrip("0") or "0"
    return i, f
