"""Targets over the API: a manager turns 12,000,000 into every rep's monthly targets,
publishes, locks and adjusts; reps see their attainment on the phone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from targets.models import Target, TargetAdjustment
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]
D = Decimal


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


def error_fields(response: Any, status: int = 400) -> set[str]:
    assert response.status_code == status, response.content
    return set(response.json()["error"]["fields"])


@pytest.fixture
def admin(tree_a: TenantTree, client_for: ClientFor) -> APIClient:
    return client_for(tree_a.members["admin"])


def _plan(admin: APIClient, total: str = "12000000.00", **extra: Any) -> dict[str, Any]:
    return ok(
        admin.post(
            "/api/v1/target-plans/",
            {"fiscal_year": 2026, "metric": "won_amount", "annual_total": total, **extra},
        ),
        201,
    )


def test_a_manager_turns_an_annual_goal_into_monthly_targets_in_one_call(
    tree_a: TenantTree, admin: APIClient, client_for: ClientFor
) -> None:
    plan = _plan(admin)
    preview = ok(
        admin.post(
            f"/api/v1/target-plans/{plan['id']}/decompose/", {"dry_run": True}, format="json"
        )
    )
    assert len(preview["nodes"]) == 7  # 4 units + 3 reps (the manager carries the unit's)
    with tenant_scope(tree_a.tenant):
        assert not Target.objects.exists()
    applied = ok(admin.post(f"/api/v1/target-plans/{plan['id']}/decompose/", {}, format="json"))
    assert applied["nodes"] == preview["nodes"]
    ok(admin.post(f"/api/v1/target-plans/{plan['id']}/publish/"))

    rep = client_for(tree_a.members["rep"])
    mine = ok(rep.get("/api/v1/me/targets/", {"as_of": "2026-11-23"}))["targets"]
    assert {row["period_kind"] for row in mine} == {"year", "quarter", "month"}
    # Company 12M → North/South 6M → North-1 6M → rep and rep2 3M each, 250,000 a month.
    month = next(row for row in mine if row["period_kind"] == "month")
    assert (month["value"], month["achievement"]["actual"]) == ("250000.00", "0.00")
    assert month["achievement"]["status"] == "off_track"
    year = next(row for row in mine if row["period_kind"] == "year")
    assert year["value"] == "3000000.00"
    assert year["achievement"]["gap"] == "3000000.00"
    # 2026-11-23: 38 days remain in the calendar-year FY2026 → 3,000,000 / 38.
    assert year["achievement"]["required_per_day"] == "78947.37"


def test_bad_decomposition_input_is_400_and_writes_nothing(
    tree_a: TenantTree, admin: APIClient
) -> None:
    plan = _plan(admin)
    url = f"/api/v1/target-plans/{plan['id']}/decompose/"
    assert "time_weights.0" in error_fields(
        admin.post(url, {"time_method": "manual", "time_weights": ["-1"] * 12}, format="json")
    )
    assert "time_weights.0" in error_fields(
        admin.post(url, {"time_weights": ["x"] * 12}, format="json")
    )
    response = admin.post(url, {"org_method": "potential"}, format="json")
    assert response.status_code == 400 and "zero" in response.json()["error"]["message"]
    north, south = tree_a.units["north"].pk, tree_a.units["south"].pk
    mismatch = admin.post(
        url,
        {
            "org_method": "manual",
            "org_methods_by_depth": {"1": "equal", "2": "equal"},
            "manual": {f"unit:{north}": "1.00", f"unit:{south}": "2.00"},
        },
        format="json",
    )
    assert "manual" in error_fields(mismatch)
    assert "11999997.00" in mismatch.json()["error"]["message"]
    for blend in ("1.5", "-0.1"):
        assert "seasonal_blend" in error_fields(
            admin.post(url, {"time_method": "seasonal", "seasonal_blend": blend}, format="json")
        )
    unknown = admin.post(
        url, {"org_method": "potential", "potential": {"member:999999": "1"}}, format="json"
    )
    assert "potential" in error_fields(unknown)
    assert "member:999999" in unknown.json()["error"]["message"]
    assert "manual" in error_fields(
        admin.post(url, {"org_method": "manual", "manual": {"unit:0": "1.00"}}, format="json")
    )
    assert "org_methods_by_depth" in error_fields(
        admin.post(url, {"org_methods_by_depth": {"7": "equal"}}, format="json")
    )
    with tenant_scope(tree_a.tenant):
        assert not Target.objects.exists()


def test_the_decompose_answer_gives_members_their_depth_and_money_its_format(
    tree_a: TenantTree, admin: APIClient
) -> None:
    plan = _plan(admin)
    tree = ok(
        admin.post(
            f"/api/v1/target-plans/{plan['id']}/decompose/", {"dry_run": True}, format="json"
        )
    )
    assert tree["unassigned"] == "0.00"
    depth = {(n["assignee"]["type"], n["assignee"]["id"]): n["depth"] for n in tree["nodes"]}
    for node in tree["nodes"]:
        if node["assignee"]["type"] == "member":
            assert node["depth"] == depth[("unit", node["parent"]["id"])] + 1 >= 1


def test_duplicate_plans_and_out_of_range_months_are_rejected(
    tree_a: TenantTree, admin: APIClient
) -> None:
    _plan(admin)
    duplicate = admin.post(
        "/api/v1/target-plans/",
        {"fiscal_year": 2026, "metric": "won_amount", "annual_total": "1.00"},
    )
    assert duplicate.status_code == 409
    assert "metric" in error_fields(
        admin.post(
            "/api/v1/target-plans/", {"fiscal_year": 2026, "metric": "vibes", "annual_total": "1"}
        )
    )
    assert "annual_total" in error_fields(
        admin.post(
            "/api/v1/target-plans/",
            {"fiscal_year": 2027, "metric": "won_amount", "annual_total": "-5"},
        )
    )
    assert "annual_total" in error_fields(
        admin.post(
            "/api/v1/target-plans/",
            {"fiscal_year": 2027, "metric": "won_deals", "annual_total": "10.5"},
        )
    )


def test_a_locked_plan_is_not_decomposed_and_as_of_must_lie_in_its_year(
    tree_a: TenantTree, admin: APIClient
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        target = records.rep_target(tree_a, tree_a.members["rep"], "year", 0)
    ok(admin.post(f"/api/v1/target-plans/{plan.pk}/lock/"))
    assert (
        admin.post(f"/api/v1/target-plans/{plan.pk}/decompose/", {}, format="json").status_code
        == 409
    )
    assert admin.post(f"/api/v1/target-plans/{plan.pk}/publish/").status_code == 409
    outside = admin.get(f"/api/v1/targets/{target.pk}/achievement/", {"as_of": "2027-01-01"})
    assert "as_of" in error_fields(outside)
    assert "as_of" in error_fields(
        admin.get(f"/api/v1/targets/{target.pk}/achievement/", {"as_of": "yesterday"})
    )


def test_adjusting_a_month_updates_its_quarter_and_year_and_keeps_history(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    manager = client_for(tree_a.members["manager"])
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        month = records.rep_target(tree_a, tree_a.members["rep"], "month", 1)
    assert "reason" in error_fields(
        manager.post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {"new_value": "1.00", "reason": "", "trigger": "market"},
        )
    )
    adjusted = ok(
        manager.post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {"new_value": "80000.00", "reason": "Key account moved", "trigger": "personnel"},
        ),
        201,
    )
    assert (adjusted["old_value"], adjusted["new_value"], adjusted["status"]) == (
        "25000.00",
        "80000.00",
        "applied",
    )
    with tenant_scope(tree_a.tenant):
        family = Target.objects.filter(plan=month.plan, member=month.member, product_line=None)
        # Rep: 300,000 a year, 25,000 a month; April becomes 80,000.
        assert family.get(period_kind="quarter", period_index=1).value == D("130000.00")
        assert family.get(period_kind="year", period_index=0).value == D("355000.00")
    history = ok(manager.get(f"/api/v1/targets/{month.pk}/adjustments/"))["results"]
    assert [row["new_value"] for row in history] == ["80000.00"]


def test_adjusting_a_year_spreads_the_difference_over_the_months_not_yet_elapsed(
    tree_a: TenantTree, admin: APIClient
) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        year = records.rep_target(tree_a, tree_a.members["rep"], "year", 0)
    ok(
        admin.post(
            f"/api/v1/targets/{year.pk}/adjust/",
            {
                "new_value": "420000.00",
                "reason": "Bigger territory",
                "trigger": "market",
                "effective_from": "2026-07-01",
            },
        ),
        201,
    )
    with tenant_scope(tree_a.tenant):
        months = dict(
            Target.objects.filter(
                plan=year.plan, member=year.member, period_kind="month", product_line=None
            ).values_list("period_index", "value")
        )
    # +120,000 over July–December (6 months, equal weights): +20,000 each.
    assert [months[i] for i in range(1, 7)] == [D("25000.00")] * 6
    assert [months[i] for i in range(7, 13)] == [D("45000.00")] * 6


def test_a_manager_cannot_adjust_outside_their_subtree_and_reps_cannot_adjust(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        south = records.rep_target(tree_a, tree_a.members["south-rep"])
        own = records.rep_target(tree_a, tree_a.members["rep"])
    body = {"new_value": "1.00", "reason": "x", "trigger": "other"}
    assert (
        client_for(tree_a.members["manager"])
        .post(f"/api/v1/targets/{south.pk}/adjust/", body)
        .status_code
        == 404
    )
    refused = client_for(tree_a.members["rep"]).post(f"/api/v1/targets/{own.pk}/adjust/", body)
    assert refused.status_code == 403  # they see their own target: refused with a sentence
    assert "manager above" in refused.json()["error"]["message"]
    assert client_for(tree_a.members["rep"]).get(f"/api/v1/targets/{south.pk}/").status_code == 404


def test_a_locked_plan_changes_only_through_an_approved_adjustment(
    tree_a: TenantTree, admin: APIClient, client_for: ClientFor
) -> None:
    manager = client_for(tree_a.members["manager"])
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        month = records.rep_target(tree_a, tree_a.members["rep"], "month", 3)
    ok(admin.post(f"/api/v1/target-plans/{plan.pk}/lock/"))
    requested = ok(
        manager.post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {"new_value": "10000.00", "reason": "Long sick leave", "trigger": "personnel"},
        ),
        201,
    )
    assert requested["status"] == "requested"
    with tenant_scope(tree_a.tenant):
        assert Target.objects.get(pk=month.pk).value == D("25000.00")
    self_approval = manager.post(f"/api/v1/target-adjustments/{requested['id']}/approve/")
    assert self_approval.status_code == 400
    approved = ok(admin.post(f"/api/v1/target-adjustments/{requested['id']}/approve/"))
    assert approved["status"] == "applied"
    with tenant_scope(tree_a.tenant):
        assert Target.objects.get(pk=month.pk).value == D("10000.00")
    assert admin.post(f"/api/v1/target-adjustments/{requested['id']}/approve/").status_code == 409


def test_two_managers_adjusting_one_node_at_once_lose_no_update(
    transactional_db: None, tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        month = records.rep_target(tree_a, tree_a.members["rep"], "month", 5)
    clients = [client_for(tree_a.members["manager"]), client_for(tree_a.members["admin"])]
    barrier = threading.Barrier(2)
    results: list[Any] = [None, None]

    def run(index: int) -> None:
        barrier.wait()
        results[index] = clients[index].post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {
                "new_value": f"{60000 + index * 10000}.00",
                "reason": f"r{index}",
                "trigger": "market",
            },
        )
        connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status_code for r in results) == [201, 201]
    with tenant_scope(tree_a.tenant):
        history = list(
            TargetAdjustment.objects.filter(
                series_id=month.series_id, period_code=month.period_code
            ).order_by("created_at", "id")
        )
        final = Target.objects.get(pk=month.pk)
    assert len(history) == 2
    # The second saw the first's value as its old value: nothing was lost.
    assert history[1].old_value == history[0].new_value
    assert final.value == history[1].new_value and final.version == 3


def test_commitments_reconcile_with_the_top_down_targets(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
    rep = client_for(tree_a.members["rep"])
    ok(
        rep.post(
            "/api/v1/commitments/",
            {"plan": plan.pk, "period_kind": "month", "period_index": 1, "value": "65000.00"},
        ),
        201,
    )
    rows = ok(
        client_for(tree_a.members["manager"]).get(f"/api/v1/target-plans/{plan.pk}/reconciliation/")
    )["rows"]
    assert [(r["top_down"], r["bottom_up"], r["difference"]) for r in rows] == [
        ("25000.00", "65000.00", "40000.00")
    ]
    assert "value" in error_fields(
        rep.post(
            "/api/v1/commitments/",
            {"plan": plan.pk, "period_kind": "month", "period_index": 1, "value": "-1"},
        )
    )


def test_whole_plan_achievement_takes_a_fixed_number_of_queries(
    tree_a: TenantTree, admin: APIClient
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        records.won_opportunity(tree_a, tree_a.members["rep"])
    url = f"/api/v1/target-plans/{plan.pk}/achievement/"
    with CaptureQueriesContext(connection) as small:
        ok(admin.get(url, {"as_of": "2026-11-23", "period_kind": "month", "period_index": "1"}))
    with CaptureQueriesContext(connection) as large:
        body = ok(admin.get(url, {"as_of": "2026-11-23", "period_kind": "month"}))
    assert len(body["nodes"]) == 7 * 12
    assert len(small.captured_queries) == len(large.captured_queries) < 14


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/targets/",
        "/api/v1/target-plans/",
        "/api/v1/target-adjustments/",
        "/api/v1/commitments/",
    ],
)
def test_target_lists_use_a_fixed_number_of_queries(
    url: str, tree_a: TenantTree, admin: APIClient
) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        records.adjustment(tree_a)
        records.commitment(tree_a)
    counts = []
    # Pages of 1 and 2 rows count; one of 200 holding the whole list need not.
    for size in (1, 2, 200):
        with CaptureQueriesContext(connection) as context:
            ok(admin.get(url, {"page_size": size}))
        counts.append(len(context.captured_queries))
    assert counts[0] == counts[1] <= 8 and counts[2] <= counts[0]


def test_a_manager_of_the_whole_organisation_plans_and_others_may_not(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    from tenancy.services import membership_create, org_unit_set_managers

    with tenant_scope(tree_a.tenant):
        director = membership_create(
            tenant=tree_a.tenant,
            username="acme-director",
            role="manager",
            org_unit=tree_a.units["company"],
        )
        org_unit_set_managers(unit=tree_a.units["company"], managers=[director])
    director_client = client_for(director)
    plan = _plan(director_client)
    ok(director_client.post(f"/api/v1/target-plans/{plan['id']}/decompose/", {}, format="json"))
    ok(director_client.post(f"/api/v1/target-plans/{plan['id']}/publish/"))
    ok(director_client.post(f"/api/v1/target-plans/{plan['id']}/lock/"))
    north_manager = client_for(tree_a.members["manager"])
    refused = north_manager.post(
        "/api/v1/target-plans/",
        {"fiscal_year": 2027, "metric": "won_amount", "annual_total": "1.00"},
    )
    assert refused.status_code == 403
    rep = client_for(tree_a.members["rep"])
    assert (
        rep.post(f"/api/v1/target-plans/{plan['id']}/decompose/", {}, format="json").status_code
        == 403
    )
    assert ok(rep.get("/api/v1/target-plans/"))["count"] == 1


def test_a_decomposed_draft_is_deleted_with_its_nodes_and_a_published_plan_is_not(
    tree_a: TenantTree, admin: APIClient, client_for: ClientFor
) -> None:
    draft = _plan(admin, name="Draft")
    ok(admin.post(f"/api/v1/target-plans/{draft['id']}/decompose/", {}, format="json"))
    with tenant_scope(tree_a.tenant):
        assert Target.objects.filter(plan_id=draft["id"]).count() > 0
        published = records.published_plan(tree_a, metric="collections")
    manager = client_for(tree_a.members["manager"])  # manages a region, not the company
    assert manager.delete(f"/api/v1/target-plans/{draft['id']}/").status_code == 403
    assert admin.delete(f"/api/v1/target-plans/{published.pk}/").status_code == 409
    assert admin.delete(f"/api/v1/target-plans/{draft['id']}/").status_code == 204
    with tenant_scope(tree_a.tenant):
        assert not Target.objects.filter(plan_id=draft["id"]).exists()
        assert Target.objects.filter(plan=published).exists()


def test_a_drafts_name_and_total_change_and_a_new_total_asks_for_a_new_decomposition(
    tree_a: TenantTree, tree_b: TenantTree, admin: APIClient, client_for: ClientFor
) -> None:
    from targets.models import TargetSeries

    draft = _plan(admin, name="Draft")
    url = f"/api/v1/target-plans/{draft['id']}/"
    ok(admin.post(f"{url}decompose/", {}, format="json"))
    with tenant_scope(tree_a.tenant):
        series = TargetSeries.objects.filter(plan_id=draft["id"]).count()
    assert series > 0

    renamed = ok(admin.patch(url, {"name": "FY26 base"}, format="json"))
    assert (renamed["name"], renamed["targets_removed"]) == ("FY26 base", 0)
    changed = ok(admin.patch(url, {"annual_total": "13000000.00"}, format="json"))
    assert changed["annual_total"] == "13000000.00" and changed["targets_removed"] == series
    with tenant_scope(tree_a.tenant):
        assert not TargetSeries.objects.filter(plan_id=draft["id"]).exists()
    ok(admin.post(f"{url}decompose/", {}, format="json"))  # decomposed again at 13,000,000
    with tenant_scope(tree_a.tenant):
        year = Target.objects.get(
            plan_id=draft["id"], period_kind="year", org_unit=tree_a.units["company"]
        )
    assert year.value == D("13000000.00")

    # Bad input: 400 and nothing changed; a published plan: 409; not a planner: 403.
    assert "annual_total" in error_fields(admin.patch(url, {"annual_total": "-1"}, format="json"))
    assert "annual_total" in error_fields(
        admin.patch(url, {"annual_total": "100.001"}, format="json")
    )
    assert admin.patch(url, {}, format="json").status_code == 400
    _plan(admin, name="Other")
    assert admin.patch(url, {"name": "Other"}, format="json").status_code == 409
    assert ok(admin.get(url))["name"] == "FY26 base"
    assert client_for(tree_a.members["rep"]).patch(url, {"name": "x"}).status_code == 403
    assert client_for(tree_b.members["admin"]).patch(url, {"name": "x"}).status_code == 404
    with tenant_scope(tree_a.tenant):
        published = records.published_plan(tree_a, metric="collections")
    assert (
        admin.patch(
            f"/api/v1/target-plans/{published.pk}/", {"annual_total": "1.00"}, format="json"
        ).status_code
        == 409
    )
    assert admin.put(url, {"name": "x"}, format="json").status_code == 405


def test_a_second_published_plan_for_one_year_and_metric_is_a_409_naming_the_first(
    tree_a: TenantTree, admin: APIClient
) -> None:
    """Finding 12.8: one published or locked plan per (tenant, fiscal year, metric)."""
    from django.db import IntegrityError, transaction

    from targets.models import TargetPlan

    first = _plan(admin, name="Board plan")
    second = _plan(admin, name="Stretch plan")
    for plan in (first, second):
        ok(admin.post(f"/api/v1/target-plans/{plan['id']}/decompose/", {}, format="json"))
    ok(admin.post(f"/api/v1/target-plans/{first['id']}/publish/"))
    refused = admin.post(f"/api/v1/target-plans/{second['id']}/publish/")
    assert refused.status_code == 409, refused.content
    assert "Board plan" in refused.json()["error"]["message"]
    with tenant_scope(tree_a.tenant):
        assert TargetPlan.objects.get(pk=second["id"]).status == "draft"
        # The database refuses it too, whatever path writes the status.
        with pytest.raises(IntegrityError), transaction.atomic():
            TargetPlan.objects.filter(pk=second["id"]).update(status="locked")
    ok(admin.post(f"/api/v1/target-plans/{first['id']}/lock/"))
    assert admin.post(f"/api/v1/target-plans/{second['id']}/publish/").status_code == 409
    other_metric = _plan(admin, metric="collections", name="Board plan")
    ok(admin.post(f"/api/v1/target-plans/{other_metric['id']}/decompose/", {}, format="json"))
    ok(admin.post(f"/api/v1/target-plans/{other_metric['id']}/publish/"))


def test_an_adjustment_takes_effect_inside_the_plans_fiscal_year(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    """Finding 12.8: effective_from in 1999 or 2030 on an FY2026 target is a 400."""
    manager = client_for(tree_a.members["manager"])
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        month = records.rep_target(tree_a, tree_a.members["rep"], "month", 12)
        value = month.value
    for day in ("1999-06-01", "2030-01-01", "2025-12-31", "2027-01-01"):
        response = manager.post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {
                "new_value": "1.00",
                "reason": "Territory",
                "trigger": "market",
                "effective_from": day,
            },
        )
        assert "effective_from" in error_fields(response), day
    with tenant_scope(tree_a.tenant):
        assert not TargetAdjustment.objects.exists()
        assert Target.objects.get(pk=month.pk).value == value
    ok(
        manager.post(
            f"/api/v1/targets/{month.pk}/adjust/",
            {
                "new_value": "1.00",
                "reason": "Territory",
                "trigger": "market",
                "effective_from": "2026-12-31",
            },
        ),
        201,
    )
