"""Management commands: create_tenant and seed_demo are idempotent."""

from __future__ import annotations

import io
import os
import pty
import select
import signal
import sys
import time
from io import StringIO

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import CommandError, call_command

from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
from tenancy.scope import platform_scope, tenant_scope
from tests.tenancy.processes import ROOT, database_url_for_tests, environment

pytestmark = pytest.mark.django_db

PASSWORD = "s3cret-pass-Initech"
CREATE = (
    "create_tenant",
    "--name=Initech 英尼泰克",
    "--slug=initech",
    "--admin-username=boss",
    "--admin-email=boss@initech.example",
)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input is a pipe (CI, cron, a script), and no password in the environment."""
    monkeypatch.delenv("CRM_ADMIN_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def test_create_tenant_creates_the_tenant_its_root_and_admin_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", PASSWORD)
    args = (*CREATE, "--time-zone=Asia/Shanghai", "--fiscal-year-start-month=4")
    assert "Created tenant initech" in run(*args)
    assert "Already existed: tenant initech" in run(*args)
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.fiscal_year_start_month == 4
    with tenant_scope(tenant):
        admin = Membership.objects.select_related("user").get()
        assert admin.role == Role.ADMIN and admin.user.check_password(PASSWORD)
        assert OrgUnit.objects.count() == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--fiscal-year-start-month=13", "from 1 to 12"),
        ("--time-zone=Mars/Olympus", "Unknown time zone"),
    ],
)
def test_create_tenant_rejects_bad_settings(
    option: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match=message):
        run(*CREATE, option)
    assert not Tenant.objects.filter(slug="initech").exists()


def test_a_password_on_the_command_line_is_refused_with_the_way_to_give_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match="--admin-password is no longer accepted") as error:
        run(*CREATE, "--admin-password=hunter2-on-the-command-line")
    assert "CRM_ADMIN_PASSWORD" in str(error.value)
    assert not Tenant.objects.filter(slug="initech").exists()


@pytest.mark.usefixtures("no_terminal")
def test_without_a_terminal_or_the_variable_it_says_how_to_give_the_password() -> None:
    with pytest.raises(CommandError, match="set CRM_ADMIN_PASSWORD, or run the command in"):
        run(*CREATE)
    assert not Tenant.objects.filter(slug="initech").exists()


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1", "too short"),
        ("12345678901", "entirely numeric"),
        ("password123", "too common"),
        ("boss@initech", "too similar"),
    ],
)
def test_a_weak_password_is_refused_and_nothing_is_created(
    password: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", password)
    with pytest.raises(CommandError, match=f"The password was refused: .*{reason}"):
        run(*CREATE)
    assert not Tenant.objects.filter(slug="initech").exists()


def _in_a_terminal(args: list[str], answers: list[str]) -> tuple[int, str]:
    """Run ``manage.py`` on a real pseudo-terminal, answering each prompt in turn."""
    env = environment(DEBUG="1", DATABASE_URL=database_url_for_tests())
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "manage.py", *args], env)
    output, pending, deadline = b"", list(answers), time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
        # A prompt is the last thing written; answering earlier would be flushed away.
        if pending and output.endswith(b": "):
            os.write(fd, pending.pop(0).encode() + b"\n")
    else:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.django_db(transaction=True)
def test_in_a_terminal_the_password_is_asked_twice_without_echo() -> None:
    code, output = _in_a_terminal([*CREATE], [PASSWORD, PASSWORD])
    assert code == 0, output
    assert "Password for boss:" in output and "Password (again):" in output
    assert PASSWORD not in output  # not echoed
    assert "Created tenant initech" in output
    with platform_scope("test: read the tenant the child process created"):
        admin = Membership.objects.select_related("user").get(tenant__slug="initech")
    # The child hashed with the site's hasher (this process uses a fast one for fixtures).
    assert PBKDF2PasswordHasher().verify(PASSWORD, admin.user.password)


@pytest.mark.django_db(transaction=True)
def test_in_a_terminal_two_different_answers_create_nothing() -> None:
    code, output = _in_a_terminal([*CREATE], [PASSWORD, PASSWORD + "-typo"])
    assert code != 0
    assert "The two passwords differ; nothing was created." in output
    assert not Tenant.objects.filter(slug="initech").exists()


def test_seed_demo_builds_the_demo_tenant_and_running_it_again_adds_nothing() -> None:
    first = run("seed_demo")
    assert "6 units and 19 members added (20 members in all)" in first
    second = run("seed_demo")
    assert "0 units and 0 members added (20 members in all)" in second
    tenant = Tenant.objects.get(slug="demo")
    with tenant_scope(tenant):
        depths = sorted(OrgUnit.objects.values_list("depth", flat=True))
        assert depths == [0, 1, 1, 2, 2, 2, 2]
        roles = {
            m.user.username: m.role
            for m in Membership.objects.select_related("user").filter(
                user__username__in=["demo-admin", "demo-manager", "demo-rep"]
            )
        }
        assert roles == {"demo-admin": "admin", "demo-manager": "manager", "demo-rep": "rep"}
        assert OrgUnitManager.objects.filter(membership__user__username="demo-manager").exists()
        demo_rep = Membership.objects.select_related("user").get(user__username="demo-rep")
        assert demo_rep.user.check_password("demo")
        # Targets: published won-amount and collections plans reaching the demo rep.
        from targets.models import Target, TargetPlan

        plans = TargetPlan.objects.filter(status="published")
        assert set(plans.values_list("metric", flat=True)) == {"won_amount", "collections"}
        year = Target.objects.get(
            plan__metric="won_amount", member=demo_rep, period_kind="year", product_line=None
        )
        assert year.value and year.value > 0
