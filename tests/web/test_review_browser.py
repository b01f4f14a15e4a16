"""The review page in a real browser (the style and helpers of ``test_browser.py``:
Debian's Chromium under a strict CSP, every request to another host aborted): a manager
opens the rep's October review in English, reads the gap as the API answers it, sees the
waterfall and the children's charts drawn, saves findings through htmx, reads it in
Chinese, closes it; screenshots go to ``bench/results/screenshots/`` (git-ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from funnel import services
from funnel.models import Review, ReviewStatus
from tenancy.scope import tenant_scope
from tests.factories import build_tenant_tree
from tests.funnel.test_review_records import _october_case
from tests.web.test_browser import (  # noqa: F401  (chromium is a fixture)
    ClientFor,
    chromium,
    log_in,
    open_page,
    shoot,
    switch_language,
    text_of,
)
from web.templatetags.web_format import money, percent

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_manager_reads_a_review_with_its_waterfall_in_both_languages_and_closes_it(
    transactional_db: None,
    live_server: Any,
    chromium: Any,  # noqa: F811  (the fixture imported above)
    client_for: ClientFor,
) -> None:
    tree = build_tenant_tree("acme", "Acme 顶点")
    manager = tree.members["manager"]
    with tenant_scope(tree.tenant):
        target = _october_case(tree)
        review = services.review_create(member=manager, target=target)
    answer = client_for(manager).get(f"/api/v1/reviews/{review.pk}/").json()["figures"]

    page, watch = open_page(chromium)
    log_in(page, live_server.url, manager)
    page.goto(f"{live_server.url}/app/reviews/{review.pk}/")
    assert text_of(page, ".gap-attainment") == percent(answer["gap"]["attainment"])
    assert text_of(page, ".gap-gap") == money(answer["gap"]["gap"], tree.tenant)
    page.wait_for_selector("[data-chart='waterfall'] canvas")
    page.fill("#id_findings", "Fewer deals closed than the baseline needed.")
    page.click("#findings-form button[type=submit]")
    page.wait_for_selector("#findings .note")
    with tenant_scope(tree.tenant):
        assert Review.objects.get(pk=review.pk).findings.startswith("Fewer deals closed")
    shoot(page, "review-en")

    switch_language(page, "zh-hans")
    page.wait_for_selector("[data-chart='waterfall'] canvas")
    shoot(page, "review-zh-hans")

    with page.expect_navigation():
        page.click("#close-form button[type=submit]")
    page.wait_for_selector("#frozen")
    with tenant_scope(tree.tenant):
        assert Review.objects.get(pk=review.pk).status == ReviewStatus.CLOSED
    page.wait_for_selector("[data-chart='waterfall'] canvas")
    shoot(page, "review-closed-zh-hans")
    watch.assert_clean()
