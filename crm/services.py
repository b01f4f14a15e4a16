"""Writes of CRM records (SPEC section 3), shared by the API, the admin, imports and jobs.

Every service takes the acting ``member`` (for visibility checks and the audit trail),
runs in one transaction and raises ``ValidationError`` (400), ``NotFound`` (404) or
``Conflict`` (409); the API turns each into the error format of SPEC section 8.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext_lazy

from crm import selectors
from crm.events import emit
from crm.geo import haversine_m
from crm.models import (
    Activity,
    Customer,
    ForecastCategory,
    Lead,
    LeadStatus,
    Opportunity,
    OpportunityCorrection,
    Payment,
    PaymentStatus,
    Pipeline,
    ProductLine,
    Stage,
    StageChange,
    StageKind,
    SyncModel,
    Visit,
)
from tenancy import selectors as tenancy_selectors
from tenancy.dates import tenant_today, tenant_zone
from tenancy.errors import Conflict, Forbidden, NotFound
from tenancy.models import Membership, Role, Tenant

S = TypeVar("S", bound=SyncModel)

# (order, English, Chinese, probability, forecast category, kind, rot days)
DEFAULT_STAGES = [
    (1, "Qualification", "商机", 10, ForecastCategory.PIPELINE, StageKind.OPEN, 14),
    (2, "Solution", "需求/方案", 30, ForecastCategory.PIPELINE, StageKind.OPEN, 14),
    (3, "Quote", "报价", 50, ForecastCategory.BEST_CASE, StageKind.OPEN, 14),
    (4, "Negotiation", "谈判", 70, ForecastCategory.COMMIT, StageKind.OPEN, 10),
    (5, "Won", "赢单", 100, ForecastCategory.CLOSED, StageKind.WON, None),
    (6, "Lost", "输单", 0, ForecastCategory.OMITTED, StageKind.LOST, None),
]


def pipeline_create_default(*, tenant: Tenant) -> Pipeline:
    """The seeds' funnel: 商机 → 需求/方案 → 报价 → 谈判 → 赢单 / 输单. Idempotent."""
    with transaction.atomic():
        pipeline = Pipeline.objects.filter(is_default=True).first()
        if pipeline is not None:
            return pipeline
        pipeline = Pipeline.objects.create(tenant=tenant, name="Sales 销售", is_default=True)
        Stage.objects.bulk_create(
            Stage(
                tenant=tenant,
                pipeline=pipeline,
                order=order,
                name=name,
                name_zh=name_zh,
                probability=probability,
                forecast_category=category,
                kind=kind,
                rot_days=rot,
            )
            for order, name, name_zh, probability, category, kind, rot in DEFAULT_STAGES
        )
        return pipeline


# --- offline sync: idempotent create, versioned update, soft delete -------------------


def sync_create(
    model: type[S], *, client_id: uuid.UUID | None, create: Callable[[], S]
) -> tuple[S, bool]:
    """Create once per ``client_id``: a replay (even a concurrent one) returns the original.

    The partial unique index on ``(tenant_id, client_id)`` decides between racing
    replays; the losers roll back their savepoint and read the winner's row.
    """
    if client_id is not None:
        existing = model.all_objects.filter(client_id=client_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            return create(), True
    except IntegrityError:
        if client_id is None:
            raise
        existing = model.all_objects.filter(client_id=client_id).first()
        if existing is None:
            raise
        return existing, False


def sync_update(instance: S, *, expected_version: int | None, **changes: Any) -> S:
    """Apply ``changes`` only if the row is still at ``expected_version`` (else 409)."""
    model = type(instance)
    rows = model.objects.filter(pk=instance.pk)
    if expected_version is not None:
        rows = rows.filter(version=expected_version)
    updated = rows.update(**changes, version=F("version") + 1, updated_at=timezone.now())
    if not updated:
        raise Conflict(
            _("This record was changed by someone else (now at a newer version). Reload it.")
        )
    instance.refresh_from_db()
    emit("updated", source=instance, fields=changes)
    return instance


def sync_delete(instance: SyncModel) -> None:
    """Soft-delete: the row stays as a tombstone listed to syncing devices."""
    type(instance).objects.filter(pk=instance.pk).update(
        deleted_at=timezone.now(), version=F("version") + 1, updated_at=timezone.now()
    )
    emit("deleted", source=instance)


def _lock(model: type[S], pk: Any) -> S:
    """The live row, locked until the transaction ends (no joins: a join re-checked after
    the wait would drop a row another transaction just changed, CONVENTIONS)."""
    row = model.objects.select_for_update(of=("self",)).filter(pk=pk).first()
    if row is None:
        raise NotFound()
    return row


def _full_clean(instance: Model, exclude: list[str] | None = None) -> None:
    instance.full_clean(exclude=["tenant", *(exclude or [])], validate_unique=False)


# --- dates from the past (SPEC 3) ---------------------------------------------------


def may_backdate(member: Membership, *, integration: bool = False) -> bool:
    """Admins and integration tokens (history imports, ERP sync) may record past dates."""
    return integration or member.role == Role.ADMIN


def check_record_date(
    value: date | None, field: str, *, today: date, backdate: bool
) -> date | None:
    """A closed, received or created date: never in the future; in the past only when
    ``backdate`` (an admin or an integration); a rep's write carries today."""
    if value is None:
        return None
    if value > today:
        raise ValidationError({field: _("This date is in the future; record it on the day.")})
    if value < today and not backdate:
        raise ValidationError(
            {
                field: _(
                    "Only an admin or an integration may record a past date; "
                    "leave it empty for today."
                )
            }
        )
    return value


def check_created_at(
    member: Membership, value: datetime | None, *, integration: bool = False
) -> datetime | None:
    """``created_at`` given on a create (a lead or customer from a history import)."""
    if value is None:
        return None
    if value > timezone.now():
        raise ValidationError({"created_at": _("This time is in the future.")})
    today = _tenant_today(member.tenant_id)
    local_day = value.astimezone(tenant_zone(member.tenant)).date()
    check_record_date(
        local_day, "created_at", today=today, backdate=may_backdate(member, integration=integration)
    )
    return value


# --- deleting (SPEC 3): what others depend on answers 409 naming them ---------------


def _dependents_sentence(counts: list[str]) -> str:
    return ", ".join(counts)


#: Phrases for what blocks a delete; the number is filled in (``% {"count": n}``), so
#: each is a literal ``ngettext_lazy`` that makemessages finds.
_DEALS = ngettext_lazy("%(count)d deal", "%(count)d deals", "count")
_VISITS = ngettext_lazy("%(count)d visit", "%(count)d visits", "count")
_ACTIVITIES = ngettext_lazy("%(count)d activity", "%(count)d activities", "count")
_PAYMENTS = ngettext_lazy("%(count)d payment", "%(count)d payments", "count")
_STAGE_CHANGES = ngettext_lazy("%(count)d stage change", "%(count)d stage changes", "count")


def delete_blockers(instance: Model) -> list[str]:
    """What depends on ``instance``, as phrases ("2 deals", "1 visit"); empty = deletable."""
    found: list[str] = []

    def count(rows: Any, phrase: Any) -> None:
        number = rows.count()
        if number:
            found.append(phrase % {"count": number})

    if isinstance(instance, Customer):
        count(Opportunity.objects.filter(customer=instance), _DEALS)
        count(Visit.objects.filter(customer=instance), _VISITS)
        count(Activity.objects.filter(customer=instance), _ACTIVITIES)
    elif isinstance(instance, Opportunity):
        if Stage.objects.filter(pk=instance.stage_id, kind=StageKind.WON).exists():
            found.append(_("its win (won deals are kept for the targets)"))
        count(Payment.objects.filter(opportunity=instance), _PAYMENTS)
    elif isinstance(instance, ProductLine):
        count(Opportunity.all_objects.filter(product_line=instance), _DEALS)
    elif isinstance(instance, Stage):
        count(Opportunity.all_objects.filter(stage=instance), _DEALS)
        count(
            StageChange.objects.filter(Q(to_stage=instance) | Q(from_stage=instance)),
            _STAGE_CHANGES,
        )
    return found


def check_deletable(instance: Model) -> None:
    """Raise ``Conflict`` naming what still depends on ``instance``."""
    blockers = delete_blockers(instance)
    if blockers:
        raise Conflict(
            _(
                "%(record)s cannot be deleted: %(dependents)s depend on it. "
                "Reassign or archive instead."
            )
            % {
                "record": f"{instance._meta.verbose_name} “{instance}”".capitalize(),
                "dependents": _dependents_sentence(blockers),
            }
        )


@transaction.atomic
def record_delete(*, member: Membership, instance: SyncModel) -> None:
    """Soft-delete a synced record (a tombstone) unless others depend on it (409)."""
    locked = _lock(type(instance), instance.pk)
    check_deletable(locked)
    sync_delete(locked)


@transaction.atomic
def config_delete(*, member: Membership, instance: ProductLine | Stage) -> None:
    """Delete a product line or stage that nothing uses (else 409 naming the users)."""
    locked = type(instance).objects.select_for_update(of=("self",)).get(pk=instance.pk)
    check_deletable(locked)
    locked.delete()


# --- customers ----------------------------------------------------------------------


@transaction.atomic
def customer_claim(*, member: Membership, customer: Customer) -> Customer:
    """Take a customer from the public pool (公海). Two claims race: one wins, one gets 409."""
    claimed = Customer.objects.filter(pk=customer.pk, owner__isnull=True).update(
        owner=member, version=F("version") + 1, updated_at=timezone.now()
    )
    if not claimed:
        raise Conflict(_("This customer is not in the public pool any more."))
    Customer.objects.filter(pk=customer.pk, first_owner__isnull=True).update(first_owner=member)
    customer.refresh_from_db()
    return customer


@transaction.atomic
def customer_release(*, member: Membership, customer: Customer) -> Customer:
    """Return a customer to the public pool; of twenty racing releases one wins, 409s."""
    customer = _lock(Customer, customer.pk)
    if customer.owner_id is None:
        raise Conflict(_("This customer is already in the public pool."))
    return sync_update(customer, expected_version=None, owner=None)


# --- opportunities --------------------------------------------------------------------


def _tenant_today(tenant_id: int) -> date:
    """The tenant's today (SPEC preamble): every default date of a record."""
    return tenant_today(Tenant.objects.only("time_zone").get(pk=tenant_id))


def _check_stage(pipeline: Pipeline, stage: Stage) -> None:
    if stage.pipeline_id != pipeline.pk:
        raise ValidationError({"stage": _("This stage belongs to another pipeline.")})


def _apply_closing(
    opportunity: Opportunity, stage: Stage, *, lost_reason: str, closed_date: date | None = None
) -> None:
    """Won fixes the credit (owner and owner's unit now); lost needs a reason and records
    the owner's unit at the loss (``credited_org_unit`` without a credited member: a loss
    counts for no metric, but SPEC 10's review credits it to that unit). The closed date
    is the tenant's today unless ``closed_date`` (already checked) says otherwise."""
    if stage.kind == StageKind.OPEN:
        opportunity.closed_date = None
        opportunity.credited_member_id = None
        opportunity.credited_org_unit_id = None
        opportunity.lost_reason = ""
        return
    if stage.kind == StageKind.WON:
        if opportunity.amount is None or opportunity.amount <= 0:
            raise ValidationError({"amount": _("A deal is won with a positive amount.")})
        opportunity.credited_member_id = opportunity.owner_id
        opportunity.lost_reason = ""
    else:
        if not lost_reason.strip():
            raise ValidationError({"lost_reason": _("Say why the deal was lost.")})
        opportunity.credited_member_id = None
        opportunity.lost_reason = lost_reason.strip()
    opportunity.closed_date = closed_date or _tenant_today(opportunity.tenant_id)
    opportunity.credited_org_unit_id = Membership.objects.values_list("org_unit_id", flat=True).get(
        pk=opportunity.owner_id
    )


def _record_stage_change(
    opportunity: Opportunity, from_stage: Stage | None, member: Membership | None, at: datetime
) -> StageChange:
    if from_stage is not None:
        # The stage it leaves: its change gets its exit time (the deal row is locked, so
        # no concurrent move can interleave here). A new deal has no earlier change.
        StageChange.objects.filter(opportunity=opportunity, exited_at__isnull=True).update(
            exited_at=at
        )
    return StageChange.objects.create(
        tenant_id=opportunity.tenant_id,
        opportunity=opportunity,
        from_stage=from_stage,
        to_stage_id=opportunity.stage_id,
        changed_at=at,
        changed_by=member,
        amount=opportunity.amount,
    )


def opportunity_create(
    *,
    member: Membership,
    customer: Customer,
    name: str,
    owner: Membership | None = None,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    lost_reason: str = "",
    client_id: uuid.UUID | None = None,
    source_lead: Lead | None = None,
    **fields: Any,
) -> tuple[Opportunity, bool]:
    """Create a deal and its first stage-change row (from nothing to its stage)."""

    def create() -> Opportunity:
        chosen_pipeline = pipeline or (stage.pipeline if stage else None)
        chosen_pipeline = chosen_pipeline or Pipeline.objects.get(is_default=True)
        chosen_stage = stage or (
            Stage.objects.filter(pipeline=chosen_pipeline, kind=StageKind.OPEN)
            .order_by("order")
            .first()
        )
        if chosen_stage is None:
            raise ValidationError({"stage": _("The pipeline has no open stage.")})
        _check_stage(chosen_pipeline, chosen_stage)
        check_expected_close(
            fields.get("expected_close_date"), today=_tenant_today(member.tenant_id)
        )
        now = timezone.now()
        opportunity = Opportunity(
            tenant_id=member.tenant_id,
            name=name,
            customer=customer,
            owner=owner or member,
            pipeline=chosen_pipeline,
            stage=chosen_stage,
            client_id=client_id,
            source_lead=source_lead,
            stage_entered_at=now,
            **fields,
        )
        _apply_closing(opportunity, chosen_stage, lost_reason=lost_reason)
        _full_clean(opportunity)
        opportunity.save()
        _record_stage_change(opportunity, None, member, now)
        return opportunity

    with transaction.atomic():
        return sync_create(Opportunity, client_id=client_id, create=create)


@transaction.atomic
def opportunity_move(
    *,
    member: Membership,
    opportunity: Opportunity,
    stage: Stage,
    lost_reason: str = "",
    reopen: bool = False,
    expected_version: int | None = None,
    amount: Decimal | None = None,
    closed_date: date | None = None,
    integration: bool = False,
    at: datetime | None = None,
) -> Opportunity:
    """Move a deal to ``stage`` and record the stage change in the same transaction.

    Lost needs a reason; won needs an amount (``amount`` sets it in the same call) and
    fixes the credit; moving a closed deal back to an open stage needs ``reopen``
    (explicit, never by accident). A win or a loss is dated the tenant's today; an admin
    or an integration may give an earlier ``closed_date``, never a later one (SPEC 3).
    ``at`` dates the stage change (a history import: its closed day), by default now; it
    is never before the deal entered its current stage nor after now.
    """
    today = _tenant_today(opportunity.tenant_id)
    if closed_date is not None and stage.kind == StageKind.OPEN:
        raise ValidationError(
            {"closed_date": _("A closed date is given only when a deal is won or lost.")}
        )
    check_record_date(
        closed_date,
        "closed_date",
        today=today,
        backdate=may_backdate(member, integration=integration),
    )
    if amount is not None and amount <= 0:
        raise ValidationError({"amount": _("A deal is won with a positive amount.")})
    # The lock is taken on the deal alone: with its stage joined, a move that waited for
    # a concurrent one re-read a row whose stage no longer matched and got DoesNotExist.
    locked = _lock(Opportunity, opportunity.pk)
    if expected_version is not None and locked.version != expected_version:
        raise Conflict(
            _("This record was changed by someone else (now at a newer version). Reload it.")
        )
    if stage.pipeline_id != locked.pipeline_id:
        raise ValidationError({"stage": _("This stage belongs to another pipeline.")})
    locked.stage = Stage.objects.get(pk=locked.stage_id)
    if stage.pk == locked.stage_id:
        # A state, not bad input: the loser of two identical moves gets a 409.
        raise Conflict(_("The deal is already in this stage."))
    was_closed = locked.stage.kind != StageKind.OPEN
    if was_closed and stage.kind == StageKind.OPEN and not reopen:
        raise ValidationError(
            {"reopen": _("This deal is closed; reopen it explicitly to move it back.")}
        )
    if was_closed and stage.kind != StageKind.OPEN:
        raise ValidationError({"stage": _("Reopen the deal before closing it another way.")})
    from_stage = locked.stage
    now = timezone.now()
    if at is not None:
        if at > now or at < locked.stage_entered_at:
            raise ValidationError(
                {
                    "closed_date": _(
                        "A deal leaves its stage after it entered it (%(entered)s) and "
                        "not in the future."
                    )
                    % {"entered": locked.stage_entered_at.date().isoformat()}
                }
            )
        now = at
    locked.stage = stage
    locked.stage_entered_at = now
    if amount is not None:
        locked.amount = amount
    _apply_closing(locked, stage, lost_reason=lost_reason, closed_date=closed_date)
    locked.version += 1
    locked.save()
    _record_stage_change(locked, from_stage, member, now)
    emit("moved", source=locked, member=member, occurred_at=now)
    return locked


# What a closed deal keeps: only a correction changes it (SPEC 3).
CLOSED_FIELDS = ("amount", "product_line", "closed_date")


def check_expected_close(value: date | None, *, today: date) -> None:
    """A plausible expected close date: from 2000 to ten years after today."""
    if value is not None and not date(2000, 1, 1) <= value <= today.replace(year=today.year + 10):
        raise ValidationError(
            {"expected_close_date": _("Give a date between 2000 and ten years from today.")}
        )


@transaction.atomic
def opportunity_update(
    *, member: Membership, opportunity: Opportunity, expected_version: int | None, **changes: Any
) -> Opportunity:
    """Edit a deal. A won or lost deal's amount, product line and closed date change only
    through :func:`opportunity_correct` (403 saying who may)."""
    locked = _lock(Opportunity, opportunity.pk)
    if "expected_close_date" in changes:
        check_expected_close(changes["expected_close_date"], today=_tenant_today(locked.tenant_id))
    closed = Stage.objects.filter(pk=locked.stage_id).exclude(kind=StageKind.OPEN).exists()
    frozen = [
        field
        for field in CLOSED_FIELDS
        if field in changes and changes[field] != getattr(locked, field)
    ]
    if closed and frozen:
        raise Forbidden(
            _(
                "This deal is closed: its amount, product line and closed date change only "
                "through a correction by a manager above its owner or an admin, with a reason."
            )
        )
    return sync_update(locked, expected_version=expected_version, **changes)


def _may_correct(member: Membership, owner: Membership) -> bool:
    if member.role == Role.ADMIN:
        return True
    return (
        member.role == Role.MANAGER
        and owner.pk != member.pk
        and tenancy_selectors.is_manager_of(member, owner)
    )


def _json(value: Any) -> Any:
    if isinstance(value, Model):
        return value.pk
    return None if value is None else str(value)


@transaction.atomic
def opportunity_correct(
    *,
    member: Membership,
    opportunity: Opportunity,
    reason: str,
    expected_version: int | None = None,
    **changes: Any,
) -> Opportunity:
    """Correct a won or lost deal's ``amount``, ``product_line`` or ``closed_date`` (SPEC 3).

    Only an admin or a manager above the owner may (else 403, saying so); a reason is
    required; the old and new values, who and when are kept as an
    ``OpportunityCorrection`` row. Credit stays where the win fixed it.
    """
    unknown = set(changes) - set(CLOSED_FIELDS)
    if unknown:
        raise ValidationError(
            {
                field: _("Only amount, product line and closed date are corrected.")
                for field in unknown
            }
        )
    locked = _lock(Opportunity, opportunity.pk)
    owner = Membership.objects.get(pk=locked.owner_id)
    if not _may_correct(member, owner):
        raise Forbidden(
            _("Only a manager above the deal's owner or an admin may correct a closed deal.")
        )
    stage = Stage.objects.get(pk=locked.stage_id)
    if stage.kind == StageKind.OPEN:
        raise Conflict(_("This deal is open: edit it directly, no correction is needed."))
    if expected_version is not None and locked.version != expected_version:
        raise Conflict(
            _("This record was changed by someone else (now at a newer version). Reload it.")
        )
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the deal is corrected.")})
    today = _tenant_today(locked.tenant_id)
    if "closed_date" in changes:
        if changes["closed_date"] is None:
            raise ValidationError({"closed_date": _("A closed deal keeps a closed date.")})
        check_record_date(changes["closed_date"], "closed_date", today=today, backdate=True)
    if "amount" in changes:
        amount = changes["amount"]
        if stage.kind == StageKind.WON and (amount is None or amount <= 0):
            raise ValidationError({"amount": _("A won deal keeps a positive amount.")})
    changed = {field: value for field, value in changes.items() if getattr(locked, field) != value}
    if not changed:
        raise ValidationError(_("The correction changes nothing."))
    OpportunityCorrection.objects.create(
        tenant_id=locked.tenant_id,
        opportunity=locked,
        old_values={field: _json(getattr(locked, field)) for field in changed},
        new_values={field: _json(value) for field, value in changed.items()},
        reason=reason.strip(),
        corrected_by=member,
    )
    return sync_update(locked, expected_version=None, **changed)


# Each change's exit is the next change of its deal: one probe of ``stagechange_opp`` per
# row, so the plan stays linear whatever the table's statistics say (a join against a
# window over the table degenerates into a nested loop when they are stale).
_NEXT_CHANGE = """(
    SELECT n.changed_at FROM crm_stagechange n
    WHERE n.tenant_id = sc.tenant_id AND n.opportunity_id = sc.opportunity_id
      AND (n.changed_at, n.id) > (sc.changed_at, sc.id)
    ORDER BY n.changed_at, n.id LIMIT 1)"""
STAGE_EXITS_SQL = f"""
UPDATE crm_stagechange sc SET exited_at = {_NEXT_CHANGE}
WHERE sc.tenant_id = %s AND sc.exited_at IS DISTINCT FROM {_NEXT_CHANGE}
"""


def stage_exits_recompute(tenant_id: int) -> int:
    """Set every stage change's ``exited_at`` from the next change of its deal, in one
    statement: for bulk loads that insert stage changes without the service (the data
    generator, imports). Returns the number of rows changed."""
    with connection.cursor() as cursor:
        cursor.execute(STAGE_EXITS_SQL, [tenant_id])
        return cursor.rowcount


# --- payments -----------------------------------------------------------------------------


def payment_record(
    *,
    member: Membership,
    opportunity: Opportunity,
    amount: Decimal,
    planned_date: date | None = None,
    received_date: date | None = None,
    note: str = "",
    client_id: uuid.UUID | None = None,
    integration: bool = False,
) -> tuple[Payment, bool]:
    """Plan or record a payment (回款) of a won deal. A received date is today, or
    earlier from an admin or an integration, never later (SPEC 3)."""

    def create() -> Payment:
        # A concurrent reopen must not leave a payment on an open deal: lock, then check.
        deal = _lock(Opportunity, opportunity.pk)
        if Stage.objects.get(pk=deal.stage_id).kind != StageKind.WON:
            raise ValidationError({"opportunity": _("Payments are recorded on won deals.")})
        if amount <= 0:
            raise ValidationError({"amount": _("A payment is positive; reverse it to undo it.")})
        check_record_date(
            received_date,
            "received_date",
            today=_tenant_today(opportunity.tenant_id),
            backdate=may_backdate(member, integration=integration),
        )
        if planned_date is None and received_date is None:
            raise ValidationError(
                {"planned_date": _("Give a planned date, a received date or both.")}
            )
        payment = Payment(
            tenant_id=opportunity.tenant_id,
            opportunity=opportunity,
            amount=amount,
            planned_date=planned_date,
            received_date=received_date,
            status=PaymentStatus.RECEIVED if received_date else PaymentStatus.PLANNED,
            recorded_by=member,
            note=note,
            client_id=client_id,
        )
        _full_clean(payment)
        payment.save()
        return payment

    with transaction.atomic():
        return sync_create(Payment, client_id=client_id, create=create)


@transaction.atomic
def payment_receive(
    *,
    member: Membership,
    payment: Payment,
    received_date: date | None = None,
    integration: bool = False,
) -> Payment:
    """Mark a planned payment received, on ``received_date`` (default: the tenant's today;
    an earlier day only from an admin or an integration)."""
    today = _tenant_today(payment.tenant_id)
    backdate = may_backdate(member, integration=integration)
    received_date = check_record_date(received_date, "date", today=today, backdate=backdate)
    received_date = received_date or today
    payment = _lock(Payment, payment.pk)
    if payment.status != PaymentStatus.PLANNED:
        raise Conflict(_("Only a planned payment can be marked received."))
    return sync_update(
        payment, expected_version=None, status=PaymentStatus.RECEIVED, received_date=received_date
    )


@transaction.atomic
def payment_reverse(
    *,
    member: Membership,
    payment: Payment,
    reversed_date: date | None = None,
    note: str = "",
    integration: bool = False,
) -> Payment:
    """Reverse a received payment with a new negative row; the received row is never edited.

    The reversal is dated ``reversed_date`` (default: the tenant's today)."""
    today = _tenant_today(payment.tenant_id)
    backdate = may_backdate(member, integration=integration)
    reversed_date = check_record_date(reversed_date, "date", today=today, backdate=backdate)
    reversed_date = reversed_date or today
    locked = _lock(Payment, payment.pk)
    if locked.status != PaymentStatus.RECEIVED:
        raise Conflict(_("Only a received payment can be reversed."))
    if Payment.all_objects.filter(reverses=locked).exists():
        raise Conflict(_("This payment has already been reversed."))
    try:
        with transaction.atomic():
            return Payment.objects.create(
                tenant_id=locked.tenant_id,
                opportunity_id=locked.opportunity_id,
                amount=-locked.amount,
                received_date=reversed_date,
                status=PaymentStatus.REVERSED,
                reverses=locked,
                recorded_by=member,
                note=note,
            )
    except IntegrityError as error:
        raise Conflict(_("This payment has already been reversed.")) from error


# --- visits -------------------------------------------------------------------------------


def round_coordinate(value: Decimal) -> Decimal:
    """Coordinates come with any number of decimals; 6 (about 0.1 m) are kept (SPEC 3)."""
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


@transaction.atomic
def visit_update(
    *, member: Membership, visit: Visit, expected_version: int | None, **changes: Any
) -> Visit:
    """Edit a planned visit; once checked in, its customer (and check-in) cannot change."""
    locked = _lock(Visit, visit.pk)
    if (
        locked.check_in_at is not None
        and "customer" in changes
        and changes["customer"].pk != locked.customer_id
    ):
        raise Conflict(_("This visit is checked in: its customer and check-in cannot change."))
    return sync_update(locked, expected_version=expected_version, **changes)


def _coordinates(latitude: Decimal, longitude: Decimal) -> None:
    errors = {}
    if not Decimal("-90") <= latitude <= Decimal("90"):
        errors["latitude"] = _("Latitude must be between -90 and 90.")
    if not Decimal("-180") <= longitude <= Decimal("180"):
        errors["longitude"] = _("Longitude must be between -180 and 180.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def visit_check_in(
    *,
    member: Membership,
    visit: Visit,
    latitude: Decimal,
    longitude: Decimal,
    accuracy_m: Decimal | None = None,
    device_time: datetime | None = None,
) -> Visit:
    """Check in: distance to the customer (haversine); verified within the tenant radius
    and with an accuracy within the tenant's limit. Coordinates are rounded to 6 places."""
    latitude, longitude = round_coordinate(latitude), round_coordinate(longitude)
    _coordinates(latitude, longitude)
    if accuracy_m is not None and accuracy_m < 0:
        raise ValidationError({"accuracy_m": _("Accuracy cannot be negative.")})
    locked = _lock(Visit, visit.pk)
    if locked.rep_id != member.pk:
        raise ValidationError({"rep": _("Only the visit's rep checks in.")})
    if locked.check_in_at is not None:
        raise Conflict(_("This visit is already checked in."))
    customer = Customer.all_objects.get(pk=locked.customer_id)
    distance = None
    verified = False
    if customer.latitude is not None and customer.longitude is not None:
        distance = haversine_m(latitude, longitude, customer.latitude, customer.longitude)
        radius, accuracy_limit = Tenant.objects.values_list(
            "visit_radius_m", "visit_accuracy_limit_m"
        ).get(pk=locked.tenant_id)
        # A fix reported to within 5 km proves nothing about being 100 m away; without
        # an accuracy the check-in is kept but not verified (SPEC 3).
        verified = distance <= radius and accuracy_m is not None and accuracy_m <= accuracy_limit
    return sync_update(
        locked,
        expected_version=None,
        check_in_at=timezone.now(),
        check_in_device_at=device_time,
        check_in_latitude=latitude,
        check_in_longitude=longitude,
        check_in_accuracy_m=accuracy_m,
        distance_m=distance,
        verified=verified,
    )


@transaction.atomic
def visit_check_out(
    *,
    member: Membership,
    visit: Visit,
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
    device_time: datetime | None = None,
    outcome: str | None = None,
    next_step: str | None = None,
) -> Visit:
    if (latitude is None) != (longitude is None):
        raise ValidationError(
            {"longitude" if longitude is None else "latitude": _("Give both coordinates.")}
        )
    if latitude is not None and longitude is not None:
        latitude, longitude = round_coordinate(latitude), round_coordinate(longitude)
        _coordinates(latitude, longitude)
    locked = _lock(Visit, visit.pk)
    if locked.rep_id != member.pk:
        raise ValidationError({"rep": _("Only the visit's rep checks out.")})
    if locked.check_in_at is None:
        raise Conflict(_("Check in before checking out."))
    if locked.check_out_at is not None:
        raise Conflict(_("This visit is already checked out."))
    changes: dict[str, Any] = {
        "check_out_at": timezone.now(),
        "check_out_device_at": device_time,
        "check_out_latitude": latitude,
        "check_out_longitude": longitude,
    }
    if outcome is not None:
        changes["outcome"] = outcome
    if next_step is not None:
        changes["next_step"] = next_step
    return sync_update(locked, expected_version=None, **changes)


# --- activities and leads --------------------------------------------------------------


# A device's clock may run a little ahead of the server's.
CLOCK_SKEW = timedelta(minutes=5)


def check_done_at(done_at: datetime | None) -> None:
    if done_at is not None and done_at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({"done_at": _("An activity cannot be done in the future.")})


@transaction.atomic
def activity_complete(
    *, member: Membership, activity: Activity, outcome: str = "", done_at: datetime | None = None
) -> Activity:
    """Mark an activity done (at ``done_at``, default now, never later); twice is a 409."""
    check_done_at(done_at)
    activity = _lock(Activity, activity.pk)
    if activity.done_at is not None:
        raise Conflict(_("This activity is already done."))
    changes: dict[str, Any] = {"done_at": done_at or timezone.now()}
    if outcome:
        changes["outcome"] = outcome
    return sync_update(activity, expected_version=None, **changes)


@transaction.atomic
def lead_convert(
    *,
    member: Membership,
    lead: Lead,
    customer: Customer | None = None,
    opportunity_name: str | None = None,
    amount: Decimal | None = None,
    expected_close_date: date | None = None,
) -> tuple[Customer, Opportunity]:
    """Turn a lead into a customer (new, or ``customer`` to link) and an opportunity."""
    locked = _lock(Lead, lead.pk)
    if locked.converted_at is not None:
        raise Conflict(_("This lead has already been converted."))
    if locked.status == LeadStatus.DISQUALIFIED:
        raise ValidationError({"status": _("A disqualified lead cannot be converted.")})
    if customer is None:
        customer = Customer.objects.create(
            tenant_id=locked.tenant_id,
            name=locked.company or locked.name,
            source=locked.source,
            owner_id=locked.owner_id,
            first_owner_id=locked.owner_id,
        )
    opportunity, _created = opportunity_create(
        member=member,
        customer=customer,
        name=opportunity_name or locked.company or locked.name,
        owner=locked.owner,
        amount=amount,
        expected_close_date=expected_close_date,
        source_lead=locked,
    )
    sync_update(
        locked,
        expected_version=None,
        status=LeadStatus.QUALIFIED,
        converted_at=timezone.now(),
        converted_customer=customer,
    )
    return customer, opportunity


def check_visible(member: Membership, **objects: Any) -> None:
    """Every id in a payload must be visible to the caller; else 404 like any unknown id."""
    checks: dict[type[Model], Callable[[Membership], Any]] = {
        Customer: selectors.visible_customers,
        Opportunity: selectors.visible_opportunities,
        Lead: selectors.visible_leads,
        Membership: tenancy_selectors.visible_memberships,
    }
    for obj in objects.values():
        if obj is None:
            continue
        visible = checks[type(obj)](member)
        if not visible.filter(pk=obj.pk).exists():
            raise NotFound()
