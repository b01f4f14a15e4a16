"""targets' digest section (SPEC section 7): the member's month targets at risk or off
track, with the gap and the amount needed per remaining day, as of the eve (the day
the night computed). One achievement computation per plan for all members' nodes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.digest import Item, money, register_section
from targets.achievement import achievement_json, plan_achievements
from targets.achievement_math import AT_RISK, OFF_TRACK
from targets.models import PeriodKind, PlanStatus, Target, TargetPlan
from tenancy.models import Membership, Tenant


def collect_targets(
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


def register() -> None:
    register_section("targets", 50, _("Targets at risk or off track"), collect_targets, _line)
