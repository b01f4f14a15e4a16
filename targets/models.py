"""Targets (SPEC section 4): plans, target nodes, ramp schedules, commitments,
adjustments and achievement snapshots. The arithmetic lives in the pure modules
``targets.calendar``, ``targets.allocation`` and ``targets.achievement_math``."""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import ProductLine
from targets.metrics import METRICS
from tenancy.models import Membership, OrgUnit, Tenant, TenantOwned

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
            # One plan in force per year and metric: me/targets and plan-to-close read it.
            models.UniqueConstraint(
                fields=["tenant", "fiscal_year", "metric"],
                condition=Q(status__in=["published", "locked"]),
                name="targetplan_one_live_per_year",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "updated_at"], name="targetplan_updated")]

    def __str__(self) -> str:
        metric = METRICS.get(self.metric)
        return f"FY{self.fiscal_year} {metric.label if metric else self.metric} · {self.name}"


class TargetSeries(TenantOwned):
    """What a plan gives one assignee (unit or member) for one product line (or all):
    the twelve fiscal months' values. The stored form of the targets.

    Quarters and the year are the sums of their months, so they are not stored: the
    period targets (``Target``) are a view over this table, 17 per series. A decomposed
    tree of 2,000 people × 5 product lines is ~14,000 rows here instead of ~230,000.
    ``months`` null: not set; every value ≥ 0 (0: not applicable).
    """

    plan = _fk(TargetPlan, "series", null=False, on_delete=models.CASCADE, verbose_name=_("plan"))
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


# --- the periods of a fiscal year: the one definition ---------------------------------
#
# Everything that knows which periods a series has reads PERIODS: the achievement's
# pacing, adjustments spreading a quarter over its months, the public ids and the SQL of
# the ``targets_target`` view (``target_view_sql``), so the code and the view cannot
# disagree about what period 7 is.


@dataclass(frozen=True)
class PeriodOfYear:
    """One period of a fiscal year: its code, kind and index, and the fiscal months
    (1-12, inclusive) it spans; a quarter and the year are the sums of their months."""

    code: int
    kind: str
    index: int
    first_month: int
    last_month: int


#: Code 0 the year, 1-4 the quarters, 5-16 the months (fiscal order).
PERIODS: tuple[PeriodOfYear, ...] = (
    PeriodOfYear(0, PeriodKind.YEAR.value, 0, 1, 12),
    *(PeriodOfYear(q, PeriodKind.QUARTER.value, q, 3 * q - 2, 3 * q) for q in range(1, 5)),
    *(PeriodOfYear(4 + m, PeriodKind.MONTH.value, m, m, m) for m in range(1, 13)),
)
PERIOD_BY_CODE: dict[int, PeriodOfYear] = {period.code: period for period in PERIODS}
_CODE_OF: dict[tuple[str, int], int] = {(p.kind, p.index): p.code for p in PERIODS}
#: Period code → its first and last fiscal month.
PERIOD_MONTHS: dict[int, tuple[int, int]] = {
    period.code: (period.first_month, period.last_month) for period in PERIODS
}


def period_code(kind: str, index: int) -> int:
    """The code of a period (``("quarter", 2)`` → 2); ``ValueError`` for none."""
    try:
        return _CODE_OF[(str(kind), int(index))]
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"no period {kind!r} {index!r}") from error


# --- the public id of a period target ---------------------------------------------------
#
# The API and the admin name a period target by one number, ``series id × 32 + code``:
# stable across adjustments, decodable without a lookup table. It is only a name: what
# is stored (adjustments, snapshots) is the series and the code, and a lookup by id is
# ``target_ids_q``, which splits it and filters those two real columns.

TARGET_ID_BASE = 32  # greater than every period code
assert max(PERIOD_BY_CODE) < TARGET_ID_BASE


def target_public_id(series_id: int, code: int) -> int:
    """The public id of period ``code`` of series ``series_id``."""
    return series_id * TARGET_ID_BASE + code


def split_target_id(value: object) -> tuple[int, int]:
    """``(series id, period code)`` of a public target id (an int or its digits);
    ``ValueError`` when it names no period."""
    if isinstance(value, bool):
        raise ValueError(f"not a target id: {value!r}")
    number = int(str(value))  # "12a", "1.5", None: ValueError
    series_id, code = divmod(number, TARGET_ID_BASE)
    if series_id <= 0 or code not in PERIOD_BY_CODE:
        raise ValueError(f"not a target id: {value!r}")
    return series_id, code


def target_ids_q(ids: Iterable[object]) -> Q:
    """The period targets with these public ids, on real columns: the series' primary
    key and the period code, so PostgreSQL finds each series by its index instead of
    expanding every series of the tenant into periods. Ids that name no period match
    nothing."""
    codes: dict[int, set[int]] = defaultdict(set)
    for value in ids:
        try:
            series_id, code = split_target_id(value)
        except (ValueError, TypeError):
            continue
        codes[series_id].add(code)
    if not codes:
        return Q(pk__in=[])
    return reduce(
        operator.or_,
        (Q(series_id=s, period_code__in=sorted(c)) for s, c in sorted(codes.items())),
    )


def target_view_sql() -> str:
    """The ``CREATE VIEW`` of ``targets_target``, rendered from ``PERIODS``: 17 rows per
    series (``security_invoker``: the caller's row-level security applies), each
    quarter and the year the sum of its months, null while the months are not set.

    Migrations freeze its output (a migration must not change when this code does);
    ``tests/targets/test_storage.py`` fails when it no longer equals what the latest
    view migration created, asking for a new one.
    """

    def month(number: int) -> str:
        return f"s.months[{number}]"

    values = ",\n        ".join(
        f"({p.code}, '{p.kind}', {p.index}, {p.first_month}, {p.last_month})" for p in PERIODS
    )
    sums = "\n".join(
        f"            WHEN {p.code} THEN "
        + " + ".join(month(m) for m in range(p.first_month, p.last_month + 1))
        for p in PERIODS
    )
    return f"""CREATE VIEW {Target._meta.db_table} WITH (security_invoker = true) AS
SELECT s.id * {TARGET_ID_BASE} + p.code AS id,
       s.id AS series_id,
       p.code::smallint AS period_code,
       s.tenant_id,
       s.plan_id,
       p.kind::varchar(8) AS period_kind,
       p.idx::smallint AS period_index,
       (f.start + make_interval(months => p.first_month - 1))::date AS period_start,
       (f.start + make_interval(months => p.last_month) - interval '1 day')::date
           AS period_end,
       s.org_unit_id,
       s.member_id,
       s.product_line_id,
       (CASE p.code
{sums}
        END)::numeric(18, 2) AS value,
       s.version,
       s.updated_at
FROM {TargetSeries._meta.db_table} s
JOIN {TargetPlan._meta.db_table} pl ON pl.id = s.plan_id
JOIN {Tenant._meta.db_table} tn ON tn.id = s.tenant_id
CROSS JOIN LATERAL (SELECT make_date(pl.fiscal_year, tn.fiscal_year_start_month, 1) AS start) f
CROSS JOIN (VALUES
        {values}
    ) AS p(code, kind, idx, first_month, last_month)
"""


class Target(TenantOwned):
    """One node: plan × period × assignee (unit or member) × optional product line.

    A read-only view over ``TargetSeries`` (``target_view_sql``): the fiscal year, its
    quarters and months (``PERIODS``) of every series, each quarter and year the sum of
    its months. ``value`` null = not set; 0 = not applicable (no attainment). Changes go
    through ``targets.services``.

    ``id`` is the public id (``target_public_id``); look targets up by it with
    ``target_ids_q``, which filters the real columns ``series`` and ``period_code``.
    """

    id = models.BigIntegerField(_("ID"), primary_key=True)
    tenant = models.ForeignKey(
        "tenancy.Tenant",
        verbose_name=_("tenant"),
        on_delete=models.DO_NOTHING,
        related_name="+",
        editable=False,
    )
    series = _fk(
        TargetSeries,
        "periods",
        null=False,
        on_delete=models.DO_NOTHING,
        verbose_name=_("target series"),
    )
    period_code = models.PositiveSmallIntegerField(_("period code"), editable=False)
    plan = _fk(
        TargetPlan, "targets", null=False, on_delete=models.DO_NOTHING, verbose_name=_("plan")
    )
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

    def refresh_from_db(
        self, using: Any = None, fields: Any = None, from_queryset: Any = None
    ) -> None:
        # Django re-reads by ``pk``, which the view can only compute row by row: name
        # the series and period too, so the re-read is an index lookup.
        queryset = type(self)._base_manager.all() if from_queryset is None else from_queryset
        queryset = queryset.filter(series_id=self.series_id, period_code=self.period_code)
        super().refresh_from_db(using=using, fields=fields, from_queryset=queryset)

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


def _period_target_fields(related: str) -> tuple[Any, Any]:
    """A row about one period target: its series (the integrity and the cascade) and
    the period's code, two real columns (the view has no key to point at)."""
    series = _fk(
        TargetSeries,
        related,
        null=False,
        on_delete=models.CASCADE,
        verbose_name=_("target series"),
    )
    code = models.PositiveSmallIntegerField(_("period code"), editable=False)
    return series, code


def _period_code_check(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(period_code__gte=min(PERIOD_BY_CODE)) & Q(period_code__lte=max(PERIOD_BY_CODE)),
        name=name,
    )


class PeriodTargetRow:
    """Mixin of the rows about one period target (adjustments, snapshots)."""

    series_id: int
    period_code: int

    @property
    def target_id(self) -> int:
        """The period target's public id."""
        return target_public_id(self.series_id, self.period_code)


class TargetAdjustment(PeriodTargetRow, TenantOwned):
    """A new version of a published target: never rewritten, only appended."""

    series, period_code = _period_target_fields("adjustments")
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
    # The tenant's only admin deciding their own request on a locked plan (SPEC section 4).
    self_approved = models.BooleanField(_("self-approved"), default=False, editable=False)
    effective_from = models.DateField(_("effective from"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("target adjustment")
        verbose_name_plural = _("target adjustments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="adjustment_tenant_id_uniq"),
            _period_code_check("adjustment_period_code_valid"),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "series", "period_code", "created_at"], name="adjustment_target"
            ),
            models.Index(fields=["tenant", "status"], name="adjustment_status"),
        ]

    def __str__(self) -> str:
        old = "–" if self.old_value is None else f"{self.old_value:,}"
        return f"{old} → {self.new_value:,} ({self.get_status_display()})"


class Commitment(TenantOwned):
    """Bottom-up: what a member or manager commits to for a period of a plan."""

    plan = _fk(
        TargetPlan,
        "commitments",
        null=False,
        on_delete=models.CASCADE,
        verbose_name=_("plan"),
    )
    period_kind = models.CharField(_("period"), max_length=8, choices=PeriodKind.choices)
    period_index = models.PositiveSmallIntegerField(_("period index"))
    org_unit = _fk(OrgUnit, verbose_name=_("org unit"))
    member = _fk(Membership, verbose_name=_("member"))
    value = models.DecimalField(_("value"), validators=[MinValueValidator(Decimal("0"))], **VALUE)
    note = models.CharField(_("note"), max_length=300, blank=True)
    submitted_by = _fk(Membership, verbose_name=_("submitted by"))
    submitted_at = models.DateTimeField(_("submitted at"), default=timezone.now)
    # Optimistic concurrency (SPEC section 8): a change names the version it was read at.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)

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
        return f"{self.get_period_kind_display()} {self.period_index}: {self.value:,}"


class AchievementSnapshot(PeriodTargetRow, TenantOwned):
    """A target's achievement as of a date, filled by the nightly job (SPEC section 7)."""

    series, period_code = _period_target_fields("snapshots")
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
            models.UniqueConstraint(
                fields=["tenant", "series", "period_code", "as_of"], name="snapshot_uniq"
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="snapshot_tenant_id_uniq"),
            _period_code_check("snapshot_period_code_valid"),
            # No sign check on actual or attainment: a reversal of an earlier month's
            # payment makes a month negative, and that is stored as it is (issue #12.9).
        ]

    def __str__(self) -> str:
        return f"{self.target_id} @ {self.as_of}"
