"""Set-based funnel reads (SPEC section 5) over stage changes, opportunities, leads and
visits, for any window, pipeline, org unit or member, within the caller's visibility.

Every figure is one SQL aggregate (GROUP BY, FILTER, window functions); Python only
touches the handful of grouped rows. The arithmetic on those counts is ``funnel.rates``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Now
from django.utils.translation import gettext as _

from crm.models import (
    Activity,
    Lead,
    Opportunity,
    Pipeline,
    ProductLine,
    Stage,
    StageKind,
    Visit,
)
from funnel import rates
from tenancy import selectors as tenancy_selectors
from tenancy.models import Membership, OrgUnit, Tenant
from tenancy.scope import current_tenant_id


@dataclass(frozen=True)
class Scope:
    """Who and what a funnel question covers: the caller's visibility narrowed to a
    pipeline, an org unit's subtree or one member."""

    caller: Membership
    pipeline: Pipeline
    org_unit: OrgUnit | None = None
    member: Membership | None = None

    def unit_member_ids(self) -> list[int]:
        """Members of the unit's subtree, read once: a literal id list keeps the big
        aggregates on the ``(tenant_id, owner_id, …)`` indexes (a join on paths inside
        them cost seconds on 200,000 deals)."""
        assert self.org_unit is not None
        cached = self.__dict__.get("_unit_member_ids")
        if cached is None:
            cached = list(
                Membership.objects.filter(
                    org_unit__path__startswith=self.org_unit.path
                ).values_list("pk", flat=True)
            )
            object.__setattr__(self, "_unit_member_ids", cached)
        return cached

    def opportunities(self) -> QuerySet[Opportunity]:
        return self.owned(Opportunity, "owner").filter(pipeline=self.pipeline)

    def owned(self, model: type[Any], owner_field: str) -> QuerySet[Any]:
        rows = model.objects.filter(tenancy_selectors.owned_by_visible(self.caller, owner_field))
        if self.org_unit is not None:
            rows = rows.filter(**{f"{owner_field}__in": self.unit_member_ids()})
        if self.member is not None:
            rows = rows.filter(**{owner_field: self.member})
        return rows


@dataclass(frozen=True)
class Window:
    """Dates ``start`` … ``end`` inclusive, in the tenant's time zone."""

    start: date
    end: date
    time_zone: str

    def bounds(self) -> tuple[datetime, datetime]:
        zone = ZoneInfo(self.time_zone)
        return (
            datetime.combine(self.start, time.min, zone),
            datetime.combine(self.end + timedelta(days=1), time.min, zone),
        )


def _deals(scope: Scope, product_line: ProductLine | int | None) -> QuerySet[Opportunity]:
    """The scope's opportunities, only those of ``product_line`` when one is given."""
    deals = scope.opportunities()
    if product_line is not None:
        line_id = product_line.pk if isinstance(product_line, ProductLine) else product_line
        deals = deals.filter(product_line_id=line_id)
    return deals


def open_stages(pipeline: Pipeline) -> list[Stage]:
    return list(Stage.objects.filter(pipeline=pipeline, kind=StageKind.OPEN).order_by("order"))


def won_stage_name(pipeline: Pipeline) -> str:
    """The pipeline's won stage as every other stage is shown (its display name, e.g.
    "赢单 Won"), so funnel and plan to close name it alike; "Won" if it has none."""
    won = Stage.objects.filter(pipeline=pipeline, kind=StageKind.WON).order_by("order").first()
    return str(won) if won is not None else str(_("Won"))


def _tenant() -> int:
    """The scope's tenant, repeated in raw SQL: row-level security alone filters too, but
    only an explicit ``tenant_id = …`` lets PostgreSQL use the tenant-led indexes (without
    it one team's time in stage took 22 s on a million stage changes)."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise RuntimeError("funnel queries run inside a tenant scope")
    return tenant_id


def _sql(queryset: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    # No ORDER BY inside an IN (…): the model's default ordering would only add a sort.
    sql, params = queryset.order_by().values("id").query.sql_with_params()
    return sql, tuple(params)


def _reach_histograms(rows: QuerySet[Any]) -> dict[Any, dict[int, int]]:
    """How far each opportunity got (the highest non-lost stage order it ever entered),
    counted per group: ``rows`` yields ``id`` and ``bucket`` (one group: a constant)."""
    rows_sql, params = rows.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT bucket, reach, COUNT(*) FROM (
                SELECT c.bucket, MAX(s."order") FILTER (WHERE s.kind <> 'lost') AS reach
                FROM crm_stagechange sc
                JOIN ({rows_sql}) c ON c.id = sc.opportunity_id
                JOIN crm_stage s ON s.id = sc.to_stage_id
                WHERE sc.tenant_id = %s
                GROUP BY sc.opportunity_id, c.bucket
            ) per_deal WHERE reach IS NOT NULL GROUP BY 1, 2
            """,
            (*params, _tenant()),
        )
        histograms: dict[Any, dict[int, int]] = {}
        for bucket, reach, count in cursor.fetchall():
            histograms.setdefault(bucket, {})[int(reach)] = count
        return histograms


def _counts_by_stage(histogram: dict[int, int], stages: list[Stage]) -> dict[str, int]:
    return {
        str(stage.pk): sum(count for reach, count in histogram.items() if reach >= stage.order)
        for stage in stages
    }


def reached_counts(ids: QuerySet[Any], stages: list[Stage]) -> dict[str, int]:
    """#reached per open stage (keyed by stage id): entered it or any later non-lost stage."""
    rows = ids.annotate(bucket=Value(0)).values("id", "bucket")
    return _counts_by_stage(_reach_histograms(rows).get(0, {}), stages)


def cohort_conversion(
    scope: Scope, window: Window, *, product_line: ProductLine | int | None = None
) -> rates.CohortConversion:
    return cohort_conversions(scope, [window], product_line=product_line)[0]


def cohort_conversions(
    scope: Scope, windows: list[Window], *, product_line: ProductLine | int | None = None
) -> list[rates.CohortConversion]:
    """The cohort conversion of each window (cohort: the deals created in it), all windows
    in one pass over the stage changes: two statements whatever their number."""
    buckets = [
        When(created_at__gte=s, created_at__lt=e, then=Value(i))
        for i, (s, e) in enumerate(window.bounds() for window in windows)
    ]
    in_any = Q()
    for window in windows:
        start, end = window.bounds()
        in_any |= Q(created_at__gte=start, created_at__lt=end)
    cohort = (
        _deals(scope, product_line)
        .filter(in_any)
        .annotate(bucket=Case(*buckets, output_field=IntegerField()))
    )
    stages = open_stages(scope.pipeline)
    totals = {
        row["bucket"]: row
        for row in cohort.order_by()
        .values("bucket")
        .annotate(created=Count("id"), won=Count("id", filter=Q(stage__kind=StageKind.WON)))
    }
    histograms = _reach_histograms(cohort.values("id", "bucket"))
    results = []
    for index in range(len(windows)):
        row = totals.get(index, {"created": 0, "won": 0})
        results.append(
            rates.cohort_conversion(
                [str(stage.pk) for stage in stages],
                _counts_by_stage(histograms.get(index, {}), stages),
                row["created"],
                row["won"],
            )
        )
    return results


def closed_win_rate(
    scope: Scope, window: Window, *, product_line: ProductLine | int | None = None
) -> dict[str, Any]:
    closed = _deals(scope, product_line).filter(
        closed_date__gte=window.start, closed_date__lte=window.end
    )
    totals = closed.aggregate(
        won=Count("id", filter=Q(stage__kind=StageKind.WON)),
        lost=Count("id", filter=Q(stage__kind=StageKind.LOST)),
    )
    return {**totals, "win_rate": rates.closed_win_rate(totals["won"], totals["lost"])}


def loss_by_stage(
    scope: Scope,
    window: Window,
    *,
    product_line: ProductLine | int | None = None,
    unit_at_loss: bool = False,
) -> list[dict[str, Any]]:
    """Each lost deal at the last open stage before the loss, with its amount and reason.

    With ``unit_at_loss`` a unit scope takes the deals lost while their owner was in its
    subtree (the unit a loss records; the owner's current unit for older losses), as
    SPEC 10's review credits them, instead of those of the unit's members today."""
    deals = _deals(scope, product_line)
    if unit_at_loss and scope.org_unit is not None and scope.member is None:
        path = scope.org_unit.path
        deals = _deals(replace(scope, org_unit=None), product_line).filter(
            Q(credited_org_unit__path__startswith=path)
            | Q(credited_org_unit__isnull=True, owner__org_unit__path__startswith=path)
        )
    lost = deals.filter(
        stage__kind=StageKind.LOST, closed_date__gte=window.start, closed_date__lte=window.end
    )
    ids_sql, params = _sql(lost)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH last_loss AS (
                SELECT DISTINCT ON (sc.opportunity_id) sc.opportunity_id, sc.from_stage_id
                FROM crm_stagechange sc JOIN crm_stage s ON s.id = sc.to_stage_id
                WHERE sc.tenant_id = %s AND s.kind = 'lost' AND sc.opportunity_id IN ({ids_sql})
                ORDER BY sc.opportunity_id, sc.changed_at DESC, sc.id DESC
            )
            SELECT l.from_stage_id, o.lost_reason, COUNT(*), COALESCE(SUM(o.amount), 0)
            FROM last_loss l JOIN crm_opportunity o ON o.id = l.opportunity_id
            WHERE o.tenant_id = %s
            GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
            """,
            (_tenant(), *params, _tenant()),
        )
        return [
            {"stage": stage, "reason": reason, "count": count, "amount": Decimal(amount)}
            for stage, reason, count, amount in cursor.fetchall()
        ]


def time_in_stage(
    scope: Scope, window: Window, *, product_line: ProductLine | int | None = None
) -> list[dict[str, Any]]:
    """Days from entering a stage to leaving it, for exits inside the window (each stage
    change carries the time its deal left the stage: ``exited_at``)."""
    start, end = window.bounds()
    ids_sql, params = _sql(_deals(scope, product_line))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT sc.to_stage_id, COUNT(*),
                   AVG(EXTRACT(EPOCH FROM sc.exited_at - sc.changed_at)) / 86400,
                   PERCENTILE_CONT(0.5) WITHIN GROUP (
                       ORDER BY EXTRACT(EPOCH FROM sc.exited_at - sc.changed_at)) / 86400
            FROM crm_stagechange sc
            WHERE sc.tenant_id = %s AND sc.exited_at >= %s AND sc.exited_at < %s
              AND sc.opportunity_id IN ({ids_sql})
            GROUP BY sc.to_stage_id
            """,
            (_tenant(), start, end, *params),
        )
        return [
            {"stage": stage, "exits": count, "mean_days": _days(mean), "median_days": _days(median)}
            for stage, count, mean, median in cursor.fetchall()
        ]


def cycle_time(
    scope: Scope, window: Window, *, product_line: ProductLine | int | None = None
) -> dict[str, Any]:
    """Creation → won, in days, for the wins closed in the window."""
    won = _deals(scope, product_line).filter(
        stage__kind=StageKind.WON, closed_date__gte=window.start, closed_date__lte=window.end
    )
    ids_sql, params = _sql(won)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT COUNT(*), AVG(o.closed_date - (o.created_at AT TIME ZONE %s)::date),
                   PERCENTILE_CONT(0.5) WITHIN GROUP (
                       ORDER BY o.closed_date - (o.created_at AT TIME ZONE %s)::date)
            FROM crm_opportunity o WHERE o.tenant_id = %s AND o.id IN ({ids_sql})
            """,
            (window.time_zone, window.time_zone, _tenant(), *params),
        )
        count, mean, median = cursor.fetchone()
    return {"wins": count, "mean_days": _days(mean), "median_days": _days(median)}


def _days(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def weighted_pipeline(
    scope: Scope, window: Window, *, product_line: ProductLine | int | None = None
) -> dict[str, Any]:
    """Σ amount × probability (override, else the stage's) of open deals expected to close
    in the window, in total and by forecast category (override, else the stage's)."""
    probability = Coalesce("probability_override", "stage__probability")
    grouped = (
        _deals(scope, product_line)
        .filter(
            stage__kind=StageKind.OPEN,
            amount__isnull=False,
            expected_close_date__gte=window.start,
            expected_close_date__lte=window.end,
        )
        .values("forecast_category_override", "stage__forecast_category")
        .annotate(
            deals=Count("id"),
            total_amount=Sum("amount"),
            weighted_amount=Sum(F("amount") * probability / Decimal(100)),
        )
        .order_by()
    )
    categories: dict[str, dict[str, Any]] = {}
    for row in grouped:
        key = row["forecast_category_override"] or row["stage__forecast_category"]
        bucket = categories.setdefault(
            key, {"deals": 0, "amount": Decimal(0), "weighted": Decimal(0)}
        )
        bucket["deals"] += row["deals"]
        bucket["amount"] += row["total_amount"] or 0
        bucket["weighted"] += row["weighted_amount"] or 0
    total = {
        "deals": sum(c["deals"] for c in categories.values()),
        "amount": sum((c["amount"] for c in categories.values()), Decimal(0)),
        "weighted": sum((c["weighted"] for c in categories.values()), Decimal(0)),
    }
    return {"total": total, "by_forecast_category": categories}


def stale_deals(
    scope: Scope, *, default_rot_days: int, now: datetime | None = None
) -> QuerySet[Opportunity]:
    """Open deals with no activity nor stage change for their stage's rot days (the
    tenant default where the stage sets none), oldest touch first."""
    # Newest first and LIMIT 1: one probe of ``activity_opp_touch`` per deal.
    last_activity = Subquery(
        Activity.objects.filter(tenant_id=OuterRef("tenant_id"), opportunity=OuterRef("pk"))
        .annotate(touch=Coalesce("done_at", "created_at"))
        .order_by(F("touch").desc())
        .values("touch")[:1]
    )
    rot = ExpressionWrapper(
        Coalesce("stage__rot_days", Value(default_rot_days)) * timedelta(days=1),
        output_field=DurationField(),
    )
    reference = Value(now, output_field=DateTimeField()) if now is not None else Now()
    return (
        scope.opportunities()
        # The open stages' ids, not a join on their kind: an index scan of the open deals
        # instead of reading every deal of the tenant.
        .filter(stage__in=[stage.pk for stage in open_stages(scope.pipeline)])
        .annotate(
            last_touch=Greatest("stage_entered_at", Coalesce(last_activity, "stage_entered_at")),
            stale_after=ExpressionWrapper(reference - rot, output_field=DateTimeField()),
        )
        .filter(last_touch__lt=F("stale_after"))
        .order_by("last_touch", "pk")
    )


def tenant_of(member: Membership) -> Tenant:
    return Tenant.objects.get(pk=member.tenant_id)


# --- plan to close ---------------------------------------------------------------------


def level_history(
    level: rates.Level,
    opportunities: QuerySet[Opportunity],
    leads: QuerySet[Lead],
    visits: QuerySet[Visit],
    stages: list[Stage],
    window: Window,
    *,
    defer_reached: bool = False,
) -> rates.History:
    """One fallback level's trailing figures for the reverse funnel (SPEC section 5); with
    ``defer_reached`` the reached counts are read only if a rate needs them."""
    start, end = window.bounds()
    in_window = Q(closed_date__gte=window.start, closed_date__lte=window.end)
    totals = opportunities.aggregate(
        closed=Count("id", filter=in_window & Q(stage__kind__in=[StageKind.WON, StageKind.LOST])),
        won=Count("id", filter=in_window & Q(stage__kind=StageKind.WON)),
        won_amount=Sum("amount", filter=in_window & Q(stage__kind=StageKind.WON)),
        created=Count("id", filter=Q(created_at__gte=start, created_at__lt=end)),
    )
    closed = opportunities.filter(in_window, stage__kind__in=[StageKind.WON, StageKind.LOST])
    lead_totals = leads.filter(created_at__gte=start, created_at__lt=end).aggregate(
        created=Count("id"), converted=Count("id", filter=Q(converted_at__isnull=False))
    )
    return rates.History(
        level=level,
        closed_deals=totals["closed"],
        won_deals=totals["won"],
        won_amount=totals["won_amount"] or Decimal(0),
        reached_counts=rates.DeferredCounts(lambda: reached_counts(closed, stages))
        if defer_reached
        else reached_counts(closed, stages),
        new_opportunities=totals["created"],
        leads_created=lead_totals["created"],
        leads_converted=lead_totals["converted"],
        verified_visits=visits.filter(
            verified=True, check_in_at__gte=start, check_in_at__lt=end
        ).count(),
    )


def histories_for(
    pipeline: Pipeline,
    window: Window,
    *,
    member: Membership | None,
    unit: OrgUnit | None,
) -> list[rates.History]:
    """Member, unit and tenant histories (whichever apply), in fallback order."""
    stages = open_stages(pipeline)
    all_deals = Opportunity.objects.filter(pipeline=pipeline)
    levels: list[rates.History] = []
    if member is not None:
        levels.append(
            level_history(
                "member",
                all_deals.filter(owner=member),
                Lead.objects.filter(owner=member),
                Visit.objects.filter(rep=member),
                stages,
                window,
            )
        )
    if unit is not None:
        people = list(
            Membership.objects.filter(org_unit__path__startswith=unit.path).values_list(
                "pk", flat=True
            )
        )
        levels.append(
            level_history(
                "unit",
                all_deals.filter(owner__in=people),
                Lead.objects.filter(owner__in=people),
                Visit.objects.filter(rep__in=people),
                stages,
                window,
            )
        )
    # The tenant's reached counts (every closed deal's stage changes) only when a stage
    # rate falls back to the tenant: a member or unit with enough deals never needs them.
    levels.append(
        level_history(
            "tenant",
            all_deals,
            Lead.objects.all(),
            Visit.objects.all(),
            stages,
            window,
            defer_reached=True,
        )
    )
    return levels
