"""Webhook jobs (SPEC section 11): the delivery task and the beat sweeper."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.celery import app
from integrations.webhooks import services
from tenancy.jobs import TenantTask
from tenancy.models import Tenant
from tenancy.scope import platform_scope, tenant_scope

# What the sweeper sends per tenant and run at most (the rest the next run).
SWEEP_LIMIT = 500
# A due delivery's own message gets this long before the sweeper sends another.
SWEEP_GRACE = timedelta(seconds=30)


@app.task(
    base=TenantTask,
    name="integrations.deliver_webhook",
    # The request's own timeout plus the time to resolve the host and record the attempt.
    soft_time_limit=int(settings.WEBHOOKS_TIMEOUT_SECONDS) + 30,
    time_limit=int(settings.WEBHOOKS_TIMEOUT_SECONDS) + 40,
)
def deliver_webhook(tenant_id: int, delivery_id: int) -> dict[str, int]:
    """Try one delivery (skipped when it is not due, is done or another worker has it)."""
    return services.delivery_attempt(tenant_id=tenant_id, delivery_id=delivery_id)


@app.task(name="integrations.sweep_webhooks", soft_time_limit=240, time_limit=300)
def sweep_webhooks() -> dict[str, Any]:
    """On beat (``WEBHOOKS_SWEEP_SECONDS``): send again every delivery that is due and
    whose message did not come (lost with a broker restart, its worker killed, or a
    retry too far off for a countdown). A duplicate message is harmless: the delivery
    is claimed under a row lock and only while it is due."""
    with platform_scope("webhooks sweeper: the active tenants"):
        tenant_ids = list(
            Tenant.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)
        )
    now = timezone.now()
    sent = 0
    for tenant_id in tenant_ids:
        with tenant_scope(tenant_id):
            ids = services.due_delivery_ids(now=now, grace=SWEEP_GRACE, limit=SWEEP_LIMIT)
        for delivery_id in ids:
            deliver_webhook.delay(tenant_id, delivery_id)
        sent += len(ids)
    return {"sent": sent}
