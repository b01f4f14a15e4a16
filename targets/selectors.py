"""Set-based reads for targets: monthly actuals and open pipeline per credited bucket.

Each function is one SQL query grouped by ``(member, unit, product line, fiscal month)``;
roll-ups to org units happen on those few buckets, not on rows (SPEC section 4:
a unit's actual is the sum over the rows credited to its subtree).
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

from crm import selectors as crm_selectors
from crm.models import Membership, OrgUnit, Role, Tenant
from targets import calendar
from targets.metrics import get_metric
from targets.models import Commitment, Target, TargetSeries

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


def monthly_actuals(tenant: Tenant, metric_key: str, fiscal_year: int, up_to: date) -> list[Bucket]:
    """The metric's credited values in the fiscal year up to and including ``up_to``."""
    metric = get_metric(metric_key)
    year = calendar.fiscal_year(fiscal_year, tenant.fiscal_year_start_month)
    end = min(up_to, year.end)
    sql = f"""
        SELECT r.member_id, r.unit_id, r.product_line_id, {_month_index_sql("r.day")} AS month,
               SUM(r.value)
        FROM ({metric.sql}) r
        WHERE r.day BETWEEN %(start)s AND %(end)s
        GROUP BY 1, 2, 3, 4
    """
    params: dict[str, Any] = {
        "tenant": tenant.pk,
        "tz": tenant.time_zone,
        "fy": year.start.year,
        "start_month": year.start.month,
        "start": year.start,
        "end": end,
    }
    if end < year.start:
        return []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [Bucket(m, u, p, int(month), Decimal(v)) for m, u, p, month, v in cursor.fetchall()]


def open_pipeline(tenant: Tenant, fiscal_year: int, after: date) -> list[Bucket]:
    """Open deals credited to their current owner and unit, expected to close after
    ``after`` within the fiscal year: Σ amount × probability / 100, and the commit part."""
    year = calendar.fiscal_year(fiscal_year, tenant.fiscal_year_start_month)
    sql = f"""
        SELECT o.owner_id, m.org_unit_id, o.product_line_id,
               {_month_index_sql("o.expected_close_date")} AS month,
               SUM(o.amount * COALESCE(o.probability_override, s.probability) / 100.0),
               SUM(o.amount * COALESCE(o.probability_override, s.probability) / 100.0)
                 FILTER (WHERE COALESCE(NULLIF(o.forecast_category_override, ''),
                                        s.forecast_category) = 'commit')
        FROM crm_opportunity o
        JOIN crm_stage s ON s.id = o.stage_id
        JOIN crm_membership m ON m.id = o.owner_id
        WHERE o.tenant_id = %(tenant)s AND s.kind = 'open' AND o.deleted_at IS NULL
          AND o.amount IS NOT NULL
          AND o.expected_close_date > %(after)s AND o.expected_close_date <= %(end)s
        GROUP BY 1, 2, 3, 4
    """
    params: dict[str, Any] = {
        "tenant": tenant.pk,
        "fy": year.start.year,
        "start_month": year.start.month,
        "after": after,
        "end": year.end,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [
            Bucket(m, u, p, int(month), Decimal(v), Decimal(c or 0))
            for m, u, p, month, v, c in cursor.fetchall()
        ]


@dataclass
class CreditIndex:
    """Buckets credited to members and rolled up to every ancestor unit.

    ``total(key, months, product_line)`` answers the actual (or pipeline) of any node.
    """

    member: dict[tuple[int, int, int | None], Decimal] = field(default_factory=dict)
    unit: dict[tuple[int, int, int | None], Decimal] = field(default_factory=dict)
    member_commit: dict[tuple[int, int, int | None], Decimal] = field(default_factory=dict)
    unit_commit: dict[tuple[int, int, int | None], Decimal] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        buckets: Iterable[Bucket],
        unit_paths: dict[int, str],
        lines: set[int | None] | None = None,
    ) -> CreditIndex:
        """Roll the buckets up; ``lines`` limits the product lines kept (None in it: the
        totals over all lines), default all of them."""
        index = cls(
            defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal)
        )
        ancestors: dict[int | None, list[int]] = {None: []}  # a unit's path, parsed once
        for bucket in buckets:
            chain = ancestors.get(bucket.unit_id)
            if chain is None:
                path = unit_paths.get(bucket.unit_id) if bucket.unit_id is not None else None
                chain = ancestors[bucket.unit_id] = _ids(path)
            products = (None, bucket.product_line_id) if bucket.product_line_id else (None,)
            for product in products:
                if lines is not None and product not in lines:
                    continue
                if bucket.member_id is not None:
                    key = (bucket.member_id, bucket.month, product)
                    index.member[key] += bucket.value
                    index.member_commit[key] += bucket.commit_value
                for ancestor in chain:
                    key = (ancestor, bucket.month, product)
                    index.unit[key] += bucket.value
                    index.unit_commit[key] += bucket.commit_value
        return index

    def total(
        self,
        key: Key,
        months: Iterable[int],
        product_line_id: int | None = None,
        *,
        commit: bool = False,
    ) -> Decimal:
        kind, pk = key
        if kind == "member":
            table = self.member_commit if commit else self.member
        else:
            table = self.unit_commit if commit else self.unit
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
    return Q(member__in=crm_selectors.visible_memberships(member).values("pk")) | Q(
        org_unit__in=crm_selectors.visible_org_units(member).values("pk")
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


def visible_series(member: Membership) -> QuerySet[TargetSeries]:
    """The series behind the visible targets (same rule): filter adjustments and
    snapshots by these, not by the period view, which would expand every series."""
    return _visible(TargetSeries, member)


def visible_commitments(member: Membership) -> QuerySet[Commitment]:
    """Bottom-up commitments by the same rule as targets."""
    if member.role == Role.ADMIN:
        return Commitment.objects.all()
    return Commitment.objects.filter(_assigned_to_visible(member))
