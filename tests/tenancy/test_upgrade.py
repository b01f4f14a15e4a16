"""Upgrading a database made before the platform moved to ``tenancy`` (commit 25e48a2)
keeps every row of every table and its isolation.

The database is filled by its non-superuser owner at the latest state (``seed_demo``, a
second tenant from ``generate_data``, and what the demo leaves empty), then migrated back
to the pre-move state (crm 0006_nightly_run, targets 0002_series, funnel 0001_initial,
the contrib and beat apps): its tables are then as a database made before the move
holds them. Then ``manage.py migrate`` takes it to the latest state again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tenancy.db import app_role
from tenancy.rls import POLICY_NAME
from tests.tenancy.scratch_db import TENANT_TABLES_SQL, ScratchDatabase, scratch_database

PRE_MOVE = [
    ("crm", "0006_nightly_run"),
    ("targets", "0002_series"),
    ("funnel", "0001_initial"),
    ("contenttypes", None),
    ("auth", None),
    ("admin", None),
    ("sessions", None),
    ("django_celery_beat", None),
    ("token_blacklist", None),
]
#: Columns that migrations after the move renamed (same values, new names).
RENAMED_LATER = {"crm_nightlyrun": {"tasks": "steps"}}
MOVED = ["apitoken", "jobrun", "membership", "nightlyrun", "orgunit", "orgunitmanager", "tenant"]

BUILD = (
    """
from django.core.management import call_command
# Filled at the latest state by today's code, then taken back to the pre-move state:
# the tables the move concerns are as they were, whatever later migrations added.
call_command("migrate", verbosity=0)
# A fixed "today", so the data (and so the migrations back and forth) is the same on
# every day the suite runs: it once failed on one day only (a negative attainment).
call_command("seed_demo", "--as-of", "2026-06-15")
call_command(
    "generate_data", "--tenant", "globex", "--reps", "3", "--customers", "20",
    "--opportunities", "40", "--activities", "80", "--visits", "10", "--months", "3",
    "--seed", "2",
)
"""
    + """
# What the demo leaves empty, written through today's code (same tables as before the move).
from datetime import timedelta
from decimal import Decimal

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule,
)
from rest_framework_simplejwt.tokens import RefreshToken

from crm.models import Notification
from funnel.warnings import ensure_rules
from targets.models import RampSchedule, Target, TargetPlan
from targets.services import commitment_submit, target_adjust
from tenancy.api.views import issue_tokens
from tenancy.models import Membership, Tenant
from tenancy.nightly import dispatch
from tenancy.scope import platform_scope, tenant_scope
from tenancy.services import api_token_create

with platform_scope("upgrade test: find the demo tenant"):
    demo = Tenant.objects.get(slug="demo")
with tenant_scope(demo):
    members = Membership.objects.select_related("user", "tenant")
    admin = members.get(user__username="demo-admin")
    rep = members.get(user__username="demo-rep")
    ensure_rules(demo.pk)
    api_token_create(acts_as=admin, name="upgrade")
    Notification.objects.create(tenant=demo, recipient=rep, kind="note", text="upgrade")
    RampSchedule.objects.create(tenant=demo, name="new hire", steps=[0.5, 0.75, 1])
    plan = TargetPlan.objects.filter(status="published").order_by("pk").first()
    target = Target.objects.filter(plan=plan, member=rep, period_kind="quarter").order_by(
        "period_index").last()
    target_adjust(member=admin, target=target, new_value=target.value + 1000,
                  reason="upgrade test", trigger="other")
    commitment_submit(member=rep, plan=plan, period_kind="quarter", period_index=4,
                      value=Decimal(1000))
    RefreshToken(issue_tokens(rep)["refresh"]).blacklist()
# Eager tasks: the night's run, its job runs, the snapshots and the alerts.
dispatch(now=timezone.now().replace(hour=20, minute=0) - timedelta(days=1))
permission = Permission.objects.order_by("pk").first()
group = Group.objects.create(name="auditors")
group.permissions.add(permission)
user = User.objects.get(username="demo-admin")
user.groups.add(group)
user.user_permissions.add(permission)
LogEntry.objects.create(
    user=user, content_type=ContentType.objects.get(app_label="tenancy", model="tenant"),
    object_id=str(demo.pk), object_repr=demo.name, action_flag=ADDITION, change_message="",
)
session = SessionStore()
session["note"] = "upgrade"
session.create()
PeriodicTask.objects.create(
    name="upgrade", task="tenancy.dispatch_nightly",
    interval=IntervalSchedule.objects.create(every=10, period="minutes"),
)
CrontabSchedule.objects.create(minute="0", hour="2")
ClockedSchedule.objects.create(clocked_time=timezone.now())
SolarSchedule.objects.create(event="sunrise", latitude=31.23, longitude=121.47)
# Back to the state before the move (every migration after it is reversible).
call_command("migrate", "incentives", "zero", verbosity=0)
call_command("migrate", "tenancy", "zero", verbosity=0)
for app, migration in [("crm", "0006_nightly_run"), ("targets", "0002_series"),
                       ("funnel", "0001_initial")]:
    call_command("migrate", app, migration, verbosity=0)
"""
)


@pytest.fixture(scope="module")
def upgraded() -> Iterator[tuple[ScratchDatabase, dict[str, object]]]:
    """The database before and after the upgrade, with what was read before."""
    with scratch_database() as scratch:
        scratch.python(BUILD)
        before: dict[str, object] = {
            "applied": _applied(scratch),
            "content_types": _content_types(scratch),
            "tables": scratch.fingerprint(exclude=frozenset({"django_migrations"})),
            "tenants": scratch.tenant_counts(),
        }
        scratch.manage("migrate", "--noinput")
        yield scratch, before


def _applied(scratch: ScratchDatabase) -> set[tuple[str, str]]:
    with scratch.connect() as conn:
        return {
            (app, name) for app, name in conn.execute("SELECT app, name FROM django_migrations")
        }


def _content_types(scratch: ScratchDatabase) -> dict[int, tuple[str, str]]:
    with scratch.connect() as conn:
        return {
            ctid: (app, model)
            for ctid, app, model in conn.execute(
                "SELECT id, app_label, model FROM django_content_type"
            )
        }


def test_the_database_was_at_the_pre_move_state_with_two_tenants_of_data(
    upgraded: tuple[ScratchDatabase, dict[str, object]],
) -> None:
    _, before = upgraded
    applied = before["applied"]
    assert isinstance(applied, set)
    assert ("crm", "0006_nightly_run") in applied and ("targets", "0002_series") in applied
    assert not {("crm", "0007_platform_moved_to_tenancy"), ("tenancy", "0001_initial")} & applied
    tenants = before["tenants"]
    assert isinstance(tenants, dict) and len(tenants) == 2
    # seed_demo's figures (README): 20 members, 1,500 deals, 40 series of 17 periods.
    demo = max(tenants.values(), key=lambda counts: counts["crm_opportunity"])
    assert demo["crm_membership"] == 20
    assert demo["crm_opportunity"] == 1500
    assert demo["targets_targetseries"] == 40
    assert demo["targets_target"] == 40 * 17  # the period targets, a view over the series
    tables = before["tables"]
    assert isinstance(tables, dict)
    empty = sorted(name for name, (count, _) in tables.items() if count == 0)
    # Every table holds rows, so every row can be checked after the upgrade.
    assert empty == []


def test_every_row_of_every_table_is_still_there(
    upgraded: tuple[ScratchDatabase, dict[str, object]],
) -> None:
    scratch, before = upgraded
    after = scratch.fingerprint(exclude=frozenset({"django_migrations", "django_content_type"}))
    tables = before["tables"]
    assert isinstance(tables, dict)
    del tables["django_content_type"]
    assert set(after) >= set(tables)  # no table lost
    # Compare the columns the tables had before the upgrade: later migrations add columns
    # (not the move's concern), rename a few (RENAMED_LATER) and replace some, whose
    # values their own migration tests check.
    after = {name: after[name] for name in tables}
    for name, (count, digests) in tables.items():
        renames = RENAMED_LATER.get(name, {})
        now = after[name][1]
        kept = {renames.get(c, c): d for c, d in digests.items() if renames.get(c, c) in now}
        after[name] = (after[name][0], {c: now[c] for c in kept})
        tables[name] = (count, kept)
    assert after == tables  # same tables, counts and every row's values
    assert scratch.tenant_counts() == before["tenants"]


def test_the_moved_models_content_types_keep_their_ids_under_the_new_app(
    upgraded: tuple[ScratchDatabase, dict[str, object]],
) -> None:
    scratch, before = upgraded
    old = before["content_types"]
    assert isinstance(old, dict)
    expected = {
        ctid: ("tenancy" if app == "crm" and model in MOVED else app, model)
        for ctid, (app, model) in old.items()
    }
    assert _content_types(scratch) == expected
    # Every moved model is there under tenancy (models added since, e.g. invitations,
    # have content types of their own: the database was filled at the latest state).
    assert set(MOVED) <= {m for a, m in expected.values() if a == "tenancy"}


def test_all_migrations_are_applied_after_the_upgrade(
    upgraded: tuple[ScratchDatabase, dict[str, object]],
) -> None:
    scratch, _ = upgraded
    result = scratch.manage("migrate", "--check", "--noinput", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {
        ("tenancy", "0001_initial"),
        ("crm", "0007_platform_moved_to_tenancy"),
        ("targets", "0003_platform_moved_to_tenancy"),
        ("funnel", "0002_platform_moved_to_tenancy"),
    } <= _applied(scratch)


def test_each_tenant_sees_only_its_rows_through_the_app_role_after_the_upgrade(
    upgraded: tuple[ScratchDatabase, dict[str, object]],
) -> None:
    scratch, before = upgraded
    tenants = before["tenants"]
    assert isinstance(tenants, dict)
    with scratch.connect() as conn:
        tables = [row[0] for row in conn.execute(TENANT_TABLES_SQL)]
        unprotected = [
            name
            for name, enabled, forced, policy in conn.execute(
                """
                SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                       EXISTS (SELECT 1 FROM pg_policy p
                               WHERE p.polrelid = c.oid AND p.polname = %s)
                FROM pg_class c WHERE c.relname = ANY(%s) AND c.relkind = 'r'
                """,
                [POLICY_NAME, tables],
            )
            if not (enabled and forced and policy)
        ]
    assert unprotected == []

    seen = scratch.scoped_counts(sorted(tenants))
    assert (seen["user"], seen["superuser"]) == (app_role(), False)
    for tenant_id, counts in tenants.items():
        expected = {table: [counts.get(table, 0), 0] for table in tables}
        assert seen["tenants"][str(tenant_id)] == expected
