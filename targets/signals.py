"""Signals of the targets app, for the apps above it (integrations' webhooks).

``target_adjusted`` is sent inside the transaction that applies an adjustment (at once
on a published plan, or when it is approved on a locked one), with ``adjustment`` (the
applied ``TargetAdjustment``) and ``member`` (who applied it). ``targets`` names no
receiver: the apps connect theirs in ``AppConfig.ready()``.
"""

from django.dispatch import Signal

target_adjusted = Signal()
