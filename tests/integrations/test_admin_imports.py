"""Imports and exports in the admin: upload and dry run, confirm, visibility, tenants."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from crm.models import Customer
from integrations.models import ImportJob
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree
from tests.integrations.helpers import csv_bytes, import_job, streamed

pytestmark = pytest.mark.django_db
IMPORTS = "/admin/integrations/importjob/"


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def _upload(client: Client, rows: list[list[str]]) -> object:
    return client.post(
        f"{IMPORTS}add/",
        {
            "kind": "customers",
            "encoding": "auto",
            "upload": SimpleUploadedFile("customers.csv", csv_bytes(rows)),
        },
    )


def test_admin_uploads_sees_the_errors_then_confirms(tree_a: TenantTree) -> None:
    client = login("acme-admin")
    rows = [["name", "owner", "level"], ["甲公司", "acme-rep", "A"], ["乙公司", "nobody", "Z"]]
    response = _upload(client, rows)
    assert response.status_code == 302, response.content.decode()[:2000]  # type: ignore[attr-defined]
    with tenant_scope(tree_a.tenant):
        job = ImportJob.objects.get()
        assert job.counts == {"new": 1, "update": 0, "unchanged": 0, "error": 1}
        assert not Customer.objects.exists()
    page = client.get(f"{IMPORTS}{job.pk}/change/").content.decode()
    assert "No member you can see has this username or e-mail." in page
    assert "Choose one of: A, B, C." in page
    # With errors the action refuses and writes nothing.
    client.post(IMPORTS, {"action": "confirm", ACTION_CHECKBOX_NAME: [str(job.pk)]})
    with tenant_scope(tree_a.tenant):
        assert not Customer.objects.exists()
    rows.pop()
    _upload(client, rows)
    with tenant_scope(tree_a.tenant):
        fixed = ImportJob.objects.latest("pk")
    response = client.post(IMPORTS, {"action": "confirm", ACTION_CHECKBOX_NAME: [str(fixed.pk)]})
    assert response.status_code == 302
    with tenant_scope(tree_a.tenant):
        assert list(Customer.objects.values_list("name", "owner_id")) == [
            ("甲公司", tree_a.members["rep"].pk)
        ]


def test_a_missing_column_is_a_form_error(tree_a: TenantTree) -> None:
    response = _upload(login("acme-admin"), [["level"], ["A"]])
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "required column" in response.content.decode()  # type: ignore[attr-defined]
    with tenant_scope(tree_a.tenant):
        assert not ImportJob.objects.exists()


def test_another_tenants_import_is_not_shown(tree_a: TenantTree, tree_b: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        job = import_job(tree_a)
    intruder = login("globex-admin")
    own_page = login("acme-admin").get(IMPORTS).content.decode()
    assert f"{IMPORTS}{job.pk}/change/" in own_page
    assert f"{IMPORTS}{job.pk}/change/" not in intruder.get(IMPORTS).content.decode()
    assert intruder.get(f"{IMPORTS}{job.pk}/change/").status_code in (302, 404)
    intruder.post(IMPORTS, {"action": "confirm", ACTION_CHECKBOX_NAME: [str(job.pk)]})
    with tenant_scope(tree_a.tenant):
        assert ImportJob.objects.get(pk=job.pk).status == "checked"
        assert not Customer.objects.exists()


def test_a_rep_cannot_upload(tree_a: TenantTree) -> None:
    assert login("acme-rep").get(f"{IMPORTS}add/").status_code == 403


def test_changelist_export_action_streams_the_visible_selected_rows(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_a.tenant):
        mine = records.opportunity(tree_a, tree_a.members["rep"])
        theirs = records.opportunity(tree_a, tree_a.members["south-rep"])
    with tenant_scope(tree_b.tenant):
        other_tenant = records.opportunity(tree_b, tree_b.members["rep"])
    response = login("acme-rep").post(
        "/admin/crm/opportunity/",
        {
            "action": "export_csv",
            ACTION_CHECKBOX_NAME: [str(mine.pk), str(theirs.pk), str(other_tenant.pk)],
        },
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(streamed(response).decode("utf-8-sig"))))
    assert [row[1] for row in rows[1:]] == [str(mine.pk)]
    response = login("acme-admin").post(
        "/admin/crm/visit/", {"action": "export_xlsx", ACTION_CHECKBOX_NAME: ["1"]}
    )
    assert response.status_code in (200, 302)
