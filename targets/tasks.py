"""Targets jobs: thin tasks that take a tenant id and call a service."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone

from config.celery import app
from targets.achievement import plan_achievements
from targets.calendar import fiscal_year_of
from targets.models import AchievementSnapshot, PlanStatus, Target, TargetPlan
from tenancy.dates import tenant_today
from tenancy.jobs import TenantTask
from tenancy.models import Tenant

CHUNK = 5000


def _money(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(Decimal("0.01"))


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
                target_id=node.pk,
                series_id=node.series_id,
                as_of=day,
                actual=_money(results[node.pk].actual) or Decimal(0),
                attainment=results[node.pk].attainment,
                expected_to_date=_money(results[node.pk].expected_to_date),
                pace=results[node.pk].pace,
                status=results[node.pk].status or "",
                gap=_money(results[node.pk].gap),
                required_per_day=_money(results[node.pk].required_per_day),
                projected=_money(results[node.pk].projected),
                projected_commit=_money(results[node.pk].projected_commit_only),
                computed_at=timezone.now(),
            )
            for node in nodes
        ]
        for start in range(0, len(rows), CHUNK):
            AchievementSnapshot.objects.bulk_create(
                rows[start : start + CHUNK],
                update_conflicts=True,
                unique_fields=["tenant", "target", "as_of"],
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
