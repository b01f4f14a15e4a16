"""Foreign keys now name ``tenancy``'s models: state only, the tables stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("funnel", "0001_initial"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="alert",
                    name="acknowledged_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="acknowledged by",
                    ),
                ),
                migrations.AlterField(
                    model_name="alert",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Whose record it is: decides who sees the alert.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="owner",
                    ),
                ),
                migrations.AlterField(
                    model_name="alert",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AlterField(
                    model_name="warningrule",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
            ],
            database_operations=[],
        ),
    ]
