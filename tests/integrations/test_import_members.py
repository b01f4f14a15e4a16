"""Importing members (SPEC 2, 11): admins only, matched by username, new people get an
account without a usable password, people with an account elsewhere are invited instead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenancy.models import Membership, Role
from tenancy.scope import tenant_scope
from tests.factories import TenantTree
from tests.integrations.helpers import csv_bytes, rows_of, upload, xlsx_bytes

Client = Callable[[Membership], APIClient]

HEADER = ["username", "email", "first_name", "last_name", "role", "org_unit", "start_date"]


def _outcomes(client: APIClient, job_id: int) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        (row["outcome"], [(e["field"], e["message"]) for e in row["errors"]])
        for row in rows_of(client, job_id)
    ]


def test_admin_imports_new_members_and_updates_one_all_at_once(
    tree_a: TenantTree, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    rows = [
        HEADER,
        ["acme-new1", "new1@example.com", "Li", "Na", "rep", "North 1", "2026-01-05"],
        ["acme-new2", "", "", "", "manager", str(tree_a.units["south"].pk), ""],
        # An existing member: role and unit change through membership_update.
        ["acme-rep2", "acme-rep2@example.com", "", "", "manager", "South", "2020-01-06"],
        # Unchanged.
        ["acme-rep", "acme-rep@example.com", "", "", "rep", "North 1", "2020-01-06"],
    ]
    response = upload(client, "members", csv_bytes(rows))
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["counts"] == {"new": 2, "update": 1, "unchanged": 1, "error": 0}
    assert [o for o, _ in _outcomes(client, job["id"])] == ["new", "new", "update", "unchanged"]
    with tenant_scope(tree_a.tenant):
        assert not Membership.objects.filter(user__username="acme-new1").exists()

    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 200, response.content
    assert response.json()["counts"] == {"new": 2, "update": 1, "unchanged": 1, "error": 0}
    with tenant_scope(tree_a.tenant):
        new1 = Membership.objects.select_related("user").get(user__username="acme-new1")
        assert (new1.role, new1.org_unit_id) == (Role.REP, tree_a.units["north-1"].pk)
        assert new1.start_date == date(2026, 1, 5)
        assert new1.user.email == "new1@example.com" and new1.display_name == "Li Na"
        assert not new1.user.has_usable_password(), "no password until an admin sets one"
        new2 = Membership.objects.get(user__username="acme-new2")
        assert (new2.role, new2.org_unit_id) == (Role.MANAGER, tree_a.units["south"].pk)
        rep2 = Membership.objects.get(pk=tree_a.members["rep2"].pk)
        assert (rep2.role, rep2.org_unit_id) == (Role.MANAGER, tree_a.units["south"].pk)


def test_chinese_headers_and_xlsx(tree_a: TenantTree, client_for: Client) -> None:
    client = client_for(tree_a.members["admin"])
    rows = [["用户名", "邮箱", "role", "org unit"], ["acme-zh", "zh@example.com", "rep", "South"]]
    response = upload(client, "members", xlsx_bytes(rows), name="m.xlsx")
    assert response.status_code == 201, response.content
    assert response.json()["counts"]["new"] == 1


def test_bad_rows_are_named_and_nothing_is_written(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    rows = [
        HEADER,
        ["acme-ok", "", "", "", "rep", "", ""],
        ["acme-x1", "", "", "", "emperor", "", ""],  # unknown role
        ["acme-x2", "", "", "", "rep", "Atlantis", ""],  # unknown unit
        ["acme-ok", "", "", "", "rep", "", ""],  # duplicate username in the file
        ["globex-rep", "", "", "", "rep", "", ""],  # another tenant's user
        ["acme-x3", "globex-rep@example.com", "", "", "rep", "", ""],  # their e-mail
        ["acme-x4", "", "", "", "rep", str(tree_b.units["south"].pk), ""],  # their unit
        ["acme-rep", "changed@example.com", "", "", "rep", "North 1", ""],  # account change
        ["acme-x5", "not an e-mail", "", "", "rep", "", ""],
    ]
    response = upload(client, "members", csv_bytes(rows))
    assert response.status_code == 201, response.content
    outcomes = _outcomes(client, response.json()["id"])
    assert outcomes[0] == ("new", [])
    fields = [[field for field, _ in errors] for _, errors in outcomes[1:]]
    assert fields == [
        ["role"],
        ["org_unit"],
        ["username"],
        ["username"],
        ["email"],
        ["org_unit"],
        ["email"],
        ["email"],
    ]
    assert "invitation" in outcomes[4][1][0][1]
    assert "invite" in outcomes[5][1][0][1]
    confirm = client.post(f"/api/v1/imports/{response.json()['id']}/confirm/")
    assert confirm.status_code == 409
    with tenant_scope(tree_a.tenant):
        assert not Membership.objects.filter(user__username="acme-ok").exists()
    with tenant_scope(tree_b.tenant):
        assert Membership.objects.filter(user__username="globex-rep").count() == 1
    assert not get_user_model().objects.filter(username="acme-ok").exists()


def test_another_tenants_member_id_is_a_row_error(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    rows: list[list[Any]] = [
        ["id", "username", "role"],
        [tree_b.members["rep"].pk, "globex-rep", "manager"],
    ]
    response = upload(client, "members", csv_bytes(rows))
    assert response.status_code == 201, response.content
    (outcome,) = _outcomes(client, response.json()["id"])
    assert outcome[0] == "error" and "id" in [field for field, _ in outcome[1]]
    with tenant_scope(tree_b.tenant):
        assert Membership.objects.get(pk=tree_b.members["rep"].pk).role == Role.REP


def test_only_admins_import_members(tree_a: TenantTree, client_for: Client) -> None:
    content = csv_bytes([["username"], ["acme-someone"]])
    for nickname in ("manager", "rep"):
        response = upload(client_for(tree_a.members[nickname]), "members", content)
        assert response.status_code == 403, (nickname, response.content)


def test_an_empty_role_or_start_date_keeps_the_members(
    tree_a: TenantTree, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    rows = [["username", "role", "start_date"], ["acme-rep", "", ""]]
    response = upload(client, "members", csv_bytes(rows))
    assert response.status_code == 201, response.content
    assert response.json()["counts"]["unchanged"] == 1


def test_an_admin_cannot_change_their_own_role(tree_a: TenantTree, client_for: Client) -> None:
    client = client_for(tree_a.members["admin"])
    response = upload(client, "members", csv_bytes([["username", "role"], ["acme-admin", "rep"]]))
    assert response.status_code == 201, response.content
    assert _outcomes(client, response.json()["id"])[0][1][0][0] == "role"
