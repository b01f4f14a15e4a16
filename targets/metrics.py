"""The metrics a target can count (SPEC section 4), as a registry of SQL definitions.

Each metric is one SQL query yielding credited rows
``(member_id, unit_id, product_line_id, day, value)``: who the row counts for, which
org unit it counts toward (fixed at the win for deals), its product line, the local date
that places it in a period, and its value. A new metric is one entry here; everything
else (decomposition history, achievement, the nightly job) reads the registry.

The SQL runs inside the tenant's scope (row-level security) and filters on
``%(tenant)s`` too, so the planner uses the ``tenant_id``-led indexes. ``%(tz)s`` is
the tenant's time zone, for local dates of timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Metric:
    key: str
    label: str | Promise
    kind: Literal["amount", "count"]
    sql: str

    @property
    def is_amount(self) -> bool:
        return self.kind == "amount"


_WON = """
    SELECT o.credited_member_id AS member_id, o.credited_org_unit_id AS unit_id,
           o.product_line_id, o.closed_date AS day, {value} AS value
    FROM crm_opportunity o JOIN crm_stage s ON s.id = o.stage_id
    WHERE o.tenant_id = %(tenant)s AND s.kind = 'won' AND o.deleted_at IS NULL
      AND o.credited_member_id IS NOT NULL
"""

METRICS: dict[str, Metric] = {
    metric.key: metric
    for metric in [
        Metric("won_amount", _("Won amount"), "amount", _WON.format(value="o.amount")),
        Metric(
            "collections",
            _("Collections"),
            "amount",
            """
            SELECT o.credited_member_id AS member_id, o.credited_org_unit_id AS unit_id,
                   o.product_line_id, p.received_date AS day, p.amount AS value
            FROM crm_payment p JOIN crm_opportunity o ON o.id = p.opportunity_id
            WHERE p.tenant_id = %(tenant)s AND o.tenant_id = %(tenant)s
              AND p.status IN ('received', 'reversed')
              AND p.deleted_at IS NULL AND o.credited_member_id IS NOT NULL
            """,
        ),
        Metric("won_deals", _("Won deals"), "count", _WON.format(value="1")),
        Metric(
            "new_customers",
            _("New customers"),
            "count",
            """
            SELECT c.first_owner_id AS member_id, m.org_unit_id AS unit_id,
                   NULL::bigint AS product_line_id,
                   (c.created_at AT TIME ZONE %(tz)s)::date AS day, 1 AS value
            FROM crm_customer c JOIN crm_membership m ON m.id = c.first_owner_id
            WHERE c.tenant_id = %(tenant)s AND c.deleted_at IS NULL
            """,
        ),
        Metric(
            "new_leads",
            _("New leads"),
            "count",
            """
            SELECT l.owner_id AS member_id, m.org_unit_id AS unit_id,
                   NULL::bigint AS product_line_id,
                   (l.created_at AT TIME ZONE %(tz)s)::date AS day, 1 AS value
            FROM crm_lead l JOIN crm_membership m ON m.id = l.owner_id
            WHERE l.tenant_id = %(tenant)s AND l.deleted_at IS NULL
            """,
        ),
        Metric(
            "verified_visits",
            _("Verified visits"),
            "count",
            """
            SELECT v.rep_id AS member_id, m.org_unit_id AS unit_id,
                   NULL::bigint AS product_line_id,
                   (v.check_in_at AT TIME ZONE %(tz)s)::date AS day, 1 AS value
            FROM crm_visit v JOIN crm_membership m ON m.id = v.rep_id
            WHERE v.tenant_id = %(tenant)s AND v.verified AND v.deleted_at IS NULL
            """,
        ),
        Metric(
            "activities_done",
            _("Activities done"),
            "count",
            """
            SELECT a.owner_id AS member_id, m.org_unit_id AS unit_id,
                   NULL::bigint AS product_line_id,
                   (a.done_at AT TIME ZONE %(tz)s)::date AS day, 1 AS value
            FROM crm_activity a JOIN crm_membership m ON m.id = a.owner_id
            WHERE a.tenant_id = %(tenant)s AND a.done_at IS NOT NULL AND a.deleted_at IS NULL
            """,
        ),
    ]
}


def get_metric(key: str) -> Metric:
    try:
        return METRICS[key]
    except KeyError:
        raise ValueError(f"unknown metric {key!r}; choose one of {', '.join(METRICS)}") from None
