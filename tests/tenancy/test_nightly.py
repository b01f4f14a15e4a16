"""The nightly run (SPEC section 7): per tenant at 02:00 local time, once per night, as
one chain of the registered steps in order; here with tasks run eagerly (the real
worker and broker are in ``test_worker.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from config.celery import app as celery_app
from targets.models import AchievementSnapshot
from tenancy import nightly
from tenancy.models import JobRun, NightlyRun, Tenant
from tenancy.scope import platform_scope, tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree
from tests.tenancy.nightly_steps import (
    broken_step,
    census_step,
    flaky_step,
    only_core_steps,
    registered_step,
    slow_step,
)

pytestmark = pytest.mark.django_db
UTC = ZoneInfo("UTC")


@pytest.fixture(autouse=True)
def _core_night(request: pytest.FixtureRequest) -> Iterator[None]:
    """Night mechanics are tested on the two core steps (see ``only_core_steps``)."""
    if request.node.name.startswith("test_the_registry_holds"):
        yield
        return
    with only_core_steps():
        yield


def _runs(tree: TenantTree) -> list[tuple[str, str]]:
    with tenant_scope(tree.tenant):
        return sorted(
            (run.task_name, run.status) for run in JobRun.objects.filter(task_name__contains=".")
        )


def test_each_tenant_runs_once_a_night_after_two_in_its_own_time_zone(
    tree_a: TenantTree, tree_b: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    with platform_scope("test: a tenant in New York"):
        Tenant.objects.filter(pk=tree_b.tenant.pk).update(time_zone="America/New_York")
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
    capture = django_capture_on_commit_callbacks(execute=True)  # type: ignore[operator]

    # 17:30 UTC: 01:30 in Shanghai (not yet), 12:30 in New York (due since 02:00).
    with capture:
        first = nightly.dispatch(datetime(2026, 11, 29, 17, 30, tzinfo=UTC))
    assert first["dispatched"] == [
        {
            "tenant": tree_b.tenant.pk,
            "night": "2026-11-29",
            "as_of": "2026-11-28",
            "steps": ["snapshots", "warnings"],
        }
    ]
    assert _runs(tree_a) == []
    assert _runs(tree_b) == [
        ("funnel.evaluate_warnings", "succeeded"),
        ("targets.snapshot_achievements", "succeeded"),
    ]

    # 18:30 UTC: 02:30 in Shanghai. New York had its night already.
    capture = django_capture_on_commit_callbacks(execute=True)  # type: ignore[operator]
    with capture:
        second = nightly.dispatch(datetime(2026, 11, 29, 18, 30, tzinfo=UTC))
    assert second["dispatched"] == [
        {
            "tenant": tree_a.tenant.pk,
            "night": "2026-11-30",
            "as_of": "2026-11-29",
            "steps": ["snapshots", "warnings"],
        }
    ]
    assert _runs(tree_a) == [
        ("funnel.evaluate_warnings", "succeeded"),
        ("targets.snapshot_achievements", "succeeded"),
    ]
    with tenant_scope(tree_a.tenant):
        snapshots = AchievementSnapshot.objects.all()
        assert snapshots.exists()
        assert set(snapshots.values_list("as_of", flat=True)) == {date(2026, 11, 29)}
        night = NightlyRun.objects.get()
        assert night.night == date(2026, 11, 30) and night.completed_at is not None
        assert sorted(night.job_runs.values_list("step", "status")) == [
            ("snapshots", "succeeded"),
            ("warnings", "succeeded"),
        ]

    # Every later dispatch that night sends nothing more, for either tenant.
    capture = django_capture_on_commit_callbacks(execute=True)  # type: ignore[operator]
    with capture as callbacks:
        third = nightly.dispatch(datetime(2026, 11, 29, 23, 50, tzinfo=UTC))
    assert third == {"dispatched": []} and callbacks == []
    assert len(_runs(tree_a)) == len(_runs(tree_b)) == 2


def test_an_inactive_tenant_has_no_night(
    tree_a: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    with platform_scope("test: deactivate a tenant"):
        Tenant.objects.filter(pk=tree_a.tenant.pk).update(is_active=False)
    capture = django_capture_on_commit_callbacks(execute=True)  # type: ignore[operator]
    with capture:
        result = nightly.dispatch(datetime(2026, 11, 29, 20, 0, tzinfo=UTC))
    assert result == {"dispatched": []}
    with tenant_scope(tree_a.tenant):
        assert not NightlyRun.objects.exists()


def test_beat_runs_the_dispatcher_every_ten_minutes() -> None:
    from config.celery import app

    app.loader.import_default_modules()  # as a worker does at start
    entry = app.conf.beat_schedule["nightly-dispatch"]
    assert entry["task"] == "tenancy.dispatch_nightly" and entry["schedule"] == 600
    assert "tenancy.dispatch_nightly" in app.tasks
    watchdog = app.conf.beat_schedule["job-watchdog"]
    assert watchdog["task"] == "tenancy.job_watchdog" and watchdog["schedule"] == 300
    assert "tenancy.job_watchdog" in app.tasks


def test_the_admin_lists_only_the_tenants_own_nights_and_only_to_its_admins(
    tree_a: TenantTree, tree_b: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    capture = django_capture_on_commit_callbacks(execute=True)  # type: ignore[operator]
    with capture:
        nightly.dispatch(datetime(2026, 11, 29, 18, 30, tzinfo=UTC))  # both tenants due
    with tenant_scope(tree_b.tenant):
        foreign = NightlyRun.objects.get()
    with tenant_scope(tree_a.tenant):
        own = NightlyRun.objects.get()
    url = "/admin/tenancy/nightlyrun/"
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    page = client.get(url)
    assert page.status_code == 200
    assert f"{url}{own.pk}/change/" in page.content.decode()
    assert f"{url}{foreign.pk}/change/" not in page.content.decode()
    assert client.get(f"{url}{foreign.pk}/change/").status_code in (302, 404)
    rep = Client()
    assert rep.login(username="acme-rep", password=PASSWORD)
    assert rep.get(url).status_code == 403


# --- the registry ------------------------------------------------------------------------


def test_the_registry_holds_the_apps_steps_in_the_specs_order() -> None:
    """SPEC 7: snapshots, warnings, points catch-up, leaderboards, draft statements,
    digests. Each app registers its own step; tenancy names none of their tasks."""
    registered = nightly.steps()
    assert [(step.name, step.task.name) for step in registered] == [
        ("snapshots", "targets.snapshot_achievements"),
        ("warnings", "funnel.evaluate_warnings"),
        ("points_catch_up", "incentives.points_catch_up"),
        ("leaderboards", "incentives.refresh_leaderboards"),
        ("statements", "incentives.compute_statements"),
        ("digests", "crm.prepare_digests"),
    ]
    assert [step.order for step in registered] == [
        nightly.Order.SNAPSHOTS,
        nightly.Order.WARNINGS,
        nightly.Order.POINTS_CATCH_UP,
        nightly.Order.LEADERBOARDS,
        nightly.Order.DRAFT_STATEMENTS,
        nightly.Order.DIGESTS,
    ]
    assert list(nightly.Order) == sorted(nightly.Order)
    assert [order.name for order in nightly.Order] == [
        "SNAPSHOTS",
        "WARNINGS",
        "POINTS_CATCH_UP",
        "LEADERBOARDS",
        "DRAFT_STATEMENTS",
        "DIGESTS",
    ]
    for step in registered:
        assert step.task.name in celery_app.tasks
        assert step.soft_time_limit < step.time_limit < 900  # the visibility timeout


def test_a_step_registered_between_two_runs_in_its_place() -> None:
    with registered_step("census", nightly.Order.SNAPSHOTS + 1, census_step):
        assert [step.name for step in nightly.steps()] == ["snapshots", "census", "warnings"]
    assert [step.name for step in nightly.steps()] == ["snapshots", "warnings"]


def test_a_step_cannot_outlive_the_brokers_visibility_timeout() -> None:
    with pytest.raises(ImproperlyConfigured, match="visibility timeout"):
        nightly.register(name="long", order=99, task=slow_step, time_limit=900)
    with pytest.raises(ImproperlyConfigured, match="soft time limit"):
        nightly.register(name="long", order=99, task=slow_step, soft_time_limit=60, time_limit=60)
    assert nightly.get_step("long") is None


# --- failures, retries, lost runs ----------------------------------------------------------


NOW = datetime(2026, 11, 29, 18, 30, tzinfo=UTC)  # 02:30 in Shanghai


class _ListHandler(logging.Handler):
    """Collects formatted records (pytest's caplog handler is dropped when loading the
    task modules sets Django up, and with it logging, again)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _step_runs(tree: TenantTree) -> list[tuple[str, str]]:
    with tenant_scope(tree.tenant):
        return list(
            JobRun.objects.filter(nightly_run__isnull=False)
            .order_by("started_at", "pk")
            .values_list("step", "status")
        )


def _dispatch(capture_factory: object, now: datetime = NOW) -> dict[str, Any]:
    capture = capture_factory(execute=True)  # type: ignore[operator]
    with capture:
        return nightly.dispatch(now)


def test_one_bad_step_fails_alone_with_a_one_line_error_and_the_next_steps_run(
    tree_a: TenantTree,
    django_capture_on_commit_callbacks: object,
) -> None:
    logged = _ListHandler()
    logging.getLogger("tenancy.jobs").addHandler(logged)
    with registered_step("broken", nightly.Order.SNAPSHOTS + 1, broken_step):
        _dispatch(django_capture_on_commit_callbacks)
        assert _step_runs(tree_a) == [
            ("snapshots", "succeeded"),
            ("broken", "failed"),
            ("warnings", "succeeded"),
        ]
        with tenant_scope(tree_a.tenant):
            failed = JobRun.objects.get(step="broken")
            night = NightlyRun.objects.get()
        # The admin's summary: the exception and its message, no traceback, no SQL.
        assert failed.error == "DataError: division by zero"
        assert night.completed_at is None
        # The full error is in the log.
        logging.getLogger("tenancy.jobs").removeHandler(logged)
        assert "Traceback" in logged.text and "division by zero" in logged.text

        # The next dispatch runs the failed step again, and only it, up to three times.
        later = [
            _dispatch(django_capture_on_commit_callbacks, NOW + timedelta(minutes=m))
            for m in (10, 20, 30)
        ]
        assert [row["dispatched"] for row in later[:2]] == [
            [
                {
                    "tenant": tree_a.tenant.pk,
                    "night": "2026-11-30",
                    "as_of": "2026-11-29",
                    "steps": ["broken"],
                }
            ]
        ] * 2
        assert later[2] == {"dispatched": []}
    assert [status for step, status in _step_runs(tree_a) if step == "broken"] == ["failed"] * 3
    assert len(_step_runs(tree_a)) == 5


def test_run_eagerly_a_transient_error_fails_the_step_and_the_next_dispatch_reruns_it(
    tree_a: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    """Without a broker (the quick start) Celery cannot retry a task it runs eagerly: the
    step fails and the next dispatch runs it again. On a real worker it is retried with
    backoff (``test_worker.py``)."""
    with registered_step("flaky", nightly.Order.WARNINGS + 1, flaky_step):
        _dispatch(django_capture_on_commit_callbacks)
        _dispatch(django_capture_on_commit_callbacks, NOW + timedelta(minutes=10))
    assert _step_runs(tree_a) == [
        ("snapshots", "succeeded"),
        ("warnings", "succeeded"),
        ("flaky", "failed"),
        ("flaky", "succeeded"),
    ]
    with tenant_scope(tree_a.tenant):
        failed = JobRun.objects.get(step="flaky", status="failed")
        assert failed.error == "OperationalError: could not connect to server: Connection refused"
        assert NightlyRun.objects.get().completed_at is not None


def test_a_night_whose_sending_failed_is_sent_by_the_next_dispatch(
    tree_a: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    """The broker is down (nothing listens on port 1): the night stays unsent, with the
    reason, and the next dispatch sends it."""
    previous = celery_app.conf.broker_write_url
    celery_app.conf.update(broker_write_url="redis://127.0.0.1:1/0")
    celery_app.conf.task_always_eager = False
    celery_app.close()
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
    try:
        assert _dispatch(django_capture_on_commit_callbacks)["dispatched"]
    finally:
        celery_app.conf.update(broker_write_url=previous)
        celery_app.conf.task_always_eager = True
        celery_app.close()
        celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]
    with tenant_scope(tree_a.tenant):
        night = NightlyRun.objects.get()
    assert night.sent_at is None and night.completed_at is None
    assert night.send_error.startswith("OperationalError")
    assert _step_runs(tree_a) == []

    later = _dispatch(django_capture_on_commit_callbacks, NOW + timedelta(minutes=10))
    assert [row["steps"] for row in later["dispatched"]] == [["snapshots", "warnings"]]
    with tenant_scope(tree_a.tenant):
        night.refresh_from_db()
    assert night.completed_at is not None and night.send_error == ""
    assert _step_runs(tree_a) == [("snapshots", "succeeded"), ("warnings", "succeeded")]


def test_the_watchdog_marks_lost_the_runs_past_their_limit_and_the_dispatcher_reruns_them(
    tree_a: TenantTree, tree_b: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    """A run is lost once older than its hard limit plus the margin (600 + 120 s here);
    the next dispatch runs that step again, not the one that succeeded."""
    now = timezone.now()
    with tenant_scope(tree_a.tenant):
        night = NightlyRun.objects.create(
            tenant=tree_a.tenant,
            night=date(2026, 11, 30),
            as_of=date(2026, 11, 29),
            steps=["snapshots", "warnings"],
            sent_at=now,
        )
        JobRun.objects.create(
            tenant=tree_a.tenant,
            task_name="targets.snapshot_achievements",
            nightly_run=night,
            step="snapshots",
            status="succeeded",
            started_at=now - timedelta(seconds=800),
            finished_at=now,
        )
        dead = JobRun.objects.create(
            tenant=tree_a.tenant,
            task_name="funnel.evaluate_warnings",
            nightly_run=night,
            step="warnings",
            time_limit=600,
            started_at=now - timedelta(seconds=721),
        )
    with tenant_scope(tree_b.tenant):
        young = JobRun.objects.create(
            tenant=tree_b.tenant,
            task_name="tenancy.tenant_census",
            time_limit=600,
            started_at=now - timedelta(seconds=719),
        )
        old = JobRun.objects.create(
            tenant=tree_b.tenant,
            task_name="tenancy.tenant_census",
            started_at=now - timedelta(seconds=721),
        )  # default limit 600
    assert nightly.mark_lost_runs(now) == 2
    with tenant_scope(tree_a.tenant):
        dead.refresh_from_db()
    assert dead.status == "lost" and dead.finished_at == now and "time limit" in dead.error
    with tenant_scope(tree_b.tenant):
        assert JobRun.objects.get(pk=young.pk).status == "running"
        assert JobRun.objects.get(pk=old.pk).status == "lost"

    result = _dispatch(
        django_capture_on_commit_callbacks, datetime(2026, 11, 29, 19, 0, tzinfo=UTC)
    )
    assert [(row["tenant"], row["steps"]) for row in result["dispatched"]] == [
        (tree_a.tenant.pk, ["warnings"]),
        (tree_b.tenant.pk, ["snapshots", "warnings"]),
    ]
    assert _step_runs(tree_a) == [
        ("snapshots", "succeeded"),
        ("warnings", "lost"),
        ("warnings", "succeeded"),
    ]


def test_nights_never_made_while_beat_was_down_are_made_within_the_catch_up_window(
    tree_a: TenantTree, tree_b: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    """Beat was down for days: the first dispatch makes the missing nights of the last
    three local days (each computing its eve) besides tonight's, never a night before
    the tenant's first day."""
    with platform_scope("test: tenants made earlier"):
        Tenant.objects.filter(pk=tree_a.tenant.pk).update(created_at=NOW - timedelta(days=10))
        Tenant.objects.filter(pk=tree_b.tenant.pk).update(created_at=NOW - timedelta(days=2))
    result = _dispatch(django_capture_on_commit_callbacks)
    made = [(row["tenant"], row["night"], row["as_of"]) for row in result["dispatched"]]
    a, b = tree_a.tenant.pk, tree_b.tenant.pk
    assert made == [
        (a, "2026-11-27", "2026-11-26"),
        (a, "2026-11-28", "2026-11-27"),
        (a, "2026-11-29", "2026-11-28"),
        (a, "2026-11-30", "2026-11-29"),
        # Made at 02:30 on 28 November Shanghai time: its first night is the 29th.
        (b, "2026-11-29", "2026-11-28"),
        (b, "2026-11-30", "2026-11-29"),
    ]
    with tenant_scope(tree_a.tenant):
        assert NightlyRun.objects.filter(completed_at__isnull=False).count() == 4
    assert _dispatch(django_capture_on_commit_callbacks, NOW + timedelta(minutes=10)) == {
        "dispatched": []
    }


def test_a_duplicate_message_runs_nothing_twice(
    tree_a: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    _dispatch(django_capture_on_commit_callbacks)
    with tenant_scope(tree_a.tenant):
        night = NightlyRun.objects.get()
    nightly.night_chain(night, ["snapshots", "warnings"]).apply_async()
    assert _step_runs(tree_a) == [("snapshots", "succeeded"), ("warnings", "succeeded")]


def test_dst_in_new_york_gives_one_night_per_local_date_at_two(
    tree_b: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    """Dispatch every hour across both of New York's 2026 changes: on 8 March
    02:00 does not exist (01:59 EST is followed by 03:00 EDT), on 1 November 01:00-02:00
    happens twice. Each local date still gets one night, at its first dispatch past
    02:00 local time."""
    with platform_scope("test: a tenant in New York"):
        Tenant.objects.filter(pk=tree_b.tenant.pk).update(time_zone="America/New_York")
    first_dispatch: dict[str, datetime] = {}
    for start in (
        datetime(2026, 3, 7, 12, 0, tzinfo=UTC),
        datetime(2026, 10, 31, 12, 0, tzinfo=UTC),
    ):
        for tick in range(49):
            now = start + timedelta(hours=tick)
            for row in _dispatch(django_capture_on_commit_callbacks, now)["dispatched"]:
                first_dispatch.setdefault(str(row["night"]), now)
    assert {night: now.strftime("%H:%M") for night, now in first_dispatch.items()} == {
        "2026-03-07": "12:00",  # 07:00 EST, the first tick
        "2026-03-08": "07:00",  # 03:00 EDT: 02:00 was skipped
        "2026-03-09": "06:00",  # 02:00 EDT
        "2026-10-31": "12:00",  # 08:00 EDT, the first tick
        "2026-11-01": "07:00",  # 02:00 EST, the second 01:00-02:00 not counted twice
        "2026-11-02": "07:00",  # 02:00 EST
    }
    with tenant_scope(tree_b.tenant):
        assert NightlyRun.objects.count() == 6
        assert NightlyRun.objects.filter(completed_at__isnull=True).count() == 0
        assert JobRun.objects.count() == 12


# --- by hand, the admin, the API ----------------------------------------------------------


def _command(*args: str) -> str:
    out = StringIO()
    call_command("run_nightly", *args, stdout=out)
    return out.getvalue()


def test_run_nightly_runs_a_night_by_hand_with_progress(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.published_plan(tree_a)
    output = _command("--tenant", "acme", "--date", "2026-11-30")
    lines = output.splitlines()
    assert lines[0] == "Night of 2026-11-30 for acme (computing 2026-11-29):"
    assert lines[1].startswith("  snapshots: succeeded in ") and "snapshots " in lines[1]
    assert lines[2].startswith("  warnings: succeeded in ")
    assert lines[3] == "The night is complete."
    with tenant_scope(tree_a.tenant):
        night = NightlyRun.objects.get()
        assert night.as_of == date(2026, 11, 29) and night.completed_at is not None
        snapshots = AchievementSnapshot.objects.count()
        assert snapshots and set(AchievementSnapshot.objects.values_list("as_of", flat=True)) == {
            date(2026, 11, 29)
        }

    # One step again, by hand: it runs even though it succeeded; nothing is duplicated.
    again = _command("--tenant", "acme", "--date", "2026-11-30", "--step", "snapshots")
    assert "snapshots: succeeded" in again and "warnings" not in again
    with tenant_scope(tree_a.tenant):
        assert AchievementSnapshot.objects.count() == snapshots
    assert [step for step, _status in _step_runs(tree_a)] == ["snapshots", "warnings", "snapshots"]


def test_run_nightly_reports_a_failed_step_and_fails(tree_a: TenantTree) -> None:
    with (
        registered_step("broken", nightly.Order.SNAPSHOTS + 1, broken_step),
        pytest.raises(CommandError, match="Failed steps: broken"),
    ):
        _command("--tenant", "acme", "--date", "2026-11-30")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nobody"], "No tenant has the slug nobody."),
        (["--tenant", "acme", "--date", "30/11/2026"], "--date must be a date written YYYY-MM-DD"),
        (
            ["--tenant", "acme", "--step", "coffee"],
            "Unknown step coffee; the steps are: snapshots, warnings.",
        ),
    ],
)
def test_run_nightly_refuses_bad_input_clearly(
    tree_a: TenantTree, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message.replace(".", r"\.").replace("(", r"\(")):
        _command(*args)
    with tenant_scope(tree_a.tenant):
        assert not NightlyRun.objects.exists()


def test_the_admin_shows_each_steps_counts_and_duration(
    tree_a: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    with registered_step("broken", nightly.Order.SNAPSHOTS + 1, broken_step):
        _dispatch(django_capture_on_commit_callbacks)
    with tenant_scope(tree_a.tenant):
        night = NightlyRun.objects.get()
        snapshots = JobRun.objects.get(step="snapshots")
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    listing = client.get("/admin/tenancy/nightlyrun/").content.decode()
    assert "snapshots: Succeeded (" in listing and "broken: Failed (" in listing
    page = client.get(f"/admin/tenancy/nightlyrun/{night.pk}/change/").content.decode()
    assert "DataError: division by zero" in page and "Traceback" not in page
    assert f"{snapshots.duration.total_seconds():.1f} s" in page  # type: ignore[union-attr]
    assert "&quot;plans&quot;: 0" in page  # the snapshot step's counts


def test_job_runs_in_the_api_name_their_night_and_step(
    tree_a: TenantTree,
    tree_b: TenantTree,
    client_for: object,
    django_capture_on_commit_callbacks: object,
    django_assert_max_num_queries: object,
) -> None:
    _dispatch(django_capture_on_commit_callbacks)  # both tenants are due at 18:30 UTC
    with tenant_scope(tree_a.tenant):
        night = NightlyRun.objects.get()
    with tenant_scope(tree_b.tenant):
        foreign = JobRun.objects.first()
    assert foreign is not None
    admin = client_for(tree_a.members["admin"])  # type: ignore[operator]
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        response = admin.get(f"/api/v1/job-runs/?nightly_run={night.pk}&ordering=started_at")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["step"], row["status"], row["night"], row["nightly_run"]) for row in rows] == [
        ("snapshots", "succeeded", "2026-11-30", night.pk),
        ("warnings", "succeeded", "2026-11-30", night.pk),
    ]
    assert admin.get(f"/api/v1/job-runs/{foreign.pk}/").status_code == 404
    assert admin.get(f"/api/v1/job-runs/?nightly_run={foreign.nightly_run_id}").status_code == 400
    rep = client_for(tree_a.members["rep"])  # type: ignore[operator]
    assert rep.get("/api/v1/job-runs/").status_code == 403
