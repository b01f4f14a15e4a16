"""The pages (SPEC section 12) through Django's test client: who lands where, what each
role may open, the figures against the API's answers and hand-computed cases, the
adjust dialog, approvals and the plan editor, another tenant's ids (404) and the query
count of every page, constant whatever the team's size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from targets.achievement import achievement_json
from targets.models import AdjustmentStatus, Target, TargetAdjustment, TargetPlan
from targets.services import (
    plan_create,
    plan_lock,
    target_adjust,
)
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import TenantTree
from tests.funnel.test_warnings_and_plan import reach_walks
from tests.web.builders import Team, target_of, team_with_figures

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], Any]
# Inside FY2026's fourth quarter (calendar fiscal year): the hand-computed cases below.
TODAY = "2026-11-23 10:00:00+00:00"


@pytest.fixture(autouse=True)
def _november() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=False):
        yield


@pytest.fixture
def team(tree_a: TenantTree) -> Team:
    return team_with_figures(tree_a)


def browser_for(member: Membership) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def test_the_root_sends_each_person_to_their_page(team: Team) -> None:
    assert Client().get("/")["Location"] == "/app/login/"
    members = team.tree.members
    assert browser_for(members["rep"]).get("/")["Location"] == "/app/"
    assert browser_for(members["manager"]).get("/")["Location"] == "/app/team/"
    assert browser_for(members["admin"]).get("/")["Location"] == "/app/team/"


def test_pages_ask_for_a_login_and_the_login_page_logs_in(team: Team) -> None:
    response = Client().get("/app/team/")
    assert response.status_code == 302
    assert response["Location"] == "/app/login/?next=/app/team/"
    client = Client()
    page = client.get("/app/login/")
    assert page.status_code == 200 and b'id="id_username"' in page.content
    username = team.tree.members["manager"].user.username
    from tests.factories import PASSWORD

    done = client.post("/app/login/", {"username": username, "password": PASSWORD})
    assert done["Location"] == "/"
    assert client.get("/app/team/").status_code == 200
    wrong = Client().post("/app/login/", {"username": username, "password": "nope"})
    assert wrong.status_code == 200 and b'class="error"' in wrong.content


def test_a_rep_cannot_open_the_team_nor_the_plans(team: Team) -> None:
    rep = browser_for(team.tree.members["rep"])
    assert rep.get("/app/team/").status_code == 403
    assert rep.get("/app/plans/").status_code == 403
    assert rep.get("/app/").status_code == 200
    assert rep.get("/app/incentives/").status_code == 200


def test_my_day_shows_the_reps_targets_pace_visits_follow_ups_and_alerts(team: Team) -> None:
    members = team.tree.members
    page = browser_for(members["rep"]).get("/app/")
    assert page.status_code == 200
    html = page.content.decode()
    rows = page.context["targets"]
    quarter = next(a for t, a in rows if t.period_kind == "quarter")
    # 1,200,000 split equally: North 600,000 → North 1 → two reps, 300,000 a year each,
    # 75,000 a quarter; one deal of 120,000 won today → 160 % of the quarter.
    assert (quarter.target, quarter.actual) == (Decimal("75000.00"), Decimal("120000.00"))
    assert "75,000.00 CNY" in html and "120,000.00 CNY" in html and "160.0%" in html
    assert len(page.context["visits"]) == 1
    assert len(page.context["overdue"]) == 1
    assert "Follow up on quote" in html
    # The alert is about south-rep: not this rep's.
    assert page.context["alerts"]["rows"] == []
    south = browser_for(members["south-rep"]).get("/app/")
    assert len(south.context["alerts"]["rows"]) == 1
    assert "<meter" in html and 'style="' not in html  # bars without inline styles


def test_the_team_page_agrees_with_the_achievement_and_funnel_apis(
    team: Team, client_for: ClientFor
) -> None:
    manager = team.tree.members["manager"]
    north = team.tree.units["north"]
    page = browser_for(manager).get(
        "/app/team/", {"plan": str(team.plan.pk), "period": "quarter-4", "unit": str(north.pk)}
    )
    assert page.status_code == 200
    api = client_for(manager)
    answer = api.get(
        f"/api/v1/target-plans/{team.plan.pk}/achievement/",
        {"period_kind": "quarter", "period_index": 4},
    ).json()
    # (The API's node repeats "target" for the target's value: keyed by assignee here.)
    by_assignee = {(node["org_unit"], node["member"]): node for node in answer["nodes"]}
    rows = page.context["rows"]
    assert [row.name for row in rows] == ["North", "North 1", "acme-rep", "acme-rep2"]
    for row in rows:
        node = by_assignee[(row.target.org_unit_id, row.target.member_id)]
        shown = achievement_json(row.achievement)
        assert {key: node[key] for key in shown} == shown
    north_row = next(row for row in rows if row.is_unit and row.target.org_unit_id == north.pk)
    # North's quarter: 150,000; 120,000 won → 80.0 %.
    assert north_row.achievement.attainment == Decimal("0.8")
    assert "80.0%" in page.content.decode()
    funnel = page.context["funnel"]
    conversion = api.get(
        "/api/v1/funnel/conversion/",
        {"org_unit": north.pk, "start": "2026-10-01", "end": "2026-12-31"},
    ).json()
    assert funnel["created"] == conversion["created"] == 1
    assert [s["reached"] for s in funnel["stages"]] == [s["reached"] for s in conversion["stages"]]
    pipeline = api.get(
        "/api/v1/funnel/pipeline/",
        {"org_unit": north.pk, "start": "2026-10-01", "end": "2026-12-31"},
    ).json()
    assert str(funnel["weighted"]["total"]["deals"]) == str(pipeline["total"]["deals"])
    # The chart's data is a JSON block (no inline script code) and the last month stops
    # at today.
    assert 'id="cumulative-data" type="application/json"' in page.content.decode()
    assert [point["month"] for point in page.context["chart"]] == ["2026-10", "2026-11", "2026-12"]
    assert page.context["chart"][-1]["actual"] is None


def test_team_filters_narrow_the_tree_and_an_htmx_request_gets_the_partial(team: Team) -> None:
    manager = browser_for(team.tree.members["manager"])
    north_1 = team.tree.units["north-1"]
    page = manager.get(
        "/app/team/",
        {"unit": str(north_1.pk), "period": "month-11"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="team-body",
    )
    assert page.status_code == 200
    assert b"<html" not in page.content  # the partial only
    assert {row.name for row in page.context["rows"]} == {"North 1", "acme-rep", "acme-rep2"}
    assert page.context["query"].period.period_kind == "month"


def test_a_manager_adjusts_a_reps_target_with_a_reason_from_the_page(team: Team) -> None:
    manager = browser_for(team.tree.members["manager"])
    target = target_of(team.tree, team.plan, member=team.tree.members["rep"])
    url = f"/app/targets/{target.pk}/adjust/"
    dialog = manager.get(url)
    assert dialog.status_code == 200 and b'name="reason"' in dialog.content
    missing = manager.post(url, {"new_value": "90000", "trigger": "market", "reason": ""})
    assert missing.status_code == 422 and b"This field is required" in missing.content
    with tenant_scope(team.tree.tenant):
        assert not TargetAdjustment.objects.exists()
    done = manager.post(
        url, {"new_value": "90000", "trigger": "market", "reason": "New key account"}
    )
    assert done.status_code == 200 and done["HX-Trigger"] == "targets-changed"
    assert "90,000.00 CNY" in done.content.decode()
    with tenant_scope(team.tree.tenant):
        assert Target.objects.get(pk=target.pk).value == Decimal("90000.00")
        assert TargetAdjustment.objects.get().reason == "New key account"


def test_a_locked_plans_request_waits_and_is_approved_on_the_team_page(team: Team) -> None:
    tree = team.tree
    target = target_of(tree, team.plan, member=tree.members["rep"])
    with tenant_scope(tree.tenant):
        plan_lock(member=tree.members["admin"], plan=team.plan)
    manager = browser_for(tree.members["manager"])
    asked = manager.post(
        f"/app/targets/{target.pk}/adjust/",
        {"new_value": "60000", "trigger": "personnel", "reason": "Leave"},
    )
    assert asked.status_code == 200 and b"waits for approval" in asked.content
    admin = browser_for(tree.members["admin"])
    page = admin.get("/app/team/")
    (waiting,) = page.context["waiting"]["adjustments"]
    assert waiting.reason == "Leave"
    decided = admin.post(f"/app/adjustments/{waiting.pk}/approve/")
    assert decided.status_code == 200 and b"Approved." in decided.content
    with tenant_scope(tree.tenant):
        assert TargetAdjustment.objects.get().status == AdjustmentStatus.APPLIED
        assert Target.objects.get(pk=target.pk).value == Decimal("60000.00")
    again = admin.post(f"/app/adjustments/{waiting.pk}/approve/")
    assert b"decided already" in again.content


def test_the_plan_editor_previews_without_saving_then_applies_and_publishes(
    tree_a: TenantTree,
) -> None:
    admin_member = tree_a.members["admin"]
    with tenant_scope(tree_a.tenant):
        plan = plan_create(
            member=admin_member,
            fiscal_year=2026,
            metric="won_amount",
            annual_total=Decimal("1200000.00"),
        )
    admin = browser_for(admin_member)
    page = admin.get("/app/plans/", {"plan": plan.pk})
    assert page.status_code == 200 and page.context["can_plan"]
    form = {"time_method": "equal", "org_method": "equal", "headroom": "0", "ramp": "on"}
    bad = admin.post(f"/app/plans/{plan.pk}/decompose/preview/", {**form, "headroom": "2"})
    assert bad.status_code == 422 and b"Headroom" in bad.content
    preview = admin.post(f"/app/plans/{plan.pk}/decompose/preview/", form)
    assert preview.status_code == 200
    assert preview.context["unassigned"] == Decimal("0.00")
    assert "1,200,000.00 CNY" in preview.content.decode()
    assert len(preview.context["nodes"]) == 7
    with tenant_scope(tree_a.tenant):
        assert not Target.objects.exists()
    applied = admin.post(f"/app/plans/{plan.pk}/decompose/apply/", form)
    assert applied.status_code == 204 and applied["HX-Redirect"].endswith(f"?plan={plan.pk}")
    published = admin.post(f"/app/plans/{plan.pk}/publish/")
    assert published.status_code == 302
    with tenant_scope(tree_a.tenant):
        assert TargetPlan.objects.get(pk=plan.pk).status == "published"
        assert Target.objects.filter(plan=plan).exists()
    tree = admin.get("/app/plans/", {"plan": plan.pk})
    assert len(tree.context["rows"]) == 7  # the year's nodes, each with an adjust button
    # A manager below the top reads the plans but may not decompose.
    manager = browser_for(tree_a.members["manager"])
    assert manager.get("/app/plans/").context["can_plan"] is False
    assert manager.post(f"/app/plans/{plan.pk}/decompose/preview/", form).status_code == 403


def test_another_tenants_ids_are_404_on_every_page(team: Team, tree_b: TenantTree) -> None:
    other = team_with_figures(tree_b)
    with tenant_scope(tree_b.tenant):
        foreign_adjustment = target_adjust(
            member=tree_b.members["admin"],
            target=target_of(tree_b, other.plan, member=tree_b.members["rep"]),
            new_value=Decimal("70000.00"),
            reason="x",
            trigger="other",
        )
    foreign_target = target_of(tree_b, other.plan, member=tree_b.members["rep"])
    admin = browser_for(team.tree.members["admin"])
    assert admin.get("/app/team/", {"unit": tree_b.units["north"].pk}).status_code == 404
    assert admin.get("/app/team/", {"plan": other.plan.pk}).status_code == 404
    assert admin.get("/app/plans/", {"plan": other.plan.pk}).status_code == 404
    assert admin.get(f"/app/targets/{foreign_target.pk}/adjust/").status_code == 404
    assert admin.post(f"/app/adjustments/{foreign_adjustment.pk}/approve/").status_code == 404
    assert admin.post(f"/app/plans/{other.plan.pk}/publish/").status_code == 404
    assert admin.post(f"/app/statements/{foreign_adjustment.pk}/approve/").status_code == 404


def test_a_rep_and_a_manager_see_only_their_own_and_their_subtrees_targets(team: Team) -> None:
    tree = team.tree
    rep = browser_for(tree.members["rep"])
    other_rep = target_of(tree, team.plan, member=tree.members["rep2"])
    assert rep.get(f"/app/targets/{other_rep.pk}/adjust/").status_code == 404
    south = target_of(tree, team.plan, unit="south")
    manager = browser_for(tree.members["manager"])
    assert manager.get(f"/app/targets/{south.pk}/adjust/").status_code == 404
    assert manager.get("/app/team/", {"unit": tree.units["south"].pk}).status_code == 404


def test_the_pages_speak_chinese_when_asked(team: Team) -> None:
    manager = browser_for(team.tree.members["manager"])
    manager.post("/i18n/setlang/", {"language": "zh-hans", "next": "/app/team/"})
    page = manager.get("/app/team/")
    assert b'<html lang="zh-hans">' in page.content


PAGES = ["/app/", "/app/team/", "/app/plans/", "/app/incentives/"]


def _count(client: Client, url: str) -> int:
    """The page's queries, but for the tenant's reached counts in My day's plan to close:
    they are read only when a stage rate falls back to the tenant, which depends on the
    rep's own deals, not on the team's size (``funnel.rates.DeferredCounts``)."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    if url != "/app/":
        return len(captured.captured_queries)
    walks = reach_walks(captured)
    # My day's plan is a rep's: the rep's and the unit's walks always run, a third is the
    # tenant's.
    return len(captured.captured_queries) - max(0, walks - 2)


@pytest.mark.parametrize("url", PAGES)
def test_each_page_takes_a_fixed_number_of_queries_whatever_the_teams_size(
    url: str, tree_a: TenantTree, tree_b: TenantTree, django_assert_max_num_queries: Any
) -> None:
    small = team_with_figures(tree_a)
    big = team_with_figures(tree_b, extra_reps=12)
    role = "rep" if url in ("/app/", "/app/incentives/") else "admin"
    small_client = browser_for(small.tree.members[role])
    big_client = browser_for(big.tree.members[role])
    _count(small_client, url), _count(big_client, url)  # sessions settle (tenant chosen)
    counts = (_count(small_client, url), _count(big_client, url))
    assert counts[0] == counts[1], counts
    with django_assert_max_num_queries(MAX_QUERIES[url]):
        big_client.get(url)


MAX_QUERIES = {"/app/": 45, "/app/team/": 40, "/app/plans/": 16, "/app/incentives/": 20}


def test_a_user_in_two_tenants_sees_the_tenant_chosen_in_the_admin(
    team: Team, tree_b: TenantTree
) -> None:
    from tests.tenancy.test_invitations import join_by_invitation

    other = join_by_invitation(tree_b, team.tree.members["admin"], role="admin")
    client = browser_for(team.tree.members["admin"])
    assert client.get("/app/team/").context["query"].unit == team.tree.units["company"]
    client.post("/admin/switch-tenant/", {"membership": other.pk, "next": "/app/team/"})
    page = client.get("/app/team/")
    assert page.context["member"].pk == other.pk
    assert page.context["query"].unit == tree_b.units["company"]
    assert page.context["query"].plan is None  # globex has no plan yet


def test_the_admins_view_site_link_leads_to_the_pages(team: Team) -> None:
    admin = browser_for(team.tree.members["admin"])
    index = admin.get("/admin/").content.decode()
    assert '<a href="/">View site</a>' in index
    assert admin.get("/")["Location"] == "/app/team/"
