"""Reads of a review (SPEC §10 "Review (复盘)"): a target node's figures for one period.

``review_figures`` answers, for one period target (a unit's or a member's total over all
product lines), the gap (the node's and each child's, with the unit's own target beside
its children's sum), the factor analysis of a ``won_amount`` plan, the process targets of
the other live plans, the losses by last open stage and reason, and the period's
adjustments. It is what the API's preview shows, what a draft review shows live and what
a closed review stores (``Review.figures``), so the three cannot disagree.

Queries are a constant number whatever the size of the node's subtree: target and actual
come from ``targets.achievement.plan_achievements`` (the target tree's own numbers, a
fixed number of statements for any set of nodes); the deal counts of the factor analysis
for the period and for the three baseline levels are one statement; losses reuse
``funnel.selectors.loss_by_stage`` (one statement per pipeline); adjustments one more.
The arithmetic is ``funnel.review``; the baseline's fallback (member → unit → tenant,
≥ 5 closed deals and a win) is ``funnel.review.pick_baseline`` over the same
``funnel.rates`` constants plan to close uses.

The result is JSON-ready and language-neutral (codes, not sentences): ``localize`` adds
the sentences and labels in the reader's language when it is shown, so a review frozen
in one language reads in another. A page renders it directly: ``children`` is the bar
chart's rows, ``factors.waterfall`` the waterfall's steps from target to actual.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from crm.models import Pipeline, Stage
from funnel import review as review_math
from funnel.models import Review, ReviewAction, ReviewStatus
from funnel.selectors import Scope, Window, loss_by_stage
from targets.achievement import plan_achievements
from targets.achievement_math import Achievement
from targets.metrics import METRICS
from targets.models import (
    PERIOD_BY_CODE,
    PERIODS,
    AdjustmentStatus,
    PlanStatus,
    Target,
    TargetAdjustment,
    TargetPlan,
)
from tenancy import selectors as tenancy_selectors
from tenancy.errors import Invalid
from tenancy.models import Membership, OrgUnit, Role, Tenant
from tenancy.money import minor_unit, round_money, round_rate

FACTOR_METRIC = "won_amount"
NOT_AMOUNT_PLAN = "not_won_amount_plan"
"""Reason code: the factor analysis needs a won-amount plan (A = N × w × s)."""
NO_TARGET = "no_target"
"""Reason code: the node's target is not set, so there is no gap to explain."""


# -- checks ----------------------------------------------------------------------------------


def check_reviewable(target: Target, today: date) -> None:
    """A review covers a node's total (no product line) of a period that has started."""
    if target.product_line_id is not None:
        raise Invalid(
            {
                "target": _(
                    "A review covers a node's total target; choose the target without a "
                    "product line."
                )
            }
        )
    if target.period_start > today:
        raise Invalid(
            {
                "period": _("This period has not started yet (it starts on %(start)s).")
                % {"start": target.period_start.isoformat()}
            }
        )


def baseline_window(period_start: date) -> tuple[date, date]:
    """The 12 whole calendar months before the period starts (SPEC §10); periods start
    on the first of a month."""
    month_start = period_start.replace(day=1)
    return month_start.replace(year=month_start.year - 1), month_start - timedelta(days=1)


# -- formatting --------------------------------------------------------------------------------


def _money(value: Decimal | None, currency: str) -> str | None:
    return None if value is None else str(round_money(value, currency))


def _rate(value: Decimal | None) -> str | None:
    return None if value is None else str(round_rate(value))


def _value(value: Decimal | None, currency: str | None) -> str | None:
    """An amount rounded to the minor unit, a count as it is."""
    if value is None:
        return None
    if currency is None:
        # A count as a whole number ("300", never "3E+2"); a prorated count keeps its places.
        return str(value.quantize(Decimal(1))) if value == value.to_integral_value() else str(value)
    return _money(value, currency)


def _gap_json(gap: review_math.Gap, currency: str | None) -> dict[str, Any]:
    return {
        "target": _value(gap.target, currency),
        "actual": _value(gap.actual, currency),
        "attainment": _rate(gap.attainment),
        "gap": _value(gap.gap, currency),
    }


def _node_name(target: Target) -> str:
    if target.member_id:
        return str(target.member)
    return str(target.org_unit)


# -- the deal counts of the factor analysis ----------------------------------------------------


# A closed deal counts for its credit when won (member and unit fixed at the win) and for
# its owner and the owner's unit at the loss when lost (SPEC 10): the unit the loss
# recorded in ``credited_org_unit``, else (deals lost before it was recorded) the owner's
# current unit.
_ROW_MEMBER = "CASE WHEN s.kind = 'won' THEN o.credited_member_id ELSE o.owner_id END"
_ROW_PATH = "CASE WHEN s.kind = 'won' THEN cu.path ELSE COALESCE(cu.path, ou.path) END"
_CLOSED_DEALS = """
        FROM crm_opportunity o
        JOIN crm_stage s ON s.id = o.stage_id
        JOIN crm_membership m ON m.id = o.owner_id AND m.tenant_id = %(tenant)s
        LEFT JOIN crm_orgunit ou ON ou.id = m.org_unit_id AND ou.tenant_id = %(tenant)s
        LEFT JOIN crm_orgunit cu ON cu.id = o.credited_org_unit_id AND cu.tenant_id = %(tenant)s
        WHERE o.tenant_id = %(tenant)s AND o.deleted_at IS NULL
          AND s.kind IN ('won', 'lost')
          AND (s.kind = 'lost' OR o.credited_member_id IS NOT NULL)"""


def _node_condition(node_is_member: bool) -> str:
    return f"{_ROW_MEMBER} = %(member)s" if node_is_member else f"{_ROW_PATH} LIKE %(unit_prefix)s"


def _contributors(
    tenant: Tenant,
    *,
    period: tuple[date, date],
    member_id: int | None,
    unit_path: str | None,
    node_is_member: bool,
) -> list[dict[str, Any]]:
    """Who contributed what: the node's closed deals, wins and won amount in the period
    per member they count for, largest won amount first (two statements)."""
    sql = f"""
        SELECT {_ROW_MEMBER} AS member_id, COUNT(*),
               COUNT(*) FILTER (WHERE s.kind = 'won'),
               COALESCE(SUM(o.amount) FILTER (WHERE s.kind = 'won'), 0)
        {_CLOSED_DEALS}
          AND o.closed_date BETWEEN %(period_start)s AND %(period_end)s
          AND {_node_condition(node_is_member)}
        GROUP BY 1 ORDER BY 4 DESC, 3 DESC, 1
    """
    params = {
        "tenant": tenant.pk,
        "member": member_id,
        "unit_prefix": f"{unit_path}%" if unit_path is not None else None,
        "period_start": period[0],
        "period_end": period[1],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    people = Membership.objects.select_related("user").in_bulk([row[0] for row in rows])
    return [
        {
            "member": pk,
            "name": str(people[pk]) if pk in people else str(pk),
            "closed_deals": closed,
            "won_deals": won,
            "won_amount": _money(Decimal(amount), tenant.currency),
        }
        for pk, closed, won, amount in rows
    ]


def _deal_counts(
    tenant: Tenant,
    *,
    period: tuple[date, date],
    baseline: tuple[date, date],
    member_id: int | None,
    unit_path: str | None,
    node_is_member: bool,
) -> dict[str, tuple[int, int, Decimal]]:
    """Closed deals, wins and won amount credited to the node in the period and to each
    baseline level in the baseline window, in one statement.

    A win counts for its credit (member and unit fixed at the win); a loss for its owner
    and the owner's unit. (The unit at the loss is not recorded: the owner's current
    unit stands for it, as in the funnel's loss figures.)
    """
    row_member, row_path = _ROW_MEMBER, _ROW_PATH
    node = _node_condition(node_is_member)
    in_period = "o.closed_date BETWEEN %(period_start)s AND %(period_end)s"
    in_base = "o.closed_date BETWEEN %(base_start)s AND %(base_end)s"
    member_level = f"{row_member} = %(member)s" if member_id is not None else "FALSE"
    unit_level = f"{row_path} LIKE %(unit_prefix)s" if unit_path is not None else "FALSE"

    def triple(condition: str) -> str:
        return f"""
            COUNT(*) FILTER (WHERE {condition}),
            COUNT(*) FILTER (WHERE {condition} AND s.kind = 'won'),
            COALESCE(SUM(o.amount) FILTER (WHERE {condition} AND s.kind = 'won'), 0)"""

    sql = f"""
        SELECT {triple(f"{in_period} AND {node}")},
               {triple(f"{in_base} AND {member_level}")},
               {triple(f"{in_base} AND {unit_level}")},
               {triple(in_base)}
        {_CLOSED_DEALS}
          AND o.closed_date BETWEEN %(base_start)s AND %(period_end)s
    """
    params = {
        "tenant": tenant.pk,
        "member": member_id,
        "unit_prefix": f"{unit_path}%" if unit_path is not None else None,
        "period_start": period[0],
        "period_end": period[1],
        "base_start": baseline[0],
        "base_end": baseline[1],
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    names = ("period", "member", "unit", "tenant")
    return {
        name: (int(row[3 * i]), int(row[3 * i + 1]), Decimal(row[3 * i + 2]))
        for i, name in enumerate(names)
    }


def _factors(
    tenant: Tenant,
    target: Target,
    achievement: Achievement,
    as_of: date,
    member: Membership | None,
    unit: OrgUnit | None,
) -> dict[str, Any]:
    """The factor analysis of a won-amount node (SPEC §10), JSON-ready."""
    currency = tenant.currency
    base_start, base_end = baseline_window(target.period_start)
    counts = _deal_counts(
        tenant,
        period=(target.period_start, as_of),
        baseline=(base_start, base_end),
        member_id=member.pk if member is not None else None,
        unit_path=unit.path if unit is not None else None,
        node_is_member=target.member_id is not None,
    )
    closed, won, _won_amount = counts["period"]
    levels: list[review_math.Baseline] = []
    if member is not None:
        levels.append(review_math.Baseline("member", *counts["member"]))
    if unit is not None:
        levels.append(review_math.Baseline("unit", *counts["unit"]))
    levels.append(review_math.Baseline("tenant", *counts["tenant"]))
    target_value = target.value or Decimal(0)
    # A is the target tree's actual (the same number the achievement shows); it is the
    # period's won amount credited to the node, the sum the deal counts were taken from.
    analysis = review_math.factor_analysis(
        target_value,
        achievement.actual,
        closed,
        won,
        levels,
        quantum=minor_unit(currency),
    )
    effects = analysis.effects
    waterfall: list[dict[str, Any]] = []
    if effects is not None:
        running = target_value
        waterfall.append({"key": "target", "start": "0", "end": _money(running, currency)})
        for key in ("volume", "win_rate", "deal_size"):
            change = getattr(effects, key)
            waterfall.append(
                {
                    "key": key,
                    "start": _money(running, currency),
                    "end": _money(running + change, currency),
                    "value": _money(change, currency),
                }
            )
            running += change
        waterfall.append({"key": "actual", "start": "0", "end": _money(running, currency)})
    baseline = analysis.baseline
    return {
        "available": effects is not None,
        "reason": analysis.reason,
        "source": analysis.source,
        "target": _money(analysis.target, currency),
        "actual": _money(analysis.actual, currency),
        "closed_deals": analysis.closed_deals,
        "won_deals": analysis.won_deals,
        "win_rate": _rate(analysis.win_rate),
        "deal_size": _money(analysis.deal_size, currency),
        "baseline_window": {"start": base_start.isoformat(), "end": base_end.isoformat()},
        "baseline": None
        if baseline is None
        else {
            "level": baseline.level,
            "closed_deals": baseline.closed_deals,
            "won_deals": baseline.won_deals,
            "won_amount": _money(baseline.won_amount, currency),
        },
        "levels": [
            {
                "level": level.level,
                "closed_deals": level.closed_deals,
                "won_deals": level.won_deals,
                "won_amount": _money(level.won_amount, currency),
            }
            for level in levels
        ],
        "baseline_win_rate": _rate(analysis.baseline_win_rate),
        "baseline_deal_size": _money(analysis.baseline_deal_size, currency),
        # N₀ is a number of deals: shown to 2 places, used exact.
        "closed_deals_needed": None
        if analysis.closed_deals_needed is None
        else str(analysis.closed_deals_needed.quantize(Decimal("0.01"), ROUND_HALF_UP)),
        "effects": None
        if effects is None
        else {
            "volume": _money(effects.volume, currency),
            "win_rate": _money(effects.win_rate, currency),
            "deal_size": _money(effects.deal_size, currency),
            "total": _money(effects.total, currency),
        },
        "waterfall": waterfall,
        "contributors": _contributors(
            tenant,
            period=(target.period_start, as_of),
            member_id=member.pk if member is not None else None,
            unit_path=unit.path if unit is not None else None,
            node_is_member=target.member_id is not None,
        ),
    }


# -- the figures -------------------------------------------------------------------------------


def _codes_within(code: int) -> list[int]:
    """The period and every period inside it (a quarter and its months, …)."""
    outer = PERIOD_BY_CODE[code]
    return [
        period.code
        for period in PERIODS
        if period.first_month >= outer.first_month and period.last_month <= outer.last_month
    ]


def review_figures(target: Target, *, caller: Membership, today: date) -> dict[str, Any]:
    """The figures of a review of ``target`` (a period target of a unit or member, over
    all product lines), as of ``today`` or the period's end if earlier (SPEC §10).

    ``caller`` narrows the loss figures to what they may see (a reviewer sees the whole
    node). ``Invalid`` when the target has a product line or its period has not started.
    """
    check_reviewable(target, today)
    plan: TargetPlan = target.plan
    tenant = Tenant.objects.get(pk=target.tenant_id)
    as_of = min(today, target.period_end)
    base = Target.objects.filter(
        plan=plan, period_code=target.period_code, product_line__isnull=True
    )
    member: Membership | None = None
    unit: OrgUnit | None = None
    children: list[Target] = []
    if target.member_id is not None:
        member = Membership.objects.select_related("user", "org_unit").get(pk=target.member_id)
        unit = member.org_unit
    else:
        unit = OrgUnit.objects.get(pk=target.org_unit_id or 0)
        # Child units and direct members, with their names: one statement.
        children = list(
            base.filter(Q(org_unit__parent_id=unit.pk) | Q(member__org_unit_id=unit.pk))
            .select_related("org_unit", "member__user")
            .order_by("org_unit__name", "member__user__username", "series_id")
        )
    achievements = plan_achievements(plan, as_of, [target, *children])
    metric = METRICS.get(plan.metric)
    currency = tenant.currency if metric is None or metric.is_amount else None
    own = achievements[target.pk]
    gap = review_math.unit_gap(
        target.value,
        own.actual,
        [(child.pk, child.value, achievements[child.pk].actual) for child in children],
    )
    child_rows = []
    for child, row in zip(children, gap.children, strict=True):
        child_rows.append(
            {
                "type": "member" if child.member_id else "unit",
                "id": child.member_id or child.org_unit_id,
                "name": _node_name(child),
                "target_id": child.pk,
                **_gap_json(row.gap, currency),
            }
        )

    factors: dict[str, Any]
    if plan.metric == FACTOR_METRIC and target.value is None:
        factors = {"available": False, "reason": NO_TARGET, "metric": plan.metric}
    elif plan.metric == FACTOR_METRIC:
        factors = _factors(tenant, target, own, as_of, member, unit)
    else:
        factors = {"available": False, "reason": NOT_AMOUNT_PLAN, "metric": plan.metric}

    return {
        "target_id": target.pk,
        "plan": {
            "id": plan.pk,
            "name": plan.name,
            "metric": plan.metric,
            "fiscal_year": plan.fiscal_year,
        },
        "node": {
            "type": "member" if target.member_id else "unit",
            "id": target.member_id or target.org_unit_id,
            "name": str(member) if member is not None else str(unit),
        },
        "period": {
            "kind": target.period_kind,
            "index": target.period_index,
            "start": target.period_start.isoformat(),
            "end": target.period_end.isoformat(),
        },
        "as_of": as_of.isoformat(),
        "currency": tenant.currency,
        "gap": _gap_json(gap.own, currency),
        "children": child_rows,
        "children_total": _gap_json(gap.children_total, currency),
        "target_difference": _value(gap.target_difference, currency),
        "factors": factors,
        "process": _process(tenant, target, as_of),
        "losses": _losses(tenant, target, caller, member, unit, as_of),
        "adjustments": _adjustments(tenant, target, currency),
    }


def _process(tenant: Tenant, target: Target, as_of: date) -> list[dict[str, Any]]:
    """The node's targets of the other live plans of the year for the same period."""
    assignee = (
        Q(member_id=target.member_id)
        if target.member_id
        else Q(org_unit_id=target.org_unit_id, member__isnull=True)
    )
    others = list(
        Target.objects.filter(
            assignee,
            plan__fiscal_year=target.plan.fiscal_year,
            plan__status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
            period_code=target.period_code,
            product_line__isnull=True,
        )
        .exclude(plan_id=target.plan_id)
        .select_related("plan")
        .order_by("plan__metric", "plan_id")
    )
    rows = []
    # One achievement read per other plan: at most one live plan per metric, so this is
    # bounded by the number of metrics, not by the subtree.
    for other in others:
        achievement = plan_achievements(other.plan, as_of, [other])[other.pk]
        metric = METRICS.get(other.plan.metric)
        currency = tenant.currency if metric is None or metric.is_amount else None
        gap = review_math.gap_of(other.value, achievement.actual)
        rows.append(
            {
                "plan": other.plan_id,
                "metric": other.plan.metric,
                "target_id": other.pk,
                **_gap_json(gap, currency),
            }
        )
    return rows


def _losses(
    tenant: Tenant,
    target: Target,
    caller: Membership,
    member: Membership | None,
    unit: OrgUnit | None,
    as_of: date,
) -> dict[str, Any]:
    """The period's lost deals of the node by last open stage and reason (count, amount)."""
    window = Window(target.period_start, as_of, tenant.time_zone)
    pipelines = list(Pipeline.objects.order_by("-is_default", "pk"))
    names = {stage.pk: str(stage) for stage in Stage.objects.filter(pipeline__in=pipelines)}
    rows: list[dict[str, Any]] = []
    for pipeline in pipelines:
        scope = Scope(
            caller=caller,
            pipeline=pipeline,
            member=member if target.member_id else None,
            org_unit=None if target.member_id else unit,
        )
        for row in loss_by_stage(scope, window, unit_at_loss=True):
            rows.append(
                {
                    "pipeline": pipeline.pk,
                    "stage": row["stage"],
                    "stage_name": names.get(row["stage"], ""),
                    "reason": row["reason"],
                    "count": row["count"],
                    "amount": _money(row["amount"], tenant.currency),
                }
            )
    rows.sort(key=lambda row: (-Decimal(row["amount"]), -row["count"], row["pipeline"]))
    return {
        "count": sum(row["count"] for row in rows),
        "amount": _money(
            sum((Decimal(row["amount"]) for row in rows), Decimal(0)), tenant.currency
        ),
        "by_stage_and_reason": rows,
    }


def _adjustments(tenant: Tenant, target: Target, currency: str | None) -> dict[str, Any]:
    """Applied adjustments of the node's target for the period or a period inside it."""
    rows = list(
        TargetAdjustment.objects.filter(
            series_id=target.series_id,
            period_code__in=_codes_within(target.period_code),
            status=AdjustmentStatus.APPLIED,
        ).order_by("created_at", "pk")
    )
    net = sum(((row.new_value - (row.old_value or Decimal(0))) for row in rows), Decimal(0))
    return {
        "count": len(rows),
        "net_change": _value(net, currency),
        "rows": [
            {
                "id": row.pk,
                "target_id": row.target_id,
                "old_value": _value(row.old_value, currency),
                "new_value": _value(row.new_value, currency),
                "trigger": row.trigger,
                "reason": row.reason,
                "effective_from": row.effective_from.isoformat(),
            }
            for row in rows
        ],
    }


# -- shown in the reader's language ------------------------------------------------------------


def factor_reason_message(code: str | None, metric: str | None = None) -> str | None:
    if code is None:
        return None
    if code == NOT_AMOUNT_PLAN:
        label = METRICS[metric].label if metric in METRICS else metric
        return _(
            "The factor analysis splits a won amount into deals closed, win rate and deal "
            "size; this plan counts %(metric)s. The gap, process and losses still apply."
        ) % {"metric": label}
    if code == NO_TARGET:
        return _("This node has no target set for the period: there is no gap to explain.")
    if code == review_math.NO_BASELINE:
        return _(
            "No baseline: neither the member, their unit nor the company closed at least "
            "%(count)s deals with a win in the 12 months before the period."
        ) % {"count": review_math.MIN_CLOSED_DEALS}
    if code == review_math.ZERO_BASELINE_DEAL_SIZE:
        return _("No baseline: the deals won in the 12 months before the period were worth 0.")
    return code


EFFECT_LABELS = {
    "target": lambda: _("Target"),
    "volume": lambda: _("Volume (deals closed)"),
    "win_rate": lambda: _("Win rate"),
    "deal_size": lambda: _("Deal size"),
    "actual": lambda: _("Actual"),
}


def localize(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures with their sentences and labels in the active language (a copy)."""
    shown = dict(figures)
    factors = dict(shown.get("factors") or {})
    factors["message"] = factor_reason_message(factors.get("reason"), factors.get("metric"))
    factors["waterfall"] = [
        {**step, "label": str(EFFECT_LABELS[step["key"]]())}
        for step in factors.get("waterfall", [])
    ]
    shown["factors"] = factors
    shown["process"] = [
        {
            **row,
            "label": str(METRICS[row["metric"]].label)
            if row["metric"] in METRICS
            else row["metric"],
        }
        for row in shown.get("process", [])
    ]
    return shown


# -- reviews as records: visibility and reads --------------------------------------------------


def visible_reviews(member: Membership) -> QuerySet[Review]:
    """Reviews of the nodes the caller sees, by the targets' rule: a rep their own, a
    manager their subtree's members and units, an admin every review."""
    if member.role == Role.ADMIN:
        return Review.objects.all()
    if member.role == Role.MANAGER:
        return Review.objects.filter(
            Q(member__in=tenancy_selectors.visible_memberships(member).values("pk"))
            | Q(org_unit__in=tenancy_selectors.visible_org_units(member).values("pk"))
        )
    return Review.objects.filter(member=member)


def get_visible_review(member: Membership, pk: object) -> Review:
    return tenancy_selectors.get_visible(visible_reviews(member), pk)


def review_target(review: Review) -> Target:
    """The period target a review is about (its series and period code)."""
    return Target.objects.select_related("plan").get(
        series_id=review.series_id, period_code=review.period_code
    )


def review_figures_of(review: Review, *, caller: Membership, today: date) -> dict[str, Any]:
    """A closed review's frozen figures; a draft's computed now (live)."""
    if review.status == ReviewStatus.CLOSED and review.figures is not None:
        return review.figures
    return review_figures(review_target(review), caller=caller, today=today)


def previous_review(review: Review) -> Review | None:
    """The latest review of the same node and period kind before this one's period."""
    assignee = (
        Q(member_id=review.member_id) if review.member_id else Q(org_unit_id=review.org_unit_id)
    )
    return (
        Review.objects.filter(
            assignee, period_kind=review.period_kind, period_end__lt=review.period_start
        )
        .order_by("-period_start", "-id")
        .first()
    )


def review_actions(reviews: list[Review]) -> dict[int, list[ReviewAction]]:
    """The action items of these reviews with their owners and follow-ups, one query."""
    actions: dict[int, list[ReviewAction]] = {review.pk: [] for review in reviews}
    rows = ReviewAction.objects.filter(review__in=[review.pk for review in reviews]).select_related(
        "owner__user", "follow_up"
    )
    for action in rows.order_by("due_date", "pk"):
        actions[action.review_id].append(action)
    return actions
