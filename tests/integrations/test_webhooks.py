"""Webhooks (SPEC section 11): the outbox, the payloads, signing, the guard against
private addresses, one attempt against a real HTTP server, the API and the admin."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from crm import services as crm_services
from crm.models import Notification, StageKind
from integrations.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from integrations.webhooks import addresses, services
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations import webhook_builders
from tests.integrations.receiver import receiving

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Membership], APIClient]
ALL_EVENTS = list(WebhookEvent.values)


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    """The test's receiver listens on 127.0.0.1: allowed by the deployment's setting."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


def _endpoint(tree: TenantTree, event_types: list[str] | None = None, url: str = "") -> Any:
    return webhook_builders.endpoint(
        tree, url=url or webhook_builders.PUBLIC_URL, event_types=event_types or ALL_EVENTS
    )


def _attempt(delivery: WebhookDelivery) -> dict[str, int]:
    """What the worker's task body does, in the test's transaction."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )
    return services.delivery_attempt(tenant_id=delivery.tenant_id, delivery_id=delivery.pk)


# --- the outbox ----------------------------------------------------------------------


def test_a_rolled_back_change_leaves_no_outbox_row(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        _endpoint(tree_a)
        with pytest.raises(RuntimeError), transaction.atomic():
            records.opportunity(tree_a)
            assert WebhookDelivery.objects.count() == 1  # written in the change's transaction
            raise RuntimeError("the change fails after the event")
        assert WebhookDelivery.objects.count() == 0


def test_a_committed_change_leaves_one_row_per_subscribed_endpoint(
    tree_a: TenantTree, tree_b: TenantTree, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_scope(tree_a.tenant):
        first = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_CREATED])
        second = _endpoint(
            tree_a, [WebhookEvent.OPPORTUNITY_CREATED, WebhookEvent.PAYMENT_RECEIVED]
        )
        _endpoint(tree_a, [WebhookEvent.PAYMENT_RECEIVED])  # not subscribed
        off = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_CREATED])
        services.endpoint_update(member=tree_a.members["admin"], endpoint=off, is_active=False)
    with tenant_scope(tree_b.tenant):
        _endpoint(tree_b, [WebhookEvent.OPPORTUNITY_CREATED])  # another tenant's
    with django_capture_on_commit_callbacks() as callbacks, tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a)
    with tenant_scope(tree_a.tenant):
        rows = list(WebhookDelivery.objects.order_by("endpoint_id"))
    assert [row.endpoint_id for row in rows] == [first.pk, second.pk]
    assert {row.event_type for row in rows} == {"opportunity.created"}
    assert rows[0].message_id == rows[1].message_id  # one message, two endpoints
    assert rows[0].payload["data"]["id"] == deal.pk
    assert len(callbacks) == 2  # each delivery's task goes out once the change commits
    with tenant_scope(tree_b.tenant):
        assert WebhookDelivery.objects.count() == 0


def test_without_endpoints_a_change_costs_one_query_and_writes_nothing(
    tree_a: TenantTree, django_assert_num_queries: Any
) -> None:
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a)
        with django_assert_num_queries(1):
            services.outbox_write(
                tenant_id=tree_a.tenant.pk,
                events=[("opportunity.created", lambda: {"never": "built"})],
                occurred_at=None,
            )
        assert WebhookDelivery.objects.count() == 0
        assert deal.pk


def _payloads(tree: TenantTree) -> dict[str, dict[str, Any]]:
    return {
        row.event_type: row.payload for row in WebhookDelivery.objects.order_by("created_at", "id")
    }


def test_the_deal_and_payment_events_carry_their_documented_payload(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        _endpoint(tree_a)
        payment = records.received_payment(tree_a)
        crm_services.payment_reverse(member=tree_a.members["admin"], payment=payment)
        payloads = _payloads(tree_a)
        deal = payment.opportunity
    assert set(payloads) == {
        "opportunity.created",
        "opportunity.stage_changed",
        "opportunity.won",
        "payment.received",
        "payment.reversed",
    }
    won = payloads["opportunity.won"]
    assert won["type"] == "opportunity.won"
    assert won["timestamp"].endswith("+00:00")
    assert won["data"]["id"] == deal.pk
    assert won["data"]["amount"] == "120000.00"  # money as a string, the tenant's currency
    assert won["data"]["currency"] == tree_a.tenant.currency
    assert won["data"]["stage_kind"] == StageKind.WON
    assert won["data"]["closed_date"] is not None
    changed = payloads["opportunity.stage_changed"]["data"]
    assert changed["from_stage_id"] != changed["stage_id"]
    assert changed["changed_by_id"] == deal.owner_id
    assert payloads["payment.received"]["data"]["amount"] == "50000.00"
    reversed_ = payloads["payment.reversed"]["data"]
    assert reversed_["amount"] == "-50000.00" and reversed_["reverses_id"] == payment.pk


def test_a_lost_deal_and_a_planned_payment_received_later(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a)
        won = records.won_opportunity(tree_a)
        planned, _created = crm_services.payment_record(
            member=tree_a.members["admin"],
            opportunity=won,
            amount=Decimal("10.5"),
            planned_date=timezone.now().date() + timedelta(days=10),
        )
        _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_LOST, WebhookEvent.PAYMENT_RECEIVED])
        assert WebhookDelivery.objects.count() == 0  # planned: not received
        crm_services.opportunity_move(
            member=deal.owner,
            opportunity=deal,
            stage=records.stage(StageKind.LOST),
            lost_reason="Price",
        )
        crm_services.payment_receive(member=tree_a.members["admin"], payment=planned)
        payloads = _payloads(tree_a)
    assert payloads["opportunity.lost"]["data"]["lost_reason"] == "Price"
    assert payloads["payment.received"]["data"]["id"] == planned.pk
    assert payloads["payment.received"]["data"]["amount"] == "10.50"  # the currency's 2 places


def test_a_visit_check_in_is_an_event_and_its_check_out_is_not(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a)
        _endpoint(tree_a, [WebhookEvent.VISIT_CHECKED_IN])
        lat, lng = records.SHANGHAI
        crm_services.visit_check_in(
            member=visit.rep, visit=visit, latitude=lat, longitude=lng, accuracy_m=Decimal(10)
        )
        crm_services.visit_check_out(member=visit.rep, visit=visit)
        rows = list(WebhookDelivery.objects.all())
    assert [row.event_type for row in rows] == ["visit.checked_in"]
    data = rows[0].payload["data"]
    assert data["id"] == visit.pk and data["rep_id"] == visit.rep_id
    assert data["latitude"] == str(lat) and data["check_in_at"]


def test_target_adjusted_alert_opened_and_statement_approved_are_events(
    tree_a: TenantTree,
) -> None:
    from funnel.models import Alert
    from funnel.warnings import evaluate_warnings
    from incentives import commissions
    from tests.incentives import builders as incentive_builders

    with tenant_scope(tree_a.tenant):
        _endpoint(
            tree_a,
            [
                WebhookEvent.TARGET_ADJUSTED,
                WebhookEvent.ALERT_OPENED,
                WebhookEvent.STATEMENT_APPROVED,
            ],
        )
        adjustment = records.adjustment(tree_a)
        records.activity(tree_a)  # a follow-up overdue since yesterday
        evaluate_warnings(tenant_id=tree_a.tenant.pk)
        opened = list(Alert.objects.order_by("pk").values_list("pk", flat=True))
        statement = incentive_builders.commission_statement(tree_a)
        commissions.statement_approve(actor=tree_a.members["admin"], statement_id=statement.pk)
        rows = list(WebhookDelivery.objects.order_by("id"))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_type.setdefault(row.event_type, []).append(row.payload["data"])
    adjusted = by_type["target.adjusted"][0]
    assert adjusted["adjustment_id"] == adjustment.pk
    assert adjusted["target_id"] == adjustment.target_id
    assert adjusted["new_value"] == "90000.00"
    assert opened and [alert["id"] for alert in by_type["alert.opened"]] == opened
    approved = by_type["statement.approved"][0]
    assert (
        approved["id"] == statement.pk and approved["approved_by_id"] == tree_a.members["admin"].pk
    )
    assert isinstance(approved["total"], str)
    # Evaluating again opens nothing new: no second alert event.
    with tenant_scope(tree_a.tenant):
        evaluate_warnings(tenant_id=tree_a.tenant.pk)
        assert WebhookDelivery.objects.filter(event_type="alert.opened").count() == len(opened)


# --- signing --------------------------------------------------------------------------


def test_the_signature_verifies_with_the_library_and_both_secrets_sign_during_a_rotation(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        endpoint, secret = services.endpoint_create(
            member=tree_a.members["admin"],
            url=webhook_builders.PUBLIC_URL,
            event_types=[WebhookEvent.OPPORTUNITY_WON],
        )
        assert secret.startswith("whsec_")
        body = b'{"type":"ping"}'
        now = timezone.now()
        headers = services.signature_headers(endpoint, "msg_1", now, body)
        assert Webhook(secret).verify(body, headers) == {"type": "ping"}
        assert headers["webhook-signature"].startswith("v1,")
        rotated, new_secret = services.endpoint_rotate_secret(
            member=tree_a.members["admin"], endpoint=endpoint
        )
        assert new_secret != secret and rotated.secret == new_secret
        headers = services.signature_headers(rotated, "msg_2", now, body)
        assert len(headers["webhook-signature"].split(" ")) == 2
        Webhook(secret).verify(body, headers)  # the old secret still verifies
        Webhook(new_secret).verify(body, headers)
        # After the overlap only the new secret signs.
        expires = rotated.previous_secret_expires_at
        assert expires is not None
        later = expires + timedelta(seconds=1)
        late_headers = services.signature_headers(rotated, "msg_3", later, body)
        assert len(late_headers["webhook-signature"].split(" ")) == 1
        assert timedelta(hours=24) <= expires - now < timedelta(hours=24, seconds=5)
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret).verify(body + b" ", headers)


# --- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://172.16.5.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://224.0.0.1/hook",
        "https://240.0.0.1/hook",
        "https://0.0.0.0/hook",
        "https://100.64.0.1/hook",
        "https://localhost/hook",
    ],
)
def test_private_loopback_link_local_multicast_and_reserved_addresses_are_refused(
    url: str, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.WEBHOOKS_ALLOWED_NETWORKS = []
    with pytest.raises(addresses.AddressRefused):
        addresses.resolve(url)


def test_the_setting_or_an_allowed_network_lets_a_private_address_through(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    settings.WEBHOOKS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert addresses.resolve("https://10.1.2.3:8443/h?x=1").addresses == ("10.1.2.3",)
    with pytest.raises(addresses.AddressRefused):
        addresses.resolve("https://10.2.0.1/h")
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    assert addresses.resolve("http://127.0.0.1:9/h").path == "/h"


def test_plain_http_is_refused_in_production_unless_allowed(settings: Any) -> None:
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(addresses.AddressRefused, match="https"):
        addresses.resolve("http://93.184.216.34/hook")
    assert addresses.resolve("https://93.184.216.34/hook").addresses == ("93.184.216.34",)


# --- one attempt, against a real HTTP server --------------------------------------------


def test_a_delivery_reaches_a_real_server_signed_and_is_recorded(
    tree_a: TenantTree, loopback_allowed: None
) -> None:
    with receiving(status=200) as receiver, tenant_scope(tree_a.tenant):
        endpoint, secret = services.endpoint_create(
            member=tree_a.members["admin"],
            url=receiver.url,
            event_types=[WebhookEvent.OPPORTUNITY_WON],
        )
        records.won_opportunity(tree_a)
        delivery = WebhookDelivery.objects.get()
        assert _attempt(delivery) == {"delivered": 1}
        (request,) = receiver.requests
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "opportunity.won"
        assert request.headers["webhook-id"] == delivery.message_id
        assert request.path == "/hooks/crm"
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempt_count == 1
        attempt = WebhookAttempt.objects.get()
        assert attempt.response_code == 200 and attempt.error == ""
        assert attempt.duration_ms >= 0 and attempt.next_attempt_at is None
        # Done: a late duplicate message sends nothing.
        assert services.delivery_attempt(tenant_id=tree_a.tenant.pk, delivery_id=delivery.pk) == {
            "skipped": 1
        }
        assert len(receiver.requests) == 1
        assert endpoint.pk


def test_a_redirect_is_a_failure_and_is_not_followed(
    tree_a: TenantTree, loopback_allowed: None
) -> None:
    with receiving(status=204) as target, receiving(status=302) as receiver:
        receiver.location = target.url
        with tenant_scope(tree_a.tenant):
            endpoint = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_WON], url=receiver.url)
            delivery = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
            assert _attempt(delivery) == {"pending": 1}
            delivery.refresh_from_db()
    assert target.requests == []
    assert delivery.last_response_code == 302 and "Redirect" in delivery.last_error
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at > timezone.now()


def test_a_receiver_that_hangs_times_out_and_the_failure_is_retried(
    tree_a: TenantTree, loopback_allowed: None, settings: Any
) -> None:
    assert django_settings.WEBHOOKS_TIMEOUT_SECONDS == 10  # the configured default
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    with receiving(status=200, delay=3) as receiver, tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_WON], url=receiver.url)
        delivery = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
        assert _attempt(delivery) == {"pending": 1}
        attempt = WebhookAttempt.objects.get()
    assert attempt.response_code is None and attempt.error.startswith("Timeout")
    assert 400 <= attempt.duration_ms < 2500
    assert attempt.next_attempt_at is not None


def test_a_410_disables_the_endpoint_and_tells_the_admins_in_app_and_by_mail(
    tree_a: TenantTree, loopback_allowed: None, django_capture_on_commit_callbacks: Any
) -> None:
    with receiving(status=410) as receiver:
        with tenant_scope(tree_a.tenant):
            endpoint = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_WON], url=receiver.url)
            first = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
            second = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
        with django_capture_on_commit_callbacks(execute=True), tenant_scope(tree_a.tenant):
            WebhookDelivery.objects.filter(pk=second.pk).update(
                next_attempt_at=timezone.now() + timedelta(hours=1)
            )
            assert _attempt(first) == {"failed": 1}
    with tenant_scope(tree_a.tenant):
        endpoint.refresh_from_db()
        assert not endpoint.is_active and "410" in endpoint.disabled_reason
        second.refresh_from_db()
        assert second.status == DeliveryStatus.FAILED  # its other deliveries stop too
        notes = list(Notification.objects.filter(kind="webhook_disabled"))
    assert [note.recipient_id for note in notes] == [tree_a.members["admin"].pk]
    assert len(mail.outbox) == 1 and receiver.url in mail.outbox[0].subject
    assert mail.outbox[0].to == [tree_a.members["admin"].user.email]


def test_three_days_of_failures_disable_the_endpoint(
    tree_a: TenantTree, loopback_allowed: None
) -> None:
    with receiving(status=500) as receiver, tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_WON], url=receiver.url)
        delivery = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
        assert _attempt(delivery) == {"pending": 1}
        endpoint.refresh_from_db()
        assert endpoint.failing_since is not None and endpoint.is_active
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            failing_since=timezone.now() - timedelta(days=3, minutes=1)
        )
        assert _attempt(delivery) == {"failed": 1}
        endpoint.refresh_from_db()
        assert not endpoint.is_active and endpoint.disabled_reason
        assert Notification.objects.filter(kind="webhook_disabled").count() == 1


def test_a_success_ends_the_failure_streak(tree_a: TenantTree, loopback_allowed: None) -> None:
    with receiving(status=503) as receiver, tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_WON], url=receiver.url)
        delivery = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
        _attempt(delivery)
        receiver.status = 202
        assert _attempt(delivery) == {"delivered": 1}
        endpoint.refresh_from_db()
        assert endpoint.failing_since is None
        assert list(WebhookAttempt.objects.values_list("number", "response_code")) == [
            (1, 503),
            (2, 202),
        ]


def test_an_address_that_turns_private_is_refused_at_delivery(
    tree_a: TenantTree, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    with receiving(status=200) as receiver, tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a, [WebhookEvent.OPPORTUNITY_WON], url=receiver.url)
        delivery = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
        # The deployment stops allowing it (or the name now resolves to a private address).
        settings.WEBHOOKS_ALLOW_PRIVATE = False
        settings.DEBUG = True  # plain http stays allowed: the address is what is refused
        assert _attempt(delivery) == {"pending": 1}
        delivery.refresh_from_db()
    assert receiver.requests == []
    assert "127.0.0.1" in delivery.last_error and delivery.last_response_code is None


# --- the API --------------------------------------------------------------------------


def test_an_admin_creates_an_endpoint_and_sees_its_secret_once(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    client = client_for(tree_a.members["admin"])
    response = client.post(
        "/api/v1/webhook-endpoints/",
        {
            "url": webhook_builders.PUBLIC_URL,
            "event_types": ["opportunity.won", "payment.received"],
            "description": "ERP",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["secret"].startswith("whsec_")
    endpoint_id = body["endpoint"]["id"]
    shown = client.get(f"/api/v1/webhook-endpoints/{endpoint_id}/").json()
    assert "secret" not in shown and shown["event_types"] == ["opportunity.won", "payment.received"]
    assert body["secret"] not in json.dumps(client.get("/api/v1/webhook-endpoints/").json())
    rotated = client.post(f"/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret/")
    assert rotated.status_code == 200
    assert (
        rotated.json()["secret"].startswith("whsec_") and rotated.json()["secret"] != body["secret"]
    )
    assert rotated.json()["endpoint"]["secret_rotating_until"] is not None
    changed = client.patch(
        f"/api/v1/webhook-endpoints/{endpoint_id}/", {"is_active": False}, format="json"
    )
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert client.delete(f"/api/v1/webhook-endpoints/{endpoint_id}/").status_code == 204


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "https://127.0.0.1/h", "event_types": ["opportunity.won"]}, "url"),
        ({"url": "https://169.254.169.254/", "event_types": ["opportunity.won"]}, "url"),
        ({"url": "http://93.184.216.34/h", "event_types": ["opportunity.won"]}, "url"),
        ({"url": "not a url", "event_types": ["opportunity.won"]}, "url"),
        ({"url": webhook_builders.PUBLIC_URL, "event_types": []}, "event_types"),
        ({"url": webhook_builders.PUBLIC_URL, "event_types": ["deal.eaten"]}, "event_types"),
        ({"url": webhook_builders.PUBLIC_URL}, "event_types"),
    ],
)
def test_bad_endpoints_are_a_400_naming_the_field_and_nothing_is_written(
    payload: dict[str, Any], field: str, tree_a: TenantTree, client_for: ClientFor, settings: Any
) -> None:
    settings.DEBUG = False
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    response = client_for(tree_a.members["admin"]).post(
        "/api/v1/webhook-endpoints/", payload, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in json.dumps(response.json())
    with tenant_scope(tree_a.tenant):
        assert not WebhookEndpoint.objects.exists()


def test_a_private_url_is_refused_on_update_too(tree_a: TenantTree, client_for: ClientFor) -> None:
    with tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a)
    response = client_for(tree_a.members["admin"]).patch(
        f"/api/v1/webhook-endpoints/{endpoint.pk}/", {"url": "https://10.0.0.1/x"}, format="json"
    )
    assert response.status_code == 400 and "url" in json.dumps(response.json())
    with tenant_scope(tree_a.tenant):
        endpoint.refresh_from_db()
    assert endpoint.url == webhook_builders.PUBLIC_URL


@pytest.mark.parametrize("role", ["manager", "rep"])
def test_reps_and_managers_cannot_manage_endpoints_or_read_deliveries(
    role: str, tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        delivery = webhook_builders.delivery(tree_a)
    client = client_for(tree_a.members[role])
    endpoint_url = f"/api/v1/webhook-endpoints/{delivery.endpoint_id}/"
    assert client.get("/api/v1/webhook-endpoints/").status_code == 403
    assert client.get(endpoint_url).status_code == 403
    assert (
        client.post(
            "/api/v1/webhook-endpoints/",
            {"url": webhook_builders.PUBLIC_URL, "event_types": ["opportunity.won"]},
            format="json",
        ).status_code
        == 403
    )
    assert client.post(endpoint_url + "rotate-secret/").status_code == 403
    assert client.post(endpoint_url + "test/").status_code == 403
    assert client.delete(endpoint_url).status_code == 403
    assert client.get("/api/v1/webhook-deliveries/").status_code == 403
    assert client.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry/").status_code == 403
    with tenant_scope(tree_a.tenant):
        assert WebhookEndpoint.objects.count() == 1
        assert WebhookDelivery.objects.count() == 1


def test_another_tenants_endpoint_and_delivery_ids_are_404(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        delivery = webhook_builders.delivery(tree_a)
    intruder = client_for(tree_b.members["admin"])
    endpoint_url = f"/api/v1/webhook-endpoints/{delivery.endpoint_id}/"
    assert intruder.get(endpoint_url).status_code == 404
    assert intruder.patch(endpoint_url, {"is_active": False}, format="json").status_code == 404
    assert intruder.post(endpoint_url + "rotate-secret/").status_code == 404
    assert intruder.post(endpoint_url + "test/").status_code == 404
    assert intruder.delete(endpoint_url).status_code == 404
    assert intruder.get(f"/api/v1/webhook-deliveries/{delivery.pk}/").status_code == 404
    assert intruder.post(f"/api/v1/webhook-deliveries/{delivery.pk}/retry/").status_code == 404
    filtered = intruder.get("/api/v1/webhook-deliveries/", {"endpoint": delivery.endpoint_id})
    assert filtered.status_code in {400, 404} or filtered.json()["results"] == []
    with tenant_scope(tree_a.tenant):
        assert WebhookEndpoint.objects.get().is_active


def test_the_test_action_sends_a_ping_and_retry_sends_a_delivery_again(
    tree_a: TenantTree, client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    with tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a)
    client = client_for(tree_a.members["admin"])
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/test/")
    assert response.status_code == 202
    ping = response.json()
    assert ping["event_type"] == "ping" and ping["status"] == "pending"
    assert ping["payload"]["data"]["endpoint_id"] == endpoint.pk
    assert len(callbacks) == 1
    with tenant_scope(tree_a.tenant):
        WebhookDelivery.objects.filter(pk=ping["id"]).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None
        )
    with django_capture_on_commit_callbacks() as callbacks:
        again = client.post(f"/api/v1/webhook-deliveries/{ping['id']}/retry/")
    assert again.status_code == 202
    assert again.json()["status"] == "pending" and again.json()["message_id"] == ping["message_id"]
    assert len(callbacks) == 1
    client.patch(f"/api/v1/webhook-endpoints/{endpoint.pk}/", {"is_active": False}, format="json")
    assert client.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/test/").status_code == 409
    assert client.post(f"/api/v1/webhook-deliveries/{ping['id']}/retry/").status_code == 409


def _deliveries_with_attempts(tree: TenantTree, count: int) -> None:
    with tenant_scope(tree.tenant):
        endpoint = _endpoint(tree)
        for _ in range(count):
            delivery = services.endpoint_test(member=tree.members["admin"], endpoint=endpoint)
            for number in (1, 2):
                WebhookAttempt.objects.create(
                    tenant=tree.tenant, delivery=delivery, number=number, response_code=500
                )


@pytest.mark.parametrize("count", [2, 12])
def test_the_lists_take_a_fixed_number_of_queries(
    count: int, tree_a: TenantTree, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    _deliveries_with_attempts(tree_a, count)
    with tenant_scope(tree_a.tenant):
        for _ in range(count):
            _endpoint(tree_a)
    client = client_for(tree_a.members["admin"])
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/webhook-deliveries/", {"page_size": 50})
    assert response.status_code == 200 and len(response.json()["results"]) == count
    assert len(response.json()["results"][0]["attempts"]) == 2
    with django_assert_max_num_queries(7):
        response = client.get("/api/v1/webhook-endpoints/", {"page_size": 50})
    assert response.status_code == 200 and len(response.json()["results"]) == count + 1
    with django_assert_max_num_queries(8):
        response = client.get(
            "/api/v1/webhook-deliveries/", {"status": "pending", "event_type": "ping"}
        )
    assert response.status_code == 200 and len(response.json()["results"]) == count


# --- the admin ------------------------------------------------------------------------


def test_the_admin_lists_endpoints_and_deliveries_and_sends_again_through_the_services(
    tree_a: TenantTree, tree_b: TenantTree, client: Any, django_assert_max_num_queries: Any
) -> None:
    _deliveries_with_attempts(tree_a, 3)
    _deliveries_with_attempts(tree_b, 1)
    admin_user = tree_a.members["admin"].user
    client.force_login(admin_user)
    with django_assert_max_num_queries(20):
        page = client.get("/admin/integrations/webhookdelivery/")
    assert page.status_code == 200
    with tenant_scope(tree_a.tenant):
        ids = list(WebhookDelivery.objects.values_list("pk", flat=True))
        WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    with tenant_scope(tree_b.tenant):
        other = WebhookDelivery.objects.get()
    assert page.content.count(b"/change/") >= len(ids)
    assert client.get(f"/admin/integrations/webhookdelivery/{other.pk}/change/").status_code in {
        302,
        404,
    }
    response = client.post(
        "/admin/integrations/webhookdelivery/",
        {"action": "send_again", "_selected_action": [*ids, other.pk]},
    )
    assert response.status_code == 302
    with tenant_scope(tree_a.tenant):
        assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"pending"}
    with tenant_scope(tree_b.tenant):
        assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING  # untouched
    assert client.get("/admin/integrations/webhookendpoint/").status_code == 200


def test_the_admin_refuses_a_private_url_and_shows_the_secret_once(
    tree_a: TenantTree, client: Any, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    client.force_login(tree_a.members["admin"].user)
    refused = client.post(
        "/admin/integrations/webhookendpoint/add/",
        {"url": "https://192.168.1.1/x", "event_types": ["opportunity.won"], "is_active": "on"},
    )
    assert refused.status_code == 200 and b"192.168.1.1" in refused.content
    created = client.post(
        "/admin/integrations/webhookendpoint/add/",
        {"url": webhook_builders.PUBLIC_URL, "event_types": ["opportunity.won"], "is_active": "on"},
        follow=True,
    )
    assert created.status_code == 200 and b"whsec_" in created.content
    with tenant_scope(tree_a.tenant):
        endpoint = WebhookEndpoint.objects.get()
    assert endpoint.created_by_id == tree_a.members["admin"].pk


def test_a_rep_has_no_webhook_admin(tree_a: TenantTree, client: Any) -> None:
    client.force_login(tree_a.members["rep"].user)
    assert client.get("/admin/integrations/webhookendpoint/").status_code == 403
    assert client.get("/admin/integrations/webhookdelivery/").status_code == 403


def test_the_admin_rotates_the_secret_and_sends_a_test_through_the_services(
    tree_a: TenantTree, tree_b: TenantTree, client: Any
) -> None:
    with tenant_scope(tree_a.tenant):
        endpoint = _endpoint(tree_a)
        old_secret = endpoint.secret
    with tenant_scope(tree_b.tenant):
        other = _endpoint(tree_b)
        other_secret = other.secret
    client.force_login(tree_a.members["admin"].user)
    rotated = client.post(
        "/admin/integrations/webhookendpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk, other.pk]},
        follow=True,
    )
    assert rotated.status_code == 200 and b"whsec_" in rotated.content
    tested = client.post(
        "/admin/integrations/webhookendpoint/",
        {"action": "send_test", "_selected_action": [endpoint.pk, other.pk]},
    )
    assert tested.status_code == 302
    with tenant_scope(tree_a.tenant):
        endpoint.refresh_from_db()
        assert endpoint.secret != old_secret and endpoint.previous_secret == old_secret
        assert list(WebhookDelivery.objects.values_list("event_type", flat=True)) == ["ping"]
    with tenant_scope(tree_b.tenant):
        other.refresh_from_db()
        assert other.secret == other_secret  # another tenant's endpoint is untouched
        assert not WebhookDelivery.objects.exists()
