"""What each page shows (SPEC section 12), assembled from the apps' selectors: the same
functions the API calls, so a page and its endpoint cannot disagree. Each function takes
the viewer's membership (visibility) and returns plain values for a template; the number
of queries does not grow with the team (``tests/web/test_pages.py`` pins it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.db.models import Q, QuerySet, Sum
from django.http import Http404, QueryDict
from django.urls import reverse
from django.utils.translation import gettext as _

from crm.models import Pipeline, ProductLine, Stage
from crm.selectors import visible_activities, visible_visits
from funnel import review_selectors
from funnel import selectors as funnel_selectors
from funnel import services as review_services
from funnel.models import AlertStatus, Review, ReviewStatus
from funnel.plan import plan_to_close
from funnel.warnings import alert_message, visible_alerts
from incentives import commissions
from incentives import selectors as incentive_selectors
from incentives.models import PointEntry, StatementStatus
from targets.achievement import plan_achievements, plan_as_of
from targets.achievement_math import Achievement
from targets.metrics import METRICS
from targets.models import (
    PERIODS,
    AdjustmentStatus,
    PlanStatus,
    Target,
    TargetAdjustment,
    TargetPlan,
)
from targets.selectors import visible_series, visible_targets
from tenancy import errors
from tenancy import selectors as tenancy_selectors
from tenancy.dates import tenant_today
from tenancy.models import Membership, OrgUnit, Role, Tenant

LIVE = (PlanStatus.PUBLISHED, PlanStatus.LOCKED)
ALERTS_SHOWN = 10
WAITING_SHOWN = 20


def _int(params: QueryDict, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)  # type: ignore[arg-type]
    except ValueError as error:
        raise Http404(name) from error


def day_bounds(day: date, tenant: Tenant) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tenant.time_zone)
    start = datetime.combine(day, time.min, zone)
    return start, start + timedelta(days=1)


@dataclass
class Row:
    """A target node as the pages show it: its achievement and where it sits in the tree."""

    target: Target
    name: str
    depth: int
    is_unit: bool
    achievement: Achievement

    sort_key: tuple[str, str] = ("", "")


# --- my day ------------------------------------------------------------------------------


def my_targets(member: Membership, as_of: date) -> list[tuple[Target, Achievement]]:
    """The member's targets of the periods containing ``as_of`` in live plans, with
    achievement: the API's ``me/targets`` (one achievement per plan)."""
    nodes = list(
        Target.objects.filter(
            member=member,
            period_start__lte=as_of,
            period_end__gte=as_of,
            plan__status__in=LIVE,
        )
        .select_related("plan", "product_line")
        .order_by("plan", "product_line", "period_kind")
    )
    by_plan: dict[int, list[Target]] = {}
    for node in nodes:
        by_plan.setdefault(node.plan_id, []).append(node)
    rows: list[tuple[Target, Achievement]] = []
    for plan_nodes in by_plan.values():
        results = plan_achievements(plan_nodes[0].plan, as_of, plan_nodes)
        rows.extend((node, results[node.pk]) for node in plan_nodes)
    # Year, then quarter, then month, totals before product lines.
    order = {"year": 0, "quarter": 1, "month": 2}
    rows.sort(key=lambda r: (r[0].plan.metric, r[0].product_line_id or 0, order[r[0].period_kind]))
    return rows


def my_day(member: Membership) -> dict[str, Any]:
    tenant = member.tenant
    today = tenant_today(tenant)
    start, end = day_bounds(today, tenant)
    visits = list(
        visible_visits(member)
        .filter(rep=member)
        .filter(
            Q(planned_start__gte=start, planned_start__lt=end)
            | Q(check_in_at__gte=start, check_in_at__lt=end)
        )
        .select_related("customer")
        .order_by("planned_start", "check_in_at", "pk")[:50]
    )
    follow_ups = list(
        visible_activities(member)
        .filter(owner=member, done_at__isnull=True, due_at__lt=end)
        .select_related("customer")
        .order_by("due_at", "pk")[:50]
    )
    overdue = [a for a in follow_ups if a.due_at is not None and a.due_at < start]
    due = [a for a in follow_ups if a.due_at is not None and a.due_at >= start]
    targets = my_targets(member, today)
    closing = None
    quarter = next(
        (
            t
            for t, _a in targets
            if t.plan.metric == "won_amount"
            and t.product_line_id is None
            and t.period_kind == "quarter"
        ),
        None,
    )
    if quarter is not None:
        try:
            closing = plan_to_close(quarter, today)
        except errors.DomainError:
            closing = None
    return {
        "today": today,
        "visits": visits,
        "overdue": overdue,
        "due": due,
        "targets": targets,
        "plan_to_close": closing,
        **my_points(member, today),
        "alerts": alerts_of(visible_alerts(member).filter(owner=member)),
    }


def my_points(member: Membership, today: date) -> dict[str, Any]:
    """Points today and this month, and the rank on the unit's points board: the API's
    ``me/incentives``."""
    tenant = member.tenant
    month = incentive_selectors.period_of(tenant, "month", today)
    mine = PointEntry.objects.filter(member=member)
    totals = mine.aggregate(
        today=Sum("points", filter=Q(day=today)),
        month=Sum("points", filter=Q(day__range=(month.start, today))),
    )
    rank = None
    if member.org_unit_id is not None:
        board = incentive_selectors.leaderboard(viewer=member, period_kind="month", as_of=today)
        rank = next(
            (
                {"rank": row.rank, "of": len(board.rows), "previous_rank": row.previous_rank}
                for row in board.rows
                if row.member_id == member.pk
            ),
            None,
        )
    return {
        "points_today": totals["today"] or 0,
        "points_month": totals["month"] or 0,
        "month": month,
        "rank": rank,
    }


def alerts_of(alerts: QuerySet[Any]) -> dict[str, Any]:
    rows = list(
        alerts.filter(status=AlertStatus.OPEN)
        .select_related("owner__user")
        .order_by("-opened_at", "-id")[:ALERTS_SHOWN]
    )
    return {"rows": [(alert, alert_message(alert)) for alert in rows]}


# --- team --------------------------------------------------------------------------------


@dataclass
class TeamQuery:
    """The team page's filters, each checked against the viewer's visibility."""

    plans: list[TargetPlan]
    plan: TargetPlan | None
    units: list[OrgUnit]
    unit: OrgUnit
    lines: list[ProductLine]
    line: ProductLine | None
    periods: list[Target] = field(default_factory=list)
    period: Target | None = None
    as_of: date | None = None

    def params(self, **changes: Any) -> dict[str, Any]:
        values = {
            "plan": self.plan.pk if self.plan else "",
            "unit": self.unit.pk,
            "line": self.line.pk if self.line else "",
            "period": self.period_key(self.period) if self.period else "",
        }
        values.update(changes)
        return values

    @staticmethod
    def period_key(target: Target) -> str:
        return f"{target.period_kind}-{target.period_index}"


def home_unit(member: Membership) -> OrgUnit:
    if member.org_unit is not None and member.role != Role.ADMIN:
        return member.org_unit
    root = OrgUnit.objects.filter(parent__isnull=True).order_by("pk").first()
    if root is None:
        raise Http404("no org unit")
    return root


def team_query(member: Membership, params: QueryDict) -> TeamQuery:
    tenant = member.tenant
    today = tenant_today(tenant)
    plans = list(
        TargetPlan.objects.filter(status__in=LIVE).order_by("-fiscal_year", "metric", "pk")
    )
    plan_id = _int(params, "plan")
    if plan_id is not None:
        plan = next((p for p in plans if p.pk == plan_id), None)
        if plan is None:
            raise Http404("plan")
    else:
        current = [p for p in plans if plan_as_of(p, tenant, today) == today]
        plan = next((p for p in current if p.metric == "won_amount"), None) or (
            current[0] if current else (plans[0] if plans else None)
        )
    units = list(tenancy_selectors.visible_org_units(member).order_by("path"))
    unit_id = _int(params, "unit")
    if unit_id is not None:
        unit = next((u for u in units if u.pk == unit_id), None)
        if unit is None:
            raise Http404("unit")
    else:
        home = home_unit(member)
        unit = next((u for u in units if u.pk == home.pk), units[0] if units else home)
    lines = list(ProductLine.objects.order_by("name"))
    line_id = _int(params, "line")
    line = None
    if line_id is not None:
        line = next((pl for pl in lines if pl.pk == line_id), None)
        if line is None:
            raise Http404("line")
    query = TeamQuery(plans=plans, plan=plan, units=units, unit=unit, lines=lines, line=line)
    if plan is None:
        return query
    query.as_of = plan_as_of(plan, tenant, today)
    # The unit's own period totals name the periods to choose from (year, quarters, months).
    query.periods = list(
        visible_targets(member)
        .filter(plan=plan, org_unit=unit, product_line=line)
        .select_related("plan")
        .order_by("period_start", "-period_end")
    )
    # A period the plan or unit does not have (after switching either) falls back to the
    # quarter of today, like no period asked.
    asked = params.get("period")
    query.period = next((t for t in query.periods if query.period_key(t) == asked), None)
    if query.period is None:
        query.period = next(
            (
                t
                for t in query.periods
                if t.period_kind == "quarter" and t.period_start <= query.as_of <= t.period_end
            ),
            query.periods[0] if query.periods else None,
        )
    return query


def _subtree(unit: OrgUnit) -> Q:
    return Q(org_unit__path__startswith=unit.path) | Q(member__org_unit__path__startswith=unit.path)


def tree_rows(
    nodes: list[Target], results: dict[int, Achievement], *, base_depth: int
) -> list[Row]:
    """Target nodes in tree order: a unit, its members, then its sub-units."""
    rows = []
    for node in nodes:
        if node.member_id is not None:
            unit = node.member.org_unit
            depth = (unit.depth if unit else base_depth) - base_depth + 1
            # A member right after their unit's row, before its sub-units (" " < digits).
            key = ((unit.path if unit else "") + " ", node.member.display_name)
            rows.append(Row(node, node.member.display_name, depth, False, results[node.pk], key))
        else:
            unit = node.org_unit
            depth = unit.depth - base_depth
            rows.append(Row(node, unit.name, depth, True, results[node.pk], (unit.path, "")))
    rows.sort(key=lambda r: r.sort_key)
    return rows


def in_tree_order(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A decomposition's nodes (as the API answers them, level by level) depth first:
    each unit, its members, then its sub-units."""

    def key(ref: dict[str, Any] | None) -> tuple[str, int] | None:
        return None if ref is None else (ref["type"], ref["id"])

    children: dict[tuple[str, int] | None, list[dict[str, Any]]] = {}
    for node in nodes:
        children.setdefault(key(node["parent"]), []).append(node)
    ordered: list[dict[str, Any]] = []

    def visit(parent: tuple[str, int] | None) -> None:
        below = children.get(parent, [])
        # Members first (type "member" < "unit"), then sub-units.
        for node in sorted(below, key=lambda n: (n["assignee"]["type"], n["assignee"]["name"])):
            ordered.append(node)
            visit(key(node["assignee"]))

    visit(None)
    seen = {id(node) for node in ordered}
    return ordered + [node for node in nodes if id(node) not in seen]


def target_tree(member: Membership, query: TeamQuery) -> tuple[list[Row], list[dict[str, Any]]]:
    """The subtree's nodes for the chosen period with achievement, in tree order, and the
    period's cumulative actual / expected / target by month (the chart), from one
    achievement call whatever the team's size."""
    assert query.plan is not None and query.period is not None
    period = query.period
    nodes = list(
        visible_targets(member)
        .filter(
            plan=query.plan,
            product_line=query.line,
            period_kind=period.period_kind,
            period_index=period.period_index,
        )
        .filter(_subtree(query.unit))
        .select_related("org_unit", "member__user", "member__org_unit")
    )
    months = list(
        visible_targets(member)
        .filter(
            plan=query.plan,
            product_line=query.line,
            org_unit=query.unit,
            period_kind="month",
            period_start__gte=period.period_start,
            period_end__lte=period.period_end,
        )
        .order_by("period_start")
    )
    results = plan_achievements(query.plan, query.as_of or period.period_start, nodes + months)
    rows = tree_rows(nodes, results, base_depth=query.unit.depth)
    chart = []
    actual = expected = planned = Decimal(0)
    as_of = query.as_of or period.period_start
    for month in months:
        a = results[month.pk]
        planned += month.value or 0
        if month.period_start <= as_of:
            actual += a.actual or 0
            expected += (
                (a.expected_to_date or 0) if month.period_end >= as_of else (month.value or 0)
            )
        chart.append(
            {
                "month": month.period_start.strftime("%Y-%m"),
                "actual": str(actual) if month.period_start <= as_of else None,
                "expected": str(expected) if month.period_start <= as_of else None,
                "target": str(planned),
            }
        )
    return rows, chart


def funnel_figures(member: Membership, query: TeamQuery) -> dict[str, Any]:
    """Conversion per stage, losses with reasons and the weighted pipeline of the unit's
    deals for the period's window (of the chosen product line, if any): the funnel API's
    answers to the same question."""
    assert query.period is not None
    pipeline = Pipeline.objects.filter(is_default=True).first()
    if pipeline is None:
        return {}
    scope = funnel_selectors.Scope(caller=member, pipeline=pipeline, org_unit=query.unit)
    window = funnel_selectors.Window(
        query.period.period_start, query.period.period_end, member.tenant.time_zone
    )
    stages = {s.pk: s for s in Stage.objects.filter(pipeline=pipeline)}
    names = {str(pk): str(s) for pk, s in stages.items()}
    won_name = next((str(s) for s in stages.values() if s.kind == "won"), _("Won"))
    cohort = funnel_selectors.cohort_conversion(scope, window, product_line=query.line)
    losses = funnel_selectors.loss_by_stage(scope, window, product_line=query.line)
    weighted = funnel_selectors.weighted_pipeline(scope, window, product_line=query.line)
    return {
        "pipeline": pipeline,
        "window": window,
        "created": cohort.created,
        "won": cohort.won,
        "win_rate": cohort.win_rate,
        "stages": [
            {
                "stage": int(row.stage),
                "name": names.get(row.stage, row.stage),
                "reached": row.reached,
                "next_stage": names.get(row.next_stage, won_name),
                "next_reached": row.next_reached,
                "rate": row.rate_to_next_stage,
            }
            for row in cohort.stages
        ],
        "losses": [{**row, "stage_name": names.get(str(row["stage"]), "-")} for row in losses],
        "weighted": weighted,
    }


def waiting_for(member: Membership) -> dict[str, Any]:
    """What waits for the viewer's decision: requested target adjustments of targets they
    see, draft commission statements of the people below them."""
    adjustments = list(
        TargetAdjustment.objects.filter(
            series__in=visible_series(member).values("pk"), status=AdjustmentStatus.REQUESTED
        )
        .exclude(requested_by=member)
        .select_related(
            "requested_by__user", "series__member__user", "series__org_unit", "series__plan"
        )
        .order_by("created_at", "pk")[:WAITING_SHOWN]
    )
    statements: list[Any] = []
    if member.role in (Role.ADMIN, Role.MANAGER):
        drafts = commissions.visible_statements_for(member).filter(status=StatementStatus.DRAFT)
        if member.role != Role.ADMIN:
            drafts = drafts.exclude(member=member)
        statements = list(
            drafts.select_related("member__user", "plan").order_by("period_start", "pk")[
                :WAITING_SHOWN
            ]
        )
    return {"adjustments": adjustments, "statements": statements}


def team(member: Membership, query: TeamQuery) -> dict[str, Any]:
    context: dict[str, Any] = {
        "query": query,
        # Link prefixes made once, not per row of a tree of hundreds.
        "drill": urlencode({k: v for k, v in query.params().items() if k != "unit"}) + "&unit=",
        "target_admin": reverse("admin:targets_target_changelist"),
        "deals_admin": reverse("admin:crm_opportunity_changelist"),
        "won_window": ""
        if query.period is None
        else urlencode(
            {
                "stage__kind": "won",
                "closed_date__gte": query.period.period_start.isoformat(),
                "closed_date__lte": query.period.period_end.isoformat(),
            }
        ),
        "adjust_url": reverse("web:target-adjust", args=[0]).removesuffix("0/adjust/"),
    }
    if query.plan is not None and query.period is not None:
        rows, chart = target_tree(member, query)
        context.update(rows=rows, chart=chart)
        context["funnel"] = funnel_figures(member, query)
        kind = query.period.period_kind
        context["board"] = incentive_selectors.leaderboard(
            viewer=member, unit_id=query.unit.pk, period_kind=kind, as_of=query.as_of, by="points"
        )
    context["alerts"] = alerts_of(
        visible_alerts(member).filter(
            Q(owner__isnull=True) | Q(owner__org_unit__path__startswith=query.unit.path)
        )
    )
    context["waiting"] = waiting_for(member)
    return context


# --- incentives --------------------------------------------------------------------------


def incentives(member: Membership) -> dict[str, Any]:
    today = tenant_today(member.tenant)
    context = my_points(member, today)
    context["statements"] = list(
        commissions.visible_statements_for(member)
        .filter(member=member)
        .select_related("plan")
        .order_by("-period_start", "pk")[:24]
    )
    context["board"] = (
        incentive_selectors.leaderboard(viewer=member, period_kind="month", as_of=today)
        if member.org_unit_id is not None
        else None
    )
    context["today"] = today
    return context


# --- reviews (复盘) -----------------------------------------------------------------------

REVIEWS_SHOWN = 100


def review_start_choices(member: Membership) -> dict[str, Any]:
    """What a review may be started for: the live plans, the nodes the viewer sees (units
    and people) and the periods of a year. Who may review a node is the service's rule."""
    plans = list(
        TargetPlan.objects.filter(status__in=LIVE).order_by("-fiscal_year", "metric", "pk")
    )
    units = list(tenancy_selectors.visible_org_units(member).order_by("path"))
    people = list(
        tenancy_selectors.visible_memberships(member)
        .filter(is_active=True)
        .select_related("user")
        .order_by("user__username", "pk")
    )
    nodes = [(f"unit-{unit.pk}", unit.name) for unit in units]
    nodes += [(f"member-{person.pk}", str(person)) for person in people]
    periods = [(str(period.code), _period_name(period.kind, period.index)) for period in PERIODS]
    return {"plans": plans, "nodes": nodes, "periods": periods}


def _period_name(kind: str, index: int) -> str:
    if kind == "year":
        return _("The year")
    if kind == "quarter":
        return _("Quarter %(index)s") % {"index": index}
    return _("Month %(index)s") % {"index": index}


def review_start_target(member: Membership, data: QueryDict) -> Target | None:
    """The visible period target (no product line) the start form names, or None."""
    plan, code = _int(data, "plan"), _int(data, "period")
    kind, _sep, raw = str(data.get("node", "")).partition("-")
    if plan is None or code is None or kind not in ("unit", "member") or not raw.isdigit():
        return None
    assignee: dict[str, Any] = (
        {"member_id": int(raw)}
        if kind == "member"
        else {"org_unit_id": int(raw), "member__isnull": True}
    )
    return (
        visible_targets(member)
        .filter(plan_id=plan, period_code=code, product_line__isnull=True, **assignee)
        .select_related("plan")
        .first()
    )


def reviews(member: Membership) -> dict[str, Any]:
    """The reviews the viewer sees (``review_selectors.visible_reviews``, the API's list),
    newest period first, and the start form's choices."""
    rows = list(
        review_selectors.visible_reviews(member)
        .select_related("plan", "org_unit", "member__user", "reviewer__user")
        .order_by("-period_start", "-id")[:REVIEWS_SHOWN]
    )
    return {"reviews": rows, "start": review_start_choices(member)}


def review_page(member: Membership, review: Review) -> dict[str, Any]:
    """A review's figures as ``GET /api/v1/reviews/{id}/`` answers them (the same
    selectors, localized alike), its actions, the previous review's actions and what
    the viewer may do (edit while draft if they may review the node)."""
    tenant = member.tenant
    today = tenant_today(tenant)
    figures = review_selectors.localize(
        review_selectors.review_figures_of(review, caller=member, today=today)
    )
    previous = review_selectors.previous_review(review)
    actions = review_selectors.review_actions([review, *([previous] if previous else [])])
    target = review_selectors.review_target(review)
    try:
        review_services.check_may_review(member, target)
        may_review = True
    except errors.Forbidden:
        may_review = False
    editable = may_review and review.status == ReviewStatus.DRAFT
    factors = figures["factors"]
    waterfall = [
        {
            "label": step["label"],
            "start": step["start"],
            "end": step["end"],
            "total": step["key"] in ("target", "actual"),
        }
        for step in factors.get("waterfall", [])
    ]
    bars = [
        {"name": row["name"], "target": row["target"], "actual": row["actual"]}
        for row in figures["children"]
    ]
    context: dict[str, Any] = {
        "review": review,
        "target": target,
        "figures": figures,
        "factors": factors,
        "is_amount": _is_amount(figures["plan"]["metric"]),
        "waterfall": waterfall,
        "bars": bars,
        "actions": actions[review.pk],
        "previous": previous,
        "previous_actions": actions[previous.pk] if previous else [],
        "editable": editable,
        "today": today,
    }
    if editable:
        context["owners"] = review_owners(review)
    return context


def _is_amount(metric: str) -> bool:
    found = METRICS.get(metric)
    return found is None or found.is_amount


def review_owners(review: Review) -> list[Membership]:
    """Who may own an action: the member reviewed, or the active members of the unit's
    subtree (``funnel.services.check_action_owner``), one query."""
    people = Membership.objects.select_related("user").order_by("user__username", "pk")
    if review.member_id is not None:
        return list(people.filter(pk=review.member_id))
    unit = OrgUnit.objects.filter(pk=review.org_unit_id or 0).first()
    if unit is None:
        return []
    return list(people.filter(is_active=True, org_unit__path__startswith=unit.path))
