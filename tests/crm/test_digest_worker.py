"""The digest and reminder senders on real Celery workers and the real broker, mailing
through a real SMTP server (aiosmtpd) started by the test (SPEC section 7 "sent once")."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm import digest
from crm.models import Activity, Digest, Notification
from crm.tasks import send_digests, send_reminders
from tenancy.models import JobRun
from tenancy.scope import tenant_scope
from tests.crm import test_digest
from tests.crm.test_digest import Inbox
from tests.factories import TenantTree, build_tenant_tree
from tests.tenancy import test_worker
from tests.tenancy.test_worker import Workers

inbox = test_digest.inbox  # the SMTP server (a fixture)
workers = test_worker.workers  # real workers on the real broker (a fixture)

pytestmark = pytest.mark.worker


def _smtp(inbox: Inbox) -> dict[str, str]:
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(inbox.port),  # type: ignore[attr-defined]
    }


def _wait_for_tasks(workers: Workers, name: str, count: int, timeout: float = 60.0) -> None:
    """Until the workers' logs show ``count`` runs of task ``name`` finished."""
    pattern = re.compile(rf"Task {re.escape(name)}\[[^\]]+\] (succeeded|raised)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = [p.read_text() for p in Path(workers.tmp_path).glob("worker-*.log")]
        if sum(len(pattern.findall(log)) for log in logs) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"the workers did not finish {count} {name} in time")


def _with_overdue_follow_up(slug: str, zone: str, reps: int = 1) -> TenantTree:
    tree = build_tenant_tree(slug, slug.title())
    tree.tenant.time_zone = zone
    tree.tenant.save(update_fields=["time_zone"])
    with tenant_scope(tree.tenant):
        for name in ("rep", "rep2", "south-rep")[:reps]:
            Activity.objects.create(
                tenant=tree.tenant, type="call", subject=f"Call back ({name})",
                owner=tree.members[name], due_at=datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
            )  # fmt: skip
    return tree


def _prepare(tree: TenantTree, day: Any) -> None:
    with tenant_scope(tree.tenant):
        digest.prepare_digests(tree.tenant, day)


def test_two_workers_and_six_beats_send_each_digest_once(
    workers: Workers,
    inbox: Inbox,
) -> None:
    tree = _with_overdue_follow_up("twoworkers", "Asia/Shanghai", reps=3)
    day = datetime(2026, 3, 10).date()
    _prepare(tree, day)
    workers.start("w1", **_smtp(inbox))
    workers.start("w2", **_smtp(inbox))
    now = datetime(2026, 3, 10, 0, 5, tzinfo=UTC).isoformat()  # 08:05 in Shanghai
    for _ in range(6):
        send_digests.apply_async(args=(now,), queue=workers.queue)
    _wait_for_tasks(workers, "crm.send_digests", 6)
    assert sorted(m["To"] for m in inbox.messages) == sorted(
        tree.members[name].user.email for name in ("rep", "rep2", "south-rep")
    )
    with tenant_scope(tree.tenant):
        assert set(Digest.objects.values_list("status", flat=True)) == {"sent"}
        assert Notification.objects.filter(kind="digest").count() == 3
        runs = list(JobRun.objects.filter(task_name="crm.send_digests"))
    assert runs and all(run.status == "succeeded" for run in runs)
    assert sum(run.counts["sent"] for run in runs) == 3
    assert {run.worker.split("@")[0] for run in runs} <= {"w1", "w2"}


def test_shanghai_and_new_york_get_their_digests_at_their_own_eight_oclock(
    workers: Workers,
    inbox: Inbox,
) -> None:
    """10 March 2026: 08:00 in Shanghai is 00:00 UTC; New York is on summer time since
    8 March (UTC−4), so its 08:00 is 12:00 UTC."""
    shanghai = _with_overdue_follow_up("shanghai", "Asia/Shanghai")
    new_york = _with_overdue_follow_up("newyork", "America/New_York")
    day = datetime(2026, 3, 10).date()
    _prepare(shanghai, day)
    _prepare(new_york, day)
    workers.start("w1", **_smtp(inbox))
    beats = [
        (datetime(2026, 3, 9, 23, 59, tzinfo=UTC), []),
        (datetime(2026, 3, 10, 0, 0, tzinfo=UTC), [shanghai]),
        (datetime(2026, 3, 10, 11, 59, tzinfo=UTC), [shanghai]),
        (datetime(2026, 3, 10, 12, 0, tzinfo=UTC), [shanghai, new_york]),
        (datetime(2026, 3, 10, 20, 0, tzinfo=UTC), [shanghai, new_york]),
    ]
    for count, (moment, expected) in enumerate(beats, start=1):
        send_digests.apply_async(args=(moment.isoformat(),), queue=workers.queue)
        _wait_for_tasks(workers, "crm.send_digests", count)
        assert [m["To"] for m in inbox.messages] == [
            tree.members["rep"].user.email for tree in expected
        ], moment
    for tree in (shanghai, new_york):
        with tenant_scope(tree.tenant):
            assert list(JobRun.objects.values_list("task_name", "status")) == [
                ("crm.send_digests", "succeeded")
            ]


def test_two_workers_mail_a_due_reminder_once(
    workers: Workers,
    inbox: Inbox,
) -> None:
    tree = build_tenant_tree("remindtwo", "Remind Two")
    due = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    with tenant_scope(tree.tenant):
        Activity.objects.create(
            tenant=tree.tenant, type="call", subject="Call Acme", owner=tree.members["rep"],
            due_at=due,
        )  # fmt: skip
    workers.start("w1", **_smtp(inbox))
    workers.start("w2", **_smtp(inbox))
    for minutes in (30, 30, 29, 29, 10, 0):
        moment = (due - timedelta(minutes=minutes)).isoformat()
        send_reminders.apply_async(args=(moment,), queue=workers.queue)
    _wait_for_tasks(workers, "crm.send_reminders", 6)
    assert [m["To"] for m in inbox.messages] == [tree.members["rep"].user.email]
    with tenant_scope(tree.tenant):
        [note] = Notification.objects.filter(kind="reminder")
        runs = list(JobRun.objects.filter(task_name="crm.send_reminders"))
    assert note.payload["email"]["status"] == "sent"
    # Both workers may have seen the reminder due; one claimed it.
    assert all(run.status == "succeeded" for run in runs)
    assert sum(run.counts["sent"] for run in runs) == sum(r.counts["mailed"] for r in runs) == 1
