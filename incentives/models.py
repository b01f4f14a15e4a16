"""Incentives (SPEC section 6): point rules and the points ledger.

The arithmetic lives in the pure module ``incentives.rules``; the awards are written by
``incentives.services`` when a CRM event commits and caught up by the night.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.models import Membership, OrgUnit, TenantOwned


class PointEvent(models.TextChoices):
    """The events a point rule can reward (SPEC section 6 "Points")."""

    VISIT_VERIFIED = "visit_verified", _("Verified visit")
    LEAD_CREATED = "lead_created", _("Lead created")
    LEAD_CONVERTED = "lead_converted", _("Lead converted")
    OPPORTUNITY_CREATED = "opportunity_created", _("Opportunity created")
    STAGE_ADVANCED = "stage_advanced", _("Deal advanced to a later stage")
    DEAL_WON = "deal_won", _("Deal won")
    PAYMENT_RECEIVED = "payment_received", _("Payment received")
    ACTIVITY_DONE = "activity_done", _("Follow-up done on time")


class SourceType(models.TextChoices):
    """What earned an award: the row its ``source_id`` names."""

    VISIT = "visit", _("Visit")
    LEAD = "lead", _("Lead")
    OPPORTUNITY = "opportunity", _("Opportunity")
    STAGE_CHANGE = "stage_change", _("Stage change")
    PAYMENT = "payment", _("Payment")
    ACTIVITY = "activity", _("Activity")


class PointRule(TenantOwned):
    """How many points one event earns, with an optional cap per member and local day."""

    event = models.CharField(_("event"), max_length=32, choices=PointEvent.choices)
    points = models.PositiveIntegerField(_("points"), validators=[MinValueValidator(1)])
    daily_cap = models.PositiveIntegerField(
        _("daily cap"),
        null=True,
        blank=True,
        help_text=_("The most points of this rule a member earns on one day; empty for none."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("point rule")
        verbose_name_plural = _("point rules")
        ordering = ["event"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event"], name="pointrule_event_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="pointrule_tenant_id_uniq"),
            models.CheckConstraint(condition=Q(points__gte=1), name="pointrule_points_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()}: {self.points}"


class EntryKind(models.TextChoices):
    AWARD = "award", _("Award")
    UNDO = "undo", _("Undo")


class PointEntry(TenantOwned):
    """One row of the points ledger: an award (possibly 0 when the daily cap refused it)
    or the negative undo of an award whose source was undone.

    Unique per rule, source, member and kind: a replayed event or a second completion
    awards nothing, and an award is undone once (SPEC section 6).
    """

    rule = models.ForeignKey(
        PointRule, verbose_name=_("rule"), on_delete=models.PROTECT, db_index=False
    )
    member = models.ForeignKey(
        Membership,
        verbose_name=_("member"),
        on_delete=models.CASCADE,
        related_name="point_entries",
        db_index=False,
    )
    event = models.CharField(_("event"), max_length=32, choices=PointEvent.choices)
    source_type = models.CharField(_("source type"), max_length=16, choices=SourceType.choices)
    source_id = models.BigIntegerField(_("source id"))
    kind = models.CharField(_("kind"), max_length=8, choices=EntryKind.choices)
    points = models.IntegerField(_("points"))
    capped = models.BooleanField(
        _("refused by the daily cap"),
        default=False,
        help_text=_("The event would have passed the rule's daily cap, so it earned 0."),
    )
    day = models.DateField(_("day"), help_text=_("The tenant's local day of the event."))
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("points entry")
        verbose_name_plural = _("points entries")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "rule", "source_type", "source_id", "member", "kind"],
                name="pointentry_once_uniq",
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="pointentry_tenant_id_uniq"),
            models.CheckConstraint(
                condition=(Q(kind="award") & Q(points__gte=0))
                | (Q(kind="undo") & Q(points__lte=0)),
                name="pointentry_sign_by_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "day"], name="pointentry_member_day"),
            models.Index(fields=["tenant", "day"], name="pointentry_day"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.member.display_name} · {self.get_event_display()} {self.points:+d} ({self.day})"
        )


class LeaderboardEntry(TenantOwned):
    """One row of a leaderboard as the night computed it (SPEC section 6 "Leaderboard"):
    per unit (its subtree's members), board (``points``, ``attainment:<metric>``,
    ``metric:<metric>``) and period. The live board is computed on demand; this is what
    the morning digests and the phone read without recomputing."""

    unit = models.ForeignKey(
        OrgUnit, verbose_name=_("org unit"), on_delete=models.CASCADE, db_index=False
    )
    board = models.CharField(_("board"), max_length=60)
    period_kind = models.CharField(_("period"), max_length=8)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    as_of = models.DateField(_("as of"))
    member = models.ForeignKey(
        Membership, verbose_name=_("member"), on_delete=models.CASCADE, db_index=False
    )
    position = models.PositiveIntegerField(_("position"))
    value = models.DecimalField(_("value"), max_digits=30, decimal_places=10, null=True)
    rank = models.PositiveIntegerField(_("rank"), null=True)
    previous_rank = models.PositiveIntegerField(_("previous rank"), null=True)
    actual = models.DecimalField(_("actual"), max_digits=18, decimal_places=2, null=True)
    target = models.DecimalField(_("target"), max_digits=18, decimal_places=2, null=True)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("leaderboard entry")
        verbose_name_plural = _("leaderboard entries")
        ordering = ["unit", "board", "period_start", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "unit", "board", "period_kind", "period_start", "member"],
                name="leaderboardentry_uniq",
            ),
            models.UniqueConstraint(
                fields=["tenant", "id"], name="leaderboardentry_tenant_id_uniq"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "unit", "board", "period_kind", "period_start", "position"],
                name="leaderboardentry_board",
            ),
            models.Index(fields=["tenant", "member"], name="leaderboardentry_member"),
        ]

    def __str__(self) -> str:
        return f"{self.board} {self.period_start} #{self.rank} {self.member_id}"


# --- commissions -----------------------------------------------------------------------------


class StatementPeriod(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")


class PayoutMode(models.TextChoices):
    MARGINAL = "marginal", _("Marginal")
    FLAT = "flat", _("Flat")


class CommissionPlan(TenantOwned):
    """A commission plan (SPEC section 6): its current terms and their version number.

    Every change of the terms writes a new ``CommissionPlanVersion`` (the history is never
    rewritten); a statement line records the version it used. ``bands`` are
    ``[[from, rate], ...]`` fractions as strings (``["0.8", "0.04"]`` = 4 % from 80 %),
    ``multipliers`` ``{product line id: multiplier}``.
    """

    name = models.CharField(_("name"), max_length=120)
    statement_period = models.CharField(
        _("statement period"),
        max_length=8,
        choices=StatementPeriod.choices,
        default=StatementPeriod.MONTH,
    )
    attainment_metric = models.CharField(_("attainment metric"), max_length=40)
    base_metric = models.CharField(
        _("payout base metric"),
        max_length=40,
        blank=True,
        help_text=_("Empty: the attainment metric."),
    )
    bands: models.JSONField[Any, Any] = models.JSONField(_("bands"))
    mode = models.CharField(
        _("mode"), max_length=8, choices=PayoutMode.choices, default=PayoutMode.MARGINAL
    )
    cap = models.DecimalField(
        _("cap per statement"), max_digits=18, decimal_places=2, null=True, blank=True
    )
    multipliers: models.JSONField[Any, Any] = models.JSONField(
        _("product-line multipliers"), default=dict, blank=True
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("commission plan")
        verbose_name_plural = _("commission plans")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="commissionplan_name_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="commissionplan_tenant_id_uniq"),
            models.CheckConstraint(
                condition=Q(cap__isnull=True) | Q(cap__gte=0),
                name="commissionplan_cap_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def payout_metric(self) -> str:
        return self.base_metric or self.attainment_metric


class CommissionPlanVersion(TenantOwned):
    """The terms of a plan as they were at one version."""

    plan = models.ForeignKey(
        CommissionPlan,
        verbose_name=_("commission plan"),
        on_delete=models.CASCADE,
        related_name="versions",
        db_index=False,
    )
    version = models.PositiveIntegerField(_("version"))
    terms: models.JSONField[Any, Any] = models.JSONField(_("terms"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        Membership,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        verbose_name = _("commission plan version")
        verbose_name_plural = _("commission plan versions")
        ordering = ["plan", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "plan", "version"], name="commissionplanversion_uniq"
            ),
            models.UniqueConstraint(
                fields=["tenant", "id"], name="commissionplanversion_tenant_id_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} v{self.version}"


class CommissionAssignment(TenantOwned):
    """Who a plan applies to (a member, or every member of a unit's subtree), from when."""

    plan = models.ForeignKey(
        CommissionPlan,
        verbose_name=_("commission plan"),
        on_delete=models.CASCADE,
        related_name="assignments",
        db_index=False,
    )
    member = models.ForeignKey(
        Membership,
        verbose_name=_("member"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    org_unit = models.ForeignKey(
        OrgUnit,
        verbose_name=_("org unit"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
    )
    effective_from = models.DateField(_("effective from"))
    effective_to = models.DateField(_("effective to"), null=True, blank=True)

    class Meta:
        verbose_name = _("commission plan assignment")
        verbose_name_plural = _("commission plan assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "id"], name="commissionassignment_tenant_id_uniq"
            ),
            models.CheckConstraint(
                condition=(Q(member__isnull=True) & Q(org_unit__isnull=False))
                | (Q(member__isnull=False) & Q(org_unit__isnull=True)),
                name="commissionassignment_one_assignee",
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gte=models.F("effective_from")),
                name="commissionassignment_dates_ordered",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "plan"], name="commissionassignment_plan")]

    def __str__(self) -> str:
        who = f"member {self.member_id}" if self.member_id else f"unit {self.org_unit_id}"
        return f"{self.plan_id} → {who} from {self.effective_from}"


class StatementStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    APPROVED = "approved", _("Approved")
    LOCKED = "locked", _("Locked")


class CommissionStatement(TenantOwned):
    """One member's commission for one plan and period (SPEC section 6 "Statement")."""

    member = models.ForeignKey(
        Membership,
        verbose_name=_("member"),
        on_delete=models.PROTECT,
        related_name="commission_statements",
        db_index=False,
    )
    plan = models.ForeignKey(
        CommissionPlan,
        verbose_name=_("commission plan"),
        on_delete=models.PROTECT,
        related_name="statements",
        db_index=False,
    )
    period_kind = models.CharField(_("period"), max_length=8, choices=StatementPeriod.choices)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    status = models.CharField(
        _("status"), max_length=10, choices=StatementStatus.choices, default=StatementStatus.DRAFT
    )
    total = models.DecimalField(_("total"), max_digits=18, decimal_places=2, default=0)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)
    as_of = models.DateField(_("as of"))
    approved_by = models.ForeignKey(
        Membership,
        verbose_name=_("approved by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    approved_at = models.DateTimeField(_("approved at"), null=True, blank=True)
    locked_by = models.ForeignKey(
        Membership,
        verbose_name=_("locked by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    locked_at = models.DateTimeField(_("locked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("commission statement")
        verbose_name_plural = _("commission statements")
        ordering = ["-period_start", "member"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "member", "plan", "period_start"], name="commissionstatement_uniq"
            ),
            models.UniqueConstraint(
                fields=["tenant", "id"], name="commissionstatement_tenant_id_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "plan", "period_start"], name="statement_plan_period"),
            models.Index(fields=["tenant", "status"], name="statement_status"),
        ]

    def __str__(self) -> str:
        return f"{self.member.display_name} · {self.plan.name} · {self.period_start}"


class LineKind(models.TextChoices):
    COMMISSION = "commission", _("Commission")
    ADJUSTMENT = "adjustment", _("Adjustment")


class StatementLine(TenantOwned):
    """A line of a statement: its amount and the inputs it was computed from; the
    sentence explaining it is built at read time in the reader's language."""

    statement = models.ForeignKey(
        CommissionStatement,
        verbose_name=_("statement"),
        on_delete=models.CASCADE,
        related_name="lines",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=12, choices=LineKind.choices)
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    inputs: models.JSONField[Any, Any] = models.JSONField(_("inputs"), default=dict)
    corrects = models.ForeignKey(
        CommissionStatement,
        verbose_name=_("corrects"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="corrections",
        db_index=False,
        help_text=_("The approved or locked statement an adjustment corrects."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("statement line")
        verbose_name_plural = _("statement lines")
        ordering = ["statement", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="statementline_tenant_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "statement"], name="statementline_statement"),
            models.Index(fields=["tenant", "corrects"], name="statementline_corrects"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"


class DisputeStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACCEPTED = "accepted", _("Accepted")
    REJECTED = "rejected", _("Rejected")


class LineDispute(TenantOwned):
    """A member's dispute of a line, resolved by the approver with an adjustment line or a
    rejection with a reason."""

    line = models.ForeignKey(
        StatementLine,
        verbose_name=_("statement line"),
        on_delete=models.CASCADE,
        related_name="disputes",
        db_index=False,
    )
    raised_by = models.ForeignKey(
        Membership,
        verbose_name=_("raised by"),
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    comment = models.TextField(_("comment"))
    status = models.CharField(
        _("status"), max_length=10, choices=DisputeStatus.choices, default=DisputeStatus.OPEN
    )
    resolution = models.TextField(_("resolution"), blank=True)
    resolved_by = models.ForeignKey(
        Membership,
        verbose_name=_("resolved by"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    adjustment = models.ForeignKey(
        StatementLine,
        verbose_name=_("adjustment line"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("line dispute")
        verbose_name_plural = _("line disputes")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="linedispute_tenant_id_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "line"], name="linedispute_line")]

    def __str__(self) -> str:
        return f"{self.line_id} {self.status}"
