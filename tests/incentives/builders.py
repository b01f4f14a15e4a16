"""Builders of incentive rows for the cross-tenant harness (run inside a tenant scope)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.utils import timezone

from incentives import commissions
from incentives.models import CommissionPlan, CommissionStatement, PointEntry, PointRule
from tests.factories import TenantTree

BANDS = [["0", "0.02"], ["1", "0.05"]]


def point_rule(tree: TenantTree) -> PointRule:
    rule, _created = PointRule.objects.get_or_create(
        tenant=tree.tenant, event="lead_created", defaults={"points": 1}
    )
    return rule


def point_entry(tree: TenantTree) -> PointEntry:
    return PointEntry.objects.create(
        tenant=tree.tenant, rule=point_rule(tree), member=tree.members["south-rep"],
        event="lead_created", source_type="lead", source_id=1, kind="award", points=1,
        day=date(2026, 1, 5), occurred_at=timezone.now(),
    )  # fmt: skip


def commission_plan(tree: TenantTree) -> Any:
    existing = CommissionPlan.objects.filter(name="Probe plan").first()
    if existing is not None:
        return existing
    plan = commissions.plan_create(
        actor=tree.members["admin"], name="Probe plan", attainment_metric="won_amount",
        bands=BANDS,
    )  # fmt: skip
    commissions.assignment_add(
        actor=tree.members["admin"], plan=plan, member=tree.members["south-rep"],
        effective_from=date(2026, 1, 1),
    )  # fmt: skip
    return plan


def commission_statement(tree: TenantTree) -> CommissionStatement:
    plan = commission_plan(tree)
    commissions.statements_compute(tenant=tree.tenant, as_of=date(2026, 1, 31), plans=[plan])
    return CommissionStatement.objects.get(plan=plan)
