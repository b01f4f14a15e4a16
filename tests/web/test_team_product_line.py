"""The Team page's product-line filter narrows the funnel and the weighted pipeline too
(hand-computed: two lines with different conversions and pipelines), at the same query
count; another tenant's product line is a 404 like another tenant's unit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.models import Opportunity, ProductLine
from targets.models import TargetSeries
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.funnel.test_funnel import at, deal
from tests.web.builders import Team, team_with_figures
from tests.web.test_pages import MAX_QUERIES, TODAY, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _november() -> Iterator[None]:
    with time_machine.travel(TODAY, tick=False):
        yield


def lines_with_deals(tree: TenantTree, plan: Any) -> tuple[ProductLine, ProductLine]:
    """ERP: a win (stages 1 → 2 → won) and an open deal at stage 2 (1,000.00 at 40 %,
    closing in December); CRM: a loss at stage 1 (800.00, "Price"). Each line has a North
    target series, so the page finds its periods."""
    rep, north = tree.members["rep"], tree.units["north"]
    with tenant_scope(tree.tenant):
        erp = records.product_line(tree, "ERP")
        crm = records.product_line(tree, "CRM")
        for line in (erp, crm):
            TargetSeries.objects.create(
                tenant=tree.tenant,
                plan=plan,
                org_unit=north,
                product_line=line,
                months=[Decimal("1000.00")] * 12,
            )
        won = deal(tree, rep, [(1, at(1)), (2, at(3)), (5, at(8))], amount="5000.00")
        still_open = deal(tree, rep, [(1, at(3)), (2, at(5))], amount="1000.00")
        lost = deal(tree, rep, [(1, at(2)), (6, at(9))], amount="800.00", lost_reason="Price")
        Opportunity.objects.filter(pk__in=[won.pk, still_open.pk]).update(product_line=erp)
        Opportunity.objects.filter(pk=still_open.pk).update(
            expected_close_date=date(2026, 12, 15), probability_override=40
        )
        Opportunity.objects.filter(pk=lost.pk).update(product_line=crm)
    return erp, crm


@pytest.fixture
def team(tree_a: TenantTree) -> Team:
    return team_with_figures(tree_a)


def _team_page(client: Client, team: Team, line: ProductLine | None) -> Any:
    params = {
        "plan": str(team.plan.pk),
        "period": "quarter-4",
        "unit": str(team.tree.units["north"].pk),
    }
    if line is not None:
        params["line"] = str(line.pk)
    return client.get("/app/team/", params)


def test_the_product_line_filter_narrows_the_funnel_and_the_pipeline(team: Team) -> None:
    erp, crm = lines_with_deals(team.tree, team.plan)
    manager = browser_for(team.tree.members["manager"])

    page = _team_page(manager, team, erp)
    assert page.status_code == 200
    funnel = page.context["funnel"]
    assert (funnel["created"], funnel["won"], funnel["win_rate"]) == (2, 1, Decimal("0.5"))
    assert [s["reached"] for s in funnel["stages"]] == [2, 2, 1, 1]
    assert funnel["losses"] == []
    total = funnel["weighted"]["total"]
    assert (total["deals"], total["amount"], total["weighted"]) == (
        1,
        Decimal("1000.00"),
        Decimal("400.00"),
    )
    html = page.content.decode()
    assert "cover all product lines" not in html and "ERP" in html

    page = _team_page(manager, team, crm)
    funnel = page.context["funnel"]
    assert (funnel["created"], funnel["won"]) == (1, 0)
    assert [s["reached"] for s in funnel["stages"]] == [1, 0, 0, 0]
    assert [(row["reason"], row["count"], row["amount"]) for row in funnel["losses"]] == [
        ("Price", 1, Decimal("800.00"))
    ]
    assert funnel["weighted"]["total"]["deals"] == 0

    # No line: every deal of North's window (the fixture's own win created today too).
    funnel = _team_page(manager, team, None).context["funnel"]
    assert (funnel["created"], funnel["won"]) == (4, 2)
    assert funnel["weighted"]["total"]["deals"] == 1


def _count(client: Client, team: Team, line: ProductLine | None) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert _team_page(client, team, line).status_code == 200
    return len(captured.captured_queries)


def test_the_filtered_team_page_takes_as_many_queries_as_the_unfiltered_one(
    team: Team, django_assert_max_num_queries: Any
) -> None:
    erp, _crm = lines_with_deals(team.tree, team.plan)
    admin = browser_for(team.tree.members["admin"])
    _count(admin, team, None)  # the session settles (tenant chosen)
    assert _count(admin, team, erp) == _count(admin, team, None)
    with django_assert_max_num_queries(MAX_QUERIES["/app/team/"]):
        _team_page(admin, team, erp)


def test_another_tenants_product_line_is_404_on_the_team_page(
    team: Team, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_b.tenant):
        foreign = records.product_line(tree_b, "Foreign")
    admin = browser_for(team.tree.members["admin"])
    assert admin.get("/app/team/", {"line": str(foreign.pk)}).status_code == 404
    assert admin.get("/app/team/", {"line": "999999"}).status_code == 404


def test_the_funnels_links_open_the_deals_of_the_unit_and_line_in_the_admin(
    team: Team,
) -> None:
    """Each figure links to the records behind it: the stage link of North's ERP funnel
    opens the admin's deals of North's subtree and ERP only (a South ERP deal and North's
    CRM deal stay out)."""
    import html as html_lib
    import re

    erp, _crm = lines_with_deals(team.tree, team.plan)
    tree = team.tree
    with tenant_scope(tree.tenant):
        south = deal(tree, tree.members["south-rep"], [(1, at(2))], amount="700.00")
        Opportunity.objects.filter(pk=south.pk).update(product_line=erp)
        north_erp = set(
            Opportunity.objects.filter(
                product_line=erp, owner__org_unit__path__startswith=tree.units["north"].path
            ).values_list("pk", flat=True)
        )
    admin = browser_for(tree.members["admin"])
    page = _team_page(admin, team, erp).content.decode()
    links = [
        html_lib.unescape(link)
        for link in re.findall(r'href="(/admin/crm/opportunity/\?[^"]+)"', page)
    ]
    assert links, "the funnel links to the deals"
    assert all(f"unit={tree.units['north'].pk}" in link for link in links)
    assert all(f"product_line__id__exact={erp.pk}" in link for link in links)
    stage_link = links[0]
    listed = admin.get(stage_link)
    assert listed.status_code == 200
    shown = {deal.pk for deal in listed.context["cl"].result_list}
    assert shown and shown <= north_erp
    assert south.pk not in shown
    # A unit that is not a number or not the tenant's shows no deal, never an error.
    for bad in ("x", "999999"):
        response = admin.get("/admin/crm/opportunity/", {"unit": bad})
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []
