"""CRM records over the API: a rep's day, visibility, bad input, sync, query counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import Customer, Opportunity, Payment, Stage, StageChange, StageKind, Visit
from crm.services import stage_exits_recompute
from tenancy.dates import tenant_today
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def fields(response: Any) -> set[str]:
    assert response.status_code == 400, response.content
    return set(response.json()["error"]["fields"])


def stage_id(tree: TenantTree, kind: str = StageKind.OPEN, order: int | None = None) -> int:
    with tenant_scope(tree.tenant):
        return records.stage(kind, order).pk


def test_a_rep_runs_a_day_from_the_api_alone(tree_a: TenantTree, client_for: ClientFor) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        pooled = records.customer(tree_a, pool=True, name="浦东 Pudong Steel")
        follow_up = records.activity(tree_a, tree_a.members["rep"])

    # Claim a customer from the public pool.
    claimed = ok(rep.post(f"/api/v1/customers/{pooled.pk}/claim/"))
    assert claimed["owner"] == tree_a.members["rep"].pk

    # Plan a visit, check in 120 m away (verified), check out with the outcome.
    visit = ok(rep.post("/api/v1/visits/", {"customer": pooled.pk, "purpose": "Quote"}), 201)
    near = {"latitude": "31.231496", "longitude": "121.473701", "accuracy_m": "12.5"}
    checked_in = ok(rep.post(f"/api/v1/visits/{visit['id']}/check-in/", near))
    assert checked_in["verified"] is True
    assert Decimal("119") < Decimal(checked_in["distance_m"]) < Decimal("122")
    checked_out = ok(
        rep.post(f"/api/v1/visits/{visit['id']}/check-out/", {"outcome": "Wants a quote"})
    )
    assert checked_out["check_out_at"] >= checked_out["check_in_at"]

    # Create a deal, advance it, win it.
    deal = ok(
        rep.post(
            "/api/v1/opportunities/",
            {"name": "Steel ERP", "customer": pooled.pk, "amount": "880000.00"},
        ),
        201,
    )
    quote = stage_id(tree_a, order=3)
    ok(rep.post(f"/api/v1/opportunities/{deal['id']}/move/", {"stage": quote}))
    won = ok(
        rep.post(
            f"/api/v1/opportunities/{deal['id']}/move/", {"stage": stage_id(tree_a, StageKind.WON)}
        )
    )
    assert won["credited_member"] == tree_a.members["rep"].pk
    assert won["credited_org_unit"] == tree_a.units["north-1"].pk
    assert won["closed_date"] is not None

    # Record a payment received today (a rep's write carries today), then complete the
    # follow-up.
    today = tenant_today(tree_a.tenant).isoformat()
    payment = ok(
        rep.post(
            "/api/v1/payments/",
            {"opportunity": deal["id"], "amount": "300000.00", "received_date": today},
        ),
        201,
    )
    assert payment["status"] == "received"
    done = ok(rep.post(f"/api/v1/activities/{follow_up.pk}/complete/", {"outcome": "Called"}))
    assert done["done_at"] is not None and done["is_follow_up"] is False

    history = ok(rep.get(f"/api/v1/opportunities/{deal['id']}/history/"))["results"]
    assert [(row["from_stage"], row["to_stage"]) for row in history] == [
        (None, stage_id(tree_a, order=1)),
        (stage_id(tree_a, order=1), quote),
        (quote, stage_id(tree_a, StageKind.WON)),
    ]
    assert [row["amount"] for row in history] == ["880000.00"] * 3
    with tenant_scope(tree_a.tenant):
        changes = list(StageChange.objects.filter(opportunity_id=deal["id"]))
        # Each change knows when the deal left its stage: the next change's time.
        assert [c.exited_at for c in changes] == [c.changed_at for c in changes[1:]] + [None]
        assert stage_exits_recompute(tree_a.tenant.pk) == 0  # the service kept them exact


@pytest.mark.parametrize(
    ("resource", "make"),
    [
        ("customers", lambda tree: records.customer(tree, tree.members["rep2"])),
        ("contacts", lambda tree: records.contact(tree, tree.members["rep2"])),
        ("leads", lambda tree: records.lead(tree, tree.members["rep2"])),
        ("opportunities", lambda tree: records.opportunity(tree, tree.members["rep2"])),
        ("payments", lambda tree: records.received_payment(tree, tree.members["rep2"])),
        ("visits", lambda tree: records.visit(tree, tree.members["rep2"])),
        ("activities", lambda tree: records.activity(tree, tree.members["rep2"])),
        ("notifications", lambda tree: records.notification(tree, tree.members["rep2"])),
    ],
)
def test_a_rep_cannot_see_another_reps_records(
    resource: str, make: Callable[[TenantTree], Any], tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        other = make(tree_a)
    rep = client_for(tree_a.members["rep"])
    assert rep.get(f"/api/v1/{resource}/{other.pk}/").status_code == 404
    assert other.pk not in {row["id"] for row in ok(rep.get(f"/api/v1/{resource}/"))["results"]}
    owner = client_for(tree_a.members["rep2"])
    assert owner.get(f"/api/v1/{resource}/{other.pk}/").status_code == 200


def test_a_manager_sees_the_deals_of_their_subtree_only(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        mine = records.opportunity(tree_a, tree_a.members["rep"])
        south = records.opportunity(tree_a, tree_a.members["south-rep"])
    manager = client_for(tree_a.members["manager"])
    seen = {row["id"] for row in ok(manager.get("/api/v1/opportunities/"))["results"]}
    assert mine.pk in seen and south.pk not in seen
    assert manager.get(f"/api/v1/opportunities/{south.pk}/").status_code == 404
    by_unit = ok(manager.get("/api/v1/opportunities/", {"org_unit": tree_a.units["north-1"].pk}))
    assert {row["id"] for row in by_unit["results"]} == {mine.pk}


def test_the_public_pool_is_visible_to_every_member(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        pooled = records.customer(tree_a, pool=True)
    for nickname in ("rep", "rep2", "south-rep"):
        pool = ok(client_for(tree_a.members[nickname]).get("/api/v1/customers/", {"in_pool": True}))
        assert {row["id"] for row in pool["results"]} == {pooled.pk}


def test_two_reps_claiming_the_same_customer_one_wins(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        pooled = records.customer(tree_a, pool=True)
    first = client_for(tree_a.members["rep"]).post(f"/api/v1/customers/{pooled.pk}/claim/")
    second = client_for(tree_a.members["rep2"]).post(f"/api/v1/customers/{pooled.pk}/claim/")
    assert first.status_code == 200
    assert second.status_code in (404, 409)  # claimed: no longer in rep2's sight


# --- bad input ----------------------------------------------------------------------


def test_negative_and_over_precise_amounts_are_400_and_nothing_is_written(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, tree_a.members["rep"])
    for amount in ("-1.00", "10.005", "abc"):
        response = rep.post(
            "/api/v1/opportunities/", {"name": "X", "customer": customer.pk, "amount": amount}
        )
        assert fields(response) == {"amount"}
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists()


def test_coordinates_out_of_range_and_negative_accuracy_are_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a, tree_a.members["rep"])
    url = f"/api/v1/visits/{visit.pk}/check-in/"
    assert fields(rep.post(url, {"latitude": "90.5", "longitude": "0"})) == {"latitude"}
    assert fields(rep.post(url, {"latitude": "0", "longitude": "-180.1"})) == {"longitude"}
    assert fields(rep.post(url, {"latitude": "0", "longitude": "0", "accuracy_m": "-3"})) == {
        "accuracy_m"
    }
    bad_customer = rep.post(
        "/api/v1/customers/", {"name": "Nowhere", "latitude": "91", "longitude": "10"}
    )
    assert fields(bad_customer) == {"latitude"}
    with tenant_scope(tree_a.tenant):
        assert Visit.objects.get(pk=visit.pk).check_in_at is None


def test_check_out_before_check_in_and_twice_are_409(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a, tree_a.members["rep"])
    out = f"/api/v1/visits/{visit.pk}/check-out/"
    assert rep.post(out).status_code == 409
    far = {"latitude": "39.904200", "longitude": "116.407396"}  # Beijing, ~1,067 km away
    checked_in = ok(rep.post(f"/api/v1/visits/{visit.pk}/check-in/", far))
    assert checked_in["verified"] is False and Decimal(checked_in["distance_m"]) > 1_000_000
    assert rep.post(f"/api/v1/visits/{visit.pk}/check-in/", far).status_code == 409
    assert rep.post(out).status_code == 200
    assert rep.post(out).status_code == 409


def test_a_visit_for_a_customer_the_rep_cannot_see_is_rejected(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        others = records.customer(tree_a, tree_a.members["rep2"])
    with tenant_scope(tree_b.tenant):
        foreign = records.customer(tree_b)
    for customer_id in (others.pk, foreign.pk):
        assert fields(rep.post("/api/v1/visits/", {"customer": customer_id})) == {"customer"}
        response = rep.post("/api/v1/opportunities/", {"name": "X", "customer": customer_id})
        assert fields(response) == {"customer"}
    with tenant_scope(tree_a.tenant):
        assert not Visit.objects.filter(customer=others).exists()


def test_moving_to_a_stage_of_another_pipeline_is_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, tree_a.members["rep"])
        from crm.models import Pipeline

        other = Pipeline.objects.create(tenant=tree_a.tenant, name="Renewals")
        foreign_stage = Stage.objects.create(
            tenant=tree_a.tenant,
            pipeline=other,
            name="Renew",
            order=1,
            probability=50,
            forecast_category="pipeline",
        )
    response = rep.post(f"/api/v1/opportunities/{deal.pk}/move/", {"stage": foreign_stage.pk})
    assert fields(response) == {"stage"}


def test_winning_without_amount_and_losing_without_reason_are_400(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, tree_a.members["rep"])
    deal = ok(
        rep.post("/api/v1/opportunities/", {"name": "No amount", "customer": customer.pk}), 201
    )
    move = f"/api/v1/opportunities/{deal['id']}/move/"
    assert fields(rep.post(move, {"stage": stage_id(tree_a, StageKind.WON)})) == {"amount"}
    assert fields(rep.post(move, {"stage": stage_id(tree_a, StageKind.LOST)})) == {"lost_reason"}
    lost = ok(rep.post(move, {"stage": stage_id(tree_a, StageKind.LOST), "lost_reason": "Price"}))
    assert lost["lost_reason"] == "Price"
    back = rep.post(move, {"stage": stage_id(tree_a, order=2)})
    assert fields(back) == {"reopen"}
    reopened = ok(rep.post(move, {"stage": stage_id(tree_a, order=2), "reopen": True}))
    assert reopened["closed_date"] is None and reopened["lost_reason"] == ""
    with tenant_scope(tree_a.tenant):
        assert StageChange.objects.filter(opportunity_id=deal["id"]).count() == 3


def test_the_stage_cannot_be_patched_around_the_history(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, tree_a.members["rep"])
    response = rep.patch(
        f"/api/v1/opportunities/{deal.pk}/",
        {"stage": stage_id(tree_a, StageKind.WON)},
        format="json",
    )
    assert fields(response) == {"stage"}


def test_payments_need_a_won_deal_and_reversal_is_a_new_negative_row(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    with tenant_scope(tree_a.tenant):
        open_deal = records.opportunity(tree_a, tree_a.members["rep"])
        payment = records.received_payment(tree_a, tree_a.members["rep"])
    assert fields(
        rep.post(
            "/api/v1/payments/",
            {"opportunity": open_deal.pk, "amount": "10.00", "received_date": "2026-11-01"},
        )
    ) == {"opportunity"}
    assert fields(
        rep.post(
            "/api/v1/payments/",
            {
                "opportunity": payment.opportunity_id,
                "amount": "-5.00",
                "received_date": "2026-11-01",
            },
        )
    ) == {"amount"}
    reversal = ok(rep.post(f"/api/v1/payments/{payment.pk}/reverse/", {"note": "Bounced"}), 201)
    assert (reversal["amount"], reversal["status"], reversal["reverses"]) == (
        "-50000.00",
        "reversed",
        payment.pk,
    )
    assert rep.post(f"/api/v1/payments/{payment.pk}/reverse/").status_code == 409
    assert rep.patch(f"/api/v1/payments/{payment.pk}/", {"amount": "1.00"}).status_code == 405
    with tenant_scope(tree_a.tenant):
        original = Payment.objects.get(pk=payment.pk)
        assert (original.amount, original.status) == (Decimal("50000.00"), "received")


# --- offline sync -----------------------------------------------------------------


def test_a_replayed_create_returns_the_original_row(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    client_id = str(uuid.uuid4())
    payload = {"name": "Offline 离线客户", "client_id": client_id}
    first = rep.post("/api/v1/customers/", payload)
    replay = rep.post("/api/v1/customers/", payload)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert first.json()["id"] == replay.json()["id"]
    with tenant_scope(tree_a.tenant):
        assert Customer.objects.filter(client_id=client_id).count() == 1


def test_a_stale_version_is_409_and_changes_nothing(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    created = ok(rep.post("/api/v1/customers/", {"name": "Versioned"}), 201)
    url = f"/api/v1/customers/{created['id']}/"
    first = ok(rep.patch(url, {"industry": "Steel", "version": 1}, format="json"))
    assert first["version"] == 2
    stale = rep.patch(url, {"industry": "Textiles", "version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "conflict"
    assert ok(rep.get(url))["industry"] == "Steel"


def test_deleted_records_are_listed_as_tombstones(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    created = ok(rep.post("/api/v1/customers/", {"name": "Short-lived"}), 201)
    assert rep.delete(f"/api/v1/customers/{created['id']}/").status_code == 204
    assert rep.get(f"/api/v1/customers/{created['id']}/").status_code == 404
    tombstones = ok(rep.get("/api/v1/customers/tombstones/", {"since": created["created_at"]}))
    assert [row["id"] for row in tombstones["results"]] == [created["id"]]
    assert rep.get("/api/v1/customers/tombstones/").status_code == 400
    other = client_for(tree_a.members["rep2"])
    hidden = ok(other.get("/api/v1/customers/tombstones/", {"since": created["created_at"]}))
    assert hidden["results"] == []


def test_lead_conversion_creates_customer_and_deal_and_records_the_stage(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = client_for(tree_a.members["rep"])
    lead = ok(
        rep.post("/api/v1/leads/", {"name": "陈女士", "company": "Ningbo Port", "source": "fair"}),
        201,
    )
    converted = ok(rep.post(f"/api/v1/leads/{lead['id']}/convert/", {"amount": "45000.00"}), 201)
    assert rep.post(f"/api/v1/leads/{lead['id']}/convert/").status_code == 409
    deal = ok(rep.get(f"/api/v1/opportunities/{converted['opportunity']}/"))
    assert deal["source_lead"] == lead["id"] and deal["customer"] == converted["customer"]
    assert ok(rep.get(f"/api/v1/leads/{lead['id']}/"))["status"] == "qualified"
    with tenant_scope(tree_a.tenant):
        changes = list(StageChange.objects.filter(opportunity_id=deal["id"]))
    assert len(changes) == 1 and changes[0].from_stage_id is None


# --- query counts ---------------------------------------------------------------------


LIST_URLS = [
    "/api/v1/customers/",
    "/api/v1/contacts/",
    "/api/v1/leads/",
    "/api/v1/product-lines/",
    "/api/v1/pipelines/",
    "/api/v1/opportunities/",
    "/api/v1/payments/",
    "/api/v1/visits/",
    "/api/v1/activities/",
    "/api/v1/notifications/",
]


def _queries(client: APIClient, url: str, page_size: int) -> int:
    with CaptureQueriesContext(connection) as context:
        response = client.get(url, {"page_size": page_size})
    assert response.status_code == 200, response.content
    return len(context.captured_queries)


@pytest.mark.parametrize("url", LIST_URLS)
def test_record_lists_use_a_fixed_number_of_queries(
    url: str, tree_a: TenantTree, client_for: ClientFor
) -> None:
    manager = tree_a.members["manager"]
    with tenant_scope(tree_a.tenant):
        for _ in range(4):
            for owner in (tree_a.members["rep"], tree_a.members["rep2"]):
                records.received_payment(tree_a, owner)
                records.visit(tree_a, owner)
                records.activity(tree_a, owner)
                records.lead(tree_a, owner)
                records.contact(tree_a, owner)
                records.notification(tree_a, manager)
        for name in ("ERP", "CRM", "BI"):
            records.product_line(tree_a, name)
    client = client_for(manager)
    assert ok(client.get(url))["count"] >= 1  # the page really has rows to serialize
    # No query per row: a page of 200 sends no more than a page of 1 (one fewer, the
    # count, when it holds the whole list).
    small, two = _queries(client, url, 1), _queries(client, url, 2)
    assert small == two and _queries(client, url, 200) <= small <= 8


def test_search_narrows_lists_with_search_fields_and_is_ignored_by_the_others(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        records.visit(tree_a, rep)  # and its customer, 上海申达 Shenda
        records.customer(tree_a, rep, name="北京华信 Huaxin")
    client = client_for(rep)

    def names(query: dict[str, str]) -> list[str]:
        return sorted(row["name"] for row in ok(client.get("/api/v1/customers/", query))["results"])

    assert names({}) == ["上海申达 Shenda", "北京华信 Huaxin"]
    assert names({"search": "华信"}) == ["北京华信 Huaxin"]
    assert names({"search": "  "}) == names({"search": ""}) == names({})  # nothing to search
    assert names({"search": "nowhere"}) == []
    # Visits have no search fields: the parameter changes nothing (a NUL included).
    everyone = ok(client.get("/api/v1/visits/"))["results"]
    assert len(everyone) == 1
    assert ok(client.get("/api/v1/visits/", {"search": "nowhere\x00"}))["results"] == everyone


@pytest.mark.parametrize("url", LIST_URLS)
def test_every_list_answers_the_same_rendered_with_or_without_a_serializer(
    url: str, tree_a: TenantTree, client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenancy import orm
    from tenancy.api.serializers import ModelSerializer

    with tenant_scope(tree_a.tenant):
        records.one_of_each(tree_a)  # and a notification for the admin
        records.product_line(tree_a, "ERP")
    client = client_for(tree_a.members["admin"])
    ok(client.get(url, {"page_size": 3}))  # the first read plans the serializer class
    rendered: list[Any] = []
    represent_rows = ModelSerializer.represent_rows.__func__  # type: ignore[attr-defined]

    def spy(cls: Any, rows: list[Any]) -> Any:
        rendered.append(represent_rows(cls, rows))
        return rendered[-1]

    monkeypatch.setattr(ModelSerializer, "represent_rows", classmethod(spy))
    ours = ok(client.get(url, {"page_size": 3}))
    assert ours["results"], url  # rows to render
    # Rendered without a serializer, but a pipeline's stages (a nested list: DRF's).
    assert rendered and (rendered[0] is not None) == (url != "/api/v1/pipelines/"), url
    # DRF's serializer, of model instances (a page shown by DRF is not read as columns).
    monkeypatch.setattr(ModelSerializer, "represent_rows", classmethod(lambda cls, rows: None))
    monkeypatch.setattr(orm, "reads_columns", lambda queryset, reads=(): False)
    assert ok(client.get(url, {"page_size": 3})) == ours


def test_overdue_follow_ups_are_those_due_before_now_and_not_done(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from crm.models import Activity

    rep = tree_a.members["rep"]
    now = timezone.now()
    with tenant_scope(tree_a.tenant):
        overdue = records.activity(tree_a, rep)  # due yesterday, not done
        later = records.activity(tree_a, rep)
        done = records.activity(tree_a, rep)
        undated = records.activity(tree_a, rep)
        Activity.objects.filter(pk=later.pk).update(due_at=now + timedelta(days=1))
        Activity.objects.filter(pk=done.pk).update(done_at=now - timedelta(hours=1))
        Activity.objects.filter(pk=undated.pk).update(due_at=None)
        records.activity(tree_a)  # another rep's, overdue: not the rep's to see
    client = client_for(rep)

    def ids(value: str) -> list[int]:
        answer = ok(client.get("/api/v1/activities/", {"overdue": value}))
        return sorted(row["id"] for row in answer["results"])

    assert ids("true") == [overdue.pk]
    assert ids("false") == sorted([later.pk, done.pk, undated.pk])
    refused = ok(client.get("/api/v1/activities/", {"overdue": "maybe"}), 400)
    assert refused["error"]["fields"]["overdue"]
