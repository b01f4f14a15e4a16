"""crm jobs (SPEC section 7): the digests' night step, their sender and due reminders."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.utils import timezone, translation
from django.utils.translation import gettext

from config.celery import app
from crm import digest
from crm.models import Activity, Notification
from tenancy.dates import tenant_now, tenant_today
from tenancy.jobs import TenantTask
from tenancy.models import Membership, Tenant
from tenancy.scope import platform_scope, tenant_scope

logger = logging.getLogger(__name__)

# A follow-up whose due time passed longer ago than this gets no late reminder (beat
# was down): the digest lists it as overdue instead.
REMINDER_GRACE = timedelta(minutes=30)
MAX_LEAD = timedelta(minutes=7 * 24 * 60)


@app.task(base=TenantTask, name="crm.prepare_digests")
def prepare_tenant_digests(tenant_id: int, as_of: str | None = None) -> dict[str, Any]:
    """The night's digest step: write the next local day's pending digests (the night's
    ``as_of`` is the eve, so the digest is for the day after it)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    day = date.fromisoformat(as_of) + timedelta(days=1) if as_of else tenant_today(tenant)
    return digest.prepare_digests(tenant, day)


def active_tenants() -> list[Tenant]:
    with platform_scope("digests and reminders: the active tenants"):
        return list(Tenant.objects.filter(is_active=True).order_by("pk"))


@app.task(name="crm.send_digests", soft_time_limit=540, time_limit=600)
def send_digests(now: str | None = None) -> dict[str, int]:
    """On beat every 10 minutes: each tenant whose local hour has reached its digest
    hour sends its pending digests of today (each claimed and committed before its
    mail leaves, see ``crm.digest``)."""
    moment = datetime.fromisoformat(now) if now else timezone.now()
    totals = {"sent": 0, "failed": 0, "skipped": 0}
    for tenant in active_tenants():
        if not digest.digest_hour_passed(tenant, moment):
            continue
        counts = digest.send_pending(tenant, tenant_today(tenant, moment))
        for key, value in counts.items():
            totals[key] += value
    return totals


def due_reminders(tenant: Tenant, now: datetime) -> int:
    """Send the reminders that are due (inside the tenant's scope); each once per
    activity and due time (a conditional update of ``reminded_due_at``)."""
    lead = ExpressionWrapper(
        F("owner__reminder_lead_minutes") * timedelta(minutes=1), output_field=DurationField()
    )
    candidates = list(
        Activity.objects.filter(
            done_at__isnull=True,
            due_at__gt=now - REMINDER_GRACE,
            due_at__lte=now + MAX_LEAD,
        )
        .filter(Q(reminded_due_at__isnull=True) | ~Q(reminded_due_at=F("due_at")))
        .annotate(remind_at=F("due_at") - lead)
        .filter(remind_at__lte=now)
        .values_list("pk", "owner_id", "subject", "due_at")
    )
    languages = dict(
        Membership.objects.filter(pk__in={c[1] for c in candidates}).values_list("pk", "language")
    )
    sent = 0
    for pk, owner_id, subject, due_at in candidates:
        claimed = (
            Activity.objects.filter(pk=pk, due_at=due_at, done_at__isnull=True)
            .filter(Q(reminded_due_at__isnull=True) | ~Q(reminded_due_at=F("due_at")))
            .update(reminded_due_at=due_at)
        )
        if not claimed:  # another run has it
            continue
        with translation.override(languages.get(owner_id, "en")):
            text = gettext("Reminder: %(subject)s is due at %(time)s.") % {
                "subject": subject,
                "time": tenant_now(tenant, due_at).strftime("%H:%M"),
            }
        Notification.objects.create(
            tenant=tenant,
            recipient_id=owner_id,
            kind="reminder",
            text=text,
            related_type="activity",
            related_id=pk,
            payload={
                "kind": "activity",
                "id": pk,
                "path": f"/api/v1/activities/{pk}/",
                "due_at": due_at.isoformat() if due_at else None,
            },
        )
        sent += 1
    return sent


@app.task(name="crm.send_reminders", soft_time_limit=240, time_limit=300)
def send_reminders(now: str | None = None) -> dict[str, int]:
    """On beat every few minutes: every tenant's due reminders, one tenant scope each."""
    moment = datetime.fromisoformat(now) if now else timezone.now()
    sent = 0
    for tenant in active_tenants():
        with tenant_scope(tenant):
            sent += due_reminders(tenant, moment)
    return {"sent": sent}
