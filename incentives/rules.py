"""Incentive arithmetic (SPEC section 6, "Incentives"): commission payouts, competition
ranks and daily caps on points.

Pure functions on plain values: ``Decimal`` (``int`` is accepted where it is exact;
``float`` is rejected with ``TypeError`` because it cannot hold money exactly), no ORM.
Callers pass what they read and store what comes back.

Commission (SPEC section 6 "Commission plan"), with T the member's target of the
period, A their actual of the attainment metric, B the payout base and a = A / T:

* Bands are ``(from, rate)`` pairs given as fractions (``from`` 0.8 = 80 %, ``rate``
  0.04 = 4 %), ascending from exactly 0; band i covers attainment from its own
  ``from`` up to, not including, the next one's, and an attainment below 0 is in the
  first band (:func:`validate_bands`, :func:`band_index`).
* ``flat``: the rate of the band containing a, times B.
* ``marginal``: the band edges are ``e_i = from_i x T``; payout =
  ``(B / A) x sum_i rate_i x max(0, min(A, e_(i+1)) - e_i)`` (the last band has no upper
  edge); when A <= 0 it is the first rate times B.
* No target (None or 0): the first band's rate, flat, and the result says so.
* B with product-line multipliers is :func:`multiplied_base`; attainment always uses
  the plain A.

Everything is exact until the end: band membership compares ``A`` with ``from x T``
(never a rounded quotient), the payout is an exact fraction, the optional cap applies
to it, and the line is rounded half-up to the currency's minor unit once
(:func:`commission_payout`). The minor unit (the ``quantum``: ``Decimal("0.01")``,
``Decimal("1")`` for JPY, ...) is the caller's, not this module's.

Leaderboards (SPEC section 6 "Leaderboard") use :func:`competition_ranks`; daily caps
on points (SPEC section 6 "Points") use :func:`points_to_award` and
:func:`award_in_order`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Context, Decimal, Inexact, Rounded, localcontext
from fractions import Fraction
from math import floor
from operator import itemgetter
from typing import Generic, Literal, NamedTuple, TypeVar

__all__ = [
    "MODES",
    "Band",
    "BandLike",
    "BandPart",
    "Mode",
    "Number",
    "Payout",
    "RankRow",
    "award_in_order",
    "band_index",
    "commission_payout",
    "competition_ranks",
    "multiplied_base",
    "points_to_award",
    "round_half_up",
    "validate_bands",
]

K = TypeVar("K", bound=Hashable)

#: What callers may pass for a number: ``Decimal``, or an ``int`` (exact).
Number = Decimal | int

Mode = Literal["flat", "marginal"]
MODES: tuple[Mode, ...] = ("flat", "marginal")

_ZERO = Fraction(0)
# Sums and products of Decimals are exact when the context has room for every digit; a
# result that would need rounding raises instead of being rounded silently.
_EXACT = Context(prec=200, traps=[Inexact, Rounded])
# Significant digits kept when an exact value (B / A scaling) has no finite decimal form.
_DISPLAY_DIGITS = 60


# --- input checking -------------------------------------------------------------------------


def _to_decimal(value: object, name: str) -> Decimal:
    """``value`` as a finite ``Decimal``; ``float``/``bool``/others -> ``TypeError``."""
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, not a float ({value!r}): floats are inexact")
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal or int, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number, got {result}")
    return result


def _non_negative(value: object, name: str) -> Decimal:
    result = _to_decimal(value, name)
    if result < 0:
        raise ValueError(f"{name} must not be negative, got {result}")
    return result


def _quantum(value: object) -> Decimal:
    result = _to_decimal(value, "quantum")
    if result <= 0:
        raise ValueError(f"quantum must be positive, got {result}")
    return result


def _count(value: object, name: str) -> int:
    """A whole, non-negative number of points."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _as_decimal(value: Fraction) -> Decimal:
    """An exact fraction as a ``Decimal``: exact when it has a finite decimal form.

    Otherwise (a denominator with a prime factor other than 2 and 5, which only the
    ``B / A`` scaling of a marginal payout can produce) it is rounded to 60 significant
    digits; amounts are never rounded from this value but from the fraction itself.
    """
    denominator = value.denominator
    twos = fives = 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator == 1:
        places = max(twos, fives)
        digits = value.numerator * 10**places // value.denominator
        return Decimal(digits).scaleb(-places, context=_EXACT)
    with localcontext() as context:
        context.prec = _DISPLAY_DIGITS
        return Decimal(value.numerator) / Decimal(value.denominator)


def _round_fraction(value: Fraction, quantum: Decimal) -> Decimal:
    """``value`` rounded half-up (ties away from zero, as ``ROUND_HALF_UP``) to ``quantum``."""
    quanta = value / Fraction(quantum)
    magnitude = floor(abs(quanta) + Fraction(1, 2))
    with localcontext(_EXACT):
        return Decimal(-magnitude if quanta < 0 else magnitude) * quantum


def round_half_up(value: Number, quantum: Number) -> Decimal:
    """``value`` rounded half-up to a multiple of ``quantum`` (e.g. 0.01, or 1 for JPY).

    SPEC section 6: a statement line is rounded half-up to the minor unit once. Ties go
    away from zero, as with ``ROUND_HALF_UP``: 10.005 -> 10.01 and -10.005 -> -10.01 at a
    quantum of 0.01.
    """
    return _round_fraction(Fraction(_to_decimal(value, "value")), _quantum(quantum))


# --- bands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """One commission band: from attainment ``start`` (a fraction: 0.8 = 80 %) on, the
    ``rate`` (a fraction of the base: 0.04 = 4 %) applies, up to the next band's start."""

    start: Decimal
    rate: Decimal


#: A band as callers may give it: a ``Band``, or a ``(from, rate)`` pair of fractions.
BandLike = Band | tuple[Number, Number]


def validate_bands(bands: Sequence[BandLike]) -> tuple[Band, ...]:
    """The bands of a plan, checked (SPEC section 6 "Commission plan").

    ``bands`` are ``Band`` values or ``(from, rate)`` pairs, both fractions. There must be
    at least one; the first must start at exactly 0, the starts must be strictly
    ascending and no rate may be negative (``ValueError`` naming the problem). Rates need
    not rise with the bands. Floats raise ``TypeError``.
    """
    if isinstance(bands, str | bytes) or not bands:
        raise ValueError("a plan needs at least one band")
    result: list[Band] = []
    for index, band in enumerate(bands):
        start_value: object
        rate_value: object
        if isinstance(band, Band):
            start_value, rate_value = band.start, band.rate
        else:
            if len(band) != 2:
                raise ValueError(f"band {index} must be a (from, rate) pair, got {band!r}")
            start_value, rate_value = band
        start = _to_decimal(start_value, f"from of band {index}")
        rate = _to_decimal(rate_value, f"rate of band {index}")
        if index == 0 and start != 0:
            raise ValueError(f"bands must start at 0, the first starts at {start}")
        if result and start <= result[-1].start:
            raise ValueError(
                f"bands must be ascending: band {index} starts at {start}, "
                f"not above {result[-1].start}"
            )
        if rate < 0:
            raise ValueError(f"rate must not be negative, band {index} has {rate}")
        result.append(Band(start=start, rate=rate))
    return CheckedBands(result)


class CheckedBands(tuple[Band, ...]):
    """Bands as ``validate_bands`` returned them. A tuple cannot change and a ``Band`` is
    frozen, so one passed back to ``commission_payout`` (a plan's bands checked once for
    all its members) is not checked again."""

    __slots__ = ()


def _checked_bands(bands: Sequence[BandLike]) -> tuple[Band, ...]:
    """``bands`` as checked by ``validate_bands``, not checked again when it made them."""
    return bands if isinstance(bands, CheckedBands) else validate_bands(bands)


def band_index(bands: Sequence[BandLike], actual: Number, target: Number) -> int:
    """The index of the band containing the attainment ``actual / target`` (SPEC section 6).

    Band i covers ``[from_i, from_(i+1))``; an attainment below 0 is in the first band.
    The comparison is exact: ``actual >= from_i x target``, never a rounded quotient, so an
    attainment of exactly 0.8 is in the band starting at 0.8. ``target`` must be positive
    (with no target only the first band applies: see :func:`commission_payout`).
    """
    checked = validate_bands(bands)
    a_value = _to_decimal(actual, "actual")
    t_value = _to_decimal(target, "target")
    if t_value <= 0:
        raise ValueError(f"target must be positive to find a band, got {t_value}")
    return _band_index(checked, Fraction(a_value), Fraction(t_value))


def _band_index(bands: tuple[Band, ...], actual: Fraction, target: Fraction) -> int:
    index = 0
    for position, band in enumerate(bands):
        if actual >= Fraction(band.start) * target:
            index = position
        else:
            break
    return index


# --- payout ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BandPart:
    """What one band contributes to a payout, so that a statement line can explain itself.

    - ``index``, ``start``, ``rate``: the band (``start`` and ``rate`` are fractions).
    - ``actual_part``: the part of the attainment actual A inside the band,
      ``max(0, min(A, e_(i+1)) - e_i)`` in marginal mode; the whole of A in flat mode,
      with no target, and in marginal mode when A <= 0 (the whole base is then in the
      first band).
    - ``base_part``: the part of the base B the band pays on: ``actual_part x B / A`` in
      marginal mode (equal to ``actual_part`` when A = B), the whole of B otherwise.
    - ``payout``: ``rate x base_part``, exact (before any cap or rounding).

    ``base_part`` and ``payout`` are exact when B / A has a finite decimal form, else
    they carry 60 significant digits.
    """

    index: int
    start: Decimal
    rate: Decimal
    actual_part: Decimal
    base_part: Decimal
    payout: Decimal


@dataclass(frozen=True)
class Payout:
    """A commission line's numbers (SPEC section 6 "Commission plan").

    - ``amount``: what the line pays, in currency: the exact payout, capped, rounded
      half-up to the quantum once.
    - ``exact``: the payout before the cap and before rounding (exact when it has a
      finite decimal form, else 60 significant digits; ``amount`` is rounded from the
      exact fraction, not from this value).
    - ``attainment``: a = A / T (exact, or 60 significant digits when it does not
      terminate); None with no target.
    - ``band_index``: the band containing a (0 with no target).
    - ``parts``: the bands the payout used, in order, with their parts: one part in flat
      mode, with no target and when A <= 0; in marginal mode bands 0 to ``band_index``
      (the last may have a part of 0 when A is exactly on its edge). The parts' payouts
      sum to ``exact``.
    - ``capped``: the cap was below the exact payout, so the line pays the cap.
    - ``no_target``: T was None or 0, so only the first band's rate applied, flat.
    """

    amount: Decimal
    exact: Decimal
    attainment: Decimal | None
    band_index: int
    parts: tuple[BandPart, ...]
    capped: bool
    no_target: bool

    @property
    def rates(self) -> tuple[Decimal, ...]:
        """The rates used, one per part."""
        return tuple(part.rate for part in self.parts)


def commission_payout(
    bands: Sequence[BandLike],
    mode: Mode,
    *,
    target: Number | None,
    actual: Number,
    base: Number,
    quantum: Number,
    cap: Number | None = None,
) -> Payout:
    """The commission of one member, plan and period (SPEC section 6 "Commission plan").

    ``target`` is T (the member's target of the period; None or 0 = no target), ``actual``
    is A (the attainment metric's actual), ``base`` is B (the payout base metric, already
    multiplied per product line: :func:`multiplied_base`; pass ``base=actual`` when the
    plan pays on its attainment metric). A and B may be negative (reversals).

    - ``flat``: payout = rate of the band containing a = A / T, times B.
    - ``marginal``: payout = ``(B / A) x sum_i rate_i x max(0, min(A, e_(i+1)) - e_i)``
      with ``e_i = from_i x T``; when A = B this is the sum of each band's rate times the
      part of B inside it; when A <= 0 it is the first rate times B.
    - No target: the first band's rate times B, flat, in either mode; ``no_target`` is set.

    ``cap`` (optional, not negative) is the most the line pays: it applies to the exact
    payout, then the line is rounded half-up to ``quantum`` (the currency's minor unit,
    e.g. ``Decimal("0.01")``, or ``Decimal("1")`` for JPY) once. A negative payout is not
    affected by the cap. T must not be negative; bands are checked by
    :func:`validate_bands`.

    >>> bands = [(0, Decimal("0.02")), (Decimal("0.8"), Decimal("0.04")),
    ...          (1, Decimal("0.06")), (Decimal("1.2"), Decimal("0.10"))]
    >>> commission_payout(bands, "marginal", target=100_000, actual=130_000,
    ...                   base=130_000, quantum=Decimal("0.01")).amount
    Decimal('4600.00')
    """
    checked = _checked_bands(bands)
    if mode not in MODES:
        raise ValueError(f"mode must be flat or marginal, got {mode!r}")
    quantum_value = _quantum(quantum)
    cap_value = None if cap is None else _non_negative(cap, "cap")
    a_value = _to_decimal(actual, "actual")
    b_value = _to_decimal(base, "base")
    t_value = None if target is None else _non_negative(target, "target")
    try:
        return _decimal_payout(checked, mode, t_value, a_value, b_value, quantum_value, cap_value)
    except (Inexact, Rounded):  # a value needing more than 200 digits: the fractions
        return _fraction_payout(checked, mode, t_value, a_value, b_value, quantum_value, cap_value)


# The payout is computed on Decimals (``_decimal_payout``): sums, differences and
# products are exact in ``_EXACT``, and the only division, by A (the ``B / A`` scaling,
# and a = A / T), is kept as a numerator over A until a value is shown, where it gives
# what ``_as_decimal`` gives for the same fraction (``_ratio``). ``_fraction_payout`` is
# the same arithmetic on fractions, the reference (``tests/incentives/test_rules.py``
# checks both agree on random plans) and the fallback should a value need more digits.
_TRUNCATE = Context(prec=200, rounding=ROUND_DOWN)
_HALF_UP = Context(prec=200, rounding=ROUND_HALF_UP)
_UNIT = Decimal(1)


def _minimal(value: Decimal) -> Decimal:
    """An exact Decimal written with as few decimal places as it needs and no positive
    exponent (``4600.00`` -> ``4600``, ``0.50`` -> ``0.5``, ``-0`` -> ``0``): what
    ``_as_decimal`` writes for the same value."""
    if not value:
        return Decimal(0)
    value = value.normalize(_EXACT)
    if value.as_tuple().exponent > 0:  # type: ignore[operator]
        return value.quantize(_UNIT, context=_EXACT)
    return value


def _ratio(numerator: Decimal, denominator: Decimal | None) -> Decimal:
    """``_as_decimal`` of the fraction ``numerator / denominator`` (None: 1): exact and
    minimal when it has a finite decimal form, else 60 significant digits."""
    if denominator is None:
        return _minimal(numerator)
    try:
        return _minimal(_EXACT.divide(numerator, denominator))
    except (Inexact, Rounded):  # no finite decimal form: 60 digits, as _as_decimal divides
        with localcontext() as context:
            context.prec = _DISPLAY_DIGITS
            return numerator / denominator


def _round_ratio(numerator: Decimal, denominator: Decimal | None, quantum: Decimal) -> Decimal:
    """``_round_fraction`` of ``numerator / denominator``. Rounding a quotient truncated to
    200 digits gives the exact fraction's rounding: a fraction without a finite decimal
    form is never exactly on a half, and no half lies between it and its truncation."""
    value = numerator if denominator is None else _TRUNCATE.divide(numerator, denominator)
    if quantum.as_tuple().digits != (1,):  # a quantum like 0.05: the fractions
        return _round_fraction(Fraction(numerator) / Fraction(denominator or 1), quantum)
    rounded = value.quantize(quantum, context=_HALF_UP)
    return rounded if rounded else _EXACT.multiply(Decimal(0), quantum)  # never -0.00


def _decimal_payout(
    checked: tuple[Band, ...],
    mode: Mode,
    t_value: Decimal | None,
    a_value: Decimal,
    b_value: Decimal,
    quantum: Decimal,
    cap: Decimal | None,
) -> Payout:
    exact = _EXACT
    # (band index, actual part, base part's numerator); the base parts are over
    # ``denominator``: A when the base is scaled by B / A, else 1 (None).
    parts: list[tuple[int, Decimal, Decimal]]
    denominator: Decimal | None = None
    attainment: Decimal | None
    if t_value is None or t_value == 0:
        no_target, index, attainment = True, 0, None
        parts = [(0, a_value, b_value)]
    else:
        no_target = False
        attainment = _ratio(a_value, t_value)
        index = 0
        for position, band in enumerate(checked):
            if a_value >= exact.multiply(band.start, t_value):
                index = position
            else:
                break
        if mode == "flat" or a_value <= 0:
            parts = [(index, a_value, b_value)]
        else:
            denominator = a_value
            parts = []
            for position in range(index + 1):
                lower = exact.multiply(checked[position].start, t_value)
                upper = (
                    a_value
                    if position + 1 == len(checked)
                    else min(a_value, exact.multiply(checked[position + 1].start, t_value))
                )
                inside = max(Decimal(0), exact.subtract(upper, lower))
                parts.append((position, inside, exact.multiply(inside, b_value)))

    band_parts: list[BandPart] = []
    total = Decimal(0)  # the exact payout's numerator, over ``denominator``
    for position, actual_part, base_part in parts:
        band = checked[position]
        payout = exact.multiply(band.rate, base_part)
        total = exact.add(total, payout)
        band_parts.append(
            BandPart(
                index=position,
                start=band.start,
                rate=band.rate,
                actual_part=_minimal(actual_part),
                base_part=_ratio(base_part, denominator),
                payout=_ratio(payout, denominator),
            )
        )

    # exact > cap, compared without dividing (the denominator A is positive)
    capped = cap is not None and total > (
        cap if denominator is None else exact.multiply(cap, denominator)
    )
    if capped and cap is not None:
        amount = _round_ratio(cap, None, quantum)
    else:
        amount = _round_ratio(total, denominator, quantum)
    return Payout(
        amount=amount,
        exact=_ratio(total, denominator),
        attainment=attainment,
        band_index=index,
        parts=tuple(band_parts),
        capped=capped,
        no_target=no_target,
    )


def _fraction_payout(
    checked: tuple[Band, ...],
    mode: Mode,
    t_decimal: Decimal | None,
    a_decimal: Decimal,
    b_decimal: Decimal,
    quantum_value: Decimal,
    cap_value: Decimal | None,
) -> Payout:
    a_value = Fraction(a_decimal)
    b_value = Fraction(b_decimal)
    t_value = None if t_decimal is None else Fraction(t_decimal)
    parts: list[tuple[int, Fraction, Fraction]]  # (band index, actual part, base part)
    attainment: Decimal | None
    if t_value is None or t_value == 0:
        no_target, index, attainment = True, 0, None
        parts = [(0, a_value, b_value)]
    else:
        no_target = False
        attainment = _as_decimal(a_value / t_value)
        index = _band_index(checked, a_value, t_value)
        if mode == "flat" or a_value <= 0:
            # Flat, or marginal with nothing attained: the whole base in one band (band 0
            # when A <= 0, since an attainment at or below 0 is in the first band).
            parts = [(index, a_value, b_value)]
        else:
            scale = b_value / a_value
            parts = []
            for position in range(index + 1):
                lower = Fraction(checked[position].start) * t_value
                upper = (
                    a_value
                    if position + 1 == len(checked)
                    else min(a_value, Fraction(checked[position + 1].start) * t_value)
                )
                inside = max(_ZERO, upper - lower)
                parts.append((position, inside, inside * scale))

    band_parts: list[BandPart] = []
    exact = _ZERO
    for position, actual_part, base_part in parts:
        band = checked[position]
        payout = Fraction(band.rate) * base_part
        exact += payout
        band_parts.append(
            BandPart(
                index=position,
                start=band.start,
                rate=band.rate,
                actual_part=_as_decimal(actual_part),
                base_part=_as_decimal(base_part),
                payout=_as_decimal(payout),
            )
        )

    capped = cap_value is not None and exact > cap_value
    payable = Fraction(cap_value) if capped and cap_value is not None else exact
    return Payout(
        amount=_round_fraction(payable, quantum_value),
        exact=_as_decimal(exact),
        attainment=attainment,
        band_index=index,
        parts=tuple(band_parts),
        capped=capped,
        no_target=no_target,
    )


def multiplied_base(bases: Mapping[K, Number], multipliers: Mapping[K, Number]) -> Decimal:
    """B with product-line multipliers: the sum over product lines of the line's base times
    its multiplier (SPEC section 6 "Commission plan").

    ``bases`` maps each product line to its payout base (may be negative: reversals);
    ``multipliers`` maps product lines to their multipliers (not negative); a line with no
    multiplier counts once (multiplier 1), and multipliers of lines without a base are
    ignored. The result is exact. Attainment never uses this: it uses the plain A.
    """
    checked = {
        line: _non_negative(multiplier, f"multiplier of {line!r}")
        for line, multiplier in multipliers.items()
    }
    total = Decimal(0)
    with localcontext(_EXACT):
        for line, line_base in bases.items():
            total += _to_decimal(line_base, f"base of {line!r}") * checked.get(line, Decimal(1))
    return total


# --- leaderboard ----------------------------------------------------------------------------


class RankRow(NamedTuple, Generic[K]):
    """One row of a leaderboard: the member's key, their value and their competition rank
    (None when they have no value)."""

    key: K
    value: Decimal | None
    rank: int | None


def _default_name_key(name: str) -> str:
    return name.casefold()


def competition_ranks(
    items: Iterable[tuple[K, str, Number | None]],
    *,
    name_key: Callable[[str], str] = _default_name_key,
) -> list[RankRow[K]]:
    """Competition ranks of a leaderboard (SPEC section 6 "Leaderboard").

    ``items`` are ``(key, display name, value)``; keys must be distinct. Rows come back in
    board order: by value descending, compared exactly (``Decimal("1.0000")`` ties with
    ``1``; ``Decimal("0.99996")`` is below both); equal values share a rank and the next
    rank skips (1, 1, 3); ties are listed by display name (``name_key`` of it, then the name
    as written; the default ignores case). Members without a value (None: no target for
    attainment) come last, by display name, without a rank.

    The rank a member had in the previous period is the ``rank`` of their row on that
    period's board (none if they were not on it).
    """
    valued: list[tuple[K, str, Decimal]] = []
    unvalued: list[tuple[K, str]] = []
    seen: set[K] = set()
    for key, name, value in items:
        if key in seen:
            raise ValueError(f"keys must be distinct, {key!r} appears twice")
        seen.add(key)
        if not isinstance(name, str):
            raise TypeError(f"display name of {key!r} must be a str, got {type(name).__name__}")
        if value is None:
            unvalued.append((key, name))
        elif type(value) is Decimal and value.is_finite():
            valued.append((key, name, value))  # the common case, checked cheaply
        else:
            valued.append((key, name, _to_decimal(value, f"value of {key!r}")))

    # By name, then (a stable sort, reversed stably too) by value descending: two sorts
    # on plain keys cost less than one on (−value, name) tuples that build a Decimal each.
    valued.sort(key=lambda row: (name_key(row[1]), row[1]))
    valued.sort(key=itemgetter(2), reverse=True)
    unvalued.sort(key=lambda row: (name_key(row[1]), row[1]))
    result: list[RankRow[K]] = []
    previous: Decimal | None = None
    rank = 0
    for position, (key, _name, value) in enumerate(valued, start=1):
        if previous is None or value != previous:
            rank, previous = position, value
        result.append(RankRow(key=key, value=value, rank=rank))
    result.extend(RankRow(key=key, value=None, rank=None) for key, _name in unvalued)
    return result


# --- points: daily caps ---------------------------------------------------------------------


def points_to_award(points: int, awarded_today: int, daily_cap: int | None) -> int:
    """The points a new event earns under a rule's daily cap (SPEC section 6 "Points").

    ``points`` is the rule's points for the event; ``awarded_today`` the points of that
    rule already awarded to the member on the event's local day (the tenant's day), summing
    award rows only: an undo row frees no room; ``daily_cap`` is the rule's cap per member
    and day (None: no cap). The event earns all its points when the day's total stays
    within the cap (reaching it exactly is allowed), else 0: never a partial award.
    """
    points_value = _count(points, "points")
    awarded = _count(awarded_today, "awarded_today")
    if daily_cap is None:
        return points_value
    cap = _count(daily_cap, "daily_cap")
    return points_value if awarded + points_value <= cap else 0


def award_in_order(
    events: Iterable[tuple[K, int]],
    daily_cap: int | None,
    *,
    already_awarded: Mapping[K, int] | None = None,
) -> list[int]:
    """Each event's points under one rule's daily cap, processing events in commit order.

    ``events`` are ``(day key, points)`` in commit order, the day key naming the member and
    the event's local day (e.g. ``(member_id, date)``); ``already_awarded`` gives the points
    of award rows already in the ledger per day key (undo rows not subtracted). Each event
    is :func:`points_to_award` against its day's running total, so an event refused by the
    cap (0) leaves room for a later, smaller one.
    """
    totals: dict[K, int] = {}
    if already_awarded is not None:
        for key, awarded in already_awarded.items():
            totals[key] = _count(awarded, f"points already awarded for {key!r}")
    result: list[int] = []
    for key, points in events:
        award = points_to_award(points, totals.get(key, 0), daily_cap)
        totals[key] = totals.get(key, 0) + award
        result.append(award)
    return result
