"""Job skeleton (SPEC section 7): the tenant base task and enqueue-after-commit.

A tenant task takes ``tenant_id`` as its first argument, runs inside that tenant's
scope (ORM scope, RLS setting, one transaction) and records a ``JobRun`` with its
start, end, status, counts and error, visible to the tenant's admins.
"""

from __future__ import annotations

import traceback
from typing import Any

from celery import Task
from django.db import transaction
from django.utils import timezone

from tenancy.models import JobRun
from tenancy.scope import tenant_scope


class TenantTask(Task):
    """Base class of every task that reads or writes tenant data.

    The task body returns a dict of counts (rows processed, alerts opened, ...), stored
    on the job run. The run record is written in its own transactions so that a failed
    body still leaves a visible ``failed`` run with the error.
    """

    abstract = True

    def __call__(self, tenant_id: int, *args: Any, **kwargs: Any) -> Any:
        with tenant_scope(tenant_id):
            run = JobRun.objects.create(
                tenant_id=tenant_id, task_name=self.name, task_id=self.request.id or ""
            )
        try:
            with tenant_scope(tenant_id):
                counts = super().__call__(tenant_id, *args, **kwargs)
        except Exception:
            with tenant_scope(tenant_id):
                JobRun.objects.filter(pk=run.pk).update(
                    status=JobRun.Status.FAILED,
                    finished_at=timezone.now(),
                    error=traceback.format_exc(limit=20)[-10000:],
                )
            raise
        with tenant_scope(tenant_id):
            JobRun.objects.filter(pk=run.pk).update(
                status=JobRun.Status.SUCCEEDED,
                finished_at=timezone.now(),
                counts=counts if isinstance(counts, dict) else {},
            )
        return counts


def enqueue_on_commit(task: Task, tenant_id: int, *args: Any, **kwargs: Any) -> None:
    """Send the task once the current transaction commits, never before its data exists."""
    transaction.on_commit(lambda: task.delay(tenant_id, *args, **kwargs))
