"""Demo targets for ``manage.py seed_demo``: published FY plans for won amount and
collections, so that ``make run`` shows real attainment, pace and gaps."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from targets.calendar import fiscal_year, fiscal_year_of
from targets.models import TargetPlan
from targets.selectors import monthly_actuals
from targets.services import DecomposeSettings, plan_create, plan_decompose, plan_publish
from tenancy.dates import tenant_today
from tenancy.models import Membership, OrgUnit, Role, Tenant
from tenancy.scope import tenant_scope

# Potential per team (market size estimates), for the blend at the region level.
TEAM_POTENTIAL = {
    "上海一组 Shanghai Team 1": Decimal("1.3"),
    "杭州组 Hangzhou Team": Decimal("0.9"),
    "广州组 Guangzhou Team": Decimal("1.1"),
    "深圳组 Shenzhen Team": Decimal("1.2"),
}


def _total(tenant: Tenant, metric: str, fy: int) -> Decimal:
    """Last year's actual plus 20 %, rounded to 10,000 (a stretch, not a fantasy)."""
    last = fiscal_year(fy - 1, tenant.fiscal_year_start_month)
    actual = sum((b.value for b in monthly_actuals(tenant, metric, fy - 1, last.end)), Decimal(0))
    goal = max(actual * Decimal("1.2"), Decimal("1200000"))
    return (goal / 10000).quantize(Decimal(1), ROUND_HALF_UP) * 10000


def seed_demo_plans(*, tenant: Tenant, stdout: Any = None, **_: Any) -> None:
    with tenant_scope(tenant):
        admin = Membership.objects.filter(role=Role.ADMIN).order_by("pk").first()
        if admin is None:
            return
        fy = fiscal_year_of(tenant_today(tenant), tenant.fiscal_year_start_month)
        potential = {
            f"unit:{unit.pk}": TEAM_POTENTIAL[unit.name]
            for unit in OrgUnit.objects.filter(name__in=TEAM_POTENTIAL)
        }
        settings = DecomposeSettings(
            time_method="seasonal",
            org_method="equal",
            # Regions by last year's actuals, teams by a blend of history and potential,
            # reps equally; new hires ramp up (30 / 60 / 100 %).
            org_methods_by_depth={0: "history", 1: "blend"},
            potential=potential,
            alpha=Decimal("0.5"),
            ramp=True,
            preserve_total=True,
        )
        made = []
        for metric in ("won_amount", "collections"):
            if TargetPlan.objects.filter(fiscal_year=fy, metric=metric).exists():
                continue
            plan = plan_create(
                member=admin,
                fiscal_year=fy,
                metric=metric,
                annual_total=_total(tenant, metric, fy),
                name="Annual plan 年度目标",
            )
            plan_decompose(member=admin, plan=plan, settings=settings)
            plan_publish(member=admin, plan=plan)
            made.append(f"{metric} {plan.annual_total:,}")
    if stdout is not None:
        stdout.write(
            f"Targets FY{fy}: published {', '.join(made)}."
            if made
            else f"Targets FY{fy}: plans already there."
        )
