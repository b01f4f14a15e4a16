"""crm jobs (SPEC section 7): the digests' night step, their sender and due reminders."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.mail import get_connection, make_msgid
from django.db.models import DurationField, ExpressionWrapper, F, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from config.celery import app
from crm import digest
from crm.models import Activity, Notification
from tenancy.dates import tenant_now, tenant_today
from tenancy.jobs import TenantTask, recorded_run
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


def _worker_of(task: Any) -> dict[str, Any]:
    request = task.request
    return {"task_id": request.id or "", "worker": request.hostname or ""}


@app.task(bind=True, name="crm.send_digests", soft_time_limit=540, time_limit=600)
def send_digests(self: Any, now: str | None = None) -> dict[str, int]:
    """On beat every 10 minutes: each tenant whose local hour has reached its digest
    hour sends its pending digests of today (each claimed and committed before its
    mail leaves, see ``crm.digest``). A tenant with digests to send gets a job run with
    the counts; one tenant's failure is recorded there and the others still send."""
    moment = datetime.fromisoformat(now) if now else timezone.now()
    totals = {"sent": 0, "failed": 0, "skipped": 0}
    for tenant in active_tenants():
        if not digest.digest_hour_passed(tenant, moment):
            continue
        day = tenant_today(tenant, moment)
        with tenant_scope(tenant):
            waiting = digest.pending_count(day)
        if not waiting:
            continue
        try:
            with recorded_run(
                tenant.pk, "crm.send_digests", time_limit=600, **_worker_of(self)
            ) as counts:
                counts["local_date"] = day.isoformat()
                found = digest.send_pending(tenant, day)
                counts.update(found)
        except Exception:  # noqa: BLE001 - recorded on the tenant's run; the next tenant goes on
            continue
        for key in totals:
            totals[key] += found[key]
    return totals


@dataclass
class ReminderMail:
    """A reminder claimed and committed, its mail still to send (``payload["email"]``
    of its notification says ``sending`` until it went)."""

    notification_id: int
    member_id: int
    subject: str
    text: str
    html: str
    message_id: str


def reminder_candidates(now: datetime) -> list[tuple[int, int, str, datetime | None]]:
    """The open follow-ups whose reminder is due at ``now`` and not sent for their
    current due time (inside the tenant's scope; the partial index keeps it cheap)."""
    lead = ExpressionWrapper(
        F("owner__reminder_lead_minutes") * timedelta(minutes=1), output_field=DurationField()
    )
    return list(
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


def due_reminders(
    tenant: Tenant,
    now: datetime,
    outbox: list[ReminderMail] | None = None,
    candidates: list[tuple[int, int, str, datetime | None]] | None = None,
) -> int:
    """Claim the reminders that are due (inside the tenant's scope): each once per
    activity and due time (a conditional update of ``reminded_due_at``), with its in-app
    notification. A member who takes e-mail gets a mail too: it is put in ``outbox``
    with its Message-ID fixed, to be sent once this transaction commits (``send_mail``);
    without an outbox the reminders are in-app only."""
    if candidates is None:
        candidates = reminder_candidates(now)
    members = {
        member.pk: member
        for member in Membership.objects.filter(pk__in={c[1] for c in candidates}).select_related(
            "user"
        )
    }
    sent = 0
    for pk, owner_id, subject, due_at in candidates:
        claimed = (
            Activity.objects.filter(pk=pk, due_at=due_at, done_at__isnull=True)
            .filter(Q(reminded_due_at__isnull=True) | ~Q(reminded_due_at=F("due_at")))
            .update(reminded_due_at=due_at)
        )
        if not claimed:  # another run has it
            continue
        member = members.get(owner_id)
        language = member.language if member else "en"
        with translation.override(language):
            text = gettext("Reminder: %(subject)s is due at %(time)s.") % {
                "subject": subject,
                "time": tenant_now(tenant, due_at).strftime("%H:%M"),
            }
        payload: dict[str, Any] = {
            "kind": "activity",
            "id": pk,
            "path": f"/api/v1/activities/{pk}/",
            "due_at": due_at.isoformat() if due_at else None,
        }
        mail = outbox is not None and member is not None and wants_mail(member)
        if mail:
            payload["email"] = {"status": "sending", "message_id": make_msgid()}
        notification = Notification.objects.create(
            tenant=tenant,
            recipient_id=owner_id,
            kind="reminder",
            text=text,
            related_type="activity",
            related_id=pk,
            payload=payload,
        )
        if mail:
            assert outbox is not None and member is not None
            outbox.append(_reminder_mail(tenant, member, notification, text))
        sent += 1
    return sent


def wants_mail(member: Membership) -> bool:
    return bool(member.email_notifications and member.user.email)


def _reminder_mail(
    tenant: Tenant, member: Membership, notification: Notification, text: str
) -> ReminderMail:
    context = {
        "member": member,
        "text": text,
        "time_zone": tenant.time_zone,
        "language": member.language,
    }
    with translation.override(member.language):
        body = render_to_string("crm/email/reminder.txt", context)
        html = render_to_string("crm/email/reminder.html", context)
    return ReminderMail(
        notification_id=notification.pk,
        member_id=member.pk,
        subject=text,
        text=body,
        html=html,
        message_id=notification.payload["email"]["message_id"],
    )


def send_reminder_mails(tenant: Tenant, outbox: list[ReminderMail]) -> dict[str, int]:
    """Send the claimed reminders' mails (outside any transaction) and record each
    outcome on its notification: ``sent``, or ``failed`` with the error (a refused
    address); the notification stays in the app either way and is never mailed again."""
    counts = {"mailed": 0, "failed": 0}
    if not outbox:
        return counts
    with tenant_scope(tenant):
        members = Membership.objects.select_related("user").in_bulk(
            [mail.member_id for mail in outbox]
        )
    connection = get_connection()
    for mail in outbox:
        member = members[mail.member_id]
        error = digest.deliver(
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
            address=member.user.email,
            message_id=mail.message_id,
            language=member.language,
            connection=connection,
        )
        outcome = {"status": "failed" if error else "sent", "message_id": mail.message_id}
        if error:
            outcome["error"] = error
        with tenant_scope(tenant):
            notification = Notification.objects.select_for_update().get(pk=mail.notification_id)
            notification.payload = {**notification.payload, "email": outcome}
            notification.save(update_fields=["payload", "updated_at"])
        counts["failed" if error else "mailed"] += 1
    return counts


@app.task(bind=True, name="crm.send_reminders", soft_time_limit=240, time_limit=300)
def send_reminders(self: Any, now: str | None = None) -> dict[str, int]:
    """On beat every few minutes: every tenant's due reminders. A tenant with reminders
    due gets a job run: the claims and notifications commit first, then the mails leave
    (a crash in between loses a mail, never doubles one)."""
    moment = datetime.fromisoformat(now) if now else timezone.now()
    totals = {"sent": 0, "mailed": 0, "failed": 0}
    for tenant in active_tenants():
        with tenant_scope(tenant):
            candidates = reminder_candidates(moment)
        if not candidates:
            continue
        try:
            with recorded_run(
                tenant.pk, "crm.send_reminders", time_limit=300, **_worker_of(self)
            ) as counts:
                outbox: list[ReminderMail] = []
                with tenant_scope(tenant):
                    counts["sent"] = due_reminders(tenant, moment, outbox, candidates)
                counts.update(send_reminder_mails(tenant, outbox))
        except Exception:  # noqa: BLE001 - recorded on the tenant's run; the next tenant goes on
            continue
        for key in totals:
            totals[key] += counts.get(key, 0)
    return totals
