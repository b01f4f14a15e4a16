"""Records that stay consistent (SPEC 3, issue #12 item 7): corrections of closed deals,
deletion rules, frozen check-ins, the accuracy limit, coordinates, dates from the past."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import (
    Activity,
    Customer,
    Lead,
    Opportunity,
    OpportunityCorrection,
    Payment,
    StageKind,
    Visit,
)
from tenancy.dates import tenant_today
from tenancy.models import Membership, Tenant
from tenancy.scope import tenant_scope
from tenancy.services import api_token_create
from tests import records
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    return dict(response.json()["error"])


def won_deal(tree: TenantTree, owner: Membership, amount: str = "50000.00") -> Opportunity:
    with tenant_scope(tree.tenant):
        deal = records.opportunity(tree, owner, amount=Decimal(amount))
        from crm import services

        return services.opportunity_move(
            member=owner, opportunity=deal, stage=records.stage(StageKind.WON)
        )


def integration_client(member: Membership) -> APIClient:
    with tenant_scope(member.tenant_id):
        issued = api_token_create(acts_as=member, name="ERP sync")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issued.key}")
    return client


# --- corrections of closed deals ----------------------------------------------------


def test_a_rep_cannot_patch_a_won_deals_amount(tree_a: TenantTree, client_for: ClientFor) -> None:
    rep = tree_a.members["rep"]
    deal = won_deal(tree_a, rep)
    url = f"/api/v1/opportunities/{deal.pk}/"
    refused = error(client_for(rep).patch(url, {"amount": "999999.00"}, format="json"), 403)
    assert "manager above" in refused["message"] and "admin" in refused["message"]
    with tenant_scope(tree_a.tenant):
        line = records.product_line(tree_a)
    error(client_for(rep).patch(url, {"product_line": line.pk}, format="json"), 403)
    # Other fields of a closed deal stay editable; the amount sent back unchanged is fine.
    renamed = ok(client_for(rep).patch(url, {"name": "ERP 2027", "amount": "50000.00"}))
    assert (renamed["name"], renamed["amount"]) == ("ERP 2027", "50000.00")
    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("50000.00")
        assert not OpportunityCorrection.objects.exists()


def test_a_manager_above_corrects_a_won_deal_and_the_history_keeps_both_values(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep, manager = tree_a.members["rep"], tree_a.members["manager"]
    deal = won_deal(tree_a, rep)
    correct = f"/api/v1/opportunities/{deal.pk}/correct/"
    yesterday = tenant_today(tree_a.tenant) - timedelta(days=1)
    payload = {"amount": "55000.00", "closed_date": yesterday.isoformat(), "reason": "PO 4711"}

    refused = error(client_for(rep).post(correct, payload, format="json"), 403)
    assert refused["message"] == (
        "Only a manager above the deal's owner or an admin may correct a closed deal."
    )
    assert set(error(client_for(manager).post(correct, {"amount": "1.00"}), 400)["fields"]) == {
        "reason"
    }

    corrected = ok(client_for(manager).post(correct, payload, format="json"))
    assert (corrected["amount"], corrected["closed_date"]) == ("55000.00", yesterday.isoformat())
    assert corrected["credited_member"] == rep.pk  # credit stays where the win fixed it
    history = ok(client_for(rep).get(f"/api/v1/opportunities/{deal.pk}/corrections/"))
    [row] = history["results"]
    assert row["old_values"] == {
        "amount": "50000.00",
        "closed_date": tenant_today(tree_a.tenant).isoformat(),
    }
    assert row["new_values"] == {"amount": "55000.00", "closed_date": yesterday.isoformat()}
    assert (row["reason"], row["corrected_by"]) == ("PO 4711", manager.pk)

    # An admin may too; a manager outside the owner's subtree cannot even see the deal.
    ok(client_for(tree_a.members["admin"]).post(correct, {"amount": "56000.00", "reason": "x"}))
    south = won_deal(tree_a, tree_a.members["south-rep"])
    other = f"/api/v1/opportunities/{south.pk}/correct/"
    error(client_for(manager).post(other, {"amount": "1.00", "reason": "x"}), 404)


def test_an_open_deal_needs_no_correction_and_a_future_closed_date_is_refused(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(tree_a.members["admin"])
    with tenant_scope(tree_a.tenant):
        open_deal = records.opportunity(tree_a, tree_a.members["rep"])
    url = f"/api/v1/opportunities/{open_deal.pk}/correct/"
    error(admin.post(url, {"amount": "1.00", "reason": "x"}), 409)
    deal = won_deal(tree_a, tree_a.members["rep"])
    tomorrow = (tenant_today(tree_a.tenant) + timedelta(days=1)).isoformat()
    response = admin.post(
        f"/api/v1/opportunities/{deal.pk}/correct/", {"closed_date": tomorrow, "reason": "x"}
    )
    assert set(error(response, 400)["fields"]) == {"closed_date"}


def test_the_admin_corrects_a_closed_deal_with_a_reason(tree_a: TenantTree) -> None:
    deal = won_deal(tree_a, tree_a.members["rep"])
    client = Client()
    assert client.login(username="acme-manager", password=PASSWORD)
    page = client.get(f"/admin/crm/opportunity/{deal.pk}/change/").content.decode()
    assert 'name="amount"' not in page  # read-only on a closed deal
    response = client.post(
        "/admin/crm/opportunity/",
        {
            "action": "correct",
            ACTION_CHECKBOX_NAME: [str(deal.pk)],
            "apply": "1",
            "reason": "Signed amendment",
            "amount": "60000.00",
        },
    )
    assert response.status_code == 302
    with tenant_scope(tree_a.tenant):
        correction = OpportunityCorrection.objects.get(opportunity=deal)
        assert Opportunity.objects.get(pk=deal.pk).amount == Decimal("60000.00")
    assert (correction.old_values, correction.new_values) == (
        {"amount": "50000.00"},
        {"amount": "60000.00"},
    )


def test_a_win_takes_its_amount_in_the_move(tree_a: TenantTree, client_for: ClientFor) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, tree_a.members["rep"])
        won = records.stage(StageKind.WON).pk
    deal = ok(rep.post("/api/v1/opportunities/", {"name": "X", "customer": customer.pk}), 201)
    moved = ok(
        rep.post(f"/api/v1/opportunities/{deal['id']}/move/", {"stage": won, "amount": "42000.50"})
    )
    assert (moved["amount"], moved["closed_date"]) == (
        "42000.50",
        tenant_today(tree_a.tenant).isoformat(),
    )


# --- deleting ---------------------------------------------------------------------------


def test_a_won_deal_with_payments_is_not_deleted(tree_a: TenantTree, client_for: ClientFor) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        payment = records.received_payment(tree_a, rep)
    refused = error(client_for(rep).delete(f"/api/v1/opportunities/{payment.opportunity_id}/"), 409)
    assert "won deals are kept" in refused["message"] and "1 payment" in refused["message"]
    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.filter(pk=payment.opportunity_id).exists()
        assert Payment.objects.filter(pk=payment.pk).exists()


def test_a_customer_with_deals_visits_and_activities_is_not_deleted(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, rep)
        deal = records.opportunity(tree_a, rep)
        Opportunity.objects.filter(pk=deal.pk).update(customer=customer)
        Visit.objects.create(tenant=tree_a.tenant, customer=customer, rep=rep)
        for _ in range(2):
            Activity.objects.create(
                tenant=tree_a.tenant, type="call", subject="Call", owner=rep, customer=customer
            )
        empty = records.customer(tree_a, rep, name="Nobody depends on me")
    client = client_for(rep)
    refused = error(client.delete(f"/api/v1/customers/{customer.pk}/"), 409)
    assert "1 deal, 1 visit, 2 activities" in refused["message"]
    assert client.delete(f"/api/v1/customers/{empty.pk}/").status_code == 204
    with tenant_scope(tree_a.tenant):
        assert Customer.objects.filter(pk=customer.pk).exists()
        assert not Customer.objects.filter(pk=empty.pk).exists()
    # An open deal without payments may go (a tombstone).
    assert client.delete(f"/api/v1/opportunities/{deal.pk}/").status_code == 204


def test_a_product_line_in_use_is_not_deleted(tree_a: TenantTree, client_for: ClientFor) -> None:
    admin = client_for(tree_a.members["admin"])
    with tenant_scope(tree_a.tenant):
        used = records.product_line(tree_a, "Cloud ERP")
        unused = records.product_line(tree_a, "Unused")
        deal = records.opportunity(tree_a, tree_a.members["rep"])
        Opportunity.objects.filter(pk=deal.pk).update(product_line=used)
    assert "1 deal" in error(admin.delete(f"/api/v1/product-lines/{used.pk}/"), 409)["message"]
    assert admin.delete(f"/api/v1/product-lines/{unused.pk}/").status_code == 204


def test_the_admin_refuses_to_delete_a_customer_with_deals(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, rep)
    client = Client()
    assert client.login(username="acme-rep", password=PASSWORD)
    url = f"/admin/crm/customer/{deal.customer_id}/delete/"
    assert "1 deal" in client.get(url).content.decode()
    client.post(url, {"post": "yes"})
    with tenant_scope(tree_a.tenant):
        assert Customer.objects.filter(pk=deal.customer_id).exists()


# --- visits -------------------------------------------------------------------------------


def test_a_checked_in_visit_keeps_its_customer(tree_a: TenantTree, client_for: ClientFor) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a, rep)
        elsewhere = records.customer(tree_a, rep, name="Elsewhere")
    client = client_for(rep)
    near = {"latitude": "31.231496", "longitude": "121.473701", "accuracy_m": "12"}
    assert ok(client.post(f"/api/v1/visits/{visit.pk}/check-in/", near))["verified"] is True
    url = f"/api/v1/visits/{visit.pk}/"
    error(client.patch(url, {"customer": elsewhere.pk}, format="json"), 409)
    assert ok(client.patch(url, {"outcome": "Quote sent"}, format="json"))["verified"] is True
    with tenant_scope(tree_a.tenant):
        assert Visit.objects.get(pk=visit.pk).customer_id == visit.customer_id


@pytest.mark.parametrize(
    ("accuracy", "limit", "verified"),
    [("5000", 100, False), ("100", 100, True), (None, 100, False), ("5000", 6000, True)],
)
def test_a_check_in_is_verified_only_within_the_accuracy_limit(
    accuracy: str | None,
    limit: int,
    verified: bool,
    tree_a: TenantTree,
    client_for: ClientFor,
) -> None:
    Tenant.objects.filter(pk=tree_a.tenant.pk).update(visit_accuracy_limit_m=limit)
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a, rep)
    # 0.0009° of latitude north of the customer: 100.1 m, inside the 500 m radius.
    point: dict[str, Any] = {"latitude": "31.231316", "longitude": "121.473701"}
    if accuracy is not None:
        point["accuracy_m"] = accuracy
    checked_in = ok(client_for(rep).post(f"/api/v1/visits/{visit.pk}/check-in/", point))
    assert Decimal(checked_in["distance_m"]) == Decimal("100.1")
    assert checked_in["verified"] is verified
    assert checked_in["check_in_at"] is not None  # kept either way


def test_coordinates_with_many_decimals_are_rounded_to_six(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = tree_a.members["rep"]
    client = client_for(rep)
    created = ok(
        client.post(
            "/api/v1/customers/",
            {"name": "Precise", "latitude": "31.23041649999999", "longitude": "121.47370150000001"},
        ),
        201,
    )
    assert (created["latitude"], created["longitude"]) == ("31.230416", "121.473702")
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a, rep)
    checked_in = ok(
        client.post(
            f"/api/v1/visits/{visit.pk}/check-in/",
            {"latitude": "31.23041612345678", "longitude": "121.47370098765432"},
        )
    )
    assert (checked_in["check_in_latitude"], checked_in["check_in_longitude"]) == (
        "31.230416",
        "121.473701",
    )


def test_half_written_coordinates_and_impossible_dates_are_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = tree_a.members["rep"]
    client = client_for(rep)
    half = client.post("/api/v1/customers/", {"name": "Half", "latitude": "31.2"})
    assert set(error(half, 400)["fields"]) == {"longitude"}
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, rep)
        activity = records.activity(tree_a, rep)
        visit = records.visit(tree_a, rep)
    future = (timezone.now() + timedelta(hours=2)).isoformat()
    created = client.post(
        "/api/v1/activities/", {"type": "call", "subject": "Later", "done_at": future}
    )
    assert set(error(created, 400)["fields"]) == {"done_at"}
    completed = client.post(f"/api/v1/activities/{activity.pk}/complete/", {"done_at": future})
    assert set(error(completed, 400)["fields"]) == {"done_at"}
    deal = client.post(
        "/api/v1/opportunities/",
        {"name": "Old", "customer": customer.pk, "expected_close_date": "1900-01-01"},
    )
    assert set(error(deal, 400)["fields"]) == {"expected_close_date"}
    checkout = client.post(f"/api/v1/visits/{visit.pk}/check-out/", {"latitude": "31.2"})
    assert error(checkout, 400)["code"] == "invalid"
    with tenant_scope(tree_a.tenant):
        assert not Customer.objects.filter(name="Half").exists()
        assert Activity.objects.get(pk=activity.pk).done_at is None
        assert not Opportunity.objects.exists()


# --- dates from the past (history imports, ERP sync) -----------------------------------


def test_only_admins_and_integrations_record_past_dates_and_nobody_future_ones(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep, admin = tree_a.members["rep"], tree_a.members["admin"]
    today = tenant_today(tree_a.tenant)
    past, future = (today - timedelta(days=40)).isoformat(), (today + timedelta(1)).isoformat()
    with tenant_scope(tree_a.tenant):
        won = records.stage(StageKind.WON).pk
        deals = [records.opportunity(tree_a, rep) for _ in range(3)]
    move = "/api/v1/opportunities/{}/move/"
    rep_win = client_for(rep).post(move.format(deals[0].pk), {"stage": won, "closed_date": past})
    assert set(error(rep_win, 400)["fields"]) == {"closed_date"}
    late = client_for(admin).post(move.format(deals[0].pk), {"stage": won, "closed_date": future})
    assert set(error(late, 400)["fields"]) == {"closed_date"}
    imported = ok(
        client_for(admin).post(move.format(deals[0].pk), {"stage": won, "closed_date": past})
    )
    assert imported["closed_date"] == past
    synced = ok(
        integration_client(rep).post(move.format(deals[1].pk), {"stage": won, "closed_date": past})
    )
    assert synced["closed_date"] == past

    payment = {"opportunity": deals[0].pk, "amount": "10.00", "received_date": past}
    assert set(error(client_for(rep).post("/api/v1/payments/", payment), 400)["fields"]) == {
        "received_date"
    }
    ok(client_for(admin).post("/api/v1/payments/", payment), 201)
    erp = integration_client(rep)
    ok(erp.post("/api/v1/payments/", {**payment, "received_date": past}), 201)
    late_payment = erp.post("/api/v1/payments/", {**payment, "received_date": future})
    assert set(error(late_payment, 400)["fields"]) == {"received_date"}

    old = (timezone.now() - timedelta(days=400)).isoformat()
    lead = {"name": "Imported", "created_at": old}
    assert set(error(client_for(rep).post("/api/v1/leads/", lead), 400)["fields"]) == {"created_at"}
    created = ok(client_for(admin).post("/api/v1/leads/", lead), 201)
    with tenant_scope(tree_a.tenant):
        stored = Lead.objects.get(pk=created["id"])
    assert stored.created_at < timezone.now() - timedelta(days=399)
    customer = {"name": "Imported 客户", "created_at": old}
    ok(erp.post("/api/v1/customers/", customer), 201)
    soon = (timezone.now() + timedelta(days=1)).isoformat()
    tomorrow = erp.post("/api/v1/customers/", {"name": "Tomorrow", "created_at": soon})
    assert set(error(tomorrow, 400)["fields"]) == {"created_at"}


def test_the_admin_refuses_to_delete_a_stage_in_use(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, tree_a.members["rep"])
        pipeline_id, stage_id = deal.pipeline_id, deal.stage_id
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    url = f"/admin/crm/pipeline/{pipeline_id}/change/"
    page = client.get(url)
    formset = page.context["inline_admin_formsets"][0].formset
    data: dict[str, Any] = {"name": "Sales 销售", "is_default": "on"}
    data.update({key: value for key, value in formset.management_form.initial.items()})
    data = {f"{formset.prefix}-{k}" if k.isupper() else k: v for k, v in data.items()}
    for form in formset.forms:
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            if value is not None:
                data[form.add_prefix(name)] = getattr(value, "pk", value)
        if form.instance.pk == stage_id:
            data[form.add_prefix("DELETE")] = "on"
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "would require deleting the following protected related objects" in (
        response.content.decode()
    )
    with tenant_scope(tree_a.tenant):
        from crm.models import Stage

        assert Stage.objects.filter(pk=stage_id).exists()


def test_a_rep_adding_a_payment_in_the_admin_cannot_date_it_in_the_past(
    tree_a: TenantTree,
) -> None:
    rep = tree_a.members["rep"]
    deal = won_deal(tree_a, rep)
    client = Client()
    assert client.login(username="acme-rep", password=PASSWORD)
    past = (tenant_today(tree_a.tenant) - timedelta(days=3)).isoformat()
    form = {"opportunity": deal.pk, "amount": "10.00", "status": "planned", "note": ""}
    response = client.post("/admin/crm/payment/add/", {**form, "received_date": past})
    assert response.status_code == 200
    assert "Only an admin or an integration may record a past date" in response.content.decode()
    with tenant_scope(tree_a.tenant):
        assert not Payment.objects.filter(opportunity=deal).exists()
    today = tenant_today(tree_a.tenant).isoformat()
    assert (
        client.post("/admin/crm/payment/add/", {**form, "received_date": today}).status_code == 302
    )
    with tenant_scope(tree_a.tenant):
        received = Payment.objects.get(opportunity=deal).received_date
    assert received is not None and received.isoformat() == today


def test_another_tenants_deal_cannot_be_corrected_and_corrections_list_in_fixed_queries(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    foreign = won_deal(tree_b, tree_b.members["rep"])
    admin = client_for(tree_a.members["admin"])
    response = admin.post(
        f"/api/v1/opportunities/{foreign.pk}/correct/", {"amount": "1.00", "reason": "x"}
    )
    error(response, 404)
    with tenant_scope(tree_b.tenant):
        assert not OpportunityCorrection.objects.exists()

    deal = won_deal(tree_a, tree_a.members["rep"])
    url = f"/api/v1/opportunities/{deal.pk}/corrections/"

    def queries() -> int:
        with CaptureQueriesContext(connection) as context:
            ok(admin.get(url))
        return len(context.captured_queries)

    correct = f"/api/v1/opportunities/{deal.pk}/correct/"
    ok(admin.post(correct, {"amount": "50001.00", "reason": "first"}))
    one = queries()
    for amount in ("50002.00", "50003.00", "50004.00"):
        ok(admin.post(correct, {"amount": amount, "reason": "again"}))
    assert queries() == one <= 8
