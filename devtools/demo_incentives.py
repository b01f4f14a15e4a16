"""The demo's incentives (SPEC section 6): point rules, the last month's points and a
commission plan for every seller, so the quick start's night has leaderboards and draft
statements to show. Idempotent: what exists stays."""

from __future__ import annotations

from datetime import date
from typing import Any

from incentives import commissions
from incentives.models import CommissionPlan, PointEvent, PointRule
from incentives.services import points_catch_up
from targets.calendar import fiscal_year, fiscal_year_of
from tenancy.dates import tenant_today
from tenancy.models import Membership, OrgUnit, Role, Tenant
from tenancy.scope import tenant_scope

# (event, points, daily cap or None): the work that wins deals, weighted by how close it
# is to the money; caps keep the busywork rules from dominating a board.
POINT_RULES: list[tuple[str, int, int | None]] = [
    (PointEvent.VISIT_VERIFIED, 5, 20),
    (PointEvent.LEAD_CREATED, 2, 10),
    (PointEvent.LEAD_CONVERTED, 10, None),
    (PointEvent.OPPORTUNITY_CREATED, 3, 15),
    (PointEvent.STAGE_ADVANCED, 5, None),
    (PointEvent.DEAL_WON, 30, None),
    (PointEvent.PAYMENT_RECEIVED, 10, None),
    (PointEvent.ACTIVITY_DONE, 1, 10),
]
# The bands of SPEC 6's worked case: 2 % up to 80 % attainment, 4 % to 100 %, 6 % to
# 120 %, 10 % beyond, paid marginally.
BANDS = [["0", "0.02"], ["0.8", "0.04"], ["1", "0.06"], ["1.2", "0.10"]]
PLAN_NAME = "销售提成 Sales commission"
POINT_DAYS = 30


def seed_demo_incentives(*, tenant: Tenant, stdout: Any = None, as_of: date | None = None) -> None:
    day = as_of or tenant_today(tenant)
    with tenant_scope(tenant):
        admin = Membership.objects.filter(role=Role.ADMIN).order_by("pk").first()
        root = OrgUnit.objects.filter(parent__isnull=True).order_by("pk").first()
        if admin is None or root is None:
            return
        new_rules = 0
        for event, points, cap in POINT_RULES:
            _rule, created = PointRule.objects.get_or_create(
                tenant=tenant, event=event, defaults={"points": points, "daily_cap": cap}
            )
            new_rules += created
        awarded = points_catch_up(tenant=tenant, as_of=day, days=POINT_DAYS)["awarded"]
        plan = CommissionPlan.objects.filter(name=PLAN_NAME).first()
        if plan is None:
            plan = commissions.plan_create(
                actor=admin, name=PLAN_NAME, attainment_metric="won_amount", bands=BANDS
            )
            commissions.assignment_add(
                actor=admin,
                plan=plan,
                org_unit=root,
                effective_from=fiscal_year(
                    fiscal_year_of(day, tenant.fiscal_year_start_month),
                    tenant.fiscal_year_start_month,
                ).start,
            )
    if stdout is not None:
        stdout.write(
            f"Incentives: {new_rules} point rules added, {awarded:,} points awarded for the "
            f"last {POINT_DAYS} days, commission plan '{PLAN_NAME}' for every seller."
        )
