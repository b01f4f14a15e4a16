"""Signals other apps hook into (crm imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent by ``manage.py seed_demo`` after the demo tenant and its CRM history exist, with
#: ``tenant`` and ``stdout`` (for progress lines). Receivers run outside a tenant scope and
#: must be idempotent: the command may run again on the same data.
demo_seeded = Signal()
