"""Builders of webhook rows for tests, through the services (inside a tenant scope)."""

from __future__ import annotations

from integrations.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from integrations.webhooks import services
from tests.factories import TenantTree

# A public address literal: no DNS lookup, and never called (nothing is delivered in
# tests that do not run on_commit callbacks or a worker).
PUBLIC_URL = "https://93.184.216.34/hooks/crm"


def endpoint(
    tree: TenantTree, url: str = PUBLIC_URL, event_types: list[str] | None = None
) -> WebhookEndpoint:
    created, _secret = services.endpoint_create(
        member=tree.members["admin"],
        url=url,
        event_types=event_types or [WebhookEvent.OPPORTUNITY_WON],
        description="probe",
    )
    return created


def delivery(tree: TenantTree) -> WebhookDelivery:
    return services.endpoint_test(member=tree.members["admin"], endpoint=endpoint(tree))
