"""Incentives' nightly steps (SPEC section 7): thin tenant tasks taking the tenant id and
the night's ``as_of`` date (ISO string). Their place in the night's chain, after the
warnings, is registered by the platform's nightly registry."""

from __future__ import annotations

from datetime import date
from typing import Any

from config.celery import app
from incentives import commissions, services
from tenancy.dates import tenant_today
from tenancy.jobs import TenantTask
from tenancy.models import Tenant


def _day(tenant: Tenant, as_of: str | None) -> date:
    return date.fromisoformat(as_of) if as_of else tenant_today(tenant)


@app.task(base=TenantTask, name="incentives.points_catch_up")
def points_catch_up(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    """Award what the day earned and no event awarded; undo what was undone."""
    tenant = Tenant.objects.get(pk=tenant_id)
    return services.points_catch_up(tenant=tenant, as_of=_day(tenant, as_of))


@app.task(base=TenantTask, name="incentives.refresh_leaderboards")
def refresh_leaderboards(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    """The night's snapshot of every unit's boards."""
    tenant = Tenant.objects.get(pk=tenant_id)
    return services.leaderboards_refresh(tenant=tenant, as_of=_day(tenant, as_of))


@app.task(base=TenantTask, name="incentives.compute_statements")
def compute_statements(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    """Clawbacks of approved and locked periods, then this period's draft statements."""
    tenant = Tenant.objects.get(pk=tenant_id)
    day = _day(tenant, as_of)
    clawbacks = commissions.statements_clawback(tenant=tenant, as_of=day)
    drafts = commissions.statements_compute(tenant=tenant, as_of=day)
    return {**clawbacks, **drafts}
