"""The tenant's calendar (SPEC preamble): "today" is the tenant's local date.

Every default date (closed, received, effective from, start date, ``as_of``) comes
from :func:`tenant_today`; never ``date.today()`` or ``timezone.localdate()``, which
give the server's date (``tests/tenancy/test_layout.py`` fails on them in app code).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from django.utils import timezone


class HasTimeZone(Protocol):
    time_zone: str


def tenant_zone(tenant: HasTimeZone) -> ZoneInfo:
    return ZoneInfo(tenant.time_zone)


def tenant_now(tenant: HasTimeZone, now: datetime | None = None) -> datetime:
    """The current moment (or ``now``) in the tenant's time zone."""
    return (now or timezone.now()).astimezone(tenant_zone(tenant))


def tenant_today(tenant: HasTimeZone, now: datetime | None = None) -> date:
    """The tenant's local date at ``now`` (default: this moment)."""
    return tenant_now(tenant, now).date()
