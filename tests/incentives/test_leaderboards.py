"""Leaderboards (SPEC section 6 "Leaderboard"): a unit's subtree ranked for a period by
points, a metric's actual or attainment, with competition ranks and the previous
period's rank; live and from the night's snapshot; within the viewer's visibility."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.utils import timezone

from incentives.models import LeaderboardEntry, PointEntry, PointRule
from incentives.selectors import leaderboard, member_targets, period_of
from incentives.services import leaderboards_refresh
from targets.calendar import Period
from targets.models import TargetSeries
from tenancy.dates import tenant_today
from tenancy.errors import Forbidden, NotFound
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def give_points(tree: TenantTree, member: Membership, points: int, day: date, n: int) -> None:
    rule, _created = PointRule.objects.get_or_create(
        tenant=tree.tenant, event="lead_created", defaults={"points": 1}
    )
    PointEntry.objects.create(
        tenant=tree.tenant,
        rule=rule,
        member=member,
        event="lead_created",
        source_type="lead",
        source_id=n,
        kind="award",
        points=points,
        day=day,
        occurred_at=timezone.now(),
    )


def board_of(board: object) -> list[tuple[str, Decimal | None, int | None, int | None]]:
    return [
        (row.name.split("-", 1)[1], row.value, row.rank, row.previous_rank)
        for row in board.rows  # type: ignore[attr-defined]
    ]


def test_points_board_ranks_ties_alike_and_shows_last_months_rank(tree_a: TenantTree) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        last_month = today.replace(day=1) - timedelta(days=1)
        give_points(tree_a, m["rep"], 30, today, 1)
        give_points(tree_a, m["rep2"], 30, today, 2)
        give_points(tree_a, m["manager"], 10, today, 3)
        give_points(tree_a, m["manager"], 50, last_month, 4)
        give_points(tree_a, m["rep2"], 5, last_month, 5)
        board = leaderboard(viewer=m["manager"], unit_id=tree_a.units["north"].pk)
    assert board_of(board) == [
        ("rep", Decimal(30), 1, 3),
        ("rep2", Decimal(30), 1, 2),
        ("manager", Decimal(10), 3, 1),
    ]


def test_attainment_board_ranks_by_actual_over_target_and_hides_money_from_reps(
    tree_a: TenantTree,
) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        plan = records.published_plan(tree_a, fiscal_year=today.year)
        records.won_opportunity(tree_a, m["rep"])  # 120,000.00 won today
        month = period_of(tree_a.tenant, "month", today)
        index = today.month - 1
        targets = {
            member_id: (months or [])[index]
            for member_id, months in TargetSeries.objects.filter(
                plan=plan, product_line__isnull=True, member__isnull=False
            ).values_list("member_id", "months")
        }
        manager_board = leaderboard(
            viewer=m["manager"], unit_id=tree_a.units["north"].pk, by="attainment",
            metric="won_amount",
        )  # fmt: skip
        rep_board = leaderboard(viewer=m["rep"], by="attainment", metric="won_amount")
    assert manager_board.period == month
    first = manager_board.rows[0]
    assert first.member_id == m["rep"].pk
    assert first.value == Decimal("120000.00") / targets[m["rep"].pk]
    assert (first.actual, first.target) == (Decimal("120000.00"), targets[m["rep"].pk])
    # rep2 attained nothing; the manager has no target of their own: last, no rank.
    assert [(row.member_id, row.value, row.rank) for row in manager_board.rows[1:]] == [
        (m["rep2"].pk, Decimal(0), 2),
        (m["manager"].pk, None, None),
    ]
    others = [row for row in rep_board.rows if row.member_id != m["rep"].pk]
    assert others and all(row.actual is None and row.target is None for row in others)
    assert rep_board.rows[0].actual == Decimal("120000.00")  # their own money


def test_a_member_without_a_target_is_listed_last_without_a_rank(tree_a: TenantTree) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a, fiscal_year=tenant_today(tree_a.tenant).year)
        TargetSeries.objects.filter(member=m["rep2"]).delete()
        board = leaderboard(viewer=m["admin"], unit_id=tree_a.units["north-1"].pk,
                            by="attainment", metric="won_amount")  # fmt: skip
    assert [(row.member_id, row.rank) for row in board.rows] == [
        (m["rep"].pk, 1),
        (m["rep2"].pk, None),
    ]


def test_a_weeks_target_is_its_months_prorated_by_days(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a, fiscal_year=2026)
        months = [Decimal(1000 * n) for n in range(1, 13)]
        TargetSeries.objects.filter(plan=plan, member=rep, product_line__isnull=True).update(
            months=months
        )
        # Monday 30 November to Sunday 6 December 2026: 1 day of November, 6 of December.
        week = Period("week", date(2026, 11, 30), date(2026, 12, 6))
        quarter = Period("quarter", date(2026, 10, 1), date(2026, 12, 31))
        found = member_targets(tree_a.tenant, "won_amount", [week, quarter], [rep.pk])
    assert found[(rep.pk, quarter)] == Decimal(10000 + 11000 + 12000)
    expected = Decimal(11000) / 30 + Decimal(12000) * 6 / 31
    assert abs(found[(rep.pk, week)] - expected) < Decimal("1e-20")  # type: ignore[operator]


def test_a_rep_sees_only_their_own_units_boards_and_no_money_metric(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        assert leaderboard(viewer=rep).unit == tree_a.units["north-1"]
        with pytest.raises(NotFound):
            leaderboard(viewer=rep, unit_id=tree_a.units["south"].pk)
        with pytest.raises(NotFound):
            leaderboard(viewer=rep, unit_id=tree_a.units["north"].pk)
        with pytest.raises(Forbidden):
            leaderboard(viewer=rep, by="metric", metric="won_amount")
        counts = leaderboard(viewer=rep, by="metric", metric="won_deals")
    assert {row.member_id for row in counts.rows} == {rep.pk, tree_a.members["rep2"].pk}


def test_another_tenants_unit_is_not_found(tree_a: TenantTree, tree_b: TenantTree) -> None:
    with tenant_scope(tree_a.tenant), pytest.raises(NotFound):
        leaderboard(viewer=tree_a.members["admin"], unit_id=tree_b.units["north"].pk)


def test_the_nightly_snapshot_matches_the_live_board_and_replaces_itself(
    tree_a: TenantTree,
) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        records.published_plan(tree_a, fiscal_year=today.year)
        give_points(tree_a, m["rep2"], 7, today, 1)
        first = leaderboards_refresh(tenant=tree_a.tenant, as_of=today)
        again = leaderboards_refresh(tenant=tree_a.tenant, as_of=today)
        assert first == again
        assert LeaderboardEntry.objects.count() == first["rows"]
        for by, metric in (("points", None), ("attainment", "won_amount")):
            for kind in ("week", "month", "quarter", "year"):
                live, stored = (
                    leaderboard(
                        viewer=m["admin"],
                        unit_id=tree_a.units["company"].pk,
                        by=by,
                        metric=metric,
                        period_kind=kind,
                        as_of=today,
                        snapshot=snapshot,
                    )
                    for snapshot in (False, True)
                )
                assert board_of(stored) == board_of(live)
                assert stored.snapshot_at is not None


def test_the_tenant_may_show_reps_each_others_money(tree_a: TenantTree) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a, fiscal_year=tenant_today(tree_a.tenant).year)
        records.won_opportunity(tree_a, m["rep2"])  # 120,000.00 won today
        hidden = leaderboard(viewer=m["rep"], by="attainment", metric="won_amount")
        tree_a.tenant.leaderboard_money_visible = True
        tree_a.tenant.save(update_fields=["leaderboard_money_visible"])
        shown = leaderboard(viewer=m["rep"], by="attainment", metric="won_amount")
        by_money = leaderboard(viewer=m["rep"], by="metric", metric="won_amount")
    other = {row.member_id: row for row in hidden.rows}[m["rep2"].pk]
    assert hidden.money_hidden and (other.actual, other.target) == (None, None)
    other = {row.member_id: row for row in shown.rows}[m["rep2"].pk]
    assert not shown.money_hidden and other.actual == Decimal("120000.00")
    assert other.target is not None
    assert [(row.member_id, row.value) for row in by_money.rows][0] == (
        m["rep2"].pk,
        Decimal("120000.00"),
    )


def stored_board(
    unit_id: int, board: str, kind: str
) -> list[tuple[int, Decimal | None, int | None, int | None, int]]:
    return [
        (entry.member_id, entry.value, entry.rank, entry.previous_rank, entry.position)
        for entry in LeaderboardEntry.objects.filter(
            unit_id=unit_id, board=board, period_kind=kind
        ).order_by("position")
    ]


def test_the_night_ranks_each_unit_within_its_own_subtree(tree_a: TenantTree) -> None:
    """One statement writes every unit's board: ranks and previous ranks count only the
    unit's subtree; a member who started this month has no previous rank. By hand."""
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        last_month = today.replace(day=1) - timedelta(days=1)
        from tests.factories import add_member

        new = add_member(tree_a.tenant, "rep3", "rep", tree_a.units["north-1"], slug="a3")
        Membership.objects.filter(pk=new.pk).update(start_date=today.replace(day=1))
        give_points(tree_a, m["rep"], 30, today, 1)
        give_points(tree_a, m["rep2"], 30, today, 2)
        give_points(tree_a, m["manager"], 10, today, 3)
        give_points(tree_a, m["south-rep"], 40, today, 4)
        give_points(tree_a, m["manager"], 50, last_month, 5)
        give_points(tree_a, m["rep2"], 5, last_month, 6)
        give_points(tree_a, new, 99, last_month, 7)  # before they started: not on that board
        leaderboards_refresh(tenant=tree_a.tenant, as_of=today)
        units = tree_a.units
        boards = {
            name: stored_board(units[name].pk, "points", "month")
            for name in ("company", "north", "north-1", "south")
        }
    rep, rep2, manager, south = m["rep"].pk, m["rep2"].pk, m["manager"].pk, m["south-rep"].pk
    assert boards["company"] == [
        (south, Decimal(40), 1, 3, 0),
        (rep, Decimal(30), 2, 3, 1),
        (rep2, Decimal(30), 2, 2, 2),
        (manager, Decimal(10), 4, 1, 3),
        (new.pk, Decimal(0), 5, None, 4),
    ]
    assert boards["north"] == [
        (rep, Decimal(30), 1, 3, 0),
        (rep2, Decimal(30), 1, 2, 1),
        (manager, Decimal(10), 3, 1, 2),
        (new.pk, Decimal(0), 4, None, 3),
    ]
    assert boards["north-1"] == [
        (rep, Decimal(30), 1, 2, 0),
        (rep2, Decimal(30), 1, 1, 1),
        (new.pk, Decimal(0), 3, None, 2),
    ]
    assert boards["south"] == [(south, Decimal(40), 1, 1, 0)]


def stored_as(value: Decimal | None, places: int) -> Decimal | None:
    """A value as its column stores it: half-up (away from zero) to ``places``."""
    if value is None:
        return None
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def test_every_units_stored_board_matches_its_live_board(tree_a: TenantTree) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        records.published_plan(tree_a, fiscal_year=today.year)
        records.won_opportunity(tree_a, m["rep2"])
        records.won_opportunity(tree_a, m["south-rep"])
        TargetSeries.objects.filter(member=m["rep"]).delete()  # no target: last, no rank
        give_points(tree_a, m["rep"], 3, today, 1)
        give_points(tree_a, m["south-rep"], 3, today, 2)
        leaderboards_refresh(tenant=tree_a.tenant, as_of=today)
        compared = 0
        for unit in tree_a.units.values():
            for by, metric in (("points", None), ("attainment", "won_amount")):
                for kind in ("week", "month", "quarter", "year"):
                    live, stored = (
                        leaderboard(viewer=m["admin"], unit_id=unit.pk, by=by, metric=metric,
                                    period_kind=kind, as_of=today, snapshot=snapshot)
                        for snapshot in (False, True)
                    )  # fmt: skip
                    assert stored.rows, (unit.name, by, kind)
                    assert [
                        (r.member_id, r.value, r.rank, r.previous_rank, r.actual, r.target)
                        for r in stored.rows
                    ] == [
                        (r.member_id, stored_as(r.value, 10), r.rank, r.previous_rank,
                         r.actual, stored_as(r.target, 2))
                        for r in live.rows
                    ], (unit.name, by, kind)  # fmt: skip
                    compared += 1
    assert compared == 4 * 2 * 4
