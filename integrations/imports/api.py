"""The imports API (SPEC 11): upload (multipart) → dry run → rows → confirm → status.

``POST /imports/`` takes ``kind``, ``file`` and optionally ``encoding`` (auto, utf-8,
gbk) and ``send_events``; a small file is checked at once (201), a large one by a job
(202, then poll ``GET /imports/{id}/``: ``status``, ``processed_rows``). The rows'
outcomes are at ``GET /imports/{id}/rows/?outcome=error`` (paginated); ``POST
/imports/{id}/confirm/`` writes everything or nothing (200, or 202 for a job).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.imports import services
from integrations.imports.reader import ENCODINGS
from integrations.imports.tasks import import_check_task, import_confirm_task
from integrations.models import ImportJob, ImportKind, ImportProgress, ImportRow, RowOutcome
from tenancy.api.base import SafeJSONParser, TenantViewMixin
from tenancy.api.errors import PayloadTooLarge
from tenancy.api.serializers import ModelSerializer
from tenancy.jobs import enqueue_on_commit
from tenancy.models import Membership, Role
from tenancy.selectors import get_visible


class ImportJobSerializer(ModelSerializer[ImportJob]):
    processed_rows = serializers.SerializerMethodField(
        help_text="Rows read so far; while a job runs it grows (SPEC 11 progress)."
    )

    def get_processed_rows(self, job: ImportJob) -> int:
        if hasattr(job, "live_rows"):  # annotated by the list's query
            live = job.live_rows
        else:
            live = (
                ImportProgress.objects.filter(job=job)
                .values_list("processed_rows", flat=True)
                .first()
            )
        return max(job.processed_rows, live or 0)

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "kind",
            "status",
            "file_name",
            "file_format",
            "encoding",
            "send_events",
            "total_rows",
            "processed_rows",
            "counts",
            "error",
            "created_by",
            "created_at",
            "checked_at",
            "confirmed_by",
            "finished_at",
            "job_run",
        ]
        read_only_fields = fields


class ImportUploadSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    file = serializers.FileField(allow_empty_file=False)
    encoding = serializers.ChoiceField(choices=list(ENCODINGS), default="auto")
    send_events = serializers.BooleanField(
        default=False, help_text="Award points and notify as for rows entered by hand."
    )


class ImportRowSerializer(ModelSerializer[ImportRow]):
    class Meta:
        model = ImportRow
        fields = ["number", "outcome", "key", "errors"]
        read_only_fields = fields


class ImportJobViewSet(
    TenantViewMixin[ImportJob],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ImportJob],
):
    """Imports: an admin sees every import of the tenant, others their own."""

    model = ImportJob
    serializer_class = ImportJobSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_class = None
    ordering_fields = ["created_at"]
    search_fields: list[str] = []

    def visible_queryset(self, member: Membership) -> QuerySet[ImportJob]:
        live = ImportProgress.objects.filter(job=OuterRef("pk")).values("processed_rows")[:1]
        jobs = ImportJob.objects.defer("content").annotate(live_rows=Subquery(live))
        return jobs if member.role == Role.ADMIN else jobs.filter(created_by=member)

    @extend_schema(
        request={"multipart/form-data": ImportUploadSerializer},
        responses={201: ImportJobSerializer, 202: ImportJobSerializer},
    )
    def create(self, request: Request) -> Response:
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        if file.size > settings.IMPORT_MAX_BYTES:
            raise PayloadTooLarge(
                _("The file is larger than %(limit)d MB; split it.")
                % {"limit": settings.IMPORT_MAX_BYTES // (1024 * 1024)}
            )
        services.require_importer(self.membership, upload.validated_data["kind"])
        job = services.import_upload(
            member=self.membership,
            kind=upload.validated_data["kind"],
            file_name=file.name or "",
            content=file.read(),
            encoding=upload.validated_data["encoding"],
            send_events=upload.validated_data["send_events"],
        )
        if file.size > settings.IMPORT_SYNC_MAX_BYTES:
            enqueue_on_commit(import_check_task, job.tenant_id, job.pk)
            return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)
        job = services.import_check(job=job)
        return Response(self.get_serializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses=ImportRowSerializer(many=True),
        parameters=[
            OpenApiParameter("outcome", str, enum=RowOutcome.values, description="Only these."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        filters=False,
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def rows(self, request: Request, pk: str | None = None) -> Response:
        """Each row's outcome in the dry run (new, update, unchanged, error), in file order."""
        job = get_visible(self.get_queryset(), pk)
        rows = ImportRow.objects.filter(job=job).order_by("number")
        outcome = request.query_params.get("outcome")
        if outcome is not None:
            if outcome not in RowOutcome.values:
                raise serializers.ValidationError(
                    {
                        "outcome": [
                            _("Choose one of: %(choices)s.")
                            % {"choices": ", ".join(RowOutcome.values)}
                        ]
                    }
                )
            rows = rows.filter(outcome=outcome)
        page = self.paginate_queryset(rows)  # type: ignore[arg-type]
        return self.get_paginated_response(ImportRowSerializer(page, many=True).data)  # type: ignore[arg-type]

    @extend_schema(
        request=inline_serializer("ImportConfirm", fields={}),
        responses={200: ImportJobSerializer, 202: ImportJobSerializer},
    )
    @action(
        detail=True,
        methods=["post"],
        parser_classes=[SafeJSONParser, MultiPartParser, FormParser],
    )
    def confirm(self, request: Request, pk: str | None = None) -> Response:
        job = self.get_object()
        if job.total_rows > settings.IMPORT_SYNC_MAX_ROWS:
            services.import_queue_confirm(member=self.membership, job=job)
            enqueue_on_commit(import_confirm_task, job.tenant_id, job.pk, self.membership.pk)
            job.refresh_from_db()
            return Response(self.get_serializer(job).data, status=status.HTTP_202_ACCEPTED)
        job = services.import_confirm(member=self.membership, job=job)
        return Response(self.get_serializer(job).data)
