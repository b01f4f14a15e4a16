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

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection, make_msgid
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.models import Activity, Digest, DigestStatus, Visit
from tenancy.dates import tenant_now, tenant_zone
from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
from tenancy.money import format_money
from tenancy.scope import tenant_scope

logger = logging.getLogger(__name__)

MORNING = "morning"
#: A section lists this many items at most, then says how many more the app shows: a
#: manager of a large team would otherwise get hundreds of lines.
MAX_ITEMS = 20
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

_shared: ContextVar[dict[Any, Any] | None] = ContextVar("digest_shared", default=None)


def shared(key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per preparation for ``key``: two sections reading the same
    figures (a member's own targets at risk, their manager's off-track members) share
    one computation. Outside a preparation it simply computes."""
    cache = _shared.get()
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def manager_teams(tenant: Tenant, members: Sequence[Membership]) -> dict[int, list[int]]:
    """Each manager among ``members`` (role manager, managing at least one unit) and the
    active members of their subtree but themselves: who their digest speaks about
    (SPEC section 7). Two queries, shared by the sections of one preparation."""

    def compute() -> dict[int, list[int]]:
        managers = {m.pk for m in members if m.role == Role.MANAGER}
        if not managers:
            return {}
        links = list(
            OrgUnitManager.objects.filter(membership_id__in=managers).values_list(
                "membership_id", "org_unit__path"
            )
        )
        paths = dict(OrgUnit.objects.values_list("pk", "path"))
        placed = [(m.pk, paths[m.org_unit_id]) for m in members if m.org_unit_id in paths]
        teams: dict[int, set[int]] = {}
        for manager_id, managed_path in links:
            team = teams.setdefault(manager_id, set())
            team.update(
                pk for pk, path in placed if path.startswith(managed_path) and pk != manager_id
            )
        return {manager_id: sorted(team) for manager_id, team in teams.items() if team}

    teams: dict[int, list[int]] = shared(("manager_teams", tenant.pk), compute)
    return teams


def display_names(tenant: Tenant, members: Sequence[Membership]) -> dict[int, str]:
    """The members' names as shown (full name, else username): one query, shared."""

    def compute() -> dict[int, str]:
        rows = Membership.objects.filter(pk__in=[m.pk for m in members]).values_list(
            "pk", "user__first_name", "user__last_name", "user__username"
        )
        return {pk: f"{first} {last}".strip() or username for pk, first, last, username in rows}

    names: dict[int, str] = shared(("display_names", tenant.pk), compute)
    return names


def for_teams(
    teams: dict[int, list[int]], by_member: dict[int, list[Item]]
) -> dict[int, list[Item]]:
    """Each manager's items about their team: the team's items, in member order."""
    return {
        manager_id: [item for member_id in team for item in by_member.get(member_id, [])]
        for manager_id, team in teams.items()
    }


def collect_digests(tenant: Tenant, local_date: date) -> dict[int, list[dict[str, Any]]]:
    """Every active member's non-empty sections for the day: ``{member_id: sections}``."""
    members = list(Membership.objects.filter(is_active=True).order_by("pk"))
    found: dict[int, list[dict[str, Any]]] = {}
    token = _shared.set({})
    try:
        for section in sections():
            by_member = section.collect(tenant, members, local_date)
            for member_id, items in by_member.items():
                if items:
                    part: dict[str, Any] = {"name": section.name, "items": items[:MAX_ITEMS]}
                    total = max(getattr(items, "total", 0), len(items))
                    if total > MAX_ITEMS:
                        part["more"] = total - MAX_ITEMS
                    found.setdefault(member_id, []).append(part)
    finally:
        _shared.reset(token)
    return found


# The day's digests, written in one statement: the rows as one JSON document (a bulk
# insert sends the sections as an array of JSON texts, whose quoting by the driver, one
# regular-expression substitution per quote, cost more than the query: seconds for 571).
_INSERT_DIGESTS = """
    INSERT INTO crm_digest
        (tenant_id, member_id, kind, local_date, status, sections, message_id, error, created_at)
    SELECT %(tenant)s, r.member_id, %(kind)s, %(local_date)s, %(status)s, r.sections, '', '',
           %(now)s
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(member_id bigint, sections jsonb)
    ON CONFLICT DO NOTHING
"""


def prepare_digests(tenant: Tenant, local_date: date) -> dict[str, int]:
    """Write the day's pending digests (inside the tenant's scope); idempotent."""
    found = collect_digests(tenant, local_date)
    rows = [
        {"member_id": member_id, "sections": member_sections}
        for member_id, member_sections in found.items()
    ]
    before = Digest.objects.filter(kind=MORNING, local_date=local_date).count()
    if rows:
        with db_connection.cursor() as cursor:
            cursor.execute(
                _INSERT_DIGESTS,
                {
                    "tenant": tenant.pk,
                    "kind": MORNING,
                    "local_date": local_date,
                    "status": DigestStatus.PENDING.value,
                    "now": timezone.now(),
                    "rows": json.dumps(rows),
                },
            )
    after = Digest.objects.filter(kind=MORNING, local_date=local_date).count()
    return {"members": len(found), "prepared": after - before}


# --- rendering -------------------------------------------------------------------------


def render(digest: Digest, member: Membership, tenant: Tenant) -> dict[str, Any]:
    """Subject, text, HTML and the notification's payload, in the member's language."""
    by_name = {s.name: s for s in sections()}
    with translation.override(member.language):
        shown: list[dict[str, Any]] = []
        for part in digest.sections:
            section = by_name.get(part["name"])
            if section is None:  # an app no longer registers it
                continue
            more = int(part.get("more", 0))
            more_text = ""
            if more:
                more_text = ngettext(
                    "… and %(count)d more in the app", "… and %(count)d more in the app", more
                ) % {"count": more}
            shown.append(
                {
                    "name": section.name,
                    "heading": str(section.heading),
                    "items": [
                        {**item, "text": section.line(item, tenant)} for item in part["items"]
                    ],
                    "more": more,
                    "more_text": more_text,
                }
            )
        count = sum(len(s["items"]) + s["more"] for s in shown)
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
                "more": s["more"],
            }
            for s in shown
        ],
    }
    return {"subject": subject, "text": text, "html": html, "payload": payload, "count": count}


# --- sending ---------------------------------------------------------------------------


def digest_hour_passed(tenant: Tenant, now: datetime | None = None) -> bool:
    return tenant_now(tenant, now).hour >= tenant.digest_hour


_INSERT_NOTIFICATIONS = """
    INSERT INTO crm_notification
        (tenant_id, recipient_id, kind, text, related_type, related_id, payload, created_at,
         updated_at)
    SELECT %(tenant)s, r.recipient, 'digest', r.text, 'digest', r.digest, r.payload, %(now)s,
           %(now)s
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(digest bigint, recipient bigint, text text,
                                                  payload jsonb)
    RETURNING id, related_id
"""
_CLAIM_DIGESTS = """
    UPDATE crm_digest d
    SET notification_id = r.notification, status = %(status)s, message_id = r.message_id
    FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(id bigint, notification bigint, message_id text)
    WHERE d.tenant_id = %(tenant)s AND d.id = r.id
"""


def _claim_batch(tenant: Tenant, digest_ids: list[int]) -> list[tuple[Digest, dict[str, Any]]]:
    """Claim the pending digests among ``digest_ids`` and commit: each one's in-app
    notification made, its Message-ID fixed, ``sending``. Rows another worker holds or
    that went already are left out (``SKIP LOCKED``, ``status = pending``)."""
    with tenant_scope(tenant):
        digests = list(
            Digest.objects.select_for_update(skip_locked=True)
            .filter(pk__in=digest_ids, status=DigestStatus.PENDING)
            .order_by("pk")
        )
        if not digests:
            return []
        members = Membership.objects.select_related("user").in_bulk([d.member_id for d in digests])
        claimed = []
        for digest in digests:
            member = members[digest.member_id]
            claimed.append((digest, {**render(digest, member, tenant), "member": member}))
        # The notifications in one INSERT, the claim in one UPDATE, their rows as one
        # JSON document (see _INSERT_DIGESTS: no array of JSON texts to quote).
        moment = timezone.now()
        with db_connection.cursor() as cursor:
            cursor.execute(
                _INSERT_NOTIFICATIONS,
                {
                    "tenant": tenant.pk,
                    "now": moment,
                    "rows": json.dumps(
                        [
                            {
                                "digest": digest.pk,
                                "recipient": digest.member_id,
                                "text": shown["subject"],
                                "payload": shown["payload"],
                            }
                            for digest, shown in claimed
                        ],
                    ),
                },
            )
            notification_of = {digest_id: pk for pk, digest_id in cursor.fetchall()}
            for digest, _shown in claimed:
                digest.notification_id = notification_of[digest.pk]
                digest.status = DigestStatus.SENDING
                digest.message_id = make_msgid()
            cursor.execute(
                _CLAIM_DIGESTS,
                {
                    "tenant": tenant.pk,
                    "status": DigestStatus.SENDING.value,
                    "rows": json.dumps(
                        [
                            {
                                "id": digest.pk,
                                "notification": digest.notification_id,
                                "message_id": digest.message_id,
                            }
                            for digest in digests
                        ]
                    ),
                },
            )
    return claimed


def _claim(tenant: Tenant, digest_id: int) -> tuple[Digest, dict[str, Any]] | None:
    """Claim one pending digest and commit (see :func:`_claim_batch`)."""
    claimed = _claim_batch(tenant, [digest_id])
    return claimed[0] if claimed else None


def deliver(
    *,
    subject: str,
    text: str,
    html: str,
    address: str,
    message_id: str,
    language: str,
    connection: Any,
) -> str:
    """Send one mail (plain text and HTML) through Django's mail backend; the error
    summary, or '' when the server took it."""
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"Message-ID": message_id, "Content-Language": language},
        connection=connection,
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send(fail_silently=False)
    except Exception as error:  # noqa: BLE001 - a refused address or a dead server
        logger.warning("mail %s failed: %r", message_id, error)
        return f"{type(error).__name__}: {error}"[:500]
    return ""


def _mail(digest: Digest, shown: dict[str, Any], connection: Any) -> str:
    """Send the digest's mail; the error summary or ''."""
    member: Membership = shown["member"]
    address = member.user.email
    if not member.email_notifications or not address:
        return ""
    return deliver(
        subject=shown["subject"],
        text=shown["text"],
        html=shown["html"],
        address=address,
        message_id=digest.message_id,
        language=member.language,
        connection=connection,
    )


def pending_count(local_date: date) -> int:
    """The digests of ``local_date`` still to send (inside the tenant's scope)."""
    return Digest.objects.filter(
        kind=MORNING, local_date=local_date, status=DigestStatus.PENDING
    ).count()


#: Digests claimed (and committed) together before their mails leave: a crash after a
#: claim loses at most this many mails, never doubles one; two commits per batch instead
#: of two per digest.
BATCH = 25


def send_pending(
    tenant: Tenant,
    local_date: date,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Send the tenant's pending digests of ``local_date``.

    Called outside any transaction: each batch's claim and its outcomes are committed
    tenant-scoped transactions of their own, and the mails leave between them."""
    if transaction.get_connection().in_atomic_block:
        raise RuntimeError("send_pending commits per batch: call it outside a transaction")
    with tenant_scope(tenant):
        ids = list(
            Digest.objects.filter(kind=MORNING, local_date=local_date, status=DigestStatus.PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    connection = get_connection()
    done = 0
    for first in range(0, len(ids), BATCH):
        batch = ids[first : first + BATCH]
        claimed = _claim_batch(tenant, batch)
        counts["skipped"] += len(batch) - len(claimed)
        failed: list[tuple[int, str]] = []
        sent: list[int] = []
        for digest, shown in claimed:
            error = _mail(digest, shown, connection)
            if error:
                failed.append((digest.pk, error))
            else:
                sent.append(digest.pk)
        with tenant_scope(tenant):
            moment = timezone.now()
            Digest.objects.filter(pk__in=sent).update(status=DigestStatus.SENT, sent_at=moment)
            for pk, error in failed:
                Digest.objects.filter(pk=pk).update(
                    status=DigestStatus.FAILED, error=error, sent_at=moment
                )
        counts["sent"] += len(sent)
        counts["failed"] += len(failed)
        done += len(batch)
        if progress:
            progress(done, len(ids))
    return counts


class Listed(list[Item]):
    """A member's items of one section, the first ones of ``total`` (the rest are left in
    the database: a rep with 150 overdue follow-ups costs 20 rows, not 150)."""

    total: int = 0


def first_per_member(queryset: QuerySet[Any], owner_field: str, *order: str) -> QuerySet[Any]:
    """The first ``MAX_ITEMS`` rows of each owner in ``order``, each with ``_total``, the
    owner's count of rows: one query, a window function per owner."""
    ordering = [F(name[1:]).desc() if name.startswith("-") else F(name).asc() for name in order]
    return queryset.annotate(
        _position=Window(RowNumber(), partition_by=[F(owner_field)], order_by=ordering),
        _total=Window(Count("pk"), partition_by=[F(owner_field)]),
    ).filter(_position__lte=MAX_ITEMS)


def grouped_with_totals(rows: Iterable[tuple[int, int, Item]]) -> dict[int, list[Item]]:
    """Group ``(member_id, total, item)`` rows of :func:`first_per_member`."""
    grouped: dict[int, Listed] = {}
    for member_id, total, item in rows:
        listed = grouped.get(member_id)
        if listed is None:
            listed = grouped[member_id] = Listed()
            listed.total = total
        listed.append(item)
    return dict(grouped)


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
    rows = first_per_member(
        Activity.objects.filter(owner_id__in=_ids(members), done_at__isnull=True, due_at__lt=start),
        "owner_id",
        "due_at",
        "pk",
    ).values_list("owner_id", "_total", "pk", "subject", "due_at")
    return grouped_with_totals(
        (
            owner,
            total,
            {
                "kind": "activity",
                "id": pk,
                "path": f"/api/v1/activities/{pk}/",
                "title": subject,
                "due_at": _iso(due),
                "due_date": tenant_now(tenant, due).date().isoformat() if due else None,
            },
        )
        for owner, total, pk, subject, due in rows
    )


def collect_due_today(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """Open follow-ups due during the day."""
    start, end = _day_bounds(tenant, local_date)
    rows = first_per_member(
        Activity.objects.filter(
            owner_id__in=_ids(members), done_at__isnull=True, due_at__gte=start, due_at__lt=end
        ),
        "owner_id",
        "due_at",
        "pk",
    ).values_list("owner_id", "_total", "pk", "subject", "due_at")
    return grouped_with_totals(
        (
            owner,
            total,
            {
                "kind": "activity",
                "id": pk,
                "path": f"/api/v1/activities/{pk}/",
                "title": subject,
                "due_at": _iso(due),
            },
        )
        for owner, total, pk, subject, due in rows
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
