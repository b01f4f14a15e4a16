"""Domain events of the CRM records: a hook for the apps above ``crm``.

``record_event`` is sent inside the transaction that changes a record, by the services
(``crm.services``) and, for rows created without a service of their own (the generic
offline-sync create, the admin, a payment's reversal row), by the ``post_save`` bridge
below: so the API, the admin and imports behave alike. Receivers (incentives' points)
run in that transaction: what they write commits, or rolls back, with the event.

Arguments: ``kind`` (``created``, ``updated``, ``moved``, ``deleted``), ``member`` (who
acted, or None), ``source`` (the record), ``occurred_at`` (when) and ``fields`` (for
``updated``, the names of the fields the update set, e.g. ``check_in_at``; else empty).

``crm`` names no receiver: the apps connect theirs in ``AppConfig.ready()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models.signals import post_save
from django.dispatch import Signal
from django.utils import timezone

from crm.models import Activity, Lead, Opportunity, Payment, Visit
from tenancy.models import Membership

record_event = Signal()

# Records whose creation is an event (a lead created, a deal created, a payment received
# or reversed, a follow-up logged as done).
_CREATED_EVENTS = (Lead, Opportunity, Payment, Activity, Visit)


def emit(
    kind: str,
    *,
    source: Any,
    member: Membership | None = None,
    occurred_at: datetime | None = None,
    fields: Iterable[str] = (),
) -> None:
    """Tell the receivers that ``source`` was ``kind`` (created, updated, moved, deleted)."""
    record_event.send(
        sender=type(source),
        kind=kind,
        member=member,
        source=source,
        occurred_at=occurred_at or timezone.now(),
        fields=frozenset(fields),
    )


def _created(sender: type[Any], instance: Any, created: bool, raw: bool, **kwargs: Any) -> None:
    if created and not raw:
        emit("created", source=instance)


for _model in _CREATED_EVENTS:
    post_save.connect(_created, sender=_model, dispatch_uid=f"crm.events.created.{_model.__name__}")
