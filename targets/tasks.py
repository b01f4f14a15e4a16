"""Targets jobs: thin tasks that take a tenant id and call a service."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone

from config.celery import app
from targets.achievement import plan_achievements
from targets.achievement_math import shown_amount, shown_rate
from targets.calendar import fiscal_year_of
from targets.models import AchievementSnapshot, PlanStatus, Target, TargetPlan
from tenancy.dates import tenant_today
from tenancy.jobs import TenantTask
from tenancy.models import Tenant

CHUNK = 5000


def _money(value: Decimal | None, currency: str | None) -> Decimal | None:
    """Stored as shown (SPEC preamble): half-up to the minor unit (counts: 2 places)."""
    return shown_amount(value, currency)


def snapshot_achievements(*, tenant_id: int, as_of: date | None = None) -> dict[str, int]:
    """Store every current target node's achievement as of ``as_of`` (default: today in
    the tenant's time zone) for published and locked plans: one aggregate per plan, one
    bulk upsert per chunk; running it twice rewrites the same rows (SPEC section 7)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    day = as_of or tenant_today(tenant)
    fiscal_year = fiscal_year_of(day, tenant.fiscal_year_start_month)
    written = 0
    plans = TargetPlan.objects.filter(
        fiscal_year=fiscal_year, status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED]
    )
    for plan in plans:
        nodes = list(Target.objects.filter(plan=plan, period_start__lte=day, period_end__gte=day))
        results = plan_achievements(plan, day, nodes)
        rows = [
            AchievementSnapshot(
                tenant_id=tenant_id,
                series_id=node.series_id,
                period_code=node.period_code,
                as_of=day,
                actual=_money(results[node.pk].actual, results[node.pk].currency) or Decimal(0),
                attainment=shown_rate(results[node.pk].attainment),
                expected_to_date=_money(
                    results[node.pk].expected_to_date, results[node.pk].currency
                ),
                pace=shown_rate(results[node.pk].pace),
                status=results[node.pk].status or "",
                gap=_money(results[node.pk].gap, results[node.pk].currency),
                required_per_day=_money(
                    results[node.pk].required_per_day, results[node.pk].currency
                ),
                projected=_money(results[node.pk].projected, results[node.pk].currency),
                projected_commit=_money(
                    results[node.pk].projected_commit, results[node.pk].currency
                ),
                computed_at=timezone.now(),
            )
            for node in nodes
        ]
        for start in range(0, len(rows), CHUNK):
            AchievementSnapshot.objects.bulk_create(
                rows[start : start + CHUNK],
                update_conflicts=True,
                unique_fields=["tenant", "series", "period_code", "as_of"],
                update_fields=[
                    "actual",
                    "attainment",
                    "expected_to_date",
                    "pace",
                    "status",
                    "gap",
                    "required_per_day",
                    "projected",
                    "projected_commit",
                    "computed_at",
                ],
            )
        written += len(rows)
    return {"plans": plans.count(), "snapshots": written}


@app.task(base=TenantTask, name="targets.snapshot_achievements")
def snapshot_tenant_achievements(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    return snapshot_achievements(
        tenant_id=tenant_id, as_of=date.fromisoformat(as_of) if as_of else None
    )
