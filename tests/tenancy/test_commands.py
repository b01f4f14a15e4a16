"""Management commands: create_tenant and seed_demo are idempotent."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
from tenancy.scope import tenant_scope

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_tenant_creates_the_tenant_its_root_and_admin_once() -> None:
    args = (
        "create_tenant",
        "--name=Initech 英尼泰克",
        "--slug=initech",
        "--admin-username=boss",
        "--admin-email=boss@initech.example",
        "--admin-password=s3cret-pass",
        "--time-zone=Asia/Shanghai",
        "--fiscal-year-start-month=4",
    )
    assert "Created tenant initech" in run(*args)
    assert "Already existed: tenant initech" in run(*args)
    tenant = Tenant.objects.get(slug="initech")
    assert tenant.fiscal_year_start_month == 4
    with tenant_scope(tenant):
        admin = Membership.objects.select_related("user").get()
        assert admin.role == Role.ADMIN and admin.user.check_password("s3cret-pass")
        assert OrgUnit.objects.count() == 1


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--fiscal-year-start-month=13", "from 1 to 12"),
        ("--time-zone=Mars/Olympus", "Unknown time zone"),
    ],
)
def test_create_tenant_rejects_bad_settings(option: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run(
            "create_tenant",
            "--name=X",
            "--slug=x",
            "--admin-username=x",
            "--admin-email=x@example.com",
            "--admin-password=pw",
            option,
        )
    assert not Tenant.objects.filter(slug="x").exists()


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
