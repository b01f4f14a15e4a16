"""Issue #12: a reversal makes a month's actual and attainment negative: store it (9);
one published or locked plan per (tenant, fiscal year, metric) (8)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("targets", "0004_period_target_columns")]

    operations = [
        migrations.RemoveConstraint(
            model_name="achievementsnapshot", name="snapshot_attainment_gte_0"
        ),
        migrations.AddConstraint(
            model_name="targetplan",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["published", "locked"])),
                fields=("tenant", "fiscal_year", "metric"),
                name="targetplan_one_live_per_year",
            ),
        ),
    ]
