"""The nightly run (SPEC section 7): per tenant at 02:00 local time, once per night."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from targets.models import AchievementSnapshot
from tenancy import nightly
from tenancy.models import JobRun, NightlyRun, Tenant
from tenancy.scope import platform_scope, tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
UTC = ZoneInfo("UTC")


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
        {"tenant": tree_b.tenant.pk, "night": "2026-11-29", "as_of": "2026-11-28"}
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
        {"tenant": tree_a.tenant.pk, "night": "2026-11-30", "as_of": "2026-11-29"}
    ]
    assert _runs(tree_a) == [
        ("funnel.evaluate_warnings", "succeeded"),
        ("targets.snapshot_achievements", "succeeded"),
    ]
    with tenant_scope(tree_a.tenant):
        snapshots = AchievementSnapshot.objects.all()
        assert snapshots.exists()
        assert set(snapshots.values_list("as_of", flat=True)) == {date(2026, 11, 29)}
        assert NightlyRun.objects.get().night == date(2026, 11, 30)

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
    assert set(nightly.NIGHTLY_TASKS) <= set(app.tasks)


def test_the_admin_lists_only_the_tenants_own_nights_and_only_to_its_admins(
    tree_a: TenantTree, tree_b: TenantTree, django_capture_on_commit_callbacks: object
) -> None:
    from django.test import Client

    from tests.factories import PASSWORD

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
