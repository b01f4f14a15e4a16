"""Admin: tenant staff see their tenant within their role's visibility; the platform
superuser's cross-tenant view is explicit and read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenancy.models import Membership, OrgUnit
from tenancy.scope import tenant_scope
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
MEMBERS = "/admin/tenancy/membership/"


def admin_client(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def listed_usernames(client: Client, url: str = MEMBERS) -> set[str]:
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    return {name for name in _all_usernames() if f">{name}<" in html}


def _all_usernames() -> list[str]:
    return list(get_user_model().objects.values_list("username", flat=True))


def test_a_tenant_admin_sees_only_their_tenants_members(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    names = listed_usernames(admin_client("acme-admin"))
    assert names == {f"acme-{n}" for n in ("admin", "manager", "rep", "rep2", "south-rep")}


def test_a_rep_sees_only_themselves_in_the_admin(tree_a: TenantTree) -> None:
    client = admin_client("acme-rep")
    assert listed_usernames(client) == {"acme-rep"}
    other = tree_a.members["rep2"]
    assert client.get(f"{MEMBERS}{other.pk}/change/").status_code in (302, 404)


def test_a_manager_sees_their_subtree_in_the_admin(tree_a: TenantTree) -> None:
    assert listed_usernames(admin_client("acme-manager")) == {
        "acme-manager",
        "acme-rep",
        "acme-rep2",
    }


def test_another_tenants_object_is_not_found_in_the_admin(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    client = admin_client("acme-admin")
    foreign = tree_b.units["north"]
    response = client.get(f"/admin/tenancy/orgunit/{foreign.pk}/change/")
    assert response.status_code in (302, 404)
    if response.status_code == 302:  # Django redirects to the index with "does not exist"
        assert client.get(response["Location"]).status_code == 200
    with tenant_scope(tree_b.tenant):
        assert OrgUnit.objects.filter(pk=foreign.pk).exists()


def test_a_tenant_admin_adds_an_org_unit_through_the_service(tree_a: TenantTree) -> None:
    client = admin_client("acme-admin")
    response = client.post(
        "/admin/tenancy/orgunit/add/",
        {
            "name": "East",
            "parent": tree_a.units["company"].pk,
            "orgunitmanager_set-TOTAL_FORMS": "0",
            "orgunitmanager_set-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_scope(tree_a.tenant):
        east = OrgUnit.objects.get(name="East")
    assert east.path == f"{tree_a.units['company'].path}{east.pk}/" and east.depth == 1


def test_reps_cannot_change_members_in_the_admin(tree_a: TenantTree) -> None:
    client = admin_client("acme-rep")
    rep = tree_a.members["rep"]
    response = client.post(f"{MEMBERS}{rep.pk}/change/", {"role": "admin"})
    assert response.status_code == 403
    with tenant_scope(tree_a.tenant):
        assert Membership.objects.get(pk=rep.pk).role == "rep"


def test_the_platform_superuser_sees_every_tenant_read_only(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = admin_client("root")
    names = listed_usernames(client)
    assert {"acme-rep", "globex-rep"} <= names
    assert client.get("/admin/tenancy/tenant/").status_code == 200
    assert client.get("/admin/tenancy/orgunit/add/").status_code == 403


def test_a_user_in_two_tenants_switches_between_them(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    from tests.tenancy.test_invitations import join_by_invitation

    other = join_by_invitation(tree_b, tree_a.members["admin"], role="admin")
    client = admin_client("acme-admin")
    assert "acme-rep" in listed_usernames(client)
    response = client.post("/admin/switch-tenant/", {"membership": other.pk})
    assert response.status_code == 302
    names = listed_usernames(client)
    assert "globex-rep" in names and "acme-rep" not in names


def test_the_admin_switches_to_chinese(tree_a: TenantTree) -> None:
    client = admin_client("acme-admin")
    response = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "站点管理" in response.content.decode()
