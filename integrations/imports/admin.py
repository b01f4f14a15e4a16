"""Imports and exports in the admin (SPEC 11).

*Imports*: "Add import" uploads a file (kind, file, encoding, send events) and shows
its dry run (the counts and the rows with errors, field and message); the action
"Confirm the selected imports" writes them, all or nothing, or queues a large one.
*Exports*: every changelist of a tenant model gets "Export the selected rows as CSV /
XLSX", streamed, of the rows the changelist shows (the same visibility).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations import exports
from integrations.imports import kinds, services
from integrations.imports.reader import ENCODINGS
from integrations.imports.tasks import import_check_task, import_confirm_task
from integrations.models import ImportJob, RowOutcome
from tenancy.admin import TenantScopedAdmin, error_messages, request_membership
from tenancy.dates import tenant_zone
from tenancy.errors import DomainError
from tenancy.jobs import enqueue_on_commit
from tenancy.models import Membership, Role, TenantOwned
from tenancy.scope import platform_scope, tenant_scope

ERRORS_SHOWN = 200
EXPORTED_APPS = {"crm", "targets", "funnel", "incentives"}


class ImportUploadForm(forms.ModelForm):
    """The upload: the file is checked (dry run) when the form is cleaned."""

    member: Membership | None = None
    upload = forms.FileField(label=gettext_lazy("file"), help_text=gettext_lazy("CSV or XLSX."))
    encoding = forms.ChoiceField(
        label=gettext_lazy("encoding"), choices=[(e, e) for e in ENCODINGS], initial="auto"
    )

    class Meta:
        model = ImportJob
        fields = ["kind", "send_events"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("upload")
        if self.member is None or upload is None or self.errors:
            return data
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise ValidationError(
                {
                    "upload": _("The file is larger than %(limit)d MB; split it.")
                    % {"limit": settings.IMPORT_MAX_BYTES // (1024 * 1024)}
                }
            )
        try:
            with transaction.atomic():
                job = services.import_upload(
                    member=self.member,
                    kind=data["kind"],
                    file_name=upload.name or "",
                    content=upload.read(),
                    encoding=data.get("encoding") or "auto",
                    send_events=bool(data.get("send_events")),
                )
                if upload.size <= settings.IMPORT_SYNC_MAX_BYTES:
                    job = services.import_check(job=job)
                else:
                    enqueue_on_commit(import_check_task, job.tenant_id, job.pk)
        except ValidationError as error:
            messages_by_field = getattr(error, "message_dict", {"upload": error.messages})
            raise ValidationError(
                {"upload": [m for ms in messages_by_field.values() for m in ms]}
            ) from error
        except DomainError as error:
            raise ValidationError({"upload": str(error)}) from error
        self.job = job
        return data


@admin.register(ImportJob)
class ImportJobAdmin(TenantScopedAdmin):
    list_display = [
        "__str__",
        "kind",
        "status",
        "total_rows",
        "processed_rows",
        "outcome_counts",
        "created_by",
        "created_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by__user"]
    actions = ["confirm"]
    readonly_fields = [
        "kind",
        "status",
        "file_name",
        "file_format",
        "encoding",
        "send_events",
        "total_rows",
        "processed_rows",
        "outcome_counts",
        "error",
        "created_by",
        "created_at",
        "checked_at",
        "confirmed_by",
        "finished_at",
        "job_run",
        "rows_with_errors",
    ]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        jobs = ImportJob.objects.defer("content")
        return jobs if member.role == Role.ADMIN else jobs.filter(created_by=member)

    def _may_import(self, request: HttpRequest) -> bool:
        member = request_membership(request)
        return member is not None and member.role in (Role.ADMIN, Role.MANAGER)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._may_import(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an import is read-only; it is confirmed by the action

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_tenant_admin(request)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["kind", "upload", "encoding", "send_events"]
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = type(
                "ImportUploadFormFor", (ImportUploadForm,), {"member": request_membership(request)}
            )
            kwargs["fields"] = ["kind", "send_events"]
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: ImportJob, form: Any, change: bool) -> None:
        job = form.job
        obj.pk, obj.tenant_id, obj.status = job.pk, job.tenant_id, job.status
        obj.counts = job.counts
        messages.info(request, self._summary(job))

    def _summary(self, job: ImportJob) -> str:
        if job.status == "queued":
            return _("The file is large: its dry run runs as a job. Reload this page.")
        return _(
            "Dry run: %(new)d new, %(update)d to update, %(unchanged)d unchanged, "
            "%(error)d with errors. Nothing is written until you confirm."
        ) % {key: job.counts.get(key, 0) for key in RowOutcome.values}

    @admin.display(description=gettext_lazy("outcomes"))
    def outcome_counts(self, job: ImportJob) -> str:
        if not job.counts:
            return "–"
        return ", ".join(f"{RowOutcome(k).label}: {v}" for k, v in job.counts.items() if v)

    @admin.display(description=gettext_lazy("rows with errors"))
    def rows_with_errors(self, job: ImportJob) -> str:
        rows = job.rows.filter(outcome=RowOutcome.ERROR).order_by("number")[:ERRORS_SHOWN]
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("row"),
            _("external id or id"),
            _("field"),
            _("message"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (row.number, row.key, error["field"], error["message"])
                    for row in rows
                    for error in row.errors
                ),
            ),
        )

    @admin.action(description=gettext_lazy("Confirm the selected imports (all or nothing)"))
    def confirm(self, request: HttpRequest, queryset: QuerySet[ImportJob]) -> None:
        member = request_membership(request)
        if member is None:
            return
        for job in queryset:
            try:
                with transaction.atomic():
                    if job.total_rows > settings.IMPORT_SYNC_MAX_ROWS:
                        services.import_queue_confirm(member=member, job=job)
                        enqueue_on_commit(import_confirm_task, job.tenant_id, job.pk, member.pk)
                        messages.info(request, _("%(job)s: queued.") % {"job": job})
                        continue
                    done = services.import_confirm(member=member, job=job)
            except (ValidationError, DomainError) as error:
                for message in error_messages(error):
                    messages.error(request, f"{job}: {message}")
                continue
            messages.success(
                request,
                _("%(job)s: %(new)d new, %(update)d updated, %(unchanged)d unchanged.")
                % {"job": job, **{key: done.counts.get(key, 0) for key in RowOutcome.values}},
            )


# --- the export action of every changelist ------------------------------------------------


def _export(
    request: HttpRequest, queryset: QuerySet[Any], file_format: str
) -> StreamingHttpResponse:
    model = queryset.model
    member = request_membership(request)
    kind = next((k for k in kinds.KINDS.values() if k.model is model), None)
    if kind is not None:
        header = [str(column.label) for column in kind.columns]
        zone = tenant_zone(member.tenant) if member is not None else None

        def rows() -> Any:
            return kind.export_rows(queryset, zone)
    else:
        fields = [
            f
            for f in model._meta.concrete_fields
            if f.name != "tenant" and f.get_internal_type() != "BinaryField"
        ]
        header = [str(f.verbose_name) for f in fields]

        def rows() -> Any:
            return (
                list(values)
                for values in queryset.order_by("pk")
                .values_list(*[f.attname for f in fields])
                .iterator(chunk_size=exports.CHUNK)
            )

    writer = exports.csv_stream if file_format == "csv" else exports.xlsx_stream

    def body() -> Any:
        # The request's scope has ended when the body is sent: enter the same one again.
        if member is not None:
            with tenant_scope(member.tenant_id):
                yield from writer(header, rows())
        else:
            with platform_scope("admin export by the platform superuser"):
                yield from writer(header, rows())

    response = StreamingHttpResponse(
        body(),
        content_type="text/csv; charset=utf-8"
        if file_format == "csv"
        else exports.XLSXRenderer.media_type,
    )
    name = model._meta.model_name
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response


@admin.action(description=gettext_lazy("Export the selected rows as CSV"))
def export_csv(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
    return _export(request, queryset, "csv")


@admin.action(description=gettext_lazy("Export the selected rows as XLSX"))
def export_xlsx(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
    return _export(request, queryset, "xlsx")


def add_export_actions(site: admin.AdminSite) -> None:
    """Give every tenant model's changelist the export actions (the apps' admins are
    registered before this app's: ``INSTALLED_APPS`` order)."""
    for model, model_admin in site._registry.items():
        # The records' apps only: the platform's and the integrations' tables hold
        # secrets (token hashes, signing secrets) that no file should carry.
        if not issubclass(model, TenantOwned) or model._meta.app_label not in EXPORTED_APPS:
            continue
        current = list(model_admin.actions or [])
        if export_csv not in current:
            model_admin.actions = [*current, export_csv, export_xlsx]


add_export_actions(admin.site)
