"""Login throttling by the real address and the normalised username, counting failures
only; the cache or the database down (issue 12 item 2, SPEC 8 and 9)."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from crm.models import Customer
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import PASSWORD, TenantTree

TOKEN_URL = "/api/v1/auth/token/"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.django_db
def test_a_client_sent_forwarded_for_does_not_reset_the_address_throttle(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    statuses = [
        api_client.post(
            TOKEN_URL,
            {"username": f"guess-{n}", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        ).status_code
        for n in range(12)
    ]
    assert statuses == [401] * 5 + [429] * 7


@pytest.mark.django_db
def test_one_trusted_proxy_gives_the_address_it_saw(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    from rest_framework.settings import api_settings

    with override_settings(REST_FRAMEWORK={**_rest_framework(), "NUM_PROXIES": 1}):
        api_settings.reload()
        try:
            statuses = [
                api_client.post(
                    TOKEN_URL,
                    {"username": f"guess-{n}", "password": "wrong"},
                    HTTP_X_FORWARDED_FOR=f"198.51.100.7, 203.0.113.{n}",
                ).status_code
                for n in range(6)
            ]
        finally:
            api_settings.reload()
    # Each address the proxy saw has its own bucket: none is throttled.
    assert statuses == [401] * 6


def _rest_framework() -> dict[str, object]:
    from django.conf import settings

    return dict(settings.REST_FRAMEWORK)


@pytest.mark.django_db
def test_padding_a_username_shares_its_bucket(api_client: APIClient, tree_a: TenantTree) -> None:
    variants = ["acme-rep", "acme-rep\t", " acme-rep", "ACME-REP", "acme-rep "]
    statuses = [
        api_client.post(
            TOKEN_URL, {"username": name, "password": "wrong"}, REMOTE_ADDR=f"192.0.2.{n}"
        ).status_code
        for n, name in enumerate(variants)
    ]
    assert statuses == [401] * 5
    blocked = api_client.post(
        TOKEN_URL, {"username": "acme-rep\n", "password": PASSWORD}, REMOTE_ADDR="192.0.2.99"
    )
    assert blocked.status_code == 429


@pytest.mark.django_db
def test_successful_logins_from_one_office_are_not_throttled(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    names = ["acme-rep", "acme-rep2", "acme-manager", "acme-admin", "acme-south-rep"] * 2
    statuses = [
        api_client.post(TOKEN_URL, {"username": n, "password": PASSWORD}).status_code for n in names
    ]
    assert statuses == [200] * 10


@pytest.mark.django_db
def test_the_api_answers_with_the_cache_down_and_warns(
    tree_a: TenantTree,
    client_for: Callable[[Membership], APIClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }
    rep = client_for(tree_a.members["rep"])
    with override_settings(CACHES=down), caplog.at_level(logging.WARNING):
        assert rep.get("/api/v1/me/").status_code == 200
        login = APIClient().post(TOKEN_URL, {"username": "acme-rep", "password": PASSWORD})
        assert login.status_code == 200, login.content
        wrong = APIClient().post(TOKEN_URL, {"username": "acme-rep", "password": "x"})
        assert wrong.status_code == 401
    assert "the cache is unreachable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_database_down_is_a_503_with_the_json_error(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = client_for(tree_a.members["rep"])
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(_closed_port())
    try:
        response = rep.get("/api/v1/me/")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "30"


@pytest.mark.django_db
def test_replaying_another_reps_client_id_is_a_409_showing_nothing(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    client_id = str(uuid.uuid4())
    rep_a = client_for(tree_a.members["rep"])
    rep_b = client_for(tree_a.members["rep2"])
    first = rep_a.post("/api/v1/customers/", {"name": "秘密客户 Secret", "client_id": client_id})
    assert first.status_code == 201
    replay = rep_b.post("/api/v1/customers/", {"name": "Mine", "client_id": client_id})
    assert replay.status_code == 409, replay.content
    assert "Secret" not in replay.content.decode() and str(first.json()["id"]) not in (
        replay.content.decode()
    )
    assert (
        rep_a.post("/api/v1/customers/", {"name": "x", "client_id": client_id}).status_code == 200
    )
    with tenant_scope(tree_a.tenant):
        assert Customer.all_objects.filter(client_id=client_id).count() == 1


@pytest.mark.django_db
def test_the_user_rate_counts_each_users_requests_per_window(
    tree_a: TenantTree,
    client_for: Callable[[Membership], APIClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over the rate a user gets 429 with the seconds to the window's end; another user
    keeps their own count; the next window starts again."""
    from datetime import timedelta

    import time_machine
    from django.core.cache import cache
    from django.utils import timezone
    from rest_framework.throttling import UserRateThrottle

    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "3/minute"})
    cache.clear()
    rep, manager = (client_for(tree_a.members[name]) for name in ("rep", "manager"))
    # Within the tokens' lifetime: 10 seconds into the next minute, then the one after.
    start = (timezone.now() + timedelta(minutes=1)).replace(second=10, microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        assert [rep.get("/api/v1/me/").status_code for _ in range(3)] == [200] * 3
        refused = rep.get("/api/v1/me/")
        assert refused.status_code == 429
        assert refused["Retry-After"] == "50"
        assert refused.json()["error"]["code"] == "throttled"
        assert manager.get("/api/v1/me/").status_code == 200
        clock.move_to(start.replace(second=0) + timedelta(minutes=1))
        assert rep.get("/api/v1/me/").status_code == 200
