"""Signals the apps above hook into (tenancy imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent by ``tenancy.services.tenant_create`` inside the new tenant's scope, with
#: ``tenant``: the apps above add their defaults (``crm``: the default pipeline).
#: Receivers must be idempotent: ``tenant_create`` may run again for the same tenant.
tenant_created = Signal()
