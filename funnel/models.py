"""Warning rules and alerts (SPEC section 5 "Warnings")."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.models import Membership, TenantOwned


class RuleKey(models.TextChoices):
    LOW_WIN_RATE = "low_win_rate", _("Low win rate")
    BEHIND_PACE = "behind_pace", _("Behind pace")
    CONVERSION_DROP = "conversion_drop", _("Conversion drop")
    KEY_CUSTOMER_DECLINE = "key_customer_decline", _("Key customer decline")
    STALE_DEAL = "stale_deal", _("Stale deal")
    OVERDUE_FOLLOW_UPS = "overdue_follow_ups", _("Overdue follow-ups")


class Severity(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    CRITICAL = "critical", _("Critical")


# Default thresholds (SPEC section 5); each rule's own keys, editable per tenant.
DEFAULT_THRESHOLDS: dict[str, dict[str, Any]] = {
    RuleKey.LOW_WIN_RATE: {"win_rate": "0.15", "min_closed": 5, "window_days": 90},
    RuleKey.BEHIND_PACE: {},
    RuleKey.CONVERSION_DROP: {"drop_points": "0.10", "min_cohort": 10},
    RuleKey.KEY_CUSTOMER_DECLINE: {"decline": "0.30", "window_days": 90, "no_visit_days": 30},
    RuleKey.STALE_DEAL: {"default_rot_days": 14},
    RuleKey.OVERDUE_FOLLOW_UPS: {"max_overdue": 0},
}
DEFAULT_SEVERITY: dict[str, str] = {
    RuleKey.LOW_WIN_RATE: Severity.WARNING,
    RuleKey.BEHIND_PACE: Severity.CRITICAL,
    RuleKey.CONVERSION_DROP: Severity.WARNING,
    RuleKey.KEY_CUSTOMER_DECLINE: Severity.CRITICAL,
    RuleKey.STALE_DEAL: Severity.INFO,
    RuleKey.OVERDUE_FOLLOW_UPS: Severity.WARNING,
}


# Fractions lie in [0, 1] (0.15 = 15 %); counts and days are whole numbers ≥ 0.
FRACTION_THRESHOLDS = {"win_rate", "drop_points", "decline"}
COUNT_THRESHOLDS = {
    "min_closed",
    "window_days",
    "min_cohort",
    "no_visit_days",
    "default_rot_days",
    "max_overdue",
}


def clean_thresholds(key: str, current: dict[str, Any], value: Any) -> dict[str, Any]:
    """Validate threshold changes for rule ``key``; returns the merged thresholds."""
    from django.core.exceptions import ValidationError

    if not isinstance(value, dict):
        raise ValidationError(_("An object of threshold names and values."))
    allowed = set(DEFAULT_THRESHOLDS.get(key, {})) | set(current)
    cleaned: dict[str, Any] = {}
    for name, raw in value.items():
        if name not in allowed:
            raise ValidationError(_("Unknown threshold %s for this rule.") % name)
        try:
            number = Decimal(str(raw))
        except ArithmeticError as error:
            raise ValidationError(_("%s must be a number.") % name) from error
        if name in FRACTION_THRESHOLDS and not Decimal(0) <= number <= Decimal(1):
            raise ValidationError(_("%s is a fraction between 0 and 1 (0.15 = 15 %%).") % name)
        if name in COUNT_THRESHOLDS and (number < 0 or number != number.to_integral_value()):
            raise ValidationError(_("%s is a whole number ≥ 0.") % name)
        cleaned[name] = str(number) if name in FRACTION_THRESHOLDS else int(number)
    return {**current, **cleaned}


class WarningRule(TenantOwned):
    key = models.CharField(_("rule"), max_length=32, choices=RuleKey.choices)
    enabled = models.BooleanField(_("enabled"), default=True)
    thresholds: models.JSONField[Any, Any] = models.JSONField(_("thresholds"), default=dict)
    severity = models.CharField(_("severity"), max_length=16, choices=Severity.choices)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("warning rule")
        verbose_name_plural = _("warning rules")
        ordering = ["key"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="warningrule_key_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="warningrule_tenant_id_uniq"),
        ]

    def __str__(self) -> str:
        return str(self.get_key_display())

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        try:
            self.thresholds = clean_thresholds(
                self.key, dict(DEFAULT_THRESHOLDS.get(self.key, {})), self.thresholds
            )
        except ValidationError as error:
            raise ValidationError({"thresholds": error.messages}) from error

    def threshold(self, name: str) -> Any:
        return self.thresholds.get(name, DEFAULT_THRESHOLDS[self.key].get(name))

    def decimal(self, name: str) -> Decimal:
        return Decimal(str(self.threshold(name)))


class AlertStatus(models.TextChoices):
    OPEN = "open", _("Open")
    ACKNOWLEDGED = "acknowledged", _("Acknowledged")
    RESOLVED = "resolved", _("Resolved")


class Alert(TenantOwned):
    """One alert per rule + subject + period (a database constraint)."""

    rule = models.CharField(_("rule"), max_length=32, choices=RuleKey.choices)
    subject_type = models.CharField(_("subject type"), max_length=32)
    subject_id = models.BigIntegerField(_("subject id"))
    period = models.CharField(_("period"), max_length=32)
    owner = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        verbose_name=_("owner"),
        help_text=_("Whose record it is: decides who sees the alert."),
    )
    observed = models.DecimalField(_("observed"), max_digits=18, decimal_places=4)
    threshold = models.DecimalField(_("threshold"), max_digits=18, decimal_places=4)
    severity = models.CharField(_("severity"), max_length=16, choices=Severity.choices)
    params: models.JSONField[Any, Any] = models.JSONField(_("message parameters"), default=dict)
    status = models.CharField(
        _("status"), max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN
    )
    opened_at = models.DateTimeField(_("opened at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        verbose_name=_("acknowledged by"),
    )

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "rule", "subject_type", "subject_id", "period"],
                name="alert_one_per_rule_subject_period",
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="alert_tenant_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "rule"], name="alert_status"),
            models.Index(
                fields=["tenant", "owner", "status"],
                name="alert_owner",
                condition=Q(owner__isnull=False),
            ),
            models.Index(fields=["tenant", "updated_at"], name="alert_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.get_rule_display()} · {self.period}"


# --- reviews (SPEC §10) -----------------------------------------------------------------


class ReviewStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    CLOSED = "closed", _("Closed")


class Review(TenantOwned):
    """A review (复盘) of one target node for one period: the node is a target series
    (a plan's assignee, a unit or a member, over all product lines) and the period its
    code, like adjustments name a period target. ``draft``: the figures are computed
    live; ``closed``: ``figures`` holds them as they were at the close, frozen.

    One review per node, plan and period (a database constraint: a second is a 409).
    The assignee, plan and period dates are copied from the series for lists, filters
    and "the previous review of this node" without expanding the targets view.
    """

    series = models.ForeignKey(
        "targets.TargetSeries",
        on_delete=models.CASCADE,
        related_name="reviews",
        db_index=False,
        verbose_name=_("target series"),
    )
    period_code = models.PositiveSmallIntegerField(_("period code"), editable=False)
    plan = models.ForeignKey(
        "targets.TargetPlan",
        on_delete=models.CASCADE,
        related_name="reviews",
        db_index=False,
        verbose_name=_("plan"),
    )
    org_unit = models.ForeignKey(
        "tenancy.OrgUnit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("org unit"),
    )
    member = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("member"),
    )
    period_kind = models.CharField(_("period"), max_length=8)
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    reviewer = models.ForeignKey(
        Membership,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("reviewer"),
    )
    status = models.CharField(
        _("status"), max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT
    )
    findings = models.TextField(_("findings"), blank=True)
    figures: models.JSONField[Any, Any] = models.JSONField(
        _("figures at the close"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(
        Membership,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        editable=False,
        verbose_name=_("closed by"),
    )

    class Meta:
        verbose_name = _("review")
        verbose_name_plural = _("reviews")
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "series", "period_code"], name="review_one_per_node_period"
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="review_tenant_id_uniq"),
            models.CheckConstraint(
                condition=(Q(org_unit__isnull=True) & Q(member__isnull=False))
                | (Q(org_unit__isnull=False) & Q(member__isnull=True)),
                name="review_one_assignee",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "member", "period_start"], name="review_member"),
            models.Index(fields=["tenant", "org_unit", "period_start"], name="review_unit"),
            models.Index(fields=["tenant", "plan"], name="review_plan"),
        ]

    def __str__(self) -> str:
        who = f"#{self.member_id}" if self.member_id else f"unit #{self.org_unit_id}"
        return f"{self.period_start:%Y-%m-%d}…{self.period_end:%Y-%m-%d} · {who}"

    @property
    def target_id(self) -> int:
        """The public id of the period target reviewed (``targets.models.target_public_id``)."""
        from targets.models import target_public_id

        return target_public_id(self.series_id, self.period_code)


class ReviewAction(TenantOwned):
    """An action item of a review: a text, an owner inside the node and a due date.

    It is carried out as a follow-up (a ``crm.Activity`` of type task with a due time)
    of its owner, so it shows in their follow-ups and digest; ``done`` is that
    follow-up's completion.
    """

    review = models.ForeignKey(
        Review,
        verbose_name=_("review"),
        on_delete=models.CASCADE,
        related_name="actions",
        db_index=False,
    )
    text = models.CharField(_("text"), max_length=200)
    owner = models.ForeignKey(
        Membership,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("owner"),
    )
    due_date = models.DateField(_("due date"))
    follow_up = models.ForeignKey(
        "crm.Activity",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        editable=False,
        verbose_name=_("follow-up"),
    )
    created_by = models.ForeignKey(
        Membership,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)

    class Meta:
        verbose_name = _("action item")
        verbose_name_plural = _("action items")
        ordering = ["due_date", "id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="reviewaction_tenant_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "review"], name="reviewaction_review"),
            models.Index(fields=["tenant", "owner", "due_date"], name="reviewaction_owner"),
        ]

    def __str__(self) -> str:
        return self.text
