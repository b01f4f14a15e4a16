"""The admin for reps and managers: visibility, and every write through the services."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from rest_framework.test import APIClient

from crm.models import Customer, Opportunity, StageChange, StageKind
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
OPPORTUNITIES = "/admin/crm/opportunity/"


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_a_rep_sees_only_their_deals_in_the_admin(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        mine = records.opportunity(tree_a, tree_a.members["rep"])
        mine.name = "Mine 我的"
        mine.save()
        theirs = records.opportunity(tree_a, tree_a.members["rep2"])
        theirs.name = "Theirs 别人的"
        theirs.save()
    html = login("acme-rep").get(OPPORTUNITIES).content.decode()
    assert "Mine 我的" in html and "Theirs 别人的" not in html
    other = login("acme-rep").get(f"{OPPORTUNITIES}{theirs.pk}/change/")
    assert other.status_code in (302, 404)


def _act(client: Client, action: str, ids: list[int], **extra: str) -> object:
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(pk) for pk in ids], **extra}
    return client.post(OPPORTUNITIES, data)


def test_winning_in_the_admin_records_history_and_fixes_credit(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, rep)
    response = _act(login("acme-rep"), "mark_won", [deal.pk])
    assert response.status_code == 302  # type: ignore[attr-defined]
    with tenant_scope(tree_a.tenant):
        deal.refresh_from_db()
        assert deal.stage.kind == StageKind.WON
        assert (deal.credited_member_id, deal.credited_org_unit_id) == (rep.pk, rep.org_unit_id)
        last = StageChange.objects.filter(opportunity=deal).latest("changed_at")
        assert (last.to_stage_id, last.changed_by_id) == (deal.stage_id, rep.pk)


def test_a_deals_page_shows_its_stage_history_payments_and_activities(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        payment = records.received_payment(tree_a, tree_a.members["rep"])
    page = login("acme-rep").get(f"{OPPORTUNITIES}{payment.opportunity_id}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "stage changes" in html.lower() and "50000.00" in html and "Won" in html


def test_losing_in_the_admin_needs_a_reason(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, tree_a.members["rep"])
        lost = records.stage(StageKind.LOST)
    client = login("acme-rep")
    page = _act(client, "mark_lost", [deal.pk])
    assert page.status_code == 200  # type: ignore[attr-defined]
    assert "lost_reason" in page.content.decode()  # type: ignore[attr-defined]
    _act(client, "mark_lost", [deal.pk], apply="1", stage=str(lost.pk), lost_reason="")
    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.get(pk=deal.pk).stage.kind == StageKind.OPEN
    _act(
        client, "mark_lost", [deal.pk], apply="1", stage=str(lost.pk), lost_reason="竞品 Competitor"
    )
    with tenant_scope(tree_a.tenant):
        deal.refresh_from_db()
        assert (deal.stage_id, deal.lost_reason) == (lost.pk, "竞品 Competitor")


def test_adding_a_deal_in_the_admin_records_its_first_stage(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, rep)
        first = records.stage(StageKind.OPEN)
    response = login("acme-rep").post(
        f"{OPPORTUNITIES}add/",
        {
            "name": "Admin deal",
            "customer": customer.pk,
            "owner": rep.pk,
            "pipeline": first.pipeline_id,
            "stage": first.pk,
            "amount": "1000.00",
            "stage_changes-TOTAL_FORMS": "0",
            "stage_changes-INITIAL_FORMS": "0",
            "payments-TOTAL_FORMS": "0",
            "payments-INITIAL_FORMS": "0",
            "activities-TOTAL_FORMS": "0",
            "activities-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    with tenant_scope(tree_a.tenant):
        deal = Opportunity.objects.get(name="Admin deal")
        changes = list(StageChange.objects.filter(opportunity=deal))
    assert [(c.from_stage_id, c.to_stage_id) for c in changes] == [(None, first.pk)]


def test_the_stage_history_matches_every_move_through_api_admin_and_conversion(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    api = client_for(rep)
    with tenant_scope(tree_a.tenant):
        stages = {order: records.stage(order=order).pk for order in (1, 2, 3, 4)}
        won = records.stage(StageKind.WON).pk
    lead = api.post("/api/v1/leads/", {"name": "Ms Zhao", "company": "Suzhou Optics"}).json()
    converted = api.post(f"/api/v1/leads/{lead['id']}/convert/", {"amount": "9900.00"}).json()
    deal = converted["opportunity"]
    api.post(f"/api/v1/opportunities/{deal}/move/", {"stage": stages[3]})
    admin = login("acme-rep")
    _act(admin, "move", [deal], apply="1", stage=str(stages[2]))
    _act(admin, "mark_won", [deal])
    with tenant_scope(tree_a.tenant):
        path = [
            (c.from_stage_id, c.to_stage_id)
            for c in StageChange.objects.filter(opportunity_id=deal).order_by("changed_at", "id")
        ]
        current = Opportunity.objects.get(pk=deal)
    assert path == [
        (None, stages[1]),
        (stages[1], stages[3]),
        (stages[3], stages[2]),
        (stages[2], won),
    ]
    assert current.stage_id == won and current.amount == Decimal("9900.00")


def test_claiming_from_the_pool_in_the_admin(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        pooled = records.customer(tree_a, pool=True)
    login("acme-rep").post(
        "/admin/crm/customer/", {"action": "claim", ACTION_CHECKBOX_NAME: [str(pooled.pk)]}
    )
    with tenant_scope(tree_a.tenant):
        assert Customer.objects.get(pk=pooled.pk).owner_id == tree_a.members["rep"].pk


@pytest.mark.parametrize(
    "path",
    [
        "customer",
        "contact",
        "lead",
        "opportunity",
        "payment",
        "visit",
        "activity",
        "notification",
        "productline",
        "pipeline",
    ],
)
def test_every_record_admin_page_opens_for_a_manager(path: str, tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.received_payment(tree_a, tree_a.members["rep"])
        records.visit(tree_a, tree_a.members["rep"])
        records.activity(tree_a, tree_a.members["rep"])
    client = login("acme-manager")
    assert client.get(f"/admin/crm/{path}/").status_code == 200
    assert client.get(f"/admin/crm/{path}/", {"q": "x"}).status_code == 200


def _region_choices(client: Client) -> tuple[list[str], list[str]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        response = client.get("/admin/crm/customer/")
    assert response.status_code == 200
    choices = [
        str(choice["display"])
        for spec in response.context["cl"].filter_specs
        if getattr(spec, "field_path", None) == "region"
        for choice in spec.choices(response.context["cl"])
    ][1:]  # after "All"
    return choices, [q["sql"] for q in context.captured_queries]


def test_the_customer_admins_value_filters_list_what_the_member_may_see(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    """An admin's region choices come from a loose index scan over the tenant's live
    customers (no SELECT DISTINCT over all of them); a rep's from their own rows."""
    from django.utils import timezone

    with tenant_scope(tree_a.tenant):
        for region, owner in [
            ("华东 East", tree_a.members["rep"]),
            ("North", tree_a.members["rep"]),
            ("华东 East", tree_a.members["south-rep"]),
            ("South", tree_a.members["south-rep"]),
            ("", tree_a.members["south-rep"]),
        ]:
            made = records.customer(tree_a, owner, name=f"{region} {owner.pk}")
            Customer.objects.filter(pk=made.pk).update(region=region)
        gone = records.customer(tree_a, tree_a.members["rep"], name="Deleted")
        Customer.all_objects.filter(pk=gone.pk).update(region="Gone", deleted_at=timezone.now())
    with tenant_scope(tree_b.tenant):
        other = records.customer(tree_b, tree_b.members["rep"], name="Globex")
        Customer.objects.filter(pk=other.pk).update(region="Other tenant")

    choices, statements = _region_choices(login("acme-admin"))
    assert choices == ["", "North", "South", "华东 East"]
    assert not any('DISTINCT "crm_customer"."region"' in sql for sql in statements)
    assert any("WITH RECURSIVE" in sql and '"region"' in sql for sql in statements)

    rep_choices, rep_statements = _region_choices(login("acme-rep"))
    assert rep_choices == ["North", "华东 East"]
    assert not any("WITH RECURSIVE" in sql for sql in rep_statements)
