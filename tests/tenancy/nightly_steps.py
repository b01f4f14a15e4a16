"""Nightly steps that tests register (``tests/tenancy/test_nightly.py``, ``test_worker.py``).

A real worker loads this module with ``-I tests.tenancy.nightly_steps``; the test process
registers the steps it needs in the night (``registered_step``) and removes them after.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import OperationalError, connection

from config.celery import app
from tenancy import nightly
from tenancy.jobs import TenantTask
from tenancy.models import JobRun, Membership

FLAKY_CALLS: dict[int, int] = {}


@app.task(base=TenantTask, name="tests.census_step")
def census_step(tenant_id: int, as_of: str) -> dict[str, Any]:
    """What a step can see: its tenant's members, and through raw SQL with no tenant
    filter how many tenants' members and job runs (row-level security: one)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT tenant_id) FROM crm_membership")
        raw_members, raw_tenants = cursor.fetchone()
        cursor.execute("SELECT count(DISTINCT tenant_id) FROM crm_jobrun")
        (raw_job_tenants,) = cursor.fetchone()
    return {
        "members": Membership.objects.count(),
        "raw_members_visible": raw_members,
        "raw_tenants_visible": raw_tenants,
        "raw_job_run_tenants_visible": raw_job_tenants,
        "job_runs": JobRun.objects.count(),
    }


@app.task(base=TenantTask, name="tests.slow_step")
def slow_step(tenant_id: int, as_of: str) -> dict[str, Any]:
    """Sleeps TEST_SLOW_STEP_SECONDS (the worker's environment), so a test can kill it."""
    seconds = float(os.environ.get("TEST_SLOW_STEP_SECONDS", "0") or "0")
    time.sleep(seconds)
    return {"slept_ms": int(seconds * 1000)}


@app.task(base=TenantTask, name="tests.broken_step")
def broken_step(tenant_id: int, as_of: str) -> dict[str, Any]:
    """One bad row: the database refuses the statement."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 / (count(*) - count(*)) FROM crm_membership")
    return {}


@app.task(base=TenantTask, name="tests.flaky_step", retry_backoff=False, default_retry_delay=0)
def flaky_step(tenant_id: int, as_of: str) -> dict[str, Any]:
    """The database is unreachable on the first call, then answers."""
    FLAKY_CALLS[tenant_id] = FLAKY_CALLS.get(tenant_id, 0) + 1
    if FLAKY_CALLS[tenant_id] == 1:
        raise OperationalError("could not connect to server: Connection refused")
    return {"calls": FLAKY_CALLS[tenant_id]}


@contextmanager
def registered_step(
    name: str, order: int, task: Any, soft_time_limit: int = 2, time_limit: int = 3
) -> Iterator[nightly.Step]:
    step = nightly.register(
        name=name, order=order, task=task, soft_time_limit=soft_time_limit, time_limit=time_limit
    )
    try:
        yield step
    finally:
        nightly.unregister(name)


#: The steps the night-mechanics tests expect (the registry test sees every app's).
CORE_STEPS = ("snapshots", "warnings")


@contextmanager
def only_core_steps() -> Iterator[None]:
    """The night of the targets' and funnel's steps alone: these tests are about how a
    night runs, not about what the later steps (incentives, digests) compute."""
    saved = dict(nightly._registry)
    for name in list(nightly._registry):
        if name not in CORE_STEPS:
            nightly.unregister(name)
    try:
        yield
    finally:
        nightly._registry.clear()
        nightly._registry.update(saved)
