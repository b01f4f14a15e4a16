"""Org units, members and me: visibility by role, writes, bad input, query counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Membership, OrgUnit
from tenancy.scope import tenant_scope
from tests.factories import TenantTree, add_member

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]


def ids(response: object) -> set[int]:
    assert response.status_code == 200, response.content  # type: ignore[attr-defined]
    return {row["id"] for row in response.json()["results"]}  # type: ignore[attr-defined]


def test_a_rep_sees_only_themselves_and_their_unit(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    assert ids(rep.get("/api/v1/members/")) == {tree_a.members["rep"].pk}
    assert ids(rep.get("/api/v1/org-units/")) == {tree_a.units["north-1"].pk}


def test_a_rep_cannot_see_another_reps_membership(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    response = rep.get(f"/api/v1/members/{tree_a.members['rep2'].pk}/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not found.", "fields": {}}
    }


def test_a_manager_sees_their_subtree_and_nothing_beside_it(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    manager = client_for(tree_a.members["manager"])
    members = tree_a.members
    assert ids(manager.get("/api/v1/members/")) == {
        members["manager"].pk,
        members["rep"].pk,
        members["rep2"].pk,
    }
    assert ids(manager.get("/api/v1/org-units/")) == {
        tree_a.units["north"].pk,
        tree_a.units["north-1"].pk,
    }
    assert manager.get(f"/api/v1/members/{members['south-rep'].pk}/").status_code == 404
    assert manager.get(f"/api/v1/org-units/{tree_a.units['south'].pk}/").status_code == 404


def test_a_manager_sees_deeper_levels_without_extra_queries(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        from tenancy.services import org_unit_create

        parent = tree_a.units["north-1"]
        for depth in range(5):
            parent = org_unit_create(tenant=tree_a.tenant, name=f"Level {depth}", parent=parent)
        deep_rep = add_member(tree_a.tenant, "deep", "rep", parent, slug="acme")
    manager = client_for(tree_a.members["manager"])
    assert deep_rep.pk in ids(manager.get("/api/v1/members/"))
    assert parent.pk in ids(manager.get("/api/v1/org-units/", {"page_size": 200}))


def test_an_admin_sees_the_whole_tenant(tree_a: TenantTree, client_for: ClientFor) -> None:
    admin = client_for(tree_a.members["admin"])
    assert ids(admin.get("/api/v1/members/")) == {m.pk for m in tree_a.members.values()}
    assert len(ids(admin.get("/api/v1/org-units/"))) == len(tree_a.units)


def test_subtree_filter_returns_a_unit_and_its_descendants(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    north = tree_a.units["north"]
    assert ids(admin.get("/api/v1/org-units/", {"subtree_of": north.pk})) == {
        north.pk,
        tree_a.units["north-1"].pk,
    }
    assert ids(admin.get("/api/v1/members/", {"subtree_of": north.pk})) == {
        tree_a.members[n].pk for n in ("manager", "rep", "rep2")
    }


def test_an_admin_creates_and_moves_org_units(tree_a: TenantTree, client_for: ClientFor) -> None:
    admin = client_for(tree_a.members["admin"])
    created = admin.post(
        "/api/v1/org-units/", {"name": "West", "parent": tree_a.units["company"].pk}
    )
    assert created.status_code == 201, created.content
    west = created.json()
    assert west["depth"] == 1 and west["path"] == f"{tree_a.units['company'].path}{west['id']}/"
    moved = admin.patch(
        f"/api/v1/org-units/{tree_a.units['north'].pk}/", {"parent": west["id"]}, format="json"
    )
    assert moved.status_code == 200, moved.content
    with tenant_scope(tree_a.tenant):
        north_1 = OrgUnit.objects.get(pk=tree_a.units["north-1"].pk)
    assert north_1.path == f"{west['path']}{tree_a.units['north'].pk}/{north_1.pk}/"
    assert north_1.depth == 3


def test_moving_a_unit_under_its_own_descendant_is_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.patch(
        f"/api/v1/org-units/{tree_a.units['north'].pk}/",
        {"parent": tree_a.units["north-1"].pk},
        format="json",
    )
    assert response.status_code == 400
    assert "parent" in response.json()["error"]["fields"]


def test_deleting_a_unit_with_members_is_409_and_keeps_it(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.delete(f"/api/v1/org-units/{tree_a.units['north-1'].pk}/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert admin.get(f"/api/v1/org-units/{tree_a.units['north-1'].pk}/").status_code == 200


def test_a_parent_from_another_tenant_is_rejected_and_nothing_is_written(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.post(
        "/api/v1/org-units/", {"name": "Smuggled", "parent": tree_b.units["north"].pk}
    )
    assert response.status_code == 400
    assert "parent" in response.json()["error"]["fields"]
    with tenant_scope(tree_a.tenant):
        assert not OrgUnit.objects.filter(name="Smuggled").exists()


def test_reps_and_managers_cannot_write_the_org_tree(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    for nickname in ("rep", "manager"):
        client = client_for(tree_a.members[nickname])
        assert client.post("/api/v1/org-units/", {"name": "X"}).status_code == 403
        response = client.patch(
            f"/api/v1/members/{tree_a.members[nickname].pk}/", {"role": "admin"}, format="json"
        )
        assert response.status_code == 403


def test_an_admin_adds_a_member_who_can_then_log_in(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.post(
        "/api/v1/members/",
        {
            "username": "new.rep",
            "email": "new.rep@example.com",
            "first_name": "Xiao",
            "last_name": "Ming 小明",
            "password": "a-long-password",
            "role": "rep",
            "org_unit": tree_a.units["south"].pk,
            "start_date": "2026-10-15",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["user"]["username"] == "new.rep"
    login = APIClient().post(
        "/api/v1/auth/token/", {"username": "new.rep", "password": "a-long-password"}
    )
    assert login.status_code == 200


def test_adding_a_member_with_bad_input_writes_nothing(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.post(
        "/api/v1/members/",
        {"username": "bad", "role": "boss", "start_date": "not-a-date", "password": "short"},
    )
    assert response.status_code == 400
    assert {"role", "start_date", "password"} <= set(response.json()["error"]["fields"])
    taken = admin.post("/api/v1/members/", {"username": "acme-rep", "email": "other@example.com"})
    assert taken.status_code == 400
    assert "username" in taken.json()["error"]["fields"]
    with tenant_scope(tree_a.tenant):
        assert Membership.objects.count() == len(tree_a.members)


def test_end_date_before_start_date_is_400(tree_a: TenantTree, client_for: ClientFor) -> None:
    admin = client_for(tree_a.members["admin"])
    rep = tree_a.members["rep"]
    response = admin.patch(
        f"/api/v1/members/{rep.pk}/",
        {"start_date": "2026-05-01", "end_date": "2026-04-01"},
        format="json",
    )
    assert response.status_code == 400


def test_page_size_over_the_limit_and_unknown_filters_are_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    too_big = admin.get("/api/v1/members/", {"page_size": 201})
    assert too_big.status_code == 400
    assert "page_size" in too_big.json()["error"]["fields"]
    assert admin.get("/api/v1/members/", {"page_size": "many"}).status_code == 400
    assert admin.get("/api/v1/members/", {"role": "boss"}).status_code == 400
    assert admin.get("/api/v1/members/", {"updated_since": "yesterday"}).status_code == 400
    past_the_end = admin.get("/api/v1/members/", {"page": 99})
    assert past_the_end.status_code == 400
    assert "page" in past_the_end.json()["error"]["fields"]


def test_updated_since_lists_only_recent_changes(tree_a: TenantTree, client_for: ClientFor) -> None:
    admin = client_for(tree_a.members["admin"])
    rows = admin.get("/api/v1/members/", {"page_size": 200}).json()["results"]
    newest = max(row["updated_at"] for row in rows)
    recent = ids(admin.get("/api/v1/members/", {"updated_since": newest}))
    assert recent and recent < {row["id"] for row in rows}


def _count_queries(client: APIClient, url: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, {"page_size": page_size})
    assert response.status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize("url", ["/api/v1/members/", "/api/v1/org-units/", "/api/v1/job-runs/"])
def test_list_endpoints_use_a_fixed_number_of_queries(
    url: str, tree_a: TenantTree, client_for: ClientFor, django_assert_max_num_queries: object
) -> None:
    with tenant_scope(tree_a.tenant):
        for n in range(30):
            add_member(tree_a.tenant, f"extra{n}", "rep", tree_a.units["south"], slug="acme")
    admin = client_for(tree_a.members["admin"])
    small, two = _count_queries(admin, url, 1), _count_queries(admin, url, 2)
    large = _count_queries(admin, url, 200)
    # No query per row: a page of 200 sends no more than a page of 1 (one fewer, the
    # count, when it holds the whole list).
    assert small == two and large <= small
    # Savepoint, tenant setting, membership, count, rows, one prefetch, setting restore
    # (only when nested, as in tests), release.
    assert small <= 8


def test_me_answers_for_the_caller(tree_a: TenantTree, client_for: ClientFor) -> None:
    response = client_for(tree_a.members["manager"]).get("/api/v1/me/")
    assert response.status_code == 200
    body = response.json()
    assert body["member"]["managed_units"] == [tree_a.units["north"].pk]
    assert body["tenant"]["fiscal_year_start_month"] == 1
    assert APIClient().get("/api/v1/me/").status_code == 401
