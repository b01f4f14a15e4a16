"""generate_data at a tiny scale: the history it writes obeys the rules the services enforce."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from crm.geo import haversine_m
from crm.models import Activity, Contact, Customer, Lead, Opportunity, Payment, StageChange, Visit
from devtools.datagen import Progress
from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
from tenancy.scope import tenant_scope
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db

AS_OF = datetime(2026, 6, 30, 10, 0, tzinfo=ZoneInfo("UTC"))
TINY = [
    "--reps=3",
    "--customers=20",
    "--opportunities=50",
    "--activities=200",
    "--visits=30",
    "--months=6",
    "--seed=7",
    f"--as-of={AS_OF.isoformat()}",
]


def generate(slug: str, *extra: str) -> str:
    out = StringIO()
    call_command("generate_data", f"--tenant={slug}", *TINY, *extra, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def tiny(db: None) -> Iterator[Tenant]:
    generate("tiny")
    tenant = Tenant.objects.get(slug="tiny")
    with tenant_scope(tenant):
        yield tenant


def rows(query: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def test_generate_data_writes_the_requested_volumes_for_an_org_sized_to_the_reps(
    tiny: Tenant,
) -> None:
    assert Membership.objects.filter(role=Role.REP).count() == 3
    # One region, one team, each with its manager, under the root with its admin.
    assert sorted(OrgUnit.objects.values_list("depth", flat=True)) == [0, 1, 2]
    assert Membership.objects.filter(role=Role.MANAGER).count() == 2
    assert OrgUnitManager.objects.count() == 2
    assert Customer.objects.count() == 20
    assert Opportunity.objects.count() == 50
    assert Activity.objects.count() == 200
    assert Visit.objects.count() == 30
    assert Lead.objects.count() == 2
    assert Contact.objects.count() >= 20
    reps = set(Membership.objects.filter(role=Role.REP).values_list("pk", flat=True))
    assert set(Customer.objects.exclude(owner=None).values_list("owner", flat=True)) == reps


def test_every_deal_history_starts_from_nothing_moves_forward_and_ends_in_its_stage(
    tiny: Tenant,
) -> None:
    assert not Opportunity.objects.filter(stage_changes__isnull=True).exists()
    history = rows(
        """
        SELECT c.opportunity_id, c.from_stage_id, c.to_stage_id, c.changed_at,
               c.exited_at IS NOT DISTINCT FROM LEAD(c.changed_at) OVER w,
               LAG(c.to_stage_id) OVER w, LAG(c.changed_at) OVER w,
               ROW_NUMBER() OVER w, COUNT(*) OVER (PARTITION BY c.opportunity_id),
               o.created_at, o.stage_id, o.stage_entered_at, o.version, o.updated_at,
               fs."order", ts."order"
        FROM crm_stagechange c
        JOIN crm_opportunity o ON o.id = c.opportunity_id
        LEFT JOIN crm_stage fs ON fs.id = c.from_stage_id
        JOIN crm_stage ts ON ts.id = c.to_stage_id
        WINDOW w AS (PARTITION BY c.opportunity_id ORDER BY c.changed_at, c.id)
        """
    )
    assert len(history) == StageChange.objects.count() > 50
    for (
        _opportunity,
        from_stage,
        to_stage,
        changed_at,
        exit_is_next_change,
        previous_to,
        previous_at,
        number,
        total,
        created_at,
        stage,
        stage_entered_at,
        version,
        updated_at,
        from_order,
        to_order,
    ) in history:
        assert changed_at <= AS_OF and exit_is_next_change
        if number == 1:
            assert from_stage is None and changed_at == created_at
        else:
            assert from_stage == previous_to and changed_at > previous_at
            assert to_order > from_order  # forward only: won and lost come after the open ones
        if number == total:
            assert to_stage == stage and changed_at == stage_entered_at == updated_at
            assert version == total


def test_won_deals_carry_credit_closed_date_and_amount_and_lost_ones_a_reason(
    tiny: Tenant,
) -> None:
    zone = ZoneInfo(tiny.time_zone)
    deals = Opportunity.objects.select_related("stage", "owner")
    kinds = {deal.stage.kind for deal in deals}
    assert kinds == {"open", "won", "lost"}
    for deal in deals:
        last = StageChange.objects.filter(opportunity=deal).order_by("-changed_at").first()
        assert last is not None
        if deal.stage.kind == "won":
            assert deal.amount is not None and deal.amount > 0
            assert deal.credited_member_id == deal.owner_id
            assert deal.credited_org_unit_id == deal.owner.org_unit_id
            assert deal.closed_date == last.changed_at.astimezone(zone).date()
        elif deal.stage.kind == "lost":
            assert deal.lost_reason
            assert deal.closed_date == last.changed_at.astimezone(zone).date()
            assert last.from_stage is not None and last.from_stage.kind == "open"
            assert deal.credited_member_id is None
            assert deal.credited_org_unit_id == deal.owner.org_unit_id  # unit at the loss
        else:
            assert deal.closed_date is None and deal.credited_member_id is None
            assert deal.lost_reason == ""


def test_payments_belong_to_won_deals_and_are_received_after_the_win(tiny: Tenant) -> None:
    payments = Payment.objects.select_related("opportunity__stage", "reverses")
    assert payments.exists()
    for payment in payments:
        deal = payment.opportunity
        assert deal.stage.kind == "won"
        assert deal.closed_date is not None
        if payment.status == "received":
            assert payment.received_date is not None
            assert deal.closed_date <= payment.received_date <= AS_OF.date() + timedelta(days=1)
        elif payment.status == "reversed":
            assert payment.reverses is not None and payment.reverses.status == "received"
            assert payment.amount == -payment.reverses.amount
        else:
            assert payment.received_date is None and payment.planned_date is not None
    # Instalments (planned or received) add up to the deal's amount.
    for deal_id, amount, total in rows(
        """SELECT o.id, o.amount, SUM(p.amount) FILTER (WHERE p.status <> 'reversed')
           FROM crm_opportunity o JOIN crm_payment p ON p.opportunity_id = o.id
           GROUP BY o.id, o.amount"""
    ):
        assert total == amount, deal_id


def test_verified_visits_lie_within_the_tenant_radius_of_their_customer(tiny: Tenant) -> None:
    radius = Decimal(tiny.visit_radius_m)
    visits = list(Visit.objects.select_related("customer").exclude(check_in_at=None))
    assert {visit.verified for visit in visits} == {True, False}
    for visit in visits:
        customer = visit.customer
        assert visit.rep_id == customer.owner_id
        assert customer.latitude is not None and customer.longitude is not None
        assert visit.check_in_latitude is not None and visit.check_in_longitude is not None
        distance = haversine_m(
            visit.check_in_latitude,
            visit.check_in_longitude,
            customer.latitude,
            customer.longitude,
        )
        assert visit.distance_m == distance
        assert visit.verified == (distance <= radius)
        if visit.check_out_at is not None:
            assert visit.check_in_at is not None and visit.check_out_at >= visit.check_in_at


def test_activities_happen_while_their_deal_is_alive_and_some_follow_ups_are_overdue(
    tiny: Tenant,
) -> None:
    start = AS_OF - timedelta(days=190)
    activities = Activity.objects.select_related("opportunity__stage")
    for activity in activities:
        assert start <= activity.created_at <= AS_OF
        if activity.done_at is not None:
            assert activity.created_at <= activity.done_at <= AS_OF
        deal = activity.opportunity
        if deal is not None:
            assert activity.owner_id == deal.owner_id
            assert activity.customer_id == deal.customer_id
            assert deal.created_at <= activity.created_at
            if deal.stage.kind != "open":
                assert activity.created_at <= deal.stage_entered_at
    overdue = activities.filter(done_at=None, due_at__lt=AS_OF)
    assert overdue.exists()
    assert activities.filter(done_at=None, due_at__gt=AS_OF).exists()  # upcoming follow-ups


def test_another_tenant_sees_none_of_the_generated_history(
    tree_b: TenantTree, tiny: Tenant
) -> None:
    assert Opportunity.objects.count() == 50
    with tenant_scope(tree_b.tenant):
        for model in (Customer, Opportunity, StageChange, Payment, Visit, Activity, Lead):
            assert model.objects.count() == 0, model
        tables = ["crm_customer", "crm_opportunity", "crm_stagechange", "crm_activity"]
        for table in tables:  # row-level security, below the ORM
            assert rows(f"SELECT COUNT(*) FROM {table}") == [(0,)]


def test_generate_data_refuses_a_tenant_with_deals_unless_appending(tiny: Tenant) -> None:
    with pytest.raises(CommandError, match="already has 50 opportunities; pass --append"):
        generate("tiny")
    members = Membership.objects.count()
    output = generate("tiny", "--append", "--seed=8")
    assert "50 opportunities" in output
    assert Opportunity.objects.count() == 100
    assert Membership.objects.count() == members  # the same reps, no new org


def test_the_same_seed_gives_the_same_history() -> None:
    generate("twin-a")
    generate("twin-b")

    def fingerprint(slug: str) -> list[tuple[Any, ...]]:
        with tenant_scope(Tenant.objects.get(slug=slug)):
            return list(
                Opportunity.objects.order_by("pk").values_list(
                    "name", "stage__order", "amount", "lost_reason", "closed_date", "created_at"
                )
            )

    assert fingerprint("twin-a") == fingerprint("twin-b")


def test_progress_redraws_one_line_at_most_every_half_second_on_a_terminal() -> None:
    now = [0.0]
    written: list[str] = []
    progress = Progress(written.append, tty=True, clock=lambda: now[0])
    with progress.phase("activities", 1_000) as advance:
        for _ in range(8):
            now[0] += 0.125
            advance(100)
        now[0] += 0.25
        advance(200)  # due for a redraw, but the phase's final line follows
    assert len(written) == 3  # at 0.5 s, at 1.0 s, and the final line, once
    assert written[0].startswith("\ractivities") and "400/1,000" in written[0]
    assert written[-1].startswith("\ractivities") and written[-1].endswith("\n")
    assert "1,000/1,000" in written[-1] and "100%" in written[-1] and "800/s" in written[-1]
