"""Commission plans and statements (SPEC section 6): the worked case, bad input, the
approval chain and its races, clawbacks, and a constant number of queries."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm import services as crm_services
from crm.models import StageKind
from incentives import commissions
from incentives.models import (
    CommissionPlan,
    CommissionPlanVersion,
    CommissionStatement,
    LineKind,
    StatementLine,
)
from targets.models import TargetSeries
from tenancy.dates import tenant_today
from tenancy.errors import Conflict, Forbidden, Invalid, NotFound
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db

WORKED_BANDS = [["0", "0.02"], ["0.8", "0.04"], ["1", "0.06"], ["1.2", "0.10"]]


def set_month_target(tree: TenantTree, member: Membership, day: date, value: Decimal) -> None:
    plan = records.published_plan(tree, fiscal_year=day.year)
    months = [Decimal(0)] * 12
    months[day.month - 1] = value
    TargetSeries.objects.filter(plan=plan, member=member, product_line__isnull=True).update(
        months=months
    )


def win(tree: TenantTree, member: Membership, amount: str) -> Any:
    deal = records.opportunity(tree, member, amount=Decimal(amount))
    return crm_services.opportunity_move(
        member=member, opportunity=deal, stage=records.stage(StageKind.WON)
    )


def worked_case(tree: TenantTree, mode: str = "marginal") -> tuple[CommissionPlan, date]:
    """SPEC section 6's worked case: T 100,000, A = B = 130,000."""
    rep = tree.members["rep"]
    today = tenant_today(tree.tenant)
    set_month_target(tree, rep, today, Decimal("100000.00"))
    win(tree, rep, "130000.00")
    plan = commissions.plan_create(
        actor=tree.members["admin"], name=f"Sales {mode}", attainment_metric="won_amount",
        bands=WORKED_BANDS, mode=mode,
    )  # fmt: skip
    commissions.assignment_add(
        actor=tree.members["admin"], plan=plan, member=rep, effective_from=date(2026, 1, 1)
    )
    return plan, today


def statement_of(member: Membership, plan: CommissionPlan) -> CommissionStatement:
    return CommissionStatement.objects.get(member=member, plan=plan)


@pytest.mark.parametrize(("mode", "amount"), [("marginal", "4600.00"), ("flat", "13000.00")])
def test_the_worked_case_of_the_spec(tree_a: TenantTree, mode: str, amount: str) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a, mode)
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        statement = statement_of(rep, plan)
        line = statement.lines.get()
        sentence = commissions.line_explanation(line)
    assert (statement.status, statement.total, line.amount) == (
        "draft",
        Decimal(amount),
        Decimal(amount),
    )
    assert line.inputs["T"] == "100000.00" and line.inputs["A"] == "130000.00"
    assert line.inputs["plan_version"] == 1
    if mode == "marginal":
        assert [part["payout"] for part in line.inputs["bands_reached"]] == [
            "1600", "800", "1200", "1000"]  # fmt: skip
        assert "130.00 %" in sentence and "4600.00" in sentence
    else:
        assert line.inputs["rates"] == ["0.10"]


def test_a_member_without_a_target_gets_the_first_rate_and_the_line_says_so(
    tree_a: TenantTree,
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        set_month_target(tree_a, rep, today, Decimal(0))
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        line = statement_of(rep, plan).lines.get()
        assert line.amount == Decimal("2600.00")  # 2 % × 130,000
        assert "No target" in commissions.line_explanation(line)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bands": [["0", "0.02"], ["0.8", "0.04"], ["0.5", "0.06"]]}, "bands.2"),
        ({"bands": [["0.1", "0.02"]]}, "bands.0"),
        ({"bands": [["0", "-0.02"]]}, "bands.0"),
        ({"bands": []}, "bands"),
        ({"cap": "-1"}, "cap"),
        ({"mode": "steep"}, "mode"),
        ({"attainment_metric": "happiness"}, "attainment_metric"),
        ({"multipliers": {"999999": "2"}}, "multipliers.999999"),
        ({"multipliers": {"1": "-2"}}, "multipliers.1"),
    ],
)
def test_bad_plan_terms_are_refused_naming_the_field_and_nothing_is_written(
    tree_a: TenantTree, changes: dict[str, Any], field: str
) -> None:
    with tenant_scope(tree_a.tenant):
        terms: dict[str, Any] = {"attainment_metric": "won_amount", "bands": WORKED_BANDS}
        with pytest.raises(Invalid) as raised:
            commissions.plan_create(
                actor=tree_a.members["admin"], name="Bad", **{**terms, **changes}
            )
        assert field in raised.value.message_dict
        assert CommissionPlan.objects.count() == 0


def test_a_multiplier_for_another_tenants_product_line_is_refused(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_b.tenant):
        theirs = records.product_line(tree_b)
    with tenant_scope(tree_a.tenant):
        ours = records.product_line(tree_a)
        with pytest.raises(Invalid) as raised:
            commissions.plan_create(
                actor=tree_a.members["admin"], name="New lines", attainment_metric="won_amount",
                bands=WORKED_BANDS, multipliers={str(ours.pk): "1.5", str(theirs.pk): "2"},
            )  # fmt: skip
        assert list(raised.value.message_dict) == [f"multipliers.{theirs.pk}"]


def test_a_change_of_terms_makes_a_new_version_and_a_rename_does_not(tree_a: TenantTree) -> None:
    admin = tree_a.members["admin"]
    with tenant_scope(tree_a.tenant):
        plan, _today = worked_case(tree_a)
        plan = commissions.plan_update(actor=admin, plan=plan, name="Renamed")
        plan = commissions.plan_update(actor=admin, plan=plan, cap="3000")
        versions = list(CommissionPlanVersion.objects.values_list("version", "terms__cap"))
        with pytest.raises(Forbidden):
            commissions.plan_update(actor=tree_a.members["manager"], plan=plan, cap="1")
    assert versions == [(1, None), (2, "3000")]


def test_a_plan_assigned_twice_to_one_member_for_the_same_period_is_refused(
    tree_a: TenantTree,
) -> None:
    admin = tree_a.members["admin"]
    with tenant_scope(tree_a.tenant):
        plan, _today = worked_case(tree_a)  # the rep from 1 January 2026, open-ended
        with pytest.raises(Invalid):
            commissions.assignment_add(
                actor=admin, plan=plan, org_unit=tree_a.units["north"],
                effective_from=date(2026, 6, 1), effective_to=date(2026, 6, 30),
            )  # fmt: skip
        # The south unit does not contain the rep: fine.
        commissions.assignment_add(
            actor=admin, plan=plan, org_unit=tree_a.units["south"], effective_from=date(2026, 6, 1)
        )
        assert plan.assignments.count() == 2


def test_the_capped_payout_pays_the_cap(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.plan_update(actor=tree_a.members["admin"], plan=plan, cap="3000.00")
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        line = statement_of(tree_a.members["rep"], plan).lines.get()
    assert (line.amount, line.inputs["capped"], line.inputs["plan_version"]) == (
        Decimal("3000.00"), True, 2)  # fmt: skip


def test_approval_needs_a_manager_above_and_another_subtree_is_not_found(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.assignment_add(
            actor=m["admin"], plan=plan, member=m["south-rep"], effective_from=date(2026, 1, 1)
        )
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        ours, south = statement_of(m["rep"], plan), statement_of(m["south-rep"], plan)
        with pytest.raises(NotFound):
            commissions.statement_approve(actor=m["manager"], statement_id=south.pk)
        with pytest.raises(Forbidden):
            commissions.statement_approve(actor=m["rep"], statement_id=ours.pk)
        with pytest.raises(Forbidden):
            commissions.statement_lock(actor=m["manager"], statement_id=ours.pk)
        with pytest.raises(Conflict):
            commissions.statement_lock(actor=m["admin"], statement_id=ours.pk)  # not approved
        approved = commissions.statement_approve(actor=m["manager"], statement_id=ours.pk)
        locked = commissions.statement_lock(actor=m["admin"], statement_id=ours.pk)
        assert (approved.approved_by_id, locked.status) == (m["manager"].pk, "locked")
    with tenant_scope(tree_b.tenant), pytest.raises(NotFound):
        commissions.statement_approve(actor=tree_b.members["admin"], statement_id=ours.pk)


def test_an_approved_statement_is_never_recomputed(tree_a: TenantTree) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        statement = statement_of(m["rep"], plan)
        commissions.statement_approve(actor=m["manager"], statement_id=statement.pk)
        win(tree_a, m["rep"], "50000.00")
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        with pytest.raises(Conflict):
            commissions.statement_recompute(
                actor=m["admin"], statement_id=statement.pk, as_of=today
            )
        assert statement.lines.get().amount == Decimal("4600.00")


def test_a_deal_reopened_after_the_lock_is_clawed_back_in_the_next_draft_once(
    tree_a: TenantTree,
) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        paid = statement_of(m["rep"], plan)
        commissions.statement_approve(actor=m["manager"], statement_id=paid.pk)
        commissions.statement_lock(actor=m["admin"], statement_id=paid.pk)
        next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 5)
        assert commissions.statements_clawback(tenant=tree_a.tenant, as_of=next_month)[
            "adjustments"] == 0  # fmt: skip
        deal = records.Opportunity.objects.get(owner=m["rep"])
        crm_services.opportunity_move(
            member=m["manager"], opportunity=deal, stage=records.stage(), reopen=True
        )
        first = commissions.statements_clawback(tenant=tree_a.tenant, as_of=next_month)
        second = commissions.statements_clawback(tenant=tree_a.tenant, as_of=next_month)
        adjustment = StatementLine.objects.get(kind=LineKind.ADJUSTMENT)
        draft = adjustment.statement
        paid.refresh_from_db()
    assert (first["adjustments"], second["adjustments"]) == (1, 0)
    # A = 0 now, with the recorded T of 100,000: 2 % of 0 = 0, so all 4,600.00 comes back.
    assert adjustment.amount == Decimal("-4600.00") and adjustment.corrects_id == paid.pk
    assert (draft.status, draft.period_start, draft.total) == (
        "draft",
        next_month.replace(day=1),
        Decimal("-4600.00"),
    )
    assert (paid.status, paid.total) == ("locked", Decimal("4600.00"))


def test_a_dispute_is_answered_with_an_adjustment_or_a_rejection(tree_a: TenantTree) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        statement = statement_of(m["rep"], plan)
        line = statement.lines.get()
        with pytest.raises(Forbidden):
            commissions.line_dispute(actor=m["manager"], statement_id=statement.pk,
                                     line_id=line.pk, comment="?")  # fmt: skip
        dispute = commissions.line_dispute(
            actor=m["rep"], statement_id=statement.pk, line_id=line.pk, comment="A deal is missing"
        )
        answered = commissions.dispute_resolve(
            actor=m["manager"], statement_id=statement.pk, dispute_id=dispute.pk, accept=True,
            amount=Decimal("250.00"), reason="The Hangzhou deal was booked late", as_of=today,
        )  # fmt: skip
        with pytest.raises(Conflict):
            commissions.dispute_resolve(
                actor=m["manager"], statement_id=statement.pk, dispute_id=dispute.pk,
                accept=False, reason="again", as_of=today,
            )  # fmt: skip
        statement.refresh_from_db()
        second = commissions.line_dispute(
            actor=m["rep"], statement_id=statement.pk, line_id=line.pk, comment="More"
        )
        rejected = commissions.dispute_resolve(
            actor=m["manager"], statement_id=statement.pk, dispute_id=second.pk, accept=False,
            reason="Nothing else is missing", as_of=today,
        )  # fmt: skip
    assert answered.status == "accepted" and answered.adjustment is not None
    assert statement.total == Decimal("4850.00")
    assert rejected.status == "rejected"


def test_computing_statements_takes_the_same_queries_for_few_or_many_members(
    tree_a: TenantTree,
) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.assignment_add(
            actor=m["admin"],
            plan=plan,
            org_unit=tree_a.units["south"],
            effective_from=date(2026, 1, 1),
        )
        with CaptureQueriesContext(connection) as two:
            commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        for name in ("rep2", "manager"):
            commissions.assignment_add(
                actor=m["admin"], plan=plan, member=m[name], effective_from=date(2026, 1, 1)
            )
        CommissionStatement.objects.all().delete()
        with CaptureQueriesContext(connection) as four:
            commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        assert CommissionStatement.objects.count() == 4
    assert len(four) == len(two)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["approve", "lock"])
def test_twenty_concurrent_approvals_or_locks_one_succeeds(tree_a: TenantTree, action: str) -> None:
    m = tree_a.members
    with tenant_scope(tree_a.tenant):
        plan, today = worked_case(tree_a)
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        statement = statement_of(m["rep"], plan)
        if action == "lock":
            commissions.statement_approve(actor=m["manager"], statement_id=statement.pk)
    call: Callable[..., Any] = (
        commissions.statement_approve if action == "approve" else commissions.statement_lock
    )
    actor = m["manager"] if action == "approve" else m["admin"]
    barrier = threading.Barrier(20)
    results: list[Any] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            with tenant_scope(tree_a.tenant):
                results.append(call(actor=actor, statement_id=statement.pk).status)
        except Exception as error:  # noqa: BLE001 - counted below
            results.append(type(error).__name__)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    expected = "approved" if action == "approve" else "locked"
    assert sorted(results) == ["Conflict"] * 19 + [expected]


@pytest.mark.parametrize(
    ("mode", "multiplier", "base", "amount"),
    [
        # B = 100,000 × 1.5 + 30,000 = 180,000; the bands read A = 130,000 (a = 1.3):
        # 1,600 + 800 + 1,200 + 1,000 = 4,600 over A, so 180,000 / 130,000 × 4,600 =
        # 6,369.2307… → 6,369.23; flat: 10 % × 180,000 = 18,000.00.
        ("marginal", "1.5", "180000.00", "6369.23"),
        ("flat", "1.5", "180000.00", "18000.00"),
        # B = 100,000 × 0.5 + 30,000 = 80,000: 80,000 / 130,000 × 4,600 = 2,830.7692… →
        # 2,830.77; flat 10 % × 80,000 = 8,000.00 (the band is still a's, 130 %).
        ("marginal", "0.5", "80000.00", "2830.77"),
        ("flat", "0.5", "80000.00", "8000.00"),
        # A multiplier of 0 takes the line out of B: flat 10 % × 30,000 = 3,000.00.
        ("flat", "0", "30000.00", "3000.00"),
    ],
)
def test_multipliers_change_the_base_by_product_line_and_never_the_attainment(
    tree_a: TenantTree, mode: str, multiplier: str, base: str, amount: str
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        set_month_target(tree_a, rep, today, Decimal("100000.00"))
        cloud = records.product_line(tree_a)
        deal = records.opportunity(tree_a, rep, amount=Decimal("100000.00"))
        type(deal).objects.filter(pk=deal.pk).update(product_line=cloud)
        deal.refresh_from_db()
        crm_services.opportunity_move(
            member=rep, opportunity=deal, stage=records.stage(StageKind.WON)
        )
        win(tree_a, rep, "30000.00")  # no product line: counts once
        plan = commissions.plan_create(
            actor=tree_a.members["admin"], name="Cloud push", attainment_metric="won_amount",
            bands=WORKED_BANDS, mode=mode, multipliers={str(cloud.pk): multiplier},
        )  # fmt: skip
        commissions.assignment_add(
            actor=tree_a.members["admin"], plan=plan, member=rep, effective_from=date(2026, 1, 1)
        )
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        line = statement_of(rep, plan).lines.get()
    assert line.amount == Decimal(amount)
    assert (Decimal(line.inputs["A"]), Decimal(line.inputs["B"])) == (
        Decimal(130000),
        Decimal(base),
    )
    assert Decimal(line.inputs["attainment"]) == Decimal("1.3")
    assert line.inputs["multipliers"] == {str(cloud.pk): multiplier}
    assert line.inputs["base_by_line"][str(cloud.pk)] == "100000.00"


def test_a_payment_reversed_after_the_lock_is_clawed_back_next_month_once(
    tree_a: TenantTree,
) -> None:
    """Attainment on won_amount, paid on collections, flat: T 100,000, A 120,000 (a = 1.2,
    the 10 % band), B = the 50,000.00 received → 5,000.00, approved and locked. The payment
    is then reversed within the paid month (a second reversal is refused): B is 0 now, so
    next month's draft carries an adjustment of −5,000.00, once."""
    m = tree_a.members
    rep = m["rep"]
    with tenant_scope(tree_a.tenant):
        today = tenant_today(tree_a.tenant)
        set_month_target(tree_a, rep, today, Decimal("100000.00"))
        payment = records.received_payment(tree_a, rep)
        plan = commissions.plan_create(
            actor=m["admin"], name="Cash in", attainment_metric="won_amount",
            base_metric="collections", bands=WORKED_BANDS, mode="flat",
        )  # fmt: skip
        commissions.assignment_add(
            actor=m["admin"], plan=plan, member=rep, effective_from=date(2026, 1, 1)
        )
        commissions.statements_compute(tenant=tree_a.tenant, as_of=today)
        paid = statement_of(rep, plan)
        assert paid.total == Decimal("5000.00")
        commissions.statement_approve(actor=m["manager"], statement_id=paid.pk)
        commissions.statement_lock(actor=m["admin"], statement_id=paid.pk)
        crm_services.payment_reverse(member=rep, payment=payment, reversed_date=today)
        with pytest.raises(Conflict):
            crm_services.payment_reverse(member=rep, payment=payment, reversed_date=today)
        next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 3)
        first = commissions.statements_clawback(tenant=tree_a.tenant, as_of=next_month)
        second = commissions.statements_clawback(tenant=tree_a.tenant, as_of=next_month)
        adjustment = StatementLine.objects.get(kind=LineKind.ADJUSTMENT)
        draft = adjustment.statement
        paid.refresh_from_db()
    assert (first["adjustments"], second["adjustments"]) == (1, 0)
    assert adjustment.amount == Decimal("-5000.00") and adjustment.corrects_id == paid.pk
    assert (draft.status, draft.period_start) == ("draft", next_month.replace(day=1))
    assert (paid.status, paid.total) == ("locked", Decimal("5000.00"))
