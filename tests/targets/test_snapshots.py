"""The nightly achievement snapshot: every current node, idempotent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from crm.models import Opportunity
from targets.models import AchievementSnapshot, Target, period_code
from targets.tasks import snapshot_tenant_achievements
from tenancy.models import JobRun
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def test_snapshots_cover_every_current_node_and_a_rerun_rewrites_them(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        deal = records.won_opportunity(tree_a, tree_a.members["rep"])
        # Pin the close date inside the snapshot's period: "today" moves on.
        Opportunity.objects.filter(pk=deal.pk).update(closed_date=date(2026, 11, 20))
        current = Target.objects.filter(
            plan=plan, period_start__lte=date(2026, 11, 23), period_end__gte=date(2026, 11, 23)
        ).count()
    snapshot_tenant_achievements.delay(tree_a.tenant.pk, "2026-11-23")
    snapshot_tenant_achievements.delay(tree_a.tenant.pk, "2026-11-23")
    with tenant_scope(tree_a.tenant):
        assert AchievementSnapshot.objects.count() == current == 7 * 3
        rep_year = AchievementSnapshot.objects.get(
            series__member=tree_a.members["rep"],
            series__product_line=None,
            period_code=period_code("year", 0),
        )
        assert rep_year.actual == Decimal("120000.00")
        assert rep_year.attainment == Decimal("0.4000")  # 120,000 of 300,000
        runs = JobRun.objects.filter(task_name="targets.snapshot_achievements")
        assert [run.counts["snapshots"] for run in runs] == [current, current]


def test_a_reversal_of_an_earlier_month_stores_a_negative_month(tree_a: TenantTree) -> None:
    """Finding 12.9: a payment received in October and reversed in November makes
    November's collections negative; the snapshot stores it instead of failing the tenant."""
    from crm.models import Payment
    from crm.services import payment_reverse

    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a, metric="collections")
        payment = records.received_payment(tree_a, rep)
        reversal = payment_reverse(member=tree_a.members["admin"], payment=payment)
        Payment.objects.filter(pk=payment.pk).update(received_date=date(2026, 10, 10))
        Payment.objects.filter(pk=reversal.pk).update(received_date=date(2026, 11, 5))
        november = Target.objects.get(
            plan=plan, member=rep, product_line=None, period_kind="month", period_index=11
        )
    snapshot_tenant_achievements.delay(tree_a.tenant.pk, "2026-11-23")
    with tenant_scope(tree_a.tenant):
        month = AchievementSnapshot.objects.get(
            series__member=rep, series__product_line=None, period_code=period_code("month", 11)
        )
        assert november.value == Decimal("25000.00")  # 300,000 / 12
        assert month.actual == Decimal("-50000.00")
        assert month.attainment == Decimal("-2.0000")  # -50,000 of 25,000
        year = AchievementSnapshot.objects.get(
            series__member=rep, series__product_line=None, period_code=period_code("year", 0)
        )
        assert year.actual == Decimal("0.00")  # received and reversed inside the year
        assert AchievementSnapshot.objects.filter(series__plan=plan).count() == 7 * 3


def test_a_generated_tenant_is_analyzed_and_its_collections_snapshot_is_written() -> None:
    """Finding 12.9: ``generate_data`` ANALYZEs what it loads (pg_class.reltuples is set
    from -1, "never analyzed", to the rows loaded), and a generated tenant's collections,
    reversals included, snapshot without an IntegrityError."""
    from io import StringIO

    from django.core.management import call_command
    from django.db import connection

    from crm.models import Payment
    from targets.services import DecomposeSettings, plan_create, plan_decompose, plan_publish
    from tenancy.models import Membership, Tenant

    call_command(
        "generate_data",
        "--tenant=gen",
        "--reps=3",
        "--customers=40",
        "--opportunities=400",
        "--activities=50",
        "--visits=10",
        "--months=6",
        "--seed=7",
        "--as-of=2026-06-30T10:00:00+00:00",
        stdout=StringIO(),
        stderr=StringIO(),
    )
    tenant = Tenant.objects.get(slug="gen")
    with tenant_scope(tenant):
        payments = Payment.objects.count()
        assert payments > 0
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'crm_payment'")
            assert cursor.fetchone() == (payments,)
        admin = Membership.objects.get(user__username="gen-admin")
        plan = plan_create(
            member=admin, fiscal_year=2026, metric="collections", annual_total=Decimal("1000000")
        )
        plan_decompose(member=admin, plan=plan, settings=DecomposeSettings())
        plan_publish(member=admin, plan=plan)
        current = Target.objects.filter(
            plan=plan, period_start__lte=date(2026, 6, 30), period_end__gte=date(2026, 6, 30)
        ).count()
    snapshot_tenant_achievements.delay(tenant.pk, "2026-06-30")
    with tenant_scope(tenant):
        assert current > 0
        assert AchievementSnapshot.objects.filter(series__plan=plan).count() == current


@pytest.mark.parametrize("metric", ["won_amount", "won_deals"])
def test_every_snapshot_stores_the_nodes_achievement_as_shown(
    tree_a: TenantTree, metric: str
) -> None:
    """The upsert sends the figures of ``plan_achievements`` rounded for storage: money
    half-up to cents, a count paced by days to 2 places, rates to 4; the status of the
    exact pace. November 23rd: 23 of 30 days, so a month of 1 deal expects 0.7666…"""
    from targets.achievement import plan_achievements
    from targets.achievement_math import shown_amount, shown_rate

    day = date(2026, 11, 23)
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a, metric=metric)
        deal = records.won_opportunity(tree_a, tree_a.members["rep"])
        Opportunity.objects.filter(pk=deal.pk).update(closed_date=date(2026, 11, 20))
        if metric == "won_deals":
            from targets.models import TargetSeries

            TargetSeries.objects.filter(plan=plan, member=tree_a.members["rep"]).update(
                months=[Decimal(1)] * 12
            )
        nodes = list(Target.objects.filter(plan=plan, period_start__lte=day, period_end__gte=day))
        expected = plan_achievements(plan, day, nodes)
    snapshot_tenant_achievements.delay(tree_a.tenant.pk, day.isoformat())
    with tenant_scope(tree_a.tenant):
        stored = {
            (row.series_id, row.period_code): row
            for row in AchievementSnapshot.objects.filter(as_of=day)
        }
        assert len(stored) == len(nodes) == 7 * 3
        for node in nodes:
            result, row = expected[node.pk], stored[(node.series_id, node.period_code)]
            currency = result.currency
            assert (
                row.actual,
                row.attainment,
                row.expected_to_date,
                row.pace,
                row.status,
                row.gap,
                row.required_per_day,
                row.projected,
                row.projected_commit,
            ) == (
                shown_amount(result.actual, currency),
                shown_rate(result.attainment),
                shown_amount(result.expected_to_date, currency),
                shown_rate(result.pace),
                result.status or "",
                shown_amount(result.gap, currency),
                shown_amount(result.required_per_day, currency),
                shown_amount(result.projected, currency),
                shown_amount(result.projected_commit, currency),
            ), node
        if metric == "won_deals":
            month = stored[(node_series(nodes, tree_a), period_code("month", 11))]
            # 1 deal expected over 30 days, 23 elapsed: 0.7666… → 0.77; pace 1 / 0.7666…
            assert month.expected_to_date == Decimal("0.77")
            assert month.pace == Decimal("1.3043")
            assert (month.actual, month.status, month.gap) == (Decimal("1.00"), "on_track", 0)


def node_series(nodes: list[Target], tree: TenantTree) -> int:
    return next(
        node.series_id
        for node in nodes
        if node.member_id == tree.members["rep"].pk and node.product_line_id is None
    )
