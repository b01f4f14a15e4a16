"""Period targets are referenced by two real columns, their series and the period's
code, instead of the view's computed id; the view is rendered from ``PERIODS``.

Adjustments and snapshots had ``target_id`` (``series id × 32 + code``, no foreign key:
it pointed into a view) beside ``series_id``. They now keep ``series_id`` (a foreign
key) and ``period_code`` (0-16, checked), ``target_id % 32`` of the old id. The view
gains the ``period_code`` column, so a lookup by public id filters the series' primary
key and the code (``targets.models.target_ids_q``) without custom lookups.

``VIEW_SQL`` is ``targets.models.target_view_sql()`` as it was when this migration was
written, frozen here: a migration must create the same view whenever it runs, whatever
the code says later. ``tests/targets/test_storage.py`` checks the function's current
output against the latest view migration, so changing ``PERIODS`` (or a table name)
fails until a new migration recreates the view.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

# The view before this migration, for going back (0002 is history: it never changes).
OLD_VIEW_SQL = import_module("targets.migrations.0002_series").CREATE_VIEW

VIEW_SQL = """
CREATE VIEW targets_target WITH (security_invoker = true) AS
SELECT s.id * 32 + p.code AS id,
       s.id AS series_id,
       p.code::smallint AS period_code,
       s.tenant_id,
       s.plan_id,
       p.kind::varchar(8) AS period_kind,
       p.idx::smallint AS period_index,
       (f.start + make_interval(months => p.first_month - 1))::date AS period_start,
       (f.start + make_interval(months => p.last_month) - interval '1 day')::date
           AS period_end,
       s.org_unit_id,
       s.member_id,
       s.product_line_id,
       (CASE p.code
            WHEN 0 THEN s.months[1] + s.months[2] + s.months[3] + s.months[4] + s.months[5] + s.months[6] + s.months[7] + s.months[8] + s.months[9] + s.months[10] + s.months[11] + s.months[12]
            WHEN 1 THEN s.months[1] + s.months[2] + s.months[3]
            WHEN 2 THEN s.months[4] + s.months[5] + s.months[6]
            WHEN 3 THEN s.months[7] + s.months[8] + s.months[9]
            WHEN 4 THEN s.months[10] + s.months[11] + s.months[12]
            WHEN 5 THEN s.months[1]
            WHEN 6 THEN s.months[2]
            WHEN 7 THEN s.months[3]
            WHEN 8 THEN s.months[4]
            WHEN 9 THEN s.months[5]
            WHEN 10 THEN s.months[6]
            WHEN 11 THEN s.months[7]
            WHEN 12 THEN s.months[8]
            WHEN 13 THEN s.months[9]
            WHEN 14 THEN s.months[10]
            WHEN 15 THEN s.months[11]
            WHEN 16 THEN s.months[12]
        END)::numeric(18, 2) AS value,
       s.version,
       s.updated_at
FROM targets_targetseries s
JOIN targets_targetplan pl ON pl.id = s.plan_id
JOIN crm_tenant tn ON tn.id = s.tenant_id
CROSS JOIN LATERAL (SELECT make_date(pl.fiscal_year, tn.fiscal_year_start_month, 1) AS start) f
CROSS JOIN (VALUES
        (0, 'year', 0, 1, 12),
        (1, 'quarter', 1, 1, 3),
        (2, 'quarter', 2, 4, 6),
        (3, 'quarter', 3, 7, 9),
        (4, 'quarter', 4, 10, 12),
        (5, 'month', 1, 1, 1),
        (6, 'month', 2, 2, 2),
        (7, 'month', 3, 3, 3),
        (8, 'month', 4, 4, 4),
        (9, 'month', 5, 5, 5),
        (10, 'month', 6, 6, 6),
        (11, 'month', 7, 7, 7),
        (12, 'month', 8, 8, 8),
        (13, 'month', 9, 9, 9),
        (14, 'month', 10, 10, 10),
        (15, 'month', 11, 11, 11),
        (16, 'month', 12, 12, 12)
    ) AS p(code, kind, idx, first_month, last_month)
"""

TABLES = ("targets_targetadjustment", "targets_achievementsnapshot")


def rls_bypass(schema_editor):
    """The data steps see every tenant's rows (until the transaction ends). A one-liner
    until ``tenancy.rls`` offers the shared helper; switch to it then."""
    schema_editor.execute("SELECT set_config('app.rls_bypass', 'on', true)")


def codes_from_target_ids(apps, schema_editor):
    rls_bypass(schema_editor)
    with schema_editor.connection.cursor() as cursor:
        for table in TABLES:
            # 0002 filled the series from the same ids: they must agree.
            cursor.execute(f"SELECT count(*) FROM {table} WHERE series_id <> target_id / 32")
            (disagreeing,) = cursor.fetchone()
            if disagreeing:
                raise RuntimeError(
                    f"{table}: {disagreeing} rows whose series is not their target id's"
                )
            cursor.execute(f"UPDATE {table} SET period_code = target_id % 32")


def target_ids_from_codes(apps, schema_editor):
    rls_bypass(schema_editor)
    for table in TABLES:
        schema_editor.execute(f"UPDATE {table} SET target_id = series_id * 32 + period_code")


def period_code(*, null):
    return models.PositiveSmallIntegerField(editable=False, null=null, verbose_name="period code")


def old_target_fk(related_name):
    return models.ForeignKey(
        blank=True,
        null=True,
        db_constraint=False,
        db_index=False,
        on_delete=django.db.models.deletion.DO_NOTHING,
        related_name=related_name,
        to="targets.target",
        verbose_name="target",
    )


def code_check(name):
    return models.CheckConstraint(
        condition=models.Q(("period_code__gte", 0), ("period_code__lte", 16)), name=name
    )


class Migration(migrations.Migration):
    dependencies = [
        ("targets", "0003_platform_moved_to_tenancy"),
    ]

    operations = [
        migrations.AddField(
            model_name="targetadjustment", name="period_code", field=period_code(null=True)
        ),
        migrations.AddField(
            model_name="achievementsnapshot", name="period_code", field=period_code(null=True)
        ),
        # Nullable first, so that going back can add the column, fill it, then require it.
        migrations.AlterField(
            model_name="targetadjustment", name="target", field=old_target_fk("adjustments")
        ),
        migrations.AlterField(
            model_name="achievementsnapshot", name="target", field=old_target_fk("snapshots")
        ),
        migrations.RunPython(codes_from_target_ids, target_ids_from_codes),
        migrations.AlterField(
            model_name="targetadjustment", name="period_code", field=period_code(null=False)
        ),
        migrations.AlterField(
            model_name="achievementsnapshot", name="period_code", field=period_code(null=False)
        ),
        migrations.RemoveIndex(model_name="targetadjustment", name="adjustment_target"),
        migrations.RemoveConstraint(model_name="achievementsnapshot", name="snapshot_uniq"),
        migrations.RemoveField(model_name="targetadjustment", name="target"),
        migrations.RemoveField(model_name="achievementsnapshot", name="target"),
        migrations.AddIndex(
            model_name="targetadjustment",
            index=models.Index(
                fields=["tenant", "series", "period_code", "created_at"], name="adjustment_target"
            ),
        ),
        migrations.AddConstraint(
            model_name="targetadjustment", constraint=code_check("adjustment_period_code_valid")
        ),
        migrations.AddConstraint(
            model_name="achievementsnapshot",
            constraint=models.UniqueConstraint(
                fields=("tenant", "series", "period_code", "as_of"), name="snapshot_uniq"
            ),
        ),
        migrations.AddConstraint(
            model_name="achievementsnapshot", constraint=code_check("snapshot_period_code_valid")
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    ["DROP VIEW targets_target", VIEW_SQL],
                    ["DROP VIEW targets_target", OLD_VIEW_SQL],
                ),
            ],
            state_operations=[
                migrations.AddField(
                    model_name="target",
                    name="period_code",
                    field=models.PositiveSmallIntegerField(
                        default=0, editable=False, verbose_name="period code"
                    ),
                    preserve_default=False,
                ),
            ],
        ),
    ]
