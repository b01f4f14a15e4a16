"""Large imports run as jobs (SPEC 11): on a real worker, with progress, per tenant."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections, transaction
from django.test import override_settings
from rest_framework.test import APIClient

from crm.models import Customer, Opportunity, StageChange
from integrations.imports import services
from integrations.imports.tasks import import_check_task, import_confirm_task
from integrations.models import ImportJob
from tenancy.dates import tenant_today
from tenancy.models import JobRun, Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations.helpers import csv_bytes, upload
from tests.tenancy.test_worker import worker_queue, workers  # noqa: F401 - fixtures

Client = Callable[[Membership], APIClient]


def _deals(tree: TenantTree, count: int) -> bytes:
    year_ago = tenant_today(tree.tenant) - timedelta(days=365)
    rows: list[list[Any]] = [
        ["external_id", "name", "customer", "owner", "stage", "amount", "created_at", "closed_date"]
    ]
    for i in range(count):
        rows.append(
            [
                f"J-{i}",
                f"Deal {i}",
                "C-1",
                "acme-rep",
                "Won" if i % 2 else "Quote",
                "100",
                (year_ago - timedelta(days=10)).isoformat(),
                year_ago.isoformat() if i % 2 else "",
            ]
        )
    return csv_bytes(rows)


def _customer(tree: TenantTree) -> None:
    with tenant_scope(tree.tenant):
        customer = records.customer(tree, tree.members["rep"])
        Customer.objects.filter(pk=customer.pk).update(external_id="C-1")


@override_settings(IMPORT_SYNC_MAX_BYTES=100, IMPORT_SYNC_MAX_ROWS=10)
def test_a_large_file_is_checked_and_confirmed_by_jobs(
    tree_a: TenantTree, client_for: Client, django_capture_on_commit_callbacks: Any
) -> None:
    _customer(tree_a)
    client = client_for(tree_a.members["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, "opportunities", _deals(tree_a, 40))
    assert response.status_code == 202
    job = client.get(f"/api/v1/imports/{response.json()['id']}/").json()
    assert job["status"] == "checked", job
    assert job["counts"]["new"] == 40 and job["processed_rows"] == 40
    assert job["job_run"] is not None
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 202 and response.json()["status"] == "importing"
    job = client.get(f"/api/v1/imports/{job['id']}/").json()
    assert job["status"] == "imported" and job["counts"]["new"] == 40
    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.count() == 40
        assert StageChange.objects.count() == 60
        run = JobRun.objects.get(pk=job["job_run"])
        assert run.task_name == "integrations.import_confirm" and run.status == "succeeded"
    # A second confirmation is refused.
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 409


def test_progress_is_visible_while_the_job_runs(transactional_db: None) -> None:
    from tests.factories import build_tenant_tree

    tree = build_tenant_tree("acme", "Acme")
    with tenant_scope(tree.tenant):
        job = services.import_upload(
            member=tree.members["admin"],
            kind="customers",
            file_name="x.csv",
            content=csv_bytes([["name"], ["x"]]),
        )
    recorder = services.ProgressRecorder(job)
    reader = connections.create_connection("default")
    try:
        with tenant_scope(tree.tenant), transaction.atomic():
            ImportJob.objects.filter(pk=job.pk).update(status="checking")
            recorder(4200)  # the job's transaction is still open
            with reader.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('app.tenant_id', %s, false)", [str(tree.tenant.pk)]
                )
                cursor.execute(
                    "SELECT processed_rows FROM integrations_importprogress WHERE job_id = %s",
                    [job.pk],
                )
                assert cursor.fetchone() == (4200,)
    finally:
        recorder.close()
        reader.close()


def _wait(tenant_id: int, job_id: int, statuses: set[str], timeout: float = 90) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with tenant_scope(tenant_id):
            job = ImportJob.objects.defer("content").get(pk=job_id)
        if job.status in statuses:
            return job
        time.sleep(0.3)
    raise AssertionError(f"the import stayed {job.status}")


@pytest.mark.worker
def test_a_real_worker_checks_and_imports_within_its_tenant(
    worker_queue: str,  # noqa: F811 - fixture
    tree_a: TenantTree,
    tree_b: TenantTree,
) -> None:
    _customer(tree_a)
    with tenant_scope(tree_a.tenant):
        job = services.import_upload(
            member=tree_a.members["admin"],
            kind="opportunities",
            file_name="deals.csv",
            content=_deals(tree_a, 3000),
        )
    # Another tenant's task naming this job finds nothing (and fails), changing nothing.
    import_check_task.apply_async(args=(tree_b.tenant.pk, job.pk), queue=worker_queue)
    import_check_task.apply_async(args=(tree_a.tenant.pk, job.pk), queue=worker_queue)
    checked = _wait(tree_a.tenant.pk, job.pk, {"checked", "failed"})
    assert checked.status == "checked", checked.error
    assert checked.counts["new"] == 3000 and checked.processed_rows == 3000
    with tenant_scope(tree_b.tenant):
        failed = JobRun.objects.get(task_name="integrations.import_check")
        assert failed.status == "failed" and "DoesNotExist" in failed.error
    with tenant_scope(tree_a.tenant):
        services.import_queue_confirm(member=tree_a.members["admin"], job=checked)
    import_confirm_task.apply_async(
        args=(tree_a.tenant.pk, job.pk, tree_a.members["admin"].pk), queue=worker_queue
    )
    done = _wait(tree_a.tenant.pk, job.pk, {"imported", "failed"})
    assert done.status == "imported", done.error
    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.count() == 3000
        assert StageChange.objects.count() == 4500
        run = JobRun.objects.get(pk=done.job_run_id or 0)
        assert run.status == "succeeded" and run.counts["new"] == 3000
    with tenant_scope(tree_b.tenant):
        assert not Opportunity.objects.exists()
