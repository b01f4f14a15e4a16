"""Reviews (SPEC §10): the figures from the database, reviews as records, the API.

The hand-made case (rep, October 2026, a won-amount plan):

* target T 100,000.00 (set by an adjustment from the equal split);
* baseline, Oct 2025 – Sep 2026, the rep's own: 10 closed, 4 won of 25,000 →
  w₀ 0.4, s₀ 25,000, N₀ = 100,000 ÷ (0.4 × 25,000) = 10;
* October: 8 closed, 3 won (30,000 + 30,000 + 20,000 = A 80,000), w 0.375, s 26,666.67;
* volume (8 − 10) × 0.4 × 25,000 = −20,000.00; win rate 8 × (0.375 − 0.4) × 25,000 =
  −5,000.00; deal size 8 × 0.375 × (80,000/3 − 25,000) = 5,000.00; sum −20,000.00 = A − T.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.digest import collect_digests
from crm.models import Activity, Lead
from crm.services import activity_complete
from funnel import review_selectors, services
from funnel.models import Review, ReviewAction, ReviewStatus
from targets.models import Target, TargetAdjustment
from targets.services import target_adjust
from tenancy.dates import tenant_today
from tenancy.errors import Conflict, Forbidden, Invalid
from tenancy.models import Membership, Role
from tenancy.scope import tenant_scope
from tenancy.services import org_unit_create
from tests import records
from tests.factories import TenantTree, add_member
from tests.funnel.test_funnel import at, deal

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = date(2026, 12, 6)


def _target(
    tree: TenantTree,
    *,
    member: str | None = None,
    unit: str | None = None,
    month: int = 10,
    metric: str = "won_amount",
    fiscal_year: int = 2026,
) -> Target:
    plan = records.published_plan(tree, metric=metric, fiscal_year=fiscal_year)
    who = {"member": tree.members[member]} if member else {"org_unit": tree.units[unit or "north"]}
    return Target.objects.select_related("plan").get(
        plan=plan, period_kind="month", period_index=month, product_line=None, **who
    )


def _october_case(tree: TenantTree) -> Target:
    """The module docstring's case, for the rep's October target."""
    rep = tree.members["rep"]
    target = _target(tree, member="rep")
    target_adjust(
        member=tree.members["admin"],
        target=target,
        new_value=D("100000.00"),
        reason="Territory change",
        trigger="market",
        effective_from=date(2026, 10, 1),
    )
    # Baseline: 4 wins of 25,000 and 6 losses between January and September 2026.
    for n in range(4):
        deal(tree, rep, [(1, at(1, n + 1)), (5, at(20, n + 1))], amount="25000.00")
    for n in range(6):
        deal(tree, rep, [(1, at(1, n + 1)), (6, at(21, n + 1))], lost_reason="Price")
    # October: 3 wins and 5 losses (4 at Solution, 1 at Qualification).
    for amount in ("30000.00", "30000.00", "20000.00"):
        deal(tree, rep, [(1, at(1)), (2, at(5)), (5, at(15))], amount=amount)
    for _n in range(4):
        deal(
            tree, rep, [(1, at(1)), (2, at(3)), (6, at(12))], amount="8000.00", lost_reason="Price"
        )
    deal(tree, rep, [(1, at(1)), (6, at(9))], amount="5000.00", lost_reason="Timing")
    # Another rep's deals in the tenant are outside the rep's node.
    deal(tree, tree.members["south-rep"], [(1, at(1)), (5, at(10))], amount="99000.00")
    return Target.objects.select_related("plan").get(pk=target.pk)


def test_member_review_gap_factors_losses_and_adjustments(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        target = _october_case(tree_a)
        figures = review_selectors.review_figures(
            target, caller=tree_a.members["manager"], today=TODAY
        )
        old = TargetAdjustment.objects.get().old_value
    assert figures["gap"] == {
        "target": "100000.00",
        "actual": "80000.00",
        "attainment": "0.8000",
        "gap": "-20000.00",
    }
    factors = figures["factors"]
    assert factors["available"] and factors["source"] == "member"
    assert (factors["closed_deals"], factors["won_deals"]) == (8, 3)
    assert factors["baseline"] == {
        "level": "member",
        "closed_deals": 10,
        "won_deals": 4,
        "won_amount": "100000.00",
    }
    assert factors["baseline_window"] == {"start": "2025-10-01", "end": "2026-09-30"}
    assert (factors["baseline_win_rate"], factors["baseline_deal_size"]) == ("0.4000", "25000.00")
    assert factors["closed_deals_needed"] == "10.00"
    assert factors["effects"] == {
        "volume": "-20000.00",
        "win_rate": "-5000.00",
        "deal_size": "5000.00",
        "total": "-20000.00",
    }
    steps = [(step["key"], step["end"]) for step in factors["waterfall"]]
    assert steps == [
        ("target", "100000.00"),
        ("volume", "80000.00"),
        ("win_rate", "75000.00"),
        ("deal_size", "80000.00"),
        ("actual", "80000.00"),
    ]
    losses = figures["losses"]
    assert (losses["count"], losses["amount"]) == (5, "37000.00")
    rows = [
        (row["stage_name"], row["reason"], row["count"], row["amount"])
        for row in losses["by_stage_and_reason"]
    ]
    assert rows[0][1:] == ("Price", 4, "32000.00") and rows[1][1:] == ("Timing", 1, "5000.00")
    assert figures["adjustments"]["count"] == 1
    assert figures["adjustments"]["net_change"] == str(D("100000.00") - (old or 0))
    assert figures["children"] == []


def test_unit_review_shows_each_child_and_the_children_sum(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        _october_case(tree_a)
        deal(tree_a, tree_a.members["rep2"], [(1, at(1)), (5, at(16))], amount="10000.00")
        north = _target(tree_a, unit="north")
        north_1 = _target(tree_a, unit="north-1")
        figures = review_selectors.review_figures(
            north, caller=tree_a.members["manager"], today=TODAY
        )
    children = {row["name"]: row for row in figures["children"]}
    # North's children: its child unit North 1 and its direct members that have a target
    # in the plan (the decomposition gives the manager none).
    assert set(children) == {"North 1"}
    assert children["North 1"]["actual"] == "90000.00"
    assert children["North 1"]["target"] == str(north_1.value)
    assert figures["gap"]["actual"] == "90000.00"
    assert figures["children_total"]["actual"] == "90000.00"
    total = sum((D(row["target"]) for row in figures["children"]), D(0))
    assert figures["children_total"]["target"] == str(total)
    assert figures["target_difference"] == str(total - (north.value or 0))
    # The unit's analysis: its own deals (4 wins, 5 losses), baseline from the unit.
    assert (figures["factors"]["closed_deals"], figures["factors"]["won_deals"]) == (9, 4)
    assert figures["factors"]["source"] == "unit"
    contributors = [
        (row["member"], row["closed_deals"], row["won_deals"], row["won_amount"])
        for row in figures["factors"]["contributors"]
    ]
    assert contributors == [
        (tree_a.members["rep"].pk, 8, 3, "80000.00"),
        (tree_a.members["rep2"].pk, 1, 1, "10000.00"),
    ]
    effects = figures["factors"]["effects"]
    assert sum(D(effects[key]) for key in ("volume", "win_rate", "deal_size")) == D(
        figures["gap"]["gap"]
    )


def test_a_loss_counts_for_the_unit_its_owner_was_in_when_it_was_lost(
    tree_a: TenantTree,
) -> None:
    """SPEC 10: a loss counts for its owner's unit at the loss. rep2 loses a deal in North
    1 in October through the service, then moves to South: North's October review still
    counts it (9 closed: the rep's 8 and this one), South's does not."""
    from crm.models import Opportunity, Stage, StageKind
    from crm.services import opportunity_move

    rep2 = tree_a.members["rep2"]
    with tenant_scope(tree_a.tenant):
        _october_case(tree_a)
        lost_stage = Stage.objects.get(pipeline__is_default=True, kind=StageKind.LOST)
        with time_machine.travel(at(20), tick=False):
            open_deal = deal(tree_a, rep2, [(1, at(2))], amount="4000.00")
            lost = opportunity_move(
                member=rep2, opportunity=open_deal, stage=lost_stage, lost_reason="Budget"
            )
        assert lost.credited_member_id is None
        assert lost.credited_org_unit_id == tree_a.units["north-1"].pk
        assert Opportunity.objects.get(pk=lost.pk).closed_date == date(2026, 10, 20)
        Membership.objects.filter(pk=rep2.pk).update(org_unit=tree_a.units["south"])
        north = review_selectors.review_figures(
            _target(tree_a, unit="north"), caller=tree_a.members["admin"], today=TODAY
        )
        south = review_selectors.review_figures(
            _target(tree_a, unit="south"), caller=tree_a.members["admin"], today=TODAY
        )
    assert (north["factors"]["closed_deals"], north["factors"]["won_deals"]) == (9, 3)
    assert (south["factors"]["closed_deals"], south["factors"]["won_deals"]) == (1, 1)
    reasons = {row["reason"] for row in north["losses"]["by_stage_and_reason"]}
    assert "Budget" in reasons


def test_process_targets_of_the_other_plans(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        target = _target(tree_a, member="rep")
        leads = _target(tree_a, member="rep", metric="new_leads")
        for _n in range(3):
            lead = records.lead(tree_a, tree_a.members["rep"])
            Lead.objects.filter(pk=lead.pk).update(created_at=at(10))
        figures = review_selectors.review_figures(target, caller=tree_a.members["rep"], today=TODAY)
    (row,) = figures["process"]
    assert row["metric"] == "new_leads" and row["target_id"] == leads.pk
    assert row["actual"] == "3" and D(row["target"]) == leads.value
    assert "E" not in row["target"]


def test_a_count_plan_still_has_gap_and_says_why_there_is_no_factor_analysis(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        target = _target(tree_a, member="rep", metric="new_leads")
        figures = review_selectors.review_figures(target, caller=tree_a.members["rep"], today=TODAY)
    assert figures["gap"]["actual"] == "0"
    assert figures["factors"]["available"] is False
    assert figures["factors"]["reason"] == "not_won_amount_plan"
    shown = review_selectors.localize(figures)
    assert "New leads" in shown["factors"]["message"]


def test_no_baseline_at_any_level_is_said_not_divided(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        target = _target(tree_a, member="rep")
        deal(tree_a, tree_a.members["rep"], [(1, at(1)), (5, at(15))], amount="1000.00")
        figures = review_selectors.review_figures(target, caller=tree_a.members["rep"], today=TODAY)
    assert figures["factors"]["available"] is False
    assert figures["factors"]["reason"] == "no_baseline"
    assert figures["factors"]["effects"] is None
    assert "No baseline" in review_selectors.localize(figures)["factors"]["message"]


def test_a_period_not_started_cannot_be_reviewed(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        target = _target(tree_a, member="rep", month=1, fiscal_year=2027)
        with pytest.raises(Invalid) as error:
            review_selectors.review_figures(target, caller=tree_a.members["rep"], today=TODAY)
    assert "period" in error.value.message_dict


def _grow(tree: TenantTree, count: int) -> None:
    """More people and units under North, each with deals, targets re-decomposed."""
    with tenant_scope(tree.tenant):
        extra = org_unit_create(tenant=tree.tenant, name="North 2", parent=tree.units["north"])
        for n in range(count):
            unit = extra if n % 2 else tree.units["north-1"]
            person = add_member(tree.tenant, f"extra{n}", Role.REP, unit, slug=tree.tenant.slug)
            deal(tree, person, [(1, at(1)), (5, at(12))], amount="1000.00")
            deal(tree, person, [(1, at(1)), (6, at(12))], lost_reason="Price")


def _review_queries(tree: TenantTree, guard: Any = None) -> tuple[int, dict[str, Any]]:
    with tenant_scope(tree.tenant):
        records.published_plan(tree)
        records.published_plan(tree, metric="new_leads")
        for person in ("rep", "rep2", "manager"):
            deal(tree, tree.members[person], [(1, at(1)), (5, at(12))], amount="2000.00")
            deal(tree, tree.members[person], [(1, at(1)), (6, at(12))], lost_reason="Price")
        north = _target(tree, unit="north")
        with CaptureQueriesContext(connection) as captured, guard or nullcontext():
            figures = review_selectors.review_figures(
                north, caller=tree.members["manager"], today=TODAY
            )
    return len(captured.captured_queries), figures


def test_the_review_costs_the_same_queries_whatever_the_subtree(
    tree_a: TenantTree, tree_b: TenantTree, django_assert_max_num_queries: Any
) -> None:
    _grow(tree_b, 12)  # before the plan: the new units and people get targets too
    small, small_figures = _review_queries(tree_a)
    large, large_figures = _review_queries(tree_b, django_assert_max_num_queries(small))
    assert large == small
    assert len(large_figures["children"]) > len(small_figures["children"])
    assert large_figures["losses"]["count"] > small_figures["losses"]["count"]


# --- reviews as records ---------------------------------------------------------------


def _review(tree: TenantTree, reviewer: str = "manager", **target: Any) -> Review:
    node = _target(tree, **(target or {"unit": "north"}))
    return services.review_create(member=tree.members[reviewer], target=node, today=TODAY)


def test_one_review_per_node_plan_and_period(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        _review(tree_a)
        with pytest.raises(Conflict):
            _review(tree_a)
        assert Review.objects.count() == 1


def test_who_may_review(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        assert _review(tree_a, "rep", member="rep").member_id == tree_a.members["rep"].pk
        assert _review(tree_a, "admin", unit="south").org_unit_id == tree_a.units["south"].pk
        with pytest.raises(Forbidden):
            _review(tree_a, "rep2", member="rep")


def test_action_items_are_follow_ups_of_their_owner_and_the_next_review_lists_them(
    tree_a: TenantTree,
) -> None:
    manager, rep = tree_a.members["manager"], tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        october = _review(tree_a)
        due = tenant_today(tree_a.tenant) + timedelta(days=3)
        first = services.review_action_add(
            member=manager,
            review=october,
            text="Call the five stalled quotes",
            owner=rep,
            due_date=due,
        )
        second = services.review_action_add(
            member=manager,
            review=october,
            text="Coach on discovery",
            owner=tree_a.members["rep2"],
            due_date=due,
        )
        follow_up = Activity.objects.get(pk=first.follow_up_id or 0)
        assert (follow_up.owner_id, follow_up.type, follow_up.is_follow_up) == (
            rep.pk,
            "task",
            True,
        )
        assert follow_up.subject == "Call the five stalled quotes"
        with pytest.raises(Invalid) as error:  # the manager is in North, not in North 1's…
            services.review_action_add(
                member=manager,
                review=_review(tree_a, unit="north-1"),
                text="x",
                owner=tree_a.members["south-rep"],
                due_date=due,
            )
        assert "owner" in error.value.message_dict
        activity_complete(member=rep, activity=follow_up)
        november = _review(tree_a, unit="north", month=11)
        previous = review_selectors.previous_review(november)
        assert previous is not None and previous.pk == october.pk
        actions = review_selectors.review_actions([previous])[previous.pk]
        done = {item.pk: bool(item.follow_up and item.follow_up.done_at) for item in actions}
        assert done == {first.pk: True, second.pk: False}


def test_closing_freezes_the_figures_and_twice_is_a_conflict(tree_a: TenantTree) -> None:
    manager = tree_a.members["manager"]
    with tenant_scope(tree_a.tenant):
        _october_case(tree_a)
        review = _review(tree_a, member="rep")
        closed = services.review_close(member=manager, review=review, today=TODAY)
        assert closed.status == ReviewStatus.CLOSED and closed.figures is not None
        assert closed.figures["gap"]["actual"] == "80000.00"
        with pytest.raises(Conflict):
            services.review_close(member=manager, review=review, today=TODAY)
        with pytest.raises(Conflict):
            services.review_update(member=manager, review=review, findings="late")
        deal(tree_a, tree_a.members["rep"], [(1, at(1)), (5, at(20))], amount="5000.00")
        frozen = review_selectors.review_figures_of(closed, caller=manager, today=TODAY)
        live = review_selectors.review_figures(
            review_selectors.review_target(closed), caller=manager, today=TODAY
        )
    assert frozen["gap"]["actual"] == "80000.00" and live["gap"]["actual"] == "85000.00"


def test_an_action_due_today_is_in_its_owners_digest(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        review = _review(tree_a)
        today = tenant_today(tree_a.tenant)
        action = services.review_action_add(
            member=tree_a.members["manager"],
            review=review,
            text="Re-quote Hangzhou Bright",
            owner=rep,
            due_date=today,
        )
        digests = collect_digests(tree_a.tenant, today)
    sections = {section["name"]: section["items"] for section in digests[rep.pk]}
    titles = [item["title"] for item in sections["follow_ups_today"]]
    assert titles == ["Re-quote Hangzhou Bright"]
    assert sections["follow_ups_today"][0]["id"] == action.follow_up_id


# --- API ----------------------------------------------------------------------------------


def _url(review: Review | int | None = None, suffix: str = "") -> str:
    if review is None:
        return "/api/v1/reviews/"
    pk = review if isinstance(review, int) else review.pk
    return f"/api/v1/reviews/{pk}/{suffix}"


def test_api_create_read_findings_actions_close(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    manager = client_for(tree_a.members["manager"])
    with tenant_scope(tree_a.tenant):
        _october_case(tree_a)
        node = _target(tree_a, unit="north")
        due = (tenant_today(tree_a.tenant) + timedelta(days=7)).isoformat()
    created = manager.post(_url(), {"target": node.pk}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "draft" and body["target"] == node.pk
    assert body["figures"]["factors"]["effects"]["total"] == body["figures"]["gap"]["gap"]
    assert [step["label"] for step in body["figures"]["factors"]["waterfall"]][0] == "Target"
    again = manager.post(_url(), {"target": node.pk}, format="json")
    assert again.status_code == 409
    review_id = body["id"]
    patched = manager.patch(_url(review_id), {"findings": "Fewer deals closed."}, format="json")
    assert patched.status_code == 200 and patched.json()["findings"] == "Fewer deals closed."
    action = manager.post(
        _url(review_id, "actions/"),
        {"text": "Review every stalled quote", "owner": tree_a.members["rep"].pk, "due_date": due},
        format="json",
    )
    assert action.status_code == 201, action.content
    assert action.json()["done"] is False and action.json()["follow_up"]
    outside = manager.post(
        _url(review_id, "actions/"),
        {"text": "x", "owner": tree_a.members["manager"].pk, "due_date": "2020-01-01"},
        format="json",
    )
    assert outside.status_code == 400 and "due_date" in outside.json()["error"]["fields"]
    zh = manager.get(_url(review_id), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert zh.status_code == 200
    closed = manager.post(_url(review_id, "close/"))
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert manager.post(_url(review_id, "close/")).status_code == 409
    assert manager.patch(_url(review_id), {"findings": "x"}, format="json").status_code == 409
    with tenant_scope(tree_a.tenant):
        assert ReviewAction.objects.count() == 1


def test_api_bad_input(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    manager = client_for(tree_a.members["manager"])
    with tenant_scope(tree_a.tenant):
        south = _target(tree_a, member="south-rep")
        future = _target(tree_a, unit="north", month=1, fiscal_year=2027)
        north_1 = _target(tree_a, unit="north-1")
        words = _target(tree_a, unit="north", metric="new_leads")
    with tenant_scope(tree_b.tenant):
        foreign = _target(tree_b, unit="north")
        foreign_rep = tree_b.members["rep"]
    # A node outside the reviewer's subtree, another tenant's node: 404, nothing written.
    assert manager.post(_url(), {"target": south.pk}, format="json").status_code == 404
    assert manager.post(_url(), {"target": foreign.pk}, format="json").status_code == 404
    assert manager.get(f"/api/v1/targets/{south.pk}/review/").status_code == 404
    assert manager.get(f"/api/v1/targets/{foreign.pk}/review/").status_code == 404
    # A period not started: 400 naming the period.
    response = manager.post(_url(), {"target": future.pk}, format="json")
    assert response.status_code == 400 and "period" in response.json()["error"]["fields"]
    assert manager.post(_url(), {"target": "abc"}, format="json").status_code == 400
    # A count plan: the review exists, its factor part says why not.
    counted = manager.post(_url(), {"target": words.pk}, format="json")
    assert counted.status_code == 201
    assert counted.json()["figures"]["factors"]["available"] is False
    assert counted.json()["figures"]["factors"]["message"]
    # Action owners: outside the node (400), another tenant's member (400).
    review = manager.post(_url(), {"target": north_1.pk}, format="json").json()
    due = "2027-01-15"
    for owner in (tree_a.members["manager"].pk, foreign_rep.pk):
        response = manager.post(
            _url(review["id"], "actions/"),
            {"text": "Do it", "owner": owner, "due_date": due},
            format="json",
        )
        assert response.status_code == 400 and "owner" in response.json()["error"]["fields"]
    with tenant_scope(tree_a.tenant):
        assert Review.objects.count() == 2 and ReviewAction.objects.count() == 0
        assert not Activity.objects.exists()


def test_api_visibility_reps_see_only_their_own_reviews(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        own = _review(tree_a, "rep", member="rep")
        unit = _review(tree_a)
    rep, rep2 = client_for(tree_a.members["rep"]), client_for(tree_a.members["rep2"])
    manager = client_for(tree_a.members["manager"])
    intruder = client_for(tree_b.members["admin"])
    assert [row["id"] for row in rep.get(_url()).json()["results"]] == [own.pk]
    assert rep2.get(_url()).json()["results"] == []
    assert rep2.get(_url(own)).status_code == 404
    assert rep2.post(_url(own, "close/")).status_code == 404
    assert rep.get(_url(unit)).status_code == 404
    assert {row["id"] for row in manager.get(_url()).json()["results"]} == {own.pk, unit.pk}
    assert intruder.get(_url(own)).status_code == 404
    assert intruder.get(_url()).json()["results"] == []
    assert intruder.patch(_url(own), {"findings": "x"}, format="json").status_code == 404


def test_api_list_query_count_does_not_grow(
    tree_a: TenantTree,
    client_for: Callable[[Membership], APIClient],
    django_assert_max_num_queries: Any,
) -> None:
    admin = client_for(tree_a.members["admin"])
    with tenant_scope(tree_a.tenant):
        _review(tree_a, "admin", unit="north", month=1)
    with CaptureQueriesContext(connection) as one:
        assert admin.get(_url()).status_code == 200
    with tenant_scope(tree_a.tenant):
        for month in range(2, 11):
            _review(tree_a, "admin", unit="north", month=month)
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = admin.get(_url(), {"page_size": 200})
    assert response.json()["count"] == 10


def test_preview_endpoint(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        target = _october_case(tree_a)
    response = client_for(tree_a.members["rep"]).get(f"/api/v1/targets/{target.pk}/review/")
    assert response.status_code == 200
    assert response.json()["factors"]["effects"]["volume"] == "-20000.00"
    with tenant_scope(tree_a.tenant):
        assert not Review.objects.exists()


# --- admin ------------------------------------------------------------------------------


def _login(username: str) -> Any:
    from django.test import Client

    from tests.factories import PASSWORD

    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_admin_lists_reviews_within_visibility_with_actions_and_frozen_figures(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_a.tenant):
        mine = _review(tree_a, "rep", member="rep")
        services.review_action_add(
            member=tree_a.members["rep"],
            review=mine,
            text="Book three demos",
            owner=tree_a.members["rep"],
            due_date=tenant_today(tree_a.tenant),
        )
        services.review_close(member=tree_a.members["rep"], review=mine, today=TODAY)
    with tenant_scope(tree_b.tenant):
        foreign = _review(tree_b, "admin", unit="north")
    page = _login("acme-rep").get(f"/admin/funnel/review/{mine.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "Book three demos" in content and "&quot;gap&quot;" in content
    assert _login("acme-rep2").get(f"/admin/funnel/review/{mine.pk}/change/").status_code == 302
    assert (
        _login("acme-rep2")
        .get("/admin/funnel/review/")
        .content.decode()
        .count(f"/admin/funnel/review/{mine.pk}/change/")
        == 0
    )
    assert _login("acme-manager").get("/admin/funnel/review/").status_code == 200
    # Another tenant's review: not found (the admin redirects to its index with a message).
    assert _login("acme-admin").get(f"/admin/funnel/review/{foreign.pk}/change/").status_code == 302


def test_admin_edits_a_drafts_findings_through_the_service(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        review = _review(tree_a)
    client = _login("acme-manager")
    response = client.post(
        f"/admin/funnel/review/{review.pk}/change/",
        {
            "findings": "Win rate fell at Quote.",
            "actions-TOTAL_FORMS": "0",
            "actions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    with tenant_scope(tree_a.tenant):
        assert Review.objects.get(pk=review.pk).findings == "Win rate fell at Quote."
    rep = _login("acme-rep").post(
        f"/admin/funnel/review/{review.pk}/change/", {"findings": "mine now"}
    )
    assert rep.status_code in (302, 403, 404)
    with tenant_scope(tree_a.tenant):
        assert Review.objects.get(pk=review.pk).findings == "Win rate fell at Quote."


def test_two_closes_at_once_close_once_and_two_creates_at_once_create_once(
    transactional_db: None,
) -> None:
    import threading

    from tests.factories import build_tenant_tree

    tree = build_tenant_tree("race", "Race 竞速")
    with tenant_scope(tree.tenant):
        node = _target(tree, member="rep")
        review = services.review_create(member=tree.members["admin"], target=node, today=TODAY)
        other = _target(tree, member="rep2")

    def race(work: Callable[[], Any]) -> list[str]:
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def run() -> None:
            barrier.wait()
            try:
                with tenant_scope(tree.tenant):
                    work()
                outcomes.append("ok")
            except Conflict:
                outcomes.append("conflict")
            finally:
                connection.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sorted(outcomes)

    closes = race(
        lambda: services.review_close(member=tree.members["admin"], review=review, today=TODAY)
    )
    creates = race(
        lambda: services.review_create(member=tree.members["admin"], target=other, today=TODAY)
    )
    assert closes == ["conflict", "ok"]
    assert creates == ["conflict", "ok"]
    with tenant_scope(tree.tenant):
        assert Review.objects.filter(status=ReviewStatus.CLOSED).count() == 1
        assert Review.objects.count() == 2
