"""The integrations' tables, one module per capability (imports, webhooks)."""

from integrations.models.imports import (
    ImportJob,
    ImportKind,
    ImportProgress,
    ImportRow,
    ImportStatus,
    RowOutcome,
)
from integrations.models.webhooks import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "DeliveryStatus",
    "ImportJob",
    "ImportKind",
    "ImportProgress",
    "ImportRow",
    "ImportStatus",
    "RowOutcome",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
