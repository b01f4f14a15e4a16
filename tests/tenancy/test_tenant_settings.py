"""The tenant's settings an admin may change (SPEC section 7's digest hour, the time
zone; SPEC section 6's money on leaderboards): ``GET``/``PATCH /api/v1/tenant/``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from tenancy.models import Membership, Tenant
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Membership], APIClient]


def test_an_admin_reads_and_changes_the_tenants_settings(
    tree_a: TenantTree, client_for: ClientFor, django_assert_max_num_queries: Any
) -> None:
    admin = client_for(tree_a.members["admin"])
    with django_assert_max_num_queries(6):
        body = admin.get("/api/v1/tenant/").json()
    assert (body["slug"], body["digest_hour"], body["time_zone"]) == ("acme", 8, "Asia/Shanghai")
    assert body["leaderboard_money_visible"] is False
    change = {"digest_hour": 0, "time_zone": "America/New_York", "leaderboard_money_visible": True}
    response = admin.patch("/api/v1/tenant/", change, format="json")
    assert response.status_code == 200, response.content
    assert {key: response.json()[key] for key in change} == change
    tenant = Tenant.objects.get(pk=tree_a.tenant.pk)
    assert (tenant.digest_hour, tenant.time_zone, tenant.leaderboard_money_visible) == (
        0,
        "America/New_York",
        True,
    )
    # The slug and currency are the platform's: read-only, ignored in a PATCH.
    admin.patch("/api/v1/tenant/", {"slug": "other", "currency": "USD"}, format="json")
    tenant.refresh_from_db()
    assert (tenant.slug, tenant.currency) == ("acme", "CNY")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"digest_hour": 24}, "digest_hour"),
        ({"digest_hour": -1}, "digest_hour"),
        ({"digest_hour": "eight"}, "digest_hour"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"pace_threshold": "1.5"}, "pace_threshold"),
        ({"visit_radius_m": 0}, "visit_radius_m"),
    ],
)
def test_bad_settings_are_400_naming_the_field_and_nothing_changes(
    tree_a: TenantTree, client_for: ClientFor, body: dict[str, Any], field: str
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.patch("/api/v1/tenant/", {**body, "name": "Renamed"}, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    tenant = Tenant.objects.get(pk=tree_a.tenant.pk)
    assert (tenant.name, tenant.digest_hour, tenant.time_zone) == ("Acme 顶点", 8, "Asia/Shanghai")


def test_only_admins_see_or_change_the_settings(tree_a: TenantTree, client_for: ClientFor) -> None:
    for name in ("rep", "manager"):
        client = client_for(tree_a.members[name])
        assert client.get("/api/v1/tenant/").status_code == 403
        assert client.patch("/api/v1/tenant/", {"digest_hour": 9}).status_code == 403
    assert Tenant.objects.get(pk=tree_a.tenant.pk).digest_hour == 8


def test_an_admin_changes_only_their_own_tenant(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    client_for(tree_b.members["admin"]).patch("/api/v1/tenant/", {"digest_hour": 6})
    assert Tenant.objects.get(pk=tree_a.tenant.pk).digest_hour == 8
    assert Tenant.objects.get(pk=tree_b.tenant.pk).digest_hour == 6
