"""Plan to close and the six warning rules (SPEC section 5)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.translation import override

from crm.models import Activity, Customer, Opportunity, StageChange, Visit
from funnel import rates
from funnel.models import Alert, AlertStatus, WarningRule
from funnel.plan import plan_to_close
from funnel.warnings import alert_message, evaluate_warnings
from targets.models import Target, TargetPlan
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.funnel.test_funnel import at, deal

pytestmark = pytest.mark.django_db
D = Decimal


def histories_for_target(target: Target) -> list[rates.History]:
    """The histories a plan to close of ``target`` on 1 November 2026 reads."""
    from crm.models import Pipeline
    from funnel.selectors import Window, histories_for

    window = Window(date(2025, 11, 2), date(2026, 11, 1), target.tenant.time_zone)
    member = target.member
    return histories_for(
        Pipeline.objects.get(is_default=True), window, member=member, unit=member.org_unit
    )


def _rep_year_target(tree: TenantTree, metric: str = "won_amount") -> Target:
    records.published_plan(tree, metric=metric)
    return Target.objects.get(
        plan__metric=metric, member=tree.members["rep"], period_kind="year", product_line=None
    )


def test_plan_to_close_walks_the_funnel_backwards_with_fallbacks(tree_a: TenantTree) -> None:
    south = tree_a.members["south-rep"]
    with tenant_scope(tree_a.tenant):
        target = _rep_year_target(tree_a)  # rep: 300,000 for 2026
        # Tenant history in the trailing year (rep has < 5 closed deals → unit → tenant):
        # 4 wins of 50,000 straight through, 4 losses at Qualification.
        for n in range(4):
            deal(
                tree_a,
                south,
                [(1, at(1 + n)), (2, at(5)), (3, at(8)), (4, at(9)), (5, at(10))],
                amount="50000.00",
            )
            deal(
                tree_a, south, [(1, at(1 + n)), (6, at(6))], amount="10000.00", lost_reason="Price"
            )
        result = plan_to_close(target, date(2026, 11, 1))
    # Gap 300,000 / average win 50,000 = 6 wins; Negotiation→won, Quote→Negotiation,
    # Solution→Quote all 4/4; Qualification→Solution 4/8 → 12 new opportunities.
    assert result["gap"] == "300000.00"
    assert result["wins"]["value"] == 6 and result["wins"]["source"] == "tenant"
    assert [stage["needed"]["value"] for stage in result["stages"]] == [12, 6, 6, 6]
    assert result["new_opportunities"]["value"] == 12
    assert result["remaining_weeks"] == 9 and result["wins"]["per_week"] == 1
    # No leads and no visits in the history: "no data", never a division by zero.
    assert result["leads"]["value"] is None and "no history" in result["leads"]["reason"]
    assert result["verified_visits"]["value"] == 0


def test_plan_to_close_says_no_data_when_a_stage_never_converts(tree_a: TenantTree) -> None:
    south = tree_a.members["south-rep"]
    with tenant_scope(tree_a.tenant):
        target = _rep_year_target(tree_a)
        deal(tree_a, south, [(1, at(1)), (5, at(3))], amount="1000.00")  # skips to won
        for n in range(3):
            deal(tree_a, south, [(1, at(1)), (2, at(2)), (6, at(4 + n))], lost_reason="Timing")
        result = plan_to_close(target, date(2026, 11, 1))
    solution = result["stages"][1]
    # Solution → Quote: 1 (the skipped win) of 4 reached; Quote → Negotiation 1/1 … fine.
    assert solution["needed"]["value"] is not None
    with tenant_scope(tree_a.tenant):
        Opportunity.objects.filter(stage__kind="won").delete()
        result = plan_to_close(target, date(2026, 11, 1))
    assert result["wins"]["value"] is None
    assert result["new_opportunities"]["value"] is None
    assert result["new_opportunities"]["reason"]


def reach_walks(queries: CaptureQueriesContext) -> int:
    """How many reached-count walks (one per history level read) the block ran."""
    return sum("AS reach" in query["sql"] for query in queries.captured_queries)


def test_the_tenants_reached_counts_are_read_only_when_a_stage_rate_falls_back(
    tree_a: TenantTree,
) -> None:
    """A rep with five wins through every stage has their own rate at every stage: the
    tenant's walk over every closed deal's stage changes is not run, and the plan is the
    same as with the walk run first."""
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        target = _rep_year_target(tree_a)
        for n in range(5):
            deal(tree_a, rep, [(1, at(1 + n)), (2, at(7)), (3, at(8)), (4, at(9)), (5, at(10))])
        with CaptureQueriesContext(connection) as queries:
            lazy = plan_to_close(target, date(2026, 11, 1))
        assert reach_walks(queries) == 2  # the rep's and the unit's, not the tenant's
        assert {stage["needed"]["source"] for stage in lazy["stages"]} == {"member"}
        eager_levels = histories_for_target(target)
        tenant_counts = eager_levels[-1].reached_counts
        assert isinstance(tenant_counts, rates.DeferredCounts) and not tenant_counts.read
        assert sum(tenant_counts.values()) > 0  # read now: the walk runs
        assert tenant_counts.read
        eager = rates.plan_to_close(
            D(lazy["gap"]),
            eager_levels,
            stage_order=[str(stage["stage"]) for stage in lazy["stages"]],
        )
    assert [stage["needed"]["value"] for stage in lazy["stages"]] == [
        need.needed.value for need in eager.stages
    ]
    assert lazy["wins"]["value"] == eager.wins.value


def test_my_three_plans_read_the_histories_once(tree_a: TenantTree) -> None:
    """The month's, the quarter's and the year's plans of one rep on one day share one
    reading of the same twelve months."""
    from funnel.plan import HistoryMemo

    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        deal(tree_a, rep, [(1, at(20)), (5, at(1, 11))], amount="30000.00")
        targets = list(
            Target.objects.filter(member=rep, plan__metric="won_amount", product_line=None)
            .filter(period_start__lte=date(2026, 11, 1), period_end__gte=date(2026, 11, 1))
            .select_related("plan")
        )
        assert {t.period_kind for t in targets} == {"month", "quarter", "year"}
        with CaptureQueriesContext(connection) as one:
            alone = plan_to_close(targets[0], date(2026, 11, 1))
        memo: HistoryMemo = {}
        with CaptureQueriesContext(connection) as three:
            shared = [plan_to_close(t, date(2026, 11, 1), memo=memo) for t in targets]
    assert reach_walks(three) == reach_walks(one) > 0
    assert len(memo) == 1
    assert shared[0] == alone


def test_plan_to_close_needs_an_amount_target(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        target = _rep_year_target(tree_a, "won_deals")
        with pytest.raises(ValidationError, match="won-amount"):
            plan_to_close(target, date(2026, 11, 1))


# --- warnings ---------------------------------------------------------------------


def _alerts(rule: str) -> list[Alert]:
    return list(Alert.objects.filter(rule=rule).order_by("subject_id"))


def test_low_win_rate_fires_once_and_resolves_when_it_clears(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    today = date(2026, 11, 1)
    with tenant_scope(tree_a.tenant):
        deals = [deal(tree_a, rep, [(1, at(1)), (6, at(5))], lost_reason="Price") for _ in range(6)]
        deal(tree_a, rep, [(1, at(1)), (5, at(5))])
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        alerts = _alerts("low_win_rate")
        assert len(alerts) == 1
        alert = alerts[0]
        assert (alert.subject_id, alert.observed, alert.threshold) == (
            rep.pk,
            D("0.1429"),
            D("0.1500"),
        )
        assert alert_message(alert) == (
            "Win rate over the last 90 days is 14.3 % (1 won of 7 closed), below the "
            "threshold of 15.0 %."
        )
        with override("zh-hans"):
            assert "90" in alert_message(alert)
        # Two of the losses are re-won: 3 of 7, the condition clears.
        won = records.stage("won")
        Opportunity.objects.filter(pk__in=[d.pk for d in deals[:2]]).update(stage=won)
        counts = evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        assert counts["resolved"] >= 1
        assert Alert.objects.get(pk=alert.pk).status == AlertStatus.RESOLVED


def test_behind_pace_fires_for_off_track_targets(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 6, 15))
        alerts = _alerts("behind_pace")
        # Nobody sold anything: every rep's and unit's June and year targets are off track.
        members = {a.owner_id for a in alerts if a.owner_id is not None}
        assert members == {tree_a.members[n].pk for n in ("rep", "rep2", "south-rep")}
        assert len(alerts) == 2 * (3 + len(tree_a.units))
        assert {a.period for a in alerts} == {"FY2026-M06", "FY2026-Y"}
        assert all(a.observed == 0 for a in alerts)


def test_key_customer_decline_and_missing_visits(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        key = records.customer(tree_a, rep, name="Key 大客户")
        won = records.won_opportunity(tree_a, rep)
        Opportunity.objects.filter(pk=won.pk).update(
            customer=key, amount=D("100000.00"), closed_date=date(2025, 10, 1)
        )
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 11, 1))
        alert = Alert.objects.get(rule="key_customer_decline", subject_id=key.pk)
        assert alert.observed == D("1.0000")  # nothing this year: down 100 %
        assert "down 100.0 %" in alert_message(alert)
        # Another level-A customer with no sales history but no visit either.
        quiet = records.customer(tree_a, rep, name="Quiet 安静")
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 11, 1))
        quiet_alert = Alert.objects.get(rule="key_customer_decline", subject_id=quiet.pk)
        assert "no verified visit in 30 days" in alert_message(quiet_alert)
        Visit.objects.create(
            tenant=tree_a.tenant,
            customer=quiet,
            rep=rep,
            verified=True,
            check_in_at=timezone.now(),
        )
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=timezone.localdate())
        assert Alert.objects.get(pk=quiet_alert.pk).status == AlertStatus.RESOLVED
        assert Customer.objects.filter(level="A").count() >= 2


def test_stale_deals_and_overdue_follow_ups(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        stale = records.opportunity(tree_a, rep)
        Opportunity.objects.filter(pk=stale.pk).update(
            stage_entered_at=timezone.now() - timedelta(days=20)
        )
        records.activity(tree_a, rep)  # due yesterday, not done
        evaluate_warnings(tenant_id=tree_a.tenant.pk)
        assert [a.subject_id for a in _alerts("stale_deal")] == [stale.pk]
        overdue = _alerts("overdue_follow_ups")
        assert [(a.subject_id, a.observed) for a in overdue] == [(rep.pk, D("1.0000"))]
        Activity.objects.update(done_at=timezone.now())
        evaluate_warnings(tenant_id=tree_a.tenant.pk)
        assert Alert.objects.get(pk=overdue[0].pk).status == AlertStatus.RESOLVED


def test_a_disabled_rule_resolves_its_alerts_and_opens_none(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        records.activity(tree_a, rep)
        evaluate_warnings(tenant_id=tree_a.tenant.pk)
        assert _alerts("overdue_follow_ups")
        WarningRule.objects.filter(key="overdue_follow_ups").update(enabled=False)
        evaluate_warnings(tenant_id=tree_a.tenant.pk)
        assert {a.status for a in _alerts("overdue_follow_ups")} == {AlertStatus.RESOLVED}


def test_conversion_drop_compares_the_two_last_complete_months_in_points(
    tree_a: TenantTree,
) -> None:
    south = tree_a.members["south-rep"]
    with tenant_scope(tree_a.tenant):
        for n in range(10):  # September: 10 of 10 go from Qualification to Solution
            deal(tree_a, south, [(1, at(2 + n, 9)), (2, at(20, 9))])
        for n in range(10):  # October: 5 of 10
            path = [(1, at(2 + n))] + ([(2, at(20))] if n < 5 else [])
            deal(tree_a, south, path)
        # On 31 October, October is still running: September is compared with August
        # (no cohort), so nothing fires however bad October looks so far.
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 10, 31))
        assert _alerts("conversion_drop") == []
        # On 2 November a November cohort of 10 that has not converted yet does not count.
        for n in range(10):
            deal(tree_a, south, [(1, at(1, 11, hour=8 + n))])
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 11, 2))
        alerts = _alerts("conversion_drop")
    assert len(alerts) == 1
    # 100 % → 50 %: a drop of 50 points against a threshold of 10 points.
    assert (alerts[0].observed, alerts[0].threshold) == (D("50.0000"), D("10.0000"))
    assert alerts[0].period == "2026-10"
    assert alert_message(alerts[0]) == (
        "Conversion from 商机 Qualification fell from 100.0 % for the deals created in "
        "2026-09 (10 reached it) to 50.0 % for those created in 2026-10 (10 reached it): "
        "a drop of 50.0 points, at least the 10.0 points that count."
    )


def test_conversion_drop_needs_ten_reaching_the_stage_in_each_month(tree_a: TenantTree) -> None:
    south = tree_a.members["south-rep"]
    with tenant_scope(tree_a.tenant):
        for n in range(10):  # September: 10 of 10
            deal(tree_a, south, [(1, at(2 + n, 9)), (2, at(20, 9))])
        for n in range(9):  # October: 0 of 9, one short of a cohort
            deal(tree_a, south, [(1, at(2 + n))])
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 11, 2))
        assert _alerts("conversion_drop") == []


def test_behind_pace_waits_for_a_fifth_of_the_period(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)  # nobody sells
        # 2 June: 2 of 30 days; the year (FY = calendar year) is 153 of 365 days in.
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 6, 2))
        assert {a.period for a in _alerts("behind_pace")} == {"FY2026-Y"}
        # 6 June: 6 of 30 days = 20 %, the month is judged too.
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 6, 6))
        assert {a.period for a in _alerts("behind_pace")} == {"FY2026-Y", "FY2026-M06"}
        # 5 January: 5 of 365 days (1.4 %) for the year, 5 of 31 (16 %) for January.
        Alert.objects.all().delete()
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=date(2026, 1, 5))
        assert _alerts("behind_pace") == []


def test_the_warning_job_runs_in_the_tenant_scope_and_records_its_run(tree_a: TenantTree) -> None:
    from funnel.tasks import evaluate_tenant_warnings
    from tenancy.models import JobRun

    with tenant_scope(tree_a.tenant):
        records.activity(tree_a, tree_a.members["rep"])
    evaluate_tenant_warnings.delay(tree_a.tenant.pk, "2026-11-01")
    evaluate_tenant_warnings.delay(tree_a.tenant.pk, "2026-11-01")
    with tenant_scope(tree_a.tenant):
        runs = list(JobRun.objects.filter(task_name="funnel.evaluate_warnings"))
        assert [run.status for run in runs] == ["succeeded", "succeeded"]
        assert sorted(run.counts["opened"] for run in runs) == [0, 1]
        assert Alert.objects.filter(rule="overdue_follow_ups").count() == 1


def test_all_six_rules_fire_stay_single_and_resolve_when_their_conditions_clear(
    tree_a: TenantTree,
) -> None:
    """One scenario that trips every rule, re-evaluated, then cleared rule by rule."""
    rep, south = tree_a.members["rep"], tree_a.members["south-rep"]
    today = date(2026, 11, 2)  # October is the last complete month
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)  # nobody sold: behind pace
        for _ in range(6):  # rep: 0 won of 6 closed → low win rate (created in August)
            deal(tree_a, rep, [(1, at(1, 8)), (6, at(5, 9))], lost_reason="Price")
        for n in range(10):  # conversion: September 10/10 to Solution, October 0/10
            deal(tree_a, south, [(1, at(2 + n, 9)), (2, at(20, 9))])
            deal(tree_a, south, [(1, at(2 + n))])
        records.customer(tree_a, rep, name="Key 大客户")  # level A, never visited
        stale = records.opportunity(tree_a, rep)
        Opportunity.objects.filter(pk=stale.pk).update(
            stage_entered_at=timezone.now() - timedelta(days=30)
        )
        records.activity(tree_a, rep)  # overdue follow-up
        first = evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        assert first["opened"] == Alert.objects.count() and first["updated"] == 0
        fired = {rule for rule in Alert.objects.values_list("rule", flat=True)}
        assert fired == {
            "low_win_rate",
            "behind_pace",
            "conversion_drop",
            "key_customer_decline",
            "stale_deal",
            "overdue_follow_ups",
        }
        ids = set(Alert.objects.values_list("pk", flat=True))
        again = evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        # Nothing changed: nothing opened, nothing rewritten.
        assert again == {"opened": 0, "updated": 0, "resolved": 0}
        assert set(Alert.objects.values_list("pk", flat=True)) == ids
        records.activity(tree_a, rep)  # a second overdue follow-up: one alert's figure moves
        overdue = Alert.objects.get(rule="overdue_follow_ups")
        moved = evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        assert moved == {"opened": 0, "updated": 1, "resolved": 0}
        overdue.refresh_from_db()
        assert overdue.observed == 2 and overdue.params["observed"] == 2

        # Clear every condition.
        won = records.stage("won")
        Opportunity.objects.filter(lost_reason="Price").update(stage=won, lost_reason="")
        Opportunity.objects.filter(owner=south, created_at__month=10, stage__order=1).update(
            stage=records.stage(order=2)
        )
        for deal_ in Opportunity.objects.filter(owner=south, created_at__month=10):
            StageChange.objects.create(
                tenant=tree_a.tenant,
                opportunity=deal_,
                from_stage=records.stage(order=1),
                to_stage=records.stage(order=2),
                changed_at=at(25),
            )
        for customer in Customer.objects.filter(level="A"):  # every key account visited
            Visit.objects.create(
                tenant=tree_a.tenant,
                customer=customer,
                rep=rep,
                verified=True,
                check_in_at=at(30),
            )
        Activity.objects.update(done_at=timezone.now())
        # Every open deal was just worked on (the October cohort had gone stale too).
        Opportunity.objects.filter(stage__kind="open").update(stage_entered_at=timezone.now())
        Activity.objects.create(
            tenant=tree_a.tenant,
            type="call",
            subject="Touch",
            owner=rep,
            opportunity=stale,
            done_at=timezone.now(),
        )
        TargetPlan.objects.update(status="draft")  # behind-pace needs a published plan
        evaluate_warnings(tenant_id=tree_a.tenant.pk, as_of=today)
        still_open = list(Alert.objects.exclude(status="resolved").values_list("rule", "period"))
        assert still_open == []
        assert set(Alert.objects.values_list("status", flat=True)) == {AlertStatus.RESOLVED}
