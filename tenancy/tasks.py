"""Tenancy tasks. Thin: take ids, run in the tenant's scope, call a service or selector."""

from __future__ import annotations

from typing import Any

from django.db import connection

from config.celery import app
from tenancy.jobs import TenantTask
from tenancy.models import Membership, OrgUnit


@app.task(base=TenantTask, name="tenancy.tenant_census")
def tenant_census(tenant_id: int) -> dict[str, Any]:
    """Count the tenant's members and units: a cheap probe that the job pipeline works.

    It counts twice, through the ORM and through raw SQL with no tenant filter, so
    that a run proves row-level security hides every other tenant's rows.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT tenant_id) FROM crm_membership")
        raw_members, raw_tenants = cursor.fetchone()
    return {
        "members": Membership.objects.count(),
        "org_units": OrgUnit.objects.count(),
        "raw_members_visible": raw_members,
        "raw_tenants_visible": raw_tenants,
    }


@app.task(name="tenancy.dispatch_nightly")
def dispatch_nightly() -> dict[str, Any]:
    """Every few minutes on beat: make tonight's night of the tenants now past 02:00
    local time and send the steps of every unfinished night (``tenancy.nightly``)."""
    from tenancy import nightly

    return nightly.dispatch()


@app.task(name="tenancy.job_watchdog")
def job_watchdog() -> dict[str, Any]:
    """Every few minutes on beat: mark lost the running job runs whose worker is gone
    (older than their hard time limit plus a margin); the dispatcher runs them again."""
    from tenancy import nightly

    return {"lost": nightly.mark_lost_runs()}
