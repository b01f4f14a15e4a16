"""The incentives' nightly tasks run as tenant tasks and record their job runs."""

from __future__ import annotations

from datetime import date

import pytest

from incentives import tasks
from incentives.models import CommissionStatement, LeaderboardEntry, PointEntry, PointRule
from tenancy.models import JobRun
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.incentives.test_statements import worked_case

pytestmark = pytest.mark.django_db


def test_the_three_nightly_steps_run_in_the_tenants_scope_and_are_recorded(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        _plan, today = worked_case(tree_a)
        rule = PointRule.objects.create(tenant=tree_a.tenant, event="deal_won", points=5)
        PointEntry.objects.filter(rule=rule).delete()  # as if the event had been missed
        records.lead(tree_a)
    as_of = today.isoformat()
    caught_up = tasks.points_catch_up.delay(tree_a.tenant.pk, as_of).get()
    boards = tasks.refresh_leaderboards.delay(tree_a.tenant.pk, as_of).get()
    statements = tasks.compute_statements.delay(tree_a.tenant.pk, as_of).get()
    assert caught_up["awarded"] == 1
    assert statements == {"checked": 0, "adjustments": 0, "statements": 1}
    with tenant_scope(tree_a.tenant):
        assert LeaderboardEntry.objects.count() == boards["rows"] > 0
        assert CommissionStatement.objects.get().total > 0
        runs = set(JobRun.objects.values_list("task_name", "status"))
    assert runs == {
        ("incentives.points_catch_up", "succeeded"),
        ("incentives.refresh_leaderboards", "succeeded"),
        ("incentives.compute_statements", "succeeded"),
    }
    assert date.fromisoformat(as_of) == today
