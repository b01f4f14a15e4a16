"""Achievement arithmetic of one target node (SPEC §4 "Achievement"), on plain values.

No ORM and no floats: amounts, counts and ratios are ``Decimal``; day counts are ``int``
(the fiscal calendar, computed elsewhere in the tenant's time zone, supplies them).

Rounding (SPEC preamble): nothing here is rounded. ``attainment`` and ``pace`` are exact
ratios and the status is judged on the exact pace (260,000 / 260,010 = 0.99996… is
``at_risk``, though shown as 1.0000); ``expected_to_date``, ``gap``, ``required_per_day``
and the projections keep the full precision of the ``Decimal`` context. What is shown or
stored is rounded once, at the edge, by :func:`shown`: money half-up to the currency's
minor unit (``tenancy.money.round_money``), rates and paces half-up to 4 places
(``tenancy.money.round_rate``). Rounding an intermediate value to cents would make a
year's expected value drift from the sum of its months.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, NamedTuple

from tenancy.money import round_money, round_rate

COUNT_PLACES = Decimal("0.01")
"""Counts paced by days (3 visits × 10/30 = 1.0333…) are shown to 2 places, half-up."""
DEFAULT_THRESHOLD = Decimal("0.10")
COMMIT = "commit"
"""The forecast category (SPEC §3) whose deals make the commit-only projection."""

Status = Literal["on_track", "at_risk", "off_track"]
ON_TRACK: Status = "on_track"
AT_RISK: Status = "at_risk"
OFF_TRACK: Status = "off_track"

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)


def _check_days(elapsed_days: int, total_days: int) -> None:
    if total_days <= 0:
        raise ValueError(f"total_days must be positive, got {total_days}")
    if not 0 <= elapsed_days <= total_days:
        raise ValueError(f"elapsed_days must be within 0..{total_days}, got {elapsed_days}")


def attainment(actual: Decimal, target: Decimal | None) -> Decimal | None:
    """``actual / target``, exact (SPEC §4; shown to 4 places half-up).

    None when the target is not set (``None``) or not applicable (``0``).
    """
    if target is None or target == 0:
        return None
    return actual / target


@dataclass(frozen=True)
class PeriodTarget:
    """One period's target as of a date, with its decomposed sub-periods (SPEC §4).

    ``elapsed_days`` counts the as-of date itself: 0 before the period starts,
    ``total_days`` from its last day on. ``children`` are the sub-periods (quarters of a
    year, months of a quarter) in time order; their days must add up to the parent's, so
    that fully elapsed children come first, then at most one current child, then children
    not started yet. ``target=None`` means not set.
    """

    target: Decimal | None
    total_days: int
    elapsed_days: int
    children: tuple[PeriodTarget, ...] = ()

    def __post_init__(self) -> None:
        _check_days(self.elapsed_days, self.total_days)
        if not self.children:
            return
        if sum(child.total_days for child in self.children) != self.total_days:
            raise ValueError("the sub-periods' total_days must add up to the period's")
        if sum(child.elapsed_days for child in self.children) != self.elapsed_days:
            raise ValueError("the sub-periods' elapsed_days must add up to the period's")
        # With the sums matching, elapsed days must fill the children from the left.
        for earlier, later in zip(self.children, self.children[1:], strict=False):
            if later.elapsed_days > 0 and earlier.elapsed_days < earlier.total_days:
                raise ValueError("a sub-period started before the previous one ended")

    @property
    def remaining_days(self) -> int:
        """Days after the as-of date up to the period's end (SPEC §4: *d* + 1 … end)."""
        return self.total_days - self.elapsed_days


def expected_to_date_leaf(
    target: Decimal | None, elapsed_days: int, total_days: int
) -> Decimal | None:
    """Linear pacing of a period without sub-periods: ``target × elapsed / total`` (SPEC §4).

    ``elapsed_days`` counts the as-of date itself. The result is not rounded (module note);
    None when the target is not set.
    """
    _check_days(elapsed_days, total_days)
    if target is None:
        return None
    # Multiply first so that whole-day shares of round targets stay exact (100 × 15 / 30).
    return target * elapsed_days / total_days


def expected_to_date(node: PeriodTarget) -> Decimal | None:
    """What the node should have reached by the as-of date (SPEC §4, seasonal pacing).

    A period with sub-periods expects the targets of its fully elapsed sub-periods plus the
    current sub-period's own ``expected_to_date``, recursively, so the plan's seasonality
    sets the pace; a period without sub-periods is paced linearly by days.

    None when the node's target is not set, or when a sub-period that has started has no
    target (a half-decomposed period cannot be paced honestly).
    """
    if node.target is None:
        return None
    if not node.children:
        return expected_to_date_leaf(node.target, node.elapsed_days, node.total_days)
    expected = _ZERO
    for child in node.children:
        if child.elapsed_days == 0:
            break
        fully_elapsed = child.elapsed_days == child.total_days
        part = child.target if fully_elapsed else expected_to_date(child)
        if part is None:
            return None
        expected += part
    return expected


def pace(actual: Decimal, expected: Decimal | None) -> Decimal | None:
    """``actual / expected_to_date``, exact (SPEC §4; shown to 4 places half-up, but the
    status is judged on this exact value).

    None when nothing is expected yet (``expected`` is None or 0).
    """
    if expected is None or expected == 0:
        return None
    return actual / expected


def status(pace: Decimal | None, threshold: Decimal = DEFAULT_THRESHOLD) -> Status | None:
    """Classify a pace (SPEC §4): ``on_track`` (≥ 1), ``at_risk`` (≥ 1 − t), else ``off_track``.

    ``pace`` must be the exact pace, never the rounded one shown (0.99996 is ``at_risk``).
    ``threshold`` is the tenant's t, within [0, 1). None when there is no pace.
    """
    if not _ZERO <= threshold < _ONE:
        raise ValueError(f"threshold must be within [0, 1), got {threshold}")
    if pace is None:
        return None
    if pace >= _ONE:
        return ON_TRACK
    if pace >= _ONE - threshold:
        return AT_RISK
    return OFF_TRACK


def gap(target: Decimal | None, actual: Decimal) -> Decimal | None:
    """What is still missing: ``max(target − actual, 0)`` (SPEC §4); None without a target."""
    if target is None:
        return None
    return max(target - actual, _ZERO)


def required_per_day(gap: Decimal | None, remaining_days: int) -> Decimal | None:
    """``gap / remaining days`` (SPEC §4), remaining days being *d* + 1 … period end.

    None on the period's last day or later (no day left to spread over) or without a gap;
    0 when nothing is missing. Not rounded (module note).
    """
    if remaining_days < 0:
        raise ValueError(f"remaining_days must not be negative, got {remaining_days}")
    if gap is None or remaining_days == 0:
        return None
    if gap == 0:
        return _ZERO
    return gap / remaining_days


class OpenDeal(NamedTuple):
    """An open opportunity credited to the node, expected to close in the rest of the period.

    ``probability`` is in percent (0–100): the override, else the stage default (SPEC §5).
    ``forecast_category`` is the override, else the stage's (SPEC §3).
    """

    amount: Decimal
    probability: Decimal
    forecast_category: str


class Projection(NamedTuple):
    """Where the period may end (SPEC §4 ``projected``)."""

    projected: Decimal
    """``won_amount``: ``actual + Σ amount × probability / 100`` over the open deals;
    ``collections``: ``actual + Σ`` planned payments due; other metrics: the run rate."""
    commit: Decimal | None = None
    """``won_amount`` only: ``actual + Σ amount`` of the open deals in forecast category
    ``commit`` (no probability: a commit is what the rep says will close)."""


def projected(
    actual: Decimal,
    open_deals: Iterable[OpenDeal | tuple[Decimal, Decimal | int, str]],
) -> Projection:
    """The weighted and the commit projections of ``won_amount`` (SPEC §4).

    ``projected = actual + Σ amount × probability / 100`` over the open deals credited to
    the node with expected close in the rest of the period; ``projected_commit = actual +
    Σ amount`` of those whose forecast category is ``commit``. Not rounded (module note).
    """
    weighted = actual
    commit = actual
    for amount, probability, forecast_category in open_deals:
        if not 0 <= probability <= 100:
            raise ValueError(f"probability must be within 0..100, got {probability}")
        weighted += amount * probability / _HUNDRED
        if forecast_category == COMMIT:
            commit += amount
    return Projection(projected=weighted, commit=commit)


def projected_collections(actual: Decimal, planned_payments: Iterable[Decimal]) -> Projection:
    """``collections``: ``actual + Σ`` planned payments of the node's won deals due in the
    rest of the period, at face value (SPEC §4: no probability)."""
    return Projection(projected=actual + sum(planned_payments, _ZERO))


def run_rate(actual: Decimal, elapsed_days: int, total_days: int) -> Decimal | None:
    """Other metrics: ``actual / elapsed_days × total_days`` (SPEC §4); None before the
    period starts (no day to take a rate from)."""
    _check_days(elapsed_days, total_days)
    if elapsed_days == 0:
        return None
    return actual * total_days / elapsed_days


@dataclass(frozen=True)
class Achievement:
    """Where one target node stands as of a date (SPEC §4); see each function for a field."""

    target: Decimal | None
    actual: Decimal
    attainment: Decimal | None
    expected_to_date: Decimal | None
    pace: Decimal | None
    status: Status | None
    gap: Decimal | None
    remaining_days: int
    required_per_day: Decimal | None
    projected: Decimal | None
    """SPEC §4 ``projected`` (its rule depends on the metric, see :class:`Projection`)."""
    projected_commit: Decimal | None
    """``won_amount`` only: actual plus the open ``commit`` deals at face value."""
    currency: str | None = None
    """The currency of an amount metric (money is shown in its minor unit); None: a count."""


def compute_achievement(
    *,
    period: PeriodTarget,
    actual: Decimal,
    open_deals: Iterable[OpenDeal | tuple[Decimal, Decimal | int, str]] | None = None,
    threshold: Decimal = DEFAULT_THRESHOLD,
    currency: str | None = None,
) -> Achievement:
    """Fill an ``Achievement`` for a node (SPEC §4).

    ``period`` is the node's period tree as of the date, ``actual`` the metric value up to
    and including that date. ``open_deals`` is given for amount metrics only; without it
    the projections are None.
    """
    return achievement_of(
        target=period.target,
        actual=actual,
        expected=expected_to_date(period),
        remaining_days=period.remaining_days,
        open_deals=open_deals,
        threshold=threshold,
        currency=currency,
    )


def achievement_of(
    *,
    target: Decimal | None,
    actual: Decimal,
    expected: Decimal | None,
    remaining_days: int,
    open_deals: Iterable[OpenDeal | tuple[Decimal, Decimal | int, str]] | None = None,
    threshold: Decimal = DEFAULT_THRESHOLD,
    projection: Projection | None = None,
    currency: str | None = None,
) -> Achievement:
    """``compute_achievement`` from an ``expected_to_date`` computed by the caller (a whole
    plan paces every node from its months at once, see ``targets.achievement``), and
    from either the open deals or their ``projection`` summed already."""
    node_pace = pace(actual, expected)
    node_gap = gap(target, actual)
    if projection is None and open_deals is not None:
        projection = projected(actual, open_deals)
    return Achievement(
        target=target,
        actual=actual,
        attainment=attainment(actual, target),
        expected_to_date=expected,
        pace=node_pace,
        status=status(node_pace, threshold),
        gap=node_gap,
        remaining_days=remaining_days,
        required_per_day=required_per_day(node_gap, remaining_days),
        projected=None if projection is None else projection.projected,
        projected_commit=None if projection is None else projection.commit,
        currency=currency,
    )


def shown_amount(value: Decimal | None, currency: str | None) -> Decimal | None:
    """An amount or count as shown or stored (SPEC preamble): money half-up to the
    currency's minor unit, a count paced by days half-up to 2 places."""
    if value is None:
        return None
    if currency:
        return round_money(value, currency)
    return value.quantize(COUNT_PLACES, rounding=ROUND_HALF_UP)


def shown_rate(value: Decimal | None) -> Decimal | None:
    """A rate or pace as shown or stored: half-up to 4 places (0.99996 → 1.0000)."""
    return None if value is None else round_rate(value)
