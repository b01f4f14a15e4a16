"""Plan to close (SPEC section 5): what a target node still needs, from its gap and the
trailing twelve months' funnel, with the rates and fallback level of every figure."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from crm.models import Pipeline
from funnel import rates
from funnel.selectors import Window, histories_for, open_stages, won_stage_name
from targets.achievement import plan_achievements
from targets.achievement_math import shown_amount
from targets.models import Target
from tenancy.models import Membership, OrgUnit, Tenant

#: Histories already read in one request, by pipeline, window, member and unit.
HistoryMemo = dict[tuple[int, Window, int | None, int | None], list[rates.History]]


def plan_to_close(
    target: Target, as_of: date, *, memo: HistoryMemo | None = None
) -> dict[str, Any]:
    """The plan to close of ``target`` on ``as_of``. Plans of one member on one day (a
    month's, a quarter's and a year's) share their histories through ``memo``: the same
    twelve months of the same people, read once."""
    if target.plan.metric != "won_amount":
        raise ValidationError(
            {
                "target": _("Plan to close works from a won-amount target; this one counts %s.")
                % target.plan.metric
            }
        )
    tenant = Tenant.objects.get(pk=target.tenant_id)
    achievement = plan_achievements(target.plan, as_of, [target])[target.pk]
    gap = achievement.gap or Decimal(0)
    pipeline = Pipeline.objects.get(is_default=True)
    window = Window(as_of - timedelta(days=364), as_of, tenant.time_zone)
    member = (
        Membership.objects.select_related("org_unit").get(pk=target.member_id)
        if target.member_id
        else None
    )
    unit = (
        member.org_unit if member is not None else OrgUnit.objects.get(pk=target.org_unit_id or 0)
    )
    key = (pipeline.pk, window, member.pk if member else None, unit.pk if unit else None)
    levels = None if memo is None else memo.get(key)
    if levels is None:
        levels = histories_for(pipeline, window, member=member, unit=unit)
        if memo is not None:
            memo[key] = levels
    stages = open_stages(pipeline)
    result = rates.plan_to_close(gap, levels, stage_order=[str(stage.pk) for stage in stages])
    remaining_weeks = math.ceil(achievement.remaining_days / 7)
    names = {str(stage.pk): str(stage) for stage in stages} | {rates.WON: won_stage_name(pipeline)}

    def figure(value: rates.Figure) -> dict[str, Any]:
        used = value.rate
        return {
            "value": value.value,
            "per_week": rates.per_week(value.value, remaining_weeks),
            "reason": value.reason,
            "source": used.source if used else None,
            "rate": None
            if used is None
            else {
                "value": str(used.value),
                "numerator": str(used.numerator),
                "denominator": str(used.denominator),
            },
        }

    return {
        "target": target.pk,
        "as_of": as_of,
        "period_kind": target.period_kind,
        "period_index": target.period_index,
        "period_start": target.period_start,
        "period_end": target.period_end,
        "gap": str(shown_amount(gap, tenant.currency)),
        "remaining_days": achievement.remaining_days,
        "remaining_weeks": remaining_weeks,
        "window": {"start": window.start, "end": window.end},
        "wins": figure(result.wins),
        "stages": [
            {
                "stage": int(need.stage),
                "stage_name": names[need.stage],
                "next_stage": names[need.next_stage],
                "needed": figure(need.needed),
            }
            for need in result.stages
        ],
        "new_opportunities": figure(result.new_opportunities),
        "leads": figure(result.leads),
        "verified_visits": figure(result.verified_visits),
        "histories": [
            {
                "level": level.level,
                "closed_deals": level.closed_deals,
                "won_deals": level.won_deals,
                "won_amount": str(level.won_amount),
            }
            for level in levels
        ],
    }
