"""Review arithmetic (SPEC §10 "Review (复盘)"), on plain values: no ORM, no floats.

Two pieces of a review of one target node (a member or a unit) of a ``won_amount`` plan in
one period:

* **Gap** (:func:`gap_of`, :func:`unit_gap`): target T, actual A, attainment A ÷ T and the
  signed gap A − T; for a unit, the same for each child and the sum of the children's
  targets beside the unit's own.
* **Factor analysis** (连环替代法, chain substitution; :func:`factor_analysis`): A = N × w × s
  with N the deals closed (won or lost) in the period credited to the node, w = won ÷ N and
  s = A ÷ won (s = s₀ when nothing was won), against a baseline w₀ (closed win rate) and s₀
  (mean won amount) over the 12 whole calendar months before the period, taken from the
  first level (member → unit → tenant) with at least :data:`MIN_CLOSED_DEALS` closed deals
  and one win (:func:`pick_baseline`), and N₀ = T ÷ (w₀ × s₀). The effects, in this order::

      volume    = (N − N₀) × w₀ × s₀
      win rate  = N × (w − w₀) × s₀
      deal size = N × w × (s − s₀)

Numbers and rounding, done once and here:

* Amounts and ratios are ``Decimal``; ``int`` is accepted where it is exact, ``float`` is
  rejected with ``TypeError`` (it cannot hold money exactly). Counts are ``int``.
* The effects are computed from the exact counts and amounts (as fractions), never from a
  rounded w₀, s₀ or N₀. Volume and win rate are then rounded half-up (``ROUND_HALF_UP``:
  halves away from zero) to the quantum, the currency's minor unit; deal size is the rest,
  ``(A − T) − volume − win rate``, so the three add up to A − T exactly. With N = 0 the
  volume effect is −T and the others 0.
* The ratios shown beside the effects (w, s, w₀, s₀, N₀, attainment) are not rounded: they
  are exact when their decimal expansion ends within :data:`PRECISION` significant digits
  and carry that many digits otherwise. Callers round them for display (4 places for
  rates, the minor unit for amounts).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, Rounded
from fractions import Fraction
from typing import Generic, Literal, TypeVar

from funnel.rates import LEVEL_ORDER, MIN_CLOSED_DEALS, Level

__all__ = [
    "MIN_CLOSED_DEALS",
    "NO_BASELINE",
    "PRECISION",
    "ZERO_BASELINE_DEAL_SIZE",
    "Baseline",
    "ChildGap",
    "Effects",
    "FactorAnalysis",
    "Gap",
    "Level",
    "Number",
    "Reason",
    "UnitGap",
    "factor_analysis",
    "gap_of",
    "pick_baseline",
    "unit_gap",
]

K = TypeVar("K", bound=Hashable)

#: What callers may pass for an amount: ``Decimal``, or an ``int`` (exact).
Number = Decimal | int

Reason = Literal["no_baseline", "zero_baseline_deal_size"]
NO_BASELINE: Reason = "no_baseline"
"""No level has at least ``min_closed_deals`` closed deals and a win in the baseline window."""
ZERO_BASELINE_DEAL_SIZE: Reason = "zero_baseline_deal_size"
"""The level picked won only zero amounts: s₀ = 0, so N₀ = T ÷ (w₀ × s₀) has no value."""

PRECISION = 60
"""Significant digits of the quotients shown (w, s, w₀, s₀, N₀, attainment)."""

_ZERO = Decimal(0)
# Quotients that may not terminate: many digits, independent of the caller's context.
_DIVISION = Context(prec=PRECISION, rounding=ROUND_HALF_EVEN)
# Sums, differences and multiples of the quantum must be exact: fail loudly, never round.
_EXACT = Context(prec=200, traps=[Inexact, Rounded])


# -- input checking -------------------------------------------------------------------------


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


def _count(value: object, name: str) -> int:
    """``value`` as a non-negative whole count; ``float``/``bool``/``Decimal`` -> ``TypeError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _quantum(value: object) -> Decimal:
    result = _to_decimal(value, "quantum")
    if result <= 0:
        raise ValueError(f"quantum must be positive, got {result}")
    return result


def _divide(numerator: Fraction) -> Decimal:
    """An exact fraction as a ``Decimal`` of :data:`PRECISION` significant digits."""
    return _DIVISION.divide(Decimal(numerator.numerator), Decimal(numerator.denominator))


def _exact_sum(values: Iterable[Decimal]) -> Decimal:
    total = _ZERO
    for value in values:
        total = _EXACT.add(total, value)
    return total


def _round_half_up(value: Fraction, quantum: Decimal) -> Decimal:
    """The exact ``value`` rounded to a multiple of ``quantum``, halves away from zero.

    Done on the fraction, so a value just below a half is never taken for one.
    """
    quanta = value / Fraction(quantum)
    count = math.floor(abs(quanta) + Fraction(1, 2))
    if quanta < 0:
        count = -count
    return _EXACT.multiply(Decimal(count), quantum)


# -- baseline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """One fallback level's history over the 12 whole calendar months before the period.

    ``closed_deals`` counts the deals closed (won or lost) in that window credited to the
    level; ``won_deals`` and ``won_amount`` are the wins among them (their number and the
    sum of their amounts).
    """

    level: Level
    closed_deals: int
    won_deals: int
    won_amount: Decimal

    def __post_init__(self) -> None:
        if self.level not in LEVEL_ORDER:
            raise ValueError(f"unknown level {self.level!r}")
        _count(self.closed_deals, "closed_deals")
        _count(self.won_deals, "won_deals")
        if self.won_deals > self.closed_deals:
            raise ValueError("won_deals cannot exceed closed_deals")
        amount = _non_negative(self.won_amount, "won_amount")
        if self.won_deals == 0 and amount != 0:
            raise ValueError("won_amount must be zero when nothing was won")
        object.__setattr__(self, "won_amount", amount)


def _check_levels(levels: Sequence[Baseline]) -> None:
    positions = [LEVEL_ORDER.index(baseline.level) for baseline in levels]
    if positions != sorted(set(positions)):
        raise ValueError("baseline levels must be distinct and ordered member, unit, tenant")


def pick_baseline(
    levels: Sequence[Baseline], *, min_closed_deals: int = MIN_CLOSED_DEALS
) -> Baseline | None:
    """The baseline used: the first level with ``min_closed_deals`` closed deals and a win.

    SPEC §10 takes the plan to close's fallback (§5): ``levels`` are the member's, their
    unit's and the tenant's histories, in that order (any may be left out; a unit's review
    starts at the unit). A level with fewer closed deals, or with no win among them, is
    skipped; the tenant is held to the same rule. None when no level qualifies: the
    analysis then says so instead of giving effects.
    """
    _check_levels(levels)
    _count(min_closed_deals, "min_closed_deals")
    for baseline in levels:
        if baseline.closed_deals >= min_closed_deals and baseline.won_deals > 0:
            return baseline
    return None


# -- factor analysis ------------------------------------------------------------------------


@dataclass(frozen=True)
class Effects:
    """The three effects of chain substitution, in the order they are substituted.

    ``volume`` and ``win_rate`` are multiples of the quantum; ``deal_size`` is the rest, so
    ``volume + win_rate + deal_size == total == A − T`` exactly. A negative effect pulled
    the actual below the target, a positive one pushed it above.
    """

    volume: Decimal
    win_rate: Decimal
    deal_size: Decimal
    total: Decimal


@dataclass(frozen=True)
class FactorAnalysis:
    """Chain-substitution analysis of A − T (SPEC §10).

    Period figures: ``target`` T, ``actual`` A, ``closed_deals`` N, ``won_deals``,
    ``win_rate`` w = won ÷ N (None when N = 0) and ``deal_size`` s = A ÷ won (s₀ when
    nothing was won; None when nothing was won and there is no baseline).

    Baseline: ``baseline`` is the level's history used (None when none qualifies),
    ``baseline_win_rate`` w₀, ``baseline_deal_size`` s₀ and ``closed_deals_needed``
    N₀ = T ÷ (w₀ × s₀), the closed deals that would have met the target at the baseline's
    win rate and deal size (None when s₀ = 0).

    ``effects`` are None when they cannot be computed, and ``reason`` then says why
    (:data:`NO_BASELINE`, :data:`ZERO_BASELINE_DEAL_SIZE`).

    The ratios are exact, or :data:`PRECISION` significant digits when they do not end;
    the effects were computed from the exact counts and amounts, not from these digits.
    """

    target: Decimal
    actual: Decimal
    closed_deals: int
    won_deals: int
    win_rate: Decimal | None
    deal_size: Decimal | None
    baseline: Baseline | None
    baseline_win_rate: Decimal | None
    baseline_deal_size: Decimal | None
    closed_deals_needed: Decimal | None
    effects: Effects | None
    reason: Reason | None = None

    @property
    def source(self) -> Level | None:
        """The level the baseline came from (``member``, ``unit``, ``tenant``), or None."""
        return None if self.baseline is None else self.baseline.level


def factor_analysis(
    target: Number,
    actual: Number,
    closed_deals: int,
    won_deals: int,
    baselines: Sequence[Baseline],
    *,
    quantum: Number,
    min_closed_deals: int = MIN_CLOSED_DEALS,
) -> FactorAnalysis:
    """Split the signed gap A − T into volume, win-rate and deal-size effects (SPEC §10).

    ``target`` T and ``actual`` A (the won amount credited to the node in the period) are
    amounts; ``closed_deals`` N and ``won_deals`` count the period's deals closed (won or
    lost) credited to the node and the wins among them. ``baselines`` are the fallback
    levels' histories, member → unit → tenant (:func:`pick_baseline`); ``quantum`` is the
    currency's minor unit (``Decimal("0.01")``).

    Volume and win rate are rounded half-up to the quantum and deal size is the rest, so
    the three add up to A − T exactly; with N = 0 volume is −T and the others 0. When
    nothing was won s = s₀ and the exact deal-size effect is 0, so the rest is 0 unless
    both other effects are exact halves of a quantum rounded the same way (then ± one
    quantum).

    ``ValueError`` for negative amounts or counts, more wins than closed deals, or an
    actual other than 0 when nothing was won (A is the sum of the wins' amounts);
    ``TypeError`` for floats.
    """
    target_value = _non_negative(target, "target")
    actual_value = _non_negative(actual, "actual")
    closed = _count(closed_deals, "closed_deals")
    won = _count(won_deals, "won_deals")
    quantum_value = _quantum(quantum)
    if won > closed:
        raise ValueError(f"won_deals ({won}) cannot exceed closed_deals ({closed})")
    if won == 0 and actual_value != 0:
        raise ValueError(
            f"actual must be 0 when nothing was won (it is the won amount), got {actual_value}"
        )

    t = Fraction(target_value)
    a = Fraction(actual_value)
    w = Fraction(won, closed) if closed else None
    s_actual = a / won if won else None
    baseline = pick_baseline(baselines, min_closed_deals=min_closed_deals)

    def result(
        *,
        deal_size: Fraction | None,
        w0: Fraction | None = None,
        s0: Fraction | None = None,
        n0: Fraction | None = None,
        effects: Effects | None = None,
        reason: Reason | None = None,
    ) -> FactorAnalysis:
        return FactorAnalysis(
            target=target_value,
            actual=actual_value,
            closed_deals=closed,
            won_deals=won,
            win_rate=None if w is None else _divide(w),
            deal_size=None if deal_size is None else _divide(deal_size),
            baseline=baseline,
            baseline_win_rate=None if w0 is None else _divide(w0),
            baseline_deal_size=None if s0 is None else _divide(s0),
            closed_deals_needed=None if n0 is None else _divide(n0),
            effects=effects,
            reason=reason,
        )

    if baseline is None:
        return result(deal_size=s_actual, reason=NO_BASELINE)
    # A level picked has closed deals and a win, so w₀ and s₀ have values.
    w0 = Fraction(baseline.won_deals, baseline.closed_deals)
    s0 = Fraction(baseline.won_amount) / baseline.won_deals
    s = s0 if s_actual is None else s_actual
    if s0 == 0:
        return result(deal_size=s, w0=w0, s0=s0, reason=ZERO_BASELINE_DEAL_SIZE)
    n0 = t / (w0 * s0)

    total = _EXACT.subtract(actual_value, target_value)
    if w is None:
        # Nothing closed (N = 0): the whole gap is volume (A is 0 here, so A − T = −T).
        effects = Effects(
            volume=_EXACT.minus(target_value), win_rate=_ZERO, deal_size=_ZERO, total=total
        )
        return result(deal_size=s, w0=w0, s0=s0, n0=n0, effects=effects)
    volume = _round_half_up((closed - n0) * w0 * s0, quantum_value)
    win_rate = _round_half_up(closed * (w - w0) * s0, quantum_value)
    deal_size = _EXACT.subtract(_EXACT.subtract(total, volume), win_rate)
    effects = Effects(volume=volume, win_rate=win_rate, deal_size=deal_size, total=total)
    return result(deal_size=s, w0=w0, s0=s0, n0=n0, effects=effects)


# -- gap ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """Target, actual and how they compare (SPEC §10 "Gap").

    ``attainment`` is A ÷ T, not rounded (exact, or :data:`PRECISION` significant digits),
    None when the target is not set (None) or is 0. ``gap`` is the signed A − T (negative:
    short of the target), None without a target.
    """

    target: Decimal | None
    actual: Decimal
    attainment: Decimal | None
    gap: Decimal | None


def gap_of(target: Number | None, actual: Number) -> Gap:
    """The gap figures of one node: T, A, attainment A ÷ T and signed gap A − T.

    ``target`` None means no target is set. Targets are never negative (``ValueError``);
    the actual may be (net reversed collections).
    """
    target_value = None if target is None else _non_negative(target, "target")
    actual_value = _to_decimal(actual, "actual")
    if target_value is None:
        return Gap(target=None, actual=actual_value, attainment=None, gap=None)
    attainment = None if target_value == 0 else _DIVISION.divide(actual_value, target_value)
    return Gap(
        target=target_value,
        actual=actual_value,
        attainment=attainment,
        gap=_EXACT.subtract(actual_value, target_value),
    )


@dataclass(frozen=True)
class ChildGap(Generic[K]):
    """The gap figures of one child (a unit or a direct member) of a reviewed unit."""

    key: K
    gap: Gap


@dataclass(frozen=True)
class UnitGap(Generic[K]):
    """A unit's gap and its children's (SPEC §10 "Gap").

    ``own`` is the unit's own target and actual; ``children`` each child's, in the order
    given. ``children_total`` compares the sum of the children's targets (those set; None
    when none is) with the sum of their actuals. ``target_difference`` is the children's
    target sum minus the unit's own target (positive when the children carry more, e.g.
    the headroom of the split), None when either is missing.
    """

    own: Gap
    children: tuple[ChildGap[K], ...]
    children_total: Gap
    target_difference: Decimal | None


def unit_gap(
    target: Number | None,
    actual: Number,
    children: Iterable[tuple[K, Number | None, Number]],
) -> UnitGap[K]:
    """The gap of a unit, of each child ``(key, target, actual)`` and of their sum.

    A child key may appear only once (``ValueError``).
    """
    own = gap_of(target, actual)
    rows: list[ChildGap[K]] = []
    seen: set[K] = set()
    for key, child_target, child_actual in children:
        if key in seen:
            raise ValueError(f"child {key!r} is listed twice")
        seen.add(key)
        rows.append(ChildGap(key=key, gap=gap_of(child_target, child_actual)))
    targets = [row.gap.target for row in rows if row.gap.target is not None]
    children_target = _exact_sum(targets) if targets else None
    children_actual = _exact_sum(row.gap.actual for row in rows)
    children_total = gap_of(children_target, children_actual)
    difference = (
        None
        if children_target is None or own.target is None
        else _EXACT.subtract(children_target, own.target)
    )
    return UnitGap(
        own=own,
        children=tuple(rows),
        children_total=children_total,
        target_difference=difference,
    )
