"""Every default date is the tenant's today (SPEC preamble, issue #12 item 1).

The clock stands at 03:30 on 1 January 2027 in Shanghai, which is still 31 December
2026 in UTC (the server's ``TIME_ZONE``): a default taken from the server lands in the
previous day, month, quarter and fiscal year. Each test below failed while its default
came from ``timezone.localdate()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from rest_framework.test import APIClient

from crm.models import Payment, StageKind
from crm.services import payment_record
from targets.services import target_adjust
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tenancy.services import membership_create
from tests import records
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]

SHANGHAI_0330 = datetime(2026, 12, 31, 19, 30, tzinfo=UTC)  # 2027-01-01 03:30 +08:00
TENANT_TODAY = date(2027, 1, 1)
SERVER_TODAY = date(2026, 12, 31)


@pytest.fixture
def at_0330_in_shanghai() -> Iterator[None]:
    with time_machine.travel(SHANGHAI_0330, tick=False):
        yield


def _planned_payment(tree: TenantTree, owner: Membership) -> Payment:
    deal = records.won_opportunity(tree, owner)
    payment, _created = payment_record(
        member=owner, opportunity=deal, amount=Decimal("50000.00"), planned_date=TENANT_TODAY
    )
    return payment


def test_the_clock_of_these_tests_stands_between_two_dates(at_0330_in_shanghai: None) -> None:
    from django.utils import timezone

    assert timezone.localdate() == SERVER_TODAY  # what the old defaults used


def test_receiving_a_payment_without_a_date_uses_the_tenants_today(
    tree_a: TenantTree, client_for: ClientFor, at_0330_in_shanghai: None
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        payment = _planned_payment(tree_a, rep)
    response = client_for(rep).post(f"/api/v1/payments/{payment.pk}/receive/", {})
    assert response.status_code == 200, response.content
    assert response.json()["received_date"] == "2027-01-01"


def test_reversing_a_payment_without_a_date_uses_the_tenants_today(
    tree_a: TenantTree, client_for: ClientFor, at_0330_in_shanghai: None
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        payment = records.received_payment(tree_a, rep)
    response = client_for(rep).post(f"/api/v1/payments/{payment.pk}/reverse/", {})
    assert response.status_code == 201, response.content
    assert response.json()["received_date"] == "2027-01-01"


def test_reversing_in_the_admin_uses_the_tenants_today(
    tree_a: TenantTree, at_0330_in_shanghai: None
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        payment = records.received_payment(tree_a, rep)
    client = Client()
    assert client.login(username="acme-rep", password=PASSWORD)
    response = client.post(
        "/admin/crm/payment/", {"action": "reverse", "_selected_action": [str(payment.pk)]}
    )
    assert response.status_code == 302
    with tenant_scope(tree_a.tenant):
        reversal = Payment.objects.get(reverses=payment)
    assert reversal.received_date == TENANT_TODAY


def test_a_win_is_closed_on_the_tenants_today(
    tree_a: TenantTree, client_for: ClientFor, at_0330_in_shanghai: None
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, rep)
        won = records.stage(StageKind.WON).pk
    response = client_for(rep).post(f"/api/v1/opportunities/{deal.pk}/move/", {"stage": won})
    assert response.status_code == 200, response.content
    assert response.json()["closed_date"] == "2027-01-01"


def test_an_adjustment_takes_effect_from_the_tenants_today(
    tree_a: TenantTree, at_0330_in_shanghai: None
) -> None:
    # A 2027 plan: the server's 31 December 2026 is not even inside its fiscal year.
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a, fiscal_year=2027)
        from targets.models import Target

        target = Target.objects.get(
            plan__fiscal_year=2027,
            member=tree_a.members["south-rep"],
            period_kind="month",
            period_index=1,
            product_line=None,
        )
        adjustment = target_adjust(
            member=tree_a.members["admin"],
            target=target,
            new_value=Decimal("90000.00"),
            reason="Territory change",
            trigger="personnel",
        )
    assert adjustment.effective_from == TENANT_TODAY


def test_a_member_added_without_a_start_date_starts_on_the_tenants_today(
    tree_a: TenantTree, client_for: ClientFor, at_0330_in_shanghai: None
) -> None:
    admin = client_for(tree_a.members["admin"])
    response = admin.post(
        "/api/v1/members/",
        {"username": "new-hire", "password": "a long password", "role": "rep"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["start_date"] == "2027-01-01"
    with tenant_scope(tree_a.tenant):
        direct = membership_create(tenant=tree_a.tenant, username="another-hire")
    assert direct.start_date == TENANT_TODAY


def test_the_admins_add_member_form_proposes_the_tenants_today(
    tree_a: TenantTree, at_0330_in_shanghai: None
) -> None:
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    html = client.get("/admin/tenancy/membership/add/").content.decode()
    assert 'value="2027-01-01"' in html
    assert 'value="2026-12-31"' not in html
