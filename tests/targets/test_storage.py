"""How targets are stored: one series (twelve months) per plan × assignee × product line,
the period targets a view over them rendered from ``targets.models.PERIODS`` (migrations
``targets/0002`` and ``0004``)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

import targets.migrations as targets_migrations
from targets import calendar
from targets.models import (
    PERIOD_BY_CODE,
    PERIODS,
    TARGET_ID_BASE,
    Target,
    TargetSeries,
    split_target_id,
    target_ids_q,
    target_public_id,
    target_view_sql,
)
from targets.services import target_adjust
from tenancy.scope import platform_scope, tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
D = Decimal


def _count(sql: str, params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return int(cursor.fetchone()[0])


def test_each_series_reads_as_a_year_four_quarters_and_twelve_months(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        series = TargetSeries.objects.filter(plan=plan).first()
        assert series is not None and series.months is not None
        periods = list(Target.objects.filter(series=series).order_by("pk"))
    assert [t.pk for t in periods] == [series.pk * TARGET_ID_BASE + code for code in range(17)]
    assert [t.period_code for t in periods] == sorted(PERIOD_BY_CODE)
    assert [(t.period_kind, t.period_index) for t in periods[:6]] == [
        ("year", 0),
        ("quarter", 1),
        ("quarter", 2),
        ("quarter", 3),
        ("quarter", 4),
        ("month", 1),
    ]
    months = series.months
    assert [t.value for t in periods[5:]] == months
    assert [t.value for t in periods[1:5]] == [sum(months[q * 3 : q * 3 + 3]) for q in range(4)]
    assert periods[0].value == sum(months)
    # Calendar year tenant: month 2 is February 2026, Q4 ends with the year.
    assert (periods[6].period_start, periods[6].period_end) == (date(2026, 2, 1), date(2026, 2, 28))
    assert (periods[4].period_start, periods[4].period_end) == (
        date(2026, 10, 1),
        date(2026, 12, 31),
    )
    assert all(t.member_id == series.member_id for t in periods)


def _plan_of(sql: str, params: Any) -> str:
    # On a handful of rows a sequential scan is cheapest: forbid it to see whether the
    # primary key can serve at all (the view's computed id alone could not use it).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_a_target_is_found_by_its_public_id_through_its_series_primary_key(
    tree_a: TenantTree,
) -> None:
    """The public id is split into the series and the period code, two real columns:
    PostgreSQL finds the series by its primary key instead of expanding every series
    of the tenant into periods."""
    with tenant_scope(tree_a.tenant):
        target = records.rep_target(tree_a, kind="quarter", index=2)
        assert target.pk == target_public_id(target.series_id, target.period_code)
        assert (
            split_target_id(target.pk)
            == split_target_id(str(target.pk))
            == (
                target.series_id,
                2,
            )
        )
        one = Target.objects.filter(target_ids_q([target.pk]))
        # An id of a code no period has (31) and junk match nothing.
        ids = [target.pk, target.pk + 1, target.series_id * TARGET_ID_BASE + 31, "x", None]
        many = Target.objects.filter(target_ids_q(ids))
        assert list(one) == [target]
        assert {t.pk for t in many} == {target.pk, target.pk + 1}
        assert not Target.objects.filter(target_ids_q(["x", -5, 31, True])).exists()
        plans = [_plan_of(*query.query.sql_with_params()) for query in (one, many)]
    for plan in plans:
        assert re.search(rf"Index Cond: .*\bid = {target.series_id}\b", plan), plan
        assert "Seq Scan on targets_targetseries" not in plan, plan


@pytest.mark.parametrize("bad", ["0", "31", "-32", "abc", "1.5", "", True])
def test_an_id_naming_no_period_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        split_target_id(bad)


def test_the_view_shows_only_the_scoped_tenants_targets(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_a.tenant):
        plan_a = records.published_plan(tree_a)
        mine = _count("SELECT count(*) FROM targets_target")
        assert mine == 17 * TargetSeries.objects.filter(plan=plan_a).count() > 0
    with tenant_scope(tree_b.tenant):
        records.published_plan(tree_b)
        foreign = _count(
            "SELECT count(*) FROM targets_target WHERE tenant_id = %s", [tree_a.tenant.pk]
        )
        series_a = _count(
            "SELECT count(*) FROM targets_targetseries WHERE plan_id = %s", [plan_a.pk]
        )
        assert not Target.objects.filter(plan_id=plan_a.pk).exists()
    assert foreign == 0 and series_a == 0
    with platform_scope("test: count every tenant's targets"):
        assert _count("SELECT count(*) FROM targets_target") > mine


def test_months_are_twelve_set_and_never_negative(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        series = TargetSeries.objects.filter(plan=plan).first()
        assert series is not None
        for bad in ([D(1)] * 11, [D(-1)] + [D(0)] * 11, [None] + [D(0)] * 11):
            with pytest.raises(IntegrityError), transaction.atomic():
                TargetSeries.objects.filter(pk=series.pk).update(months=bad)
        TargetSeries.objects.filter(pk=series.pk).update(months=None)  # not set
        assert {t.value for t in Target.objects.filter(series=series)} == {None}


def test_adjusting_a_quarter_moves_its_open_months_and_the_year_with_it(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        quarter = records.rep_target(tree_a, kind="quarter", index=4)
        year = Target.objects.get(series=quarter.series_id, period_kind="year")
        before = list(TargetSeries.objects.get(pk=quarter.series_id).months or [])
        target_adjust(
            member=tree_a.members["admin"],
            target=quarter,
            new_value=quarter.value + D("300.00"),
            reason="New territory",
            trigger="market",
            effective_from=date(2026, 11, 1),  # October has elapsed: November, December
        )
        after = TargetSeries.objects.get(pk=quarter.series_id)
        quarter.refresh_from_db()
        year.refresh_from_db()
    assert after.months is not None
    assert after.months[:10] == before[:10]  # October and earlier untouched
    assert sum(after.months[10:]) - sum(before[10:]) == D("300.00")
    assert quarter.value == sum(after.months[9:12])
    assert year.value == sum(after.months)
    assert quarter.version == year.version == after.version == 2


# --- the view is rendered from PERIODS ---------------------------------------------------


def _latest_view_migration() -> tuple[str, str]:
    """The name and frozen ``VIEW_SQL`` of the latest targets migration that has one."""
    folder = Path(targets_migrations.__file__).parent
    for path in sorted(folder.glob("[0-9]*.py"), reverse=True):
        module = import_module(f"targets.migrations.{path.stem}")
        if hasattr(module, "VIEW_SQL"):
            return path.stem, str(module.VIEW_SQL)
    raise AssertionError("no migration creates the view from target_view_sql()")


def test_the_latest_view_migration_froze_what_target_view_sql_renders() -> None:
    """Migrations keep the SQL they were written with; when ``PERIODS`` (or a table
    name) changes, this fails until a new migration recreates the view."""
    name, frozen = _latest_view_migration()
    assert frozen.strip() == target_view_sql().strip(), (
        f"target_view_sql() no longer renders what {name} created: write a migration that "
        "drops targets_target and creates it from the new output (frozen, like 0004)"
    )


def test_the_database_has_the_view_target_view_sql_renders(db: None) -> None:
    rendered = target_view_sql().replace(
        "CREATE VIEW targets_target", "CREATE TEMPORARY VIEW rendered_targets", 1
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(rendered)
        cursor.execute(
            "SELECT pg_get_viewdef('targets_target'::regclass), "
            "pg_get_viewdef('rendered_targets'::regclass)"
        )
        live, expected = cursor.fetchone()
        transaction.set_rollback(True)
    assert live == expected


def test_every_period_row_is_what_periods_says(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        plan = records.published_plan(tree_a)
        series = TargetSeries.objects.filter(plan=plan, months__isnull=False).first()
        assert series is not None and series.months is not None
        rows = list(Target.objects.filter(series=series))
        start_month = tree_a.tenant.fiscal_year_start_month
    fiscal_months = calendar.months(plan.fiscal_year, start_month)
    assert sorted(t.period_code for t in rows) == [p.code for p in PERIODS]
    for row in rows:
        period = PERIOD_BY_CODE[row.period_code]
        assert row.pk == target_public_id(series.pk, period.code)
        assert (row.period_kind, row.period_index) == (period.kind, period.index)
        assert row.period_start == fiscal_months[period.first_month - 1].start
        assert row.period_end == fiscal_months[period.last_month - 1].end
        assert row.value == sum(series.months[period.first_month - 1 : period.last_month])
