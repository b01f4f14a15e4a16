"""The reviews (复盘) pages (SPEC sections 10 and 12) through Django's test client: the
figures on the page equal ``GET /api/v1/reviews/{id}/`` for the same review, with the
hand-computed case of ``tests/funnel/test_review_records.py`` (the rep's October:
T 100,000.00, A 80,000.00, 80.0 %, gap −20,000.00; volume −20,000.00, win rate
−5,000.00, deal size +5,000.00); starting a review, findings and actions through the
page, closing twice (a clear 409), visibility (another tenant's id and another rep's
review are 404) and the query count, constant whatever the subtree's size."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.services import activity_complete
from funnel import services
from funnel.models import Review, ReviewAction, ReviewStatus
from targets.models import Target
from tenancy.dates import tenant_today
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.funnel.test_funnel import at, deal
from tests.funnel.test_review_records import TODAY as REVIEW_DAY
from tests.funnel.test_review_records import _grow, _october_case, _target

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], Any]
HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _review_day() -> Iterator[None]:
    # The day the hand-made case is reviewed on (October is over, December has begun).
    with time_machine.travel(f"{REVIEW_DAY.isoformat()} 02:00:00+00:00", tick=False):
        yield


def browser_for(member: Membership) -> Client:
    client = Client()
    client.force_login(member.user)
    return client


def _rep_october(tree: TenantTree) -> Target:
    with tenant_scope(tree.tenant):
        return _october_case(tree)


def _start(tree: TenantTree, who: str, target: Target) -> Any:
    node = f"member-{target.member_id}" if target.member_id else f"unit-{target.org_unit_id}"
    return browser_for(tree.members[who]).post(
        "/app/reviews/",
        {"plan": str(target.plan_id), "node": node, "period": str(target.period_code)},
    )


def _review_of(tree: TenantTree, target: Target) -> Review:
    with tenant_scope(tree.tenant):
        return Review.objects.get(series_id=target.series_id, period_code=target.period_code)


def test_a_review_is_started_from_the_list_and_its_figures_equal_the_api(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    target = _rep_october(tree_a)
    started = _start(tree_a, "manager", target)
    review = _review_of(tree_a, target)
    assert started.status_code == 302 and started["Location"] == f"/app/reviews/{review.pk}/"
    manager = browser_for(tree_a.members["manager"])
    listed = manager.get("/app/reviews/")
    assert listed.status_code == 200 and f'data-review="{review.pk}"' in listed.content.decode()

    page = manager.get(f"/app/reviews/{review.pk}/")
    assert page.status_code == 200
    answer = client_for(tree_a.members["manager"]).get(f"/api/v1/reviews/{review.pk}/").json()
    # The same selectors, localized alike: the page's figures are the API's, to the key.
    assert json.loads(json.dumps(page.context["figures"])) == answer["figures"]
    figures = answer["figures"]
    assert figures["gap"] == {
        "target": "100000.00",
        "actual": "80000.00",
        "attainment": "0.8000",
        "gap": "-20000.00",
    }
    assert figures["factors"]["effects"] == {
        "volume": "-20000.00",
        "win_rate": "-5000.00",
        "deal_size": "5000.00",
        "total": "-20000.00",
    }
    html = page.content.decode()
    for shown in ("100,000.00 CNY", "80,000.00 CNY", "80.0%", "-20,000.00 CNY", "5,000.00 CNY"):
        assert shown in html, shown
    # The waterfall's steps from target to actual, for the chart (json_script, no inline JS).
    steps = json.loads(html.split('id="waterfall-data" type="application/json">')[1].split("<")[0])
    assert [(s["start"], s["end"]) for s in steps] == [
        ("0", "100000.00"),
        ("100000.00", "80000.00"),
        ("80000.00", "75000.00"),
        ("75000.00", "80000.00"),
        ("0", "80000.00"),
    ]
    assert 'data-chart="waterfall"' in html and "<script>" not in html and 'style="' not in html
    # The losses by stage and reason and the October adjustment.
    assert "Price" in html and "Timing" in html and "Territory change" in html
    assert page.context["editable"] is True and 'id="close-form"' in html


def test_a_unit_review_shows_each_child_as_bars_and_a_count_plan_says_why_no_factors(
    tree_a: TenantTree,
) -> None:
    _rep_october(tree_a)
    with tenant_scope(tree_a.tenant):
        north = _target(tree_a, unit="north")
        leads = records.published_plan(tree_a, metric="new_leads")
        count_target = Target.objects.select_related("plan").get(
            plan=leads,
            member=tree_a.members["rep"],
            period_kind="month",
            period_index=10,
            product_line=None,
        )
    assert _start(tree_a, "manager", north).status_code == 302
    manager = browser_for(tree_a.members["manager"])
    page = manager.get(f"/app/reviews/{_review_of(tree_a, north).pk}/")
    html = page.content.decode()
    assert [row["name"] for row in page.context["bars"]] == [
        child["name"] for child in page.context["figures"]["children"]
    ]
    assert len(page.context["bars"]) >= 1 and 'data-chart="bars"' in html
    assert _start(tree_a, "rep", count_target).status_code == 302
    rep = browser_for(tree_a.members["rep"])
    counted = rep.get(f"/app/reviews/{_review_of(tree_a, count_target).pk}/")
    assert "The factor analysis splits a won amount" in counted.content.decode()
    assert 'data-chart="waterfall"' not in counted.content.decode()
    chinese = Client()
    chinese.force_login(tree_a.members["rep"].user)
    chinese.post("/i18n/setlang/", {"language": "zh-hans", "next": "/app/reviews/"})
    zh = chinese.get(f"/app/reviews/{_review_of(tree_a, count_target).pk}/")
    assert zh.status_code == 200 and b'<html lang="zh-hans">' in zh.content


def test_starting_a_review_twice_or_for_no_target_is_a_clear_message(tree_a: TenantTree) -> None:
    target = _rep_october(tree_a)
    assert _start(tree_a, "manager", target).status_code == 302
    again = _start(tree_a, "manager", target)
    assert again.status_code == 409
    assert "already has a review" in again.content.decode()
    assert f"/app/reviews/{_review_of(tree_a, target).pk}/" in again.content.decode()
    nothing = browser_for(tree_a.members["manager"]).post(
        "/app/reviews/", {"plan": str(target.plan_id), "node": "member-999999", "period": "14"}
    )
    assert nothing.status_code == 422 and "no target for this node" in nothing.content.decode()
    # rep2 does not see the rep's target: the same message, nothing created.
    assert _start(tree_a, "rep2", target).status_code == 422
    with tenant_scope(tree_a.tenant):
        assert Review.objects.count() == 1


def test_findings_and_actions_through_the_page_then_close_twice_is_a_clear_409(
    tree_a: TenantTree,
) -> None:
    target = _rep_october(tree_a)
    _start(tree_a, "manager", target)
    review = _review_of(tree_a, target)
    manager = browser_for(tree_a.members["manager"])
    base = f"/app/reviews/{review.pk}/"
    saved = manager.post(f"{base}findings/", {"findings": "Fewer deals closed."}, headers=HTMX)
    assert saved.status_code == 200 and "Findings saved." in saved.content.decode()
    # Without JavaScript the same form posts and comes back to the page.
    plain = manager.post(f"{base}findings/", {"findings": "Fewer deals closed."})
    assert plain.status_code == 302 and plain["Location"] == base
    with tenant_scope(tree_a.tenant):
        due = tenant_today(tree_a.tenant) + timedelta(days=7)
        assert Review.objects.get(pk=review.pk).findings == "Fewer deals closed."
    rep = tree_a.members["rep"]
    added = manager.post(
        f"{base}actions/",
        {"text": "Call the stalled quotes", "owner": str(rep.pk), "due_date": due.isoformat()},
        headers=HTMX,
    )
    assert added.status_code == 200, added.content
    assert "Call the stalled quotes" in added.content.decode()
    late = manager.post(
        f"{base}actions/",
        {"text": "Too late", "owner": str(rep.pk), "due_date": "2020-01-01"},
        headers=HTMX,
    )
    assert late.status_code == 422 and "An action is due today or later." in late.content.decode()
    outside = manager.post(
        f"{base}actions/",
        {"text": "Not theirs", "owner": str(tree_a.members["south-rep"].pk), "due_date": due},
        headers=HTMX,
    )
    assert outside.status_code == 422 and 'class="error"' in outside.content.decode()
    with tenant_scope(tree_a.tenant):
        items = list(ReviewAction.objects.select_related("follow_up"))
        assert [(i.text, i.owner_id) for i in items] == [("Call the stalled quotes", rep.pk)]
        assert items[0].follow_up is not None and items[0].follow_up.owner_id == rep.pk

    closed = manager.post(f"{base}close/", headers=HTMX)
    assert closed.status_code == 204 and closed["HX-Redirect"] == base
    twice = manager.post(f"{base}close/", headers=HTMX)
    assert twice.status_code == 409
    assert "This review is already closed." in twice.content.decode()
    frozen = manager.get(base)
    html = frozen.content.decode()
    with tenant_scope(tree_a.tenant):
        stored = Review.objects.get(pk=review.pk)
    assert stored.status == ReviewStatus.CLOSED
    assert frozen.context["figures"]["gap"] == stored.figures["gap"]
    assert 'id="frozen"' in html and "Fewer deals closed." in html
    assert 'id="findings-form"' not in html and 'id="action-form"' not in html
    assert 'id="close-form"' not in html
    refused = manager.post(f"{base}findings/", {"findings": "x"}, headers=HTMX)
    assert refused.status_code == 409 and "frozen" in refused.content.decode()


def test_another_tenants_review_and_another_reps_review_are_404(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    target = _rep_october(tree_a)
    _start(tree_a, "rep", target)
    review = _review_of(tree_a, target)
    base = f"/app/reviews/{review.pk}/"
    assert browser_for(tree_a.members["rep"]).get(base).status_code == 200
    for client in (browser_for(tree_b.members["admin"]), browser_for(tree_a.members["rep2"])):
        assert client.get(base).status_code == 404
        assert client.post(f"{base}findings/", {"findings": "x"}).status_code == 404
        assert client.post(f"{base}close/").status_code == 404
        assert f'data-review="{review.pk}"' not in client.get("/app/reviews/").content.decode()
    with tenant_scope(tree_a.tenant):
        assert Review.objects.get(pk=review.pk).status == ReviewStatus.DRAFT


def _page_queries(tree: TenantTree) -> tuple[int, int]:
    with tenant_scope(tree.tenant):
        records.published_plan(tree)
        records.published_plan(tree, metric="new_leads")
        # Deals in both trees (as the selector's own query-count test has them).
        for person in ("rep", "rep2", "manager"):
            deal(tree, tree.members[person], [(1, at(1)), (5, at(12))], amount="2000.00")
            deal(tree, tree.members[person], [(1, at(1)), (6, at(12))], lost_reason="Price")
        north = _target(tree, unit="north")
        review = services.review_create(member=tree.members["manager"], target=north)
    client = browser_for(tree.members["manager"])
    url = f"/app/reviews/{review.pk}/"
    client.get(url)  # the session settles (tenant chosen)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url)
        assert page.status_code == 200
    return len(captured.captured_queries), len(page.context["figures"]["children"])


MAX_QUERIES = 37  # measured: 37 for North with 3 people and with 15


def test_the_review_page_takes_a_fixed_number_of_queries_whatever_the_subtree(
    tree_a: TenantTree, tree_b: TenantTree, django_assert_max_num_queries: Any
) -> None:
    _grow(tree_b, 12)  # before the plan: the new units and people get targets too
    small, small_children = _page_queries(tree_a)
    large, large_children = _page_queries(tree_b)
    assert large_children > small_children
    assert large == small, (small, large)
    assert large <= MAX_QUERIES, large
    client = browser_for(tree_b.members["manager"])
    client.get("/app/reviews/")
    with django_assert_max_num_queries(20):
        assert client.get("/app/reviews/").status_code == 200


def test_the_next_review_shows_the_previous_reviews_actions_done_and_not_done(
    tree_a: TenantTree,
) -> None:
    october = _rep_october(tree_a)
    manager, rep = tree_a.members["manager"], tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        september = Target.objects.select_related("plan").get(
            plan=october.plan, member=rep, period_kind="month", period_index=9, product_line=None
        )
        earlier = services.review_create(member=manager, target=september)
        due = tenant_today(tree_a.tenant) + timedelta(days=2)
        kept = services.review_action_add(
            member=manager, review=earlier, text="Call the stalled quotes", owner=rep, due_date=due
        )
        services.review_action_add(
            member=manager, review=earlier, text="Refresh the price list", owner=rep, due_date=due
        )
        assert kept.follow_up is not None
        activity_complete(member=rep, activity=kept.follow_up)
        services.review_close(member=manager, review=earlier)
        review = services.review_create(member=manager, target=october)
    page = browser_for(manager).get(f"/app/reviews/{review.pk}/")
    assert page.context["previous"].pk == earlier.pk
    html = page.content.decode()
    previous = html.split('id="previous-actions"')[1]
    done = previous.split("Call the stalled quotes")[1].split("</tr>")[0]
    not_done = previous.split("Refresh the price list")[1].split("</tr>")[0]
    assert ">Done<" in done and "Not done" not in done
    assert "Not done" in not_done
    # The earlier, closed review reads its frozen figures and offers no form.
    closed = browser_for(manager).get(f"/app/reviews/{earlier.pk}/").content.decode()
    assert 'id="frozen"' in closed and 'id="action-form"' not in closed
