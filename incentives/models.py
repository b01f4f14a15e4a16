"""Incentives (SPEC section 6): point rules and the points ledger.

The arithmetic lives in the pure module ``incentives.rules``; the awards are written by
``incentives.services`` when a CRM event commits and caught up by the night.
"""

from __future__ import annotations

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
        return f"{self.member_id} {self.event} {self.points:+d} ({self.day})"


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
