"""The morning digest and due reminders (SPEC section 7), against real PostgreSQL and
a real SMTP server (aiosmtpd) started by the test."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings

from crm import digest
from crm.models import Activity, Digest, Notification
from crm.tasks import due_reminders, send_digests, send_reminders
from funnel.models import Alert
from targets.services import plan_publish
from tenancy.models import JobRun, Membership
from tenancy.scope import tenant_scope
from tests.factories import build_tenant_tree
from tests.targets import test_decomposition

april = test_decomposition.april  # the targets tests' tenant (a fixture)
_published_rep_plan = test_decomposition._published_rep_plan

BOUNCE = "bounce@example.com"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:  # noqa: N802, E501
        if address == BOUNCE:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    handler = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler.port = port  # type: ignore[attr-defined]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_USE_TLS=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
    ):
        yield handler
    controller.stop()


# 08:00 in Shanghai on 2026-03-10 (UTC+8).
MORNING = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
DAY = MORNING.date()


@pytest.fixture
def rep_with_news(transactional_db: None) -> Any:
    tree = build_tenant_tree("dg", "Digest Co")
    rep = tree.members["rep"]
    with tenant_scope(tree.tenant):
        Activity.objects.create(
            tenant=tree.tenant,
            type="call",
            subject="Call Acme back",
            owner=rep,
            due_at=datetime(2026, 3, 8, 2, 0, tzinfo=UTC),
        )
        Alert.objects.create(
            tenant=tree.tenant,
            rule="stale_deal",
            subject_type="opportunity",
            subject_id=77,
            period="open",
            owner=rep,
            observed=20,
            threshold=14,
            severity="warning",
            params={"deal": "Big deal"},
            # Going stale since before the eve: the rep's stale deal, no news for the
            # manager (whose digest lists alerts opened since the eve).
            opened_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    return tree


def _prepare(tree: Any) -> dict[str, int]:
    with tenant_scope(tree.tenant):
        return digest.prepare_digests(tree.tenant, DAY)


def test_overdue_and_stale_one_notification_one_mail_however_often(
    rep_with_news: Any, inbox: Inbox
) -> None:
    tree = rep_with_news
    rep = tree.members["rep"]
    assert _prepare(tree) == {"members": 1, "prepared": 1}
    assert _prepare(tree) == {"members": 1, "prepared": 0}  # a second night: no new row
    # 07:50 local: not yet.
    assert send_digests((MORNING - timedelta(minutes=10)).isoformat())["sent"] == 0
    assert inbox.messages == []
    assert send_digests(MORNING.isoformat())["sent"] == 1
    for _ in range(3):
        assert send_digests((MORNING + timedelta(minutes=10)).isoformat())["sent"] == 0
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["To"] == rep.user.email
    assert mail["Content-Language"] == "en"
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Call Acme back, due on 2026-03-08" in text
    assert "Big deal has had no activity for 20 days" in text
    assert "<li>Big deal has had no activity for 20 days</li>" in html
    assert "2 things to look at" in mail["Subject"]
    with tenant_scope(tree.tenant):
        row = Digest.objects.get()
        assert row.status == "sent" and row.message_id == mail["Message-ID"]
        notes = list(Notification.objects.filter(kind="digest"))
    assert len(notes) == 1 and notes[0].recipient_id == rep.pk
    kinds = [(s["name"], [i["path"] for i in s["items"]]) for s in notes[0].payload["sections"]]
    assert ("stale_deals", ["/api/v1/opportunities/77/"]) in kinds


def test_member_language_is_used(rep_with_news: Any, inbox: Inbox) -> None:
    tree = rep_with_news
    with tenant_scope(tree.tenant):
        type(tree.members["rep"]).objects.filter(pk=tree.members["rep"].pk).update(
            language="zh-hans"
        )
    _prepare(tree)
    send_digests(MORNING.isoformat())
    assert inbox.messages[0]["Content-Language"] == "zh-hans"
    html = inbox.messages[0].get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert '<html lang="zh-hans">' in html


def test_crash_after_claim_never_sends_again(rep_with_news: Any, inbox: Inbox) -> None:
    tree = rep_with_news
    _prepare(tree)
    with tenant_scope(tree.tenant):
        pk = Digest.objects.get().pk
    assert digest._claim(tree.tenant, pk) is not None  # the worker dies right after
    assert send_digests(MORNING.isoformat())["sent"] == 0
    assert inbox.messages == []
    with tenant_scope(tree.tenant):
        assert Digest.objects.get().status == "sending"
        assert Notification.objects.filter(kind="digest").count() == 1


def test_two_workers_at_once_send_once(rep_with_news: Any, inbox: Inbox) -> None:
    tree = rep_with_news
    _prepare(tree)
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(send_digests(MORNING.isoformat()))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["sent"] for r in results) == 1
    assert len(inbox.messages) == 1


def test_bounce_is_recorded_failed_and_not_resent(rep_with_news: Any, inbox: Inbox) -> None:
    tree = rep_with_news
    user = tree.members["rep"].user
    user.email = BOUNCE
    user.save(update_fields=["email"])
    _prepare(tree)
    assert send_digests(MORNING.isoformat())["failed"] == 1
    assert send_digests(MORNING.isoformat()) == {"sent": 0, "failed": 0, "skipped": 0}
    with tenant_scope(tree.tenant):
        row = Digest.objects.get()
        assert row.status == "failed" and "550" in row.error
        assert Notification.objects.filter(kind="digest").count() == 1
    assert inbox.messages == []


def test_new_york_digest_at_its_own_hour_on_a_dst_day(transactional_db: None, inbox: Inbox) -> None:
    tree = build_tenant_tree("ny", "NY Co")
    tenant = tree.tenant
    tenant.time_zone = "America/New_York"
    tenant.save(update_fields=["time_zone"])
    day = datetime(2026, 3, 8).date()  # clocks go forward at 02:00 local
    with tenant_scope(tenant):
        Activity.objects.create(
            tenant=tenant,
            type="task",
            subject="Send quote",
            owner=tree.members["rep"],
            due_at=datetime(2026, 3, 8, 17, 0, tzinfo=UTC),
        )
        digest.prepare_digests(tenant, day)
    # 07:59 EDT = 11:59 UTC: not yet; 08:00 EDT = 12:00 UTC: sent; then nothing more.
    assert send_digests(datetime(2026, 3, 8, 11, 59, tzinfo=UTC).isoformat())["sent"] == 0
    assert send_digests(datetime(2026, 3, 8, 12, 0, tzinfo=UTC).isoformat())["sent"] == 1
    assert send_digests(datetime(2026, 3, 8, 20, 0, tzinfo=UTC).isoformat())["sent"] == 0
    text = inbox.messages[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Send quote at 13:00" in text  # 17:00 UTC is 13:00 EDT


def test_nothing_to_say_no_digest(transactional_db: None) -> None:
    tree = build_tenant_tree("quiet", "Quiet Co")
    assert _prepare(tree) == {"members": 0, "prepared": 0}


def test_reminder_once_per_due_time_and_tenant_isolated(transactional_db: None) -> None:
    tree = build_tenant_tree("rm", "Remind Co")
    other = build_tenant_tree("rm2", "Other Co")
    due = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    with tenant_scope(other.tenant):
        Activity.objects.create(
            tenant=other.tenant,
            type="call",
            subject="Theirs",
            owner=other.members["rep"],
            due_at=due,
        )
    with tenant_scope(tree.tenant):
        act = Activity.objects.create(
            tenant=tree.tenant,
            type="call",
            subject="Ours",
            owner=tree.members["rep"],
            due_at=due,
        )
        # Default lead 30 minutes: 08:29 nothing, 08:30 one, again nothing.
        assert due_reminders(tree.tenant, due - timedelta(minutes=31)) == 0
        assert due_reminders(tree.tenant, due - timedelta(minutes=30)) == 1
        assert due_reminders(tree.tenant, due - timedelta(minutes=20)) == 0
        assert Notification.objects.filter(kind="reminder").count() == 1
        act.due_at = due + timedelta(hours=1)
        act.save(update_fields=["due_at"])
        assert due_reminders(tree.tenant, due + timedelta(minutes=30)) == 1
    with tenant_scope(other.tenant):
        assert Notification.objects.filter(kind="reminder").count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reminder_lead_minutes": -1}, "reminder_lead_minutes"),
        ({"reminder_lead_minutes": 10081}, "reminder_lead_minutes"),
        ({"language": "fr"}, "language"),
    ],
)
def test_me_patch_rejects_bad_settings(tree_a: Any, client_for: Any, body: Any, field: str) -> None:
    response = client_for(tree_a.members["rep"]).patch("/api/v1/me/", body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())


def test_me_patch_saves_settings(tree_a: Any, client_for: Any) -> None:
    body = {"reminder_lead_minutes": 10080, "email_notifications": False, "language": "zh-hans"}
    response = client_for(tree_a.members["rep"]).patch("/api/v1/me/", body, format="json")
    assert response.status_code == 200
    assert response.json()["notifications"] == body


def test_off_track_month_target_with_gap_and_required_per_day(april: Any) -> None:
    # Member a: 100,000 a month from April; nothing won by the eve, 2026-05-15. May:
    # expected 48,387.10, pace 0 → off track; gap 100,000.00; 31 − 15 = 16 days left,
    # 100,000 / 16 = 6,250.00 a day.
    with tenant_scope(april.tenant):
        plan_publish(member=april.members["admin"], plan=_published_rep_plan(april))
        found = digest.collect_digests(april.tenant, date(2026, 5, 16))
        member = april.members["a"]
        shown = digest.render(
            Digest(
                tenant=april.tenant,
                member=member,
                local_date=date(2026, 5, 16),
                sections=found[member.pk],
            ),
            member,
            april.tenant,
        )
    [section] = [s for s in found[member.pk] if s["name"] == "targets"]
    [item] = section["items"]
    assert (item["status"], item["gap"], item["required_per_day"]) == (
        "off_track",
        "100000.00",
        "6250.00",
    )
    assert (
        "this month is off track: 100,000.00 CNY to go, 6,250.00 CNY a day over the 16 days left"
        in shown["text"]
    )


def test_a_managers_digest_adds_the_team_off_track_its_alerts_and_what_waits(april: Any) -> None:
    """Manager m of R1 (T1: a, b below); c is in R2, outside m's subtree. On 2026-05-16
    (the eve 05-15) a is off track on May (see the test above), has a new alert, an
    adjustment request and an April draft statement; c has a new alert too."""
    from incentives import commissions
    from incentives.models import PointEntry, PointRule
    from incentives.services import leaderboards_refresh
    from targets.models import TargetAdjustment, TargetSeries
    from tenancy.models import Role
    from tenancy.services import membership_create, org_unit_set_managers

    tree, day, eve = april, date(2026, 5, 16), date(2026, 5, 15)
    a, c, admin = tree.members["a"], tree.members["c"], tree.members["admin"]
    with tenant_scope(tree.tenant):
        manager = membership_create(
            tenant=tree.tenant, username="april-m", first_name="Mei", role=Role.MANAGER,
            org_unit=tree.units["r1"], start_date=date(2020, 1, 1),
        )  # fmt: skip
        org_unit_set_managers(unit=tree.units["r1"], managers=[manager])
        plan = _published_rep_plan(tree)
        plan_publish(member=admin, plan=plan)
        for owner, rule in ((a, "conversion_drop"), (c, "behind_pace")):
            Alert.objects.create(
                tenant=tree.tenant, rule=rule, subject_type="member", subject_id=owner.pk,
                period="2026-05", owner=owner, observed=1, threshold=2, severity="warning",
                opened_at=datetime(2026, 5, 15, 3, 0, tzinfo=UTC),
            )  # fmt: skip
        series = TargetSeries.objects.get(plan=plan, member=a, product_line__isnull=True)
        request = TargetAdjustment.objects.create(
            tenant=tree.tenant, series=series, period_code=0, new_value=D("900000.00"),
            target_version=series.version, reason="Lost a key account", trigger="market",
            requested_by=a, effective_from=day,
        )  # fmt: skip
        commission = commissions.plan_create(
            actor=admin, name="Sales bonus", attainment_metric="won_amount",
            bands=[["0", "0.02"]], mode="flat",
        )  # fmt: skip
        commissions.assignment_add(
            actor=admin, plan=commission, member=a, effective_from=date(2026, 1, 1)
        )
        commissions.statements_compute(tenant=tree.tenant, as_of=date(2026, 4, 30))
        point_rule = PointRule.objects.create(tenant=tree.tenant, event="lead_created", points=5)
        PointEntry.objects.create(
            tenant=tree.tenant, rule=point_rule, member=a, event="lead_created", source_type="lead",
            source_id=1, kind="award", points=5, day=eve,
            occurred_at=datetime(2026, 5, 15, 2, 0, tzinfo=UTC),
        )  # fmt: skip
        leaderboards_refresh(tenant=tree.tenant, as_of=eve)
        found = digest.collect_digests(tree.tenant, day)
        shown = digest.render(
            Digest(tenant=tree.tenant, member=manager, local_date=day, sections=found[manager.pk]),
            manager,
            tree.tenant,
        )
        rep_shown = digest.render(
            Digest(tenant=tree.tenant, member=a, local_date=day, sections=found[a.pk]),
            a,
            tree.tenant,
        )
    sections = {s["name"]: s["items"] for s in found[manager.pk]}
    assert list(sections) == [
        "team_off_track", "team_alerts", "adjustments_to_approve", "statements_to_approve"
    ]  # fmt: skip
    [off] = sections["team_off_track"]
    assert (off["id"], off["path"], off["gap"], off["required_per_day"]) == (
        a.pk, f"/api/v1/members/{a.pk}/", "100000.00", "6250.00")  # fmt: skip
    assert [(i["member"], i["rule"]) for i in sections["team_alerts"]] == [
        ("april-a", "conversion_drop")
    ]  # c (R2) is not in m's subtree
    assert [i["id"] for i in sections["adjustments_to_approve"]] == [request.pk]
    [statement] = sections["statements_to_approve"]
    assert (statement["period_start"], statement["period_end"]) == ("2026-04-01", "2026-04-30")
    assert "april-a is off track on" in shown["text"]
    assert "april-a asks to change a target of" in shown["text"]
    assert "900,000.00 CNY" in shown["text"]
    assert "april-a's statement of Sales bonus, 2026-04-01 to 2026-04-30" in shown["text"]
    # The rep: their own sections and points, none of the manager's.
    rep_sections = {s["name"]: s["items"] for s in found[a.pk]}
    assert set(rep_sections) == {"targets", "new_alerts", "points"}
    [points] = rep_sections["points"]
    assert (points["points"], points["rank"], points["board_size"]) == (5, 1, 2)
    assert "5 points yesterday; rank 1 of 2 in your unit this month" in rep_shown["text"]
    # c's manager would be the admin: no manager digest speaks of c; c has their alert.
    assert {s["name"] for s in found[c.pk]} == {"new_alerts"}
    assert admin.pk not in found


# --- reminder mails and the senders' job runs ----------------------------------------------


def _follow_up(tree: Any, due: datetime, subject: str = "Call Acme back") -> Activity:
    with tenant_scope(tree.tenant):
        return Activity.objects.create(
            tenant=tree.tenant, type="call", subject=subject, owner=tree.members["rep"], due_at=due
        )


def test_a_due_reminder_is_mailed_once_in_the_members_language(
    transactional_db: None, inbox: Inbox
) -> None:
    tree = build_tenant_tree("rmail", "Remind Mail Co")
    rep = tree.members["rep"]
    with tenant_scope(tree.tenant):
        Membership.objects.filter(pk=rep.pk).update(language="zh-hans")
    due = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
    act = _follow_up(tree, due)
    assert send_reminders((due - timedelta(minutes=31)).isoformat())["sent"] == 0
    assert send_reminders((due - timedelta(minutes=30)).isoformat()) == {
        "sent": 1, "mailed": 1, "failed": 0}  # fmt: skip
    for minutes in (28, 20, 0):
        assert send_reminders((due - timedelta(minutes=minutes)).isoformat())["sent"] == 0
    assert len(inbox.messages) == 1
    mail = inbox.messages[0]
    assert mail["To"] == rep.user.email and mail["Content-Language"] == "zh-hans"
    assert "14:00" in mail["Subject"] and "Call Acme back" in mail["Subject"]
    html = mail.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert '<html lang="zh-hans">' in html
    with tenant_scope(tree.tenant):
        [note] = Notification.objects.filter(kind="reminder")
        runs = list(JobRun.objects.filter(task_name="crm.send_reminders"))
    assert note.related_id == act.pk and note.recipient_id == rep.pk
    assert note.payload["email"] == {"status": "sent", "message_id": mail["Message-ID"]}
    # One run, for the beat that had something to do; the quiet beats record none.
    assert [(r.status, r.counts) for r in runs] == [
        ("succeeded", {"sent": 1, "mailed": 1, "failed": 0})
    ]


def test_a_member_without_e_mail_gets_the_reminder_in_the_app_only(
    transactional_db: None, inbox: Inbox
) -> None:
    tree = build_tenant_tree("rnomail", "No Mail Co")
    with tenant_scope(tree.tenant):
        Membership.objects.filter(pk=tree.members["rep"].pk).update(email_notifications=False)
    due = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    _follow_up(tree, due)
    assert send_reminders(due.isoformat()) == {"sent": 1, "mailed": 0, "failed": 0}
    assert inbox.messages == []
    with tenant_scope(tree.tenant):
        [note] = Notification.objects.filter(kind="reminder")
    assert "email" not in note.payload


def test_a_bounced_reminder_is_recorded_failed_and_stays_in_the_app(
    transactional_db: None, inbox: Inbox
) -> None:
    tree = build_tenant_tree("rbounce", "Bounce Co")
    user = tree.members["rep"].user
    user.email = BOUNCE
    user.save(update_fields=["email"])
    due = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    _follow_up(tree, due)
    assert send_reminders(due.isoformat()) == {"sent": 1, "mailed": 0, "failed": 1}
    assert send_reminders(due.isoformat()) == {"sent": 0, "mailed": 0, "failed": 0}
    assert inbox.messages == []
    with tenant_scope(tree.tenant):
        [note] = Notification.objects.filter(kind="reminder")
    assert note.payload["email"]["status"] == "failed" and "550" in note.payload["email"]["error"]


def test_two_workers_claim_a_reminder_once(transactional_db: None, inbox: Inbox) -> None:
    tree = build_tenant_tree("rtwo", "Two Co")
    due = datetime(2026, 3, 10, 6, 0, tzinfo=UTC)
    _follow_up(tree, due)
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(send_reminders(due.isoformat()))
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["sent"] for r in results) == 1 and sum(r["mailed"] for r in results) == 1
    assert len(inbox.messages) == 1


def test_the_digest_sender_records_a_job_run_per_tenant_with_something_to_send(
    rep_with_news: Any, inbox: Inbox, client_for: Any
) -> None:
    tree = rep_with_news
    quiet = build_tenant_tree("dgq", "Quiet Co")
    _prepare(tree)
    send_digests((MORNING - timedelta(minutes=10)).isoformat())  # 07:50: nothing to do yet
    send_digests(MORNING.isoformat())
    send_digests((MORNING + timedelta(minutes=10)).isoformat())  # sent: nothing left
    with tenant_scope(tree.tenant):
        [run] = JobRun.objects.filter(task_name="crm.send_digests")
    counts = {"local_date": "2026-03-10", "sent": 1, "failed": 0, "skipped": 0}
    assert (run.status, run.counts) == ("succeeded", counts)
    body = client_for(tree.members["admin"]).get("/api/v1/job-runs/").json()
    assert [r["task_name"] for r in body["results"]] == ["crm.send_digests"]
    assert client_for(quiet.members["admin"]).get("/api/v1/job-runs/").json()["results"] == []
    assert client_for(quiet.members["admin"]).get(f"/api/v1/job-runs/{run.pk}/").status_code == 404
    assert client_for(tree.members["rep"]).get("/api/v1/job-runs/").status_code == 403


def test_one_tenants_failing_send_is_recorded_and_the_others_still_send(
    rep_with_news: Any, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = rep_with_news
    other = build_tenant_tree("dg2", "Second Co")
    with tenant_scope(other.tenant):
        Activity.objects.create(
            tenant=other.tenant, type="call", subject="Theirs", owner=other.members["rep"],
            due_at=datetime(2026, 3, 8, 2, 0, tzinfo=UTC),
        )  # fmt: skip
        digest.prepare_digests(other.tenant, DAY)
    _prepare(tree)
    real = digest.send_pending

    def broken_for_the_first(tenant: Any, day: date, **kwargs: Any) -> dict[str, int]:
        if tenant.pk == tree.tenant.pk:
            raise RuntimeError("mail server on fire")
        return real(tenant, day, **kwargs)

    monkeypatch.setattr(digest, "send_pending", broken_for_the_first)
    assert send_digests(MORNING.isoformat())["sent"] == 1
    with tenant_scope(tree.tenant):
        [run] = JobRun.objects.filter(task_name="crm.send_digests")
    assert (run.status, run.error) == ("failed", "RuntimeError: mail server on fire")
    assert [m["To"] for m in inbox.messages] == [other.members["rep"].user.email]


def test_a_long_section_lists_its_first_items_and_says_how_many_more(
    rep_with_news: Any, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = rep_with_news
    _follow_up(tree, datetime(2026, 3, 7, 2, 0, tzinfo=UTC), "Email Acme")
    _follow_up(tree, datetime(2026, 3, 6, 2, 0, tzinfo=UTC), "Visit Acme")
    monkeypatch.setattr(digest, "MAX_ITEMS", 1)
    _prepare(tree)
    send_digests(MORNING.isoformat())
    [mail] = inbox.messages
    text = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Visit Acme, due on 2026-03-06" in text  # the oldest first
    assert "Email Acme" not in text and "Call Acme back" not in text
    assert "… and 2 more in the app" in text
    assert "4 things to look at" in mail["Subject"]  # 3 overdue and the stale deal
    with tenant_scope(tree.tenant):
        [note] = Notification.objects.filter(kind="digest")
    overdue = [s for s in note.payload["sections"] if s["name"] == "overdue_follow_ups"]
    assert [(len(s["items"]), s["more"]) for s in overdue] == [(1, 2)]


def test_the_send_digests_command_sends_once_with_progress(
    rep_with_news: Any, inbox: Inbox
) -> None:
    from io import StringIO

    from django.core.management import call_command

    tree = rep_with_news
    out = StringIO()
    call_command("send_digests", tenant=tree.tenant.slug, date="2026-03-10", stdout=out)
    again = StringIO()
    call_command("send_digests", tenant=tree.tenant.slug, date="2026-03-10", stdout=again)
    assert "1 members with something to say, 1 new digests" in out.getvalue()
    assert "sent 1 of 1" in out.getvalue() and "Sent 1, failed 0" in out.getvalue()
    assert "0 new digests" in again.getvalue() and "Sent 0, failed 0" in again.getvalue()
    assert len(inbox.messages) == 1


def test_sections_and_payloads_are_written_as_collected_quotes_and_all(
    rep_with_news: Any, inbox: Inbox
) -> None:
    """The digests and their notifications go to the database as one JSON document each
    batch: a subject with quotes, backslashes and other scripts comes back as it was, and
    each digest points at its own member's notification."""
    tree = rep_with_news
    rep, other = tree.members["rep"], tree.members["south-rep"]
    tricky = "Call \"Acme\" \\ back {a,b} 'now' 顶点 ü"
    with tenant_scope(tree.tenant):
        for owner in (rep, other):
            Activity.objects.create(
                tenant=tree.tenant, type="call", subject=tricky, owner=owner,
                due_at=datetime(2026, 3, 9, 2, 0, tzinfo=UTC),
            )  # fmt: skip
        collected = digest.collect_digests(tree.tenant, DAY)
    assert _prepare(tree) == {"members": 2, "prepared": 2}
    assert send_digests(MORNING.isoformat())["sent"] == 2
    with tenant_scope(tree.tenant):
        rows = list(Digest.objects.select_related("notification").order_by("member_id"))
        assert {row.member_id: row.sections for row in rows} == collected
        for row in rows:
            note = row.notification
            assert note is not None and note.recipient_id == row.member_id
            assert (note.kind, note.related_type, note.related_id) == ("digest", "digest", row.pk)
            assert note.payload["digest_id"] == row.pk
            titles = [i["title"] for s in note.payload["sections"] for i in s["items"]]
            assert tricky in titles
            assert row.status == "sent" and row.message_id
    assert len({m["Message-ID"] for m in inbox.messages}) == 2
