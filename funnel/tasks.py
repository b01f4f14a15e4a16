"""Funnel jobs: thin tasks that take a tenant id and call a service."""

from __future__ import annotations

from datetime import date
from typing import Any

from config.celery import app
from funnel.warnings import evaluate_warnings
from tenancy.jobs import TenantTask


@app.task(base=TenantTask, name="funnel.evaluate_warnings")
def evaluate_tenant_warnings(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    """Open, update and resolve the tenant's alerts (idempotent; SPEC sections 5 and 7)."""
    return evaluate_warnings(
        tenant_id=tenant_id, as_of=date.fromisoformat(as_of) if as_of else None
    )
