"""Reads of incentives (SPEC section 6): members' targets, actuals and points per period,
and the leaderboards built on them.

Figures are set-based: one statement for the targets of every member asked for, one for
their actuals (the metric registry of ``targets.metrics``, the same SQL the targets'
achievement reads), one for their points; each answers the current and the previous
period at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from incentives import rules
from incentives.models import LeaderboardEntry, PointEntry
from targets import calendar
from targets.calendar import Period
from targets.metrics import METRICS, get_metric
from targets.models import PlanStatus, TargetSeries
from tenancy import selectors as tenancy_selectors
from tenancy.dates import tenant_today
from tenancy.errors import Forbidden, Invalid
from tenancy.models import Membership, OrgUnit, Role, Tenant

PERIOD_KINDS = ("week", "month", "quarter", "year")
BOARD_KINDS = ("points", "attainment", "metric")
_ATTAINMENT_CONTEXT = calendar.DIVISION_CONTEXT
_FEW = 200  # up to this many members, filter by their ids


# --- periods ---------------------------------------------------------------------------------


def period_of(tenant: Tenant, kind: str, day: date) -> Period:
    """The fiscal month, quarter or year, or the ISO week, containing ``day``."""
    if kind not in PERIOD_KINDS:
        raise Invalid({"period": _("Choose week, month, quarter or year.")})
    return calendar.period_containing(day, kind, tenant.fiscal_year_start_month)  # type: ignore[arg-type]


def previous_period(tenant: Tenant, period: Period) -> Period:
    return period_of(tenant, period.kind, period.start - timedelta(days=1))


def _month_shares(period: Period) -> list[tuple[date, Decimal]]:
    """Each calendar month the period touches (its first day) and the share of the
    month's days inside the period: whole months count 1, a week's months prorated."""
    shares = []
    day = period.start
    while day <= period.end:
        first = day.replace(day=1)
        length = calendar.days_in_month(first.year, first.month)
        last = min(period.end, first.replace(day=length))
        days = (last - day).days + 1
        share = Decimal(1) if days == length else _ATTAINMENT_CONTEXT.divide(days, length)
        shares.append((first, share))
        day = last + timedelta(days=1)
    return shares


# --- figures per member ----------------------------------------------------------------------


def member_targets(
    tenant: Tenant, metric: str, periods: Iterable[Period], member_ids: list[int]
) -> dict[tuple[int, Period], Decimal | None]:
    """T of each member and period: their node of the published (or locked) plan of the
    metric and the fiscal year (all product lines), a week prorated by days (SPEC
    section 4). A member without a node, or with a month not set, has None. One query."""
    periods = list(periods)
    start_month = tenant.fiscal_year_start_month
    wanted: dict[Period, list[tuple[int, int, Decimal]]] = {}
    years: set[int] = set()
    for period in periods:
        parts = []
        for first, share in _month_shares(period):
            fiscal_year = calendar.fiscal_year_of(first, start_month)
            index = (first.month - start_month) % 12
            parts.append((fiscal_year, index, share))
            years.add(fiscal_year)
        wanted[period] = parts
    series = TargetSeries.objects.filter(
        plan__metric=metric,
        plan__status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
        plan__fiscal_year__in=sorted(years),
        member__isnull=False,
        product_line__isnull=True,
    )
    if len(member_ids) <= _FEW:
        series = series.filter(member_id__in=member_ids)
    # (Many members: the plan's member series are read whole, one per member, rather than
    # sending thousands of ids; those not asked for are ignored below.)
    months: dict[tuple[int, int], Any] = {
        (member_id, fiscal_year): values
        for member_id, fiscal_year, values in series.values_list(
            "member_id", "plan__fiscal_year", "months"
        )
    }
    result: dict[tuple[int, Period], Decimal | None] = {}
    for member_id in member_ids:
        for period, parts in wanted.items():
            total: Decimal | None = Decimal(0)
            for fiscal_year, index, share in parts:
                values = months.get((member_id, fiscal_year))
                value = values[index] if values else None
                if value is None or total is None:
                    total = None
                    break
                total += value if share == 1 else _ATTAINMENT_CONTEXT.multiply(value, share)
            result[(member_id, period)] = total
    return result


def member_actuals(
    tenant: Tenant,
    metric: str,
    ranges: dict[str, tuple[date, date]],
    member_ids: list[int] | None,
    *,
    by_product_line: bool = False,
) -> dict[tuple[str, int, int | None], Decimal]:
    """The metric's actual per range name, member (and product line when asked), credited
    as SPEC section 4 says (``targets.metrics``). ``member_ids`` None: every member.
    One query, a ``FILTER`` per range."""
    definition = get_metric(metric)
    names = sorted(ranges)
    params: dict[str, Any] = {"tenant": tenant.pk, "tz": tenant.time_zone}
    sums = []
    for position, name in enumerate(names):
        first, last = ranges[name]
        params[f"first_{position}"], params[f"last_{position}"] = first, last
        window = f"r.day BETWEEN %(first_{position})s AND %(last_{position})s"
        sums.append(f"SUM(r.value) FILTER (WHERE {window})")
    params["start"] = min(first for first, _last in ranges.values())
    params["end"] = max(last for _first, last in ranges.values())
    line = "r.product_line_id" if by_product_line else "NULL::bigint"
    narrow = ""
    if member_ids is not None:
        narrow = "AND r.member_id = ANY(%(members)s::bigint[])"
        # One text literal: dumping a list of thousands of ids costs more than the query.
        params["members"] = "{" + ",".join(str(int(pk)) for pk in member_ids) + "}"
    statement = f"""
        SELECT r.member_id, {line}, {", ".join(sums)}
        FROM ({definition.sql}) r
        WHERE r.member_id IS NOT NULL AND r.day BETWEEN %(start)s AND %(end)s {narrow}
        GROUP BY 1, 2
    """
    result: dict[tuple[str, int, int | None], Decimal] = {}
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        for member_id, product_line_id, *values in cursor.fetchall():
            for name, value in zip(names, values, strict=True):
                if value is not None:
                    result[(name, member_id, product_line_id)] = Decimal(value)
    return result


def member_points(
    ranges: dict[str, tuple[date, date]], member_ids: list[int] | None
) -> dict[tuple[str, int], int]:
    """Points (awards, zeros and undos) per range name and member, from the ledger."""
    from django.db.models import Sum

    start = min(first for first, _last in ranges.values())
    end = max(last for _first, last in ranges.values())
    rows = PointEntry.objects.filter(day__range=(start, end))
    if member_ids is not None:
        rows = rows.filter(member_id__in=member_ids)
    aggregates = {
        f"r{position}": Sum("points", filter=Q(day__range=ranges[name]))
        for position, name in enumerate(sorted(ranges))
    }
    result: dict[tuple[str, int], int] = {}
    for row in rows.values("member_id").annotate(**aggregates):
        found: dict[str, Any] = dict(row)
        for position, name in enumerate(sorted(ranges)):
            value = found[f"r{position}"]
            if value is not None:
                result[(name, found["member_id"])] = int(value)
    return result


# --- leaderboards ----------------------------------------------------------------------------


@dataclass
class BoardRow:
    member_id: int
    name: str
    value: Decimal | None
    rank: int | None
    previous_rank: int | None
    actual: Decimal | None = None
    target: Decimal | None = None


@dataclass
class Board:
    """A leaderboard (SPEC section 6): the members of a unit's subtree for a period."""

    unit: OrgUnit
    by: str
    metric: str | None
    period: Period
    as_of: date
    rows: list[BoardRow] = field(default_factory=list)
    snapshot_at: datetime | None = None
    money_hidden: bool = False

    @property
    def key(self) -> str:
        return board_key(self.by, self.metric)


def board_key(by: str, metric: str | None) -> str:
    return by if by == "points" else f"{by}:{metric}"


@dataclass(frozen=True)
class _Member:
    pk: int
    name: str
    unit_path: str
    start_date: date


def board_members(unit: OrgUnit | None) -> list[_Member]:
    """Active sellers (reps and managers) of a unit's subtree (None: the whole tenant)."""
    rows = Membership.objects.filter(is_active=True, role__in=[Role.REP, Role.MANAGER])
    if unit is not None:
        rows = rows.filter(org_unit__path__startswith=unit.path)
    else:
        rows = rows.filter(org_unit__isnull=False)
    return [
        _Member(pk, (f"{first} {last}".strip() or username), path, start)
        for pk, first, last, username, path, start in rows.values_list(
            "pk",
            "user__first_name",
            "user__last_name",
            "user__username",
            "org_unit__path",
            "start_date",
        )
    ]


def _check_board(by: str, metric: str | None) -> None:
    if by not in BOARD_KINDS:
        raise Invalid({"by": _("Rank by points, attainment or metric.")})
    # A metric given with a points board is still checked: it decides whether money shows.
    if (by != "points" or metric is not None) and metric not in METRICS:
        raise Invalid(
            {"metric": _("Choose one of: %(metrics)s.") % {"metrics": ", ".join(METRICS)}}
        )


MemberValues = dict[int, tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]]


def board_values(
    tenant: Tenant,
    members: list[_Member],
    by: str,
    metric: str | None,
    period: Period,
    previous: Period,
    as_of: date,
) -> MemberValues:
    """Per member: (value, previous value, actual, target) of the board."""
    ids = [member.pk for member in members]
    ranges = {
        "now": (period.start, min(as_of, period.end)),
        "before": (previous.start, previous.end),
    }
    result: MemberValues = {}
    if by == "points":
        points = member_points(ranges, ids)
        for pk in ids:
            result[pk] = (
                Decimal(points.get(("now", pk), 0)),
                Decimal(points.get(("before", pk), 0)),
                None,
                None,
            )
        return result
    assert metric is not None
    actuals = member_actuals(tenant, metric, ranges, ids)
    if by == "metric":
        for pk in ids:
            now = actuals.get(("now", pk, None), Decimal(0))
            result[pk] = (now, actuals.get(("before", pk, None), Decimal(0)), now, None)
        return result
    targets = member_targets(tenant, metric, [period, previous], ids)
    for pk in ids:
        now = actuals.get(("now", pk, None), Decimal(0))
        before = actuals.get(("before", pk, None), Decimal(0))
        target, target_before = targets[(pk, period)], targets[(pk, previous)]
        result[pk] = (
            _attainment(now, target),
            _attainment(before, target_before),
            now,
            target,
        )
    return result


def _attainment(actual: Decimal, target: Decimal | None) -> Decimal | None:
    """A / T; None without a target (null or 0: not applicable)."""
    if not target:
        return None
    return _ATTAINMENT_CONTEXT.divide(actual, target)


def rank_board(members: list[_Member], values: MemberValues, previous: Period) -> list[BoardRow]:
    """Competition ranks of the current and the previous period (``rules``); a member who
    had not started by the end of the previous period was not on that board."""
    now = rules.competition_ranks((m.pk, m.name, values[m.pk][0]) for m in members)
    before = rules.competition_ranks(
        (m.pk, m.name, values[m.pk][1]) for m in members if m.start_date <= previous.end
    )
    previous_rank = {row.key: row.rank for row in before}
    names = {m.pk: m.name for m in members}
    return [
        BoardRow(
            member_id=row.key,
            name=names[row.key],
            value=row.value,
            rank=row.rank,
            previous_rank=previous_rank.get(row.key),
            actual=values[row.key][2],
            target=values[row.key][3],
        )
        for row in now
    ]


def may_see_money(viewer: Membership, tenant: Tenant) -> bool:
    """Managers and admins see others' money; reps only where the tenant allows it
    (``Tenant.leaderboard_money_visible``, SPEC section 6), else attainment and points."""
    return viewer.role in (Role.ADMIN, Role.MANAGER) or tenant.leaderboard_money_visible


def leaderboard(
    *,
    viewer: Membership,
    unit_id: int | None = None,
    period_kind: str = "month",
    as_of: date | None = None,
    by: str = "points",
    metric: str | None = None,
    snapshot: bool = False,
) -> Board:
    """The board of a unit's subtree (default: the viewer's own unit) for the period
    containing ``as_of`` (default: the tenant's today), live or from the night's snapshot.

    A unit the viewer cannot see is ``NotFound``; a rep ranking by a money metric is
    ``Forbidden``; others' money (actual and target of an amount metric) is hidden from
    reps.
    """
    _check_board(by, metric)
    tenant = Tenant.objects.get(pk=viewer.tenant_id)
    day = as_of or tenant_today(tenant)
    period = period_of(tenant, period_kind, day)
    if unit_id is None:
        if viewer.org_unit_id is None:
            raise Invalid({"unit": _("Choose a unit: you belong to none.")})
        unit_id = viewer.org_unit_id
    unit = tenancy_selectors.get_visible_org_unit(viewer, unit_id)
    amount = metric is not None and get_metric(metric).is_amount
    hide = amount and not may_see_money(viewer, tenant)
    if hide and by == "metric":
        raise Forbidden(_("Only managers and admins see boards of money; rank by attainment."))
    board = Board(unit=unit, by=by, metric=metric, period=period, as_of=day, money_hidden=hide)
    if snapshot:
        board.rows, board.snapshot_at = _snapshot_rows(unit, board.key, period)
    else:
        members = board_members(unit)
        previous = previous_period(tenant, period)
        values = board_values(tenant, members, by, metric, period, previous, day)
        board.rows = rank_board(members, values, previous)
    if hide:
        for row in board.rows:
            if row.member_id != viewer.pk:
                row.actual = row.target = None
    return board


def _snapshot_rows(
    unit: OrgUnit, key: str, period: Period
) -> tuple[list[BoardRow], datetime | None]:
    entries = list(
        LeaderboardEntry.objects.filter(
            unit=unit, board=key, period_kind=period.kind, period_start=period.start
        )
        .select_related("member__user")
        .order_by("position")
    )
    rows = [
        BoardRow(
            member_id=entry.member_id,
            name=entry.member.display_name,
            value=entry.value,
            rank=entry.rank,
            previous_rank=entry.previous_rank,
            actual=entry.actual,
            target=entry.target,
        )
        for entry in entries
    ]
    return rows, (entries[0].computed_at if entries else None)


def visible_point_entries(viewer: Membership) -> QuerySet[PointEntry]:
    """Points a member may see: their own; a manager their subtree's; an admin all."""
    return PointEntry.objects.filter(tenancy_selectors.owned_by_visible(viewer, "member"))
