"""The funnel over the API: a manager's view of their team, bad input, alerts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import Opportunity
from funnel.warnings import evaluate_warnings
from targets.models import Target
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.funnel.test_funnel import at, deal

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]
OCTOBER: dict[str, Any] = {"start": "2026-10-01", "end": "2026-10-31"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def team(tree_a: TenantTree) -> TenantTree:
    rep, south = tree_a.members["rep"], tree_a.members["south-rep"]
    with tenant_scope(tree_a.tenant):
        deal(tree_a, rep, [(1, at(1)), (2, at(3)), (5, at(8))], amount="5000.00")
        deal(tree_a, rep, [(1, at(2)), (6, at(9))], amount="800.00", lost_reason="Price")
        deal(tree_a, south, [(1, at(2)), (3, at(4))], amount="900.00")
    return tree_a


def test_a_manager_sees_their_teams_funnel(team: TenantTree, client_for: ClientFor) -> None:
    manager = client_for(team.members["manager"])
    conversion = ok(manager.get("/api/v1/funnel/conversion/", OCTOBER))
    assert conversion["created"] == 2 and conversion["won"] == 1  # the south deal is hidden
    assert [row["reached"] for row in conversion["stages"]] == [2, 1, 1, 1]
    assert conversion["stages"][0]["rate_to_next_stage"] == "0.5000"
    assert conversion["closed"] == {"won": 1, "lost": 1, "win_rate": "0.5000"}
    loss = ok(manager.get("/api/v1/funnel/loss/", OCTOBER))["losses"]
    assert [(row["reason"], row["amount"]) for row in loss] == [("Price", "800.00")]
    cycle = ok(manager.get("/api/v1/funnel/cycle/", OCTOBER))
    assert cycle["cycle"] == {"wins": 1, "mean_days": "7.00", "median_days": "7.00"}
    pipeline = ok(manager.get("/api/v1/funnel/pipeline/", OCTOBER))
    assert pipeline["total"]["deals"] == 0
    admin = client_for(team.members["admin"])
    assert ok(admin.get("/api/v1/funnel/conversion/", OCTOBER))["created"] == 3


def test_the_same_question_gets_the_same_numbers_whatever_the_filter_path(
    team: TenantTree, client_for: ClientFor
) -> None:
    admin = client_for(team.members["admin"])
    by_unit = ok(
        admin.get("/api/v1/funnel/conversion/", {**OCTOBER, "org_unit": team.units["north"].pk})
    )
    as_manager = ok(client_for(team.members["manager"]).get("/api/v1/funnel/conversion/", OCTOBER))
    assert by_unit["stages"] == as_manager["stages"]


def test_bad_funnel_questions_are_4xx(team: TenantTree, client_for: ClientFor) -> None:
    manager = client_for(team.members["manager"])
    backwards = manager.get(
        "/api/v1/funnel/conversion/", {"start": "2026-10-31", "end": "2026-10-01"}
    )
    assert backwards.status_code == 400 and "end" in backwards.json()["error"]["fields"]
    assert manager.get("/api/v1/funnel/loss/", {"start": "soon"}).status_code == 400
    outside = manager.get("/api/v1/funnel/conversion/", {"member": team.members["south-rep"].pk})
    assert outside.status_code == 404
    assert (
        manager.get("/api/v1/funnel/cycle/", {"org_unit": team.units["south"].pk}).status_code
        == 404
    )
    assert manager.get("/api/v1/funnel/pipeline/", {"pipeline": 999999}).status_code == 404
    assert (
        client_for(team.members["rep"])
        .get("/api/v1/funnel/conversion/", {"member": team.members["rep2"].pk})
        .status_code
        == 404
    )


def test_plan_to_close_over_the_api(team: TenantTree, client_for: ClientFor) -> None:
    rep = client_for(team.members["rep"])
    with tenant_scope(team.tenant):
        records.published_plan(team)
        target = Target.objects.get(
            member=team.members["rep"], period_kind="year", product_line=None
        )
        records.published_plan(team, metric="won_deals")
        count_target = Target.objects.get(
            member=team.members["rep"],
            period_kind="year",
            product_line=None,
            plan__metric="won_deals",
        )
    result = ok(rep.get(f"/api/v1/targets/{target.pk}/plan-to-close/", {"as_of": "2026-11-01"}))
    assert result["gap"] == "295000.00"  # 300,000 minus the 5,000 won in October
    assert result["wins"]["value"] == 59 and result["wins"]["source"] == "tenant"
    mine = ok(rep.get("/api/v1/me/plan-to-close/", {"as_of": "2026-11-01", "period_kind": "year"}))
    assert mine["periods"] == [result]
    wrong = rep.get(f"/api/v1/targets/{count_target.pk}/plan-to-close/", {"as_of": "2026-11-01"})
    assert wrong.status_code == 400
    other = client_for(team.members["rep2"]).get(f"/api/v1/targets/{target.pk}/plan-to-close/")
    assert other.status_code == 404


def test_my_plan_to_close_answers_the_month_quarter_and_year_that_still_matter(
    team: TenantTree, client_for: ClientFor
) -> None:
    rep = team.members["rep"]
    with tenant_scope(team.tenant):
        records.published_plan(team)  # rep: 300,000 a year, 25,000 a month
        # 30,000 won on 1 November: the month is met; Q4 (75,000) still lacks 40,000.
        deal(team, rep, [(1, at(20)), (5, at(1, 11))], amount="30000.00")
    client = client_for(rep)
    mine = ok(client.get("/api/v1/me/plan-to-close/", {"as_of": "2026-11-01"}))
    periods = {row["period_kind"]: row for row in mine["periods"]}
    assert [row["period_kind"] for row in mine["periods"]] == ["month", "quarter", "year"]
    assert periods["month"]["gap"] == "0.00" and periods["month"]["wins"]["value"] == 0
    # Quarter 75,000 − 5,000 (October) − 30,000 = 40,000; year 300,000 − 35,000.
    assert periods["quarter"]["gap"] == "40000.00"
    assert periods["year"]["gap"] == "265000.00"
    # Wins from the tenant's history: two wins, 5,000 and 30,000 → mean 17,500.
    assert periods["quarter"]["wins"]["value"] == 3  # ceil(40,000 / 17,500)
    assert periods["quarter"]["stages"][-1]["next_stage"] == "赢单 Won"
    only = ok(
        client.get("/api/v1/me/plan-to-close/", {"as_of": "2026-11-01", "period_kind": "quarter"})
    )
    assert only["periods"] == [periods["quarter"]]
    bad = client.get("/api/v1/me/plan-to-close/", {"period_kind": "week"})
    assert bad.status_code == 400 and "period_kind" in bad.json()["error"]["fields"]


def test_alerts_explain_themselves_in_the_readers_language(
    team: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(team.tenant):
        records.activity(team, team.members["rep"])
        evaluate_warnings(tenant_id=team.tenant.pk, as_of=date(2026, 11, 1))
    rep = client_for(team.members["rep"])
    alerts = ok(rep.get("/api/v1/alerts/", {"rule": "overdue_follow_ups"}))["results"]
    assert len(alerts) == 1
    assert alerts[0]["message"] == "1 follow-ups are overdue, more than the 0 allowed."
    chinese = ok(
        rep.get("/api/v1/alerts/", {"rule": "overdue_follow_ups"}, HTTP_ACCEPT_LANGUAGE="zh-hans")
    )["results"][0]["message"]
    assert chinese != alerts[0]["message"] and "1" in chinese
    acknowledged = ok(rep.post(f"/api/v1/alerts/{alerts[0]['id']}/acknowledge/"))
    assert acknowledged["status"] == "acknowledged"
    assert ok(client_for(team.members["rep2"]).get("/api/v1/alerts/"))["count"] == 0


def test_warning_rule_thresholds_are_validated(team: TenantTree, client_for: ClientFor) -> None:
    admin = client_for(team.members["admin"])
    rules = {row["key"]: row for row in ok(admin.get("/api/v1/warning-rules/"))["results"]}
    assert len(rules) == 6
    url = f"/api/v1/warning-rules/{rules['low_win_rate']['id']}/"
    too_high = admin.patch(url, {"thresholds": {"win_rate": "1.5"}}, format="json")
    assert too_high.status_code == 400 and "thresholds" in too_high.json()["error"]["fields"]
    assert admin.patch(url, {"thresholds": {"min_closed": -1}}, format="json").status_code == 400
    changed = ok(
        admin.patch(url, {"thresholds": {"win_rate": "0.2"}, "enabled": False}, format="json")
    )
    assert changed["thresholds"]["win_rate"] == "0.2" and changed["enabled"] is False
    assert changed["thresholds"]["min_closed"] == 5
    rep = client_for(team.members["rep"])
    assert rep.patch(url, {"enabled": True}, format="json").status_code == 403


@pytest.mark.parametrize(
    "url", ["/api/v1/alerts/", "/api/v1/funnel/stale/", "/api/v1/warning-rules/"]
)
def test_funnel_lists_use_a_fixed_number_of_queries(
    url: str, team: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(team.tenant):
        for _ in range(3):
            records.activity(team, team.members["rep"])
        records.alert(team)
        evaluate_warnings(tenant_id=team.tenant.pk)
    admin = client_for(team.members["admin"])
    counts = []
    # Pages of 1 and 2 rows count; one of 200 holding the whole list need not.
    for size in (1, 2, 200):
        with CaptureQueriesContext(connection) as context:
            ok(admin.get(url, {"page_size": size}))
        counts.append(len(context.captured_queries))
    # Stale deals also read the tenant, its rules and the pipeline's open stages: still
    # constant whatever the page.
    assert counts[0] == counts[1] <= 11 and counts[2] <= counts[0]


def test_the_weighted_pipeline_rounds_half_a_cent_up(
    team: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(team.tenant):
        deal_ = records.opportunity(team, team.members["rep"], amount=D("1000.05"))
        Opportunity.objects.filter(pk=deal_.pk).update(expected_close_date=date(2026, 10, 20))
    pipeline = ok(client_for(team.members["admin"]).get("/api/v1/funnel/pipeline/", OCTOBER))
    # 1,000.05 × 10 % (Qualification) = 100.005 → 100.01 (half-even gave 100.00).
    assert pipeline["total"] == {"deals": 1, "amount": "1000.05", "weighted": "100.01"}


def test_the_funnel_figures_narrow_to_a_product_line(
    team: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    """ERP: the October win (5,000.00) and an open deal at stage 2 (1,000.00 at 40 %,
    closing on 20 October); CRM: the loss (800.00, "Price"). The south deal stays hidden."""
    with tenant_scope(team.tenant):
        won, lost = Opportunity.objects.filter(owner=team.members["rep"]).order_by("created_at")
        erp = records.product_line(team, "ERP")
        crm = records.product_line(team, "CRM")
        still_open = deal(team, team.members["rep"], [(1, at(3)), (2, at(5))], amount="1000.00")
        Opportunity.objects.filter(pk__in=[won.pk, still_open.pk]).update(product_line=erp)
        Opportunity.objects.filter(pk=still_open.pk).update(
            expected_close_date=date(2026, 10, 20), probability_override=40
        )
        Opportunity.objects.filter(pk=lost.pk).update(product_line=crm)
    with tenant_scope(tree_b.tenant):
        foreign = records.product_line(tree_b, "Foreign")
    manager = client_for(team.members["manager"])
    on_erp, on_crm = {**OCTOBER, "product_line": erp.pk}, {**OCTOBER, "product_line": crm.pk}

    conversion = ok(manager.get("/api/v1/funnel/conversion/", on_erp))
    assert conversion["product_line"] == erp.pk
    assert (conversion["created"], conversion["won"]) == (2, 1)
    assert [row["reached"] for row in conversion["stages"]] == [2, 2, 1, 1]
    assert conversion["closed"] == {"won": 1, "lost": 0, "win_rate": "1.0000"}
    conversion = ok(manager.get("/api/v1/funnel/conversion/", on_crm))
    assert (conversion["created"], conversion["won"]) == (1, 0)
    assert [row["reached"] for row in conversion["stages"]] == [1, 0, 0, 0]
    assert conversion["closed"] == {"won": 0, "lost": 1, "win_rate": "0.0000"}
    assert ok(manager.get("/api/v1/funnel/loss/", on_erp))["losses"] == []
    losses = ok(manager.get("/api/v1/funnel/loss/", on_crm))["losses"]
    assert [(row["reason"], row["amount"]) for row in losses] == [("Price", "800.00")]
    assert ok(manager.get("/api/v1/funnel/cycle/", on_erp))["cycle"]["wins"] == 1
    assert ok(manager.get("/api/v1/funnel/cycle/", on_crm))["cycle"]["wins"] == 0
    pipeline = ok(manager.get("/api/v1/funnel/pipeline/", on_erp))
    assert pipeline["total"] == {"deals": 1, "amount": "1000.00", "weighted": "400.00"}
    assert ok(manager.get("/api/v1/funnel/pipeline/", on_crm))["total"]["deals"] == 0
    # No product line: every deal, as before.
    assert ok(manager.get("/api/v1/funnel/conversion/", OCTOBER))["created"] == 3

    for bad in (foreign.pk, 999999, "erp"):
        for path in ("conversion", "loss", "cycle", "pipeline"):
            answer = manager.get(f"/api/v1/funnel/{path}/", {**OCTOBER, "product_line": bad})
            assert answer.status_code == 400, (path, bad)
            assert "product_line" in answer.json()["error"]["fields"]
