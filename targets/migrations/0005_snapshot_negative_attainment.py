"""A reversal makes a month's actual and attainment negative: store it (issue #12.9)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("targets", "0004_period_target_columns")]

    operations = [
        migrations.RemoveConstraint(
            model_name="achievementsnapshot", name="snapshot_attainment_gte_0"
        ),
    ]
