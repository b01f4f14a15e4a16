"""The pages in a real browser (CONVENTIONS, Pages): Playwright for Python driving
Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it; never a downloaded browser)
against pytest-django's live server, with committed data (transactional tests).

Every response gets a strict ``Content-Security-Policy: default-src 'self'`` added on
its way to the browser, so an inline script, handler or style would be refused and show
as a console error; every request to another host is aborted and fails the test.
Screenshots of each page in English and Chinese go to ``bench/results/screenshots/``
(git-ignored) for review.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from targets.models import Target, TargetPlan
from targets.services import plan_create
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests.factories import PASSWORD, TenantTree, build_tenant_tree
from tests.web.builders import Team, target_of, team_with_figures
from web.templatetags.web_format import percent

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CSP = "default-src 'self'"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "screenshots"
ClientFor = Callable[[Membership], Any]

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Watch:
    """What a page did that it should not: console errors, failed scripts, requests
    that tried to leave the host."""

    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.outside, f"requests leaving the host: {self.outside}"
        assert not self.errors, f"console errors: {self.errors}"


@pytest.fixture
def chromium(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = (
            "Debian's chromium is missing at /usr/bin/chromium: install it with "
            "`apt-get install -y chromium` (.ci/run does) to run the browser tests."
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the test's own ORM calls
    # (set-up, checks, the flush) are synchronous and safe here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def open_page(chromium: Any, *, width: int = 1280) -> tuple[Any, Watch]:
    context = chromium.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    watch = Watch()
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: watch.errors.append(str(error)))

    def guard(route: Any) -> None:
        if urlparse(route.request.url).hostname not in LOCAL_HOSTS:
            watch.outside.append(route.request.url)
            route.abort()
            return
        # The browser follows redirects itself (the address bar must change).
        response = route.fetch(max_redirects=0)
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": CSP}
        )

    page.route("**/*", guard)
    return page, watch


def log_in(page: Any, base: str, member: Membership) -> None:
    page.goto(f"{base}/app/login/")
    page.fill("#id_username", member.user.username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("#login")


def switch_language(page: Any, code: str) -> None:
    with page.expect_navigation():
        page.select_option("#language", code)
    assert page.locator("html").get_attribute("lang") == code


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def text_of(page: Any, selector: str) -> str:
    return str(page.locator(selector).first.inner_text()).strip()


@pytest.fixture
def team(transactional_db: None) -> Team:
    return team_with_figures(build_tenant_tree("acme", "Acme 顶点"))


def test_a_manager_reads_the_team_filters_adjusts_a_target_and_reads_it_in_chinese(
    team: Team, live_server: Any, chromium: Any, client_for: ClientFor
) -> None:
    tree = team.tree
    manager = tree.members["manager"]
    page, watch = open_page(chromium)
    log_in(page, live_server.url, manager)
    assert urlparse(page.url).path == "/app/team/"  # "/" sends a manager to the team
    # The north unit's attainment, as the achievement API answers it for the period shown.
    kind, index = page.locator("#filter-period").input_value().split("-")
    answer = (
        client_for(manager)
        .get(
            f"/api/v1/target-plans/{team.plan.pk}/achievement/",
            {"period_kind": kind, "period_index": index},
        )
        .json()
    )
    north = next(n for n in answer["nodes"] if n["org_unit"] == tree.units["north"].pk)
    north_target = target_of(tree, team.plan, unit="north", kind=kind, index=int(index))
    shown = text_of(page, f'tr[data-target="{north_target.pk}"] .attainment')
    assert shown == percent(north["attainment"])
    page.wait_for_selector("[data-chart='cumulative'] canvas")
    shoot(page, "team-en")

    # A filter: North 1 only (htmx swaps the body and pushes the URL).
    north_1 = tree.units["north-1"]
    with page.expect_response(re.compile(r"/app/team/\?")):
        page.select_option("#filter-unit", str(north_1.pk))
    page.wait_for_function("document.querySelectorAll('#tree tbody tr').length === 3")
    assert f"unit={north_1.pk}" in page.url

    # Adjust a rep's target with a reason, in the dialog, without leaving the page.
    rep_target = target_of(tree, team.plan, member=tree.members["rep"], kind=kind, index=int(index))
    page.click(f'tr[data-target="{rep_target.pk}"] button')
    page.wait_for_selector("#dialog[open] #adjust-form")
    page.fill("#id_new_value", "90000")
    page.fill("#id_reason", "New key account")
    page.select_option("#id_trigger", "market")
    page.click("#adjust-form button[type=submit]")
    page.wait_for_selector("#adjust-done")
    with tenant_scope(tree.tenant):
        assert Target.objects.get(pk=rep_target.pk).value == Decimal("90000.00")
    page.click("#adjust-done [data-close-dialog]")
    page.wait_for_function("!document.getElementById('dialog').open")
    # The tree refreshed itself (targets-changed) with the new value.
    page.wait_for_function(
        f"document.querySelector('tr[data-target=\"{rep_target.pk}\"]').textContent"
        ".includes('90,000.00')"
    )

    switch_language(page, "zh-hans")
    page.wait_for_selector("[data-chart='cumulative'] canvas")
    shoot(page, "team-zh-hans")
    watch.assert_clean()


def test_a_rep_sees_their_day_on_a_phone_in_both_languages(
    team: Team, live_server: Any, chromium: Any, client_for: ClientFor
) -> None:
    rep = team.tree.members["rep"]
    page, watch = open_page(chromium, width=390)
    log_in(page, live_server.url, rep)
    assert urlparse(page.url).path == "/app/"
    mine = client_for(rep).get("/api/v1/me/targets/").json()["targets"]
    quarter = next(t for t in mine if t["period_kind"] == "quarter" and t["metric"] == "won_amount")
    shown = text_of(page, f'[data-target="{quarter["id"]}"] .attainment')
    assert shown == percent(quarter["achievement"]["attainment"])
    # Nothing wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "my-day-en")
    page.goto(f"{live_server.url}/app/incentives/")
    shoot(page, "incentives-en")
    switch_language(page, "zh-hans")
    shoot(page, "incentives-zh-hans")
    page.goto(f"{live_server.url}/app/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(page, "my-day-zh-hans")
    watch.assert_clean()


def test_an_admin_previews_a_decomposition_like_the_api_dry_run(
    team: Team, live_server: Any, chromium: Any, client_for: ClientFor
) -> None:
    tree = team.tree
    admin = tree.members["admin"]
    with tenant_scope(tree.tenant):
        draft = plan_create(
            member=admin, fiscal_year=2027, metric="won_amount", annual_total=Decimal("2400000.00")
        )
    page, watch = open_page(chromium)
    log_in(page, live_server.url, admin)
    page.goto(f"{live_server.url}/app/plans/?plan={team.plan.pk}")
    shoot(page, "plans-en")
    page.goto(f"{live_server.url}/app/plans/?plan={draft.pk}")
    page.select_option("#id_org_method", "equal")
    page.click("#preview-button")
    page.wait_for_selector("#preview-body .unassigned")
    dry_run = (
        client_for(admin)
        .post(
            f"/api/v1/target-plans/{draft.pk}/decompose/",
            {"dry_run": True, "org_method": "equal", "time_method": "equal"},
            format="json",
        )
        .json()
    )
    assert text_of(page, "#preview-body .unassigned") == f"{Decimal(dry_run['unassigned']):,} CNY"
    names = page.locator("#preview-body tbody tr").count()
    assert names == len(dry_run["nodes"])
    with tenant_scope(tree.tenant):
        assert TargetPlan.objects.get(pk=draft.pk).status == "draft"
        assert not Target.objects.filter(plan=draft).exists()  # a preview saves nothing
    shoot(page, "plans-preview-en")
    switch_language(page, "zh-hans")
    shoot(page, "plans-zh-hans")
    watch.assert_clean()


def test_a_second_tenants_session_cannot_open_the_first_tenants_pages(
    team: Team, live_server: Any, chromium: Any
) -> None:
    other: TenantTree = build_tenant_tree("globex", "Globex 环球")
    page, _watch = open_page(chromium)
    log_in(page, live_server.url, other.members["admin"])
    target = target_of(team.tree, team.plan, member=team.tree.members["rep"])
    for path in (
        f"/app/targets/{target.pk}/adjust/",
        f"/app/team/?unit={team.tree.units['north'].pk}",
        f"/app/team/?plan={team.plan.pk}",
        f"/app/plans/?plan={team.plan.pk}",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 404, path
