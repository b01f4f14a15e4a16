"""Signals of the funnel app, for the apps above it (integrations' webhooks).

``alerts_opened`` is sent inside the transaction of a warnings evaluation with
``tenant_id`` and ``alert_ids`` (the alerts it opened or reopened), once per rule that
opened any. ``funnel`` names no receiver: the apps connect theirs in ``AppConfig.ready()``.
"""

from django.dispatch import Signal

alerts_opened = Signal()
