"""Imports (SPEC 11): dry run, confirm all or nothing, bad input, visibility, isolation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from rest_framework.test import APIClient

from crm.models import Customer, Opportunity, Payment, StageChange, StageKind
from incentives.models import PointEntry
from integrations.models import ImportJob, ImportRow
from tenancy.dates import tenant_today
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations.helpers import csv_bytes, rows_of, upload, xlsx_bytes

Client = Callable[[Membership], APIClient]

DEAL_HEADER = [
    "external_id",
    "name",
    "customer",
    "owner",
    "stage",
    "amount",
    "created_at",
    "closed_date",
]


def _today(tree: TenantTree) -> date:
    return tenant_today(tree.tenant)


def _deal_rows(tree: TenantTree, count: int = 3) -> list[list[Any]]:
    year_ago = _today(tree) - timedelta(days=365)
    rows: list[list[Any]] = [DEAL_HEADER]
    for i in range(count):
        rows.append(
            [
                f"D-{i}",
                f"Deal {i}",
                "C-1",
                "acme-rep",
                "Won",
                "1000.50",
                (year_ago - timedelta(days=30)).isoformat(),
                (year_ago + timedelta(days=i)).isoformat(),
            ]
        )
    return rows


def test_admin_imports_won_deals_with_history_dry_run_first(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    response = upload(client, "opportunities", csv_bytes(_deal_rows(tree_a)))
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["status"] == "checked"
    assert job["counts"] == {"new": 3, "update": 0, "unchanged": 0, "error": 0}
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists(), "the dry run writes nothing"
    outcomes = rows_of(client, job["id"])
    assert [(r["number"], r["outcome"], r["key"]) for r in outcomes] == [
        (2, "new", "D-0"),
        (3, "new", "D-1"),
        (4, "new", "D-2"),
    ]

    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "imported"
    assert response.json()["counts"]["new"] == 3
    with tenant_scope(tree_a.tenant):
        deal = Opportunity.objects.get(external_id="D-1")
        year_ago = _today(tree_a) - timedelta(days=365)
        assert deal.closed_date == year_ago + timedelta(days=1)
        assert deal.stage.kind == StageKind.WON
        assert deal.amount == Decimal("1000.50")
        assert deal.credited_member_id == tree_a.members["rep"].pk
        assert deal.credited_org_unit_id == tree_a.units["north-1"].pk
        changes = list(StageChange.objects.filter(opportunity=deal).order_by("changed_at"))
        assert [(c.from_stage_id, c.to_stage.kind) for c in changes] == [
            (None, StageKind.OPEN),
            (changes[0].to_stage_id, StageKind.WON),
        ]
        assert changes[0].exited_at == changes[1].changed_at
        assert changes[1].exited_at is None
        assert changes[1].changed_by_id == tree_a.members["admin"].pk
        assert deal.created_at.date() == year_ago - timedelta(days=30)
        # No points unless asked.
        assert not PointEntry.objects.exists()


def test_xlsx_with_chinese_headers_is_read_like_csv(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    from django.utils import translation

    from integrations.imports.columns import OPPORTUNITY_COLUMNS

    by_key = {column.key: column for column in OPPORTUNITY_COLUMNS}
    rows = _deal_rows(tree_a, 2)
    with translation.override("zh-hans"):
        rows[0] = [str(by_key[key].label) for key in DEAL_HEADER]
    rows[1][4] = "赢单"  # the stage's Chinese name
    client = client_for(tree_a.members["admin"])
    response = upload(client, "opportunities", xlsx_bytes(rows), name="deals.xlsx")
    assert response.status_code == 201, response.content
    assert response.json()["file_format"] == "xlsx"
    assert response.json()["counts"]["new"] == 2


def test_gbk_csv_is_detected_and_read(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    rows = _deal_rows(tree_a, 1)
    rows[1][1] = "上海申达二期"
    client = client_for(tree_a.members["admin"])
    response = upload(client, "opportunities", csv_bytes(rows, "gbk"))
    assert response.status_code == 201, response.content
    assert response.json()["encoding"] == "gbk"
    client.post(f"/api/v1/imports/{response.json()['id']}/confirm/")
    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.get(external_id="D-0").name == "上海申达二期"


def test_utf8_with_bom_is_read(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    content = b"\xef\xbb\xbf" + csv_bytes(_deal_rows(tree_a, 1))
    response = upload(client_for(tree_a.members["admin"]), "opportunities", content)
    assert response.status_code == 201, response.content
    assert response.json()["encoding"] == "utf-8-sig"


def test_gbk_file_read_as_utf8_is_refused_not_garbled(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    rows = _deal_rows(tree_a, 1)
    rows[1][1] = "上海申达二期"
    response = upload(
        client_for(tree_a.members["admin"]),
        "opportunities",
        csv_bytes(rows, "gbk"),
        encoding="utf-8",
    )
    assert response.status_code == 400
    body = response.json()
    assert "encoding" in str(body) and "GBK" in str(body)
    with tenant_scope(tree_a.tenant):
        assert not ImportJob.objects.exists()


def test_a_file_that_is_not_a_table_is_a_400(tree_a: TenantTree, client_for: Client) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    response = upload(client_for(tree_a.members["admin"]), "customers", png, name="x.csv")
    assert response.status_code == 400
    assert "file" in str(response.json())
    broken_zip = b"PK\x03\x04" + b"garbage" * 100
    response = upload(client_for(tree_a.members["admin"]), "customers", broken_zip, name="x.xlsx")
    assert response.status_code == 400


def test_missing_required_column_is_a_400_naming_it(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    rows = [[cell for i, cell in enumerate(row) if i != 3] for row in _deal_rows(tree_a, 1)]
    response = upload(client_for(tree_a.members["admin"]), "opportunities", csv_bytes(rows))
    assert response.status_code == 400
    assert "owner" in str(response.json())
    with tenant_scope(tree_a.tenant):
        assert not ImportJob.objects.exists()


def test_bad_rows_are_errors_with_field_and_message(
    tree_a: TenantTree, tree_b: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    with tenant_scope(tree_b.tenant):
        other_customer = records.customer(tree_b, tree_b.members["rep"])
    today = _today(tree_a)
    rows = _deal_rows(tree_a, 1)
    rows.append(["D-0", "duplicate", "C-1", "acme-rep", "Won", "5", "", ""])  # dup ext id
    rows.append(["D-2", "nobody", "C-1", "acme-nobody", "Won", "5", "", ""])  # no such owner
    rows.append(["D-3", "negative", "C-1", "acme-rep", "Solution", "-5", "", ""])
    rows.append(["D-4", "future win", "C-1", "acme-rep", "Won", "5", "", str(today + timedelta(1))])
    rows.append(["D-5", "their customer", str(other_customer.pk), "acme-rep", "Won", "5", "", ""])
    rows.append(["D-6", "lost", "C-1", "acme-rep", "Lost", "5", "", ""])  # no reason
    rows.append(["D-7", "bad date", "C-1", "acme-rep", "Won", "5", "yesterday", ""])
    response = upload(client_for(tree_a.members["admin"]), "opportunities", csv_bytes(rows))
    assert response.status_code == 201, response.content
    assert response.json()["counts"] == {"new": 1, "update": 0, "unchanged": 0, "error": 7}
    errors = {
        row["number"]: [(e["field"], e["message"]) for e in row["errors"]]
        for row in rows_of(client_for(tree_a.members["admin"]), response.json()["id"])
        if row["outcome"] == "error"
    }
    assert errors[3] == [("external_id", "This external id is also on row 2.")]
    assert errors[4] == [("owner", "No member you can see has this username or e-mail.")]
    assert errors[5] == [("amount", "An amount cannot be negative.")]
    assert errors[6] == [("closed_date", "This date is in the future; record it on the day.")]
    assert errors[7] == [("customer", "No customer you can see has this external id or id.")]
    assert errors[8] == [("lost_reason", "Say why the deal was lost.")]
    assert errors[9] == [("created_at", "Use YYYY-MM-DD.")]
    # A job with errors cannot be confirmed: nothing is written.
    response = client_for(tree_a.members["admin"]).post(
        f"/api/v1/imports/{response.json()['id']}/confirm/"
    )
    assert response.status_code == 409
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists()


def test_manager_cannot_give_owners_outside_their_subtree(
    tree_a: TenantTree, client_for: Client
) -> None:
    rows = [
        ["name", "owner", "level"],
        ["北方客户", "acme-rep", "A"],
        ["南方客户", "acme-south-rep", "B"],
        ["by e-mail", "acme-rep2@example.com", "C"],
    ]
    client = client_for(tree_a.members["manager"])
    response = upload(client, "customers", csv_bytes(rows))
    assert response.status_code == 201, response.content
    outcomes = [(r["outcome"], r["errors"]) for r in rows_of(client, response.json()["id"])]
    assert outcomes[0] == ("new", [])
    assert outcomes[1][0] == "error" and outcomes[1][1][0]["field"] == "owner"
    assert outcomes[2] == ("new", [])


def test_a_rep_may_not_import(tree_a: TenantTree, client_for: Client) -> None:
    response = upload(client_for(tree_a.members["rep"]), "customers", csv_bytes([["name"], ["x"]]))
    assert response.status_code == 403


def test_another_tenants_ids_are_row_errors_and_their_imports_404(
    tree_a: TenantTree, tree_b: TenantTree, client_for: Client
) -> None:
    with tenant_scope(tree_b.tenant):
        theirs = records.customer(tree_b, tree_b.members["rep"])
    client_b = client_for(tree_b.members["admin"])
    job_b = upload(client_b, "customers", csv_bytes([["name"], ["B"]])).json()
    client = client_for(tree_a.members["admin"])
    response = upload(client, "customers", csv_bytes([["id", "name"], [theirs.pk, "mine now"]]))
    assert response.status_code == 201
    (row,) = rows_of(client, response.json()["id"])
    assert row["outcome"] == "error" and row["errors"][0]["field"] == "id"
    for path in ("", "rows/"):
        assert client.get(f"/api/v1/imports/{job_b['id']}/{path}").status_code == 404
    assert client.post(f"/api/v1/imports/{job_b['id']}/confirm/").status_code == 404
    listed = client.get("/api/v1/imports/").json()["results"]
    assert job_b["id"] not in [job["id"] for job in listed]
    with tenant_scope(tree_b.tenant):
        assert Customer.objects.get(pk=theirs.pk).name != "mine now"


def test_a_manager_sees_only_their_own_imports(tree_a: TenantTree, client_for: Client) -> None:
    job = upload(client_for(tree_a.members["admin"]), "customers", csv_bytes([["name"], ["x"]]))
    manager = client_for(tree_a.members["manager"])
    assert manager.get(f"/api/v1/imports/{job.json()['id']}/").status_code == 404
    assert manager.get("/api/v1/imports/").json()["results"] == []


def test_file_over_the_limit_is_a_413(tree_a: TenantTree, client_for: Client) -> None:
    content = csv_bytes([["name"]]) + b"x" * (50 * 1024 * 1024)
    response = upload(client_for(tree_a.members["admin"]), "customers", content)
    assert response.status_code == 413
    assert "MB" in str(response.json())


def test_a_failure_during_confirm_leaves_nothing(
    tree_a: TenantTree, customer_a: Customer, client_for: Client, monkeypatch: Any
) -> None:
    client = client_for(tree_a.members["admin"])
    job = upload(client, "opportunities", csv_bytes(_deal_rows(tree_a, 5))).json()
    from integrations.imports.kinds import OpportunityKind

    real = OpportunityKind._insert_stage_changes

    def fail_midway(self: OpportunityKind, params: Any) -> None:
        real(self, params)  # the deals and their stage changes are written …
        raise RuntimeError("disk full after the stage changes")  # … and then it fails

    monkeypatch.setattr(OpportunityKind, "_insert_stage_changes", fail_midway)
    client.raise_request_exception = False
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 500
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists()
        assert not StageChange.objects.exists()
        assert ImportJob.objects.get(pk=job["id"]).status == "checked"


def test_confirm_rechecks_and_refuses_when_records_changed(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    job = upload(client, "opportunities", csv_bytes(_deal_rows(tree_a, 2))).json()
    with tenant_scope(tree_a.tenant):
        Customer.objects.filter(pk=customer_a.pk).update(external_id="C-renamed")
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 409
    assert "nothing was imported" in str(response.json())
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists()


def test_updates_go_through_the_services_and_unchanged_rows_stay(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    rows = [
        ["external_id", "name", "customer", "owner", "stage", "amount"],
        ["O-1", "Open deal", "C-1", "acme-rep", "Qualification", "100"],
        ["O-2", "Stays", "C-1", "acme-rep", "Qualification", "100"],
    ]
    job = upload(client, "opportunities", csv_bytes(rows)).json()
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    rows[1][4], rows[1][5] = "Won", "250"
    job = upload(client, "opportunities", csv_bytes(rows)).json()
    assert job["counts"] == {"new": 0, "update": 1, "unchanged": 1, "error": 0}
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    with tenant_scope(tree_a.tenant):
        deal = Opportunity.objects.get(external_id="O-1")
        assert deal.stage.kind == StageKind.WON and deal.amount == Decimal("250")
        assert deal.closed_date == _today(tree_a)
        assert StageChange.objects.filter(opportunity=deal).count() == 2
        assert Opportunity.objects.get(external_id="O-2").version == 1
        assert not PointEntry.objects.exists(), "no points unless asked"


def test_points_are_awarded_when_asked(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    from incentives.models import PointRule

    with tenant_scope(tree_a.tenant):
        has_rules = PointRule.objects.exists()
    client = client_for(tree_a.members["admin"])
    rows = [
        ["external_id", "name", "customer", "owner", "stage", "amount"],
        ["O-1", "Won today", "C-1", "acme-rep", "Won", "100"],
    ]
    job = upload(client, "opportunities", csv_bytes(rows), send_events="true").json()
    assert job["send_events"] is True
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    with tenant_scope(tree_a.tenant):
        assert PointEntry.objects.exists() == has_rules


def test_payments_of_imported_deals(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    job = upload(client, "opportunities", csv_bytes(_deal_rows(tree_a, 2))).json()
    client.post(f"/api/v1/imports/{job['id']}/confirm/")
    past = (_today(tree_a) - timedelta(days=300)).isoformat()
    rows = [
        ["external_id", "opportunity", "amount", "received_date", "planned_date"],
        ["P-1", "D-0", "500", past, ""],
        ["P-2", "D-1", "-5", past, ""],
        ["P-3", "D-1", "100", "", past],
    ]
    job = upload(client, "payments", csv_bytes(rows)).json()
    assert job["counts"] == {"new": 2, "update": 0, "unchanged": 0, "error": 1}
    rows.pop(2)
    job = upload(client, "payments", csv_bytes(rows)).json()
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    with tenant_scope(tree_a.tenant):
        assert Payment.objects.get(external_id="P-1").status == "received"
        assert Payment.objects.get(external_id="P-3").status == "planned"
    rows[2][3] = _today(tree_a).isoformat()  # P-3 received today: an update
    job = upload(client, "payments", csv_bytes(rows)).json()
    assert job["counts"] == {"new": 0, "update": 1, "unchanged": 1, "error": 0}
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    with tenant_scope(tree_a.tenant):
        assert Payment.objects.get(external_id="P-3").status == "received"


def test_rows_list_pins_its_queries(
    tree_a: TenantTree, customer_a: Customer, client_for: Client, django_assert_max_num_queries: Any
) -> None:
    client = client_for(tree_a.members["admin"])
    job = upload(client, "opportunities", csv_bytes(_deal_rows(tree_a, 30))).json()
    with django_assert_max_num_queries(8):
        response = client.get(f"/api/v1/imports/{job['id']}/rows/", {"page_size": 50})
    assert len(response.json()["results"]) == 30
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/imports/")
    assert len(response.json()["results"]) == 1
    with tenant_scope(tree_a.tenant):
        assert ImportRow.objects.filter(job_id=job["id"]).count() == 30


def test_webhooks_follow_only_when_events_are_asked(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    from integrations.models import WebhookDelivery, WebhookEvent
    from tests.integrations import webhook_builders

    with tenant_scope(tree_a.tenant):
        webhook_builders.endpoint(
            tree_a, event_types=[WebhookEvent.OPPORTUNITY_CREATED, WebhookEvent.OPPORTUNITY_WON]
        )
    client = client_for(tree_a.members["admin"])
    job = upload(client, "opportunities", csv_bytes(_deal_rows(tree_a, 2))).json()
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    with tenant_scope(tree_a.tenant):
        assert not WebhookDelivery.objects.exists(), "a history import notifies nobody"
    rows = _deal_rows(tree_a, 3)[:1] + _deal_rows(tree_a, 3)[3:]
    job = upload(client, "opportunities", csv_bytes(rows), send_events="true").json()
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200
    with tenant_scope(tree_a.tenant):
        assert (
            WebhookDelivery.objects.filter(event_type=WebhookEvent.OPPORTUNITY_CREATED).count() == 1
        )
