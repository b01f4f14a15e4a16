"""Funnel figures from the recorded stage history, on hand-made deals (SPEC section 5).

Stages of the default pipeline: 1 Qualification, 2 Solution, 3 Quote, 4 Negotiation
(open), 5 Won, 6 Lost.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crm.models import Opportunity, Pipeline, Stage, StageChange, StageKind
from crm.services import stage_exits_recompute
from funnel import selectors
from funnel.selectors import Scope, Window
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
D = Decimal
TZ = ZoneInfo("Asia/Shanghai")


def at(day: int, month: int = 10, hour: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ)


def deal(
    tree: TenantTree,
    owner: Membership,
    path: list[tuple[int, datetime]],
    *,
    amount: str = "1000.00",
    lost_reason: str = "",
) -> Opportunity:
    """A deal whose history is ``path``: (stage order, when) from creation to now."""
    stages = {stage.order: stage for stage in Stage.objects.filter(pipeline__is_default=True)}
    last_order, last_at = path[-1]
    current = stages[last_order]
    customer = records.customer(tree, owner)
    opportunity = Opportunity.objects.create(
        tenant=tree.tenant,
        name=f"Deal {len(path)}",
        customer=customer,
        owner=owner,
        pipeline=current.pipeline,
        stage=current,
        amount=D(amount),
        created_at=path[0][1],
        stage_entered_at=last_at,
        lost_reason=lost_reason,
        closed_date=last_at.astimezone(TZ).date() if current.kind != StageKind.OPEN else None,
        credited_member=owner if current.kind == StageKind.WON else None,
        credited_org_unit_id=owner.org_unit_id if current.kind != StageKind.OPEN else None,
    )
    previous = None
    for order, when in path:
        StageChange.objects.create(
            tenant=tree.tenant,
            opportunity=opportunity,
            from_stage=previous,
            to_stage=stages[order],
            changed_at=when,
            amount=D(amount),
        )
        previous = stages[order]
    stage_exits_recompute(tree.tenant.pk)  # as a bulk load does
    return opportunity


def scope_for(tree: TenantTree, caller: str = "admin", **narrow: Any) -> Scope:
    return Scope(
        caller=tree.members[caller], pipeline=Pipeline.objects.get(is_default=True), **narrow
    )


OCTOBER = Window(date(2026, 10, 1), date(2026, 10, 31), "Asia/Shanghai")
EMPTY = Window(date(2025, 1, 1), date(2025, 1, 31), "Asia/Shanghai")


@pytest.fixture
def funnel(tree_a: TenantTree) -> TenantTree:
    """Six deals created in October 2026 by rep (north-1) and south-rep:

    A 1→2→3→4→won         (rep)         B 1→3→won (skips 2 and 4)   (rep)
    C 1→2→lost "Price"    (rep)         D 1→lost "Budget"           (south-rep)
    E 1→2→3→won→reopened to 3 (south-rep)  F 1 (still open)          (south-rep)
    """
    rep, south = tree_a.members["rep"], tree_a.members["south-rep"]
    with tenant_scope(tree_a.tenant):
        deal(
            tree_a,
            rep,
            [(1, at(1)), (2, at(3)), (3, at(5)), (4, at(9)), (5, at(11))],
            amount="5000.00",
        )
        deal(tree_a, rep, [(1, at(2)), (3, at(4)), (5, at(12))], amount="3000.00")
        deal(
            tree_a,
            rep,
            [(1, at(2)), (2, at(6)), (6, at(10))],
            amount="2000.00",
            lost_reason="Price",
        )
        deal(tree_a, south, [(1, at(3)), (6, at(8))], amount="700.00", lost_reason="Budget")
        deal(
            tree_a,
            south,
            [(1, at(4)), (2, at(5)), (3, at(7)), (5, at(9)), (3, at(20))],
            amount="900.00",
        )
        deal(tree_a, south, [(1, at(6))], amount="400.00")
    return tree_a


def test_cohort_conversion_counts_skipped_stages_as_passed(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        cohort = selectors.cohort_conversion(scope_for(funnel), OCTOBER)
    reached = [row.reached for row in cohort.stages]
    # Qualification: all 6. Solution: A, B (skipped, reached later), C, E = 4.
    # Quote: A, B, E = 3. Negotiation: A, B (skipped), E (won before reopening) = 3.
    assert reached == [6, 4, 3, 3]
    # Won now: A and B (E was reopened) → last-stage rate 2/3, cohort win rate 2/6.
    assert [row.rate_to_next_stage for row in cohort.stages] == [
        D("0.6667"),
        D("0.7500"),
        D("1.0000"),
        D("0.6667"),
    ]
    assert (cohort.created, cohort.won, cohort.win_rate) == (6, 2, D("0.3333"))


def test_several_windows_in_one_pass_give_each_windows_own_cohort(funnel: TenantTree) -> None:
    """``cohort_conversions`` (the conversion-drop rule's two months in one pass) answers
    each window exactly as a call for that window alone."""
    rep = funnel.members["rep"]
    september = Window(date(2026, 9, 1), date(2026, 9, 30), "Asia/Shanghai")
    with tenant_scope(funnel.tenant):
        deal(funnel, rep, [(1, at(3, 9)), (2, at(8, 9)), (5, at(20, 9))])  # A September win
        deal(funnel, rep, [(1, at(30, 9, hour=23))])  # 23:00 Shanghai: still September
        scope = scope_for(funnel)
        together = selectors.cohort_conversions(scope, [OCTOBER, september, EMPTY])
        alone = [selectors.cohort_conversion(scope, w) for w in (OCTOBER, september, EMPTY)]
    assert together == alone
    october, sept, empty = together
    assert [row.reached for row in october.stages] == [6, 4, 3, 3]
    assert [row.reached for row in sept.stages] == [2, 1, 1, 1]
    assert (sept.created, sept.won) == (2, 1)
    assert (empty.created, empty.won) == (0, 0)
    assert [row.reached for row in empty.stages] == [0, 0, 0, 0]


def test_a_managers_funnel_covers_their_subtree_only(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        cohort = selectors.cohort_conversion(scope_for(funnel, "manager"), OCTOBER)
        rep_only = selectors.cohort_conversion(
            scope_for(funnel, "admin", member=funnel.members["south-rep"]), OCTOBER
        )
    assert [row.reached for row in cohort.stages] == [3, 3, 2, 2]  # A, B, C
    assert (cohort.created, cohort.won) == (3, 2)
    assert [row.reached for row in rep_only.stages] == [3, 1, 1, 1]  # D, E, F


def test_closed_win_rate_and_loss_by_last_open_stage(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        closed = selectors.closed_win_rate(scope_for(funnel), OCTOBER)
        losses = selectors.loss_by_stage(scope_for(funnel), OCTOBER)
        stages = {stage.order: stage.pk for stage in Stage.objects.all()}
    # Won A, B (E reopened, no longer closed); lost C, D → 2 / 4.
    assert (closed["won"], closed["lost"], closed["win_rate"]) == (2, 2, D("0.5000"))
    assert losses == [
        {"stage": stages[1], "reason": "Budget", "count": 1, "amount": D("700.00")},
        {"stage": stages[2], "reason": "Price", "count": 1, "amount": D("2000.00")},
    ]


def test_time_in_stage_and_cycle(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        spans = {row["stage"]: row for row in selectors.time_in_stage(scope_for(funnel), OCTOBER)}
        cycle = selectors.cycle_time(scope_for(funnel), OCTOBER)
        first = Stage.objects.get(order=1, pipeline__is_default=True).pk
    # Qualification exits: A 2 d, B 2 d, C 4 d, D 5 d, E 1 d → mean 2.8, median 2.
    assert spans[first]["exits"] == 5
    assert (spans[first]["mean_days"], spans[first]["median_days"]) == (D("2.80"), D("2.00"))
    # Wins closed in October: A (1st → 11th: 10 days), B (2nd → 12th: 10 days).
    assert cycle == {"wins": 2, "mean_days": D("10.00"), "median_days": D("10.00")}


def test_weighted_pipeline_by_forecast_category(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        Opportunity.objects.filter(stage__kind=StageKind.OPEN).update(
            expected_close_date=date(2026, 11, 15)
        )
        november = Window(date(2026, 11, 1), date(2026, 11, 30), "Asia/Shanghai")
        result = selectors.weighted_pipeline(scope_for(funnel), november)
    # Open: E at Quote (900 × 50 %, best case), F at Qualification (400 × 10 %, pipeline).
    assert result["total"]["weighted"] == D("490")
    assert result["by_forecast_category"]["best_case"]["weighted"] == D("450")
    assert result["by_forecast_category"]["pipeline"]["weighted"] == D("40")


def test_stale_deals_use_the_stage_rot_days(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        now = at(25)
        stale = list(selectors.stale_deals(scope_for(funnel), default_rot_days=14, now=now))
        # F entered Qualification on the 6th (19 days, rot 14); E Quote on the 20th (5 days).
        assert [deal.amount for deal in stale] == [D("400.00")]
        records.activity(funnel, funnel.members["south-rep"])
        from crm.models import Activity

        Activity.objects.update(opportunity=stale[0], created_at=at(24))
        assert not list(selectors.stale_deals(scope_for(funnel), default_rot_days=14, now=now))


def test_deals_moved_between_owners_follow_their_current_owner(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        moved = Opportunity.objects.get(amount=D("400.00"))
        moved.owner = funnel.members["rep"]
        moved.save()
        cohort = selectors.cohort_conversion(scope_for(funnel, "manager"), OCTOBER)
    assert cohort.created == 4


def test_windows_use_the_tenants_local_dates(funnel: TenantTree) -> None:
    with tenant_scope(funnel.tenant):
        rep = funnel.members["rep"]
        # 30 September 23:30 in Shanghai is still September, though it is 15:30 UTC.
        deal(funnel, rep, [(1, datetime(2026, 9, 30, 23, 30, tzinfo=TZ))])
        deal(funnel, rep, [(1, datetime(2026, 10, 31, 23, 30, tzinfo=TZ))])
        cohort = selectors.cohort_conversion(scope_for(funnel), OCTOBER)
    assert cohort.created == 7


def test_empty_windows_give_no_rates_instead_of_errors(funnel: TenantTree) -> None:
    empty = Window(date(2025, 1, 1), date(2025, 1, 31), "Asia/Shanghai")
    with tenant_scope(funnel.tenant):
        cohort = selectors.cohort_conversion(scope_for(funnel), empty)
        closed = selectors.closed_win_rate(scope_for(funnel), empty)
        cycle = selectors.cycle_time(scope_for(funnel), empty)
    assert cohort.win_rate is None and all(r.rate_to_next_stage is None for r in cohort.stages)
    assert closed["win_rate"] is None
    assert cycle == {"wins": 0, "mean_days": None, "median_days": None}


def test_losses_are_counted_at_every_stage_they_happen(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        stages = {
            stage.order: stage.pk for stage in Stage.objects.filter(pipeline__is_default=True)
        }
        for order in (1, 2, 3, 4):
            path = [(step, at(step)) for step in range(1, order + 1)] + [(6, at(10))]
            deal(tree_a, rep, path, amount=f"{order}000.00", lost_reason=f"Reason {order}")
        # A deal lost, reopened into Quote and lost again counts where it was last lost.
        deal(
            tree_a,
            rep,
            [(1, at(1)), (6, at(3)), (3, at(5)), (6, at(12))],
            amount="50.00",
            lost_reason="Reason 3",
        )
        losses = selectors.loss_by_stage(scope_for(tree_a), OCTOBER)
    by_stage = {(row["stage"], row["reason"]): (row["count"], row["amount"]) for row in losses}
    assert by_stage == {
        (stages[1], "Reason 1"): (1, D("1000.00")),
        (stages[2], "Reason 2"): (1, D("2000.00")),
        (stages[3], "Reason 3"): (2, D("3050.00")),
        (stages[4], "Reason 4"): (1, D("4000.00")),
    }
