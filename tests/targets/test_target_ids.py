"""A period target's public id (``series id × 32 + period code``) is only a name: every
lookup by it splits it and filters the series and the period code, two real columns;
what is stored about a target (adjustments, snapshots) is those two columns."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from targets.models import TARGET_ID_BASE, AchievementSnapshot, TargetAdjustment
from targets.services import target_adjust
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]
D = Decimal


def _target_queries(context: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in context.captured_queries if 'FROM "targets_target"' in q["sql"]]


def test_a_target_is_read_by_its_id_through_the_series_and_period_code(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        quarter = records.rep_target(tree_a, tree_a.members["rep"], "quarter", 3)
    manager = client_for(tree_a.members["manager"])
    with CaptureQueriesContext(connection) as context:
        body = manager.get(f"/api/v1/targets/{quarter.pk}/").json()
    assert (body["id"], body["period_kind"], body["period_index"]) == (quarter.pk, "quarter", 3)
    [sql] = _target_queries(context)
    assert f'"series_id" = {quarter.series_id}' in sql and '"period_code" IN (3)' in sql
    assert f'"id" = {quarter.pk}' not in sql  # never the view's computed id alone
    with tenant_scope(tree_a.tenant), CaptureQueriesContext(connection) as context:
        quarter.refresh_from_db()  # Django re-reads by pk: the model names the series too
    [sql] = _target_queries(context)
    assert f'"series_id" = {quarter.series_id}' in sql and '"period_code" = 3' in sql


def test_ids_naming_no_target_of_the_caller_answer_404(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    with tenant_scope(tree_a.tenant):
        month = records.rep_target(tree_a, tree_a.members["rep"], "month", 1)
        south = records.rep_target(tree_a)  # the South rep's: outside North's manager
    with tenant_scope(tree_b.tenant):
        foreign = records.rep_target(tree_b)
    manager = client_for(tree_a.members["manager"])
    rep = client_for(tree_a.members["rep"])
    no_period = month.series_id * TARGET_ID_BASE + 20  # codes end at 16
    for client, target_id in [
        (manager, foreign.pk),  # another tenant's
        (manager, south.pk),  # outside the manager's subtree
        (rep, south.pk),  # another rep's
        (manager, no_period),
        (manager, "abc"),
        (manager, 0),
    ]:
        for suffix in ("", "achievement/", "adjustments/", "plan-to-close/"):
            response = client.get(f"/api/v1/targets/{target_id}/{suffix}")
            assert response.status_code == 404, (target_id, suffix, response.content)
    response = manager.post(
        f"/api/v1/targets/{no_period}/adjust/",
        {"new_value": "1.00", "reason": "No such period", "trigger": "other"},
    )
    assert response.status_code == 404
    with tenant_scope(tree_a.tenant):
        assert not TargetAdjustment.objects.exists()


def test_adjustments_name_their_target_by_its_id_and_filter_by_it(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    admin = tree_a.members["admin"]
    with tenant_scope(tree_a.tenant):
        january = records.rep_target(tree_a, tree_a.members["rep"], "month", 1)
        quarter = records.rep_target(tree_a, tree_a.members["rep"], "quarter", 4)
        for target, value in ((january, "26000.00"), (quarter, "80000.00"), (january, "27000.00")):
            target_adjust(
                member=admin,
                target=target,
                new_value=D(value),
                reason="Re-planned",
                trigger="market",
            )
        stored = list(TargetAdjustment.objects.values_list("series_id", "period_code"))
    assert sorted(stored) == sorted(
        [(january.series_id, 5), (quarter.series_id, 4), (january.series_id, 5)]
    )
    client = client_for(admin)

    def listed(**params: Any) -> Any:
        response = client.get("/api/v1/target-adjustments/", params)
        assert response.status_code == 200, response.content
        return [(row["target"], row["new_value"]) for row in response.json()["results"]]

    assert sorted(listed()) == sorted(
        [(january.pk, "26000.00"), (quarter.pk, "80000.00"), (january.pk, "27000.00")]
    )
    assert sorted(listed(target=january.pk)) == [(january.pk, "26000.00"), (january.pk, "27000.00")]
    assert listed(target=quarter.pk) == [(quarter.pk, "80000.00")]
    assert listed(target=january.series_id * TARGET_ID_BASE + 20) == []  # names no period
    assert client.get("/api/v1/target-adjustments/", {"target": "abc"}).status_code == 400
    history = client.get(f"/api/v1/targets/{january.pk}/adjustments/").json()["results"]
    assert [row["new_value"] for row in history] == ["27000.00", "26000.00"]


def test_the_database_refuses_a_period_code_no_period_has(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        adjustment = records.adjustment(tree_a)
        for bad in (17, 31):
            with pytest.raises(IntegrityError), transaction.atomic():
                TargetAdjustment.objects.filter(pk=adjustment.pk).update(period_code=bad)
        snapshot = AchievementSnapshot.objects.create(
            tenant_id=tree_a.tenant.pk,
            series_id=adjustment.series_id,
            period_code=0,
            as_of="2026-11-23",
            actual=D("0"),
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            AchievementSnapshot.objects.filter(pk=snapshot.pk).update(period_code=17)
        # One snapshot per target and day: the series and code are the target.
        with pytest.raises(IntegrityError), transaction.atomic():
            AchievementSnapshot.objects.create(
                tenant_id=tree_a.tenant.pk,
                series_id=adjustment.series_id,
                period_code=0,
                as_of="2026-11-23",
                actual=D("1"),
            )
        assert snapshot.target_id == adjustment.series_id * TARGET_ID_BASE


def test_the_admin_finds_a_target_by_its_id_and_not_an_id_naming_no_period(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        adjustment = records.adjustment(tree_a)
        target = records.rep_target(tree_a)
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    with CaptureQueriesContext(connection) as context:
        page = client.get(f"/admin/targets/target/{target.pk}/change/")
    assert page.status_code == 200
    assert "Territory change" in page.content.decode()  # the adjustment history
    lookups = [
        sql for sql in _target_queries(context) if f'"series_id" = {target.series_id}' in sql
    ]
    assert lookups, "the change page reads the target by its series"
    no_period = target.series_id * TARGET_ID_BASE + 20
    assert client.get(f"/admin/targets/target/{no_period}/change/").status_code == 302
    listing = client.get("/admin/targets/targetadjustment/").content.decode()
    assert f"/admin/targets/target/{adjustment.target_id}/change/" in listing
