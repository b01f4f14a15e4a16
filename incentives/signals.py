"""Signals of the incentives app, for the apps above it (integrations' webhooks).

``statement_approved`` is sent inside the transaction that approves a commission
statement, with ``statement`` (approved, read again) and ``member`` (the approver).
``incentives`` names no receiver: the apps connect theirs in ``AppConfig.ready()``.
"""

from django.dispatch import Signal

statement_approved = Signal()
