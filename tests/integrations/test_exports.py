"""Exports (SPEC 11): streamed, within visibility and the tenant, with the list's filters,
headers in the reader's language; exported and imported again, nothing changes."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import translation
from rest_framework.test import APIClient

from crm import services
from crm.models import Customer, Opportunity, StageKind
from integrations.imports.columns import OPPORTUNITY_COLUMNS
from tenancy.dates import tenant_today
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations.helpers import rows_of, streamed, upload

Client = Callable[[Membership], APIClient]


def _csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def _xlsx(content: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(content), read_only=True)
    return [list(row) for row in workbook.worksheets[0].iter_rows(values_only=True)]


@pytest.fixture
def deals(tree_a: TenantTree, tree_b: TenantTree) -> dict[str, Opportunity]:
    made: dict[str, Opportunity] = {}
    for tree in (tree_a, tree_b):
        with tenant_scope(tree.tenant):
            admin = tree.members["admin"]
            for nickname in ("rep", "south-rep"):
                owner = tree.members[nickname]
                customer = records.customer(tree, owner, name=f"{tree.tenant.slug} 客户")
                deal, _ = services.opportunity_create(
                    member=admin,
                    customer=customer,
                    name=f"{tree.tenant.slug}-{nickname}",
                    owner=owner,
                    amount=Decimal("1234.56"),
                    expected_close_date=tenant_today(tree.tenant) + timedelta(days=30),
                )
                made[f"{tree.tenant.slug}-{nickname}"] = deal
            won = made[f"{tree.tenant.slug}-rep"]
            services.opportunity_move(
                member=admin,
                opportunity=won,
                stage=records.stage(StageKind.WON),
                closed_date=tenant_today(tree.tenant) - timedelta(days=40),
            )
            services.payment_record(
                member=admin,
                opportunity=won,
                amount=Decimal("600"),
                received_date=tenant_today(tree.tenant) - timedelta(days=20),
            )
    return made


def test_export_streams_only_the_callers_tenant_and_visibility(
    tree_a: TenantTree, deals: dict[str, Opportunity], client_for: Client
) -> None:
    response = client_for(tree_a.members["rep"]).get(
        "/api/v1/exports/opportunities/", {"format": "csv"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv(streamed(response))
    assert [row[2] for row in rows[1:]] == ["acme-rep"]
    admin_rows = _csv(
        streamed(
            client_for(tree_a.members["admin"]).get(
                "/api/v1/exports/opportunities/", {"format": "csv"}
            )
        )
    )
    assert sorted(row[2] for row in admin_rows[1:]) == ["acme-rep", "acme-south-rep"]
    assert not any("globex" in cell for row in admin_rows for cell in row)


def test_export_applies_the_lists_filters(
    tree_a: TenantTree, deals: dict[str, Opportunity], client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    owner = str(tree_a.members["south-rep"].pk)
    rows = _csv(
        streamed(client.get("/api/v1/exports/opportunities/", {"format": "csv", "owner": owner}))
    )
    assert [row[2] for row in rows[1:]] == ["acme-south-rep"]
    response = client.get("/api/v1/exports/opportunities/", {"format": "csv", "ordering": "nope"})
    assert response.status_code == 400


def test_export_xlsx_with_headers_in_the_readers_language(
    tree_a: TenantTree, deals: dict[str, Opportunity], client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    response = client.get(
        "/api/v1/exports/opportunities/", {"format": "xlsx"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 200
    rows = _xlsx(streamed(response))
    with translation.override("zh-hans"):
        assert rows[0] == [str(column.label) for column in OPPORTUNITY_COLUMNS]
    assert len(rows) == 3
    english = _xlsx(streamed(client.get("/api/v1/exports/opportunities/", {"format": "xlsx"})))
    assert english[0][:3] == ["external id", "id", "name"]


def test_export_asks_for_a_format_and_a_known_list(tree_a: TenantTree, client_for: Client) -> None:
    client = client_for(tree_a.members["admin"])
    assert client.get("/api/v1/exports/opportunities/").status_code == 400
    assert client.get("/api/v1/exports/opportunities/", {"format": "pdf"}).status_code == 400
    assert client.get("/api/v1/exports/secrets/", {"format": "csv"}).status_code == 404
    assert APIClient().get("/api/v1/exports/opportunities/", {"format": "csv"}).status_code == 401


def test_every_list_exports(
    tree_a: TenantTree, deals: dict[str, Opportunity], client_for: Client
) -> None:
    from integrations.exports import EXPORTS

    client = client_for(tree_a.members["admin"])
    for name in EXPORTS:
        for file_format in ("csv", "xlsx"):
            response = client.get(f"/api/v1/exports/{name}/", {"format": file_format})
            assert response.status_code == 200, (name, response.content)
            streamed(response)


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
@pytest.mark.parametrize(
    "kind", ["customers", "contacts", "leads", "opportunities", "payments", "members"]
)
def test_round_trip_changes_nothing(
    tree_a: TenantTree,
    deals: dict[str, Opportunity],
    client_for: Client,
    kind: str,
    file_format: str,
) -> None:
    with tenant_scope(tree_a.tenant):
        records.contact(tree_a, tree_a.members["rep"])
        records.lead(tree_a, tree_a.members["rep"])
        first = Customer.objects.order_by("pk")[0]
        Customer.objects.filter(pk=first.pk).update(external_id="CUST-1")
    client = client_for(tree_a.members["admin"])
    for language in ("en", "zh-hans"):
        exported = streamed(
            client.get(
                f"/api/v1/exports/{kind}/",
                {"format": file_format},
                HTTP_ACCEPT_LANGUAGE=language,
            )
        )
        response = upload(client, kind, exported, name=f"{kind}.{file_format}")
        assert response.status_code == 201, response.content
        outcomes = rows_of(client, response.json()["id"])
        assert outcomes, "the export has rows"
        assert {row["outcome"] for row in outcomes} == {"unchanged"}, outcomes


def test_export_query_count_does_not_grow_with_rows(
    tree_a: TenantTree,
    deals: dict[str, Opportunity],
    client_for: Client,
    django_assert_max_num_queries: Any,
) -> None:
    client = client_for(tree_a.members["admin"])
    with django_assert_max_num_queries(10):
        streamed(client.get("/api/v1/exports/opportunities/", {"format": "csv"}))
    with tenant_scope(tree_a.tenant):
        for i in range(20):
            services.opportunity_create(
                member=tree_a.members["admin"],
                customer=Customer.objects.all()[0],
                name=f"more {i}",
                owner=tree_a.members["rep"],
            )
    with django_assert_max_num_queries(10):
        rows = _csv(streamed(client.get("/api/v1/exports/opportunities/", {"format": "csv"})))
    assert len(rows) == 23
