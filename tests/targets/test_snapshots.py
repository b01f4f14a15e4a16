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
