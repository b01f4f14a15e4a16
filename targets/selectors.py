"""Set-based reads for targets: monthly actuals and open pipeline per credited bucket.

Each function is one SQL query grouped by ``(member, unit, product line, fiscal month)``.
A unit's actual is the sum over the rows credited to its subtree (SPEC section 4): for a
plan's achievement ``period_totals`` rolls the buckets up to every member and unit in the
same statement; the decomposition's history rolls them up in ``CreditIndex``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from targets import calendar
from targets.metrics import get_metric
from targets.models import Commitment, PeriodTargetRow, Target, TargetSeries, target_ids_q
from tenancy import selectors as tenancy_selectors
from tenancy.errors import NotFound
from tenancy.models import Membership, OrgUnit, Role, Tenant

Key = tuple[str, int]  # ("member", id) or ("unit", id)


@dataclass(frozen=True)
class Bucket:
    member_id: int | None
    unit_id: int | None
    product_line_id: int | None
    month: int  # fiscal month 1..12
    value: Decimal
    commit_value: Decimal = Decimal(0)


def _month_index_sql(column: str) -> str:
    return (
        f"((EXTRACT(YEAR FROM {column})::int * 12 + EXTRACT(MONTH FROM {column})::int)"
        " - (%(fy)s * 12 + %(start_month)s) + 1)"
    )


Query = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Credited:
    """Only the rows credited to these members or to these units' subtrees (a few
    nodes' achievement need not aggregate the whole tenant)."""

    members: list[int]
    units: list[int]

    def condition(self, member: str, unit: str) -> str:
        return f"""({member} = ANY(%(only_members)s) OR {unit} IN (
            SELECT sub.id FROM crm_orgunit sub WHERE sub.tenant_id = %(tenant)s
              AND sub.path LIKE ANY (
                SELECT top.path || '%%' FROM crm_orgunit top
                WHERE top.tenant_id = %(tenant)s AND top.id = ANY(%(only_units)s))))"""

    def params(self) -> dict[str, Any]:
        return {"only_members": self.members, "only_units": self.units}


def monthly_actuals_sql(
    tenant: Tenant,
    metric_key: str,
    fiscal_year: int,
    up_to: date,
    only: Credited | None = None,
) -> Query | None:
    """The statement of ``monthly_actuals`` (None when the year has not started)."""
    metric = get_metric(metric_key)
    year = calendar.fiscal_year(fiscal_year, tenant.fiscal_year_start_month)
    end = min(up_to, year.end)
    if end < year.start:
        return None
    narrow = f"AND {only.condition('r.member_id', 'r.unit_id')}" if only else ""
    sql = f"""
        SELECT r.member_id, r.unit_id, r.product_line_id, {_month_index_sql("r.day")} AS month,
               SUM(r.value), 0
        FROM ({metric.sql}) r
        WHERE r.day BETWEEN %(start)s AND %(end)s {narrow}
        GROUP BY 1, 2, 3, 4
    """
    return sql, {
        "tenant": tenant.pk,
        "tz": tenant.time_zone,
        "fy": year.start.year,
        "start_month": year.start.month,
        "start": year.start,
        "end": end,
        **(only.params() if only else {}),
    }


def window_actuals_sql(tenant: Tenant, metric_key: str, start: date, end: date) -> Query:
    """The metric's credited values from ``start`` to ``end`` (inclusive) per member,
    unit, product line and *fiscal* month of the row's date (1 = the fiscal year's first
    month, whatever the calendar year): the decomposition's history window (SPEC
    section 4, the last 12 complete calendar months, each on its fiscal month)."""
    metric = get_metric(metric_key)
    sql = f"""
        SELECT r.member_id, r.unit_id, r.product_line_id,
               ((EXTRACT(MONTH FROM r.day)::int - %(start_month)s + 12) %% 12) + 1 AS month,
               SUM(r.value), 0
        FROM ({metric.sql}) r
        WHERE r.day BETWEEN %(start)s AND %(end)s
        GROUP BY 1, 2, 3, 4
    """
    return sql, {
        "tenant": tenant.pk,
        "tz": tenant.time_zone,
        "start_month": tenant.fiscal_year_start_month,
        "start": start,
        "end": end,
    }


def window_actuals(tenant: Tenant, metric_key: str, start: date, end: date) -> list[Bucket]:
    return _buckets(window_actuals_sql(tenant, metric_key, start, end))


def first_recorded_day(tenant: Tenant, metric_key: str) -> date | None:
    """The date of the tenant's first recorded row of the metric (None: none yet); months
    before it have no history (SPEC section 4 ``seasonal``)."""
    metric = get_metric(metric_key)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MIN(r.day) FROM ({metric.sql}) r",
            {"tenant": tenant.pk, "tz": tenant.time_zone},
        )
        row = cursor.fetchone()
    return None if row is None else row[0]


def open_pipeline_sql(
    tenant: Tenant, fiscal_year: int, after: date, only: Credited | None = None
) -> Query:
    """The statement of ``open_pipeline``."""
    year = calendar.fiscal_year(fiscal_year, tenant.fiscal_year_start_month)
    narrow = f"AND {only.condition('o.owner_id', 'm.org_unit_id')}" if only else ""
    sql = f"""
        SELECT o.owner_id, m.org_unit_id, o.product_line_id,
               {_month_index_sql("o.expected_close_date")} AS month,
               SUM(o.amount * COALESCE(o.probability_override, s.probability) / 100.0),
               COALESCE(SUM(o.amount)
                 FILTER (WHERE COALESCE(NULLIF(o.forecast_category_override, ''),
                                        s.forecast_category) = 'commit'), 0)
        FROM crm_opportunity o
        JOIN crm_stage s ON s.id = o.stage_id
        JOIN crm_membership m ON m.id = o.owner_id AND m.tenant_id = %(tenant)s
        WHERE o.tenant_id = %(tenant)s AND s.kind = 'open' AND o.deleted_at IS NULL
          AND o.amount IS NOT NULL
          AND o.expected_close_date > %(after)s AND o.expected_close_date <= %(end)s
          {narrow}
        GROUP BY 1, 2, 3, 4
    """
    return sql, {
        "tenant": tenant.pk,
        "fy": year.start.year,
        "start_month": year.start.month,
        "after": after,
        "end": year.end,
        **(only.params() if only else {}),
    }


def planned_payments_sql(
    tenant: Tenant, fiscal_year: int, after: date, only: Credited | None = None
) -> Query:
    """Planned payments of won deals due after ``after`` within the fiscal year, credited
    like collections (the deal's credit fixed at win), per fiscal month of the planned
    date: SPEC section 4's projection of ``collections`` (no probability)."""
    year = calendar.fiscal_year(fiscal_year, tenant.fiscal_year_start_month)
    narrow = (
        f"AND {only.condition('o.credited_member_id', 'o.credited_org_unit_id')}" if only else ""
    )
    sql = f"""
        SELECT o.credited_member_id, o.credited_org_unit_id, o.product_line_id,
               {_month_index_sql("p.planned_date")} AS month, SUM(p.amount), 0
        FROM crm_payment p
        JOIN crm_opportunity o ON o.id = p.opportunity_id AND o.tenant_id = %(tenant)s
        JOIN crm_stage s ON s.id = o.stage_id
        WHERE p.tenant_id = %(tenant)s AND p.status = 'planned' AND p.deleted_at IS NULL
          AND s.kind = 'won' AND o.deleted_at IS NULL AND o.credited_member_id IS NOT NULL
          AND p.planned_date > %(after)s AND p.planned_date <= %(end)s
          {narrow}
        GROUP BY 1, 2, 3, 4
    """
    return sql, {
        "tenant": tenant.pk,
        "fy": year.start.year,
        "start_month": year.start.month,
        "after": after,
        "end": year.end,
        **(only.params() if only else {}),
    }


def _buckets(query: Query | None) -> list[Bucket]:
    if query is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*query)
        return [
            Bucket(m, u, p, int(month), Decimal(v), Decimal(c))
            for m, u, p, month, v, c in cursor.fetchall()
        ]


def monthly_actuals(tenant: Tenant, metric_key: str, fiscal_year: int, up_to: date) -> list[Bucket]:
    """The metric's credited values in the fiscal year up to and including ``up_to``, per
    member, unit, product line and fiscal month."""
    return _buckets(monthly_actuals_sql(tenant, metric_key, fiscal_year, up_to))


def open_pipeline(tenant: Tenant, fiscal_year: int, after: date) -> list[Bucket]:
    """Open deals credited to their current owner and unit, expected to close after
    ``after`` within the fiscal year: Σ amount × probability / 100, and Σ amount of the
    ``commit`` ones (at face value, SPEC section 4 ``projected_commit``)."""
    return _buckets(open_pipeline_sql(tenant, fiscal_year, after))


PeriodTotals = dict[tuple[str, int, int | None, int], tuple[Decimal, Decimal]]


def period_totals(
    query: Query | None,
    periods: dict[int, tuple[int, int]],
    lines: set[int | None],
) -> PeriodTotals:
    """The buckets of ``query`` rolled up in SQL to what target nodes ask for: per member
    and per org unit (a unit gets everything credited to its subtree: each bucket's unit
    and all its ancestors, from the materialised path), per product line asked for (None:
    the total over all lines) and per period (code → first and last fiscal month).

    Keys: ``("member" | "unit", id, product line or None, period code)``; values: the
    sum and its commit part. One statement; the rows are as many as the nodes need.
    """
    if query is None or not periods:
        return {}
    sql, params = query
    named = sorted(line for line in lines if line is not None)
    params = {**params, "lines": named}
    values = []
    for code, (first, last) in periods.items():
        values.append(f"(%(code_{code})s, %(first_{code})s, %(last_{code})s)")
        params.update({f"code_{code}": code, f"first_{code}": first, f"last_{code}": last})
    # Per bucket's member and unit: its periods, for the totals and for each line asked.
    by_period = f"""
        SELECT b.member_id, b.unit_id, {{line}} AS line, p.code,
               SUM(b.value) AS value, SUM(b.commit_value) AS commit_value
        FROM b JOIN (VALUES {", ".join(values)}) AS p(code, first, last)
          ON b.month BETWEEN p.first AND p.last
        {{where}}
        GROUP BY b.member_id, b.unit_id, 3, p.code
    """
    parts = []
    if None in lines:
        parts.append(by_period.format(line="NULL::bigint", where=""))
    if named:
        parts.append(by_period.format(line="b.line", where="WHERE b.line = ANY(%(lines)s)"))
    statement = f"""
        WITH b(member_id, unit_id, line, month, value, commit_value) AS MATERIALIZED ({sql}),
        bp AS MATERIALIZED ({" UNION ALL ".join(parts)})
        SELECT 'member', bp.member_id, bp.line, bp.code, SUM(bp.value), SUM(bp.commit_value)
        FROM bp WHERE bp.member_id IS NOT NULL
        GROUP BY bp.member_id, bp.line, bp.code
        UNION ALL
        SELECT 'unit', a.id, per_unit.line, per_unit.code, SUM(per_unit.value),
               SUM(per_unit.commit_value)
        FROM (
            SELECT bp.unit_id, bp.line, bp.code, SUM(bp.value) AS value,
                   SUM(bp.commit_value) AS commit_value
            FROM bp GROUP BY bp.unit_id, bp.line, bp.code
        ) per_unit
        JOIN crm_orgunit u ON u.tenant_id = %(tenant)s AND u.id = per_unit.unit_id
        CROSS JOIN LATERAL unnest(
            string_to_array(trim(both '/' FROM u.path), '/')::bigint[]) AS a(id)
        GROUP BY a.id, per_unit.line, per_unit.code
    """
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return {
            (kind, pk, line, code): (Decimal(value), Decimal(commit))
            for kind, pk, line, code, value, commit in cursor.fetchall()
        }


@dataclass
class CreditIndex:
    """Buckets credited to members and rolled up to every ancestor unit, in Python: the
    decomposition's history (last year's actuals) for every assignee of the tree. (A
    plan's achievement rolls up in SQL instead: ``period_totals``.)

    ``total(key, months, product_line)`` answers the value of any assignee.
    """

    member: dict[tuple[int, int, int | None], Decimal] = field(default_factory=dict)
    unit: dict[tuple[int, int, int | None], Decimal] = field(default_factory=dict)

    @classmethod
    def build(cls, buckets: Iterable[Bucket], unit_paths: dict[int, str]) -> CreditIndex:
        index = cls(defaultdict(Decimal), defaultdict(Decimal))
        ancestors: dict[int | None, list[int]] = {None: []}  # a unit's path, parsed once
        for bucket in buckets:
            chain = ancestors.get(bucket.unit_id)
            if chain is None:
                path = unit_paths.get(bucket.unit_id) if bucket.unit_id is not None else None
                chain = ancestors[bucket.unit_id] = _ids(path)
            products = (None, bucket.product_line_id) if bucket.product_line_id else (None,)
            for product in products:
                if bucket.member_id is not None:
                    index.member[(bucket.member_id, bucket.month, product)] += bucket.value
                for ancestor in chain:
                    index.unit[(ancestor, bucket.month, product)] += bucket.value
        return index

    def total(self, key: Key, months: Iterable[int], product_line_id: int | None = None) -> Decimal:
        kind, pk = key
        table = self.member if kind == "member" else self.unit
        return sum(
            (table.get((pk, month, product_line_id), Decimal(0)) for month in months), Decimal(0)
        )


def _ids(path: str | None) -> list[int]:
    return [int(part) for part in path.strip("/").split("/")] if path else []


def unit_paths() -> dict[int, str]:
    return dict(OrgUnit.objects.values_list("id", "path"))


# --- visibility (SPEC section 2) --------------------------------------------------------


def _assigned_to_visible(member: Membership) -> Q:
    """Rows assigned to a member or an org unit the caller may see."""
    return Q(member__in=tenancy_selectors.visible_memberships(member).values("pk")) | Q(
        org_unit__in=tenancy_selectors.visible_org_units(member).values("pk")
    )


def _visible(model: type[Any], member: Membership) -> QuerySet[Any]:
    if member.role == Role.ADMIN:
        return model.objects.all()
    if member.role == Role.MANAGER:
        return model.objects.filter(_assigned_to_visible(member))
    return model.objects.filter(member=member)


def visible_targets(member: Membership) -> QuerySet[Target]:
    """A rep sees their own targets; a manager those of their subtree (members and
    units); an admin every target."""
    return _visible(Target, member)


def get_target(queryset: QuerySet[Target], public_id: object) -> Target:
    """The target with this public id from ``queryset`` (e.g. ``visible_targets``),
    looked up by its series and period code; ``NotFound`` when it is not there or the
    id names no period."""
    target = queryset.filter(target_ids_q([public_id])).first()
    if target is None:
        raise NotFound()
    return target


def get_visible_target(member: Membership, public_id: object) -> Target:
    return get_target(visible_targets(member).select_related("plan"), public_id)


def targets_of(rows: Iterable[PeriodTargetRow], queryset: QuerySet[Target]) -> dict[int, Target]:
    """The period targets the rows (adjustments, snapshots) are about, by public id, in
    one query by series and period code."""
    ids = {row.target_id for row in rows}
    if not ids:
        return {}
    return {target.pk: target for target in queryset.filter(target_ids_q(ids))}


def visible_series(member: Membership) -> QuerySet[TargetSeries]:
    """The series behind the visible targets (same rule): filter adjustments and
    snapshots by these, not by the period view, which would expand every series."""
    return _visible(TargetSeries, member)


def visible_commitments(member: Membership) -> QuerySet[Commitment]:
    """Bottom-up commitments by the same rule as targets."""
    if member.role == Role.ADMIN:
        return Commitment.objects.all()
    return Commitment.objects.filter(_assigned_to_visible(member))
