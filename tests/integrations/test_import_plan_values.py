"""Importing a draft plan's manual values (SPEC 4 ``manual`` org split, SPEC 11): they are
recorded on the plan where its decomposition reads them; planners only."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from rest_framework.test import APIClient

from targets.models import TargetPlan
from targets.services import plan_create
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations.helpers import csv_bytes, rows_of, upload, xlsx_bytes

Client = Callable[[Membership], APIClient]


def _draft(tree: TenantTree, name: str = "") -> TargetPlan:
    with tenant_scope(tree.tenant):
        return plan_create(
            member=tree.members["admin"],
            fiscal_year=2026,
            metric="won_amount",
            annual_total=Decimal("1200000.00"),
            **({"name": name} if name else {}),
        )


def _outcomes(client: APIClient, job_id: int) -> list[tuple[str, list[str]]]:
    return [
        (row["outcome"], [error["field"] for error in row["errors"]])
        for row in rows_of(client, job_id)
    ]


def test_imported_manual_values_drive_the_decomposition(
    tree_a: TenantTree, client_for: Client
) -> None:
    plan = _draft(tree_a)
    client = client_for(tree_a.members["admin"])
    rows: list[list[Any]] = [
        ["plan", "assignee", "amount"],
        [plan.pk, "North", "800000.00"],
        [plan.pk, f"unit:{tree_a.units['south'].pk}", 400000],
    ]
    response = upload(client, "plan_values", xlsx_bytes(rows), name="values.xlsx")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["counts"] == {"new": 2, "update": 0, "unchanged": 0, "error": 0}
    with tenant_scope(tree_a.tenant):
        assert "manual" not in TargetPlan.objects.get(pk=plan.pk).settings, "dry run"
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    north, south = tree_a.units["north"].pk, tree_a.units["south"].pk
    with tenant_scope(tree_a.tenant):
        stored = TargetPlan.objects.get(pk=plan.pk).settings["manual"]
    assert stored == {f"unit:{north}": "800000.00", f"unit:{south}": "400000.00"}

    # The same file again: unchanged; a changed value: update (Chinese headers).
    again = upload(client, "plan_values", xlsx_bytes(rows), name="values.xlsx")
    assert again.json()["counts"]["unchanged"] == 2
    changed: list[list[Any]] = [
        ["计划", "对象", "金额"],
        [plan.pk, "north", "700000"],
        [plan.pk, "South", "500000"],
    ]
    response = upload(client, "plan_values", csv_bytes(changed, "gbk"))
    assert response.json()["counts"] == {"new": 0, "update": 2, "unchanged": 0, "error": 0}
    assert client.post(f"/api/v1/imports/{response.json()['id']}/confirm/").status_code == 200

    # decompose reads them when its request gives no manual values (hand-computed:
    # North 700,000 + South 500,000 = the annual 1,200,000).
    result = client.post(
        f"/api/v1/target-plans/{plan.pk}/decompose/",
        {"org_method": "equal", "org_methods_by_depth": {"0": "manual"}, "dry_run": True},
        format="json",
    )
    assert result.status_code == 200, result.content
    years = {
        (node["assignee"]["type"], node["assignee"]["id"]): node["year"]
        for node in result.json()["nodes"]
    }
    assert years[("unit", north)] == "700000.00"
    assert years[("unit", south)] == "500000.00"


def test_bad_rows_and_another_tenants_plan(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Client
) -> None:
    plan = _draft(tree_a)
    with tenant_scope(tree_a.tenant):
        published = records.published_plan(tree_a, fiscal_year=2027)
    other = _draft(tree_b)
    client = client_for(tree_a.members["admin"])
    rows: list[list[Any]] = [
        ["plan", "assignee", "amount"],
        [plan.pk, "acme-rep", "100"],  # a member by username: fine
        [published.pk, "North", "100"],  # not a draft
        [other.pk, "North", "100"],  # another tenant's plan
        [plan.pk, "Atlantis", "100"],  # unknown assignee
        [plan.pk, "globex-rep", "100"],  # another tenant's member
        [plan.pk, "South", "-1"],  # negative
        [plan.pk, "acme-rep@example.com", "5"],  # the same member again
        [plan.pk, "North 1", "abc"],  # not a number
    ]
    response = upload(client, "plan_values", csv_bytes(rows))
    assert response.status_code == 201, response.content
    assert _outcomes(client, response.json()["id"]) == [
        ("new", []),
        ("error", ["plan"]),
        ("error", ["plan"]),
        ("error", ["assignee"]),
        ("error", ["assignee"]),
        ("error", ["amount"]),
        ("error", ["assignee"]),
        ("error", ["amount"]),
    ]
    assert client.post(f"/api/v1/imports/{response.json()['id']}/confirm/").status_code == 409
    with tenant_scope(tree_a.tenant):
        assert "manual" not in TargetPlan.objects.get(pk=plan.pk).settings
    with tenant_scope(tree_b.tenant):
        assert "manual" not in TargetPlan.objects.get(pk=other.pk).settings


def test_only_planners_import_plan_values(tree_a: TenantTree, client_for: Client) -> None:
    plan = _draft(tree_a)
    content = csv_bytes([["plan", "assignee", "amount"], [plan.pk, "North", "1"]])
    # A rep, and a manager of a unit below the top (not a planner): 403.
    for nickname in ("rep", "manager"):
        response = upload(client_for(tree_a.members[nickname]), "plan_values", content)
        assert response.status_code == 403, (nickname, response.content)
