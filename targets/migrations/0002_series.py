"""Targets are stored as series (one row per plan × assignee × product line with its
twelve months); the period targets become a view over them.

A decomposed tree of 2,000 people × 5 product lines was ~233,000 rows (year, quarters
and months of every assignee and line), each checked against five foreign keys at
commit: saving it took seconds. As series it is ~14,000 rows. ``targets_target`` keeps
its columns as a view (``security_invoker``: the caller's row-level security applies),
with ids ``series id × 32 + period code``; adjustments and snapshots keep their target
ids (remapped) and gain the series they belong to.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

import tenancy.rls

# The period codes: 0 the year, 1–4 the quarters, 5–16 the months (targets.models).
CODE_SQL = """
    CASE t.period_kind WHEN 'year' THEN 0 WHEN 'quarter' THEN t.period_index
                       ELSE 4 + t.period_index END
"""

COPY_SERIES = """
INSERT INTO targets_targetseries
    (tenant_id, plan_id, org_unit_id, member_id, product_line_id, months, version, updated_at)
SELECT t.tenant_id, t.plan_id, t.org_unit_id, t.member_id, t.product_line_id,
       CASE WHEN COUNT(*) FILTER (WHERE t.period_kind = 'month') = 12
            THEN array_agg(t.value ORDER BY t.period_index)
                 FILTER (WHERE t.period_kind = 'month') END,
       MAX(t.version), MAX(t.updated_at)
FROM targets_target t
GROUP BY t.tenant_id, t.plan_id, t.org_unit_id, t.member_id, t.product_line_id
"""

# Negated first, flipped after: new ids may equal old ones of other rows, and the
# snapshots' unique (tenant, target, as_of) is checked row by row.
REMAP = """
UPDATE {table} x SET series_id = s.id, target_id = -(s.id * 32 + ({code}))
FROM targets_target t
JOIN targets_targetseries s ON s.tenant_id = t.tenant_id AND s.plan_id = t.plan_id
    AND s.org_unit_id IS NOT DISTINCT FROM t.org_unit_id
    AND s.member_id IS NOT DISTINCT FROM t.member_id
    AND s.product_line_id IS NOT DISTINCT FROM t.product_line_id
WHERE x.target_id = t.id
"""
FLIP = "UPDATE {table} SET target_id = -target_id WHERE target_id < 0"

MONTHS_CHECK = """
ALTER TABLE targets_targetseries ADD CONSTRAINT targetseries_months_valid CHECK (
    months IS NULL OR (array_ndims(months) = 1 AND cardinality(months) = 12
                       AND array_position(months, NULL) IS NULL AND 0 <= ALL (months)))
"""

MONTH = "COALESCE(s.months[{}], 0)"
QUARTER_SUM = " + ".join(MONTH.format(f"p.first + {k}") for k in (1, 2, 3))
YEAR_SUM = " + ".join(MONTH.format(k) for k in range(1, 13))
PERIODS = ", ".join(
    ["(0, 'year', 0, 0, 12)"]
    + [f"({q}, 'quarter', {q}, {(q - 1) * 3}, 3)" for q in range(1, 5)]
    + [f"({4 + m}, 'month', {m}, {m - 1}, 1)" for m in range(1, 13)]
)

CREATE_VIEW = f"""
CREATE VIEW targets_target WITH (security_invoker = true) AS
SELECT s.id * 32 + p.code AS id,
       s.id AS series_id,
       s.tenant_id,
       s.plan_id,
       p.kind::varchar(8) AS period_kind,
       p.idx::smallint AS period_index,
       (f.start + make_interval(months => p.first))::date AS period_start,
       (f.start + make_interval(months => p.first + p.span) - interval '1 day')::date
           AS period_end,
       s.org_unit_id,
       s.member_id,
       s.product_line_id,
       CASE WHEN s.months IS NULL THEN NULL
            WHEN p.span = 1 THEN s.months[p.first + 1]
            WHEN p.span = 3 THEN {QUARTER_SUM}
            ELSE {YEAR_SUM} END::numeric(18, 2) AS value,
       s.version,
       s.updated_at
FROM targets_targetseries s
JOIN targets_targetplan pl ON pl.id = s.plan_id
JOIN crm_tenant tn ON tn.id = s.tenant_id
CROSS JOIN LATERAL (SELECT make_date(pl.fiscal_year, tn.fiscal_year_start_month, 1) AS start) f
CROSS JOIN (VALUES {PERIODS}) AS p(code, kind, idx, first, span)
"""


def target_fk(related_name: str) -> models.ForeignKey:  # type: ignore[type-arg]
    return models.ForeignKey(
        db_constraint=False,
        db_index=False,
        on_delete=django.db.models.deletion.DO_NOTHING,
        related_name=related_name,
        to="targets.target",
        verbose_name="target",
    )


def series_fk(related_name: str, *, null: bool) -> models.ForeignKey:  # type: ignore[type-arg]
    return models.ForeignKey(
        blank=null,
        null=null,
        db_index=False,
        on_delete=django.db.models.deletion.CASCADE,
        related_name=related_name,
        to="targets.targetseries",
    )


def view_fk(to: str, *, null: bool = True, **kwargs: object) -> models.ForeignKey:  # type: ignore[type-arg]
    return models.ForeignKey(
        blank=null,
        null=null,
        db_index=False,
        on_delete=django.db.models.deletion.DO_NOTHING,
        related_name=kwargs.pop("related_name", "+"),
        to=to,
        **kwargs,  # type: ignore[arg-type]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0005_activity_touch_index"),
        ("targets", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="TargetSeries",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "months",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.DecimalField(decimal_places=2, max_digits=18),
                        blank=True,
                        help_text="The twelve fiscal months, in fiscal order.",
                        null=True,
                        size=12,
                        verbose_name="monthly targets",
                    ),
                ),
                (
                    "version",
                    models.PositiveIntegerField(default=1, editable=False, verbose_name="version"),
                ),
                ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated at")),
                (
                    "member",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="crm.membership",
                        verbose_name="member",
                    ),
                ),
                (
                    "org_unit",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="crm.orgunit",
                        verbose_name="org unit",
                    ),
                ),
                (
                    "plan",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="series",
                        to="targets.targetplan",
                    ),
                ),
                (
                    "product_line",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="crm.productline",
                        verbose_name="product line",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="crm.tenant",
                    ),
                ),
            ],
            options={
                "verbose_name": "target series",
                "verbose_name_plural": "target series",
                "indexes": [
                    models.Index(fields=["tenant", "member"], name="targetseries_member"),
                    models.Index(fields=["tenant", "org_unit"], name="targetseries_unit"),
                    models.Index(fields=["tenant", "updated_at"], name="targetseries_updated"),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "plan", "org_unit", "member", "product_line"),
                        name="targetseries_uniq",
                        nulls_distinct=False,
                    ),
                    models.UniqueConstraint(
                        fields=("tenant", "id"), name="targetseries_tenant_id_uniq"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("org_unit__isnull", True), ("member__isnull", False)),
                            models.Q(("org_unit__isnull", False), ("member__isnull", True)),
                            _connector="OR",
                        ),
                        name="targetseries_one_assignee",
                    ),
                ],
            },
        ),
        tenancy.rls.EnableTenantRLS(model_name="targetseries"),
        migrations.RunSQL(
            MONTHS_CHECK,
            "ALTER TABLE targets_targetseries DROP CONSTRAINT targetseries_months_valid",
        ),
        # The owner is held to the forced policies too: without the bypass a
        # non-superuser owner copies no row (SQL only, the schema is unchanged).
        tenancy.rls.BypassRLS(),
        migrations.RunSQL(COPY_SERIES, migrations.RunSQL.noop),
        migrations.AddField(
            model_name="achievementsnapshot",
            name="series",
            field=series_fk("snapshots", null=True),
        ),
        migrations.AddField(
            model_name="targetadjustment",
            name="series",
            field=series_fk("adjustments", null=True),
        ),
        # No foreign key to the view: drop the constraints before the ids change.
        migrations.AlterField(
            model_name="achievementsnapshot", name="target", field=target_fk("snapshots")
        ),
        migrations.AlterField(
            model_name="targetadjustment", name="target", field=target_fk("adjustments")
        ),
        migrations.RunSQL(
            [
                REMAP.format(table="targets_achievementsnapshot", code=CODE_SQL),
                REMAP.format(table="targets_targetadjustment", code=CODE_SQL),
                FLIP.format(table="targets_achievementsnapshot"),
                FLIP.format(table="targets_targetadjustment"),
                # Check the new foreign keys now: ALTER TABLE refuses pending checks.
                "SET CONSTRAINTS ALL IMMEDIATE",
            ],
            migrations.RunSQL.noop,
        ),
        migrations.AlterField(
            model_name="achievementsnapshot",
            name="series",
            field=series_fk("snapshots", null=False),
        ),
        migrations.AlterField(
            model_name="targetadjustment",
            name="series",
            field=series_fk("adjustments", null=False),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                # Irreversible: going back would need the period rows rebuilt.
                migrations.RunSQL(["DROP TABLE targets_target", CREATE_VIEW]),
            ],
            state_operations=[
                migrations.AlterModelOptions(
                    name="target",
                    options={
                        "managed": False,
                        "ordering": ["plan", "period_kind", "period_index"],
                        "verbose_name": "target",
                        "verbose_name_plural": "targets",
                    },
                ),
                migrations.AlterModelTable(name="target", table="targets_target"),
                migrations.RemoveConstraint(model_name="target", name="target_node_uniq"),
                migrations.RemoveConstraint(model_name="target", name="target_tenant_id_uniq"),
                migrations.RemoveConstraint(model_name="target", name="target_one_assignee"),
                migrations.RemoveConstraint(model_name="target", name="target_value_gte_0"),
                migrations.RemoveIndex(model_name="target", name="target_member"),
                migrations.RemoveIndex(model_name="target", name="target_unit"),
                migrations.RemoveIndex(model_name="target", name="target_updated"),
                migrations.AlterField(
                    model_name="target",
                    name="id",
                    field=models.BigIntegerField(primary_key=True, serialize=False),
                ),
                migrations.AddField(
                    model_name="target",
                    name="series",
                    field=view_fk("targets.targetseries", null=False, related_name="periods"),
                    preserve_default=False,
                ),
                migrations.AlterField(
                    model_name="target",
                    name="tenant",
                    field=models.ForeignKey(
                        editable=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="crm.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="plan",
                    field=view_fk("targets.targetplan", null=False, related_name="targets"),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="org_unit",
                    field=view_fk("crm.orgunit", verbose_name="org unit"),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="member",
                    field=view_fk("crm.membership", verbose_name="member"),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="product_line",
                    field=view_fk("crm.productline", verbose_name="product line"),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="updated_at",
                    field=models.DateTimeField(verbose_name="updated at"),
                ),
            ],
        ),
    ]
