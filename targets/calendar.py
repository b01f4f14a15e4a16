"""Fiscal calendar arithmetic (SPEC section 4, "Fiscal calendar").

Pure functions on plain ``date`` values and ``Decimal``: no ORM, no settings.

Vocabulary:

- A tenant's fiscal year starts on the first day of ``fiscal_year_start_month``
  (1-12) and is named by the calendar year it starts in: with an April start,
  FY2026 runs from 2026-04-01 to 2027-03-31.
- A :class:`Period` is a closed date range (``end`` is inclusive) of one kind:
  ``year``, ``quarter``, ``month`` (fiscal, always whole calendar months) or
  ``week`` (seven days; :func:`period_containing` gives ISO weeks, Monday to
  Sunday).
- Day counts follow SPEC section 4 "Achievement": elapsed days count the
  as-of day itself, remaining days are the days after it up to the period end.

Divisions that cannot be exact (a share of days, a week's prorated target) are
computed with :data:`DIVISION_CONTEXT` (28 significant digits, half-even),
independent of the caller's thread-local decimal context; nothing else is
rounded here. Callers round once, at the documented place (the currency's minor
unit when a value is shown or stored).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DIVISION_CONTEXT",
    "Period",
    "PeriodKind",
    "active_days",
    "active_share",
    "days_in_month",
    "elapsed_days",
    "fiscal_year",
    "fiscal_year_of",
    "local_date",
    "months",
    "months_of",
    "period_containing",
    "period_from_key",
    "quarters",
    "remaining_days",
    "sub_periods",
    "validate_start_month",
    "week_target",
]

PeriodKind = Literal["year", "quarter", "month", "week"]
PERIOD_KINDS: tuple[str, ...] = get_args(PeriodKind)

#: Context for the few divisions that may be inexact (28 significant digits, the
#: ``decimal`` default, but fixed here so a caller's context cannot change results).
DIVISION_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)

_ONE_DAY = timedelta(days=1)


def validate_start_month(start_month: int) -> int:
    """Return ``start_month`` if it is a valid fiscal year start month (1-12).

    Raises ``ValueError`` otherwise (``bool`` and non-integers included).
    """
    if isinstance(start_month, bool) or not isinstance(start_month, int):
        raise ValueError(
            f"fiscal_year_start_month must be an integer from 1 to 12, got {start_month!r}"
        )
    if not 1 <= start_month <= 12:
        raise ValueError(f"fiscal_year_start_month must be from 1 to 12, got {start_month}")
    return start_month


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    """Return the (year, month) ``count`` months after (year, month)."""
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def _month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def _month_end(year: int, month: int) -> date:
    next_year, next_month = _add_months(year, month, 1)
    return date(next_year, next_month, 1) - _ONE_DAY


def days_in_month(year: int, month: int) -> int:
    """Number of days of calendar month (year, month)."""
    return _month_end(year, month).day


@dataclass(frozen=True, slots=True)
class Period:
    """A closed date range ``start`` .. ``end`` (both inclusive) of one kind.

    Periods compare and hash by (kind, start, end), so they can key mappings
    of targets. A period does not remember the tenant's fiscal start month;
    :meth:`key` takes it to name the period.
    """

    kind: PeriodKind
    start: date
    end: date

    def __post_init__(self) -> None:
        if self.kind not in PERIOD_KINDS:
            raise ValueError(f"period kind must be one of {PERIOD_KINDS}, got {self.kind!r}")
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @property
    def days(self) -> int:
        """Number of days in the period, both ends included."""
        return (self.end - self.start).days + 1

    def contains(self, day: date) -> bool:
        """Whether ``day`` lies inside the period (ends included)."""
        return self.start <= day <= self.end

    def key(self, start_month: int) -> str:
        """A stable name for the period under a fiscal calendar.

        ``FY2026`` (year), ``FY2026-Q1`` (fiscal quarter 1..4), ``FY2026-M01``
        (fiscal month 1..12, so with an April start ``FY2026-M01`` is April
        2026) and ``2026-W15`` (ISO week of a Monday-to-Sunday week).
        :func:`period_from_key` is the inverse.
        """
        validate_start_month(start_month)
        if self.kind == "week":
            iso = self.start.isocalendar()
            if iso.weekday != 1 or self.days != 7:
                raise ValueError("only Monday-to-Sunday weeks have a key")
            return f"{iso.year}-W{iso.week:02d}"
        fy = fiscal_year_of(self.start, start_month)
        offset = _fiscal_month_offset(self.start, start_month)
        if self.kind == "year":
            if self != fiscal_year(fy, start_month):
                raise ValueError(f"{self} is not a fiscal year under start month {start_month}")
            return f"FY{fy}"
        if self.kind == "quarter":
            number = offset // 3 + 1
            if self != quarters(fy, start_month)[number - 1]:
                raise ValueError(f"{self} is not a fiscal quarter under start month {start_month}")
            return f"FY{fy}-Q{number}"
        if self != months(fy, start_month)[offset]:
            raise ValueError(f"{self} is not a calendar month")
        return f"FY{fy}-M{offset + 1:02d}"


_KEY_PATTERN = re.compile(
    r"^(?:FY(?P<fy>\d{4})(?:-Q(?P<quarter>[1-4])|-M(?P<month>0[1-9]|1[0-2]))?"
    r"|(?P<iso_year>\d{4})-W(?P<iso_week>\d{2}))$"
)


def period_from_key(key: str, start_month: int) -> Period:
    """Parse a key made by :meth:`Period.key` back into the period.

    Raises ``ValueError`` for a malformed key.
    """
    validate_start_month(start_month)
    match = _KEY_PATTERN.match(key)
    if match is None:
        raise ValueError(f"not a period key: {key!r}")
    if match["iso_year"] is not None:
        monday = date.fromisocalendar(int(match["iso_year"]), int(match["iso_week"]), 1)
        return Period("week", monday, monday + timedelta(days=6))
    fy = int(match["fy"])
    if match["quarter"] is not None:
        return quarters(fy, start_month)[int(match["quarter"]) - 1]
    if match["month"] is not None:
        return months(fy, start_month)[int(match["month"]) - 1]
    return fiscal_year(fy, start_month)


def _fiscal_month_offset(day: date, start_month: int) -> int:
    """0-based position of ``day``'s month in its fiscal year (0 = first month)."""
    return (day.month - start_month) % 12


def fiscal_year_of(day: date, start_month: int) -> int:
    """The fiscal year containing ``day``, named by the calendar year it starts in.

    With an April start, 2027-03-31 is in FY2026 and 2027-04-01 in FY2027.
    """
    validate_start_month(start_month)
    return day.year if day.month >= start_month else day.year - 1


def fiscal_year(fy: int, start_month: int) -> Period:
    """Fiscal year ``fy``: from the 1st of ``start_month`` in ``fy`` for twelve months."""
    validate_start_month(start_month)
    end_year, end_month = _add_months(fy, start_month, 11)
    return Period("year", _month_start(fy, start_month), _month_end(end_year, end_month))


def months(fy: int, start_month: int) -> list[Period]:
    """The twelve months of fiscal year ``fy``, in fiscal order (index 0 = fiscal month 1)."""
    validate_start_month(start_month)
    result = []
    for offset in range(12):
        year, month = _add_months(fy, start_month, offset)
        result.append(Period("month", _month_start(year, month), _month_end(year, month)))
    return result


def quarters(fy: int, start_month: int) -> list[Period]:
    """The four quarters of fiscal year ``fy`` (three fiscal months each), in order."""
    fiscal_months = months(fy, start_month)
    return [
        Period("quarter", fiscal_months[3 * q].start, fiscal_months[3 * q + 2].end)
        for q in range(4)
    ]


def months_of(period: Period) -> list[Period]:
    """The calendar months making up a year, quarter or month period, in order.

    A month gives itself. Raises ``ValueError`` for a week or for a period that
    does not start on a 1st and end on a month's last day.
    """
    if period.kind == "week":
        raise ValueError("a week is not made of whole months")
    if period.start.day != 1 or period.end != _month_end(period.end.year, period.end.month):
        raise ValueError(f"{period} does not cover whole months")
    result = []
    year, month = period.start.year, period.start.month
    while _month_start(year, month) <= period.end:
        result.append(Period("month", _month_start(year, month), _month_end(year, month)))
        year, month = _add_months(year, month, 1)
    return result


def sub_periods(period: Period, start_month: int) -> list[Period]:
    """The sub-periods a target of ``period`` is decomposed into (SPEC section 4).

    year -> its four fiscal quarters, quarter -> its three months, month and
    week -> ``[]`` (months and weeks have no sub-periods of their own).
    """
    validate_start_month(start_month)
    if period.kind == "year":
        fy = fiscal_year_of(period.start, start_month)
        if period != fiscal_year(fy, start_month):
            raise ValueError(f"{period} is not a fiscal year under start month {start_month}")
        return quarters(fy, start_month)
    if period.kind == "quarter":
        return months_of(period)
    return []


def period_containing(day: date, kind: PeriodKind, start_month: int) -> Period:
    """The fiscal year, quarter or month, or the ISO week (Monday-Sunday), containing ``day``."""
    validate_start_month(start_month)
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period("week", monday, monday + timedelta(days=6))
    fy = fiscal_year_of(day, start_month)
    if kind == "year":
        return fiscal_year(fy, start_month)
    offset = _fiscal_month_offset(day, start_month)
    if kind == "quarter":
        return quarters(fy, start_month)[offset // 3]
    if kind == "month":
        return months(fy, start_month)[offset]
    raise ValueError(f"period kind must be one of {PERIOD_KINDS}, got {kind!r}")


def elapsed_days(period: Period, as_of: date) -> int:
    """Days of ``period`` up to and including ``as_of`` (SPEC section 4 "Achievement").

    0 before the period starts, ``period.days`` on and after its last day.
    ``expected_to_date`` of a period without sub-periods is
    ``target * elapsed_days / period.days``.
    """
    return max(0, min(period.days, (as_of - period.start).days + 1))


def remaining_days(period: Period, as_of: date) -> int:
    """Days of ``period`` after ``as_of``: ``as_of + 1`` .. ``period.end``.

    0 on and after the last day (so ``required_per_day`` is none then);
    ``period.days`` on any day before the period starts.
    """
    return max(0, min(period.days, (period.end - as_of).days))


MonthTargets = Mapping[tuple[int, int], Decimal] | Mapping[Period, Decimal]


def week_target(week_start: date, month_targets: MonthTargets) -> Decimal:
    """The target of the seven days ``week_start`` .. ``week_start + 6``.

    SPEC section 4: a week's target is its months' targets prorated by days;
    each day of the week is worth ``month_target / days_in_that_month``::

        sum over the week's months m of  target(m) * days_of_week_in(m) / days_in(m)

    ``month_targets`` is keyed by calendar ``(year, month)`` or by month
    :class:`Period`. The week need not start on a Monday. The sum is formed as
    one fraction and divided once in :data:`DIVISION_CONTEXT`, so the result
    is exact when it can be (3,100 in a 31-day month gives exactly 700 a
    week) and otherwise carries 28 significant digits; round it for display
    only. Raises ``KeyError`` when a month the week touches has no target.
    """
    by_month: dict[tuple[int, int], Decimal] = {}
    for key, value in month_targets.items():
        if isinstance(key, Period):
            if key.kind != "month":
                raise ValueError(f"week_target needs month targets, got a {key.kind} key")
            by_month[(key.start.year, key.start.month)] = value
        else:
            by_month[key] = value
    week_end = week_start + timedelta(days=6)
    # Count the week's days in each calendar month it touches (at most two).
    day_counts: dict[tuple[int, int], int] = {}
    day = week_start
    while day <= week_end:
        day_counts[(day.year, day.month)] = day_counts.get((day.year, day.month), 0) + 1
        day += _ONE_DAY
    numerator = Decimal(0)
    denominator = 1
    for (year, month), count in day_counts.items():
        if (year, month) not in by_month:
            raise KeyError(f"no target for month {year}-{month:02d}")
        length = days_in_month(year, month)
        numerator = numerator * length + by_month[(year, month)] * count * denominator
        denominator *= length
    return DIVISION_CONTEXT.divide(numerator, Decimal(denominator))


def active_days(period: Period, start: date | None, end: date | None) -> int:
    """Days of ``period`` on which a member active from ``start`` to ``end`` is active.

    Both bounds are inclusive; ``None`` means unbounded on that side. Raises
    ``ValueError`` when ``end`` is before ``start``.
    """
    if start is not None and end is not None and end < start:
        raise ValueError(f"active range ends ({end}) before it starts ({start})")
    first = period.start if start is None else max(period.start, start)
    last = period.end if end is None else min(period.end, end)
    return max(0, (last - first).days + 1)


def active_share(period: Period, start: date | None, end: date | None) -> Decimal:
    """Share of ``period``'s days on which a member is active, from 0 to 1.

    SPEC section 4: a member joining or leaving mid-period gets a target
    prorated by active days, and in ramp-up the start month is prorated the
    same way. ``start``/``end`` are the member's first and last active days
    (inclusive, ``None`` = unbounded). The fraction ``active_days / days`` is
    exact when it terminates (16/32 -> 0.5) and otherwise has 28 significant
    digits (:data:`DIVISION_CONTEXT`).
    """
    return DIVISION_CONTEXT.divide(Decimal(active_days(period, start, end)), Decimal(period.days))


def local_date(instant: datetime, tz_name: str) -> date:
    """The tenant's local calendar date of an aware ``instant``.

    Rows store UTC (SPEC section 3); periods are computed in the tenant's time
    zone (SPEC section 4), so 2026-03-31 16:30 UTC is 2026-04-01 in
    ``Asia/Shanghai``. Raises ``ValueError`` for a naive datetime or an
    unknown time zone name.
    """
    if instant.tzinfo is None or instant.tzinfo.utcoffset(instant) is None:
        raise ValueError("local_date needs an aware datetime (with tzinfo), got a naive one")
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {tz_name!r}") from error
    return instant.astimezone(zone).date()


def history_window(day: date, start_month: int) -> list[Period]:
    """The last 12 *complete* calendar months before ``day`` (SPEC section 4
    ``seasonal`` and ``history``), ordered by fiscal month: element 0 is the window's
    month that falls on the fiscal year's first month. On 2026-12-02 with an April start:
    April 2026 … November 2026, then December 2025 … March 2026 (a plan made in December
    never takes December from its first two days)."""
    validate_start_month(start_month)
    window = [
        Period("month", _month_start(*ym), _month_end(*ym))
        for ym in (_add_months(day.year, day.month, -count) for count in range(12, 0, -1))
    ]
    return sorted(window, key=lambda period: _fiscal_month_offset(period.start, start_month))
