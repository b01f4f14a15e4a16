"""Writes of the funnel app: reviews (SPEC §10), their findings, action items and close.

Each service takes keyword-only arguments and runs in one transaction; they raise
``tenancy.errors`` (404, 409, 400, 403 at the API edge), never HTTP.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Activity, ActivityType
from funnel.models import Review, ReviewAction, ReviewStatus
from funnel.review_selectors import check_reviewable, review_figures, review_target
from targets.models import Target
from tenancy import selectors as tenancy_selectors
from tenancy.dates import tenant_today, tenant_zone
from tenancy.errors import Conflict, Forbidden, Invalid
from tenancy.models import Membership, OrgUnit, Role, Tenant

# The hour (tenant time) an action item's follow-up falls due on its due date: inside the
# day, so it is "due today" in that morning's digest and overdue from the next one.
ACTION_DUE_HOUR = time(9, 0)


def check_may_review(member: Membership, target: Target) -> None:
    """The reviewer is an admin, a manager above the node (a unit they manage, or a
    member of one) or the member themselves (SPEC §10). The caller already sees the
    node (else it was a 404); a node seen but not theirs to review is a 403."""
    if member.role == Role.ADMIN or target.member_id == member.pk:
        return
    if member.role == Role.MANAGER:
        unit_id = target.org_unit_id
        if target.member_id is not None:
            unit_id = (
                Membership.objects.filter(pk=target.member_id)
                .values_list("org_unit_id", flat=True)
                .first()
            )
        managed = OrgUnit.objects.filter(pk=unit_id or 0).filter(
            tenancy_selectors.in_managed_subtree(member, "path")
        )
        if unit_id is not None and managed.exists():
            return
    raise Forbidden(
        _(
            "A review is written by a manager above the node, an admin, or the member "
            "reviewing themselves."
        )
    )


def _tenant(tenant_id: int) -> Tenant:
    return Tenant.objects.get(pk=tenant_id)


@transaction.atomic
def review_create(*, member: Membership, target: Target, today: date | None = None) -> Review:
    """Open the review of ``target``'s node for its plan and period, as a draft.

    One review per node, plan and period: a second is a 409 (the database constraint
    decides between two racing creates).
    """
    check_may_review(member, target)
    tenant = _tenant(target.tenant_id)
    check_reviewable(target, today or tenant_today(tenant))
    duplicate = Conflict(_("This node already has a review for this plan and period."))
    if Review.objects.filter(series_id=target.series_id, period_code=target.period_code).exists():
        raise duplicate
    try:
        with transaction.atomic():
            return Review.objects.create(
                tenant_id=target.tenant_id,
                series_id=target.series_id,
                period_code=target.period_code,
                plan_id=target.plan_id,
                org_unit_id=target.org_unit_id,
                member_id=target.member_id,
                period_kind=target.period_kind,
                period_start=target.period_start,
                period_end=target.period_end,
                reviewer=member,
            )
    except IntegrityError as error:
        raise duplicate from error


def _lock_draft(review: Review) -> Review:
    locked = Review.objects.select_for_update(of=("self",)).get(pk=review.pk)
    if locked.status != ReviewStatus.DRAFT:
        raise Conflict(_("This review is closed: its findings and actions are frozen."))
    return locked


@transaction.atomic
def review_update(*, member: Membership, review: Review, findings: str) -> Review:
    """Write the findings of a draft review (a closed one is a 409)."""
    check_may_review(member, review_target(review))
    locked = _lock_draft(review)
    locked.findings = findings
    locked.save(update_fields=["findings", "updated_at"])
    return locked


def check_action_owner(review: Review, owner: Membership) -> None:
    """An action's owner is inside the node: the member reviewed, or an active member
    of the unit's subtree."""
    if review.member_id is not None:
        inside = owner.pk == review.member_id
    else:
        inside = (
            owner.is_active
            and owner.org_unit_id is not None
            and tenancy_selectors.org_subtree(OrgUnit.objects.get(pk=review.org_unit_id or 0))
            .filter(pk=owner.org_unit_id)
            .exists()
        )
    if not inside:
        raise Invalid({"owner": _("The owner of an action is a member of the node reviewed.")})


@transaction.atomic
def review_action_add(
    *,
    member: Membership,
    review: Review,
    text: str,
    owner: Membership,
    due_date: date,
) -> ReviewAction:
    """Add an action item to a draft review and create it as a follow-up (a task due on
    ``due_date``) of its owner, so it shows in their follow-ups and morning digest."""
    check_may_review(member, review_target(review))
    locked = _lock_draft(review)
    if not text.strip():
        raise Invalid({"text": _("Say what is to be done.")})
    check_action_owner(locked, owner)
    tenant = _tenant(locked.tenant_id)
    if due_date < tenant_today(tenant):
        raise Invalid({"due_date": _("An action is due today or later.")})
    due_at = datetime.combine(due_date, ACTION_DUE_HOUR, tzinfo=tenant_zone(tenant))
    # Created like any follow-up: the post-save bridge of crm.events tells points,
    # webhooks and the rest that an activity was created.
    follow_up = Activity.objects.create(
        tenant_id=locked.tenant_id,
        type=ActivityType.TASK,
        subject=text.strip(),
        owner=owner,
        due_at=due_at,
    )
    return ReviewAction.objects.create(
        tenant_id=locked.tenant_id,
        review=locked,
        text=text.strip(),
        owner=owner,
        due_date=due_date,
        follow_up=follow_up,
        created_by=member,
    )


@transaction.atomic
def review_close(*, member: Membership, review: Review, today: date | None = None) -> Review:
    """Close a draft review: its figures are computed now and stored with it, frozen.

    A conditional update (``WHERE status = 'draft'``): closing twice, even at once, is
    a 409 for the second.
    """
    target = review_target(review)
    check_may_review(member, target)
    if review.status != ReviewStatus.DRAFT:  # cheap answer; the update below decides
        raise Conflict(_("This review is already closed."))
    tenant = _tenant(review.tenant_id)
    figures = review_figures(target, caller=member, today=today or tenant_today(tenant))
    closed = Review.objects.filter(pk=review.pk, status=ReviewStatus.DRAFT).update(
        status=ReviewStatus.CLOSED,
        figures=figures,
        closed_at=timezone.now(),
        closed_by=member,
        updated_at=timezone.now(),
    )
    if not closed:
        raise Conflict(_("This review is already closed."))
    return Review.objects.get(pk=review.pk)
