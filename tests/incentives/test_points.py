"""Points (SPEC section 6 "Points"): awarded in the event's transaction through the
services, once per rule + source + member, capped per local day in commit order,
undone once, caught up by the night."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from crm import services as crm_services
from crm.models import Activity, Lead, StageKind
from incentives.models import EntryKind, PointEntry, PointRule
from incentives.services import points_catch_up, points_for_record
from tenancy.dates import tenant_today
from tenancy.errors import Conflict
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def rule(tree: TenantTree, event: str, points: int, daily_cap: int | None = None) -> PointRule:
    return PointRule.objects.create(
        tenant=tree.tenant, event=event, points=points, daily_cap=daily_cap
    )


def ledger(member: Membership, event: str | None = None) -> list[tuple[str, int, bool]]:
    rows = PointEntry.objects.filter(member=member).order_by("id")
    if event:
        rows = rows.filter(event=event)
    return [(row.kind, row.points, row.capped) for row in rows]


def follow_up(tree: TenantTree, owner: Membership, due: datetime | None = None) -> Activity:
    return Activity.objects.create(
        tenant=tree.tenant,
        type="call",
        subject="Call back",
        owner=owner,
        due_at=due or timezone.now() + timedelta(hours=4),
    )


def test_only_a_verified_check_in_earns_visit_points(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "visit_verified", 5)
        near, far = records.visit(tree_a, rep), records.visit(tree_a, rep)
        lat, lng = records.SHANGHAI
        accurate = Decimal("10")  # within the tenant's accuracy limit (100 m)
        crm_services.visit_check_in(
            member=rep, visit=near, latitude=lat, longitude=lng, accuracy_m=accurate
        )
        crm_services.visit_check_in(
            member=rep, visit=far, latitude=lat + 1, longitude=lng, accuracy_m=accurate
        )
        entries = list(PointEntry.objects.filter(member=rep).values_list("source_id", "points"))
    assert entries == [(near.pk, 5)]


def test_a_replayed_event_awards_nothing_more(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "deal_won", 50)
        deal = records.won_opportunity(tree_a, rep)
        assert points_for_record(source=deal) == 0
        assert points_for_record(source=deal) == 0
        assert deal.closed_date is not None
        points_catch_up(tenant=tree_a.tenant, as_of=deal.closed_date)
        assert ledger(rep, "deal_won") == [("award", 50, False)]


def test_a_reopened_deal_is_undone_once_and_a_second_win_earns_nothing(
    tree_a: TenantTree,
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "deal_won", 50)
        deal = records.won_opportunity(tree_a, rep)
        first_open = records.stage(StageKind.OPEN)
        won = records.stage(StageKind.WON)
        for _ in range(2):
            deal = crm_services.opportunity_move(
                member=rep, opportunity=deal, stage=first_open, reopen=True
            )
            deal = crm_services.opportunity_move(member=rep, opportunity=deal, stage=won)
        deal = crm_services.opportunity_move(
            member=rep, opportunity=deal, stage=first_open, reopen=True
        )
        assert ledger(rep, "deal_won") == [("award", 50, False), ("undo", -50, False)]
        total = sum(PointEntry.objects.filter(member=rep).values_list("points", flat=True))
    assert total == 0


def test_a_payment_reversed_twice_is_undone_once(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "payment_received", 20)
        payment = records.received_payment(tree_a, rep)
        crm_services.payment_reverse(
            member=rep, payment=payment, reversed_date=tenant_today(tree_a.tenant)
        )
        with pytest.raises(Conflict):
            crm_services.payment_reverse(
                member=rep, payment=payment, reversed_date=tenant_today(tree_a.tenant)
            )
        points_catch_up(tenant=tree_a.tenant, as_of=tenant_today(tree_a.tenant))
        assert ledger(rep, "payment_received") == [("award", 20, False), ("undo", -20, False)]


def test_the_daily_cap_gives_a_zero_row_and_an_undo_frees_no_room(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "activity_done", 10, daily_cap=25)
        done = []
        for _ in range(4):
            activity = follow_up(tree_a, rep)
            done.append(crm_services.activity_complete(member=rep, activity=activity))
            if len(done) == 2:
                # Reopening the second one undoes its 10 points; the cap still counts them.
                crm_services.sync_update(done[1], expected_version=None, done_at=None)
        assert ledger(rep, "activity_done") == [
            ("award", 10, False),
            ("award", 10, False),
            ("undo", -10, False),
            ("award", 0, True),
            ("award", 0, True),
        ]


def test_a_late_follow_up_and_a_deleted_one_earn_nothing_net(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "activity_done", 10)
        late = follow_up(tree_a, rep, due=timezone.now() - timedelta(hours=1))
        crm_services.activity_complete(member=rep, activity=late)
        on_time = crm_services.activity_complete(member=rep, activity=follow_up(tree_a, rep))
        crm_services.sync_delete(on_time)
        crm_services.sync_delete(on_time)
        assert ledger(rep) == [("award", 10, False), ("undo", -10, False)]


def test_the_cap_counts_the_tenants_local_day_of_the_event(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    # 16:30 and 15:30 UTC on 1 March are 00:30 on 2 March and 23:30 on 1 March in Shanghai.
    after_midnight = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)
    before_midnight = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "activity_done", 10, daily_cap=10)
        for at in (after_midnight, before_midnight):
            activity = follow_up(tree_a, rep, due=at + timedelta(hours=1))
            crm_services.activity_complete(member=rep, activity=activity, done_at=at)
        days = list(PointEntry.objects.order_by("day").values_list("day", "points"))
    assert days == [(date(2026, 3, 1), 10), (date(2026, 3, 2), 10)]


def test_a_deal_earns_each_later_stage_once(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "stage_advanced", 3)
        rule(tree_a, "opportunity_created", 2)
        deal = records.opportunity(tree_a, rep)
        qualification, solution, quote = (records.stage(order=n) for n in (1, 2, 3))
        for target in (solution, qualification, solution, quote):
            deal = crm_services.opportunity_move(member=rep, opportunity=deal, stage=target)
        assert ledger(rep) == [("award", 2, False), ("award", 3, False), ("award", 3, False)]


def test_a_lead_created_through_the_api_earns_and_a_failed_request_earns_nothing(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "lead_created", 1)
    response = client_for(rep).post("/api/v1/leads/", {"name": "李女士"}, format="json")
    assert response.status_code == 201, response.content
    with tenant_scope(tree_a.tenant):
        with pytest.raises(RuntimeError), transaction.atomic():
            Lead.objects.create(tenant=tree_a.tenant, name="rolled back", owner=rep)
            raise RuntimeError
        assert ledger(rep) == [("award", 1, False)]
        assert PointEntry.objects.get().source_id == response.json()["id"]


def test_the_nightly_catch_up_awards_bulk_loaded_rows_once(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    day = timezone.now()
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "lead_created", 1, daily_cap=2)
        Lead.objects.bulk_create(
            Lead(tenant=tree_a.tenant, name=f"lead {n}", owner=rep, created_at=day)
            for n in range(3)
        )  # bulk loads send no signal
        assert ledger(rep) == []
        local_day = tenant_today(tree_a.tenant)
        counts = points_catch_up(tenant=tree_a.tenant, as_of=local_day, days=2)
        again = points_catch_up(tenant=tree_a.tenant, as_of=local_day, days=2)
        assert ledger(rep) == [("award", 1, False), ("award", 1, False), ("award", 0, True)]
    assert (counts["awarded"], again["awarded"]) == (3, 0)


def test_another_tenants_rules_award_nothing_here(tree_a: TenantTree, tree_b: TenantTree) -> None:
    with tenant_scope(tree_b.tenant):
        rule(tree_b, "lead_created", 1)
    with tenant_scope(tree_a.tenant):
        records.lead(tree_a, tree_a.members["rep"])
        assert PointEntry.objects.count() == 0
    with tenant_scope(tree_b.tenant):
        records.lead(tree_b, tree_b.members["rep"])
        assert PointEntry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_completions_respect_the_daily_cap_in_commit_order(
    tree_a: TenantTree,
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        rule(tree_a, "activity_done", 10, daily_cap=30)
        activities = [follow_up(tree_a, rep) for _ in range(10)]
    barrier = threading.Barrier(10)
    errors: list[Any] = []

    def complete(activity: Activity) -> None:
        try:
            barrier.wait(timeout=30)
            with tenant_scope(tree_a.tenant):
                crm_services.activity_complete(member=rep, activity=activity)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=complete, args=(a,)) for a in activities]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with tenant_scope(tree_a.tenant):
        points = sorted(
            PointEntry.objects.filter(kind=EntryKind.AWARD).values_list("points", flat=True)
        )
    assert points == [0] * 7 + [10] * 3
