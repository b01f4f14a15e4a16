"""Targets (SPEC section 4): plans, target nodes, ramp schedules, commitments,
adjustments and achievement snapshots. The arithmetic lives in the pure modules
``targets.calendar``, ``targets.allocation`` and ``targets.achievement_math``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q, lookups
from django.db.models.expressions import Col
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import ProductLine
from tenancy.models import Membership, OrgUnit, TenantOwned

VALUE: dict[str, Any] = {"max_digits": 18, "decimal_places": 2}


def _fk(model: Any, related: str = "+", *, null: bool = True, **kwargs: Any) -> Any:
    return models.ForeignKey(
        model,
        null=null,
        blank=null,
        on_delete=kwargs.pop("on_delete", models.PROTECT),
        related_name=related,
        db_index=False,
        **kwargs,
    )


class PlanStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    PUBLISHED = "published", _("Published")
    LOCKED = "locked", _("Locked")


class PeriodKind(models.TextChoices):
    YEAR = "year", _("Year")
    QUARTER = "quarter", _("Quarter")
    MONTH = "month", _("Month")


class TargetPlan(TenantOwned):
    """An annual goal for one metric, decomposed into target nodes."""

    fiscal_year = models.PositiveSmallIntegerField(
        _("fiscal year"), help_text=_("Named by the calendar year it starts in.")
    )
    metric = models.CharField(_("metric"), max_length=40)
    name = models.CharField(_("name"), max_length=120, default="Annual plan")
    annual_total = models.DecimalField(
        _("annual total"), validators=[MinValueValidator(Decimal("0"))], **VALUE
    )
    status = models.CharField(
        _("status"), max_length=16, choices=PlanStatus.choices, default=PlanStatus.DRAFT
    )
    settings: models.JSONField[Any, Any] = models.JSONField(
        _("decomposition settings"), default=dict, blank=True, editable=False
    )
    unassigned = models.DecimalField(
        _("unassigned"),
        default=Decimal("0"),
        editable=False,
        help_text=_("What ramp-up without preserve-total left unassigned."),
        **VALUE,
    )
    created_by = _fk(Membership, verbose_name=_("created by"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("target plan")
        verbose_name_plural = _("target plans")
        ordering = ["-fiscal_year", "metric", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "fiscal_year", "metric", "name"], name="targetplan_uniq"
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="targetplan_tenant_id_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "updated_at"], name="targetplan_updated")]

    def __str__(self) -> str:
        return f"FY{self.fiscal_year} {self.metric} · {self.name}"


class TargetSeries(TenantOwned):
    """What a plan gives one assignee (unit or member) for one product line (or all):
    the twelve fiscal months' values. The stored form of the targets.

    Quarters and the year are the sums of their months, so they are not stored: the
    period targets (``Target``) are a view over this table, 17 per series. A decomposed
    tree of 2,000 people × 5 product lines is ~14,000 rows here instead of ~230,000.
    ``months`` null: not set; every value ≥ 0 (0: not applicable).
    """

    plan = _fk(TargetPlan, "series", null=False, on_delete=models.CASCADE)
    org_unit = _fk(OrgUnit, verbose_name=_("org unit"))
    member = _fk(Membership, verbose_name=_("member"))
    product_line = _fk(ProductLine, verbose_name=_("product line"))
    months = ArrayField(
        models.DecimalField(**VALUE),
        size=12,
        null=True,
        blank=True,
        verbose_name=_("monthly targets"),
        help_text=_("The twelve fiscal months, in fiscal order."),
    )
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("target series")
        verbose_name_plural = _("target series")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "plan", "org_unit", "member", "product_line"],
                name="targetseries_uniq",
                nulls_distinct=False,
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="targetseries_tenant_id_uniq"),
            models.CheckConstraint(
                condition=(Q(org_unit__isnull=True) & Q(member__isnull=False))
                | (Q(org_unit__isnull=False) & Q(member__isnull=True)),
                name="targetseries_one_assignee",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "member"], name="targetseries_member"),
            models.Index(fields=["tenant", "org_unit"], name="targetseries_unit"),
            models.Index(fields=["tenant", "updated_at"], name="targetseries_updated"),
        ]

    def __str__(self) -> str:
        who = f"#{self.member_id}" if self.member_id else f"unit #{self.org_unit_id}"
        line = f" · line #{self.product_line_id}" if self.product_line_id else ""
        return f"{self.plan_id}: {who}{line}"


# A period target's id: its series' id × 32 + the period's code (0 the year, 1–4 the
# quarters, 5–16 the months): stable, and decodable without a lookup table.
PERIOD_CODES = 32


def period_code(kind: str, index: int) -> int:
    if kind == PeriodKind.YEAR:
        return 0
    if kind == PeriodKind.QUARTER:
        return index
    return 4 + index


# Period code → its first and last fiscal month.
PERIOD_MONTHS: dict[int, tuple[int, int]] = {
    0: (1, 12),
    **{q: ((q - 1) * 3 + 1, q * 3) for q in range(1, 5)},
    **{4 + m: (m, m) for m in range(1, 13)},
}


def period_target_id(series_id: int, kind: str, index: int) -> int:
    return series_id * PERIOD_CODES + period_code(kind, index)


def _series_column(lookup: Any, compiler: Any, connection: Any) -> str | None:
    lhs = lookup.lhs
    if not isinstance(lhs, Col) or lhs.target.model is not Target:
        return None
    return f"{compiler.quote_name_unless_alias(lhs.alias)}.{connection.ops.quote_name('series_id')}"


class PeriodTargetIdField(models.BigIntegerField):
    """The view's id. ``id = n`` also says ``series_id = n // 32`` so PostgreSQL finds
    the series by its primary key instead of expanding every series of the tenant."""


@PeriodTargetIdField.register_lookup
class PeriodTargetIdExact(lookups.Exact):
    def as_sql(self, compiler: Any, connection: Any) -> Any:
        sql, params = super().as_sql(compiler, connection)
        column = _series_column(self, compiler, connection)
        if column is None or not isinstance(self.rhs, int):
            return sql, params
        return f"({sql} AND {column} = %s)", (*params, self.rhs // PERIOD_CODES)


@PeriodTargetIdField.register_lookup
class PeriodTargetIdIn(lookups.In):
    def as_sql(self, compiler: Any, connection: Any) -> Any:
        sql, params = super().as_sql(compiler, connection)
        column = _series_column(self, compiler, connection)
        values = self.rhs if self.rhs_is_direct_value() else None
        if column is None or not values or not all(isinstance(v, int) for v in values):
            return sql, params
        series = sorted({v // PERIOD_CODES for v in values})
        marks = ", ".join(["%s"] * len(series))
        return f"({sql} AND {column} IN ({marks}))", (*params, *series)


class Target(TenantOwned):
    """One node: plan × period × assignee (unit or member) × optional product line.

    A read-only view over ``TargetSeries`` (migration ``targets/0002``): the fiscal year
    (index 0), its quarters (1–4) and months (1–12, fiscal order) of every series, each
    quarter and year the sum of its months. ``value`` null = not set; 0 = not
    applicable (no attainment). Changes go through ``targets.services``.
    """

    id = PeriodTargetIdField(primary_key=True)
    tenant = models.ForeignKey(
        "tenancy.Tenant", on_delete=models.DO_NOTHING, related_name="+", editable=False
    )
    series = _fk(TargetSeries, "periods", null=False, on_delete=models.DO_NOTHING)
    plan = _fk(TargetPlan, "targets", null=False, on_delete=models.DO_NOTHING)
    period_kind = models.CharField(_("period"), max_length=8, choices=PeriodKind.choices)
    period_index = models.PositiveSmallIntegerField(_("period index"))
    period_start = models.DateField(_("period start"))
    period_end = models.DateField(_("period end"))
    org_unit = _fk(OrgUnit, verbose_name=_("org unit"), on_delete=models.DO_NOTHING)
    member = _fk(Membership, verbose_name=_("member"), on_delete=models.DO_NOTHING)
    product_line = _fk(ProductLine, verbose_name=_("product line"), on_delete=models.DO_NOTHING)
    value = models.DecimalField(_("target"), null=True, blank=True, **VALUE)
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        managed = False
        db_table = "targets_target"
        verbose_name = _("target")
        verbose_name_plural = _("targets")
        ordering = ["plan", "period_kind", "period_index"]

    @property
    def period_label(self) -> str:
        """``Y``, ``Q2`` or ``M07`` (fiscal order)."""
        if self.period_kind == PeriodKind.YEAR:
            return "Y"
        if self.period_kind == PeriodKind.QUARTER:
            return f"Q{self.period_index}"
        return f"M{self.period_index:02d}"

    def __str__(self) -> str:
        # Names only when already loaded: a list of targets must not query per row.
        def name(field: str, fallback: str) -> str:
            descriptor = getattr(type(self), field)
            return str(getattr(self, field)) if descriptor.is_cached(self) else fallback

        if self.member_id:
            who = name("member", f"#{self.member_id}")
        else:
            who = name("org_unit", f"unit #{self.org_unit_id}")
        parts = [f"{self.period_start:%Y-%m-%d}…{self.period_end:%Y-%m-%d}", who]
        if self.product_line_id:
            parts.append(name("product_line", f"line #{self.product_line_id}"))
        return f"{self.period_label} · " + " · ".join(parts)


class RampSchedule(TenantOwned):
    """Tenure month → capacity factor, e.g. ``[[1, "0.3"], [4, "0.6"], [7, "1"]]``."""

    name = models.CharField(_("name"), max_length=80)
    steps: models.JSONField[Any, Any] = models.JSONField(_("steps"))
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        verbose_name = _("ramp schedule")
        verbose_name_plural = _("ramp schedules")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="rampschedule_name_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="rampschedule_tenant_id_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class AdjustmentTrigger(models.TextChoices):
    MARKET = "market", _("Market")
    PERSONNEL = "personnel", _("Personnel")
    PRODUCT = "product", _("Product")
    OTHER = "other", _("Other")


class AdjustmentStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    APPLIED = "applied", _("Applied")
    REJECTED = "rejected", _("Rejected")


def _period_target_fks(related: str) -> tuple[Any, Any]:
    """A row about one period target: the target (a view row, so no database foreign
    key) and its series, which carries the integrity and the cascade."""
    target = models.ForeignKey(
        Target,
        on_delete=models.DO_NOTHING,
        related_name=related,
        db_constraint=False,
        db_index=False,
        verbose_name=_("target"),
    )
    return target, _fk(TargetSeries, related, null=False, on_delete=models.CASCADE)


class TargetAdjustment(TenantOwned):
    """A new version of a published target: never rewritten, only appended."""

    target, series = _period_target_fks("adjustments")
    old_value = models.DecimalField(_("old value"), null=True, blank=True, **VALUE)
    new_value = models.DecimalField(
        _("new value"), validators=[MinValueValidator(Decimal("0"))], **VALUE
    )
    target_version = models.PositiveIntegerField(_("target version"))
    reason = models.TextField(_("reason"))
    trigger = models.CharField(_("trigger"), max_length=16, choices=AdjustmentTrigger.choices)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=AdjustmentStatus.choices,
        default=AdjustmentStatus.REQUESTED,
    )
    requested_by = _fk(Membership, verbose_name=_("requested by"))
    approved_by = _fk(Membership, verbose_name=_("approved by"))
    effective_from = models.DateField(_("effective from"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("target adjustment")
        verbose_name_plural = _("target adjustments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="adjustment_tenant_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "target", "created_at"], name="adjustment_target"),
            models.Index(fields=["tenant", "status"], name="adjustment_status"),
        ]

    def __str__(self) -> str:
        return f"{self.target_id}: {self.old_value} → {self.new_value}"


class Commitment(TenantOwned):
    """Bottom-up: what a member or manager commits to for a period of a plan."""

    plan = _fk(TargetPlan, "commitments", null=False, on_delete=models.CASCADE)
    period_kind = models.CharField(_("period"), max_length=8, choices=PeriodKind.choices)
    period_index = models.PositiveSmallIntegerField(_("period index"))
    org_unit = _fk(OrgUnit, verbose_name=_("org unit"))
    member = _fk(Membership, verbose_name=_("member"))
    value = models.DecimalField(_("value"), validators=[MinValueValidator(Decimal("0"))], **VALUE)
    note = models.CharField(_("note"), max_length=300, blank=True)
    submitted_by = _fk(Membership, verbose_name=_("submitted by"))
    submitted_at = models.DateTimeField(_("submitted at"), default=timezone.now)

    class Meta:
        verbose_name = _("commitment")
        verbose_name_plural = _("commitments")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "plan", "period_kind", "period_index", "org_unit", "member"],
                name="commitment_uniq",
                nulls_distinct=False,
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="commitment_tenant_id_uniq"),
            models.CheckConstraint(
                condition=(Q(org_unit__isnull=True) & Q(member__isnull=False))
                | (Q(org_unit__isnull=False) & Q(member__isnull=True)),
                name="commitment_one_assignee",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.period_kind} {self.period_index}: {self.value}"


class AchievementSnapshot(TenantOwned):
    """A target's achievement as of a date, filled by the nightly job (SPEC section 7)."""

    target, series = _period_target_fks("snapshots")
    as_of = models.DateField(_("as of"))
    actual = models.DecimalField(_("actual"), **VALUE)
    attainment = models.DecimalField(
        _("attainment"), max_digits=12, decimal_places=4, null=True, blank=True
    )
    expected_to_date = models.DecimalField(_("expected to date"), null=True, blank=True, **VALUE)
    pace = models.DecimalField(_("pace"), max_digits=12, decimal_places=4, null=True, blank=True)
    status = models.CharField(_("status"), max_length=16, blank=True)
    gap = models.DecimalField(_("gap"), null=True, blank=True, **VALUE)
    required_per_day = models.DecimalField(_("required per day"), null=True, blank=True, **VALUE)
    projected = models.DecimalField(_("projected"), null=True, blank=True, **VALUE)
    projected_commit = models.DecimalField(_("projected (commit)"), null=True, blank=True, **VALUE)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("achievement snapshot")
        verbose_name_plural = _("achievement snapshots")
        constraints = [
            models.UniqueConstraint(fields=["tenant", "target", "as_of"], name="snapshot_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="snapshot_tenant_id_uniq"),
            models.CheckConstraint(
                condition=Q(attainment__isnull=True) | Q(attainment__gte=0),
                name="snapshot_attainment_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target_id} @ {self.as_of}"
