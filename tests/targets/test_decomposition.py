"""Decomposition and achievement on the database, against hand-computed cases (SPEC §4).

The tenant's fiscal year starts in April, in Asia/Shanghai: FY2026 = 2026-04-01 to
2027-03-31; fiscal month 1 = April, 9 = December, Q1 = April–June.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from crm.models import Activity, Opportunity
from crm.services import payment_record
from targets.achievement import achievement_json, plan_achievements
from targets.models import PeriodKind, Target, TargetPlan
from targets.services import DecomposeSettings, plan_create, plan_decompose
from tenancy.models import Membership, OrgUnit
from tenancy.money import round_rate
from tenancy.scope import tenant_scope
from tenancy.services import membership_create, org_unit_create, tenant_create
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def april(db: None) -> TenantTree:
    """Co → R1 → T1 (a, b, later d); Co → R2 (c). FY starts in April."""
    created = tenant_create(
        name="April Co",
        slug="april",
        admin_username="april-admin",
        admin_email="april@example.com",
        admin_password="pw",
        fiscal_year_start_month=4,
        time_zone="Asia/Shanghai",
    )
    tree = TenantTree(tenant=created.tenant)
    with tenant_scope(created.tenant):
        tree.members["admin"] = created.admin
        tree.units["co"] = created.root
        tree.units["r1"] = org_unit_create(tenant=tree.tenant, name="R1", parent=created.root)
        tree.units["r2"] = org_unit_create(tenant=tree.tenant, name="R2", parent=created.root)
        tree.units["t1"] = org_unit_create(tenant=tree.tenant, name="T1", parent=tree.units["r1"])
        for name, unit, start in (
            ("a", "t1", date(2020, 1, 1)),
            ("b", "t1", date(2020, 1, 1)),
            ("c", "r2", date(2020, 1, 1)),
        ):
            tree.members[name] = membership_create(
                tenant=tree.tenant,
                username=f"april-{name}",
                org_unit=tree.units[unit],
                start_date=start,
            )
    return tree


def _won(tree: TenantTree, member: Membership, amount: str, closed: date) -> Opportunity:
    deal = records.won_opportunity(tree, member)
    Opportunity.objects.filter(pk=deal.pk).update(amount=D(amount), closed_date=closed)
    return deal


def _history(tree: TenantTree) -> None:
    """Last year (FY2025): a 300,000 in April 2025, b 100,000 in May 2025, c 600,000 in
    December 2025 → tenant seasonality 30 % / 10 % / 60 % in fiscal months 1, 2, 9."""
    _won(tree, tree.members["a"], "300000.00", date(2025, 4, 20))
    _won(tree, tree.members["b"], "100000.00", date(2025, 5, 3))
    _won(tree, tree.members["c"], "600000.00", date(2025, 12, 12))


def _plan(tree: TenantTree, total: str = "12000000.00", metric: str = "won_amount") -> TargetPlan:
    return plan_create(
        member=tree.members["admin"], fiscal_year=2026, metric=metric, annual_total=D(total)
    )


def _value(plan: TargetPlan, who: Membership | OrgUnit, kind: str, index: int) -> Decimal | None:
    field = "member" if isinstance(who, Membership) else "org_unit"
    return Target.objects.get(
        plan=plan, period_kind=kind, period_index=index, product_line=None, **{field: who}
    ).value


def test_twelve_million_split_by_history_and_seasonality_with_a_ramping_new_hire(
    april: TenantTree,
) -> None:
    with tenant_scope(april.tenant):
        _history(april)
        # d joins T1 on 2026-06-01: tenure month 1 = June (fiscal month 3).
        d = membership_create(
            tenant=april.tenant,
            username="april-d",
            org_unit=april.units["t1"],
            start_date=date(2026, 6, 1),
        )
        plan = _plan(april)
        settings = DecomposeSettings(
            time_method="seasonal",
            org_method="history",
            org_methods_by_depth={2: "equal"},
            ramp=True,
            preserve_total=False,
        )
        # Decomposed on 2026-03-15: the window is March 2025 … February 2026, and the
        # tenant's first row is April 2025, so March (fiscal month 12) has no history.
        result = plan_decompose(
            member=april.members["admin"], plan=plan, settings=settings, as_of=date(2026, 3, 15)
        )
        a, b, c = (april.members[n] for n in "abc")
        year = PeriodKind.YEAR
        # Regions by last year's shares: R1 400k of 1,000k, R2 600k.
        assert _value(plan, april.units["r1"], year, 0) == D("4800000.00")
        assert _value(plan, april.units["r2"], year, 0) == D("7200000.00")
        assert _value(plan, april.units["t1"], year, 0) == D("4800000.00")
        assert _value(plan, c, year, 0) == D("7200000.00")
        # T1 splits equally (1,600,000 each unramped); d's mean factor is
        # (0 + 0 + 0.3×3 + 0.6×3 + 1×4) / 12 = 6.7 / 12, so 1,600,000 × 6.7/12 = 893,333.33.
        assert _value(plan, a, year, 0) == D("1600000.00")
        assert _value(plan, b, year, 0) == D("1600000.00")
        assert _value(plan, d, year, 0) == D("893333.33")
        assert result.unassigned == D("706666.67")
        # Seasonal months: 11 months with history (April 300k, May 100k, December 600k,
        # the others a real 0); March takes their mean 1,000k / 11. Shares of 12/11 ×
        # 1,000k: April 27.5 %, May 9.17 %, December 55 %, March 8.33 %.
        month = PeriodKind.MONTH
        assert [_value(plan, april.units["co"], month, i) for i in (1, 2, 9, 12)] == [
            D("3300000.00"),
            D("1100000.00"),
            D("6600000.00"),
            D("1000000.00"),
        ]
        assert _value(plan, april.units["co"], month, 5) == D("0.00")  # August: a real 0
        assert _value(plan, april.units["co"], PeriodKind.QUARTER, 1) == D("4400000.00")
        # d works only from June: April and May weights vanish; December (600k × 1) and
        # March (1,000k/11 × 1) carry it, 6.6 : 1 → 893,333.33 × 6.6/7.6 = 775,789.47.
        assert _value(plan, d, month, 9) == D("775789.47")
        assert _value(plan, d, month, 12) == D("117543.86")
        assert _value(plan, d, month, 1) == D("0.00")
        # Every assignee's months add up to their year.
        for target in Target.objects.filter(plan=plan, period_kind=year):
            months = Target.objects.filter(
                plan=plan,
                period_kind=month,
                org_unit=target.org_unit,
                member=target.member,
                product_line=target.product_line,
            )
            assert sum(m.value or D(0) for m in months) == target.value


def test_a_dry_run_returns_the_tree_and_saves_nothing(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _plan(april)
        result = plan_decompose(
            member=april.members["admin"], plan=plan, settings=DecomposeSettings(), dry_run=True
        )
        assert not Target.objects.filter(plan=plan).exists()
    tree = result.as_json()
    assert tree["annual_total"] == "12000000.00"
    root = next(node for node in tree["nodes"] if node["parent"] is None)
    assert root["months"] == ["1000000.00"] * 12


def test_redecomposing_a_draft_replaces_it_cleanly(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _plan(april)
        plan_decompose(member=april.members["admin"], plan=plan, settings=DecomposeSettings())
        first = Target.objects.filter(plan=plan).count()
        plan_decompose(
            member=april.members["admin"],
            plan=plan,
            settings=DecomposeSettings(headroom=D("0.10")),
        )
        assert Target.objects.filter(plan=plan).count() == first == 7 * 17
        # Headroom 10 %: the root's children sum to 13,200,000.
        assert _value(plan, april.units["r1"], PeriodKind.YEAR, 0) == D("6600000.00")


def test_manual_values_that_do_not_add_up_are_rejected_with_the_difference(
    april: TenantTree,
) -> None:
    r1, r2 = april.units["r1"], april.units["r2"]
    with tenant_scope(april.tenant):
        plan = _plan(april)
        settings = DecomposeSettings(
            org_method="manual",
            org_methods_by_depth={1: "equal", 2: "equal"},
            manual={f"unit:{r1.pk}": D("5000000.00"), f"unit:{r2.pk}": D("6000000.00")},
        )
        with pytest.raises(ValidationError, match="difference -1000000.00"):
            plan_decompose(member=april.members["admin"], plan=plan, settings=settings)
        assert not Target.objects.filter(plan=plan).exists()


def test_all_zero_potential_is_rejected(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _plan(april)
        with pytest.raises(ValidationError, match="sum to zero"):
            plan_decompose(
                member=april.members["admin"],
                plan=plan,
                settings=DecomposeSettings(org_method="potential"),
            )


def test_a_mid_period_joiner_is_prorated_by_active_days(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        joiner = membership_create(
            tenant=april.tenant,
            username="april-joiner",
            org_unit=april.units["r2"],
            start_date=date(2026, 5, 16),
        )
        plan = _plan(april, "1200000.00")
        settings = DecomposeSettings(
            org_method="equal", ramp=True, ramp_steps=[(1, D(1))], preserve_total=False
        )
        plan_decompose(member=april.members["admin"], plan=plan, settings=settings)
        # R2 = 600,000 → c and joiner 300,000 each unramped. The joiner is active 16 of
        # May's 31 days and every day after: mean factor (0 + 16/31 + 10) / 12.
        factor = (D(16) / D(31) + D(10)) / D(12)
        expected = (D(300000) * factor).quantize(D("0.01"))
        assert _value(plan, joiner, PeriodKind.YEAR, 0) == expected == D("262903.23")
        assert _value(plan, joiner, PeriodKind.MONTH, 1) == D("0.00")
        may = _value(plan, joiner, PeriodKind.MONTH, 2)
        june = _value(plan, joiner, PeriodKind.MONTH, 3)
        assert may is not None and june is not None
        assert abs(may / june - D(16) / D(31)) < D("0.0001")


# --- achievement ------------------------------------------------------------------


def _published_rep_plan(
    tree: TenantTree, metric: str = "won_amount", total: str = "1200000.00"
) -> TargetPlan:
    plan = _plan(tree, total, metric)
    plan_decompose(
        member=tree.members["admin"],
        plan=plan,
        settings=DecomposeSettings(
            org_method="manual",
            manual={
                f"unit:{tree.units['r1'].pk}": D(total),
                f"unit:{tree.units['r2'].pk}": D(0),
                f"unit:{tree.units['t1'].pk}": D(total),
                f"member:{tree.members['a'].pk}": D(total),
                f"member:{tree.members['b'].pk}": D(0),
                f"member:{tree.members['c'].pk}": D(0),
            },
        ),
    )
    return plan


def _achievement(plan: TargetPlan, member: Membership, kind: str, index: int, as_of: date) -> Any:
    node = Target.objects.get(
        plan=plan, member=member, period_kind=kind, period_index=index, product_line=None
    )
    return plan_achievements(plan, as_of, [node])[node.pk]


def test_attainment_and_pace_in_the_middle_of_may(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april)  # a: 100,000 a month
        _won(april, april.members["a"], "150000.00", date(2026, 5, 10))
        may = _achievement(plan, april.members["a"], PeriodKind.MONTH, 2, date(2026, 5, 15))
        # May: 15 of 31 days elapsed → expected 100,000 × 15/31 = 48,387.10.
        assert may.expected_to_date.quantize(D("0.01")) == D("48387.10")
        assert (may.actual, may.attainment) == (D("150000.00"), D("1.5"))
        assert round_rate(may.pace) == D("3.1000") and may.status == "on_track"
        year = _achievement(plan, april.members["a"], PeriodKind.YEAR, 0, date(2026, 5, 15))
        # Year: April fully elapsed (100,000) + May's 48,387.10; 320 days remain.
        assert year.expected_to_date.quantize(D("0.01")) == D("148387.10")
        assert round_rate(year.pace) == D("1.0109")
        assert year.gap == D("1050000.00")
        assert year.remaining_days == 320
        assert year.required_per_day == D("3281.25")
        assert year.attainment == D("0.1250")


def test_pace_statuses_at_quarter_and_year_boundaries(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april)
        _won(april, april.members["a"], "270000.00", date(2026, 6, 2))
        q1 = _achievement(plan, april.members["a"], PeriodKind.QUARTER, 1, date(2026, 6, 30))
        # End of Q1: expected = 300,000; 270,000 / 300,000 = 0.9 → at risk (threshold 0.10).
        assert (q1.expected_to_date, q1.pace, q1.status) == (D("300000.00"), D("0.9000"), "at_risk")
        assert q1.required_per_day is None  # the last day of the period
        q2 = _achievement(plan, april.members["a"], PeriodKind.QUARTER, 2, date(2026, 7, 1))
        assert q2.actual == 0 and q2.status == "off_track"
        last = _achievement(plan, april.members["a"], PeriodKind.YEAR, 0, date(2027, 3, 31))
        assert last.remaining_days == 0 and last.required_per_day is None
        with pytest.raises(ValidationError):
            _achievement(plan, april.members["a"], PeriodKind.YEAR, 0, date(2026, 3, 31))


def test_local_dates_place_timestamps_in_the_tenants_time_zone(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april, "activities_done", "120")
        shanghai = ZoneInfo("Asia/Shanghai")
        # 2026-03-31 16:30 UTC is already 1 April 00:30 in Shanghai: FY2026, April.
        Activity.objects.create(
            tenant=april.tenant,
            type="call",
            subject="Early bird",
            owner=april.members["a"],
            done_at=datetime(2026, 3, 31, 16, 30, tzinfo=ZoneInfo("UTC")),
        )
        Activity.objects.create(
            tenant=april.tenant,
            type="call",
            subject="Last FY",
            owner=april.members["a"],
            done_at=datetime(2026, 3, 31, 23, 0, tzinfo=shanghai),
        )
        april_node = _achievement(plan, april.members["a"], PeriodKind.MONTH, 1, date(2026, 4, 30))
        assert april_node.actual == 1 and april_node.attainment == D("0.1000")


def test_a_unit_counts_its_subtree_without_double_counting_moves(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _plan(april)
        plan_decompose(member=april.members["admin"], plan=plan, settings=DecomposeSettings())
        _won(april, april.members["a"], "100000.00", date(2026, 4, 10))
        # a moves to R2 after the win: the credit stays with T1 (fixed at the win).
        Membership.objects.filter(pk=april.members["a"].pk).update(org_unit=april.units["r2"])
        nodes = {
            name: Target.objects.get(
                plan=plan, org_unit=april.units[name], period_kind="year", product_line=None
            )
            for name in ("co", "r1", "r2", "t1")
        }
        results = plan_achievements(plan, date(2026, 4, 30), nodes.values())
        actual = {name: results[node.pk].actual for name, node in nodes.items()}
        assert actual == {
            "co": D("100000.00"),
            "r1": D("100000.00"),
            "r2": D(0),
            "t1": D("100000.00"),
        }


def test_projection_weights_open_deals_expected_in_the_rest_of_the_period(
    april: TenantTree,
) -> None:
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april)
        deal = records.opportunity(april, april.members["a"], amount=D("200000.00"))
        negotiation = records.stage(order=4)  # 70 %, commit
        Opportunity.objects.filter(pk=deal.pk).update(
            stage=negotiation, expected_close_date=date(2026, 5, 20)
        )
        other = records.opportunity(april, april.members["a"], amount=D("100000.00"))
        Opportunity.objects.filter(pk=other.pk).update(expected_close_date=date(2026, 5, 25))
        may = _achievement(plan, april.members["a"], PeriodKind.MONTH, 2, date(2026, 5, 15))
        # 200,000 × 70 % (commit) + 100,000 × 10 % (qualification) = 150,000.
        assert may.projected == D("150000")
        # Commit: the negotiation deal at face value, 200,000.
        assert may.projected_commit == D("200000.00")


def test_a_target_reads_as_period_assignee_and_line(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        target = records.rep_target(tree_a, kind="month", index=3)
        loaded = Target.objects.select_related("member__user").get(pk=target.pk)
    assert str(loaded).startswith("M03 · 2026-03-01…2026-03-31 · ")
    assert str(loaded.member) in str(loaded)
    bare = Target(
        period_kind="quarter", period_index=2, member_id=7, period_start=date(2026, 4, 1),
        period_end=date(2026, 6, 30), product_line_id=3,
    )  # fmt: skip
    assert str(bare) == "Q2 · 2026-04-01…2026-06-30 · #7 · line #3"


def test_a_few_nodes_aggregate_only_their_own_rows_and_get_the_same_figures(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to ``FEW_NODES`` nodes, the metric and the pipeline are aggregated over the rows
    credited to their members and their units' subtrees only (a rep's phone): the figures
    must be those of the whole-tenant aggregate."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from targets import achievement
    from targets.achievement import today_in
    from targets.calendar import fiscal_year_of

    tenant = tree_a.tenant
    with tenant_scope(tenant):
        today = today_in(tenant)
        plan = records.published_plan(
            tree_a, fiscal_year=fiscal_year_of(today, tenant.fiscal_year_start_month)
        )
        for who in ("rep", "rep2", "south-rep", "rep"):
            records.won_opportunity(tree_a, tree_a.members[who])
            records.opportunity(tree_a, tree_a.members[who])
        nodes = list(Target.objects.filter(plan=plan, product_line=None))
        with CaptureQueriesContext(connection) as narrowed_sql:
            narrowed = plan_achievements(plan, today, nodes)
        one = {
            node.pk: plan_achievements(plan, today, [node])[node.pk]
            for node in nodes
            if node.period_kind == "year"
        }
        monkeypatch.setattr(achievement, "FEW_NODES", 0)
        whole = plan_achievements(plan, today, nodes)
    assert any("FROM crm_orgunit top" in q["sql"] for q in narrowed_sql)  # narrowed
    assert narrowed == whole
    assert all(one[pk] == whole[pk] for pk in one)
    north = next(
        n for n in nodes if n.org_unit_id == tree_a.units["north"].pk and n.period_kind == "year"
    )
    assert whole[north.pk].actual == D("360000.00")  # rep's two wins and rep2's one


def test_seasonal_weights_when_the_tenants_data_starts_in_month_seven_of_the_window(
    april: TenantTree,
) -> None:
    with tenant_scope(april.tenant):
        # Decomposed on 2026-12-02: the window is December 2025 … November 2026, on
        # fiscal months April (1) … March (12). The first row is in June 2026 (month 7 of
        # the window): December 2025 … May 2026 have no history.
        a = april.members["a"]
        for amount, day in (
            ("100.00", date(2026, 6, 10)),  # fiscal month 3
            ("200.00", date(2026, 7, 10)),  # 4
            ("300.00", date(2026, 9, 10)),  # 6; August (5) is a real 0
            ("400.00", date(2026, 10, 10)),  # 7
            ("0.00", date(2026, 11, 10)),  # 8: a deal of nothing, still a 0
        ):
            _won(april, a, amount, day)
        plan = _plan(april, "12000.00")
        settings = DecomposeSettings(time_method="seasonal")
        plan_decompose(
            member=april.members["admin"], plan=plan, settings=settings, as_of=date(2026, 12, 2)
        )
        co = april.units["co"]
        months = [_value(plan, co, PeriodKind.MONTH, i) for i in range(1, 13)]
        # 6 months with history (June … November), sum 1,000, mean 166.67: the
        # months without history weigh 166.67 each (shares of 2,000): 1,000 each;
        # June 600, July 1,200, August 0, September 1,800, October 2,400, November 0.
        assert months == [
            D("1000.00"),  # April 2026: before June, no history
            D("1000.00"),  # May 2026
            D("600.00"),
            D("1200.00"),
            D("0.00"),
            D("1800.00"),
            D("2400.00"),
            D("0.00"),
            D("1000.00"),  # December 2025
            D("1000.00"),
            D("1000.00"),
            D("1000.00"),  # March 2026
        ]
        # β = 0.5 halves the seasonality: 0.5 × share + 0.5 / 12.
        settings = DecomposeSettings(time_method="seasonal", seasonal_blend=D("0.5"))
        plan_decompose(
            member=april.members["admin"], plan=plan, settings=settings, as_of=date(2026, 12, 2)
        )
        assert _value(plan, co, PeriodKind.MONTH, 4) == D("1100.00")
        assert _value(plan, co, PeriodKind.MONTH, 5) == D("500.00")


def test_a_member_who_joined_three_months_ago_gets_the_mean_of_their_siblings(
    april: TenantTree,
) -> None:
    with tenant_scope(april.tenant):
        _history(april)  # a 300,000 (April 2025), b 100,000 (May), c 600,000 (December)
        e = membership_create(
            tenant=april.tenant,
            username="april-e",
            org_unit=april.units["t1"],
            start_date=date(2025, 12, 10),
        )
        plan = _plan(april, "1200000.00")
        settings = DecomposeSettings(org_method="history", preserve_total=False)
        plan_decompose(
            member=april.members["admin"], plan=plan, settings=settings, as_of=date(2026, 3, 15)
        )
        year = PeriodKind.YEAR
        # Regions by history: R1 400k, R2 600k → 480,000 and 720,000; T1 480,000.
        assert _value(plan, april.units["r1"], year, 0) == D("480000.00")
        # e has no whole year: the mean of a and b, 200,000 → 300 : 100 : 200 →
        # 240,000, 80,000, 160,000 before ramp-up. e's tenure month 5 is April 2026:
        # factors 0.6, 0.6, then 1 × 10 → mean 11.2 / 12 → 160,000 × 11.2/12 = 149,333.33.
        assert _value(plan, april.members["a"], year, 0) == D("240000.00")
        assert _value(plan, april.members["b"], year, 0) == D("80000.00")
        assert _value(plan, e, year, 0) == D("149333.33")
        plan.refresh_from_db()
        assert plan.unassigned == D("10666.67")


def test_a_pace_of_0_99996_is_at_risk_though_shown_as_1_0000(april: TenantTree) -> None:
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april)  # a: 100,000 in May
        _won(april, april.members["a"], "99996.00", date(2026, 5, 20))
        may = _achievement(plan, april.members["a"], PeriodKind.MONTH, 2, date(2026, 5, 31))
    assert may.pace == D("0.99996") and may.status == "at_risk"
    shown = achievement_json(may)
    assert (shown["pace"], shown["status"], shown["attainment"]) == ("1.0000", "at_risk", "1.0000")


def test_collections_project_the_planned_payments_due_in_the_rest_of_the_period(
    april: TenantTree,
) -> None:
    a = april.members["a"]
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april, metric="collections")
        won = records.won_opportunity(april, a)
        for amount, planned, received in (
            ("20000.00", None, date(2026, 5, 5)),  # collected
            ("30000.00", date(2026, 5, 25), None),  # due later in May
            ("10000.00", date(2026, 6, 10), None),  # due in June
            ("5000.00", date(2026, 5, 10), None),  # overdue: not "the rest of the period"
        ):
            payment_record(
                member=a, opportunity=won, amount=D(amount), planned_date=planned,
                received_date=received, integration=True,  # a past date: an ERP's import
            )  # fmt: skip
        records.opportunity(april, a, amount=D("50000.00"))  # open deals never count here
        may = _achievement(plan, a, PeriodKind.MONTH, 2, date(2026, 5, 15))
        year = _achievement(plan, a, PeriodKind.YEAR, 0, date(2026, 5, 15))
    assert may.actual == D("20000.00")
    assert may.projected == D("50000.00")  # 20,000 + 30,000
    assert year.projected == D("60000.00")  # + the 10,000 due in June
    assert may.projected_commit is None and year.projected_commit is None


def test_count_metrics_project_by_run_rate(april: TenantTree) -> None:
    a = april.members["a"]
    with tenant_scope(april.tenant):
        plan = _published_rep_plan(april, metric="won_deals", total="1200")
        for day in (2, 8, 14):
            _won(april, a, "1000.00", date(2026, 5, day))
        may = _achievement(plan, a, PeriodKind.MONTH, 2, date(2026, 5, 15))
        year = _achievement(plan, a, PeriodKind.YEAR, 0, date(2026, 5, 15))
    # 3 deals in 15 of May's 31 days → 6.2; the year: 3 in 45 of 365 days → 24.33.
    assert may.projected == D("6.2")
    assert achievement_json(year)["projected"] == "24.33"
    assert may.projected_commit is None


def test_a_new_unit_whose_members_all_joined_recently_gets_the_mean_of_its_siblings(
    april: TenantTree,
) -> None:
    with tenant_scope(april.tenant):
        _history(april)  # R1 400,000 (a, b), R2 600,000 (c) in the window
        r3 = org_unit_create(tenant=april.tenant, name="R3", parent=april.units["co"])
        f = membership_create(
            tenant=april.tenant, username="april-f", org_unit=r3, start_date=date(2025, 12, 10)
        )
        _won(april, f, "90000.00", date(2026, 1, 20))  # a good start, but no whole year
        plan = _plan(april, "1500000.00")
        settings = DecomposeSettings(org_method="history", ramp=False)
        plan_decompose(
            member=april.members["admin"], plan=plan, settings=settings, as_of=date(2026, 3, 15)
        )
        # R3 takes the mean of R1 and R2, 500,000: 400 : 600 : 500 of 1,500,000.
        year = PeriodKind.YEAR
        assert _value(plan, april.units["r1"], year, 0) == D("400000.00")
        assert _value(plan, april.units["r2"], year, 0) == D("600000.00")
        assert _value(plan, r3, year, 0) == D("500000.00")
        assert _value(plan, f, year, 0) == D("500000.00")
