"""Writes of webhooks (SPEC section 11): endpoints, the outbox, delivery attempts.

Endpoint services take the acting ``member`` (an admin) and run in one transaction;
they raise ``ValidationError`` naming the field (400), ``Forbidden`` or ``Conflict``.
``outbox_write`` runs inside the caller's transaction (the change's); ``delivery_attempt``
runs in the worker's (``TenantTask``): the delivery's row stays locked while its request
is out, so no second worker sends the same attempt.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from standardwebhooks.webhooks import Webhook

from crm.models import Notification
from integrations.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from integrations.models.webhooks import PING
from integrations.webhooks import addresses, retry, sender
from tenancy.errors import Conflict, Forbidden
from tenancy.models import Membership, Role

logger = logging.getLogger(__name__)

Builder = Callable[[], dict[str, Any]]

# A retry due sooner than this is sent with a countdown; a later one is left to the
# sweeper (Redis would hand a message held longer than its visibility timeout to a
# second worker, and a lost message is found again by the sweeper anyway).
COUNTDOWN_LIMIT = timedelta(minutes=5)
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    return "msg_" + uuid.uuid4().hex


def require_admin(member: Membership) -> None:
    if member.role != Role.ADMIN:
        raise Forbidden(_("Only the tenant's admins manage webhooks."))


def check_url(url: str) -> str:
    """The URL, or a ``ValidationError`` on ``url`` saying why it may not be called."""
    try:
        addresses.resolve(url)
    except addresses.AddressRefused as error:
        raise ValidationError({"url": str(error)}) from error
    return url


def check_event_types(event_types: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(event_types))
    unknown = [name for name in chosen if name not in WebhookEvent.values]
    if unknown:
        raise ValidationError(
            {"event_types": _("Unknown event types: %(names)s.") % {"names": ", ".join(unknown)}}
        )
    if not chosen:
        raise ValidationError({"event_types": _("Choose at least one event type.")})
    return chosen


# --- endpoints ---------------------------------------------------------------------------


@transaction.atomic
def endpoint_create(
    *,
    member: Membership,
    url: str,
    event_types: Iterable[str],
    description: str = "",
    is_active: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned here once; only admins see it again by
    rotating)."""
    require_admin(member)
    chosen = check_event_types(event_types)
    check_url(url)
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        tenant_id=member.tenant_id,
        url=url,
        event_types=chosen,
        description=description,
        is_active=is_active,
        secret=secret,
        created_by=member,
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(
    *, member: Membership, endpoint: WebhookEndpoint, **changes: Any
) -> WebhookEndpoint:
    """Change the URL, event types, description or active flag. Turning a disabled
    endpoint on again clears why it was disabled and its failure streak."""
    require_admin(member)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    allowed = {"url", "event_types", "description", "is_active"}
    if "url" in changes:
        check_url(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = check_event_types(changes["event_types"])
    was_active = locked.is_active
    for name, value in changes.items():
        if name in allowed:
            setattr(locked, name, value)
    if changes.get("is_active") and not was_active:
        locked.disabled_at = None
        locked.disabled_reason = ""
        locked.failing_since = None
    locked.save()
    return locked


@transaction.atomic
def endpoint_rotate_secret(
    *, member: Membership, endpoint: WebhookEndpoint
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one still signs (a second signature) for 24 hours."""
    require_admin(member)
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = new_secret()
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
    locked.secret = secret
    locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return locked, secret


@transaction.atomic
def endpoint_delete(*, member: Membership, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their log."""
    require_admin(member)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


@transaction.atomic
def endpoint_test(*, member: Membership, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """Send a ``ping`` event to this endpoint alone (whatever it subscribes to)."""
    require_admin(member)
    if not endpoint.is_active:
        raise Conflict(_("This endpoint is disabled; turn it on before testing it."))
    now = timezone.now()
    body = {
        "type": PING,
        "timestamp": now.isoformat(),
        "data": {"endpoint_id": endpoint.pk, "sent_by_id": member.pk},
    }
    delivery = WebhookDelivery.objects.create(
        tenant_id=endpoint.tenant_id,
        endpoint=endpoint,
        event_type=PING,
        message_id=new_message_id(),
        payload=body,
        next_attempt_at=now,
    )
    enqueue_delivery(delivery)
    return delivery


# --- the outbox ------------------------------------------------------------------------


def subscribed_types(tenant_id: int, types: Sequence[str]) -> set[str]:
    """Which of ``types`` an active endpoint of the tenant wants (one query)."""
    wanted: set[str] = set()
    rows = WebhookEndpoint.objects.filter(
        tenant_id=tenant_id, is_active=True, event_types__overlap=list(types)
    ).values_list("event_types", flat=True)
    for event_types in rows:
        wanted.update(event_types)
    return wanted & set(types)


def outbox_write(
    *,
    tenant_id: int,
    events: Sequence[tuple[str, Builder]],
    occurred_at: datetime | None,
) -> list[WebhookDelivery]:
    """One delivery per event and subscribed active endpoint, in the caller's
    transaction; each is sent once that transaction commits. A payload is built only
    when an endpoint wants its event."""
    if not events:
        return []
    types = [event_type for event_type, _build in events]
    endpoints = list(
        WebhookEndpoint.objects.filter(
            tenant_id=tenant_id, is_active=True, event_types__overlap=types
        ).values_list("pk", "event_types")
    )
    if not endpoints:
        return []
    now = timezone.now()
    at = (occurred_at or now).astimezone(UTC)
    rows: list[WebhookDelivery] = []
    for event_type, build in events:
        subscribers = [pk for pk, wanted in endpoints if event_type in wanted]
        if not subscribers:
            continue
        body = {"type": event_type, "timestamp": at.isoformat(), "data": build()}
        # One message id per event: an integrator with two endpoints sees the same id.
        message_id = new_message_id()
        rows.extend(
            WebhookDelivery(
                tenant_id=tenant_id,
                endpoint_id=endpoint_id,
                event_type=event_type,
                message_id=message_id,
                payload=body,
                next_attempt_at=now,
                created_at=now,
            )
            for endpoint_id in subscribers
        )
    WebhookDelivery.objects.bulk_create(rows)
    for row in rows:
        enqueue_delivery(row)
    return rows


def enqueue_delivery(delivery: WebhookDelivery, countdown: float | None = None) -> None:
    """Send the delivery's task once the transaction commits."""
    from integrations.webhooks.tasks import deliver_webhook

    tenant_id, pk = delivery.tenant_id, delivery.pk
    if countdown is None:
        transaction.on_commit(lambda: deliver_webhook.delay(tenant_id, pk))
    elif not deliver_webhook.app.conf.task_always_eager:
        # Eagerly (no broker) a countdown is not honoured: the sweeper sends it when due.
        transaction.on_commit(
            lambda: deliver_webhook.apply_async((tenant_id, pk), countdown=countdown)
        )


# --- deliveries --------------------------------------------------------------------------


@transaction.atomic
def delivery_retry(*, member: Membership, delivery: WebhookDelivery) -> WebhookDelivery:
    """ "Send again": the same message (same ``webhook-id``), now, with a fresh window of
    retries. The endpoint must be active."""
    require_admin(member)
    locked = WebhookDelivery.objects.select_for_update(of=("self",)).get(pk=delivery.pk)
    endpoint = WebhookEndpoint.objects.get(pk=locked.endpoint_id)
    if not endpoint.is_active:
        raise Conflict(_("This endpoint is disabled; turn it on before sending again."))
    now = timezone.now()
    locked.status = DeliveryStatus.PENDING
    locked.next_attempt_at = now
    # Retries after a manual resend are counted from it (about three days again).
    locked.created_at = now
    locked.save(update_fields=["status", "next_attempt_at", "created_at"])
    enqueue_delivery(locked)
    return locked


def signature_headers(
    endpoint: WebhookEndpoint, message_id: str, at: datetime, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers; during a rotation's overlap both secrets sign
    (two space-separated signatures)."""
    keys = [endpoint.secret]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at is not None
        and endpoint.previous_secret_expires_at > at
    ):
        keys.append(endpoint.previous_secret)
    signatures = " ".join(Webhook(key).sign(message_id, at, body) for key in keys)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": "TargetCRM-Webhooks/1.0",
    }


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()


def _retry_base() -> timedelta:
    return timedelta(seconds=settings.WEBHOOKS_RETRY_BASE_SECONDS)


def _window() -> timedelta:
    return timedelta(hours=settings.WEBHOOKS_RETRY_WINDOW_HOURS)


def delivery_attempt(*, tenant_id: int, delivery_id: int) -> dict[str, int]:
    """Try the delivery once if it is due and no one else holds it. Called inside the
    worker's tenant transaction: the row lock is held until the outcome is recorded,
    so a second worker skips it (``SKIP LOCKED``) and finds it done afterwards."""
    now = timezone.now()
    delivery = (
        WebhookDelivery.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("endpoint")
        .filter(pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .first()
    )
    if delivery is None:
        return {"skipped": 1}
    endpoint = delivery.endpoint
    if not endpoint.is_active:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED,
            next_attempt_at=None,
            last_error=_("The endpoint is disabled."),
        )
        return {"failed": 1}
    body = body_of(delivery)
    try:
        target = addresses.resolve(endpoint.url)
    except addresses.AddressRefused as error:
        outcome = sender.Outcome(None, 0, str(error)[:500])
    else:
        headers = signature_headers(endpoint, delivery.message_id, now, body)
        outcome = sender.post(
            target, body, headers, timeout=float(settings.WEBHOOKS_TIMEOUT_SECONDS)
        )
    return _record(delivery, endpoint, outcome, now)


def _record(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    outcome: sender.Outcome,
    at: datetime,
) -> dict[str, int]:
    number = delivery.attempt_count + 1
    finished = timezone.now()
    next_at: datetime | None = None
    if outcome.succeeded:
        status = DeliveryStatus.DELIVERED
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=False).update(
            failing_since=None
        )
    elif outcome.response_code == 410:
        status = DeliveryStatus.FAILED
        endpoint_disable(
            endpoint,
            reason=gettext_lazy("The receiver answered 410 Gone."),
            keep=delivery.pk,
        )
    else:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=at
        )
        failing_since = WebhookEndpoint.objects.values_list("failing_since", flat=True).get(
            pk=endpoint.pk
        )
        if failing_since is not None and finished - failing_since >= _window():
            status = DeliveryStatus.FAILED
            endpoint_disable(
                endpoint,
                reason=gettext_lazy("Every delivery failed for three days."),
                keep=delivery.pk,
            )
        else:
            next_at = retry.next_attempt(
                created_at=delivery.created_at,
                failed_at=finished,
                failures=number,
                base=_retry_base(),
                window=_window(),
            )
            status = DeliveryStatus.PENDING if next_at else DeliveryStatus.FAILED
    WebhookAttempt.objects.create(
        tenant_id=delivery.tenant_id,
        delivery=delivery,
        number=number,
        attempted_at=at,
        response_code=outcome.response_code,
        duration_ms=outcome.duration_ms,
        error=outcome.error,
        next_attempt_at=next_at,
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=status,
        attempt_count=F("attempt_count") + 1,
        next_attempt_at=next_at,
        last_attempt_at=at,
        last_response_code=outcome.response_code,
        last_error=outcome.error,
        delivered_at=finished if status == DeliveryStatus.DELIVERED else None,
    )
    if next_at is not None and next_at - finished <= COUNTDOWN_LIMIT:
        enqueue_delivery(delivery, countdown=max((next_at - finished).total_seconds(), 0))
    return {status: 1}


def endpoint_disable(endpoint: WebhookEndpoint, *, reason: Any, keep: int | None = None) -> bool:
    """Turn the endpoint off (once: a conditional update), fail its pending deliveries
    and tell the tenant's admins. True when this call disabled it."""
    now = timezone.now()
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=str(reason)[:200]
    )
    if not changed:
        return False
    pending = WebhookDelivery.objects.filter(endpoint_id=endpoint.pk, status=DeliveryStatus.PENDING)
    if keep is not None:
        pending = pending.exclude(pk=keep)
    pending.update(
        status=DeliveryStatus.FAILED,
        next_attempt_at=None,
        last_error=_("The endpoint is disabled."),
    )
    _tell_admins(endpoint, reason)
    return True


def _tell_admins(endpoint: WebhookEndpoint, reason: Any) -> None:
    """An in-app notification for each active admin, and a mail to those who take mail
    (sent once the transaction commits), each in the admin's language (``reason`` is a
    lazy translation)."""
    admins = list(Membership.objects.filter(role=Role.ADMIN, is_active=True).select_related("user"))
    mails: list[tuple[str, str, str]] = []
    for admin in admins:
        with translation.override(admin.language or settings.LANGUAGE_CODE):
            subject = _("Webhook endpoint disabled: %(url)s") % {"url": endpoint.url}
            text = _(
                "The webhook endpoint %(url)s was disabled: %(reason)s "
                "Fix the receiver, then turn the endpoint on again; failed deliveries "
                "can be sent again from their log."
            ) % {"url": endpoint.url, "reason": str(reason)}
        Notification.objects.create(
            tenant_id=endpoint.tenant_id,
            recipient=admin,
            kind="webhook_disabled",
            text=text,
            related_type="webhook_endpoint",
            related_id=endpoint.pk,
            payload={"endpoint_id": endpoint.pk, "url": endpoint.url, "reason": str(reason)},
        )
        if admin.email_notifications and admin.user.email:
            mails.append((subject, text, admin.user.email))

    def send() -> None:
        for subject, text, address in mails:
            try:
                send_mail(subject, text, None, [address])
            except Exception:  # a dead mail server must not undo the notification
                logger.exception("mail about disabled webhook endpoint %s failed", endpoint.pk)

    transaction.on_commit(send)


def due_delivery_ids(*, now: datetime, grace: timedelta, limit: int) -> list[int]:
    """The scoped tenant's pending deliveries due for longer than ``grace`` (their own
    message is late: lost, or its worker died): the sweeper sends them again."""
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now - grace
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
