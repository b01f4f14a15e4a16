"""The morning digest (SPEC section 7): a registry of sections, preparing and sending.

**Sections.** Each app registers its sections in its ``AppConfig.ready()`` with
:func:`register_section`: a name, an order, a heading and
``collect(tenant, members, local_date) -> {member_id: [item, ...]}``, which reads all the
members at once (set-based, a fixed number of queries). An item is a JSON-able dict
with at least ``kind``, ``id``, ``path`` (the API path the mobile app opens) and
``title``; ``line(item, tenant)`` renders it as one sentence in the active language.
crm registers follow-ups and visits; funnel and targets register theirs.

**Preparing** (:func:`prepare_digests`, the night's step at ``Order.DIGESTS`` or
``send_digests``) writes one ``Digest`` row per member with something to say, unique
per (tenant, member, kind, local date): a second preparation adds nothing.

**Sending** (:func:`send_due_digests`, on beat every 10 minutes once the tenant's local
hour has reached its ``digest_hour``) claims each pending row in one transaction
(``SELECT … FOR UPDATE SKIP LOCKED``): it makes the in-app notification, fixes the
mail's Message-ID and marks the row ``sending``; only after that commit does the mail
leave, and the row then records ``sent`` or ``failed``. A row not ``pending`` is never
sent again: two workers, two beats, a second run or a crash after the claim send no
second mail (a crash between the claim and the mail loses that mail rather than
doubling it; the notification is in the app either way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, make_msgid
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Activity, Digest, DigestStatus, Notification, Visit
from tenancy.dates import tenant_now, tenant_zone
from tenancy.models import Membership, Tenant
from tenancy.money import format_money
from tenancy.scope import tenant_scope

logger = logging.getLogger(__name__)

MORNING = "morning"
Item = dict[str, Any]
Collect = Callable[[Tenant, Sequence[Membership], date], dict[int, list[Item]]]
Line = Callable[[Item, Tenant], str]


@dataclass(frozen=True)
class Section:
    name: str
    order: int
    heading: Any  # a lazy translation
    collect: Collect
    line: Line


_sections: dict[str, Section] = {}


def register_section(name: str, order: int, heading: Any, collect: Collect, line: Line) -> None:
    """Add a digest section (idempotent per name: ``ready()`` may run twice in tests)."""
    _sections[name] = Section(name, order, heading, collect, line)


def sections() -> list[Section]:
    return sorted(_sections.values(), key=lambda s: (s.order, s.name))


def money(amount: Decimal | str | int | None, tenant: Tenant) -> str:
    """An amount as shown (SPEC preamble): rounded once, half-up, with the currency."""
    if amount is None:
        return "-"
    return format_money(amount, tenant.currency)


def local_time(value: str | datetime, tenant: Tenant) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return tenant_now(tenant, moment).strftime("%H:%M")


# --- preparing -------------------------------------------------------------------------


def collect_digests(tenant: Tenant, local_date: date) -> dict[int, list[dict[str, Any]]]:
    """Every active member's non-empty sections for the day: ``{member_id: sections}``."""
    members = list(Membership.objects.filter(is_active=True).order_by("pk"))
    found: dict[int, list[dict[str, Any]]] = {}
    for section in sections():
        by_member = section.collect(tenant, members, local_date)
        for member_id, items in by_member.items():
            if items:
                found.setdefault(member_id, []).append({"name": section.name, "items": items})
    return found


def prepare_digests(tenant: Tenant, local_date: date) -> dict[str, int]:
    """Write the day's pending digests (inside the tenant's scope); idempotent."""
    found = collect_digests(tenant, local_date)
    rows = [
        Digest(
            tenant=tenant,
            member_id=member_id,
            kind=MORNING,
            local_date=local_date,
            sections=member_sections,
        )
        for member_id, member_sections in found.items()
    ]
    before = Digest.objects.filter(kind=MORNING, local_date=local_date).count()
    Digest.objects.bulk_create(rows, ignore_conflicts=True)
    after = Digest.objects.filter(kind=MORNING, local_date=local_date).count()
    return {"members": len(found), "prepared": after - before}


# --- rendering -------------------------------------------------------------------------


def render(digest: Digest, member: Membership, tenant: Tenant) -> dict[str, Any]:
    """Subject, text, HTML and the notification's payload, in the member's language."""
    by_name = {s.name: s for s in sections()}
    with translation.override(member.language):
        shown = []
        for part in digest.sections:
            section = by_name.get(part["name"])
            if section is None:  # an app no longer registers it
                continue
            shown.append(
                {
                    "name": section.name,
                    "heading": str(section.heading),
                    "items": [
                        {**item, "text": section.line(item, tenant)} for item in part["items"]
                    ],
                }
            )
        count = sum(len(s["items"]) for s in shown)
        subject = gettext("Your morning digest for %(date)s: %(count)d things to look at") % {
            "date": digest.local_date.isoformat(),
            "count": count,
        }
        context = {
            "member": member,
            "tenant": tenant,
            "subject": subject,
            "sections": shown,
            "local_date": digest.local_date,
            "time_zone": tenant.time_zone,
            "language": member.language,
        }
        text = render_to_string("crm/email/digest.txt", context)
        html = render_to_string("crm/email/digest.html", context)
    payload = {
        "digest_id": digest.pk,
        "local_date": digest.local_date.isoformat(),
        "sections": [
            {
                "name": s["name"],
                "heading": s["heading"],
                "items": s["items"],
            }
            for s in shown
        ],
    }
    return {"subject": subject, "text": text, "html": html, "payload": payload, "count": count}


# --- sending ---------------------------------------------------------------------------


def digest_hour_passed(tenant: Tenant, now: datetime | None = None) -> bool:
    return tenant_now(tenant, now).hour >= tenant.digest_hour


def _claim(tenant: Tenant, digest_id: int) -> tuple[Digest, dict[str, Any]] | None:
    """Claim one pending digest and commit: notification made, Message-ID fixed,
    ``sending``."""
    with tenant_scope(tenant):
        digest = (
            Digest.objects.select_for_update(skip_locked=True)
            .filter(pk=digest_id, status=DigestStatus.PENDING)
            .first()
        )
        if digest is None:  # another worker has it, or it went already
            return None
        member = Membership.objects.select_related("user", "tenant").get(pk=digest.member_id)
        shown = render(digest, member, member.tenant)
        notification = Notification.objects.create(
            tenant_id=digest.tenant_id,
            recipient=member,
            kind="digest",
            text=shown["subject"],
            related_type="digest",
            related_id=digest.pk,
            payload=shown["payload"],
        )
        digest.notification = notification
        digest.status = DigestStatus.SENDING
        digest.message_id = make_msgid()
        digest.save(update_fields=["notification", "status", "message_id"])
    shown["member"] = member
    return digest, shown


def _mail(digest: Digest, shown: dict[str, Any], connection: Any) -> str:
    """Send the mail; the error summary or ''."""
    member: Membership = shown["member"]
    address = member.user.email
    if not member.email_notifications or not address:
        return ""
    message = EmailMultiAlternatives(
        subject=shown["subject"],
        body=shown["text"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"Message-ID": digest.message_id, "Content-Language": member.language},
        connection=connection,
    )
    message.attach_alternative(shown["html"], "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as error:  # noqa: BLE001 - a refused address or a dead server
        logger.warning("digest %s to member %s failed: %r", digest.pk, member.pk, error)
        return f"{type(error).__name__}: {error}"[:500]
    return ""


def send_pending(
    tenant: Tenant,
    local_date: date,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Send the tenant's pending digests of ``local_date``.

    Called outside any transaction: each claim and each outcome is its own committed
    tenant-scoped transaction, and the mail leaves between them."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("send_pending commits per digest: call it outside a transaction")
    with tenant_scope(tenant):
        ids = list(
            Digest.objects.filter(kind=MORNING, local_date=local_date, status=DigestStatus.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    connection = get_connection()
    for done, digest_id in enumerate(ids, start=1):
        claimed = _claim(tenant, digest_id)
        if claimed is None:
            counts["skipped"] += 1
            continue
        digest, shown = claimed
        error = _mail(digest, shown, connection)
        with tenant_scope(tenant):
            Digest.objects.filter(pk=digest.pk).update(
                status=DigestStatus.FAILED if error else DigestStatus.SENT,
                error=error,
                sent_at=timezone.now(),
            )
        counts["failed" if error else "sent"] += 1
        if progress:
            progress(done, len(ids))
    return counts


def member_ids(items: Iterable[tuple[int, Item]]) -> dict[int, list[Item]]:
    """Group ``(member_id, item)`` pairs."""
    grouped: dict[int, list[Item]] = {}
    for member_id, item in items:
        grouped.setdefault(member_id, []).append(item)
    return grouped


# --- crm's sections --------------------------------------------------------------------


def _day_bounds(tenant: Tenant, local_date: date) -> tuple[datetime, datetime]:
    zone = tenant_zone(tenant)
    start = datetime.combine(local_date, time.min, tzinfo=zone)
    end = datetime.combine(local_date + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _ids(members: Sequence[Membership]) -> list[int]:
    return [m.pk for m in members]


def collect_overdue(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """Open follow-ups due before the day began."""
    start, _end = _day_bounds(tenant, local_date)
    rows = (
        Activity.objects.filter(owner_id__in=_ids(members), done_at__isnull=True, due_at__lt=start)
        .order_by("due_at", "pk")
        .values_list("owner_id", "pk", "subject", "due_at")
    )
    return member_ids(
        (
            owner,
            {
                "kind": "activity",
                "id": pk,
                "path": f"/api/v1/activities/{pk}/",
                "title": subject,
                "due_at": _iso(due),
                "due_date": tenant_now(tenant, due).date().isoformat() if due else None,
            },
        )
        for owner, pk, subject, due in rows
    )


def collect_due_today(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """Open follow-ups due during the day."""
    start, end = _day_bounds(tenant, local_date)
    rows = (
        Activity.objects.filter(
            owner_id__in=_ids(members), done_at__isnull=True, due_at__gte=start, due_at__lt=end
        )
        .order_by("due_at", "pk")
        .values_list("owner_id", "pk", "subject", "due_at")
    )
    return member_ids(
        (
            owner,
            {
                "kind": "activity",
                "id": pk,
                "path": f"/api/v1/activities/{pk}/",
                "title": subject,
                "due_at": _iso(due),
            },
        )
        for owner, pk, subject, due in rows
    )


def collect_visits(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """Visits planned to start during the day and not checked in yet."""
    start, end = _day_bounds(tenant, local_date)
    rows = (
        Visit.objects.filter(
            rep_id__in=_ids(members),
            planned_start__gte=start,
            planned_start__lt=end,
            check_in_at__isnull=True,
        )
        .order_by("planned_start", "pk")
        .values_list("rep_id", "pk", "customer__name", "planned_start")
    )
    return member_ids(
        (
            owner,
            {
                "kind": "visit",
                "id": pk,
                "path": f"/api/v1/visits/{pk}/",
                "title": customer,
                "planned_start": _iso(planned),
            },
        )
        for owner, pk, customer, planned in rows
    )


def register_crm_sections() -> None:
    register_section(
        "overdue_follow_ups",
        10,
        _("Overdue follow-ups"),
        collect_overdue,
        lambda item, tenant: (
            gettext("%(title)s, due on %(date)s")
            % {"title": item["title"], "date": item["due_date"]}
        ),
    )
    register_section(
        "follow_ups_today",
        20,
        _("Follow-ups due today"),
        collect_due_today,
        lambda item, tenant: (
            gettext("%(title)s at %(time)s")
            % {"title": item["title"], "time": local_time(item["due_at"], tenant)}
        ),
    )
    register_section(
        "visits_today",
        30,
        _("Visits planned today"),
        collect_visits,
        lambda item, tenant: (
            gettext("Visit %(customer)s at %(time)s")
            % {"customer": item["title"], "time": local_time(item["planned_start"], tenant)}
        ),
    )
