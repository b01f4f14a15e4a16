"""Achievement of target nodes as of a date (SPEC section 4), for one node or a whole
plan in a fixed number of queries: the plan's nodes, the units' paths, one aggregate of
the metric and (amount metrics) one aggregate of the open pipeline. The arithmetic is
``targets.achievement_math``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from crm.models import Tenant
from targets import achievement_math, calendar
from targets.achievement_math import Achievement, OpenDeal, PeriodTarget
from targets.metrics import get_metric
from targets.models import PeriodKind, Target, TargetPlan
from targets.selectors import CreditIndex, monthly_actuals, open_pipeline, unit_paths

FamilyKey = tuple[int | None, int | None, int | None]  # org unit, member, product line


def _family(target: Target) -> FamilyKey:
    return (target.org_unit_id, target.member_id, target.product_line_id)


def _months(target: Target) -> list[int]:
    if target.period_kind == PeriodKind.YEAR:
        return list(range(1, 13))
    if target.period_kind == PeriodKind.QUARTER:
        first = (target.period_index - 1) * 3 + 1
        return [first, first + 1, first + 2]
    return [target.period_index]


def _period(target: Target) -> calendar.Period:
    return calendar.Period(str(target.period_kind), target.period_start, target.period_end)  # type: ignore[arg-type]


def _period_target(
    target: Target, as_of: date, family: dict[tuple[str, int], Target]
) -> PeriodTarget:
    period = _period(target)
    children: tuple[PeriodTarget, ...] = ()
    if target.period_kind == PeriodKind.YEAR:
        kids = [family.get((PeriodKind.QUARTER, i)) for i in range(1, 5)]
    elif target.period_kind == PeriodKind.QUARTER:
        kids = [family.get((PeriodKind.MONTH, m)) for m in _months(target)]
    else:
        kids = []
    if kids and all(kid is not None for kid in kids):
        children = tuple(_period_target(kid, as_of, family) for kid in kids if kid is not None)
    return PeriodTarget(
        target=target.value,
        total_days=period.days,
        elapsed_days=calendar.elapsed_days(period, as_of),
        children=children,
    )


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
    """Achievement of every node of ``plan`` (or of ``targets``) as of ``as_of``."""
    tenant = Tenant.objects.get(pk=plan.tenant_id)
    check_as_of(plan, tenant, as_of)
    metric = get_metric(plan.metric)
    every = list(Target.objects.filter(plan=plan))
    families: dict[FamilyKey, dict[tuple[str, int], Target]] = defaultdict(dict)
    for node in every:
        families[_family(node)][(str(node.period_kind), node.period_index)] = node
    chosen = every if targets is None else list(targets)
    paths = unit_paths()
    actuals = CreditIndex.build(
        monthly_actuals(tenant, plan.metric, plan.fiscal_year, as_of), paths
    )
    pipeline = (
        CreditIndex.build(open_pipeline(tenant, plan.fiscal_year, as_of), paths)
        if metric.is_amount
        else None
    )
    threshold = Decimal(tenant.pace_threshold)
    results: dict[int, Achievement] = {}
    for node in chosen:
        key = ("member", node.member_id) if node.member_id else ("unit", node.org_unit_id)
        months = _months(node)
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
            period=_period_target(node, as_of, families[_family(node)]),
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
