"""Last year's losses from a spreadsheet (SPEC 11, issue 18): an imported lost deal keeps
its closed date, its loss is recorded for its owner's unit at the loss (SPEC 10) and its
stage history is dated on that day, so the funnel and the review count it in that month."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from crm import services
from crm.models import Customer, Opportunity, Pipeline, StageChange, StageKind
from funnel import selectors as funnel_selectors
from tenancy.dates import tenant_today, tenant_zone
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tenancy.services import membership_update
from tests import records
from tests.factories import TenantTree
from tests.integrations.helpers import csv_bytes, rows_of, upload

Client = Callable[[Membership], APIClient]

HEADER = [
    "external_id",
    "name",
    "customer",
    "owner",
    "stage",
    "amount",
    "lost_reason",
    "created_at",
    "closed_date",
]


def _deal(
    ext: str, name: str, stage: str, amount: str, reason: str, created: str, closed: str
) -> list[str]:
    return [ext, name, "C-1", "acme-rep", stage, amount, reason, created, closed]


def _last_year(tree: TenantTree, month: int, day: int) -> date:
    return date(tenant_today(tree.tenant).year - 1, month, day)


def _noon(tree: TenantTree, day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=tenant_zone(tree.tenant))


def _confirm(client: APIClient, rows: list[list[Any]]) -> dict[str, Any]:
    job = upload(client, "opportunities", csv_bytes(rows)).json()
    assert job["counts"]["error"] == 0, rows_of(client, job["id"], outcome="error")
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 200, response.content
    return dict(response.json())


def _march_losses(tree: TenantTree, **narrow: Any) -> dict[tuple[str, str], tuple[int, Decimal]]:
    from funnel.selectors import Scope, Window

    scope = Scope(
        caller=tree.members["admin"], pipeline=Pipeline.objects.get(is_default=True), **narrow
    )
    window = Window(_last_year(tree, 3, 1), _last_year(tree, 3, 31), tree.tenant.time_zone)
    rows = funnel_selectors.loss_by_stage(scope, window, unit_at_loss=bool(narrow))
    names = {stage.pk: stage.name for stage in funnel_selectors.open_stages(scope.pipeline)}
    return {(names[row["stage"]], row["reason"]): (row["count"], row["amount"]) for row in rows}


def test_last_years_losses_keep_their_day_unit_and_history(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    # A deal lost last March (new), and one open since last January, lost in a second file.
    _confirm(
        client,
        [
            HEADER,
            _deal(
                "L-1",
                "Lost last March",
                "Lost",
                "800.00",
                "价格 price",
                _last_year(tree_a, 2, 1).isoformat(),
                _last_year(tree_a, 3, 15).isoformat(),
            ),
            _deal(
                "O-1",
                "Open since January",
                "Qualification",
                "300.00",
                "",
                _last_year(tree_a, 1, 10).isoformat(),
                "",
            ),
        ],
    )
    moved = _confirm(
        client,
        [
            HEADER,
            _deal(
                "O-1",
                "Open since January",
                "Lost",
                "300.00",
                "timing",
                _last_year(tree_a, 1, 10).isoformat(),
                _last_year(tree_a, 3, 20).isoformat(),
            ),
        ],
    )
    assert moved["counts"] == {"new": 0, "update": 1, "unchanged": 0, "error": 0}
    north_1 = tree_a.units["north-1"]
    with tenant_scope(tree_a.tenant):
        qualification = records.stage(StageKind.OPEN)
        lost = records.stage(StageKind.LOST)
        for ext, created, closed, reason in (
            ("L-1", _last_year(tree_a, 2, 1), _last_year(tree_a, 3, 15), "价格 price"),
            ("O-1", _last_year(tree_a, 1, 10), _last_year(tree_a, 3, 20), "timing"),
        ):
            deal = Opportunity.objects.get(external_id=ext)
            assert (deal.stage_id, deal.closed_date, deal.lost_reason) == (lost.pk, closed, reason)
            assert deal.credited_org_unit_id == north_1.pk, "the owner's unit at the loss"
            assert deal.credited_member_id is None, "a loss credits no member"
            assert deal.stage_entered_at == _noon(tree_a, closed)
            history = list(
                StageChange.objects.filter(opportunity=deal)
                .order_by("changed_at", "pk")
                .values_list("from_stage_id", "to_stage_id", "changed_at", "exited_at")
            )
            assert history == [
                (None, qualification.pk, _noon(tree_a, created), _noon(tree_a, closed)),
                (qualification.pk, lost.pk, _noon(tree_a, closed), None),
            ], ext
        # The rep moves to another unit afterwards: last year's losses stay with North 1.
        membership_update(membership=tree_a.members["rep"], org_unit=tree_a.units["south"])
        expected = {
            ("Qualification", "价格 price"): (1, Decimal("800.00")),
            ("Qualification", "timing"): (1, Decimal("300.00")),
        }
        assert _march_losses(tree_a) == expected
        assert _march_losses(tree_a, org_unit=north_1) == expected
        assert _march_losses(tree_a, org_unit=tree_a.units["south"]) == {}


def test_a_loss_is_not_dated_before_the_deal_or_its_stage_nor_in_the_future(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    client = client_for(tree_a.members["admin"])
    today = tenant_today(tree_a.tenant)
    _confirm(
        client,
        [
            HEADER,
            _deal(
                "O-1",
                "Open since January",
                "Qualification",
                "300.00",
                "",
                _last_year(tree_a, 1, 10).isoformat(),
                "",
            ),
            _deal(
                "O-2",
                "Moved on today",
                "Qualification",
                "300.00",
                "",
                _last_year(tree_a, 1, 10).isoformat(),
                "",
            ),
        ],
    )
    with tenant_scope(tree_a.tenant):
        services.opportunity_move(
            member=tree_a.members["admin"],
            opportunity=Opportunity.objects.get(external_id="O-2"),
            stage=records.stage(StageKind.OPEN, order=2),
        )
    rows = [
        HEADER,
        _deal(
            "O-1",
            "Open since January",
            "Lost",
            "300.00",
            "timing",
            _last_year(tree_a, 1, 10).isoformat(),
            _last_year(tree_a, 1, 9).isoformat(),
        ),
        _deal(
            "O-2",
            "Moved on today",
            "Lost",
            "300.00",
            "timing",
            _last_year(tree_a, 1, 10).isoformat(),
            _last_year(tree_a, 3, 20).isoformat(),
        ),
        _deal(
            "L-3",
            "Lost tomorrow",
            "Lost",
            "300.00",
            "timing",
            _last_year(tree_a, 1, 10).isoformat(),
            (today + timedelta(days=1)).isoformat(),
        ),
        _deal(
            "L-4",
            "Lost before made",
            "Lost",
            "300.00",
            "timing",
            _last_year(tree_a, 3, 10).isoformat(),
            _last_year(tree_a, 3, 9).isoformat(),
        ),
    ]
    job = upload(client, "opportunities", csv_bytes(rows)).json()
    errors = {
        row["key"]: [(e["field"], e["message"]) for e in row["errors"]]
        for row in rows_of(client, job["id"], outcome="error")
    }
    assert errors == {
        "O-1": [("closed_date", "A deal closes on or after the day it was created.")],
        "O-2": [
            (
                "closed_date",
                f"The deal entered its current stage on {today.isoformat()}: "
                "it closes on or after.",
            )
        ],
        "L-3": [("closed_date", "This date is in the future; record it on the day.")],
        "L-4": [("closed_date", "A deal closes on or after the day it was created.")],
    }


def test_a_manager_cannot_date_a_loss_in_the_past(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    manager = client_for(tree_a.members["manager"])
    rows = [
        HEADER,
        _deal(
            "L-1",
            "Lost last March",
            "Lost",
            "800.00",
            "price",
            "",
            _last_year(tree_a, 3, 15).isoformat(),
        ),
    ]
    job = upload(manager, "opportunities", csv_bytes(rows)).json()
    assert job["counts"]["error"] == 1
    [row] = rows_of(manager, job["id"], outcome="error")
    assert [e["field"] for e in row["errors"]] == ["closed_date"]


def test_a_file_of_new_deals_is_confirmed_from_its_checked_values_and_rechecked(
    tree_a: TenantTree, customer_a: Customer, client_for: Client
) -> None:
    from integrations.models import ImportJob, ImportRow

    client = client_for(tree_a.members["admin"])
    rows = [
        HEADER,
        _deal("N-1", "New", "Won", "100.00", "", _last_year(tree_a, 2, 1).isoformat(), ""),
        _deal("N-2", "New too", "Qualification", "", "", "", ""),
    ]
    job = upload(client, "opportunities", csv_bytes(rows)).json()
    with tenant_scope(tree_a.tenant):
        assert ImportJob.objects.get(pk=job["id"]).staged
        kept = ImportRow.objects.get(job_id=job["id"], number=2).values
    assert kept["refs"] == {"customer": "C-1", "owner": "acme-rep", "stage": "Won"}
    assert kept["values"]["customer"] == customer_a.pk
    # Meanwhile someone records a deal with the file's external id: nothing is imported.
    with tenant_scope(tree_a.tenant):
        taken = records.opportunity(tree_a, tree_a.members["rep"])
        Opportunity.objects.filter(pk=taken.pk).update(external_id="N-2")
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 409
    assert "1 row(s) fail now" in str(response.json())
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.filter(external_id="N-1").exists()
        Opportunity.objects.filter(pk=taken.pk).update(external_id=None)
        # The rep leaves the tenant's visible members (deactivated owners stay visible,
        # so the username is changed): the owner cell names nobody now.
        user = tree_a.members["rep"].user
        user.username = "acme-rep-renamed"
        user.save(update_fields=["username"])
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 409
    assert "2 row(s) fail now" in str(response.json())
    with tenant_scope(tree_a.tenant):
        user.username = "acme-rep"
        user.save(update_fields=["username"])
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 200, response.content
    with tenant_scope(tree_a.tenant):
        won = Opportunity.objects.get(external_id="N-1")
        assert won.closed_date == tenant_today(tree_a.tenant)
        assert won.credited_member_id == tree_a.members["rep"].pk
        assert won.created_at == _noon(tree_a, _last_year(tree_a, 2, 1))
        opened = Opportunity.objects.get(external_id="N-2")
        assert opened.closed_date is None and opened.amount is None
        assert StageChange.objects.filter(opportunity=opened).count() == 1
        # Imported: neither the file nor a copy of its rows' values stays behind.
        imported = ImportJob.objects.get(pk=job["id"])
        assert imported.content == b"" and not imported.staged
        assert ImportRow.objects.filter(job=imported).count() == 2
        assert not ImportRow.objects.filter(job=imported, values__isnull=False).exists()


def test_the_set_based_insert_runs_under_row_level_security(
    tree_a: TenantTree, tree_b: TenantTree, customer_a: Customer
) -> None:
    """Deals written for tenant A while tenant B's scope is active are refused by the
    database (the raw inserts run on the request's connection, as the app role)."""
    from django.db import ProgrammingError, transaction

    from integrations.imports import kinds

    with tenant_scope(tree_a.tenant):
        kind = kinds.get_kind("opportunities")
        ctx = kinds.Context(member=tree_a.members["admin"], tenant=tree_a.tenant)
        row = kinds.Row(
            number=2,
            values={
                "external_id": "X-1",
                "name": "Cross",
                "customer": customer_a.pk,
                "owner": tree_a.members["rep"].pk,
                "stage": records.stage(StageKind.OPEN).pk,
            },
        )
        kind.load_references(ctx, [row], {"owner"})
    with tenant_scope(tree_b.tenant):
        with pytest.raises(ProgrammingError, match="row-level security"), transaction.atomic():
            kind.create(ctx, [row])
        assert not Opportunity.objects.exists()
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists()
        kind.create(ctx, [row])
        assert Opportunity.objects.get(external_id="X-1").tenant_id == tree_a.tenant.pk


def test_an_external_id_taken_between_the_recheck_and_the_write_is_a_conflict(
    tree_a: TenantTree, customer_a: Customer, client_for: Client, monkeypatch: Any
) -> None:
    from integrations.imports.kinds import OpportunityKind

    client = client_for(tree_a.members["admin"])
    rows = [HEADER, _deal("N-1", "New", "Qualification", "", "", "", "")]
    job = upload(client, "opportunities", csv_bytes(rows)).json()
    with tenant_scope(tree_a.tenant):
        taken = records.opportunity(tree_a, tree_a.members["rep"])
        Opportunity.objects.filter(pk=taken.pk).update(external_id="N-1")
    # The recheck ran just before another request took the external id.
    monkeypatch.setattr(OpportunityKind, "used_external_ids", lambda self, ctx, exts: set())
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 409, response.content
    assert "changed while importing" in str(response.json())
    with tenant_scope(tree_a.tenant):
        assert list(Opportunity.objects.values_list("pk", flat=True)) == [taken.pk]
        assert StageChange.objects.filter(opportunity__external_id="N-1").count() == 1
