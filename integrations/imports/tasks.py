"""Import jobs (SPEC 11): a large file's dry run and confirmation on a worker."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from config.celery import app
from integrations.imports import services
from integrations.models import ImportJob, ImportStatus
from tenancy.errors import DomainError
from tenancy.jobs import TenantTask
from tenancy.models import JobRun, Membership


def _run(job_id: int, task_id: str | None, body: Any) -> dict[str, Any]:
    job = ImportJob.objects.get(pk=job_id)
    recorder = services.ProgressRecorder(job)
    try:
        # A savepoint: a refused file or row leaves nothing but the job's failed status.
        with transaction.atomic():
            done = body(job, recorder)
    except (ValidationError, DomainError) as error:
        services.import_fail(job, error)
        return {"rows": 0, "failed": 1}
    finally:
        recorder.close()
    run = JobRun.objects.filter(task_id=task_id or "").order_by("-pk").first()
    ImportJob.objects.filter(pk=job.pk).update(job_run=run)
    return {"rows": done.total_rows, **done.counts}


@app.task(base=TenantTask, name="integrations.import_check")
def import_check_task(tenant_id: int, job_id: int) -> dict[str, Any]:
    """The dry run of a large file."""
    task_id = import_check_task.request.id

    def body(job: ImportJob, recorder: services.ProgressRecorder) -> ImportJob:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.CHECKING)
        return services.import_check(job=job, progress=recorder)

    return _run(job_id, task_id, body)


@app.task(base=TenantTask, name="integrations.import_confirm")
def import_confirm_task(tenant_id: int, job_id: int, member_id: int) -> dict[str, Any]:
    """The confirmation of a large file: all rows in the task's one transaction."""
    task_id = import_confirm_task.request.id

    def body(job: ImportJob, recorder: services.ProgressRecorder) -> ImportJob:
        member = Membership.objects.select_related("tenant").get(pk=member_id)
        return services.import_confirm(member=member, job=job, progress=recorder, queued=True)

    return _run(job_id, task_id, body)
