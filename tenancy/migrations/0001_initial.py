"""The platform's models move here from ``crm`` (SPEC 2). State only: the tables keep
their names (``crm_tenant`` …), so an existing database keeps every row; the content
types follow, so permissions and admin history stay attached."""

from decimal import Decimal

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

import tenancy.models

MOVED = ["tenant", "orgunit", "membership", "orgunitmanager", "apitoken", "jobrun", "nightlyrun"]


def _relabel(apps, schema_editor, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.using(schema_editor.connection.alias).filter(
        app_label=old, model__in=MOVED
    ).update(app_label=new)


def move_content_types(apps, schema_editor):
    _relabel(apps, schema_editor, "crm", "tenancy")


def move_content_types_back(apps, schema_editor):
    _relabel(apps, schema_editor, "tenancy", "crm")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("crm", "0006_nightly_run"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OrgUnit",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200, verbose_name="name")),
                        (
                            "path",
                            models.CharField(
                                default="", editable=False, max_length=1000, verbose_name="path"
                            ),
                        ),
                        (
                            "depth",
                            models.PositiveSmallIntegerField(
                                default=0, editable=False, verbose_name="depth"
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, verbose_name="updated at"),
                        ),
                        (
                            "parent",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="children",
                                to="tenancy.orgunit",
                                verbose_name="parent",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "org unit",
                        "verbose_name_plural": "org units",
                        "db_table": "crm_orgunit",
                        "ordering": ["path"],
                    },
                ),
                migrations.CreateModel(
                    name="Membership",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "role",
                            models.CharField(
                                choices=[
                                    ("admin", "Admin"),
                                    ("manager", "Manager"),
                                    ("rep", "Sales rep"),
                                ],
                                default="rep",
                                max_length=16,
                                verbose_name="role",
                            ),
                        ),
                        (
                            "title",
                            models.CharField(blank=True, max_length=120, verbose_name="title"),
                        ),
                        (
                            "start_date",
                            models.DateField(
                                default=django.utils.timezone.localdate,
                                help_text="Drives the ramp-up schedule.",
                                verbose_name="start date",
                            ),
                        ),
                        (
                            "end_date",
                            models.DateField(blank=True, null=True, verbose_name="end date"),
                        ),
                        ("is_active", models.BooleanField(default=True, verbose_name="active")),
                        (
                            "token_version",
                            models.PositiveIntegerField(
                                default=0,
                                editable=False,
                                help_text="Raised to revoke every token of this member.",
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, verbose_name="updated at"),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="memberships",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="user",
                            ),
                        ),
                        (
                            "org_unit",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="members",
                                to="tenancy.orgunit",
                                verbose_name="org unit",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "member",
                        "verbose_name_plural": "members",
                        "db_table": "crm_membership",
                        "ordering": ["user__username"],
                    },
                ),
                migrations.CreateModel(
                    name="OrgUnitManager",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "membership",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                to="tenancy.membership",
                            ),
                        ),
                        (
                            "org_unit",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                to="tenancy.orgunit",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "org unit manager",
                        "verbose_name_plural": "org unit managers",
                        "db_table": "crm_orgunitmanager",
                    },
                ),
                migrations.AddField(
                    model_name="orgunit",
                    name="managers",
                    field=models.ManyToManyField(
                        blank=True,
                        related_name="managed_units",
                        through="tenancy.OrgUnitManager",
                        to="tenancy.membership",
                        verbose_name="managers",
                    ),
                ),
                migrations.CreateModel(
                    name="Tenant",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=200, verbose_name="name")),
                        (
                            "slug",
                            models.SlugField(
                                help_text="Short name used at login.",
                                max_length=60,
                                unique=True,
                                verbose_name="slug",
                            ),
                        ),
                        (
                            "time_zone",
                            models.CharField(
                                default="Asia/Shanghai",
                                max_length=64,
                                validators=[tenancy.models.validate_time_zone],
                                verbose_name="time zone",
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(
                                default="CNY",
                                max_length=3,
                                validators=[
                                    django.core.validators.RegexValidator(
                                        "^[A-Z]{3}$", "Use a three-letter ISO 4217 code."
                                    )
                                ],
                                verbose_name="currency",
                            ),
                        ),
                        (
                            "fiscal_year_start_month",
                            models.PositiveSmallIntegerField(
                                default=1,
                                help_text="1 = January. The fiscal year is named by the calendar year it starts in.",
                                validators=[
                                    django.core.validators.MinValueValidator(1),
                                    django.core.validators.MaxValueValidator(12),
                                ],
                                verbose_name="fiscal year start month",
                            ),
                        ),
                        (
                            "visit_radius_m",
                            models.PositiveIntegerField(
                                default=500,
                                help_text="A check-in within this distance of the customer counts as verified.",
                                validators=[django.core.validators.MinValueValidator(1)],
                                verbose_name="visit radius (metres)",
                            ),
                        ),
                        (
                            "pace_threshold",
                            models.DecimalField(
                                decimal_places=3,
                                default=Decimal("0.100"),
                                help_text="Below 1 − threshold of the expected pace a target is off track.",
                                max_digits=4,
                                validators=[
                                    django.core.validators.MinValueValidator(Decimal("0")),
                                    django.core.validators.MaxValueValidator(Decimal("0.999")),
                                ],
                                verbose_name="pace threshold",
                            ),
                        ),
                        ("is_active", models.BooleanField(default=True, verbose_name="active")),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                    ],
                    options={
                        "verbose_name": "tenant",
                        "verbose_name_plural": "tenants",
                        "db_table": "crm_tenant",
                        "ordering": ["name"],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("fiscal_year_start_month__gte", 1),
                                    ("fiscal_year_start_month__lte", 12),
                                ),
                                name="tenant_fiscal_month_1_12",
                            )
                        ],
                    },
                ),
                migrations.AddField(
                    model_name="orgunitmanager",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
                migrations.AddField(
                    model_name="orgunit",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
                migrations.CreateModel(
                    name="NightlyRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "night",
                            models.DateField(
                                help_text="The tenant's local date of the run.",
                                verbose_name="night",
                            ),
                        ),
                        (
                            "as_of",
                            models.DateField(
                                help_text="The day the jobs computed (the eve).",
                                verbose_name="as of",
                            ),
                        ),
                        (
                            "dispatched_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="dispatched at"
                            ),
                        ),
                        ("tasks", models.JSONField(blank=True, default=list, verbose_name="tasks")),
                        (
                            "tenant",
                            models.ForeignKey(
                                db_index=False,
                                editable=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenancy.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "nightly run",
                        "verbose_name_plural": "nightly runs",
                        "db_table": "crm_nightlyrun",
                        "ordering": ["-night"],
                    },
                ),
                migrations.AddField(
                    model_name="membership",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenancy.tenant",
                    ),
                ),
                migrations.CreateModel(
                    name="JobRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("task_name", models.CharField(max_length=200, verbose_name="task")),
                        (
                            "task_id",
                            models.CharField(blank=True, max_length=64, verbose_name="task id"),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("running", "Running"),
                                    ("succeeded", "Succeeded"),
                                    ("failed", "Failed"),
                                ],
                                default="running",
                                max_length=16,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "started_at",
                            models.DateTimeField(
                                default=django.utils.timezone.now, verbose_name="started at"
                            ),
                        ),
                        (
                            "finished_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="finished at"),
                        ),
                        (
                            "counts",
                            models.JSONField(blank=True, default=dict, verbose_name="counts"),
                        ),
                        ("error", models.TextField(blank=True, verbose_name="error")),
                        (
                            "tenant",
                            models.ForeignKey(
                                db_index=False,
                                editable=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenancy.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "job run",
                        "verbose_name_plural": "job runs",
                        "db_table": "crm_jobrun",
                        "ordering": ["-started_at"],
                    },
                ),
                migrations.CreateModel(
                    name="ApiToken",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=120, verbose_name="name")),
                        (
                            "prefix",
                            models.CharField(editable=False, max_length=24, verbose_name="prefix"),
                        ),
                        ("key_hash", models.CharField(editable=False, max_length=64)),
                        (
                            "created_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="created at"),
                        ),
                        (
                            "last_used_at",
                            models.DateTimeField(
                                blank=True, null=True, verbose_name="last used at"
                            ),
                        ),
                        (
                            "revoked_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="revoked at"),
                        ),
                        (
                            "acts_as",
                            models.ForeignKey(
                                db_index=False,
                                help_text="The token sees what this member sees.",
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="api_tokens",
                                to="tenancy.membership",
                                verbose_name="acts as",
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                db_index=False,
                                editable=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="tenancy.tenant",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "API token",
                        "verbose_name_plural": "API tokens",
                        "db_table": "crm_apitoken",
                        "ordering": ["-created_at"],
                    },
                ),
                migrations.AddIndex(
                    model_name="orgunitmanager",
                    index=models.Index(
                        fields=["tenant", "membership"], name="orgunitmanager_member"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="orgunitmanager",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "org_unit", "membership"), name="orgunitmanager_uniq"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="orgunitmanager",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "id"), name="orgunitmanager_tenant_id_uniq"
                    ),
                ),
                migrations.AddIndex(
                    model_name="orgunit",
                    index=models.Index(
                        fields=["tenant", "path"],
                        name="orgunit_tenant_path",
                        opclasses=["int8_ops", "varchar_pattern_ops"],
                    ),
                ),
                migrations.AddIndex(
                    model_name="orgunit",
                    index=models.Index(fields=["tenant", "parent"], name="orgunit_tenant_parent"),
                ),
                migrations.AddIndex(
                    model_name="orgunit",
                    index=models.Index(
                        fields=["tenant", "updated_at"], name="orgunit_tenant_updated"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="orgunit",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "id"), name="orgunit_tenant_id_uniq"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="nightlyrun",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "night"), name="nightlyrun_uniq"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="nightlyrun",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "id"), name="nightlyrun_tenant_id_uniq"
                    ),
                ),
                migrations.AddIndex(
                    model_name="membership",
                    index=models.Index(
                        fields=["tenant", "org_unit"], name="membership_tenant_unit"
                    ),
                ),
                migrations.AddIndex(
                    model_name="membership",
                    index=models.Index(
                        fields=["tenant", "updated_at"], name="membership_tenant_updated"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "user"), name="membership_tenant_user_uniq"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "id"), name="membership_tenant_id_uniq"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="membership",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("end_date__isnull", True),
                            ("end_date__gte", models.F("start_date")),
                            _connector="OR",
                        ),
                        name="membership_end_after_start",
                    ),
                ),
                migrations.AddIndex(
                    model_name="jobrun",
                    index=models.Index(
                        fields=["tenant", "started_at"], name="jobrun_tenant_started"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="jobrun",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "id"), name="jobrun_tenant_id_uniq"
                    ),
                ),
                migrations.AddIndex(
                    model_name="apitoken",
                    index=models.Index(fields=["tenant", "acts_as"], name="apitoken_tenant_member"),
                ),
                migrations.AddConstraint(
                    model_name="apitoken",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "key_hash"), name="apitoken_hash_uniq"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="apitoken",
                    constraint=models.UniqueConstraint(
                        fields=("tenant", "id"), name="apitoken_tenant_id_uniq"
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back, elidable=True),
    ]
