"""Points (SPEC section 6 "Points"): which CRM rows earn which rule's award, as SQL.

Each event is one SQL statement yielding the rows that earn it today, from the data as
it is: ``(narrow_id, source_type, source_id, member_id, occurred_at, day)``. The same
statements serve the award when an event commits (narrowed to the record that changed:
``narrow_id``) and the night's catch-up (narrowed to a range of local days: ``day``), so
the two can never disagree on what earns points.

``UNDONE`` says, per event that can be undone, when an award's source no longer holds:
a deal reopened (or deleted), a payment reversed (or deleted), a follow-up reopened or
deleted. The statements run inside the tenant's scope and filter on ``%(tenant)s`` too,
so the planner uses the ``tenant_id``-led indexes; ``%(tz)s`` is the tenant's time zone.
"""

from __future__ import annotations

from incentives.models import PointEvent, SourceType

# The narrow column is the id of the record whose change can trigger the event: the
# receiver passes the ids of the records it was told about.
EARNING: dict[str, str] = {
    PointEvent.VISIT_VERIFIED: """
        SELECT v.id AS narrow_id, 'visit' AS source_type, v.id AS source_id,
               v.rep_id AS member_id, v.check_in_at AS occurred_at,
               (v.check_in_at AT TIME ZONE %(tz)s)::date AS day
        FROM crm_visit v
        WHERE v.tenant_id = %(tenant)s AND v.verified AND v.check_in_at IS NOT NULL
          AND v.deleted_at IS NULL
    """,
    PointEvent.LEAD_CREATED: """
        SELECT l.id AS narrow_id, 'lead' AS source_type, l.id AS source_id,
               l.owner_id AS member_id, l.created_at AS occurred_at,
               (l.created_at AT TIME ZONE %(tz)s)::date AS day
        FROM crm_lead l
        WHERE l.tenant_id = %(tenant)s AND l.owner_id IS NOT NULL AND l.deleted_at IS NULL
    """,
    PointEvent.LEAD_CONVERTED: """
        SELECT l.id AS narrow_id, 'lead' AS source_type, l.id AS source_id,
               l.owner_id AS member_id, l.converted_at AS occurred_at,
               (l.converted_at AT TIME ZONE %(tz)s)::date AS day
        FROM crm_lead l
        WHERE l.tenant_id = %(tenant)s AND l.owner_id IS NOT NULL
          AND l.converted_at IS NOT NULL AND l.deleted_at IS NULL
    """,
    PointEvent.OPPORTUNITY_CREATED: """
        SELECT o.id AS narrow_id, 'opportunity' AS source_type, o.id AS source_id,
               o.owner_id AS member_id, o.created_at AS occurred_at,
               (o.created_at AT TIME ZONE %(tz)s)::date AS day
        FROM crm_opportunity o
        WHERE o.tenant_id = %(tenant)s AND o.deleted_at IS NULL
    """,
    # The first entry of a deal into a later open stage than the one it left: the
    # stage change of that entry is the source, so a deal earns each stage once.
    PointEvent.STAGE_ADVANCED: """
        SELECT sc.opportunity_id AS narrow_id, 'stage_change' AS source_type,
               sc.id AS source_id, o.owner_id AS member_id, sc.changed_at AS occurred_at,
               (sc.changed_at AT TIME ZONE %(tz)s)::date AS day
        FROM crm_stagechange sc
        JOIN crm_stage t ON t.id = sc.to_stage_id
        JOIN crm_stage f ON f.id = sc.from_stage_id
        JOIN crm_opportunity o ON o.id = sc.opportunity_id AND o.tenant_id = %(tenant)s
        WHERE sc.tenant_id = %(tenant)s AND t.kind = 'open' AND t."order" > f."order"
          AND o.deleted_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM crm_stagechange e
              WHERE e.tenant_id = %(tenant)s AND e.opportunity_id = sc.opportunity_id
                AND e.to_stage_id = sc.to_stage_id
                AND (e.changed_at, e.id) < (sc.changed_at, sc.id))
    """,
    # Credited to the member the win fixed, on the closed date.
    PointEvent.DEAL_WON: """
        SELECT o.id AS narrow_id, 'opportunity' AS source_type, o.id AS source_id,
               o.credited_member_id AS member_id, o.stage_entered_at AS occurred_at,
               o.closed_date AS day
        FROM crm_opportunity o JOIN crm_stage s ON s.id = o.stage_id
        WHERE o.tenant_id = %(tenant)s AND s.kind = 'won' AND o.deleted_at IS NULL
          AND o.credited_member_id IS NOT NULL AND o.closed_date IS NOT NULL
    """,
    # A received payment not reversed, credited like the collections metric.
    PointEvent.PAYMENT_RECEIVED: """
        SELECT p.id AS narrow_id, 'payment' AS source_type, p.id AS source_id,
               o.credited_member_id AS member_id, p.updated_at AS occurred_at,
               p.received_date AS day
        FROM crm_payment p
        JOIN crm_opportunity o ON o.id = p.opportunity_id AND o.tenant_id = %(tenant)s
        WHERE p.tenant_id = %(tenant)s AND p.status = 'received' AND p.amount > 0
          AND p.received_date IS NOT NULL AND p.deleted_at IS NULL
          AND o.credited_member_id IS NOT NULL
          AND NOT EXISTS (
              SELECT 1 FROM crm_payment r
              WHERE r.tenant_id = %(tenant)s AND r.reverses_id = p.id)
    """,
    # A follow-up (it has a due time) done at or before it.
    PointEvent.ACTIVITY_DONE: """
        SELECT a.id AS narrow_id, 'activity' AS source_type, a.id AS source_id,
               a.owner_id AS member_id, a.done_at AS occurred_at,
               (a.done_at AT TIME ZONE %(tz)s)::date AS day
        FROM crm_activity a
        WHERE a.tenant_id = %(tenant)s AND a.owner_id IS NOT NULL AND a.due_at IS NOT NULL
          AND a.done_at IS NOT NULL AND a.done_at <= a.due_at AND a.deleted_at IS NULL
    """,
}

# Per event that can be undone: a condition on the award row ``pe`` saying its source
# no longer holds.
UNDONE: dict[str, str] = {
    PointEvent.DEAL_WON: """NOT EXISTS (
        SELECT 1 FROM crm_opportunity o JOIN crm_stage s ON s.id = o.stage_id
        WHERE o.tenant_id = %(tenant)s AND o.id = pe.source_id AND s.kind = 'won'
          AND o.deleted_at IS NULL)""",
    PointEvent.PAYMENT_RECEIVED: """EXISTS (
        SELECT 1 FROM crm_payment p
        WHERE p.tenant_id = %(tenant)s
          AND (p.reverses_id = pe.source_id
               OR (p.id = pe.source_id AND p.deleted_at IS NOT NULL)))""",
    PointEvent.ACTIVITY_DONE: """EXISTS (
        SELECT 1 FROM crm_activity a
        WHERE a.tenant_id = %(tenant)s AND a.id = pe.source_id
          AND (a.done_at IS NULL OR a.deleted_at IS NOT NULL))""",
}

# The events a change of one kind of record can earn or undo. A payment's reversal row
# names the payment it reverses: the receiver narrows to both ids.
EVENTS_OF_SOURCE: dict[str, tuple[str, ...]] = {
    "Visit": (PointEvent.VISIT_VERIFIED,),
    "Lead": (PointEvent.LEAD_CREATED, PointEvent.LEAD_CONVERTED),
    "Opportunity": (
        PointEvent.OPPORTUNITY_CREATED,
        PointEvent.STAGE_ADVANCED,
        PointEvent.DEAL_WON,
    ),
    "Payment": (PointEvent.PAYMENT_RECEIVED,),
    "Activity": (PointEvent.ACTIVITY_DONE,),
}

SOURCE_OF_EVENT: dict[str, str] = {
    PointEvent.VISIT_VERIFIED: SourceType.VISIT,
    PointEvent.LEAD_CREATED: SourceType.LEAD,
    PointEvent.LEAD_CONVERTED: SourceType.LEAD,
    PointEvent.OPPORTUNITY_CREATED: SourceType.OPPORTUNITY,
    PointEvent.STAGE_ADVANCED: SourceType.STAGE_CHANGE,
    PointEvent.DEAL_WON: SourceType.OPPORTUNITY,
    PointEvent.PAYMENT_RECEIVED: SourceType.PAYMENT,
    PointEvent.ACTIVITY_DONE: SourceType.ACTIVITY,
}
