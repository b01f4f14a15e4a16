"""Jobs on a real Celery worker and the real broker (SPEC section 7).

The broker is CELERY_BROKER_URL, else the Redis on 127.0.0.1:6379, else kombu's
filesystem transport (the test says so), so the worker is always a real process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.utils import timezone

from config.celery import app as celery_app
from funnel.models import Alert
from targets.models import AchievementSnapshot
from tenancy import nightly
from tenancy.jobs import enqueue_on_commit
from tenancy.models import JobRun, NightlyRun, Tenant
from tenancy.scope import platform_scope, tenant_scope
from tenancy.tasks import tenant_census
from tests import records
from tests.factories import TenantTree, build_tenant_tree
from tests.tenancy.nightly_steps import (
    census_step,
    flaky_step,
    only_core_steps,
    registered_step,
    slow_step,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _core_night(request: pytest.FixtureRequest) -> Iterator[None]:
    """Night mechanics are tested on the two core steps (see ``only_core_steps``)."""
    if request.node.name.startswith("test_the_registry_holds"):
        yield
        return
    with only_core_steps():
        yield


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


class Workers:
    """Real worker processes on the test database and the real broker, each consuming
    the test's own queue; stopped (or already killed) at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.broker, self.options = _broker(tmp_path)
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str = "w1", pool: str = "solo", **extra_env: str
    ) -> subprocess.Popen[bytes]:
        options = dict(self.options)
        if "TRANSPORT_OPTIONS" in extra_env:
            options.update(json.loads(extra_env.pop("TRANSPORT_OPTIONS")))
        env = {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": _test_database_url(),
            "CELERY_BROKER_URL": self.broker,
            "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(options),
            **extra_env,
        }
        path = self.tmp_path / f"worker-{name}.log"
        log = path.open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                f"--pool={pool}",
                "--concurrency=1",
                "--loglevel=INFO",
                "-Q",
                self.queue,
                "--hostname",
                f"{name}@%h",
                # The steps that tests register in the night (tests/tenancy/nightly_steps.py).
                "-I",
                "tests.tenancy.nightly_steps",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes.append(process)
        # Publishing before the worker has declared its queue would route the message nowhere.
        deadline = time.monotonic() + 60
        while "ready." not in path.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(path.read_text()[-3000:])
            time.sleep(0.2)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: the worker gets no chance to acknowledge or give anything back."""
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


@pytest.fixture
def workers(tmp_path: Path, transactional_db: None) -> Iterator[Workers]:
    """Start real workers with ``workers.start()``; tasks sent to ``workers.queue``."""
    pool = Workers(tmp_path)
    previous = (celery_app.conf.broker_write_url, celery_app.conf.broker_transport_options)
    celery_app.conf.update(broker_write_url=pool.broker, broker_transport_options=pool.options)
    celery_app.conf.task_always_eager = False
    _drop_connection_pools()
    try:
        yield pool
    finally:
        pool.stop()
        # A killed worker's messages were given back to the queue: drop them with it.
        with celery_app.connection_for_write() as connection_to_broker:
            connection_to_broker.default_channel.queue_delete(pool.queue)  # type: ignore[attr-defined]
        celery_app.conf.update(broker_write_url=previous[0], broker_transport_options=previous[1])
        celery_app.conf.task_always_eager = True
        _drop_connection_pools()


@pytest.fixture
def worker_queue(workers: Workers) -> str:
    """One real worker; its queue."""
    workers.start()
    return workers.queue


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
    assert run.error == "ValueError: boom"  # a summary: no traceback for tenant admins


# --- the night on real workers -------------------------------------------------------------

UTC = ZoneInfo("UTC")
NOW = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)  # 02:30 in Shanghai, 13:30 in New York


def _in_new_york(tree: TenantTree) -> None:
    with platform_scope("test: a tenant in New York"):
        Tenant.objects.filter(pk=tree.tenant.pk).update(time_zone="America/New_York")


def _wait_for_nights(*trees: TenantTree, count: int = 1, timeout: float = 60.0) -> None:
    """Until each tenant has ``count`` completed nights."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = True
        for tree in trees:
            with tenant_scope(tree.tenant):
                if NightlyRun.objects.filter(completed_at__isnull=False).count() < count:
                    done = False
        if done:
            return
        time.sleep(0.3)
    raise AssertionError("the workers did not complete the nights in time")


def _wait_for_step(tree: TenantTree, step: str, status: str, timeout: float = 60.0) -> JobRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with tenant_scope(tree.tenant):
            run = JobRun.objects.filter(step=step, status=status).first()
        if run is not None:
            return run
        time.sleep(0.2)
    raise AssertionError(f"step {step} never became {status}")


def _step_runs(tree: TenantTree) -> list[tuple[str, str]]:
    with tenant_scope(tree.tenant):
        return list(JobRun.objects.order_by("started_at", "pk").values_list("step", "status"))


@pytest.mark.worker
def test_the_nightly_dispatch_runs_each_tenants_night_in_its_time_zone_and_its_scope(
    worker_queue: str, tree_a: TenantTree, tree_b: TenantTree
) -> None:
    """02:30 in Shanghai (tree A) is 13:30 in New York (tree B): both are due, each gets
    its chain once, in its own scope: the census step sees one tenant's rows, even
    through raw SQL with no tenant filter."""
    _in_new_york(tree_b)
    with registered_step("census", nightly.Order.SNAPSHOTS + 1, census_step):
        sent = nightly.dispatch(NOW, queue=worker_queue)["dispatched"]
        assert {row["tenant"]: (row["night"], row["as_of"]) for row in sent} == {
            tree_a.tenant.pk: ("2026-11-30", "2026-11-29"),
            tree_b.tenant.pk: ("2026-11-29", "2026-11-28"),
        }
        assert nightly.dispatch(NOW, queue=worker_queue) == {"dispatched": []}
        _wait_for_nights(tree_a, tree_b)
    for tree in (tree_a, tree_b):
        assert _step_runs(tree) == [
            ("snapshots", "succeeded"),
            ("census", "succeeded"),
            ("warnings", "succeeded"),
        ]
        with tenant_scope(tree.tenant):
            census = JobRun.objects.get(step="census")
        assert census.counts == {
            "members": len(tree.members),
            "raw_members_visible": len(tree.members),
            "raw_tenants_visible": 1,
            "raw_job_run_tenants_visible": 1,
            "job_runs": 2,  # the snapshots' run and its own
        }
        assert census.worker.startswith("w1@")


@pytest.mark.worker
def test_new_york_across_its_dst_change_gets_one_night_per_local_date(
    worker_queue: str, tree_b: TenantTree
) -> None:
    """Hourly dispatches from 31 October 12:00 to 2 November 12:00 UTC: 1 November has
    25 hours in New York, still one night, sent at 07:00 UTC (02:00 EST)."""
    _in_new_york(tree_b)
    sent_at: dict[str, str] = {}
    for hour in range(49):
        now = datetime(2026, 10, 31, 12, 0, tzinfo=UTC) + timedelta(hours=hour)
        for row in nightly.dispatch(now, queue=worker_queue)["dispatched"]:
            sent_at.setdefault(str(row["night"]), now.strftime("%d %H:%M"))
    assert sent_at == {"2026-10-31": "31 12:00", "2026-11-01": "01 07:00", "2026-11-02": "02 07:00"}
    _wait_for_nights(tree_b, count=3)
    with tenant_scope(tree_b.tenant):
        assert JobRun.objects.count() == 6
        assert set(JobRun.objects.values_list("status", flat=True)) == {"succeeded"}


@pytest.mark.worker
def test_a_worker_killed_mid_night_leaves_a_night_that_the_next_dispatch_completes(
    workers: Workers, tree_a: TenantTree, settings: Any
) -> None:
    """The worker dies (SIGKILL) inside the second step. The watchdog marks that run lost
    once its hard limit (3 s) and the margin (1 s here) have passed; the next dispatch
    sends the lost step and the one never started, not the snapshots that succeeded."""
    settings.JOB_LOST_MARGIN_SECONDS = 1
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
    first = workers.start("w1", TEST_SLOW_STEP_SECONDS="60")
    with registered_step("slow", nightly.Order.SNAPSHOTS + 1, slow_step, 2, 3):
        nightly.dispatch(NOW, queue=workers.queue)
        dying = _wait_for_step(tree_a, "slow", "running")
        workers.kill(first)
        with tenant_scope(tree_a.tenant):
            snapshots = AchievementSnapshot.objects.count()
            alerts = Alert.objects.count()
        assert snapshots > 0
        assert _step_runs(tree_a) == [("snapshots", "succeeded"), ("slow", "running")]

        assert nightly.mark_lost_runs() == 0  # within its limit: maybe still alive
        time.sleep(
            max(0.0, (dying.started_at + timedelta(seconds=4.2) - timezone.now()).total_seconds())
        )
        assert nightly.mark_lost_runs() == 1

        workers.start("w2")
        again = nightly.dispatch(NOW + timedelta(minutes=10), queue=workers.queue)
        assert [row["steps"] for row in again["dispatched"]] == [["slow", "warnings"]]
        _wait_for_nights(tree_a)
    assert _step_runs(tree_a) == [
        ("snapshots", "succeeded"),
        ("slow", "lost"),
        ("slow", "succeeded"),
        ("warnings", "succeeded"),
    ]
    with tenant_scope(tree_a.tenant):
        assert AchievementSnapshot.objects.count() == snapshots
        assert Alert.objects.count() >= alerts
        assert JobRun.objects.get(step="slow", status="succeeded").worker.startswith("w2@")


@pytest.mark.worker
def test_a_message_given_back_after_its_worker_died_completes_the_night_by_itself(
    workers: Workers, tree_a: TenantTree
) -> None:
    """Late acknowledgement: the killed worker never acknowledged the step's message, so
    Redis gives it to the next worker after the visibility timeout (3 s here). That
    worker finds the message's own run still running, marks it lost, runs the step and
    the rest of the chain: no dispatch needed."""
    first = workers.start("w1", TEST_SLOW_STEP_SECONDS="60")
    with registered_step("slow", nightly.Order.SNAPSHOTS + 1, slow_step, 1, 2):
        nightly.dispatch(NOW, queue=workers.queue)
        _wait_for_step(tree_a, "slow", "running")
        workers.kill(first)
    workers.start(
        "w2",
        JOB_SOFT_TIME_LIMIT="1",
        JOB_TIME_LIMIT="2",
        BROKER_VISIBILITY_TIMEOUT="3",
        TRANSPORT_OPTIONS=json.dumps(
            {"unacked_restore_interval": 1, "unacked_restore_throttle": 1}
        ),
    )
    _wait_for_nights(tree_a, timeout=40)
    assert _step_runs(tree_a) == [
        ("snapshots", "succeeded"),
        ("slow", "lost"),
        ("slow", "succeeded"),
        ("warnings", "succeeded"),
    ]


@pytest.mark.worker
def test_two_workers_share_the_tenants_and_run_every_step_once(
    workers: Workers, tree_a: TenantTree, tree_b: TenantTree
) -> None:
    """Three tenants, two workers, every night sent twice more (a second dispatcher, a
    duplicated message): each step runs once, in its tenant's scope."""
    tree_c = build_tenant_tree("initech", "Initech 英尼泰克")
    workers.start("w1", TEST_SLOW_STEP_SECONDS="0.3")
    workers.start("w2", TEST_SLOW_STEP_SECONDS="0.3")
    trees = (tree_a, tree_b, tree_c)
    with (
        registered_step("slow", nightly.Order.SNAPSHOTS + 1, slow_step),
        registered_step("census", nightly.Order.WARNINGS + 1, census_step),
    ):
        assert len(nightly.dispatch(NOW, queue=workers.queue)["dispatched"]) == 3
        for tree in trees:
            with tenant_scope(tree.tenant):
                night = NightlyRun.objects.get()
            nightly.night_chain(night, night.steps, workers.queue).apply_async()
            nightly.night_chain(night, night.steps, workers.queue).apply_async()
        _wait_for_nights(*trees)
    hosts = set()
    for tree in trees:
        assert _step_runs(tree) == [
            ("snapshots", "succeeded"),
            ("slow", "succeeded"),
            ("warnings", "succeeded"),
            ("census", "succeeded"),
        ]
        with tenant_scope(tree.tenant):
            census = JobRun.objects.get(step="census")
            hosts |= set(JobRun.objects.values_list("worker", flat=True))
        assert census.counts["raw_tenants_visible"] == 1
        assert census.counts["members"] == len(tree.members)
    assert {host.split("@")[0] for host in hosts} == {"w1", "w2"}


@pytest.mark.worker
def test_a_transient_error_is_retried_on_a_real_worker_and_the_chain_goes_on(
    worker_queue: str, tree_a: TenantTree
) -> None:
    with registered_step("flaky", nightly.Order.SNAPSHOTS + 1, flaky_step):
        nightly.dispatch(NOW, queue=worker_queue)
        _wait_for_nights(tree_a)
    assert _step_runs(tree_a) == [
        ("snapshots", "succeeded"),
        ("flaky", "retried"),
        ("flaky", "succeeded"),
        ("warnings", "succeeded"),
    ]
    with tenant_scope(tree_a.tenant):
        retried, succeeded = JobRun.objects.filter(step="flaky").order_by("started_at")
    assert retried.task_id == succeeded.task_id  # the same message, sent again
    assert retried.error == "OperationalError: could not connect to server: Connection refused"
    assert succeeded.counts == {"calls": 2}


@pytest.mark.worker
def test_a_step_past_its_soft_time_limit_fails_alone_on_a_prefork_worker(
    workers: Workers, tree_a: TenantTree
) -> None:
    """Time limits are enforced by the prefork pool (production's default): the slow
    step (5 s) passes its soft limit (1 s), records a failed run and the chain goes on."""
    workers.start("w1", pool="prefork", TEST_SLOW_STEP_SECONDS="5")
    with registered_step("slow", nightly.Order.SNAPSHOTS + 1, slow_step, 1, 2):
        nightly.dispatch(NOW, queue=workers.queue)
        _wait_for_step(tree_a, "warnings", "succeeded", timeout=30)
    assert _step_runs(tree_a) == [
        ("snapshots", "succeeded"),
        ("slow", "failed"),
        ("warnings", "succeeded"),
    ]
    with tenant_scope(tree_a.tenant):
        slow = JobRun.objects.get(step="slow")
    assert slow.error.startswith("SoftTimeLimitExceeded") and slow.time_limit == 2
    assert slow.duration is not None and slow.duration < timedelta(seconds=2)
