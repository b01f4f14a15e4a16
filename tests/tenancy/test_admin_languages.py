"""The admin in English and Simplified Chinese (issue #16.5): every label of the apps
(sidebar, breadcrumbs, columns, actions, messages) in the reader's language, switchable
per user; people by their names, plans by their metric's name, visits by customer and
local time, stage history by stage names, amounts with separators and currency, rates
as percentages, decomposition settings as a table."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from crm import services as crm_services
from crm.models import Opportunity, Stage, StageKind, Visit
from targets.models import TargetPlan
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
ZH, EN = "zh-hans", "en"
QUOTE_TO_NEGOTIATION = "报价 Quote → 谈判 Negotiation"


def login(username: str, language: str) -> Client:
    client = Client(headers={"Accept-Language": language})
    assert client.login(username=username, password=PASSWORD)
    return client


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def column_headers(html: str) -> list[str]:
    head = html.split('id="result_list"', 1)[1].split("</thead>", 1)[0]
    cells = re.findall(r'<div class="text">(.*?)</div>', head, re.S)
    return [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells]


def plan_of(tree: TenantTree) -> TargetPlan:
    with tenant_scope(tree.tenant):
        return records.published_plan(tree)


@pytest.mark.parametrize(
    ("language", "apps"),
    [
        (ZH, ["销售漏斗", "目标", "激励", "租户管理", "模型名称"]),
        (EN, ["Funnel", "Targets", "Incentives", "Tenancy", "Model name"]),
    ],
)
def test_the_sidebar_names_every_app_in_the_readers_language(
    tree_a: TenantTree, language: str, apps: list[str]
) -> None:
    html = page(login("acme-admin", language), "/admin/")
    for name in apps:
        assert f">{name}<" in html, name


@pytest.mark.parametrize(
    ("language", "crumb", "plan_column", "metric"),
    [(ZH, "目标", "计划", "赢单金额"), (EN, "Targets", "Plan", "Won amount")],
)
def test_the_targets_list_speaks_the_readers_language_with_money_and_percentages(
    tree_a: TenantTree, language: str, crumb: str, plan_column: str, metric: str
) -> None:
    plan = plan_of(tree_a)
    html = page(login("acme-admin", language), "/admin/targets/target/?period_kind__exact=year")
    assert f'<a href="/admin/targets/">{crumb}</a>' in html  # the breadcrumb
    assert plan_column in column_headers(html)
    # The plan by its metric's name, never its key; values grouped with the currency.
    assert f"FY{plan.fiscal_year} {metric} · Annual plan" in html
    assert "won_amount" not in html
    assert "1,200,000.00 CNY" in html and "300,000.00 CNY" in html
    assert "0.0%" in html  # attainment as a percentage


def test_the_plan_list_shows_amounts_with_the_currency(tree_a: TenantTree) -> None:
    plan_of(tree_a)
    html = page(login("acme-admin", ZH), "/admin/targets/targetplan/")
    assert "1,200,000.00 CNY" in html and "1200000.00" not in html
    assert {"指标", "年度总额", "未分配"} <= set(column_headers(html))


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (ZH, ["按月分解方式", "平均分配", "按团队分解方式", "新成员爬坡", "是"]),
        (EN, ["Split over the months", "Equal", "Split over the team", "Ramp-up for new members"]),
    ],
)
def test_a_plans_decomposition_settings_read_as_a_table(
    tree_a: TenantTree, language: str, expected: list[str]
) -> None:
    plan = plan_of(tree_a)
    html = page(login("acme-admin", language), f"/admin/targets/targetplan/{plan.pk}/change/")
    table = html.split('<table class="decomposition-settings">', 1)[1].split("</table>", 1)[0]
    for text in expected:
        assert f"<td>{text}</td>" in table or f"<th>{text}</th>" in table, text
    assert "time_method" not in html and '"org_method"' not in html  # no raw JSON


def _deal_history(tree: TenantTree) -> Opportunity:
    """A deal created in 商机 Qualification, moved to 报价 Quote, then to 谈判 Negotiation."""
    with tenant_scope(tree.tenant):
        deal = records.opportunity(tree, tree.members["rep"])
        for name in ("Quote", "Negotiation"):
            deal = crm_services.opportunity_move(
                member=tree.members["rep"],
                opportunity=deal,
                stage=Stage.objects.get(pipeline=deal.pipeline_id, name=name),
            )
        return deal


@pytest.mark.parametrize(
    ("language", "rows", "headers"),
    [
        (ZH, ["（新建） → 商机 Qualification", QUOTE_TO_NEGOTIATION], ["原阶段", "新阶段"]),
        (EN, ["(new) → 商机 Qualification", QUOTE_TO_NEGOTIATION], ["From stage"]),
    ],
)
def test_stage_history_rows_read_as_stage_names(
    tree_a: TenantTree, language: str, rows: list[str], headers: list[str]
) -> None:
    deal = _deal_history(tree_a)
    html = unescape(page(login("acme-rep", language), f"/admin/crm/opportunity/{deal.pk}/change/"))
    for row in rows:
        assert row in html, row
    for header in headers:
        assert header in html, header
    assert f"{deal.pk}: None" not in html


def test_a_visit_reads_as_its_customer_and_the_tenants_local_time(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        visit = records.visit(tree_a, tree_a.members["rep"])
        # 20:33 UTC is 04:33 the next morning in Shanghai (the tenant's zone).
        Visit.objects.filter(pk=visit.pk).update(
            planned_start=datetime(2026, 12, 1, 20, 33, 30, 894263, tzinfo=UTC)
        )
    html = unescape(page(login("acme-rep", ZH), f"/admin/crm/visit/{visit.pk}/change/"))
    assert "上海申达 Shenda · 2026-12-02 04:33" in html
    assert "+00:00" not in html and "20:33:30" not in html


def _win(client: Client, deals: list[Opportunity]) -> str:
    response = client.post(
        "/admin/crm/opportunity/",
        {"action": "mark_won", ACTION_CHECKBOX_NAME: [str(deal.pk) for deal in deals]},
        follow=True,
    )
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_admin_messages_count_in_the_readers_language(tree_a: TenantTree) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deals = [records.opportunity(tree_a, rep) for _number in range(4)]
        won = Stage.objects.get(pipeline=deals[0].pipeline_id, kind=StageKind.WON)
    assert str(won) == "赢单 Won"
    assert "1 deal moved to 赢单 Won." in _win(login("acme-rep", EN), deals[:1])
    assert "2 deals moved to 赢单 Won." in _win(login("acme-rep", EN), deals[1:3])
    assert "已将 1 个商机移至“赢单 Won”阶段。" in _win(login("acme-rep", ZH), deals[3:])


@pytest.mark.parametrize(("language", "role"), [(ZH, "销售代表"), (EN, "Sales rep")])
def test_people_show_by_their_names_not_usernames(
    tree_a: TenantTree, language: str, role: str
) -> None:
    rep = tree_a.members["rep"]
    rep.user.first_name, rep.user.last_name = "Jing", "Zhou 周静"
    rep.user.save()
    with tenant_scope(tree_a.tenant):
        records.opportunity(tree_a, rep)
    html = unescape(page(login("acme-manager", language), "/admin/crm/opportunity/"))
    assert f"Jing Zhou 周静 ({role})" in html
    assert "acme-rep (" not in html
    assert "120,000.00 CNY" in html  # the amount column


def test_each_user_switches_the_admins_language_for_themselves(tree_a: TenantTree) -> None:
    chinese = Client()
    assert chinese.login(username="acme-admin", password=PASSWORD)
    response = chinese.post("/i18n/setlang/", {"language": ZH, "next": "/admin/"})
    assert response.status_code == 302
    assert ">销售漏斗<" in page(chinese, "/admin/")  # the cookie, no Accept-Language
    english = Client()
    assert english.login(username="acme-manager", password=PASSWORD)
    assert ">Funnel<" in page(english, "/admin/")


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (ZH, "赢率低于: 15.0%; 结单数至少: 5"),
        (EN, "win rate below: 15.0%; closed deals at least: 5"),
    ],
)
def test_warning_rule_thresholds_read_in_words_with_percentages(
    tree_a: TenantTree, language: str, expected: str
) -> None:
    html = unescape(page(login("acme-admin", language), "/admin/funnel/warningrule/"))
    assert expected in html
    assert '"win_rate": "0.15"' not in html


def test_the_admin_header_offers_the_other_language(tree_a: TenantTree) -> None:
    client = login("acme-rep", EN)
    html = page(client, "/admin/crm/opportunity/")
    assert 'name="language" value="zh-hans"' in html and "简体中文" in html
    response = client.post(
        "/i18n/setlang/", {"language": ZH, "next": "/admin/crm/opportunity/"}, follow=True
    )
    assert "选择 商机 来修改" in unescape(response.content.decode())


def test_the_funnel_report_shows_money_with_the_currency_and_rates_as_percentages(
    tree_a: TenantTree,
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        records.opportunity(tree_a, rep)  # open: the weighted pipeline
        lost = records.opportunity(tree_a, rep, amount=Decimal("4890900.00"))
        crm_services.opportunity_move(
            member=rep,
            opportunity=lost,
            stage=Stage.objects.get(pipeline=lost.pipeline_id, kind=StageKind.LOST),
            lost_reason="价格 Price",
        )
    html = unescape(page(login("acme-manager", ZH), "/admin/funnel/report/"))
    assert "<td>4,890,900.00 CNY</td>" in html  # the loss's amount
    assert re.search(r"个商机 · [\d,]+\.\d\d CNY · 加权 [\d,]+\.\d\d CNY", html)  # pipeline
    assert "已结单赢率: 0.0%" in html  # 0 won of 1 closed
    assert "4890900.00" not in html
