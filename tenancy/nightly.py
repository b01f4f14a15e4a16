"""The nightly run (SPEC section 7): every night, per tenant at 02:00 tenant time.

``dispatch`` is called every few minutes (``tenancy.dispatch_nightly`` on Celery beat). For
each active tenant whose local time has passed 02:00 and whose night has not been
dispatched yet, it records a ``NightlyRun`` (unique per tenant and local date, so two
dispatchers never send a night twice) and, once that commits, sends the tenant's
nightly tasks for the day that just ended: the achievement snapshots, then the warning
evaluation. Each task records its own job run and is safe to run twice. A night missed
while beat was down is caught up at the next dispatch of the same local day.

The tasks are named, not imported: the core app does not depend on the apps that
provide them.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from tenancy.models import NightlyRun, Tenant
from tenancy.scope import platform_scope

NIGHTLY_AT = time(2, 0)
# In order: snapshots first, so that the warnings see tonight's achievement.
NIGHTLY_TASKS = ["targets.snapshot_achievements", "funnel.evaluate_warnings"]


def _send(tenant_id: int, as_of: str, queue: str | None) -> None:
    from config.celery import app

    for name in NIGHTLY_TASKS:
        signature = app.signature(name, args=(tenant_id, as_of))
        if queue:
            signature.apply_async(queue=queue)
        else:
            signature.apply_async()


def dispatch(now: datetime | None = None, *, queue: str | None = None) -> dict[str, Any]:
    """Send the nightly tasks of every tenant that is due at ``now`` (default: now)."""
    from config.celery import app

    # The apps' task modules are discovered lazily; load them (once) so each name
    # resolves to its task (and honours eager mode), not to a bare message.
    app.loader.import_default_modules()
    now = now or timezone.now()
    sent: list[dict[str, Any]] = []
    with platform_scope("nightly dispatch: which tenants have passed 02:00 local time"):
        for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
            local = now.astimezone(ZoneInfo(tenant.time_zone))
            if local.time() < NIGHTLY_AT:
                continue
            night, as_of = local.date(), local.date() - timedelta(days=1)
            try:
                with transaction.atomic():
                    NightlyRun.objects.create(
                        tenant=tenant, night=night, as_of=as_of, tasks=NIGHTLY_TASKS
                    )
            except IntegrityError:
                continue  # dispatched already (by this dispatcher or another)
            transaction.on_commit(partial(_send, tenant.pk, as_of.isoformat(), queue))
            sent.append({"tenant": tenant.pk, "night": night.isoformat(), "as_of": str(as_of)})
    return {"dispatched": sent}
