"""Issue 18's "done when": an admin imports last year's deals and payments from a
spreadsheet in Chinese, sees the errors of three bad rows before confirming, fixes them,
imports, and decomposes a plan by ``seasonal`` from that history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from rest_framework.test import APIClient

from crm.models import Customer, Opportunity, Payment, StageChange
from targets.models import Target
from targets.services import DecomposeSettings, plan_create, plan_decompose
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.integrations.helpers import rows_of, upload, xlsx_bytes

Client = Callable[[Membership], APIClient]

DEALS_HEADER = ["外部编号", "名称", "客户", "负责人", "阶段", "金额", "创建日期", "结单日期"]
PAYMENTS_HEADER = ["外部编号", "商机", "金额", "实际回款日期"]


def test_last_years_deals_and_payments_from_a_chinese_spreadsheet_feed_a_seasonal_plan(
    tree_a: TenantTree, client_for: Client
) -> None:
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, tree_a.members["rep"], name="华东电力")
        Customer.objects.filter(pk=customer.pk).update(external_id="KH-001")
    client = client_for(tree_a.members["admin"])
    deals: list[list[Any]] = [  # the header and six rows
        DEALS_HEADER,
        ["SJ-1", "华东电力一期", "KH-001", "acme-rep", "赢单", 100000, "2025-03-01", "2025-04-20"],
        ["SJ-2", "华东电力二期", "KH-001", "acme-rep2", "赢单", 300000, "2025-05-01", "2025-06-10"],
        ["SJ-3", "华东电力三期", "KH-001", "acme-rep", "赢单", 600000, "2025-10-01", "2025-12-12"],
        # Three bad rows: a future win, an owner nobody knows, a negative amount.
        ["SJ-4", "未来的单", "KH-001", "acme-rep", "赢单", 5000, "2025-01-01", "2099-01-01"],
        ["SJ-5", "无名氏的单", "KH-001", "张三", "谈判", 5000, "2025-01-01", ""],
        ["SJ-6", "负数的单", "KH-001", "acme-rep", "报价", -5000, "2025-01-01", ""],
    ]
    response = upload(client, "opportunities", xlsx_bytes(deals), name="去年的商机.xlsx")
    assert response.status_code == 201, response.content
    job = response.json()
    assert job["counts"] == {"new": 3, "update": 0, "unchanged": 0, "error": 3}
    errors = [
        (row["number"], row["key"], row["errors"][0]["field"])
        for row in rows_of(client, job["id"], outcome="error")
    ]
    assert errors == [(5, "SJ-4", "closed_date"), (6, "SJ-5", "owner"), (7, "SJ-6", "amount")]
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 409
    with tenant_scope(tree_a.tenant):
        assert not Opportunity.objects.exists()

    # Fixed: the win dated in the past, the owner named by e-mail, the amount positive.
    deals[4][7] = "2025-12-01"
    deals[5][3] = "acme-rep2@example.com"
    deals[6][5] = 5000
    job = upload(client, "opportunities", xlsx_bytes(deals), name="去年的商机.xlsx").json()
    assert job["counts"] == {"new": 6, "update": 0, "unchanged": 0, "error": 0}
    response = client.post(f"/api/v1/imports/{job['id']}/confirm/")
    assert response.status_code == 200 and response.json()["counts"]["new"] == 6

    payments: list[list[Any]] = [
        PAYMENTS_HEADER,
        ["HK-1", "SJ-1", 100000, "2025-05-20"],
        ["HK-2", "SJ-3", 300000, "2025-12-30"],
    ]
    job = upload(client, "payments", xlsx_bytes(payments), name="回款.xlsx").json()
    assert job["counts"]["new"] == 2
    assert client.post(f"/api/v1/imports/{job['id']}/confirm/").status_code == 200

    with tenant_scope(tree_a.tenant):
        assert Opportunity.objects.count() == 6
        assert StageChange.objects.count() == 6 + 4  # four closed deals: two rows each
        assert Payment.objects.filter(status="received").count() == 2
        # The plan for FY2026, decomposed on 2026-03-15: the window is March 2025 to
        # February 2026; won amounts 100,000 in April (SJ-1), 300,000 in June (SJ-2),
        # 600,000 + 5,000 in December (SJ-3, SJ-4): seasonality from the imported history.
        admin = tree_a.members["admin"]
        plan = plan_create(
            member=admin, fiscal_year=2026, metric="won_amount", annual_total=Decimal("1005000")
        )
        plan_decompose(
            member=admin,
            plan=plan,
            settings=DecomposeSettings(time_method="seasonal"),
            as_of=date(2026, 3, 15),
        )
        root = tree_a.units["company"]

        def month(index: int) -> Decimal | None:
            return Target.objects.get(
                plan=plan, org_unit=root, product_line=None, period_kind="month", period_index=index
            ).value

        # March 2025 lies before the first imported win (20 April 2025): it has no
        # history and keeps an equal twelfth (SPEC 4 ``seasonal``); the other eleven
        # twelfths follow last year's months: April 100,000, June 300,000, December
        # 605,000 of 1,005,000, and nothing in May.
        assert month(3) == Decimal("83750.00")
        assert month(4) == Decimal("91666.67")  # 1,005,000 × 11/12 × 100,000/1,005,000
        assert month(6) == Decimal("275000.00")
        assert month(12) == Decimal("554583.33")
        assert month(5) == Decimal("0.00")
