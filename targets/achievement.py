"""Achievement of target nodes as of a date (SPEC section 4), for one node or a whole
plan in a fixed number of queries: the nodes' series (their months, for pacing), the
metric and (amount metrics) the open pipeline, each aggregated and rolled up to every
member and unit in one SQL statement for just the periods and product lines asked for.
The arithmetic is ``targets.achievement_math``."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from targets import achievement_math, calendar
from targets.achievement_math import Achievement, Projection
from targets.metrics import get_metric
from targets.models import PERIOD_MONTHS, Target, TargetPlan, TargetSeries
from targets.selectors import (
    Credited,
    monthly_actuals_sql,
    open_pipeline_sql,
    period_totals,
    planned_payments_sql,
)
from tenancy.models import Tenant

_ZERO = Decimal(0)
_NOTHING = (_ZERO, _ZERO)
FEW_NODES = 500  # up to this many nodes, read only their own series and credited rows


class Node(NamedTuple):
    """What the achievement of a target node reads of it: a ``Target`` without the model
    (the night reads tens of thousands with ``values_list(*Node._fields)``)."""

    pk: int
    series_id: int
    period_code: int
    member_id: int | None
    org_unit_id: int | None
    product_line_id: int | None
    value: Decimal | None

    @classmethod
    def of(cls, target: Target | Node) -> Node:
        if isinstance(target, Node):
            return target
        # The instance's fields straight from its __dict__: tens of thousands of nodes.
        fields = vars(target)
        return cls(
            fields["id"],
            fields["series_id"],
            fields["period_code"],
            fields["member_id"],
            fields["org_unit_id"],
            fields["product_line_id"],
            fields["value"],
        )


class Pacing:
    """The plan's months as of a date: each month's days and elapsed days, the same for
    every node. A node's ``expected_to_date`` is then a sum over its months: the fully
    elapsed ones whole, the current one prorated by days. That is the recursion of
    SPEC section 4 (year → quarters → months, each quarter and year being the sum of its
    months) unrolled, adding in the same order so that even the 28th digit agrees;
    ``tests/targets/test_achievement_math.py`` checks both give the same Decimal."""

    def __init__(self, fiscal_year: int, start_month: int, as_of: date) -> None:
        self.days = [
            (period.days, calendar.elapsed_days(period, as_of))
            for period in calendar.months(fiscal_year, start_month)
        ]
        self._period_days = {}
        for code, (first, last) in PERIOD_MONTHS.items():
            span = self.days[first - 1 : last]
            self._period_days[code] = (
                sum(total for total, _ in span),
                sum(elapsed for _, elapsed in span),
            )

    def period_days(self, code: int) -> tuple[int, int]:
        """The period's total and elapsed days."""
        return self._period_days[code]

    def expected(self, code: int, months: list[Decimal] | None) -> Decimal | None:
        if months is None:
            return None
        if code == 0:  # the year: its quarters, in the order (and rounding) of SPEC §4
            expected = _ZERO
            for quarter in range(1, 5):
                first, last = PERIOD_MONTHS[quarter]
                total, elapsed = self.period_days(quarter)
                if elapsed == 0:
                    break
                part = (
                    self._sum(months, first, last)
                    if elapsed == total
                    else self._months_expected(months, first, last)
                )
                if part is None:
                    return None
                expected += part
            return expected
        first, last = PERIOD_MONTHS[code]
        return self._months_expected(months, first, last)

    @staticmethod
    def _sum(months: list[Decimal], first: int, last: int) -> Decimal | None:
        values = months[first - 1 : last]
        return None if None in values else sum(values, _ZERO)

    def _months_expected(self, months: list[Decimal], first: int, last: int) -> Decimal | None:
        expected = _ZERO
        for index in range(first, last + 1):
            total, elapsed = self.days[index - 1]
            if elapsed == 0:
                break
            value = months[index - 1]
            if value is None:
                return None
            if elapsed == total:
                expected += value
            else:
                expected += achievement_math.expected_to_date_leaf(value, elapsed, total) or _ZERO
        return expected


def today_in(tenant: Tenant) -> date:
    """Today in the tenant's time zone (SPEC section 4: achievement is as of a local date)."""
    return calendar.local_date(timezone.now(), tenant.time_zone)


def plan_as_of(plan: TargetPlan, tenant: Tenant, day: date | None = None) -> date:
    """``day`` (default: today in the tenant's time zone) clamped into the plan's FY: a
    plan whose year is over shows its final figures, one not begun its first day."""
    year = calendar.fiscal_year(plan.fiscal_year, tenant.fiscal_year_start_month)
    day = day or today_in(tenant)
    return min(max(day, year.start), year.end)


def check_as_of(plan: TargetPlan, tenant: Tenant, as_of: date) -> None:
    year = calendar.fiscal_year(plan.fiscal_year, tenant.fiscal_year_start_month)
    if not year.contains(as_of):
        raise ValidationError(
            {
                "as_of": _("Choose a date inside FY%(fy)s (%(start)s to %(end)s).")
                % {"fy": plan.fiscal_year, "start": year.start, "end": year.end}
            }
        )


def _series_months(
    plan: TargetPlan, chosen: list[Node], asked: set[int | None]
) -> dict[int, list[Decimal] | None]:
    """The months of the chosen nodes' series, by series id."""
    rows = TargetSeries.objects.filter(plan=plan)
    if len(chosen) <= FEW_NODES:  # a few nodes: only their series
        rows = rows.filter(pk__in={node.series_id for node in chosen})
    elif None in asked:  # totals, plus any product lines asked for
        rows = rows.filter(Q(product_line__isnull=True) | Q(product_line__in=asked - {None}))
    else:
        rows = rows.filter(product_line__in=asked)
    return dict(rows.values_list("pk", "months"))


def plan_achievements(
    plan: TargetPlan, as_of: date, targets: Iterable[Target | Node] | None = None
) -> dict[int, Achievement]:
    """Achievement of every node of ``plan`` (or of ``targets``: ``Target`` instances or
    their ``Node`` rows) as of ``as_of``, by node id.

    Queries, whatever the number of nodes: the tenant, the nodes' series (their months,
    for pacing), the metric rolled up in SQL to every member and unit for the periods
    and product lines asked for and, for amount metrics, the open pipeline likewise.
    """
    tenant = Tenant.objects.get(pk=plan.tenant_id)
    check_as_of(plan, tenant, as_of)
    metric = get_metric(plan.metric)
    chosen = [
        Node.of(node) for node in (Target.objects.filter(plan=plan) if targets is None else targets)
    ]
    if not chosen:
        return {}
    asked = {node.product_line_id for node in chosen}  # None: the totals over all lines
    codes = {node.pk: node.period_code for node in chosen}
    periods = {code: PERIOD_MONTHS[code] for code in set(codes.values())}
    months = _series_months(plan, chosen, asked)
    pacing = Pacing(plan.fiscal_year, tenant.fiscal_year_start_month, as_of)
    days = {code: pacing.period_days(code) for code in periods}
    only = None
    if len(chosen) <= FEW_NODES:  # a rep's phone, one node: aggregate only their rows
        only = Credited(
            members=sorted({n.member_id for n in chosen if n.member_id is not None}),
            units=sorted({n.org_unit_id for n in chosen if n.org_unit_id is not None}),
        )
    actuals = period_totals(
        monthly_actuals_sql(tenant, plan.metric, plan.fiscal_year, as_of, only), periods, asked
    )
    # SPEC section 4 "projected": won amount from the open pipeline, collections from the
    # planned payments of won deals, other metrics by run rate (no query).
    pipeline = None
    if plan.metric == "won_amount":
        pipeline = period_totals(
            open_pipeline_sql(tenant, plan.fiscal_year, as_of, only), periods, asked
        )
    elif plan.metric == "collections":
        pipeline = period_totals(
            planned_payments_sql(tenant, plan.fiscal_year, as_of, only), periods, asked
        )
    currency = tenant.currency if metric.is_amount else None
    threshold = Decimal(tenant.pace_threshold)
    results: dict[int, Achievement] = {}
    for pk, series_id, code, member_id, unit_id, line, value in chosen:
        key: tuple[str, Any, int | None, int] = (
            ("member", member_id, line, code) if member_id else ("unit", unit_id, line, code)
        )
        actual = actuals.get(key, _NOTHING)[0]
        total, elapsed = days[code]
        projection: Projection | None
        if plan.metric == "won_amount":
            # Σ amount × probability and Σ commit amounts of the open deals, summed in SQL.
            weighted, commit = (pipeline or {}).get(key, _NOTHING)
            projection = Projection(projected=actual + weighted, commit=actual + commit)
        elif plan.metric == "collections":
            due = (pipeline or {}).get(key, _NOTHING)[0]
            projection = achievement_math.projected_collections(actual, [due])
        else:
            rate = achievement_math.run_rate(actual, elapsed, total)
            projection = None if rate is None else Projection(projected=rate)
        series_months = months.get(series_id)
        results[pk] = achievement_math.achievement_of(
            target=value,
            actual=actual,
            expected=None if value is None else pacing.expected(code, series_months),
            remaining_days=total - elapsed,
            projection=projection,
            threshold=threshold,
            currency=currency,
        )
    return results


def achievement_json(achievement: Achievement) -> dict[str, object]:
    """The node's figures as shown (SPEC preamble): money half-up to the currency's minor
    unit, rates and paces half-up to 4 places; the status was judged on the exact pace."""
    currency = achievement.currency

    def amount(value: Decimal | None) -> str | None:
        shown = achievement_math.shown_amount(value, currency)
        return None if shown is None else str(shown)

    def rate(value: Decimal | None) -> str | None:
        shown = achievement_math.shown_rate(value)
        return None if shown is None else str(shown)

    return {
        "target": None if achievement.target is None else str(achievement.target),
        "actual": amount(achievement.actual),
        "attainment": rate(achievement.attainment),
        "expected_to_date": amount(achievement.expected_to_date),
        "pace": rate(achievement.pace),
        "status": achievement.status,
        "gap": amount(achievement.gap),
        "remaining_days": achievement.remaining_days,
        "required_per_day": amount(achievement.required_per_day),
        "projected": amount(achievement.projected),
        "projected_commit": amount(achievement.projected_commit),
    }
