"""targets' digest section (SPEC section 7): the member's month targets at risk or off
track, with the gap and the amount needed per remaining day, as of the eve (the day
the night computed). One achievement computation per plan for all members' nodes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.digest import (
    Item,
    display_names,
    for_teams,
    manager_teams,
    money,
    register_section,
    shared,
)
from targets.achievement import achievement_json, plan_achievements
from targets.achievement_math import AT_RISK, OFF_TRACK
from targets.metrics import get_metric
from targets.models import (
    AdjustmentStatus,
    PeriodKind,
    PlanStatus,
    Target,
    TargetAdjustment,
    TargetPlan,
)
from tenancy.models import Membership, OrgUnitManager, Tenant


def collect_targets(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """Each member's month targets at risk or off track (computed once per preparation:
    the managers' section reads the same figures)."""
    found: dict[int, list[Item]] = shared(
        ("targets_at_risk", tenant.pk, local_date),
        lambda: _targets_at_risk(tenant, members, local_date),
    )
    return found


def collect_team_off_track(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """A manager's team members with a month target off track (SPEC section 7), one item
    per member and plan, with the gap and the amount needed per day."""
    teams = manager_teams(tenant, members)
    if not teams:
        return {}
    names = display_names(tenant, members)
    off_track = {
        member_id: [
            {
                **item,
                "kind": "member",
                "id": member_id,
                "path": f"/api/v1/members/{member_id}/",
                "plan": item["title"],
                "title": names.get(member_id, ""),
            }
            for item in items
            if item["status"] == OFF_TRACK
        ]
        for member_id, items in collect_targets(tenant, members, local_date).items()
    }
    return for_teams(teams, off_track)


def collect_adjustments_to_approve(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """Target adjustment requests a manager may decide: of a member of their team (not
    their own target) or of a unit strictly below one they manage, requested by someone
    else (``targets.services._is_above``). One query for the tenant's open requests."""
    teams = manager_teams(tenant, members)
    if not teams:
        return {}
    links = list(
        OrgUnitManager.objects.filter(membership_id__in=list(teams)).values_list(
            "membership_id", "org_unit__path"
        )
    )
    requests = list(
        TargetAdjustment.objects.filter(status=AdjustmentStatus.REQUESTED)
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "series__member_id",
            "series__org_unit__path",
            "series__plan__name",
            "requested_by_id",
            "new_value",
            "series__plan__metric",
        )
    )
    if not requests:
        return {}
    names = display_names(tenant, members)
    found: dict[int, list[Item]] = {}
    for manager_id, team in teams.items():
        team_ids = set(team)
        managed = [path for manager, path in links if manager == manager_id]
        for pk, member_id, unit_path, plan, requester, new_value, metric in requests:
            if requester == manager_id:
                continue
            if member_id is not None:
                mine = member_id in team_ids
            else:
                mine = any(
                    unit_path and unit_path.startswith(path) and unit_path != path
                    for path in managed
                )
            if not mine:
                continue
            found.setdefault(manager_id, []).append(
                {
                    "kind": "target_adjustment",
                    "id": pk,
                    "path": f"/api/v1/target-adjustments/{pk}/",
                    "title": plan,
                    "requested_by": names.get(requester or 0, ""),
                    "new_value": str(new_value),
                    "is_amount": get_metric(metric).is_amount,
                }
            )
    return found


def _targets_at_risk(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    as_of = local_date - timedelta(days=1)
    nodes = list(
        Target.objects.filter(
            member_id__in=[m.pk for m in members],
            plan__status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
            period_kind=PeriodKind.MONTH,
            period_start__lte=as_of,
            period_end__gte=as_of,
            product_line__isnull=True,
            value__gt=0,
        ).order_by("plan_id", "member_id")
    )
    by_plan: dict[int, list[Target]] = {}
    for node in nodes:
        by_plan.setdefault(node.plan_id, []).append(node)
    plans = TargetPlan.objects.in_bulk(list(by_plan))
    found: dict[int, list[Item]] = {}
    for plan_id, plan_nodes in by_plan.items():
        plan = plans[plan_id]
        results = plan_achievements(plan, as_of, plan_nodes)
        for node in plan_nodes:
            achievement = results[node.pk]
            if achievement.status not in (AT_RISK, OFF_TRACK):
                continue
            shown = achievement_json(achievement)
            assert node.member_id is not None
            found.setdefault(node.member_id, []).append(
                {
                    "kind": "target",
                    "id": node.pk,
                    "path": f"/api/v1/targets/{node.pk}/",
                    "title": plan.name,
                    "metric": plan.metric,
                    "status": achievement.status,
                    "gap": shown["gap"],
                    "required_per_day": shown["required_per_day"],
                    "remaining_days": shown["remaining_days"],
                    "is_amount": achievement.currency is not None,
                }
            )
    return found


def _figure(value: Any, item: Item, tenant: Tenant) -> str:
    if value is None:
        return "-"
    return money(value, tenant) if item["is_amount"] else str(value)


def _line(item: Item, tenant: Tenant) -> str:
    status = gettext("off track") if item["status"] == OFF_TRACK else gettext("at risk")
    return gettext(
        "%(plan)s this month is %(status)s: %(gap)s to go, %(per_day)s a day "
        "over the %(days)s days left"
    ) % {
        "plan": item["title"],
        "status": status,
        "gap": _figure(item["gap"], item, tenant),
        "per_day": _figure(item["required_per_day"], item, tenant),
        "days": item["remaining_days"],
    }


def _team_line(item: Item, tenant: Tenant) -> str:
    return gettext("%(member)s is off track on %(plan)s: %(gap)s to go, %(per_day)s a day") % {
        "member": item["title"],
        "plan": item["plan"],
        "gap": _figure(item["gap"], item, tenant),
        "per_day": _figure(item["required_per_day"], item, tenant),
    }


def _adjustment_line(item: Item, tenant: Tenant) -> str:
    return gettext("%(member)s asks to change a target of %(plan)s to %(value)s") % {
        "member": item["requested_by"],
        "plan": item["title"],
        "value": _figure(item["new_value"], item, tenant),
    }


def register() -> None:
    register_section("targets", 50, _("Targets at risk or off track"), collect_targets, _line)
    register_section(
        "team_off_track", 70, _("Your team: off track"), collect_team_off_track, _team_line
    )
    register_section(
        "adjustments_to_approve",
        80,
        _("Target adjustments waiting for you"),
        collect_adjustments_to_approve,
        _adjustment_line,
    )
