"""From the domain's signals to the outbox (SPEC section 11).

Every receiver runs inside the transaction of the change (the signals are sent there),
so the outbox rows commit or roll back with it. Each one first asks which of its event
types any active endpoint wants (one query) and builds a payload only for those.

A payload is ``{"type", "timestamp", "data"}``: ``timestamp`` is when the change
happened (ISO 8601, UTC), ``data`` the record's ids and main fields; amounts are strings
in the tenant's currency, rounded to its minor unit (``"12500.00"``), dates ISO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crm.models import Opportunity, Payment, PaymentStatus, Stage, StageChange, StageKind, Visit
from integrations.models import WebhookEvent
from integrations.webhooks import services
from tenancy.models import Tenant
from tenancy.money import round_money

Builder = Callable[[], dict[str, Any]]


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else str(round_money(amount, currency))


def _currency(tenant_id: int) -> str:
    return str(Tenant.objects.values_list("currency", flat=True).get(pk=tenant_id))


def _stage_of(opportunity: Opportunity) -> Stage:
    stage = opportunity.stage
    return stage


def opportunity_data(opportunity: Opportunity, **extra: Any) -> dict[str, Any]:
    currency = _currency(opportunity.tenant_id)
    stage = _stage_of(opportunity)
    return {
        "id": opportunity.pk,
        "name": opportunity.name,
        "customer_id": opportunity.customer_id,
        "owner_id": opportunity.owner_id,
        "pipeline_id": opportunity.pipeline_id,
        "stage_id": opportunity.stage_id,
        "stage_name": stage.name,
        "stage_kind": stage.kind,
        "product_line_id": opportunity.product_line_id,
        "amount": _money(opportunity.amount, currency),
        "currency": currency,
        "expected_close_date": _iso(opportunity.expected_close_date),
        "closed_date": _iso(opportunity.closed_date),
        "lost_reason": opportunity.lost_reason,
        "version": opportunity.version,
        **extra,
    }


def payment_data(payment: Payment) -> dict[str, Any]:
    currency = _currency(payment.tenant_id)
    return {
        "id": payment.pk,
        "opportunity_id": payment.opportunity_id,
        "amount": _money(payment.amount, currency),
        "currency": currency,
        "status": payment.status,
        "planned_date": _iso(payment.planned_date),
        "received_date": _iso(payment.received_date),
        "reverses_id": payment.reverses_id,
        "recorded_by_id": payment.recorded_by_id,
    }


def visit_data(visit: Visit) -> dict[str, Any]:
    return {
        "id": visit.pk,
        "customer_id": visit.customer_id,
        "rep_id": visit.rep_id,
        "check_in_at": _iso(visit.check_in_at),
        "latitude": None if visit.check_in_latitude is None else str(visit.check_in_latitude),
        "longitude": None if visit.check_in_longitude is None else str(visit.check_in_longitude),
        "distance_m": None if visit.distance_m is None else str(visit.distance_m),
        "verified": visit.verified,
    }


def _opportunity_events(
    kind: str, opportunity: Opportunity, member_id: int | None
) -> list[tuple[str, Builder]]:
    stage_kind = _stage_of(opportunity).kind
    closing: str | None = None
    if stage_kind == StageKind.WON:
        closing = WebhookEvent.OPPORTUNITY_WON
    elif stage_kind == StageKind.LOST:
        closing = WebhookEvent.OPPORTUNITY_LOST
    events: list[tuple[str, Builder]] = []
    if kind == "created":
        events.append((WebhookEvent.OPPORTUNITY_CREATED, lambda: opportunity_data(opportunity)))
    elif kind == "moved":

        def moved() -> dict[str, Any]:
            from_stage_id = (
                StageChange.objects.filter(opportunity_id=opportunity.pk)
                .order_by("-changed_at", "-id")
                .values_list("from_stage_id", flat=True)
                .first()
            )
            return opportunity_data(
                opportunity, from_stage_id=from_stage_id, changed_by_id=member_id
            )

        events.append((WebhookEvent.OPPORTUNITY_STAGE_CHANGED, moved))
    else:
        return []
    if closing is not None:
        events.append((closing, lambda: opportunity_data(opportunity, changed_by_id=member_id)))
    return events


def record_events(
    kind: str, source: Any, member_id: int | None, fields: Iterable[str]
) -> list[tuple[str, Builder]]:
    """The webhook events a CRM record event stands for (``crm.events.record_event``)."""
    if isinstance(source, Opportunity):
        return _opportunity_events(kind, source, member_id)
    if isinstance(source, Payment):
        received = (kind == "created" or "status" in fields) and (
            source.status == PaymentStatus.RECEIVED
        )
        if received and kind in {"created", "updated"}:
            return [(WebhookEvent.PAYMENT_RECEIVED, lambda: payment_data(source))]
        if kind == "created" and source.status == PaymentStatus.REVERSED:
            return [(WebhookEvent.PAYMENT_REVERSED, lambda: payment_data(source))]
        return []
    if isinstance(source, Visit) and kind == "updated" and "check_in_at" in fields:
        return [(WebhookEvent.VISIT_CHECKED_IN, lambda: visit_data(source))]
    return []


# --- receivers ------------------------------------------------------------------------


def on_record_event(
    sender: type[Any],
    *,
    kind: str,
    source: Any,
    member: Any = None,
    occurred_at: datetime | None = None,
    fields: Iterable[str] = (),
    **kwargs: Any,
) -> None:
    events = record_events(kind, source, getattr(member, "pk", None), fields)
    if events:
        services.outbox_write(tenant_id=source.tenant_id, events=events, occurred_at=occurred_at)


def on_target_adjusted(
    sender: type[Any], *, adjustment: Any, member: Any = None, **kwargs: Any
) -> None:
    from targets.models import TargetSeries

    def data() -> dict[str, Any]:
        series = TargetSeries.objects.select_related("plan").get(pk=adjustment.series_id)
        return {
            "adjustment_id": adjustment.pk,
            "target_id": adjustment.target_id,
            "plan_id": series.plan_id,
            "metric": series.plan.metric,
            "fiscal_year": series.plan.fiscal_year,
            "period_code": adjustment.period_code,
            "member_id": series.member_id,
            "org_unit_id": series.org_unit_id,
            "product_line_id": series.product_line_id,
            "old_value": None if adjustment.old_value is None else str(adjustment.old_value),
            "new_value": str(adjustment.new_value),
            "reason": adjustment.reason,
            "effective_from": _iso(adjustment.effective_from),
            "requested_by_id": adjustment.requested_by_id,
            "approved_by_id": adjustment.approved_by_id,
        }

    services.outbox_write(
        tenant_id=adjustment.tenant_id,
        events=[(WebhookEvent.TARGET_ADJUSTED, data)],
        occurred_at=adjustment.decided_at,
    )


def on_alerts_opened(
    sender: type[Any], *, tenant_id: int, alert_ids: list[int], **kwargs: Any
) -> None:
    from funnel.models import Alert

    types = services.subscribed_types(tenant_id, [WebhookEvent.ALERT_OPENED])
    if not types:
        return
    alerts = Alert.objects.filter(pk__in=alert_ids).order_by("pk")
    events: list[tuple[str, Builder]] = []
    for alert in alerts:

        def data(alert: Any = alert) -> dict[str, Any]:
            return {
                "id": alert.pk,
                "rule": alert.rule,
                "subject_type": alert.subject_type,
                "subject_id": alert.subject_id,
                "period": alert.period,
                "owner_id": alert.owner_id,
                "observed": str(alert.observed),
                "threshold": str(alert.threshold),
                "severity": alert.severity,
                "opened_at": _iso(alert.opened_at),
            }

        events.append((WebhookEvent.ALERT_OPENED, data))
    services.outbox_write(tenant_id=tenant_id, events=events, occurred_at=None)


def on_statement_approved(
    sender: type[Any], *, statement: Any, member: Any = None, **kwargs: Any
) -> None:
    def data() -> dict[str, Any]:
        currency = _currency(statement.tenant_id)
        return {
            "id": statement.pk,
            "member_id": statement.member_id,
            "plan_id": statement.plan_id,
            "period_kind": statement.period_kind,
            "period_start": _iso(statement.period_start),
            "period_end": _iso(statement.period_end),
            "total": _money(statement.total, currency),
            "currency": currency,
            "approved_by_id": statement.approved_by_id,
            "approved_at": _iso(statement.approved_at),
        }

    services.outbox_write(
        tenant_id=statement.tenant_id,
        events=[(WebhookEvent.STATEMENT_APPROVED, data)],
        occurred_at=statement.approved_at,
    )


def connect() -> None:
    """Subscribe to the domain's signals (called from ``IntegrationsConfig.ready()``)."""
    from crm.events import record_event
    from funnel.signals import alerts_opened
    from incentives.signals import statement_approved
    from targets.signals import target_adjusted

    record_event.connect(on_record_event, dispatch_uid="integrations.webhooks.record")
    target_adjusted.connect(on_target_adjusted, dispatch_uid="integrations.webhooks.target")
    alerts_opened.connect(on_alerts_opened, dispatch_uid="integrations.webhooks.alerts")
    statement_approved.connect(
        on_statement_approved, dispatch_uid="integrations.webhooks.statement"
    )
