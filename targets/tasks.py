"""Targets jobs: thin tasks that take a tenant id and call a service."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from config.celery import app
from targets.achievement import Node, plan_achievements
from targets.achievement_math import shown_amount, shown_rate
from targets.calendar import fiscal_year_of
from targets.models import PlanStatus, Target, TargetPlan
from tenancy.dates import tenant_today
from tenancy.jobs import TenantTask
from tenancy.models import Tenant

CHUNK = 5000

# One upsert per chunk of nodes, its columns sent as array literals (``_array``): a
# ``str()`` per value instead of a model instance and a field's preparation per value.
# What the ORM's ``bulk_create(update_conflicts=True)`` sent, set-based the same way.
_UPSERT = """
    INSERT INTO targets_achievementsnapshot
        (tenant_id, series_id, period_code, as_of, actual, attainment, expected_to_date, pace,
         status, gap, required_per_day, projected, projected_commit, computed_at)
    SELECT %(tenant)s, r.series_id, r.period_code, %(as_of)s, r.actual, r.attainment,
           r.expected_to_date, r.pace, r.status, r.gap, r.required_per_day, r.projected,
           r.projected_commit, %(now)s
    FROM unnest(%(series)s::bigint[], %(codes)s::smallint[], %(actual)s::numeric[],
                %(attainment)s::numeric[], %(expected_to_date)s::numeric[], %(pace)s::numeric[],
                %(status)s::text[], %(gap)s::numeric[], %(required_per_day)s::numeric[],
                %(projected)s::numeric[], %(projected_commit)s::numeric[])
         AS r(series_id, period_code, actual, attainment, expected_to_date, pace, status, gap,
              required_per_day, projected, projected_commit)
    ON CONFLICT (tenant_id, series_id, period_code, as_of) DO UPDATE SET
        actual = EXCLUDED.actual, attainment = EXCLUDED.attainment,
        expected_to_date = EXCLUDED.expected_to_date, pace = EXCLUDED.pace,
        status = EXCLUDED.status, gap = EXCLUDED.gap,
        required_per_day = EXCLUDED.required_per_day, projected = EXCLUDED.projected,
        projected_commit = EXCLUDED.projected_commit, computed_at = EXCLUDED.computed_at
"""
_COLUMNS = (
    "series",
    "codes",
    "actual",
    "attainment",
    "expected_to_date",
    "pace",
    "status",
    "gap",
    "required_per_day",
    "projected",
    "projected_commit",
)


def _array(values: list[Any]) -> str:
    """A PostgreSQL array literal of numbers (``{1.50,NULL,-2}``) or of the statuses (plain
    words or empty, quoted)."""
    return (
        "{"
        + ",".join(
            "NULL" if v is None else f'"{v}"' if isinstance(v, str) else str(v) for v in values
        )
        + "}"
    )


def _money(value: Decimal | None, currency: str | None) -> Decimal | None:
    """Stored as shown (SPEC preamble): half-up to the minor unit (counts: 2 places)."""
    return shown_amount(value, currency)


def snapshot_achievements(*, tenant_id: int, as_of: date | None = None) -> dict[str, int]:
    """Store every current target node's achievement as of ``as_of`` (default: today in
    the tenant's time zone) for published and locked plans: one aggregate per plan, one
    bulk upsert per chunk; running it twice rewrites the same rows (SPEC section 7).

    The nodes are read as plain rows (``Node``) and the upsert sends the figures as
    rounded for storage (``shown_amount``, ``shown_rate``), as arrays."""
    tenant = Tenant.objects.get(pk=tenant_id)
    day = as_of or tenant_today(tenant)
    fiscal_year = fiscal_year_of(day, tenant.fiscal_year_start_month)
    written = 0
    plans = list(
        TargetPlan.objects.filter(
            fiscal_year=fiscal_year, status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED]
        )
    )
    now = timezone.now()
    for plan in plans:
        nodes = [
            Node._make(row)
            for row in Target.objects.filter(
                plan=plan, period_start__lte=day, period_end__gte=day
            ).values_list(*Node._fields)
        ]
        results = plan_achievements(plan, day, nodes)
        columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
        for node in nodes:
            result = results[node.pk]
            currency = result.currency
            columns["series"].append(node.series_id)
            columns["codes"].append(node.period_code)
            columns["actual"].append(_money(result.actual, currency) or Decimal(0))
            columns["attainment"].append(shown_rate(result.attainment))
            columns["expected_to_date"].append(_money(result.expected_to_date, currency))
            columns["pace"].append(shown_rate(result.pace))
            columns["status"].append(result.status or "")
            columns["gap"].append(_money(result.gap, currency))
            columns["required_per_day"].append(_money(result.required_per_day, currency))
            columns["projected"].append(_money(result.projected, currency))
            columns["projected_commit"].append(_money(result.projected_commit, currency))
        with connection.cursor() as cursor:
            for start in range(0, len(nodes), CHUNK):
                params: dict[str, Any] = {"tenant": tenant_id, "as_of": day, "now": now}
                for name, values in columns.items():
                    params[name] = _array(values[start : start + CHUNK])
                cursor.execute(_UPSERT, params)
        written += len(nodes)
    return {"plans": len(plans), "snapshots": written}


@app.task(base=TenantTask, name="targets.snapshot_achievements")
def snapshot_tenant_achievements(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    return snapshot_achievements(
        tenant_id=tenant_id, as_of=date.fromisoformat(as_of) if as_of else None
    )
