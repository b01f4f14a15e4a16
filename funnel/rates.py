"""Funnel arithmetic (SPEC §5), on plain counts and ``Decimal`` amounts, no ORM, no floats.

Rounding, done once and here:

* Rates shown to people (``rate``, the rates in a cohort and in a plan to close) are rounded
  half-up to 4 decimal places.
* The plan to close computes every figure from the exact counts and amounts behind a rate,
  never from the rounded rate, and rounds up to a whole number once per figure; so a 1/3
  rate asks for 30 opportunities for 10 wins, not the 31 that 10 / 0.3333 would give.
* Mean and median durations are not rounded; callers round them for display.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

RATIO_PLACES = Decimal("0.0001")
MIN_CLOSED_DEALS = 5
"""A member's or unit's own history is used from this many closed deals on (SPEC §5)."""
WON = "won"
"""Label of the step after the last open stage in cohort rows and plans."""

Level = Literal["member", "unit", "tenant"]
LEVEL_ORDER: tuple[Level, ...] = ("member", "unit", "tenant")


class DeferredCounts(Mapping[str, int]):
    """Counts computed when first read, for a level whose counts cost much to read and
    may not be needed: the tenant's reached counts walk every closed deal's stage changes
    (0.3 s on a 200,000-deal tenant), and a plan to close reads them only when a stage
    rate falls back that far. Until read they are not checked against the stage order
    (``_check_levels``); whoever makes them makes them per open stage."""

    def __init__(self, compute: Callable[[], Mapping[str, int]]) -> None:
        self._compute: Callable[[], Mapping[str, int]] | None = compute
        self._counts: Mapping[str, int] = {}

    @property
    def read(self) -> bool:
        return self._compute is None

    def _value(self) -> Mapping[str, int]:
        if self._compute is not None:
            self._counts, self._compute = dict(self._compute()), None
        return self._counts

    def __getitem__(self, stage: str) -> int:
        return self._value()[stage]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())


# -- small helpers --------------------------------------------------------------------------


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def _ceil_div(numerator: Decimal | int, denominator: Decimal | int) -> int:
    """``ceil(numerator / denominator)`` exactly, for a positive denominator.

    The quotient is rounded towards +∞ at the context precision, so it never falls below
    the exact quotient nor rises past the next whole number: its ceiling is the exact one.
    """
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    with localcontext() as context:
        context.rounding = ROUND_CEILING
        quotient = Decimal(numerator) / Decimal(denominator)
    return _ceil(quotient)


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal:
    quotient = Decimal(numerator) / Decimal(denominator)
    return quotient.quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


# -- rates ----------------------------------------------------------------------------------


def rate(numerator: int, denominator: int) -> Decimal | None:
    """A funnel rate (SPEC §5): ``numerator / denominator`` rounded half-up to 4 places.

    None when the denominator is zero: there is nothing to divide by.
    """
    _check_count("numerator", numerator)
    _check_count("denominator", denominator)
    if denominator == 0:
        return None
    return _ratio(numerator, denominator)


def closed_win_rate(won: int, lost: int) -> Decimal | None:
    """Closed win rate in a window: ``#won / (#won + #lost)`` closed in it (SPEC §5)."""
    _check_count("won", won)
    _check_count("lost", lost)
    return rate(won, won + lost)


def reached_counts(
    stage_order: Sequence[str], paths: Iterable[Iterable[str]], *, won_stage: str
) -> dict[str, int]:
    """How many opportunities reached each open stage (SPEC §5 "reached").

    An opportunity reached a stage when it entered that stage or any later non-lost stage:
    skipped stages count as passed, and moving back does not undo a stage reached. Each path
    lists the stages one opportunity entered (its creation stage and every stage change);
    ``won_stage`` lies after every open stage, and stages outside ``stage_order`` (lost
    stages) are ignored.
    """
    position = {stage: index for index, stage in enumerate(stage_order)}
    if len(position) != len(stage_order):
        raise ValueError("stage_order repeats a stage")
    if won_stage in position:
        raise ValueError("won_stage must not be one of the open stages")
    position[won_stage] = len(stage_order)
    counts = dict.fromkeys(stage_order, 0)
    for path in paths:
        furthest = max((position[stage] for stage in path if stage in position), default=-1)
        for stage in stage_order[: furthest + 1]:
            counts[stage] += 1
    return counts


@dataclass(frozen=True)
class StageConversion:
    """One row of a cohort: how many reached ``stage`` and went on to ``next_stage``."""

    stage: str
    reached: int
    next_stage: str
    next_reached: int
    rate_to_next_stage: Decimal | None


@dataclass(frozen=True)
class CohortConversion:
    """Conversion of the opportunities created in a window (SPEC §5 cohort conversion)."""

    stages: tuple[StageConversion, ...]
    created: int
    won: int
    win_rate: Decimal | None


def _reached_by_stage(stage_order: Sequence[str], counts: Mapping[str, int]) -> list[int]:
    unknown = set(counts) - set(stage_order)
    if unknown:
        raise ValueError(f"reached counts name stages outside stage_order: {sorted(unknown)}")
    if len(set(stage_order)) != len(stage_order):
        raise ValueError("stage_order repeats a stage")
    reached = [counts.get(stage, 0) for stage in stage_order]
    for stage, count in zip(stage_order, reached, strict=True):
        _check_count(f"reached[{stage}]", count)
    return reached


def cohort_conversion(
    stage_order: Sequence[str],
    reached_counts: Mapping[str, int],
    created: int,
    won: int,
) -> CohortConversion:
    """Stage-to-stage rates and the win rate of a cohort (SPEC §5).

    ``stage_order`` lists the pipeline's open stages in order; ``reached_counts`` maps each
    to the number of cohort opportunities that reached it (a stage nobody reached may be
    left out). ``rate(s → next) = #reached(next) / #reached(s)``, the last open stage's
    next step being the win; the cohort win rate is ``#won / #created``.
    """
    _check_count("created", created)
    _check_count("won", won)
    reached = _reached_by_stage(stage_order, reached_counts)
    next_labels = [*stage_order[1:], WON]
    next_reached = [*reached[1:], won]
    rows = tuple(
        StageConversion(
            stage=stage,
            reached=count,
            next_stage=next_label,
            next_reached=next_count,
            rate_to_next_stage=rate(next_count, count),
        )
        for stage, count, next_label, next_count in zip(
            stage_order, reached, next_labels, next_reached, strict=True
        )
    )
    return CohortConversion(stages=rows, created=created, won=won, win_rate=rate(won, created))


# -- durations ------------------------------------------------------------------------------


def _durations(days: Iterable[Decimal | int]) -> list[Decimal]:
    values = [Decimal(value) for value in days]
    for value in values:
        if value < 0:
            raise ValueError(f"a duration must not be negative, got {value}")
    return values


def mean_days(days: Iterable[Decimal | int]) -> Decimal | None:
    """Mean of durations in days (SPEC §5 time in stage, cycle); None when there are none."""
    values = _durations(days)
    if not values:
        return None
    return sum(values, Decimal(0)) / len(values)


def median_days(days: Iterable[Decimal | int]) -> Decimal | None:
    """Median of durations in days, the mean of the middle two for an even count (SPEC §5)."""
    values = sorted(_durations(days))
    if not values:
        return None
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


# -- plan to close --------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """One fallback level's trailing-twelve-month history (SPEC §5 plan to close).

    ``reached_counts`` counts, per open stage, the deals closed (won or lost) in the window
    that reached it; ``won_deals`` and ``won_amount`` are the wins among them.
    """

    level: Level
    closed_deals: int
    won_deals: int
    won_amount: Decimal
    reached_counts: Mapping[str, int]
    new_opportunities: int
    leads_created: int
    leads_converted: int
    verified_visits: int

    def __post_init__(self) -> None:
        if self.level not in LEVEL_ORDER:
            raise ValueError(f"unknown level {self.level!r}")
        for name in (
            "closed_deals",
            "won_deals",
            "new_opportunities",
            "leads_created",
            "leads_converted",
            "verified_visits",
        ):
            _check_count(name, getattr(self, name))
        if self.won_deals > self.closed_deals:
            raise ValueError("won_deals cannot exceed closed_deals")
        if self.won_amount < 0:
            raise ValueError("won_amount must not be negative")


@dataclass(frozen=True)
class RateUsed:
    """A ratio taken from one level's history: ``numerator / denominator``.

    ``value`` is the ratio rounded half-up to 4 places, for display; figures are computed
    from the exact numerator and denominator.
    """

    value: Decimal
    numerator: Decimal
    denominator: Decimal
    source: Level


@dataclass(frozen=True)
class Figure:
    """One number of a plan to close and how it was obtained.

    ``value`` is None when it cannot be computed ("no data"), and ``reason`` then says why.
    ``rate`` is the ratio applied to get it (None when no level has one).
    """

    value: int | None
    rate: RateUsed | None
    reason: str | None = None

    @property
    def source(self) -> Level | None:
        """The history level the rate came from."""
        return None if self.rate is None else self.rate.source


@dataclass(frozen=True)
class StageNeed:
    """Opportunities that must reach ``stage``, from its rate to ``next_stage``."""

    stage: str
    next_stage: str
    needed: Figure


@dataclass(frozen=True)
class PlanToClose:
    """The reverse funnel of a gap (SPEC §5 plan to close).

    ``wins`` uses the average deal size as its rate; ``stages`` walk the open stages in
    pipeline order; ``new_opportunities`` is the need at the first stage; ``leads`` uses
    the lead conversion share; ``verified_visits`` uses verified visits per new opportunity.
    """

    gap: Decimal
    wins: Figure
    stages: tuple[StageNeed, ...]
    new_opportunities: Figure
    leads: Figure
    verified_visits: Figure


_Read = Callable[[History], Decimal]


def _pick_rate(
    levels: Sequence[History],
    numerator_of: _Read,
    denominator_of: _Read,
    *,
    min_closed_deals: int,
    own_evidence: bool = False,
) -> RateUsed | None:
    """The ratio from the first eligible level that has it, or None when none has.

    Member and unit histories are eligible from ``min_closed_deals`` closed deals on, the
    tenant's always; a level whose denominator is zero has no data for this ratio, and the
    next level is tried. With ``own_evidence`` (the lead and visit rates, whose
    denominator is not closed deals) a member or unit level also needs at least
    ``min_closed_deals`` in the rate's own denominator: a lead rate is never judged from
    one lead ("0 of 1"), it falls back to the unit, then the tenant.
    """
    for history in levels:
        if history.level != "tenant" and history.closed_deals < min_closed_deals:
            continue
        denominator = denominator_of(history)
        if own_evidence and history.level != "tenant" and denominator < min_closed_deals:
            continue
        if denominator > 0:
            numerator = numerator_of(history)
            return RateUsed(
                value=_ratio(numerator, denominator),
                numerator=numerator,
                denominator=denominator,
                source=history.level,
            )
    return None


def _divide_need(
    upstream: Figure,
    upstream_name: str,
    used: RateUsed | None,
    what: str,
) -> Figure:
    """``ceil(upstream / (numerator / denominator))``, or why it cannot be computed."""
    if upstream.value == 0:
        # Nothing needed downstream: nothing is needed here either, whatever the rate.
        return Figure(value=0, rate=used)
    if upstream.value is None:
        return Figure(value=None, rate=used, reason=f"needs {upstream_name}, which has no data")
    if used is None:
        return Figure(value=None, rate=None, reason=f"no history has data for {what}")
    if used.numerator == 0:
        return Figure(
            value=None,
            rate=used,
            reason=(
                f"{what} is zero in the {used.source}'s history "
                f"(0 of {used.denominator}), so no number of them would be enough"
            ),
        )
    value = _ceil_div(upstream.value * used.denominator, used.numerator)
    return Figure(value=value, rate=used)


def _check_levels(levels: Sequence[History], stage_order: Sequence[str]) -> None:
    positions = [LEVEL_ORDER.index(history.level) for history in levels]
    if positions != sorted(set(positions)):
        raise ValueError("history levels must be distinct and ordered member, unit, tenant")
    for history in levels:
        counts = history.reached_counts
        if not isinstance(counts, DeferredCounts) or counts.read:
            _reached_by_stage(stage_order, counts)


def plan_to_close(
    gap: Decimal,
    history_levels: Sequence[History],
    *,
    stage_order: Sequence[str],
    min_closed_deals: int = MIN_CLOSED_DEALS,
) -> PlanToClose:
    """Reverse funnel: what it takes to close a gap G (SPEC §5 plan to close).

    From the trailing twelve months' ``history_levels`` (the member's, their unit's, the
    tenant's, in that order; any may be left out) and the pipeline's open stages in
    ``stage_order``:

    * ``wins = ceil(G / average deal size)``, the size being the mean amount of wins;
    * walking the stages backwards, ``needed(s) = ceil(needed(next) / rate(s → next))``,
      from the deals closed (won or lost) in the window, the last stage's next being the
      win; new opportunities needed = needed at the first stage;
    * ``leads = ceil(new opportunities / (leads converted / leads created))``;
    * ``verified visits = ceil(new opportunities × verified visits / new opportunities
      created)``.

    Each ratio comes from the member's history when it has at least ``min_closed_deals``
    closed deals, else the unit's (same rule), else the tenant's, skipping a level that
    has no data for that ratio (zero denominator); the lead and visit rates also need
    ``min_closed_deals`` leads created (new opportunities) at a member or unit level; the
    figure records which. A figure
    without data, or behind a zero rate, has value None and a reason instead of a
    division by zero; a zero gap needs zero of everything.
    """
    if gap < 0:
        raise ValueError(f"gap must not be negative, got {gap}")
    if not stage_order:
        raise ValueError("stage_order must list at least one open stage")
    _check_levels(history_levels, stage_order)

    def pick(
        numerator_of: _Read, denominator_of: _Read, *, own_evidence: bool = False
    ) -> RateUsed | None:
        return _pick_rate(
            history_levels,
            numerator_of,
            denominator_of,
            min_closed_deals=min_closed_deals,
            own_evidence=own_evidence,
        )

    def reached(stage: str) -> _Read:
        return lambda history: Decimal(history.reached_counts.get(stage, 0))

    def won_deals(history: History) -> Decimal:
        return Decimal(history.won_deals)

    deal_size = pick(lambda history: history.won_amount, won_deals)
    wins: Figure
    if gap == 0:
        wins = Figure(value=0, rate=deal_size)
    elif deal_size is None:
        wins = Figure(value=None, rate=None, reason="no history has won deals")
    elif deal_size.numerator == 0:
        wins = Figure(
            value=None,
            rate=deal_size,
            reason=f"the average deal size is zero in the {deal_size.source}'s history",
        )
    else:
        # gap / (amount / count) = gap × count / amount, exactly.
        wins = Figure(
            value=_ceil_div(gap * deal_size.denominator, deal_size.numerator),
            rate=deal_size,
        )

    needs: list[StageNeed] = []
    upstream, upstream_name = wins, "wins"
    last = len(stage_order) - 1
    for index in range(last, -1, -1):
        stage = stage_order[index]
        numerator_of: _Read
        if index == last:
            next_stage, numerator_of = WON, won_deals
        else:
            next_stage = stage_order[index + 1]
            numerator_of = reached(next_stage)
        what = f"conversion from {stage} to {next_stage}"
        used = pick(numerator_of, reached(stage))
        needed = _divide_need(upstream, upstream_name, used, what)
        needs.append(StageNeed(stage=stage, next_stage=next_stage, needed=needed))
        upstream, upstream_name = needed, f"opportunities reaching {stage}"
    needs.reverse()
    new_opportunities = needs[0].needed

    lead_conversion = pick(
        lambda history: Decimal(history.leads_converted),
        lambda history: Decimal(history.leads_created),
        own_evidence=True,
    )
    leads = _divide_need(new_opportunities, "new opportunities", lead_conversion, "lead conversion")

    visits_per_opportunity = pick(
        lambda history: Decimal(history.verified_visits),
        lambda history: Decimal(history.new_opportunities),
        own_evidence=True,
    )
    verified_visits: Figure
    if new_opportunities.value == 0:
        verified_visits = Figure(value=0, rate=visits_per_opportunity)
    elif new_opportunities.value is None:
        verified_visits = Figure(
            value=None,
            rate=visits_per_opportunity,
            reason="needs new opportunities, which has no data",
        )
    elif visits_per_opportunity is None:
        verified_visits = Figure(
            value=None, rate=None, reason="no history has new opportunities created"
        )
    else:
        verified_visits = Figure(
            value=_ceil_div(
                new_opportunities.value * visits_per_opportunity.numerator,
                visits_per_opportunity.denominator,
            ),
            rate=visits_per_opportunity,
        )

    return PlanToClose(
        gap=gap,
        wins=wins,
        stages=tuple(needs),
        new_opportunities=new_opportunities,
        leads=leads,
        verified_visits=verified_visits,
    )


def per_week(figure: int | Decimal | None, remaining_weeks: int | Decimal) -> int | None:
    """``ceil(figure / remaining weeks)``: a plan-to-close figure spread over weeks (SPEC §5).

    None when the figure has no data or no week remains. ``remaining_weeks`` may be a
    fraction (remaining days / 7); callers that prefer whole weeks pass a whole number.
    """
    if remaining_weeks < 0:
        raise ValueError(f"remaining_weeks must not be negative, got {remaining_weeks}")
    if figure is None or remaining_weeks == 0:
        return None
    if figure < 0:
        raise ValueError(f"figure must not be negative, got {figure}")
    return _ceil_div(figure, remaining_weeks)
