"""Funnel admin: warning rules, alerts with explanations, the team's funnel table."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest
from django.test import Client
from django.utils import timezone

from funnel.models import WarningRule
from funnel.warnings import evaluate_warnings
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree
from tests.funnel.test_funnel import TZ, deal

pytestmark = pytest.mark.django_db


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def test_alerts_show_their_explanation_to_the_owner_only(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.activity(tree_a, tree_a.members["rep"])
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 11, 1))
    mine = login("acme-rep").get("/admin/funnel/alert/").content.decode()
    assert "1 follow-ups are overdue, more than the 0 allowed." in mine
    theirs = login("acme-rep2").get("/admin/funnel/alert/").content.decode()
    assert "follow-ups are overdue" not in theirs


def test_a_threshold_out_of_range_is_refused_in_the_admin(tree_a: TenantTree) -> None:
    client = login("acme-admin")
    client.get("/admin/funnel/warningrule/")
    with tenant_scope(tree_a.tenant):
        rule = WarningRule.objects.get(key="low_win_rate")
    response = client.post(
        f"/admin/funnel/warningrule/{rule.pk}/change/",
        {"enabled": "on", "severity": "warning", "thresholds": '{"win_rate": "1.5"}'},
    )
    assert response.status_code == 200 and "between 0 and 1" in response.content.decode()
    with tenant_scope(tree_a.tenant):
        assert WarningRule.objects.get(pk=rule.pk).threshold("win_rate") == "0.15"


def test_a_manager_sees_the_funnel_of_their_team_as_a_table(tree_a: TenantTree) -> None:
    rep, south = tree_a.members["rep"], tree_a.members["south-rep"]
    today = timezone.localdate()
    morning, noon = (datetime.combine(today, time(hour), TZ) for hour in (9, 12))
    with tenant_scope(tree_a.tenant):
        deal(tree_a, rep, [(1, morning), (6, noon)], lost_reason="竞品 Competitor")
        deal(tree_a, south, [(1, morning)], lost_reason="")
    page = login("acme-manager").get("/admin/funnel/report/").content.decode()
    assert "竞品 Competitor" in page
    assert 'id="conversion"' in page
    assert (
        login("acme-manager")
        .get("/admin/funnel/report/", {"org_unit": tree_a.units["south"].pk})
        .status_code
        == 404
    )
