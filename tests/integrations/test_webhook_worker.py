"""Webhooks delivered by real Celery workers on the real broker to a real HTTP server on
127.0.0.1 (allowed by the test's setting), verified with standardwebhooks' verifier."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from config.celery import app as celery_app
from integrations.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEvent
from integrations.webhooks import services
from integrations.webhooks.tasks import deliver_webhook, sweep_webhooks
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations.receiver import receiving
from tests.tenancy.test_worker import Workers, workers  # noqa: F401 - the fixture

pytestmark = pytest.mark.worker

# What every worker of these tests runs with: loopback allowed, quick retries.
WORKER_ENV = {"WEBHOOKS_ALLOW_PRIVATE": "1", "WEBHOOKS_RETRY_BASE_SECONDS": "1"}


@pytest.fixture
def routed(workers: Workers, settings: Any) -> Iterator[Workers]:  # noqa: F811
    """The webhook tasks go to the test workers' queue; loopback is allowed here too."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    previous = celery_app.conf.task_routes
    celery_app.conf.task_routes = {"integrations.*": {"queue": workers.queue}}
    celery_app.amqp.flush_routes()  # the route table is cached
    celery_app.amqp.router = celery_app.amqp.Router()  # type: ignore[misc]
    try:
        yield workers
    finally:
        celery_app.conf.task_routes = previous
        celery_app.amqp.flush_routes()
        celery_app.amqp.router = celery_app.amqp.Router()  # type: ignore[misc]


def _start(workers: Workers, name: str = "w1", **env: str) -> None:  # noqa: F811
    """A worker whose own messages (the retries it plans) go to the test's queue too."""
    workers.start(name, **WORKER_ENV, CELERY_QUEUE=workers.queue, **env)


def _endpoint(tree: TenantTree, url: str) -> tuple[Any, str]:
    with tenant_scope(tree.tenant):
        return services.endpoint_create(
            member=tree.members["admin"],
            url=url,
            event_types=[WebhookEvent.OPPORTUNITY_WON],
        )


def _wait(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("the condition did not hold in time")


def _delivery(tree: TenantTree) -> WebhookDelivery:
    with tenant_scope(tree.tenant):
        return WebhookDelivery.objects.prefetch_related("attempts").get()


def _delivered(tree: TenantTree) -> Callable[[], bool]:
    return lambda: _delivery(tree).status == DeliveryStatus.DELIVERED


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_won_deal_reaches_the_receiver_signed_within_seconds(
    routed: Workers, tree_a: TenantTree
) -> None:
    _start(routed)
    with receiving(status=200) as receiver:
        _endpoint_row, secret = _endpoint(tree_a, receiver.url)
        started = time.monotonic()
        with tenant_scope(tree_a.tenant):
            deal = records.won_opportunity(tree_a)
        (request,) = receiver.wait_for(1)
        elapsed = time.monotonic() - started
        payload = Webhook(secret).verify(request.body, request.headers)
        _wait(_delivered(tree_a))
    assert payload["type"] == "opportunity.won" and payload["data"]["id"] == deal.pk
    assert payload["data"]["amount"] == "120000.00"
    assert elapsed < 10
    delivery = _delivery(tree_a)
    assert request.headers["webhook-id"] == delivery.message_id
    assert [attempt.response_code for attempt in delivery.attempts.all()] == [200]


def test_a_receiver_that_was_down_gets_the_event_on_a_retry_once(
    routed: Workers, tree_a: TenantTree
) -> None:
    _start(routed)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hooks/crm"
    _endpoint_row, secret = _endpoint(tree_a, url)
    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
    # Nothing listens: the first attempt fails and a retry is planned.
    _wait(lambda: _delivery(tree_a).attempt_count >= 1)
    first = _delivery(tree_a).attempts.all()[0]
    assert first.response_code is None and first.error and first.next_attempt_at is not None
    with receiving(status=204, port=port) as receiver:
        _wait(_delivered(tree_a))
        time.sleep(2)  # no late duplicate
        requests = list(receiver.requests)
    assert len(requests) == 1
    Webhook(secret).verify(requests[0].body, requests[0].headers)
    delivery = _delivery(tree_a)
    assert delivery.attempt_count >= 2
    assert [a.response_code for a in delivery.attempts.all()][-1] == 204


def test_a_receiver_that_hangs_is_timed_out_recorded_and_retried(
    routed: Workers, tree_a: TenantTree
) -> None:
    _start(routed, WEBHOOKS_TIMEOUT_SECONDS="1")
    with receiving(status=200, delay=4) as receiver:
        _endpoint(tree_a, receiver.url)
        with tenant_scope(tree_a.tenant):
            records.won_opportunity(tree_a)
        receiver.wait_for(1)
        receiver.delay = 0  # it recovers
        _wait(_delivered(tree_a))
    attempts = list(_delivery(tree_a).attempts.all())
    assert attempts[0].response_code is None and attempts[0].error.startswith("Timeout")
    assert 900 <= attempts[0].duration_ms < 3000
    assert attempts[-1].response_code == 200


def test_two_workers_never_send_the_same_attempt_twice(routed: Workers, tree_a: TenantTree) -> None:
    _start(routed, "w1")
    _start(routed, "w2")
    with receiving(status=200, delay=1.5) as receiver:
        endpoint, _secret = _endpoint(tree_a, receiver.url)
        with tenant_scope(tree_a.tenant):
            delivery = services.endpoint_test(member=tree_a.members["admin"], endpoint=endpoint)
        # Duplicate messages (a redelivery, the sweeper): both workers take one at once.
        for _ in range(3):
            deliver_webhook.delay(tree_a.tenant.pk, delivery.pk)
        _wait(_delivered(tree_a))
        time.sleep(3)
        requests = list(receiver.requests)
    assert len(requests) == 1
    with tenant_scope(tree_a.tenant):
        assert WebhookAttempt.objects.count() == 1


def test_the_sweeper_sends_a_due_delivery_whose_message_was_lost(
    routed: Workers, tree_a: TenantTree
) -> None:
    _start(routed)
    with receiving(status=200) as receiver:
        endpoint, secret = _endpoint(tree_a, receiver.url)
        with tenant_scope(tree_a.tenant):
            # Written without its message (as if the broker lost it), due a while ago.
            WebhookDelivery.objects.create(
                tenant=tree_a.tenant,
                endpoint=endpoint,
                event_type="ping",
                message_id="msg_lost",
                payload={"type": "ping", "timestamp": "2026-01-01T00:00:00+00:00", "data": {}},
                next_attempt_at=timezone.now() - timedelta(minutes=5),
            )
        assert sweep_webhooks() == {"sent": 1}
        (request,) = receiver.wait_for(1)
        _wait(_delivered(tree_a))
    assert request.headers["webhook-id"] == "msg_lost"
    Webhook(secret).verify(request.body, request.headers)
