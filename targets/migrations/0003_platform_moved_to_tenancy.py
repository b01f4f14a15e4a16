"""Foreign keys now name ``tenancy``'s models: state only, the tables stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("targets", "0002_series"),
        ("tenancy", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="achievementsnapshot",
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
                    model_name="commitment",
                    name="member",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="member",
                    ),
                ),
                migrations.AlterField(
                    model_name="commitment",
                    name="org_unit",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.orgunit",
                        verbose_name="org unit",
                    ),
                ),
                migrations.AlterField(
                    model_name="commitment",
                    name="submitted_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="submitted by",
                    ),
                ),
                migrations.AlterField(
                    model_name="commitment",
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
                    model_name="rampschedule",
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
                    model_name="targetadjustment",
                    name="approved_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="approved by",
                    ),
                ),
                migrations.AlterField(
                    model_name="targetadjustment",
                    name="requested_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="requested by",
                    ),
                ),
                migrations.AlterField(
                    model_name="targetadjustment",
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
                    model_name="targetplan",
                    name="created_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="created by",
                    ),
                ),
                migrations.AlterField(
                    model_name="targetplan",
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
                    model_name="targetseries",
                    name="member",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.membership",
                        verbose_name="member",
                    ),
                ),
                migrations.AlterField(
                    model_name="targetseries",
                    name="org_unit",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="tenancy.orgunit",
                        verbose_name="org unit",
                    ),
                ),
                migrations.AlterField(
                    model_name="targetseries",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
                # The view's model is unmanaged: the autodetector skips it.
                migrations.AlterField(
                    model_name="target",
                    name="tenant",
                    field=models.ForeignKey(editable=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="tenancy.tenant"),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="org_unit",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="tenancy.orgunit", verbose_name="org unit"),
                ),
                migrations.AlterField(
                    model_name="target",
                    name="member",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name="+", to="tenancy.membership", verbose_name="member"),
                ),
            ],
            database_operations=[],
        ),
    ]
