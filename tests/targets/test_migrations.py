"""Migration ``targets/0004`` on data made at ``0003``: every adjustment and snapshot,
of every tenant, keeps pointing at the same series and period, and going back restores
the old target ids."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import import_module
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tenancy.db import grant_app_role_privileges, owner_role
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("targets", "0003_platform_moved_to_tenancy")
AFTER = ("targets", "0004_period_target_columns")


def _migrate(*targets: tuple[str, str]) -> None:
    """Migrate the test database as ``manage.py migrate`` does: as the owner, then the
    application role's grants refreshed (a recreated view has none)."""
    with owner_role():
        executor = MigrationExecutor(connection)
        executor.migrate(list(targets) or executor.loader.graph.leaf_nodes())
        grant_app_role_privileges()


@pytest.fixture
def at_0003(tree_a: TenantTree, tree_b: TenantTree) -> Iterator[list[TenantTree]]:
    """Both tenants' plans decomposed (the series table is the same at 0003 and 0004),
    the database at 0003; back at the latest state afterwards, whatever happened."""
    for tree in (tree_a, tree_b):
        with tenant_scope(tree.tenant):
            records.published_plan(tree)
    _migrate(BEFORE)
    try:
        yield [tree_a, tree_b]
    finally:
        _migrate()


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return sorted(cursor.fetchall())


# At 0003 the rows carry the view's id; one adjustment and two snapshots per period
# target of the tenant: every period code, units, members and product lines.
ADJUSTMENTS_AT_0003 = """
INSERT INTO targets_targetadjustment (tenant_id, target_id, series_id, old_value, new_value,
    target_version, reason, trigger, status, effective_from, created_at)
SELECT t.tenant_id, t.id, t.series_id, t.value, COALESCE(t.value, 0) + 1, t.version,
       'made at 0003', 'other', 'applied', t.period_start, now()
FROM targets_target t
"""
SNAPSHOTS_AT_0003 = """
INSERT INTO targets_achievementsnapshot (tenant_id, target_id, series_id, as_of, actual,
    status, computed_at)
SELECT t.tenant_id, t.id, t.series_id, day, 0, '', now()
FROM targets_target t CROSS JOIN (VALUES (date '2026-11-22'), (date '2026-11-23')) d(day)
"""
# What each row is about, through the view of its state.
ABOUT_AT_0003 = """
SELECT x.id, x.target_id, t.series_id, t.period_kind, t.period_index
FROM {table} x JOIN targets_target t ON t.id = x.target_id
"""
ABOUT_AT_0004 = """
SELECT x.id, x.series_id * 32 + x.period_code, t.series_id, t.period_kind, t.period_index
FROM {table} x JOIN targets_target t
    ON t.series_id = x.series_id AND t.period_code = x.period_code
"""
TABLES = ("targets_targetadjustment", "targets_achievementsnapshot")


def test_0004_keeps_every_adjustment_and_snapshot_on_its_series_and_period(
    at_0003: list[TenantTree],
) -> None:
    before: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
    for tree in at_0003:
        with tenant_scope(tree.tenant), connection.cursor() as cursor:
            cursor.execute(ADJUSTMENTS_AT_0003)
            cursor.execute(SNAPSHOTS_AT_0003)
            for table in TABLES:
                before[(tree.tenant.pk, table)] = _rows(ABOUT_AT_0003.format(table=table))
    periods = {row[3:] for rows in before.values() for row in rows}
    assert len(periods) == 17  # the year, four quarters and twelve months
    assert all(len(rows) > 17 for rows in before.values())

    _migrate(AFTER)
    for tree in at_0003:
        with tenant_scope(tree.tenant):
            for table in TABLES:
                after = _rows(ABOUT_AT_0004.format(table=table))
                count = _rows(f"SELECT count(*) FROM {table}")[0][0]
                # Same rows, same series and period; the public id is the old target id.
                assert after == before[(tree.tenant.pk, table)], table
                assert count == len(after)

    _migrate(BEFORE)  # going back restores the ids the rows had
    for tree in at_0003:
        with tenant_scope(tree.tenant):
            for table in TABLES:
                assert _rows(ABOUT_AT_0003.format(table=table)) == before[(tree.tenant.pk, table)]


def test_0004_refuses_rows_whose_series_is_not_their_target_ids(
    at_0003: list[TenantTree],
) -> None:
    tree = at_0003[0]
    with tenant_scope(tree.tenant), connection.cursor() as cursor:
        cursor.execute(ADJUSTMENTS_AT_0003 + " LIMIT 1")
        cursor.execute("UPDATE targets_targetadjustment SET target_id = target_id + 32")
    with pytest.raises(RuntimeError, match="whose series is not their target id's"):
        _migrate(AFTER)
    with tenant_scope(tree.tenant), connection.cursor() as cursor:
        # Nothing half-done: still at 0003, the row as it was.
        assert _rows("SELECT count(*) FROM targets_targetadjustment WHERE target_id > 0") == [(1,)]
        cursor.execute("DELETE FROM targets_targetadjustment")


@pytest.mark.django_db(transaction=False)
def test_the_data_step_sees_every_tenants_rows_under_row_level_security(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    """The tests migrate as a superuser, whom row-level security never filters; a
    non-superuser owner is filtered (the policies are forced). Under the application
    role, which is filtered, the data step's bypass shows every tenant's rows."""
    migration = import_module("targets.migrations.0004_period_target_columns")
    for tree in (tree_a, tree_b):
        with tenant_scope(tree.tenant):
            records.adjustment(tree)
    assert getattr(connection, "crm_app_role_active", False)
    with transaction.atomic():
        assert _rows("SELECT count(*) FROM targets_targetadjustment") == [(0,)]
        with connection.schema_editor(atomic=False) as editor:
            migration.rls_bypass(editor)
        assert _rows("SELECT count(DISTINCT tenant_id) FROM targets_targetadjustment") == [(2,)]
