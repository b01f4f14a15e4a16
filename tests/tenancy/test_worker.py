"""Jobs on a real Celery worker and the real broker (SPEC section 7).

The broker is CELERY_BROKER_URL, else the Redis on 127.0.0.1:6379, else kombu's
filesystem transport (the test says so), so the worker is always a real process.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, transaction

from config.celery import app as celery_app
from tenancy.jobs import enqueue_on_commit
from tenancy.models import JobRun
from tenancy.scope import tenant_scope
from tenancy.tasks import tenant_census
from tests.factories import TenantTree

ROOT = Path(__file__).resolve().parents[2]


def _redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def _broker(tmp_path: Path) -> tuple[str, dict[str, str]]:
    configured = os.environ.get("CELERY_BROKER_URL", "")
    if configured and not configured.startswith("filesystem://"):
        return configured, {}
    if not configured and _redis_answers():
        return "redis://127.0.0.1:6379/0", {}
    folder = tmp_path / "broker"
    (folder / "processed").mkdir(parents=True)
    print("\nNo broker answers: the real worker runs on kombu's filesystem transport.")
    return "filesystem://", {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "processed_folder": str(folder / "processed"),
        # kombu's exchange table, else ./control in the repository.
        "control_folder": str(folder / "control"),
    }


def _test_database_url() -> str:
    settings = connection.settings_dict
    host = quote(settings["HOST"] or "", safe="")
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    password = f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else ""
    return f"postgres://{quote(settings['USER'])}{password}@{host}{port}/{settings['NAME']}"


def _drop_connection_pools() -> None:
    """Forget pooled broker connections, which were opened for the previous broker URL."""
    celery_app.close()
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


@pytest.fixture
def worker_queue(tmp_path: Path, transactional_db: None) -> Iterator[str]:
    """A real worker process consuming a queue of its own, on the test database."""
    broker, options = _broker(tmp_path)
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": _test_database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(options),
    }
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # Publishing before the worker has declared its queue would route the message nowhere.
    deadline = time.monotonic() + 60
    while "ready." not in (tmp_path / "worker.log").read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError((tmp_path / "worker.log").read_text()[-3000:])
        time.sleep(0.2)
    previous = (celery_app.conf.broker_url, celery_app.conf.broker_transport_options)
    celery_app.conf["broker_url"] = broker
    celery_app.conf.broker_transport_options = options
    celery_app.conf.task_always_eager = False
    _drop_connection_pools()
    try:
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        (
            celery_app.conf["broker_url"],
            celery_app.conf["broker_transport_options"],
        ) = previous
        celery_app.conf.task_always_eager = True
        _drop_connection_pools()


def _wait_for_run(
    tenant_id: int, timeout: float = 60.0, task_name: str = "tenancy.tenant_census"
) -> JobRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with tenant_scope(tenant_id):
            run = JobRun.objects.filter(task_name=task_name).first()
        if run is not None and run.status != JobRun.Status.RUNNING:
            return run
        time.sleep(0.3)
    raise AssertionError("the worker did not finish the task in time")


@pytest.mark.worker
def test_a_real_worker_runs_a_task_inside_its_tenant_and_sees_no_other(
    worker_queue: str, tree_a: TenantTree, tree_b: TenantTree
) -> None:
    tenant_census.apply_async(args=(tree_a.tenant.pk,), queue=worker_queue)
    run = _wait_for_run(tree_a.tenant.pk)
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    assert run.finished_at is not None and run.task_id
    assert run.counts == {
        "members": len(tree_a.members),
        "org_units": len(tree_a.units),
        "raw_members_visible": len(tree_a.members),
        "raw_tenants_visible": 1,
    }
    with tenant_scope(tree_b.tenant):
        assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_enqueue_on_commit_sends_nothing_until_the_transaction_commits(
    tree_a: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    capture = django_capture_on_commit_callbacks(execute=True)  # type: ignore[operator]
    with capture as callbacks, transaction.atomic():
        enqueue_on_commit(tenant_census, tree_a.tenant.pk)
        with tenant_scope(tree_a.tenant):
            assert not JobRun.objects.exists()
    assert len(callbacks) == 1
    with tenant_scope(tree_a.tenant):
        run = JobRun.objects.get()
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.counts["members"] == len(tree_a.members)


@pytest.mark.django_db
def test_a_failing_job_records_its_error(tree_a: TenantTree) -> None:
    @celery_app.task(base=tenant_census.__class__.__mro__[1], name="tests.failing_job")
    def failing_job(tenant_id: int) -> dict[str, int]:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing_job.delay(tree_a.tenant.pk)
    with tenant_scope(tree_a.tenant):
        run = JobRun.objects.get(task_name="tests.failing_job")
    assert run.status == JobRun.Status.FAILED
    assert "ValueError: boom" in run.error


@pytest.mark.worker
def test_the_nightly_dispatch_runs_the_tenants_jobs_on_a_real_worker(
    worker_queue: str, tree_a: TenantTree, tree_b: TenantTree
) -> None:
    """02:30 in Shanghai (tree A) is 13:30 in New York (tree B): both are due, each gets
    its snapshots and warnings once, in its own scope."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tenancy import nightly
    from tenancy.models import Tenant
    from tenancy.scope import platform_scope

    with platform_scope("test: a tenant in New York"):
        Tenant.objects.filter(pk=tree_b.tenant.pk).update(time_zone="America/New_York")
    now = datetime(2026, 11, 29, 18, 30, tzinfo=ZoneInfo("UTC"))
    sent = nightly.dispatch(now, queue=worker_queue)["dispatched"]
    assert {row["tenant"]: row["as_of"] for row in sent} == {
        tree_a.tenant.pk: "2026-11-29",
        tree_b.tenant.pk: "2026-11-28",
    }
    assert nightly.dispatch(now, queue=worker_queue) == {"dispatched": []}
    for tree in (tree_a, tree_b):
        for name in nightly.NIGHTLY_TASKS:
            run = _wait_for_run(tree.tenant.pk, task_name=name)
            assert run.status == JobRun.Status.SUCCEEDED, run.error
        with tenant_scope(tree.tenant):
            assert JobRun.objects.count() == len(nightly.NIGHTLY_TASKS)
