"""Job skeleton (SPEC section 7): the tenant base task and enqueue-after-commit.

A tenant task takes ``tenant_id`` as its first argument, runs inside that tenant's
scope (ORM scope, RLS setting, one transaction) and records a ``JobRun`` with its
start, end, status, counts and a one-line error, visible to the tenant's admins. The
traceback goes to the log (``logger.exception``), never to the run.

Transient errors (the database or the broker unreachable) are retried with exponential
backoff; any other error fails the run. As a step of a night (``tenancy.nightly``) the
task first claims its step and, when it fails, records the failure and returns, so that
the night's next steps still run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu.exceptions
from celery import Task
from celery.exceptions import Retry
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from tenancy import nightly
from tenancy.models import JobRun
from tenancy.scope import tenant_scope

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, kombu.exceptions.OperationalError)


class TenantTask(Task):
    """Base class of every task that reads or writes tenant data.

    The task body returns a dict of counts (rows processed, alerts opened, ...), stored
    on the job run. The run record is written in its own transactions so that a failed
    body still leaves a visible ``failed`` run with its error summary.
    """

    abstract = True
    # A night's step also takes the night's keyword arguments, which ``__call__`` takes
    # off before the body runs: Celery must not check them against the body's signature.
    typing = False
    autoretry_for = TRANSIENT_ERRORS
    max_retries = settings.JOB_MAX_RETRIES
    retry_backoff = settings.JOB_RETRY_BACKOFF_SECONDS
    retry_backoff_max = 300
    retry_jitter = True

    def _hard_time_limit(self) -> int | None:
        hard = (self.request.timelimit or (None, None))[0]
        limit = hard or self.time_limit or self.app.conf.task_time_limit
        return int(limit) if limit else None

    def _start(
        self, tenant_id: int, nightly_run_id: int | None, nightly_step: str, force: bool
    ) -> JobRun | None:
        task_id = self.request.id or ""
        worker = self.request.hostname or ""
        if nightly_run_id is not None:
            return nightly.step_claim(
                tenant_id=tenant_id,
                nightly_run_id=nightly_run_id,
                step=nightly_step,
                task_name=self.name,
                task_id=task_id,
                time_limit=self._hard_time_limit(),
                worker=worker,
                force=force,
            )
        with tenant_scope(tenant_id):
            return JobRun.objects.create(
                tenant_id=tenant_id,
                task_name=self.name,
                task_id=task_id,
                time_limit=self._hard_time_limit(),
                worker=worker,
            )

    def _finish(self, run: JobRun, status: str, **fields: Any) -> None:
        try:
            with tenant_scope(run.tenant_id):
                JobRun.objects.filter(pk=run.pk).update(
                    status=status, finished_at=timezone.now(), **fields
                )
        except DatabaseError:
            # The database is gone too: the run stays "running" and the watchdog marks
            # it lost once its time limit has passed.
            logger.exception("Could not record the end of job run %s", run.pk)

    def __call__(
        self,
        tenant_id: int,
        *args: Any,
        nightly_run_id: int | None = None,
        nightly_step: str = "",
        force: bool = False,
        **kwargs: Any,
    ) -> Any:
        run = self._start(tenant_id, nightly_run_id, nightly_step, force)
        if run is None:
            logger.info(
                "Step %s of night %s: succeeded already or running elsewhere, skipped",
                nightly_step,
                nightly_run_id,
            )
            return None
        try:
            with tenant_scope(tenant_id):
                counts = super().__call__(tenant_id, *args, **kwargs)
        except Retry as retry:
            cause = retry.exc if isinstance(retry.exc, BaseException) else retry
            if self.request.is_eager:
                # Run eagerly (the quick start, no broker) a retry would escape as an
                # exception: the run fails instead, and a night's dispatcher runs it again.
                return self._failed(run, cause, nightly_run_id, tenant_id)
            logger.warning("Job run %s (%s) will be retried: %s", run.pk, self.name, retry)
            self._finish(run, JobRun.Status.RETRIED, error=nightly.error_summary(cause))
            raise
        except Exception as error:
            return self._failed(run, error, nightly_run_id, tenant_id)
        self._finish(
            run, JobRun.Status.SUCCEEDED, counts=counts if isinstance(counts, dict) else {}
        )
        if nightly_run_id is not None:
            nightly.step_succeeded(tenant_id=tenant_id, nightly_run_id=nightly_run_id)
        return counts

    def _failed(
        self, run: JobRun, error: BaseException, nightly_run_id: int | None, tenant_id: int
    ) -> None:
        logger.error(
            "Job run %s (%s) of tenant %s failed",
            run.pk,
            self.name,
            tenant_id,
            exc_info=(type(error), error, error.__traceback__),
        )
        self._finish(run, JobRun.Status.FAILED, error=nightly.error_summary(error))
        if nightly_run_id is None:
            raise error
        return None  # one failed step does not stop the night's next steps


def enqueue_on_commit(task: Task, tenant_id: int, *args: Any, **kwargs: Any) -> None:
    """Send the task once the current transaction commits, never before its data exists."""
    transaction.on_commit(lambda: task.delay(tenant_id, *args, **kwargs))


@contextmanager
def recorded_run(
    tenant_id: int,
    task_name: str,
    *,
    task_id: str = "",
    worker: str = "",
    time_limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Record one tenant's share of a cross-tenant task (the digests' and reminders'
    senders, which beat runs for every tenant) as a ``JobRun``: created (and committed)
    before the block, finished with the counts the block put in the yielded dict, or
    failed with a one-line error (the traceback to the log) and the error re-raised.

    Unlike a ``TenantTask`` body, the block runs outside any transaction: the senders
    commit each claim before its mail leaves."""
    with tenant_scope(tenant_id):
        run = JobRun.objects.create(
            tenant_id=tenant_id,
            task_name=task_name,
            task_id=task_id,
            worker=worker,
            time_limit=time_limit,
        )
    counts: dict[str, Any] = {}
    # Until the block ends normally: an interruption (a time limit, a signal) fails it.
    status, fields = JobRun.Status.FAILED, {"error": "interrupted"}
    try:
        yield counts
    except Exception as error:
        logger.error(
            "Job run %s (%s) of tenant %s failed",
            run.pk,
            task_name,
            tenant_id,
            exc_info=(type(error), error, error.__traceback__),
        )
        status, fields = JobRun.Status.FAILED, {"error": nightly.error_summary(error)}
        raise
    else:
        status, fields = JobRun.Status.SUCCEEDED, {}
    finally:
        with tenant_scope(tenant_id):
            JobRun.objects.filter(pk=run.pk).update(
                status=status, finished_at=timezone.now(), counts=counts, **fields
            )
