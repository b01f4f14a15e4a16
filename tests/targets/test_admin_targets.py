"""The targets admin for managers: plans with their tree and achievement, targets within
visibility, adjustments with a reason, approvals, and nothing of another tenant."""

from __future__ import annotations

import re
from decimal import Decimal
from html import unescape
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from targets import calendar, services
from targets.models import (
    AdjustmentStatus,
    PlanStatus,
    RampSchedule,
    Target,
    TargetAdjustment,
    TargetPlan,
)
from tenancy.models import Role
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree, add_member

pytestmark = pytest.mark.django_db
PLANS = "/admin/targets/targetplan/"
TARGETS = "/admin/targets/target/"
ADJUSTMENTS = "/admin/targets/targetadjustment/"
D = Decimal


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def this_fiscal_year(tree: TenantTree) -> int:
    tenant = tree.tenant
    today = calendar.local_date(timezone.now(), tenant.time_zone)
    return calendar.fiscal_year_of(today, tenant.fiscal_year_start_month)


def published(tree: TenantTree, name: str = "Annual plan") -> TargetPlan:
    """This fiscal year's won-amount plan of 1,200,000, equal splits, published (call
    inside the tenant's scope): reps of North 1 get 300,000 each, the South rep 600,000."""
    admin = tree.members["admin"]
    plan = services.plan_create(
        member=admin,
        fiscal_year=this_fiscal_year(tree),
        metric="won_amount",
        annual_total=D("1200000.00"),
        name=name,
    )
    services.plan_decompose(member=admin, plan=plan, settings=services.DecomposeSettings())
    return services.plan_publish(member=admin, plan=plan)


def node(plan: TargetPlan, member: Any, kind: str = "year", index: int = 0) -> Target:
    return Target.objects.get(
        plan=plan, member=member, period_kind=kind, period_index=index, product_line=None
    )


def _text(cell: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", cell)).strip()


def changelist_rows(html: str) -> list[dict[str, str]]:
    """The result rows of a changelist: column name → text."""
    body = html.split('id="result_list"', 1)[1].split("</table>", 1)[0]
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S):
        cells = re.findall(r'<t[dh] class="field-([\w_]+)[^"]*"[^>]*>(.*?)</t[dh]>', row, re.S)
        rows.append({name: _text(cell) for name, cell in cells})
    return rows


def tree_rows(html: str) -> list[tuple[int, str, str, str]]:
    """The plan page's tree: (depth, name, target, attainment) per row, in order."""
    body = html.split('id="plan-tree"', 1)[1].split("</table>", 1)[0]
    rows = []
    for depth, row in re.findall(r'<tr class="\w+" data-depth="(\d+)"[^>]*>(.*?)</tr>', body, re.S):
        cells = [_text(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows.append((int(depth), cells[0], cells[1], cells[3]))
    return rows


def act(client: Client, url: str, action: str, ids: list[int], **extra: Any) -> Any:
    return client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids], **extra}
    )


def messages_of(client: Client) -> str:
    return client.get(TARGETS + "?period_kind__exact=year").content.decode()


# --- lists and pages ------------------------------------------------------------------------


def test_a_managers_target_list_shows_only_their_subtree_with_achievement_columns(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
        records.won_opportunity(tree_a, tree_a.members["rep"])  # 120,000 of 300,000
        south = node(plan, tree_a.members["south-rep"])
    client = login("acme-manager")
    response = client.get(TARGETS, {"plan__id__exact": str(plan.pk), "period_kind__exact": "year"})
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Attainment", "Pace", "Status"):
        assert f">{header}<" in html or f">{header}</a>" in html
    rows = {row["assignee"]: row for row in changelist_rows(html)}
    assert set(rows) == {"North", "North 1", "acme-rep", "acme-rep2"}
    assert rows["acme-rep"]["attainment"] == "40.0%"
    assert rows["acme-rep"]["pace_status"] in {"On track", "At risk", "Off track"}
    assert re.fullmatch(r"\d[\d,]*\.\d%", rows["acme-rep"]["pace"]), rows["acme-rep"]["pace"]
    assert rows["North 1"]["attainment"] == "20.0%"  # 120,000 of 600,000
    assert rows["acme-rep2"]["attainment"] == "0.0%"
    # Every period of the subtree is there, and nothing of the South.
    all_rows = changelist_rows(client.get(TARGETS, {"plan__id__exact": plan.pk}).content.decode())
    assert len(all_rows) == 4 * 17
    assert client.get(f"{TARGETS}{south.pk}/change/").status_code in (302, 404)


def test_the_plan_page_shows_the_indented_tree_with_attainment_in_bounded_queries(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        small = published(tree_a)
        records.won_opportunity(tree_a, tree_a.members["rep"])
    client = login("acme-admin")
    client.get(f"{PLANS}{small.pk}/change/")  # warm up: the session's tenant, content types
    with CaptureQueriesContext(connection) as few:
        response = client.get(f"{PLANS}{small.pk}/change/")
    assert response.status_code == 200
    assert tree_rows(response.content.decode()) == [
        (0, "Acme 顶点", "1,200,000.00", "10.0%"),
        (1, "North", "600,000.00", "20.0%"),
        (2, "North 1", "600,000.00", "20.0%"),
        (3, "acme-rep", "300,000.00", "40.0%"),
        (3, "acme-rep2", "300,000.00", "0.0%"),
        (1, "South", "600,000.00", "0.0%"),
        (2, "acme-south-rep", "600,000.00", "0.0%"),
    ]

    with tenant_scope(tree_a.tenant):
        for number in range(10):
            unit = tree_a.units["north-1" if number % 2 else "south"]
            add_member(tree_a.tenant, f"extra{number}", Role.REP, unit, slug="acme")
        # One plan in force per year and metric: retire the small one to publish the large.
        TargetPlan.objects.filter(pk=small.pk).update(status="draft")
        large = published(tree_a, name="Stretch")
    with CaptureQueriesContext(connection) as many:
        response = client.get(f"{PLANS}{large.pk}/change/")
    assert len(tree_rows(response.content.decode())) == 17
    # 16 today: session, user, scope, membership, plan, permissions, the visible nodes,
    # and plan_achievements' tenant, nodes, unit paths, actuals and open pipeline.
    assert len(many) == len(few)

    # The target list computes its achievement columns per page, not per row, too.
    counts = []
    for plan in (small, large):
        with CaptureQueriesContext(connection) as queries:
            listed = client.get(
                TARGETS, {"plan__id__exact": str(plan.pk), "period_kind__exact": "year"}
            )
        assert len(changelist_rows(listed.content.decode())) in (7, 17)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_manager_sees_only_their_subtree_in_the_plan_tree(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
    html = login("acme-manager").get(f"{PLANS}{plan.pk}/change/").content.decode()
    assert [(depth, name) for depth, name, _target, _attainment in tree_rows(html)] == [
        (1, "North"),
        (2, "North 1"),
        (3, "acme-rep"),
        (3, "acme-rep2"),
    ]
    rep_html = login("acme-rep").get(f"{PLANS}{plan.pk}/change/").content.decode()
    assert [name for _depth, name, _t, _a in tree_rows(rep_html)] == ["acme-rep"]


# --- adjusting and approving --------------------------------------------------------------


def test_adjusting_through_the_admin_records_a_version_and_needs_a_reason(
    tree_a: TenantTree,
) -> None:
    manager = tree_a.members["manager"]
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
        december = node(plan, tree_a.members["rep"], "month", 12)
    assert december.value == D("25000.00")
    client = login("acme-manager")
    form = act(client, TARGETS, "adjust", [december.pk])
    assert form.status_code == 200 and 'name="new_value"' in form.content.decode()

    empty = act(
        client,
        TARGETS,
        "adjust",
        [december.pk],
        apply="1",
        new_value="30000.00",
        reason="  ",
        trigger="market",
    )
    assert empty.status_code == 200  # the form again, with the error
    assert "Say why the target changes." in empty.content.decode()
    with tenant_scope(tree_a.tenant):
        assert Target.objects.get(pk=december.pk).value == D("25000.00")
        assert not TargetAdjustment.objects.exists()

    done = act(
        client,
        TARGETS,
        "adjust",
        [december.pk],
        apply="1",
        new_value="30000.00",
        reason="New distributor 新经销商",
        trigger="market",
        **{f"version-{december.pk}": str(december.version)},
    )
    assert done.status_code == 302
    with tenant_scope(tree_a.tenant):
        december.refresh_from_db()
        assert (december.value, december.version) == (D("30000.00"), 2)
        year = node(plan, tree_a.members["rep"])
        assert year.value == D("305000.00")  # the year stays the sum of its months
        adjustment = TargetAdjustment.objects.get()
    assert (adjustment.old_value, adjustment.new_value) == (D("25000.00"), D("30000.00"))
    assert (adjustment.reason, adjustment.trigger) == ("New distributor 新经销商", "market")
    assert (adjustment.status, adjustment.requested_by_id) == (AdjustmentStatus.APPLIED, manager.pk)
    history = client.get(f"{TARGETS}{december.pk}/change/").content.decode()
    assert "New distributor 新经销商" in history and "As of" in history

    stale = act(
        client,
        TARGETS,
        "adjust",
        [december.pk],
        apply="1",
        new_value="1.00",
        reason="Stale page",
        trigger="other",
        **{f"version-{december.pk}": "1"},
    )
    assert stale.status_code == 302
    assert "changed meanwhile" in client.get(stale["Location"]).content.decode()
    with tenant_scope(tree_a.tenant):
        assert Target.objects.get(pk=december.pk).value == D("30000.00")


def test_approving_a_locked_plans_requested_adjustment_in_the_admin_applies_it(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
        services.plan_lock(member=tree_a.members["admin"], plan=plan)
        december = node(plan, tree_a.members["rep2"], "month", 12)
    manager = login("acme-manager")
    act(
        manager,
        TARGETS,
        "adjust",
        [december.pk],
        apply="1",
        new_value="20000.00",
        reason="Parental leave",
        trigger="personnel",
    )
    with tenant_scope(tree_a.tenant):
        request = TargetAdjustment.objects.get()
        assert request.status == AdjustmentStatus.REQUESTED
        assert Target.objects.get(pk=december.pk).value == D("25000.00")

    listed = changelist_rows(manager.get(ADJUSTMENTS).content.decode())
    assert [row["status"] for row in listed] == ["Requested"]
    # The requester cannot approve their own request: the service's refusal is shown.
    refused = act(manager, ADJUSTMENTS, "approve", [request.pk])
    assert "approved by a manager above" in manager.get(refused["Location"]).content.decode()
    with tenant_scope(tree_a.tenant):
        assert TargetAdjustment.objects.get().status == AdjustmentStatus.REQUESTED

    assert act(login("acme-admin"), ADJUSTMENTS, "approve", [request.pk]).status_code == 302
    with tenant_scope(tree_a.tenant):
        request.refresh_from_db()
        assert request.status == AdjustmentStatus.APPLIED
        assert request.approved_by_id == tree_a.members["admin"].pk
        assert Target.objects.get(pk=december.pk).value == D("20000.00")


def test_a_rep_cannot_adjust(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
        mine = node(plan, rep, "month", 12)
        theirs = node(plan, tree_a.members["rep2"], "month", 12)
    client = login("acme-rep")
    html = client.get(TARGETS).content.decode()
    assert {row["assignee"] for row in changelist_rows(html)} == {"acme-rep"}
    assert 'value="adjust"' not in html
    act(
        client,
        TARGETS,
        "adjust",
        [mine.pk, theirs.pk],
        apply="1",
        new_value="1.00",
        reason="I would like less",
        trigger="other",
    )
    assert act(client, ADJUSTMENTS, "approve", [1]).status_code in (200, 302)  # no actions
    with tenant_scope(tree_a.tenant):
        assert Target.objects.get(pk=mine.pk).value == D("25000.00")
        assert not TargetAdjustment.objects.exists()
    assert client.get(f"{TARGETS}{theirs.pk}/change/").status_code in (302, 404)


def test_another_tenants_target_is_not_reachable_from_the_admin(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_b.tenant):
        foreign_plan = published(tree_b)
        foreign = node(foreign_plan, tree_b.members["rep"], "month", 12)
        foreign_adjustment = services.target_adjust(
            member=tree_b.members["admin"],
            target=foreign,
            new_value=D("1.00"),
            reason="Theirs",
            trigger="other",
        )
    with tenant_scope(tree_a.tenant):
        published(tree_a)
    client = login("acme-admin")
    for url in (
        f"{TARGETS}{foreign.pk}/change/",
        f"{PLANS}{foreign_plan.pk}/change/",
        f"{ADJUSTMENTS}{foreign_adjustment.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code in (302, 404), url
    listed = {row["assignee"] for row in changelist_rows(client.get(TARGETS).content.decode())}
    assert not any(name.startswith("globex") for name in listed)
    act(
        client,
        TARGETS,
        "adjust",
        [foreign.pk],
        apply="1",
        new_value="99.00",
        reason="Not ours",
        trigger="other",
    )
    with tenant_scope(tree_b.tenant):
        assert Target.objects.get(pk=foreign.pk).value == D("1.00")
        assert TargetAdjustment.objects.count() == 1


# --- plans, commitments, ramp schedules ---------------------------------------------------------


def test_an_admin_adds_decomposes_publishes_and_locks_a_plan_in_the_admin(
    tree_a: TenantTree,
) -> None:
    client = login("acme-admin")
    fiscal_year = this_fiscal_year(tree_a)
    response = client.post(
        f"{PLANS}add/",
        {"fiscal_year": fiscal_year, "metric": "won_deals", "name": "Deals", "annual_total": "120"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    with tenant_scope(tree_a.tenant):
        plan = TargetPlan.objects.get(name="Deals")
    assert (plan.status, plan.created_by_id) == (PlanStatus.DRAFT, tree_a.members["admin"].pk)
    duplicate = client.post(
        f"{PLANS}add/",
        {"fiscal_year": fiscal_year, "metric": "won_deals", "name": "Deals", "annual_total": "120"},
    )
    assert duplicate.status_code == 200 and "exists already" in duplicate.content.decode()
    fraction = client.post(
        f"{PLANS}add/",
        {"fiscal_year": fiscal_year, "metric": "won_deals", "name": "Half", "annual_total": "1.5"},
    )
    assert fraction.status_code == 200 and "multiple of 1" in fraction.content.decode()
    # A second, decomposed draft goes away with its nodes.
    client.post(
        f"{PLANS}add/",
        {"fiscal_year": fiscal_year, "metric": "won_deals", "name": "Spare", "annual_total": "12"},
    )
    with tenant_scope(tree_a.tenant):
        spare = TargetPlan.objects.get(name="Spare")
    act(client, PLANS, "decompose_equal", [spare.pk])
    act(client, PLANS, "delete_drafts", [spare.pk])
    with tenant_scope(tree_a.tenant):
        assert not TargetPlan.objects.filter(pk=spare.pk).exists()
        assert not Target.objects.filter(plan_id=spare.pk).exists()

    refused = act(client, PLANS, "publish", [plan.pk])
    assert (
        "Decompose the plan before publishing it."
        in client.get(refused["Location"]).content.decode()
    )
    act(client, PLANS, "decompose_equal", [plan.pk])
    act(client, PLANS, "publish", [plan.pk])
    again = act(client, PLANS, "decompose_equal", [plan.pk])
    assert "Only a draft plan can be decomposed" in client.get(again["Location"]).content.decode()
    act(client, PLANS, "lock", [plan.pk])
    kept = act(client, PLANS, "delete_drafts", [plan.pk])
    assert "Only a draft plan can be deleted" in client.get(kept["Location"]).content.decode()
    with tenant_scope(tree_a.tenant):
        plan.refresh_from_db()
        assert plan.status == PlanStatus.LOCKED
        assert Target.objects.filter(plan=plan, period_kind="year", product_line=None).count() == 7

    manager = login("acme-manager")
    assert manager.get(f"{PLANS}add/").status_code == 403
    page = manager.get(PLANS).content.decode()
    assert "Deals" in page and 'value="publish"' not in page
    act(manager, PLANS, "decompose_equal", [plan.pk])
    with tenant_scope(tree_a.tenant):
        assert TargetPlan.objects.get(pk=plan.pk).status == PlanStatus.LOCKED


def test_commitments_are_listed_within_visibility_and_ramp_schedules_are_admin_edited(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
        for nickname in ("rep", "south-rep"):
            services.commitment_submit(
                member=tree_a.members[nickname],
                plan=plan,
                period_kind="month",
                period_index=12,
                value=D("27000.00"),
            )
    rows = changelist_rows(login("acme-manager").get("/admin/targets/commitment/").content.decode())
    assert [row["assignee"] for row in rows] == ["acme-rep"]

    client = login("acme-admin")
    url = "/admin/targets/rampschedule/add/"
    bad = client.post(url, {"name": "Fast", "steps": '[[2, "0.5"]]'})
    assert bad.status_code == 200 and "from month 1" in bad.content.decode()
    good = client.post(url, {"name": "Fast", "steps": '[[1, 0.5], [3, "1"]]', "is_default": "on"})
    assert good.status_code == 302, good.content.decode()[:2000]
    with tenant_scope(tree_a.tenant):
        schedule = RampSchedule.objects.get()
    assert (schedule.steps, schedule.is_default) == ([[1, "0.5"], [3, "1"]], True)
    assert login("acme-manager").post(url, {"name": "Slow", "steps": "[[1, 1]]"}).status_code == 403


def test_the_platform_superuser_sees_targets_read_only(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_a.tenant):
        plan = published(tree_a)
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = login("root")
    page = client.get(f"{PLANS}{plan.pk}/change/")
    assert page.status_code == 200 and len(tree_rows(page.content.decode())) == 7
    listing = client.get(TARGETS, {"period_kind__exact": "year"}).content.decode()
    assert len(changelist_rows(listing)) == 7 and 'value="adjust"' not in listing
    assert client.get(f"{PLANS}add/").status_code == 403
