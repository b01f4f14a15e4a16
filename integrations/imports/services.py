"""Import services (SPEC 11): upload → dry run → confirm (all or nothing) → counts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import events
from integrations.imports import kinds
from integrations.imports.reader import ENCODINGS, read_file
from integrations.models import (
    ImportJob,
    ImportKind,
    ImportProgress,
    ImportRow,
    ImportStatus,
    RowOutcome,
)
from tenancy.errors import Conflict, Forbidden, Invalid
from tenancy.models import Membership, Role, Tenant

logger = logging.getLogger(__name__)


class FileTooLarge(Invalid):
    """The upload is over ``IMPORT_MAX_BYTES`` (the API answers 413)."""


def require_importer(member: Membership, kind: str | None = None) -> None:
    if member.role not in (Role.ADMIN, Role.MANAGER):
        raise Forbidden(_("Only an admin or a manager may import records."))
    if kind in kinds.KINDS:
        kinds.KINDS[kind].require(member)


def import_upload(
    *,
    member: Membership,
    kind: str,
    file_name: str,
    content: bytes,
    encoding: str = "auto",
    send_events: bool = False,
) -> ImportJob:
    """Keep an uploaded file for its dry run; refuse what cannot be one (400/413)."""
    require_importer(member, kind)
    if kind not in ImportKind.values:
        raise Invalid({"kind": _("Choose one of: %(kinds)s.") % {"kinds": ", ".join(ImportKind)}})
    if encoding not in ENCODINGS:
        raise Invalid({"encoding": _("Choose one of: auto, utf-8, gbk.")})
    limit = settings.IMPORT_MAX_BYTES
    if len(content) > limit:
        raise FileTooLarge(
            {
                "file": _("The file is larger than %(limit)d MB; split it.")
                % {"limit": limit // (1024 * 1024)}
            }
        )
    # The encoding is checked now: a file that is neither CSV nor XLSX is a 400 at once.
    read_file(content, encoding=encoding)
    job = ImportJob.objects.create(
        tenant_id=member.tenant_id,
        kind=kind,
        created_by=member,
        file_name=file_name[:255],
        content=content,
        encoding=encoding,
        send_events=send_events,
    )
    ImportProgress.objects.create(tenant_id=member.tenant_id, job=job)
    return job


class ProgressRecorder:
    """Records a running job's progress where others can see it at once: on a connection
    of its own (the job's transaction commits only at its end), as the app role, within
    the job's tenant (row-level security applies)."""

    def __init__(self, job: ImportJob) -> None:
        self.job_id, self.tenant_id = job.pk, job.tenant_id
        self.connection: Any = None

    def __call__(self, processed: int) -> None:
        try:
            if self.connection is None:
                self.connection = connections.create_connection("default")
                self.connection.ensure_connection()
                if not getattr(self.connection, "crm_app_role_active", False):
                    return
                with self.connection.cursor() as cursor:
                    # Session-level on this private connection, closed by ``close()``.
                    cursor.execute(
                        "SELECT set_config('app.tenant_id', %s, false)", [str(self.tenant_id)]
                    )
            with self.connection.cursor() as cursor:
                # Not the job's row: the job's own transaction holds its lock.
                cursor.execute(
                    "UPDATE integrations_importprogress SET processed_rows = %s, "
                    "updated_at = now() WHERE tenant_id = %s AND job_id = %s",
                    [processed, self.tenant_id, self.job_id],
                )
        except Exception:  # progress is a courtesy: never fail the import over it
            logger.exception("Could not record the progress of import %s", self.job_id)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _context(job: ImportJob, member: Membership) -> kinds.Context:
    return kinds.Context(member=member, tenant=Tenant.objects.get(pk=job.tenant_id))


def _check(
    job: ImportJob, member: Membership, progress: Callable[[int], None] | None
) -> tuple[kinds.Kind, kinds.Context, list[kinds.Row]]:
    parsed = read_file(bytes(job.content), encoding=job.encoding or "auto")
    job.file_format = parsed.file_format
    job.encoding = parsed.encoding or job.encoding
    kind = kinds.get_kind(job.kind)
    ctx = _context(job, member)
    return kind, ctx, kinds.check_rows(kind, ctx, parsed.header, parsed.rows, progress)


def _counts(rows: list[kinds.Row]) -> dict[str, int]:
    counts = dict.fromkeys(RowOutcome.values, 0)
    for row in rows:
        counts[row.outcome] += 1
    return counts


STORE_ROWS = """
INSERT INTO integrations_importrow (tenant_id, job_id, number, outcome, key, errors, "values")
SELECT %(tenant)s, %(job)s, s.number, s.outcome, s.key, s.errors::jsonb, s.kept::jsonb
FROM unnest(%(number)b::integer[], %(outcome)b::text[], %(key)b::text[], %(errors)b::text[],
            %(kept)b::text[]) AS s(number, outcome, key, errors, kept)
"""


def _store_rows(job: ImportJob, kind: kinds.Kind, rows: list[kinds.Row]) -> None:
    """Every row's outcome (and, for a staged job, its checked values), in batches of one
    statement each: ``ImportRow`` rows without the ORM's per-value quoting."""
    for start in range(0, len(rows), 20000):
        batch = rows[start : start + 20000]
        kinds.execute_bound(
            STORE_ROWS,
            {
                "tenant": job.tenant_id,
                "job": job.pk,
                "number": [row.number for row in batch],
                "outcome": [row.outcome for row in batch],
                "key": [row.key[:100] for row in batch],
                "errors": [json.dumps(row.errors) for row in batch],
                "kept": [
                    json.dumps(kind.stage_values(row)) if job.staged else None for row in batch
                ],
            },
        )


@transaction.atomic
def import_check(*, job: ImportJob, progress: Callable[[int], None] | None = None) -> ImportJob:
    """The dry run: every row's outcome is stored (``ImportRow``); nothing else is written.

    A file that cannot be read as a whole (a required column missing) raises ``Invalid``.
    """
    job = ImportJob.objects.select_for_update(of=("self",)).get(pk=job.pk)
    if job.status not in (ImportStatus.QUEUED, ImportStatus.CHECKING):
        raise Conflict(_("This import has been checked already."))
    member = Membership.objects.select_related("tenant").get(pk=job.created_by_id)
    kind, _ctx, rows = _check(job, member, progress)
    counts = _counts(rows)
    # A file of new rows only keeps their checked values: the confirmation writes them
    # without reading the file again (other files are read and checked again).
    job.staged = kind.stages_new_rows and bool(rows) and counts[RowOutcome.NEW] == len(rows)
    ImportRow.objects.filter(job=job).delete()
    _store_rows(job, kind, rows)
    job.total_rows = job.processed_rows = len(rows)
    job.counts = counts
    job.status = ImportStatus.CHECKED
    job.checked_at = timezone.now()
    job.save()
    return job


def import_confirm(
    *,
    member: Membership,
    job: ImportJob,
    progress: Callable[[int], None] | None = None,
    queued: bool = False,
) -> ImportJob:
    """Write the checked file, all or nothing, in one transaction (SPEC 11).

    The rows are checked again first (records may have changed since the dry run): if
    any row is now an error nothing is written and the 409 says how many. A file of new
    rows only is checked again from the values its dry run kept (``ImportJob.staged``:
    references resolved again, external ids still free, dates and amounts), others by
    reading the file again. Points and notifications follow only when the upload asked
    for them (``send_events``)."""
    require_importer(member, job.kind)
    try:
        return _confirm(member=member, job=job, progress=progress, queued=queued)
    except IntegrityError as error:
        # A record changed between the checks and the writes (an external id taken, a
        # customer deleted): the transaction is undone.
        logger.info("Import %s conflicts with a concurrent change: %s", job.pk, error)
        raise Conflict(
            _("The records changed while importing: nothing was imported. Upload the file again.")
        ) from error


def _staged_rows(job: ImportJob, kind: kinds.Kind) -> list[kinds.Row]:
    """The rows' kept values in file order, read as one JSON document per 20,000 rows
    (decoded in one call each, not a call per row)."""
    rows: list[kinds.Row] = []
    last = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                'SELECT json_agg(json_build_array(number, "values") ORDER BY number)::text '
                'FROM (SELECT number, "values" FROM integrations_importrow '
                "WHERE tenant_id = %s AND job_id = %s AND number > %s "
                "ORDER BY number LIMIT 20000) AS kept",
                [job.tenant_id, job.pk, last],
            )
            (document,) = cursor.fetchone()
            if document is None:
                return rows
            batch = json.loads(document)
            rows.extend(kind.unstage(number, kept) for number, kept in batch)
            last = batch[-1][0]


def _confirm(
    *,
    member: Membership,
    job: ImportJob,
    progress: Callable[[int], None] | None,
    queued: bool,
) -> ImportJob:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update(of=("self",)).get(pk=job.pk)
        # A queued confirmation was claimed by ``import_queue_confirm`` (``importing``).
        if job.status != (ImportStatus.IMPORTING if queued else ImportStatus.CHECKED):
            raise Conflict(_("Only an import whose dry run is done can be confirmed."))
        if job.error_rows:
            raise Conflict(
                _("%(count)d row(s) have errors: fix them and upload the file again.")
                % {"count": job.error_rows}
            )
        # The kind keeps the references its check loaded, for writing.
        if job.staged:
            kind, ctx = kinds.get_kind(job.kind), _context(job, member)
            rows = _staged_rows(job, kind)
            kind.recheck_staged(ctx, rows)
            if progress is not None:
                progress(len(rows))
        else:
            kind, ctx, rows = _check(job, member, progress)
        failing = sum(1 for row in rows if row.outcome == RowOutcome.ERROR)
        if failing:
            raise Conflict(
                _(
                    "%(count)d row(s) fail now (the records changed since the dry run): "
                    "nothing was imported. Upload the file again."
                )
                % {"count": failing}
            )
        if job.send_events:
            counts = kinds.write_rows(kind, ctx, rows, send_events=True)
        else:
            with events.muted():
                counts = kinds.write_rows(kind, ctx, rows, send_events=False)
        job.counts = counts
        job.status = ImportStatus.IMPORTED
        job.processed_rows = len(rows)
        job.confirmed_by = member
        job.finished_at = timezone.now()
        # Written now: neither the file nor the rows' checked values are needed again, and
        # a copy of the records' data should not outlive them in the import's history.
        job.content = b""
        if job.staged:
            ImportRow.objects.filter(job=job, values__isnull=False).update(values=None)
            job.staged = False
        job.save()
        return job


def import_fail(job: ImportJob, error: BaseException) -> None:
    """Record why a queued import failed (its rows were not written)."""
    message = "; ".join(
        f"{key}: {' '.join(map(str, value))}" if key != "__all__" else " ".join(map(str, value))
        for key, value in getattr(error, "message_dict", {"__all__": [str(error)]}).items()
    )
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.FAILED, error=message[:2000])


def import_queue_confirm(*, member: Membership, job: ImportJob) -> bool:
    """Claim the confirmation for a job (``checked`` → ``importing``): true once only."""
    require_importer(member, job.kind)
    if job.error_rows:
        raise Conflict(
            _("%(count)d row(s) have errors: fix them and upload the file again.")
            % {"count": job.error_rows}
        )
    claimed = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.CHECKED).update(
        status=ImportStatus.IMPORTING, confirmed_by=member
    )
    if not claimed:
        raise Conflict(_("Only an import whose dry run is done can be confirmed."))
    return True
