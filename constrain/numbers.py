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

``multipleOf`` (``multiple_step`` and ``NumberTerms.multiples``): the multiples of a step
``S / 10**D`` are the texts whose digits, read as the integer ``N = value * 10**D``, leave remainder
0 modulo ``S``: a remainder automaton over the digits, unrolled over a bounded number of digits
(terms have no cycles other than repetition). The bound is also what makes the language exact for
the validator, which divides Python floats: within 15 significant digits, decimal text, its float
and the float quotient agree on divisibility (see ``multiple_step``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from .terms import EMPTY, EPS, TermStore

_ZERO_TO_NINE = (0x30, 0x39)
_DIGIT_BYTES = sum(1 << b for b in range(0x30, 0x3A))
_POINT_BYTE = 1 << 0x2E
SIGNIFICANT_DIGITS = 15  # a float tells apart every pair of decimals with this many significant digits


@dataclass(frozen=True)
class MultipleStep:
    """Texts ``N / 10**scale`` (value times ``10**scale`` is the integer N) with ``modulus | N`` and
    at most ``int_digits`` digits before the point; digits past ``scale`` must be zeros."""

    modulus: int
    scale: int
    int_digits: int


class MultipleRefused(Exception):
    """``multipleOf`` has no exact regular form here; the message says why."""


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
        self._multiples: dict[tuple[MultipleStep, int], int] = {}

    def rebound(self, store: TermStore) -> "NumberTerms":
        """A copy building in ``store``, a copy of this one's store (``TermStore.adopt``)."""
        other = copy.copy(self)
        other.st, other._multiples = store, dict(self._multiples)
        return other

    def _digit_above(self, d: str) -> int:
        return self.st.byte_range(ord(d) + 1, 0x39) if d < "9" else EMPTY

    def _digit_below(self, d: str) -> int:
        return self.st.byte_range(0x30, ord(d) - 1) if d > "0" else EMPTY

    # -- unsigned decimal text: natural, optional fraction -----------------------------------
    def unsigned(self) -> int:
        return self.st.seq(self.natural, self.st.opt(self.fraction))

    # The comparisons below read the bound's digits left to right: equal so far, then a digit
    # that decides, or the same digit and the rest compared. Built from the last digit back as one
    # nested term, so a bound of n digits costs O(n) terms (strict bounds at a float's midpoint
    # have hundreds of digits; spelling each prefix out was quadratic).

    def _int_greater(self, a: str) -> int:
        """Canonical naturals (no leading zeros) greater than the natural ``a``."""
        st = self.st
        longer = st.seq(self.nonzero, st.rep(self.digit, len(a)))
        same = EMPTY  # with a[:k] read: the naturals of len(a) digits greater than a
        for k in reversed(range(len(a))):
            rest = len(a) - k - 1
            same = st.alt(st.seq(self._digit_above(a[k]), st.rep(self.digit, rest, rest)),
                          st.seq(st.byte_set(1 << ord(a[k])), same))
        return st.alt(longer, same)

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
        same = EMPTY  # with b[:k] read: the rest of a natural of len(b) digits less than b
        for k in reversed(range(len(b))):
            rest = len(b) - k - 1
            if len(b) == 1:
                low = self._digit_below(b[0])
            else:  # no leading zero
                low = self._digit_below(b[k]) if k else (st.byte_range(0x31, ord(b[0]) - 1) if b[0] > "1" else EMPTY)
            same = st.alt(st.seq(low, st.rep(self.digit, rest, rest)), st.seq(st.byte_set(1 << ord(b[k])), same))
        return st.alt(*shorter, same)

    def _frac_ge(self, a: str, strict: bool) -> int:
        """Optional fractions ``.F`` (or none) with ``0.F >= 0.a`` (``>`` if strict); ``a`` has no trailing 0."""
        st = self.st
        if not a:
            if strict:  # need a fraction with a nonzero digit
                return st.seq(st.literal(b"."), self.digits, self.nonzero, self.digits)
            return st.opt(self.fraction)
        rest = st.seq(self.digits, self.nonzero, self.digits) if strict else self.digits  # after all of a
        for k in reversed(range(len(a))):
            rest = st.alt(st.seq(self._digit_above(a[k]), self.digits), st.seq(st.byte_set(1 << ord(a[k])), rest))
        return st.seq(st.literal(b"."), rest)

    def _frac_le(self, b: str, strict: bool) -> int:
        """Optional fractions with ``0.F <= 0.b`` (``<`` if strict); ``b`` has no trailing 0."""
        st = self.st
        if not b:
            if strict:
                return EMPTY
            return st.opt(self.zero_fraction)
        rest = EMPTY if strict else st.star(st.literal(b"0"))  # after all of b
        for k in reversed(range(len(b))):
            # a smaller digit, or the same one and the rest; or ended here (smaller, as b goes on
            # with a nonzero digit), but not before the first digit
            rest = st.alt(st.seq(self._digit_below(b[k]), self.digits), st.seq(st.byte_set(1 << ord(b[k])), rest),
                          EPS if k else EMPTY)
        return st.alt(EPS, st.seq(st.literal(b"."), rest))

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

    # -- multiples ------------------------------------------------------------------------------
    def multiples(self, step: MultipleStep, budget: int = 30_000) -> int:
        """Unsigned plain decimal texts (no exponent) in the language of ``step``.

        With ``N = I * 10**scale + F`` (integer part I, fraction F padded to ``scale`` digits), a
        state of the integer part is ``I mod (modulus / gcd(modulus, 10**scale))`` (all that decides
        ``I * 10**scale mod modulus``) with the digits read so far, a state of the fraction is the
        remainder of N with the unread digits zero and their count. States are built as a text
        reaches them (``TermStore.lazy``): a schema's numbers visit a few of the up to 15 times
        modulus states. Which states complete to a multiple, and how soon, is arithmetic over the
        residues (``_Completions``), so no state built is empty. Raises ``MultipleRefused`` where the
        states a text may reach, counted by residues, exceed ``budget``.
        """
        got = self._multiples.get((step, budget))
        if got is None:  # memoized: the branches of a schema repeat their multipleOf (anyOf distributes it)
            got = self._multiples[step, budget] = self._build_multiples(step, budget)
        return got

    def _build_multiples(self, step: MultipleStep, budget: int) -> int:
        st = self.st
        s, scale, int_digits = step.modulus, step.scale, step.int_digits
        if int_digits < 1:
            raise MultipleRefused(f"a step of {scale} decimals leaves no digits before the point")
        if s >= 10 ** (int_digits + scale):  # no nonzero multiple has that few digits
            return st.seq(st.literal(b"0"), st.opt(self.zero_fraction))
        s_int = s // math.gcd(s, 10**scale)
        if _reachable_states(s, s_int, scale, int_digits) > budget:
            raise MultipleRefused(f"a step of {s} / 10**{scale} needs more than {budget} states")
        ends = _Completions(s, s_int, scale, int_digits)
        name = ("multiples", st.fresh_key())

        def digit(move, nxt, first: int = 0) -> int:  # a digit, then its state (digits grouped by target)
            masks: dict[int, int] = {}
            for c in range(first, 10):
                t = move(c)
                masks[t] = masks.get(t, 0) | 1 << (0x30 + c)
            return st.alt(*[st.seq(st.byte_set(m), nxt(t)) for t, m in masks.items()])

        def fraction(r: int, j: int, need: bool) -> int:  # j digits read; need: one more is due
            if j == scale:  # the rest are zeros
                return EMPTY if r else st.rep(st.literal(b"0"), 1 if need else 0)
            if not ends.fraction_ends(r, j):
                return EMPTY
            weight = 10 ** (scale - j - 1)
            done = r == 0 and not need
            return st.lazy((name, "f", r, j, need), lambda: st.alt(
                EPS if done else EMPTY,
                digit(lambda c: (r + c * weight) % s, lambda t: fraction(t, j + 1, False))),
                nullable=done, empty=None, min_len=0 if done else 1, first=_DIGIT_BYTES)

        def after_integer(r: int) -> int:
            padded = r * 10**scale % s
            return st.alt(EPS if padded == 0 else EMPTY, st.seq(st.literal(b"."), fraction(padded, 0, True)))

        def integer(r: int, n: int) -> int:  # n digits read, the first nonzero
            soonest = ends.integer_min_len(r, n)
            if soonest is None:
                return EMPTY

            def define() -> int:
                more = digit(lambda c: (10 * r + c) % s_int, lambda t: integer(t, n + 1)) if n < int_digits else EMPTY
                return st.alt(after_integer(r), more)
            return st.lazy((name, "i", r, n), define, nullable=soonest == 0, empty=None, min_len=soonest,
                           first=_DIGIT_BYTES | _POINT_BYTE)

        return st.alt(st.seq(st.literal(b"0"), after_integer(0)),
                      digit(lambda c: c % s_int, lambda t: integer(t, 1), first=1))

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


def multiple_step(divisor: int | float, integer: bool) -> MultipleStep:
    """The exact language of ``multipleOf: divisor`` over plain decimal texts, as the validator decides it.

    ``jsonschema`` computes ``instance % divisor`` for an int divisor (exact on ints, and on the
    parsed float) and ``int(q) == q`` with the float ``q = instance / divisor`` for a float one.
    Take the decimal ``s = S / 10**D`` the divisor is written as (its ``repr``), and texts with at
    most 15 significant digits and ``|value| * 10**D < 10**15``. Then:

    - where the divisor's float is exactly ``s`` (ints; floats such as 0.5 or 2.125), a multiple
      ``n * s`` has a binary significand under 2**53: it parses exactly, the quotient is ``n``;
    - a non-multiple's decimal quotient is at relative distance >= 1e-15 from every integer, more
      than the roundings of the text, the division and the divisor (below) can move it;
    - where the divisor's float is not ``s`` (0.01, 1e-8), some decimal multiples miss
      (0.07 / 0.01 is 7.000000000000001), so only integers are exact: with
      ``|s / divisor - 1| < 2**-54`` the quotient of a multiple ``n`` rounds to the integer
      ``n / s``, or lies past 2**52 where every float is an integer.
    """
    exact = isinstance(divisor, int)
    step = Fraction(divisor) if exact else Fraction(Decimal(repr(divisor)))
    exact = exact or step == Fraction(divisor)
    scale = 0
    while (step * 10**scale).denominator != 1:
        scale += 1
    modulus = int(step * 10**scale)
    if not exact:
        if not integer:
            raise MultipleRefused(f"{divisor!r} is not exact in binary floating point, and the validator's "
                                  "float division rejects some of its decimal multiples (0.07 for 0.01)")
        # (a quotient overflowing to inf makes the validator switch to exact fractions)
        if abs(step / Fraction(divisor) - 1) >= Fraction(1, 2**54) or 1e16 / divisor > 1e300:
            raise MultipleRefused(f"the float {divisor!r} is too far from its decimal {step}")
    if integer:  # n is a multiple of S / 10**D iff S / gcd(S, 10**D) divides n
        modulus //= math.gcd(modulus, 10**scale)
        digits = SIGNIFICANT_DIGITS if modulus == 1 else SIGNIFICANT_DIGITS - scale
        return MultipleStep(modulus, 0, digits)
    return MultipleStep(modulus, scale, SIGNIFICANT_DIGITS - scale)


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


def _reachable_states(s: int, s_int: int, scale: int, int_digits: int) -> int:
    """An upper bound on the states of ``NumberTerms.multiples`` that texts reach: after n integer
    digits (the first nonzero) the residues of the 9 * 10**(n-1) numbers of n digits, at most
    ``s_int``; after j fraction digits at most ``s`` remainders, and ``s_int`` times 10**j."""
    integer = sum(min(s_int, 9 * 10 ** (n - 1)) for n in range(1, int_digits + 1))
    return integer + sum(min(s, s_int * 10**j) for j in range(scale))


class _Completions:
    """Which states of the multiples automaton some text completes, and the length of the
    shortest completion, by arithmetic over residues (built states are never empty).

    A fraction state (remainder r mod s, j of ``scale`` digits read) completes where some value
    F of the ``scale - j`` digits left has r + F = 0 (mod s), that is, (-r mod s) < 10**(scale-j).
    An integer residue q (mod s_int) ends the integer part where q * 10**scale is a multiple (no
    fraction needed), or where its fraction state completes (a point and digits, 2 bytes or more).
    From integer state (r, n), k more digits reach exactly the residues r * 10**k + x, x < 10**k:
    an arc of the residue circle, tested against prefix counts of the residues that end.
    """

    def __init__(self, s: int, s_int: int, scale: int, int_digits: int):
        self.s, self.s_int, self.scale, self.int_digits = s, s_int, scale, int_digits
        ten = 10**scale
        exact = [0] * (s_int + 1)  # prefix counts: residues ending without a fraction
        ends = [0] * (s_int + 1)  # ... with one or without
        for q in range(s_int):
            padded = q * ten % s
            exact[q + 1] = exact[q] + (padded == 0)
            ends[q + 1] = ends[q] + self.fraction_ends(padded, 0)
        self._exact, self._ends = exact, ends

    def fraction_ends(self, r: int, j: int) -> bool:
        return (-r) % self.s < 10 ** (self.scale - j)

    def integer_min_len(self, r: int, n: int) -> int | None:
        """The fewest bytes a text from integer state (r, n) still needs, None where none ends."""
        best = None
        for k in range(self.int_digits - n + 1):
            if best is not None and k >= best:
                break
            start, width = r * 10**k % self.s_int, 10**k
            if self._hits(self._exact, start, width):
                return k
            if best is None and self._hits(self._ends, start, width):
                best = k + 2  # a point and a digit at least
        return best

    def _hits(self, counts: list[int], start: int, width: int) -> bool:
        m = self.s_int
        if width >= m:
            return counts[m] > 0
        end = start + width
        if end <= m:
            return counts[end] > counts[start]
        return counts[m] > counts[start] or counts[end - m] > 0
