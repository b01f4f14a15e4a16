"""Commitments and approvals keep their history honest (issue #12 item 8, SPEC section 4):
one commitment per plan, period and assignee, changed with its version; an approval
checks the version its request was made against; the only admin's own approval is
recorded as such. Races run on real connections, twenty at once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from targets.models import AdjustmentStatus, Commitment, Target, TargetAdjustment, TargetPlan
from tenancy.models import Membership, Role
from tenancy.scope import tenant_scope
from tests import records
from tests.crm.test_concurrency import in_parallel
from tests.factories import PASSWORD, TenantTree, add_member

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]
D = Decimal
RACERS = 20


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def _commit(client: APIClient, plan: TargetPlan, **extra: Any) -> Any:
    body = {"plan": plan.pk, "period_kind": "month", "period_index": 2, "value": "30000.00"}
    return client.post("/api/v1/commitments/", {**body, **extra}, format="json")


# --- commitments -------------------------------------------------------------------------


def test_a_second_commitment_for_the_same_period_is_a_409_and_keeps_the_first(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
    rep = client_for(tree_a.members["rep"])
    first = ok(_commit(rep, plan), 201)
    assert first["member"] == tree_a.members["rep"].pk and first["version"] == 1
    again = _commit(rep, plan, value="99000.00")
    assert again.status_code == 409, again.content
    assert "PATCH" in again.json()["error"]["message"]
    with tenant_scope(tree_a.tenant):
        stored = Commitment.objects.get()
    assert (stored.value, stored.version) == (D("30000.00"), 1)


def test_a_commitment_for_someone_else_or_another_tenants_member_is_a_400(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
    rep = client_for(tree_a.members["rep"])
    manager = client_for(tree_a.members["manager"])
    for client, member in [
        (rep, tree_b.members["rep"]),  # another tenant's
        (rep, tree_a.members["south-rep"]),  # outside the rep's visibility
        (manager, tree_a.members["rep"]),  # visible, but members commit for themselves
    ]:
        refused = _commit(client, plan, member=member.pk)
        assert refused.status_code == 400, refused.content
        assert set(refused.json()["error"]["fields"]) == {"member"}
    with tenant_scope(tree_a.tenant):
        assert not Commitment.objects.exists()
    assert ok(_commit(rep, plan, member=tree_a.members["rep"].pk), 201)["member"] == (
        tree_a.members["rep"].pk
    )


def test_a_commitment_changes_through_patch_with_its_version(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
    rep = client_for(tree_a.members["rep"])
    created = ok(_commit(rep, plan), 201)
    url = f"/api/v1/commitments/{created['id']}/"
    changed = ok(rep.patch(url, {"value": "45000.00", "version": 1}, format="json"))
    assert (changed["value"], changed["version"]) == ("45000.00", 2)
    stale = rep.patch(url, {"value": "1.00", "version": 1}, format="json")
    assert stale.status_code == 409, stale.content
    missing = rep.patch(url, {"value": "1.00"}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()["error"]["fields"]
    # the manager sees it but may not change a member's own commitment; others do not see it
    refused = client_for(tree_a.members["manager"]).patch(
        url, {"value": "1.00", "version": 2}, format="json"
    )
    assert refused.status_code == 403, refused.content
    for outsider in (tree_a.members["rep2"], tree_b.members["admin"]):
        response = client_for(outsider).patch(url, {"value": "1.00", "version": 2}, format="json")
        assert response.status_code == 404, response.content
    assert rep.put(url, {"value": "1.00", "version": 2}, format="json").status_code == 405
    with tenant_scope(tree_a.tenant):
        stored = Commitment.objects.get()
    assert (stored.value, stored.version) == (D("45000.00"), 2)


# --- approvals ---------------------------------------------------------------------------


def _locked_month(tree: TenantTree, client_for: ClientFor, index: int = 3) -> Target:
    with tenant_scope(tree.tenant):
        plan = records.published_plan(tree)
        month = records.rep_target(tree, tree.members["rep"], "month", index)
    ok(client_for(tree.members["admin"]).post(f"/api/v1/target-plans/{plan.pk}/lock/"))
    return month


def _request(client: APIClient, target: Target, value: str) -> Any:
    return ok(
        client.post(
            f"/api/v1/targets/{target.pk}/adjust/",
            {"new_value": value, "reason": "Territory moved", "trigger": "personnel"},
        ),
        201,
    )


def test_two_requests_made_against_one_version_cannot_both_be_approved(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    month = _locked_month(tree_a, client_for)
    manager = client_for(tree_a.members["manager"])
    admin = client_for(tree_a.members["admin"])
    first = _request(manager, month, "10000.00")
    second = _request(manager, month, "40000.00")
    assert first["target_version"] == second["target_version"] == 1
    assert first["old_value"] == second["old_value"] == "25000.00"
    ok(admin.post(f"/api/v1/target-adjustments/{first['id']}/approve/"))
    late = admin.post(f"/api/v1/target-adjustments/{second['id']}/approve/")
    assert late.status_code == 409, late.content
    assert "request again" in late.json()["error"]["message"]
    with tenant_scope(tree_a.tenant):
        assert Target.objects.get(pk=month.pk).value == D("10000.00")
        unchanged = TargetAdjustment.objects.get(pk=second["id"])
    # the second request's history stays what it saw
    assert (unchanged.status, unchanged.old_value) == (AdjustmentStatus.REQUESTED, D("25000.00"))
    # it can still be rejected, and a fresh request against the new version approved
    ok(admin.post(f"/api/v1/target-adjustments/{second['id']}/reject/"))
    third = _request(manager, month, "40000.00")
    assert (third["target_version"], third["old_value"]) == (2, "10000.00")
    ok(admin.post(f"/api/v1/target-adjustments/{third['id']}/approve/"))


def test_the_only_admin_approves_their_own_request_recorded_as_self_approved(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    month = _locked_month(tree_a, client_for)
    admin = client_for(tree_a.members["admin"])
    requested = _request(admin, month, "12000.00")
    assert requested["status"] == "requested" and requested["self_approved"] is False
    approved = ok(admin.post(f"/api/v1/target-adjustments/{requested['id']}/approve/"))
    assert (approved["status"], approved["self_approved"]) == ("applied", True)
    assert approved["approved_by"] == approved["requested_by"] == tree_a.members["admin"].pk
    # an admin's own request is not self-approved when another admin can decide it
    with tenant_scope(tree_a.tenant):
        other = add_member(tree_a.tenant, "admin2", Role.ADMIN, None, slug="acme")
    second = _request(admin, month, "13000.00")
    refused = admin.post(f"/api/v1/target-adjustments/{second['id']}/approve/")
    assert refused.status_code == 400, refused.content
    decided = ok(client_for(other).post(f"/api/v1/target-adjustments/{second['id']}/approve/"))
    assert (decided["status"], decided["self_approved"]) == ("applied", False)


def test_self_approval_shows_in_the_admin(tree_a: TenantTree, client_for: ClientFor) -> None:
    from django.test import Client

    month = _locked_month(tree_a, client_for)
    admin = client_for(tree_a.members["admin"])
    requested = _request(admin, month, "12000.00")
    ok(admin.post(f"/api/v1/target-adjustments/{requested['id']}/approve/"))
    browser = Client()
    assert browser.login(username="acme-admin", password=PASSWORD)
    page = browser.get(f"/admin/targets/targetadjustment/{requested['id']}/change/")
    assert page.status_code == 200
    assert "self-approved" in page.content.decode().lower()
    changelist = browser.get("/admin/targets/targetadjustment/").content.decode()
    assert "column-self_approved" in changelist


# --- races on real connections -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_adjustments_at_one_version_apply_once(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        month = records.rep_target(tree_a, tree_a.members["rep"], "month", 4)
    clients = [client_for(tree_a.members["manager"]) for _ in range(RACERS)]
    responses = in_parallel(
        RACERS,
        lambda n: clients[n].post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {"new_value": f"{30000 + n}.00", "reason": "race", "trigger": "market", "version": 1},
        ),
    )
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert sorted(r.status_code for r in responses) == [201] + [409] * (RACERS - 1)
    winner = next(r for r in responses if r.status_code == 201).json()
    with tenant_scope(tree_a.tenant):
        assert TargetAdjustment.objects.filter(series_id=month.series_id).count() == 1
        final = Target.objects.get(pk=month.pk)
    assert (str(final.value), final.version) == (winner["new_value"], 2)


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_approvals_apply_one_request_once(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    month = _locked_month(tree_a, client_for, index=5)
    requested = _request(client_for(tree_a.members["manager"]), month, "11000.00")
    clients = [client_for(tree_a.members["admin"]) for _ in range(RACERS)]
    responses = in_parallel(
        RACERS,
        lambda n: clients[n].post(f"/api/v1/target-adjustments/{requested['id']}/approve/"),
    )
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert sorted(r.status_code for r in responses) == [200] + [409] * (RACERS - 1)
    with tenant_scope(tree_a.tenant):
        final = Target.objects.get(pk=month.pk)
        stored = TargetAdjustment.objects.get(pk=requested["id"])
    assert (final.value, final.version) == (D("11000.00"), 2)
    assert (stored.status, stored.old_value) == (AdjustmentStatus.APPLIED, D("25000.00"))


@pytest.mark.django_db(transaction=True)
def test_twenty_requests_made_against_one_version_approved_at_once_apply_one(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    month = _locked_month(tree_a, client_for, index=6)
    manager = client_for(tree_a.members["manager"])
    requests = [_request(manager, month, f"{20000 + n}.00") for n in range(RACERS)]
    clients = [client_for(tree_a.members["admin"]) for _ in range(RACERS)]
    responses = in_parallel(
        RACERS,
        lambda n: clients[n].post(f"/api/v1/target-adjustments/{requests[n]['id']}/approve/"),
    )
    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert sorted(r.status_code for r in responses) == [200] + [409] * (RACERS - 1)
    with tenant_scope(tree_a.tenant):
        applied = list(TargetAdjustment.objects.filter(status=AdjustmentStatus.APPLIED))
        final = Target.objects.get(pk=month.pk)
        olds = set(TargetAdjustment.objects.values_list("old_value", flat=True))
    assert len(applied) == 1 and final.value == applied[0].new_value and final.version == 2
    assert olds == {D("25000.00")}  # no request's history was rewritten
