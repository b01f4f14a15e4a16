"""Demo targets for ``manage.py seed_demo``: published FY plans for won amount and
collections, so that ``make run`` shows real attainment, pace and gaps.

The plans agree with the demo's history (issue #13): the annual total is what the
company sold over the last 12 complete calendar months, plus 10 %, and the plan is
decomposed on the same day with the methods of SPEC section 4 (``seasonal`` time
weights, ``history`` and ``blend`` org weights, ramp-up), so months, regions and teams
follow what really happened and the year is neither met by September nor hopeless.
``tests/devtools/test_demo_plans.py`` seeds the demo at several dates and checks it.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from targets.calendar import fiscal_year_of, history_window
from targets.models import TargetPlan
from targets.selectors import window_actuals
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
GROWTH = Decimal("1.10")
"""The plan asks for the last twelve months plus 10 %: a stretch, not a fantasy."""


def _total(tenant: Tenant, metric: str, day: date) -> Decimal:
    """The last 12 complete months' actual × :data:`GROWTH`, rounded to 10,000."""
    window = history_window(day, tenant.fiscal_year_start_month)
    start = min(month.start for month in window)
    end = max(month.end for month in window)
    actual = sum((b.value for b in window_actuals(tenant, metric, start, end)), Decimal(0))
    goal = max(actual * GROWTH, Decimal("1200000"))
    return (goal / 10000).quantize(Decimal(1), ROUND_HALF_UP) * 10000


def seed_demo_plans(
    *, tenant: Tenant, stdout: Any = None, as_of: date | None = None, **_: Any
) -> None:
    """Publish the won-amount and collections plans of the fiscal year containing
    ``as_of`` (default: the tenant's today), made on that day; existing plans stay."""
    day = as_of or tenant_today(tenant)
    with tenant_scope(tenant):
        admin = Membership.objects.filter(role=Role.ADMIN).order_by("pk").first()
        if admin is None:
            return
        fy = fiscal_year_of(day, tenant.fiscal_year_start_month)
        potential = {
            f"unit:{unit.pk}": TEAM_POTENTIAL[unit.name]
            for unit in OrgUnit.objects.filter(name__in=TEAM_POTENTIAL)
        }
        settings = DecomposeSettings(
            time_method="seasonal",
            # Regions by the last twelve months' actuals, teams by a blend of history and
            # potential, reps by their own history (a newcomer: the mean of their team,
            # then ramp-up 30 / 60 / 100 %).
            org_method="history",
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
                annual_total=_total(tenant, metric, day),
                name="Annual plan 年度目标",
            )
            plan_decompose(member=admin, plan=plan, settings=settings, as_of=day)
            plan_publish(member=admin, plan=plan)
            made.append(f"{metric} {plan.annual_total:,}")
    if stdout is not None:
        stdout.write(
            f"Targets FY{fy}: published {', '.join(made)}."
            if made
            else f"Targets FY{fy}: plans already there."
        )
