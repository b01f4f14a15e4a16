"""Achievement of target nodes as of a date (SPEC section 4), for one node or a whole
plan in a fixed number of queries: the plan's nodes, the units' paths, one aggregate of
the metric and (amount metrics) one aggregate of the open pipeline. The arithmetic is
``targets.achievement_math``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from crm.models import Tenant
from targets import achievement_math, calendar
from targets.achievement_math import Achievement, OpenDeal, PeriodTarget
from targets.metrics import get_metric
from targets.models import PeriodKind, Target, TargetPlan
from targets.selectors import CreditIndex, monthly_actuals, open_pipeline, unit_paths

_ZERO = Decimal(0)
FamilyKey = tuple[int | None, int | None, int | None]  # org unit, member, product line


def _family(target: Target) -> FamilyKey:
    return (target.org_unit_id, target.member_id, target.product_line_id)


def _months(kind: str, index: int) -> list[int]:
    if kind == PeriodKind.YEAR:
        return list(range(1, 13))
    if kind == PeriodKind.QUARTER:
        first = (index - 1) * 3 + 1
        return [first, first + 1, first + 2]
    return [index]


Slot = tuple[str, int]  # (period kind, period index)
CHILDREN: dict[str, list[Slot]] = {
    PeriodKind.YEAR: [(PeriodKind.QUARTER, q) for q in range(1, 5)],
    **{
        f"Q{q}": [(PeriodKind.MONTH, m) for m in _months(PeriodKind.QUARTER, q)]
        for q in range(1, 5)
    },
}
NEEDS: dict[str, set[str]] = {
    PeriodKind.YEAR: {PeriodKind.QUARTER, PeriodKind.MONTH},
    PeriodKind.QUARTER: {PeriodKind.MONTH},
    PeriodKind.MONTH: set(),
}


class _Calendar:
    """Day counts of the plan's periods as of a date: the same for every node."""

    def __init__(self, plan: TargetPlan, start_month: int, as_of: date) -> None:
        periods = {(str(PeriodKind.YEAR), 0): calendar.fiscal_year(plan.fiscal_year, start_month)}
        for index, period in enumerate(calendar.quarters(plan.fiscal_year, start_month), 1):
            periods[(str(PeriodKind.QUARTER), index)] = period
        for index, period in enumerate(calendar.months(plan.fiscal_year, start_month), 1):
            periods[(str(PeriodKind.MONTH), index)] = period
        self.days = {slot: (p.days, calendar.elapsed_days(p, as_of)) for slot, p in periods.items()}
        # Check the calendar's day counts once, on a fully decomposed year; every node's
        # tree then has the same days and is built without repeating the checks.
        self.tree((str(PeriodKind.YEAR), 0), dict.fromkeys(self.days, _ZERO), build=PeriodTarget)

    def tree(
        self,
        slot: Slot,
        values: dict[Slot, Decimal | None],
        build: Callable[..., PeriodTarget] = PeriodTarget.unchecked,
    ) -> PeriodTarget:
        """The node's period with its decomposed sub-periods (when all of them exist)."""
        kind, index = slot
        kids = CHILDREN.get(kind if kind == PeriodKind.YEAR else f"Q{index}", [])
        children: tuple[PeriodTarget, ...] = ()
        if kind != PeriodKind.MONTH and kids and all(kid in values for kid in kids):
            children = tuple(self.tree(kid, values, build) for kid in kids)
        total, elapsed = self.days[slot]
        return build(values.get(slot), total, elapsed, children)


def check_as_of(plan: TargetPlan, tenant: Tenant, as_of: date) -> None:
    year = calendar.fiscal_year(plan.fiscal_year, tenant.fiscal_year_start_month)
    if not year.contains(as_of):
        raise ValidationError(
            {
                "as_of": _("Choose a date inside FY%(fy)s (%(start)s to %(end)s).")
                % {"fy": plan.fiscal_year, "start": year.start, "end": year.end}
            }
        )


def plan_achievements(
    plan: TargetPlan, as_of: date, targets: Iterable[Target] | None = None
) -> dict[int, Achievement]:
    """Achievement of every node of ``plan`` (or of ``targets``) as of ``as_of``.

    Queries: the tenant, the sub-period values the chosen nodes need (plain tuples, not
    model instances), the unit paths, one aggregate of the metric and, for amount
    metrics, one of the open pipeline — whatever the number of nodes.
    """
    tenant = Tenant.objects.get(pk=plan.tenant_id)
    check_as_of(plan, tenant, as_of)
    metric = get_metric(plan.metric)
    chosen = list(Target.objects.filter(plan=plan) if targets is None else targets)
    needed_kinds = (
        set().union(*(NEEDS[str(node.period_kind)] for node in chosen)) if chosen else set()
    )
    asked = {node.product_line_id for node in chosen}  # None: the totals over all lines
    values: dict[FamilyKey, dict[Slot, Decimal | None]] = defaultdict(dict)
    for node in chosen:
        values[_family(node)][(str(node.period_kind), node.period_index)] = node.value
    if needed_kinds:
        rows = Target.objects.filter(plan=plan, period_kind__in=needed_kinds)
        if None in asked:  # totals, plus any product lines asked for
            rows = rows.filter(Q(product_line__isnull=True) | Q(product_line__in=asked - {None}))
        else:
            rows = rows.filter(product_line__in=asked)
        if len(chosen) <= 500:  # a few nodes: only their families
            rows = rows.filter(
                Q(member_id__in={n.member_id for n in chosen if n.member_id})
                | Q(org_unit_id__in={n.org_unit_id for n in chosen if n.org_unit_id})
            )
        wanted = set(values)
        for unit, person, line, kind, index, value in rows.values_list(
            "org_unit_id", "member_id", "product_line_id", "period_kind", "period_index", "value"
        ):
            family = (unit, person, line)
            if family in wanted:
                values[family][(kind, index)] = value
    days = _Calendar(plan, tenant.fiscal_year_start_month, as_of)
    paths = unit_paths()
    actuals = CreditIndex.build(
        monthly_actuals(tenant, plan.metric, plan.fiscal_year, as_of), paths, asked
    )
    pipeline = (
        CreditIndex.build(open_pipeline(tenant, plan.fiscal_year, as_of), paths, asked)
        if metric.is_amount
        else None
    )
    threshold = Decimal(tenant.pace_threshold)
    results: dict[int, Achievement] = {}
    for node in chosen:
        key = ("member", node.member_id) if node.member_id else ("unit", node.org_unit_id)
        months = _months(str(node.period_kind), node.period_index)
        actual = actuals.total(key, months, node.product_line_id)  # type: ignore[arg-type]
        deals = None
        if pipeline is not None:
            weighted = pipeline.total(key, months, node.product_line_id)  # type: ignore[arg-type]
            commit = pipeline.total(key, months, node.product_line_id, commit=True)  # type: ignore[arg-type]
            deals = [
                OpenDeal(commit, Decimal(100), achievement_math.COMMIT),
                OpenDeal(weighted - commit, Decimal(100), "pipeline"),
            ]
        results[node.pk] = achievement_math.compute_achievement(
            period=days.tree((str(node.period_kind), node.period_index), values[_family(node)]),
            actual=actual,
            open_deals=deals,
            threshold=threshold,
        )
    return results


def achievement_json(achievement: Achievement) -> dict[str, object]:
    def text(value: Decimal | None, places: str | None = "0.01") -> str | None:
        if value is None:
            return None
        return str(value.quantize(Decimal(places))) if places else str(value)

    return {
        "target": text(achievement.target, None),
        "actual": text(achievement.actual),
        "attainment": text(achievement.attainment, None),
        "expected_to_date": text(achievement.expected_to_date),
        "pace": text(achievement.pace, None),
        "status": achievement.status,
        "gap": text(achievement.gap),
        "remaining_days": achievement.remaining_days,
        "required_per_day": text(achievement.required_per_day),
        "projected": text(achievement.projected),
        "projected_commit_only": text(achievement.projected_commit_only),
    }
