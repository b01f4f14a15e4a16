"""Data the page tests share: a tenant tree with a published plan, a won deal, an open
alert, a visit and a follow-up (written inside the tenant's scope)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm.models import Opportunity
from targets.models import Target, TargetPlan
from tenancy.models import Membership, Role
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree, add_member


@dataclass
class Team:
    tree: TenantTree
    plan: TargetPlan
    won: Opportunity


def team_with_figures(tree: TenantTree, *, extra_reps: int = 0) -> Team:
    """``extra_reps`` more reps in North 1 (before the plan is decomposed, so they carry
    targets): the same pages over a bigger team."""
    with tenant_scope(tree.tenant):
        for number in range(extra_reps):
            nickname = f"extra{number}"
            tree.members[nickname] = add_member(
                tree.tenant,
                nickname,
                Role.REP,
                tree.units["north-1"],
                slug=tree.tenant.slug,
            )
        plan = records.published_plan(tree)
        won = records.won_opportunity(tree, tree.members["rep"])
        for number in range(extra_reps):
            records.won_opportunity(tree, tree.members[f"extra{number}"])
        records.alert(tree)
        records.visit(tree, tree.members["rep"])
        records.activity(tree, tree.members["rep"])
    return Team(tree=tree, plan=plan, won=won)


def target_of(
    tree: TenantTree,
    plan: TargetPlan,
    *,
    member: Membership | None = None,
    unit: str = "",
    kind: str = "quarter",
    index: int = 4,
) -> Target:
    with tenant_scope(tree.tenant):
        filters: dict[str, Any] = {"member": member} if member else {"org_unit": tree.units[unit]}
        return Target.objects.get(
            plan=plan, period_kind=kind, period_index=index, product_line=None, **filters
        )
