"""Issue #12: a reversal makes a month's actual and attainment negative: store it (9);
one published or locked plan per (tenant, fiscal year, metric) (8).

Going back (a release rolled back) restores ``attainment >= 0``: a negative attainment,
which the earlier schema cannot hold, is first set to 0, every tenant's (the bypass);
without it the constraint could not be added back once a reversal had been recorded.
"""

from django.db import migrations, models

from tenancy.rls import bypass_rls


def no_negative_attainment(apps, schema_editor):
    bypass_rls(schema_editor)
    schema_editor.execute(
        "UPDATE targets_achievementsnapshot SET attainment = 0 WHERE attainment < 0"
    )


class Migration(migrations.Migration):
    dependencies = [("targets", "0004_period_target_columns")]

    operations = [
        migrations.RemoveConstraint(
            model_name="achievementsnapshot", name="snapshot_attainment_gte_0"
        ),
        # Unapplied before the constraint is added back (operations reverse in turn).
        migrations.RunPython(migrations.RunPython.noop, no_negative_attainment),
        migrations.AddConstraint(
            model_name="targetplan",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["published", "locked"])),
                fields=("tenant", "fiscal_year", "metric"),
                name="targetplan_one_live_per_year",
            ),
        ),
    ]
