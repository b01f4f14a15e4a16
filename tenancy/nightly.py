"""The nightly run (SPEC section 7): every night, per tenant at 02:00 tenant time.

**Registry.** Each app registers its step in its ``AppConfig.ready()`` with
:func:`register`: a name, an order key from :class:`Order` (SPEC 7's order: snapshots,
warnings, points catch-up, leaderboards, draft statements, digests) and its Celery task,
a ``TenantTask`` taking ``(tenant_id, as_of)``. This module names no app's task.

**The night** is one Celery chain of the tenant's steps in that order. A step that
fails (one bad row, a soft time limit) records a ``failed`` run and *returns*, so the
chain goes on to the next step: one bad step never costs the night the steps after it.
Each run is a ``JobRun`` linked to its ``NightlyRun`` and step (status, counts,
duration, a one-line error).

**Dispatch** (:func:`dispatch`, on beat every few minutes) makes tonight's
``NightlyRun`` for every active tenant past 02:00 local time (unique per tenant and
local date) and any night of the last few local days that was never made (beat was
down that whole day), then, for every unfinished night of those days, sends a chain
of the steps that have not succeeded and are not running: never started, failed (a
limited number of times) or lost. The night is marked sent with a conditional update
before the chain goes to the broker, so two dispatchers do not both send it; when the
broker refuses, the mark is undone and the next dispatch sends it (no lost night).

**Claiming.** A step's task claims its step under a lock of the night's row
(:func:`step_claim`): it runs only when the step's latest run is neither succeeded nor
running, so a duplicate message (a resend, two dispatchers, a redelivery) runs nothing
twice. A message redelivered after its worker died finds its own run still
``running`` (the same task id) and marks it lost before running again.

**Watchdog** (:func:`mark_lost_runs`, on beat): a ``running`` job run older than its
hard time limit plus a margin has no worker any more; it is marked ``lost`` and the next
dispatch runs its step again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import IntEnum
from functools import partial
from typing import Any

from celery import Task, chain
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from tenancy.dates import tenant_now
from tenancy.models import JobRun, NightlyRun, Tenant
from tenancy.scope import platform_scope, tenant_scope

logger = logging.getLogger(__name__)

NIGHTLY_AT = time(2, 0)


class Order(IntEnum):
    """Where a step runs in the night (SPEC section 7): each step reads what the ones
    before it wrote (the warnings read tonight's snapshots, the digests everything)."""

    SNAPSHOTS = 10
    WARNINGS = 20
    POINTS_CATCH_UP = 30
    LEADERBOARDS = 40
    DRAFT_STATEMENTS = 50
    DIGESTS = 60


@dataclass(frozen=True)
class Step:
    name: str
    order: int
    task: Task
    soft_time_limit: int
    time_limit: int


_registry: dict[str, Step] = {}


def register(
    *,
    name: str,
    order: int,
    task: Task,
    soft_time_limit: int | None = None,
    time_limit: int | None = None,
) -> Step:
    """Add an app's nightly step (call it from the app's ``AppConfig.ready()``).

    The task takes ``(tenant_id, as_of)`` (``as_of`` an ISO date, the day that just
    ended) and derives from ``tenancy.jobs.TenantTask``. Its time limits default to
    ``JOB_SOFT_TIME_LIMIT`` and ``JOB_TIME_LIMIT``; the hard one must stay below the
    broker's visibility timeout, or a running step would be given to a second worker.
    """
    soft = soft_time_limit or settings.JOB_SOFT_TIME_LIMIT
    hard = time_limit or settings.JOB_TIME_LIMIT
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    if not soft < hard < visibility:
        raise ImproperlyConfigured(
            f"Nightly step {name!r}: its soft time limit ({soft} s) must be below its hard "
            f"one ({hard} s), itself below the broker's visibility timeout ({visibility} s)."
        )
    step = Step(name=name, order=int(order), task=task, soft_time_limit=soft, time_limit=hard)
    existing = _registry.get(name)
    if existing is not None and existing.task.name != task.name:
        raise ImproperlyConfigured(
            f"Two nightly steps are named {name!r}: {existing.task.name}, {task.name}."
        )
    _registry[name] = step
    return step


def unregister(name: str) -> None:
    """Remove a step (tests register steps of their own)."""
    _registry.pop(name, None)


def steps() -> list[Step]:
    """The registered steps in the night's order."""
    return sorted(_registry.values(), key=lambda step: (step.order, step.name))


def get_step(name: str) -> Step | None:
    return _registry.get(name)


def error_summary(error: BaseException) -> str:
    """One line for a tenant admin: the exception's class and first line, no traceback
    and no SQL (a database error's message carries the statement on later lines)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    summary = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return summary[:500]


# --- dispatch ----------------------------------------------------------------------------


def _latest_runs(night: NightlyRun) -> dict[str, JobRun]:
    runs = JobRun.objects.filter(nightly_run=night).order_by("step", "-started_at", "-pk")
    return {run.step: run for run in runs.distinct("step")}


def _failures(night: NightlyRun) -> dict[str, int]:
    failures: dict[str, int] = {}
    runs = JobRun.objects.filter(
        nightly_run=night, status__in=[JobRun.Status.FAILED, JobRun.Status.LOST]
    )
    for step in runs.values_list("step", flat=True):
        failures[step] = failures.get(step, 0) + 1
    return failures


def steps_to_send(night: NightlyRun, now: datetime) -> list[str]:
    """The night's steps that must be sent, in order: failed or lost (fewer times than
    ``NIGHTLY_STEP_MAX_ATTEMPTS``); never started, when the night was not sent recently
    (its message may still be queued) or a step before it was lost (the chain died
    there); waiting for a retry that never came."""
    latest, failures = _latest_runs(night), _failures(night)
    stale = now - timedelta(seconds=settings.NIGHTLY_RESEND_AFTER_SECONDS)
    chain_broken = False
    pending = []
    for name in night.steps:
        run = latest.get(name)
        if run is None:
            if chain_broken or night.sent_at is None or night.sent_at < stale:
                pending.append(name)
        elif run.status in (JobRun.Status.FAILED, JobRun.Status.LOST):
            chain_broken = chain_broken or run.status == JobRun.Status.LOST
            if failures.get(name, 0) < settings.NIGHTLY_STEP_MAX_ATTEMPTS:
                pending.append(name)
        elif run.status == JobRun.Status.RETRIED and (run.finished_at or run.started_at) < stale:
            pending.append(name)
    return pending


def night_chain(night: NightlyRun, names: list[str], queue: str | None = None) -> Any:
    """The Celery chain of the night's named steps, each with its time limits."""
    signatures = []
    for name in names:
        step = get_step(name)
        if step is None:
            logger.warning("Nightly step %r of night %s is not registered", name, night.pk)
            continue
        options: dict[str, Any] = {
            "soft_time_limit": step.soft_time_limit,
            "time_limit": step.time_limit,
        }
        if queue:
            options["queue"] = queue
        signatures.append(
            step.task.signature(
                args=(night.tenant_id, night.as_of.isoformat()),
                kwargs={"nightly_run_id": night.pk, "nightly_step": name},
                immutable=True,
                **options,
            )
        )
    return chain(*signatures) if signatures else None


def _send(night: NightlyRun, names: list[str], sent_at: datetime, queue: str | None) -> None:
    """Send the chain; when the broker refuses, undo the sent mark so that the next
    dispatch sends the night again."""
    work = night_chain(night, names, queue)
    if work is None:
        return
    try:
        work.apply_async()
    except Exception as error:
        logger.exception("Sending night %s of tenant %s failed", night.pk, night.tenant_id)
        with tenant_scope(night.tenant_id):
            NightlyRun.objects.filter(pk=night.pk, sent_at=sent_at).update(
                sent_at=None, send_error=error_summary(error)
            )


def _due_night(tenant: Tenant, now: datetime) -> date | None:
    local = tenant_now(tenant, now)
    return local.date() if local.time() >= NIGHTLY_AT else None


def _make_nights(tenant: Tenant, now: datetime, names: list[str]) -> None:
    """Tonight's night once past 02:00, and any night of the catch-up window that was
    never made (beat was down that whole local day) since the tenant's first day."""
    today = tenant_now(tenant, now).date()
    tonight = _due_night(tenant, now)
    latest = tonight or today - timedelta(days=1)
    first_day = tenant_now(tenant, tenant.created_at).date() + timedelta(days=1)
    wanted = [
        day
        for offset in range(settings.NIGHTLY_CATCH_UP_DAYS, -1, -1)
        if (day := today - timedelta(days=offset)) <= latest
        and (day == tonight or day >= first_day)
    ]
    existing = set(NightlyRun.objects.filter(night__in=wanted).values_list("night", flat=True))
    for day in wanted:
        if day not in existing:
            # get_or_create: another dispatcher may be making the same night right now.
            NightlyRun.objects.get_or_create(
                tenant=tenant,
                night=day,
                defaults={"as_of": day - timedelta(days=1), "steps": names},
            )


def dispatch(now: datetime | None = None, *, queue: str | None = None) -> dict[str, Any]:
    """Make tonight's night of every tenant past 02:00 local time at ``now`` (default:
    now) and send every unfinished night's remaining steps."""
    from config.celery import app

    # The apps' task modules are discovered lazily; load them (once) so each task
    # honours eager mode rather than going out as a bare message.
    app.loader.import_default_modules()
    now = now or timezone.now()
    names = [step.name for step in steps()]
    with platform_scope("nightly dispatch: which tenants are active"):
        tenants = list(Tenant.objects.filter(is_active=True).order_by("pk"))
    sent: list[dict[str, Any]] = []
    for tenant in tenants:
        today = tenant_now(tenant, now).date()
        with tenant_scope(tenant):
            _make_nights(tenant, now, names)
            unfinished = NightlyRun.objects.filter(
                completed_at__isnull=True,
                night__gte=today - timedelta(days=settings.NIGHTLY_CATCH_UP_DAYS),
                night__lte=today,
            ).order_by("night")
            for night in unfinished:
                pending = steps_to_send(night, now)
                if not pending:
                    continue
                # Compare and set: of two dispatchers, one sends.
                marked = NightlyRun.objects.filter(pk=night.pk, sent_at=night.sent_at)
                if not marked.update(sent_at=now, send_error=""):
                    continue
                transaction.on_commit(partial(_send, night, pending, now, queue))
                sent.append(
                    {
                        "tenant": tenant.pk,
                        "night": night.night.isoformat(),
                        "as_of": night.as_of.isoformat(),
                        "steps": pending,
                    }
                )
    return {"dispatched": sent}


# --- a step's run ------------------------------------------------------------------------


def step_claim(
    *,
    tenant_id: int,
    nightly_run_id: int,
    step: str,
    task_name: str,
    task_id: str,
    time_limit: int | None,
    worker: str,
    force: bool = False,
) -> JobRun | None:
    """Start a run of a night's step, or return ``None`` when it must not run: the
    step succeeded already (unless ``force``: a run by hand) or runs elsewhere."""
    with tenant_scope(tenant_id):
        night = NightlyRun.objects.select_for_update().filter(pk=nightly_run_id).first()
        if night is None:
            return None
        latest = (
            JobRun.objects.filter(nightly_run=night, step=step)
            .order_by("-started_at", "-pk")
            .first()
        )
        if latest is not None:
            if latest.status == JobRun.Status.SUCCEEDED and not force:
                return None
            if latest.status == JobRun.Status.RUNNING:
                if not task_id or latest.task_id != task_id:
                    return None  # another worker runs this step now
                # Our own message again: the broker gave it back because the worker
                # that ran it died (acks late), so that run will never finish.
                JobRun.objects.filter(pk=latest.pk, status=JobRun.Status.RUNNING).update(
                    status=JobRun.Status.LOST,
                    finished_at=timezone.now(),
                    error=gettext("The worker running this step stopped; it was run again."),
                )
        return JobRun.objects.create(
            tenant_id=tenant_id,
            task_name=task_name,
            task_id=task_id,
            nightly_run=night,
            step=step,
            time_limit=time_limit,
            worker=worker,
        )


def step_succeeded(*, tenant_id: int, nightly_run_id: int) -> None:
    """Mark the night complete once every one of its steps' latest run succeeded."""
    with tenant_scope(tenant_id):
        night = NightlyRun.objects.filter(pk=nightly_run_id, completed_at__isnull=True).first()
        if night is None:
            return
        latest = _latest_runs(night)
        if all(
            name in latest and latest[name].status == JobRun.Status.SUCCEEDED
            for name in night.steps
        ):
            NightlyRun.objects.filter(pk=night.pk, completed_at__isnull=True).update(
                completed_at=timezone.now()
            )


# --- watchdog ----------------------------------------------------------------------------


def mark_lost_runs(now: datetime | None = None) -> int:
    """Mark ``lost`` every running job run older than its hard time limit plus
    ``JOB_LOST_MARGIN_SECONDS``: no worker runs it any more (SPEC section 7)."""
    now = now or timezone.now()
    second = Value(timedelta(seconds=1), output_field=DurationField())
    limit = ExpressionWrapper(
        Coalesce(F("time_limit"), Value(settings.JOB_TIME_LIMIT)) * second,
        output_field=DurationField(),
    )
    lost_after = ExpressionWrapper(
        F("started_at") + limit + Value(timedelta(seconds=settings.JOB_LOST_MARGIN_SECONDS)),
        output_field=DateTimeField(),
    )
    with platform_scope("job watchdog: running job runs of every tenant whose worker is gone"):
        lost = (
            JobRun.objects.filter(status=JobRun.Status.RUNNING)
            .alias(lost_after=lost_after)
            .filter(lost_after__lt=now)
        )
        count = lost.update(
            status=JobRun.Status.LOST,
            finished_at=now,
            error=gettext("No news from its worker after its time limit: it stopped."),
        )
    if count:
        logger.warning("Marked %d job run(s) lost: their workers stopped", count)
    return count


# --- by hand -----------------------------------------------------------------------------


def run_night_by_hand(
    tenant: Tenant,
    *,
    night_date: date,
    step_names: list[str] | None = None,
    progress: Callable[[JobRun | None, Step], None] | None = None,
) -> NightlyRun:
    """Run a tenant's night (or some of its steps) synchronously, in this process,
    even the steps that succeeded already (each step is safe to run twice)."""
    names = [step.name for step in steps()]
    with tenant_scope(tenant):
        night, _created = NightlyRun.objects.get_or_create(
            tenant=tenant,
            night=night_date,
            defaults={"as_of": night_date - timedelta(days=1), "steps": names},
        )
    for name in step_names or night.steps or names:
        step = get_step(name)
        if step is None:
            continue
        task_id = f"by-hand-{night.pk}-{name}-{timezone.now().timestamp()}"
        step.task.apply(
            args=(tenant.pk, night.as_of.isoformat()),
            kwargs={"nightly_run_id": night.pk, "nightly_step": name, "force": True},
            task_id=task_id,
        )
        if progress is not None:
            with tenant_scope(tenant):
                run = JobRun.objects.filter(nightly_run=night, task_id=task_id).first()
            progress(run, step)
    with tenant_scope(tenant):
        night.refresh_from_db()
    return night
