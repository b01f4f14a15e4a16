"""Imports (SPEC 11): an uploaded file, its dry run's per-row outcomes, its confirmation."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.models import JobRun, Membership, TenantOwned


class ImportKind(models.TextChoices):
    CUSTOMERS = "customers", _("Customers")
    CONTACTS = "contacts", _("Contacts")
    LEADS = "leads", _("Leads")
    OPPORTUNITIES = "opportunities", _("Opportunities")
    PAYMENTS = "payments", _("Payments")
    MEMBERS = "members", _("Members")
    PLAN_VALUES = "plan_values", _("A plan's manual values")


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued for the dry run")
    CHECKING = "checking", _("Dry run in progress")
    CHECKED = "checked", _("Dry run done, waiting for confirmation")
    IMPORTING = "importing", _("Import in progress")
    IMPORTED = "imported", _("Imported")
    FAILED = "failed", _("Failed")


class RowOutcome(models.TextChoices):
    NEW = "new", _("New")
    UPDATE = "update", _("Update")
    UNCHANGED = "unchanged", _("Unchanged")
    ERROR = "error", _("Error")


class ImportJob(TenantOwned):
    """One uploaded file of one kind. The file is kept until it is imported: the
    confirmation reads it again and checks every row again before writing anything."""

    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    created_by = models.ForeignKey(
        Membership,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    file_name = models.CharField(_("file name"), max_length=255, blank=True)
    file_format = models.CharField(_("format"), max_length=8, blank=True)
    encoding = models.CharField(_("encoding"), max_length=16, blank=True)
    content = models.BinaryField(_("content"), editable=False)
    staged = models.BooleanField(
        _("checked values kept"),
        default=False,
        editable=False,
        help_text=_(
            "The dry run kept every row's checked values: the confirmation checks them "
            "again against the records and writes them without reading the file again."
        ),
    )
    send_events = models.BooleanField(
        _("send events"),
        default=False,
        help_text=_("Award points and notify as if each row had been entered by hand."),
    )
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    counts: models.JSONField[Any, Any] = models.JSONField(_("counts"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    job_run = models.ForeignKey(
        JobRun,
        verbose_name=_("job run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    checked_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    confirmed_by = models.ForeignKey(
        Membership,
        verbose_name=_("confirmed by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    finished_at = models.DateTimeField(_("imported at"), null=True, blank=True)

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="importjob_tenant_id_uniq")
        ]
        indexes = [
            models.Index(fields=["tenant", "created_by", "created_at"], name="importjob_creator")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.file_name}"

    @property
    def error_rows(self) -> int:
        return int(self.counts.get(RowOutcome.ERROR, 0))


class ImportRow(TenantOwned):
    """A row's outcome in the dry run: new, update, unchanged or error (with the field
    and a message per error). ``number`` is the row's line in the file (header = 1)."""

    job = models.ForeignKey(
        ImportJob,
        on_delete=models.CASCADE,
        related_name="rows",
        db_index=False,
        verbose_name=_("import"),
    )
    number = models.PositiveIntegerField(_("row"))
    outcome = models.CharField(_("outcome"), max_length=10, choices=RowOutcome.choices)
    key = models.CharField(_("external id or id"), max_length=100, blank=True)
    errors: models.JSONField[Any, Any] = models.JSONField(_("errors"), default=list, blank=True)
    # The row's values as the dry run read and resolved them (``kinds.Kind.stage_values``),
    # kept when the confirmation writes from them (``ImportJob.staged``).
    values: models.JSONField[Any, Any] = models.JSONField(
        _("checked values"), null=True, blank=True, editable=False
    )

    class Meta:
        verbose_name = _("import row")
        verbose_name_plural = _("import rows")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "job", "number"], name="importrow_number"),
            models.UniqueConstraint(fields=["tenant", "id"], name="importrow_tenant_id_uniq"),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "job", "number"],
                name="importrow_errors",
                condition=Q(outcome="error"),
            )
        ]

    def __str__(self) -> str:
        return f"{self.job_id}:{self.number} {self.outcome}"


class ImportProgress(TenantOwned):
    """How far a running import job has got: written on a connection of its own while
    the job's transaction (which locks the job's row) is still open, so a poller sees it
    at once. The job's ``processed_rows`` holds the final figure."""

    # One row per job: unique with the tenant (every key of a tenant table starts with
    # tenant_id, tests/tenancy/test_sharding.py), so a foreign key, not a one-to-one.
    job = models.ForeignKey(
        ImportJob,
        on_delete=models.CASCADE,
        related_name="progress_rows",
        db_index=False,
        verbose_name=_("import"),
    )
    processed_rows = models.PositiveIntegerField(_("rows processed"), default=0)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("import progress")
        verbose_name_plural = _("import progress")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="importprogress_tenant_id_uniq"),
            models.UniqueConstraint(fields=["tenant", "job"], name="importprogress_job"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}: {self.processed_rows}"
