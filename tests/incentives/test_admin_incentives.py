"""Incentives admin: plans through the services (versions, refusals as messages),
statements with their lines' explanations, approve and lock actions within visibility."""

from __future__ import annotations

import pytest
from django.test import Client

from incentives import commissions
from incentives.models import CommissionPlan, CommissionStatement
from tenancy.scope import tenant_scope
from tests.factories import PASSWORD, TenantTree
from tests.incentives.test_statements import worked_case

pytestmark = pytest.mark.django_db


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_statements_show_their_lines_and_are_approved_and_locked_by_actions(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        statement = CommissionStatement.objects.get()
    page = login("acme-rep").get(f"/admin/incentives/commissionstatement/{statement.pk}/change/")
    assert page.status_code == 200 and "4600.00" in page.content.decode()
    theirs = login("acme-south-rep").get("/admin/incentives/commissionstatement/")
    assert "4600.00" not in theirs.content.decode()
    manager = login("acme-manager")
    manager.get("/admin/incentives/commissionstatement/")
    manager.post("/admin/incentives/commissionstatement/",
                 {"action": "approve", "_selected_action": [statement.pk]})  # fmt: skip
    admin = login("acme-admin")
    admin.get("/admin/incentives/commissionstatement/")
    admin.post("/admin/incentives/commissionstatement/",
               {"action": "lock", "_selected_action": [statement.pk]})  # fmt: skip
    with tenant_scope(tree_a.tenant):
        statement.refresh_from_db()
    assert (statement.status, statement.approved_by_id) == ("locked", tree_a.members["manager"].pk)


def test_a_plan_saved_in_the_admin_gets_a_new_version_and_bad_bands_are_refused(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        plan, _today = worked_case(tree_a)
    admin = login("acme-admin")
    url = f"/admin/incentives/commissionplan/{plan.pk}/change/"
    assert "80.0 %" in admin.get(url).content.decode()
    form = {"name": plan.name, "statement_period": "month", "attainment_metric": "won_amount",
            "base_metric": "", "mode": "flat", "cap": "", "multipliers": "{}", "is_active": "on",
            "bands": '[["0", "0.02"], ["1", "0.05"]]',
            "assignments-TOTAL_FORMS": "1", "assignments-INITIAL_FORMS": "1",
            "assignments-MIN_NUM_FORMS": "0", "assignments-MAX_NUM_FORMS": "1000"}  # fmt: skip
    with tenant_scope(tree_a.tenant):
        form["assignments-0-id"] = str(plan.assignments.get().pk)
        form["assignments-0-plan"] = str(plan.pk)
    response = admin.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    bad = admin.post(url, {**form, "bands": '[["0.5", "0.02"]]'}, follow=True)
    assert "The first band must start at 0 %." in bad.content.decode()
    with tenant_scope(tree_a.tenant):
        saved = CommissionPlan.objects.get()
    assert (saved.version, saved.mode, saved.bands) == (2, "flat", [["0", "0.02"], ["1", "0.05"]])
