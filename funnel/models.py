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
