"""Tenancy models: tenant, org tree, membership, API tokens, job runs (SPEC section 2).

The tables keep the names they had when these models lived in ``crm`` (``crm_tenant``,
``crm_membership``, …): the move to this app changed the state, not the database.

Every tenant-owned model derives from ``TenantOwned``: a ``tenant`` foreign key, a
default manager that raises outside a tenant scope (django-scopes), and indexes and
unique constraints that all start with ``tenant_id`` so the schema can be distributed
by tenant (Citus); each also has a unique ``(tenant, id)``, the key Citus needs in place
of the ``id`` primary key. Foreign keys inside a tenant table carry no index of their own;
the composite ``(tenant, fk)`` index declared in ``Meta`` serves them.
"""

from __future__ import annotations

import inspect
import zoneinfo
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models.base import ModelState
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.db.models.signals import post_init, pre_init
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_scopes import ScopedManager as ScopesManager
from django_scopes.state import get_scope

from tenancy.memo import remember


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("Unknown time zone: %(value)s"), params={"value": value})


class Tenant(models.Model):
    """One company. Not tenant-owned itself: it is the tenant."""

    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(
        _("slug"), max_length=60, unique=True, help_text=_("Short name used at login.")
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Shanghai", validators=[validate_time_zone]
    )
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="CNY",
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Use a three-letter ISO 4217 code."))],
    )
    fiscal_year_start_month = models.PositiveSmallIntegerField(
        _("fiscal year start month"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(12)],
        help_text=_("1 = January. The fiscal year is named by the calendar year it starts in."),
    )
    visit_radius_m = models.PositiveIntegerField(
        _("visit radius (metres)"),
        default=500,
        validators=[MinValueValidator(1)],
        help_text=_("A check-in within this distance of the customer counts as verified."),
    )
    visit_accuracy_limit_m = models.PositiveIntegerField(
        _("visit accuracy limit (metres)"),
        default=100,
        validators=[MinValueValidator(1)],
        help_text=_(
            "A check-in counts as verified only when the device reports its position "
            "to within this many metres; a check-in without accuracy is never verified."
        ),
    )
    pace_threshold = models.DecimalField(
        _("pace threshold"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.100"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("0.999"))],
        help_text=_("Below 1 − threshold of the expected pace a target is off track."),
    )
    digest_hour = models.PositiveSmallIntegerField(
        _("digest hour"),
        default=8,
        validators=[MinValueValidator(0), MaxValueValidator(23)],
        help_text=_("The local hour (0 to 23) at which members get their morning digest."),
    )
    leaderboard_money_visible = models.BooleanField(
        _("reps see others' money on leaderboards"),
        default=False,
        help_text=_(
            "When on, reps see the amounts (actuals and targets) of the other members on "
            "their unit's leaderboards and may rank by a money metric; off, only their own."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "crm_tenant"
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(fiscal_year_start_month__gte=1, fiscal_year_start_month__lte=12),
                name="tenant_fiscal_month_1_12",
            ),
            models.CheckConstraint(
                condition=models.Q(digest_hour__lte=23), name="tenant_digest_hour_0_23"
            ),
        ]

    def __str__(self) -> str:
        return self.name


_BASE_QUERYSETS: dict[tuple[Any, ...], models.QuerySet[Any]] = {}
_BASE_QUERYSETS_LIMIT = 4096


def scoped_tenant_id() -> int | None:
    """The tenant of the django-scopes scope in force, when scoping is on and the tenant
    is given as an id (as ``tenant_scope`` gives it); else None: what may key a queryset
    kept for the tenant."""
    scope = get_scope()
    tenant = scope.get("tenant")
    return tenant if scope.get("_enabled", True) and type(tenant) is int else None


def ScopedManager(**scopes: Any) -> Any:  # noqa: N802 - django-scopes' name for it
    """django-scopes' manager (a query outside a tenant scope raises), whose queryset in a
    tenant's scope is built once per manager, model and tenant and cloned for each use.

    django-scopes builds its tenant filter, and the manager class its own (live rows), on
    every access: two filters, about 0.2 ms, before a list or a lookup adds anything of
    its own. The queryset kept is never evaluated, only cloned (its query copied). Any
    other case takes django-scopes' path: no scope, scopes disabled, a tenant given
    otherwise than as an id, a related manager (a subclass) or a manager with hints.
    """
    scoped: Any = type(ScopesManager(**scopes))

    class CachedScopedManager(scoped):
        def get_queryset(self) -> Any:
            tenant = scoped_tenant_id()
            if (
                type(self) is not CachedScopedManager
                or self._hints
                or hasattr(self, "_override_scope")
                or tenant is None
            ):
                return super().get_queryset()
            key = (CachedScopedManager, self.model, self._db, tenant)
            base: Any = _BASE_QUERYSETS.get(key)
            if base is None:
                base = remember(_BASE_QUERYSETS, key, super().get_queryset(), _BASE_QUERYSETS_LIMIT)
            queryset = base._chain()
            queryset._hints = {}  # its own: a related manager adds hints in place
            return queryset

    return CachedScopedManager()


M = TypeVar("M", bound=models.Model)
_PLAIN_ATTRIBUTES = (DeferredAttribute, ForeignKeyDeferredAttribute)
_ROW_ATTNAMES: dict[type, tuple[str, ...] | None] = {}


def _row_attnames(cls: type[models.Model]) -> tuple[str, ...] | None:
    """The attribute names a full row sets, when setting them does nothing but store
    the value (each field's class attribute is Django's plain one and the model keeps
    ``Model.__init__``); else None."""
    if cls not in _ROW_ATTNAMES:
        fields = cls._meta.concrete_fields
        plain = cls.__init__ is models.Model.__init__ and all(
            type(inspect.getattr_static(cls, field.attname, None)) in _PLAIN_ATTRIBUTES
            for field in fields
        )
        _ROW_ATTNAMES[cls] = tuple(field.attname for field in fields) if plain else None
    return _ROW_ATTNAMES[cls]


def init_is_received(model: type[models.Model]) -> bool:
    """A receiver of ``pre_init`` or ``post_init`` waits for the model's instances to be
    made (usually no receiver is connected at all: an empty list needs no lookup)."""
    return bool(
        (pre_init.receivers and pre_init.has_listeners(model))
        or (post_init.receivers and post_init.has_listeners(model))
    )


def row_instance(cls: type[M], db: str | None, values: Sequence[Any]) -> M | None:
    """The instance ``Model.from_db`` would make of a full row of ``cls``, made without
    ``Model.__init__``'s per-field ``setattr``; None when only Django may make it (a
    deferred column, a model with its own ``__init__`` or field descriptors, a receiver
    of ``pre_init`` or ``post_init``)."""
    attnames = _row_attnames(cls)
    if attnames is None or len(values) != len(attnames) or init_is_received(cls):
        return None
    new = cls.__new__(cls)
    state = new._state = ModelState()
    state.adding = False
    state.db = db
    new.__dict__.update(zip(attnames, values, strict=True))
    return new


class TenantOwned(models.Model):
    """Base of every tenant-owned table."""

    tenant = models.ForeignKey(
        Tenant,
        verbose_name=_("tenant"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        editable=False,
    )

    # The default manager raises outside a tenant scope (django-scopes); type checkers
    # see the plain manager it derives from.
    if TYPE_CHECKING:
        objects: ClassVar[models.Manager[Self]]
    else:
        objects = ScopedManager(tenant="tenant")

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any, **kwargs: Any) -> Self:
        """``Model.from_db`` for a full row, storing the values as ``Model.__init__``
        would, without its per-field ``setattr`` (through a data descriptor for each
        foreign key): a third of a rep's page of 40 deals with their stages went there.
        Anything else (a deferred column, a model with its own ``__init__`` or field
        descriptors, a receiver of ``pre_init`` or ``post_init``) goes through Django.
        ``tests/tenancy/test_rows.py`` compares both for every model."""
        new = None if kwargs else row_instance(cls, db, values)
        return super().from_db(db, field_names, values, **kwargs) if new is None else new


class OrgUnit(TenantOwned):
    """A node of the org tree (company → region → team …).

    ``path`` is the materialised path of ids (``/1/4/9/``), so a subtree is one indexed
    prefix query whatever its depth. It is maintained by ``crm.services``.
    """

    name = models.CharField(_("name"), max_length=200)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        db_index=False,
    )
    path = models.CharField(_("path"), max_length=1000, editable=False, default="")
    depth = models.PositiveSmallIntegerField(_("depth"), default=0, editable=False)
    managers: models.ManyToManyField[Membership, OrgUnitManager] = models.ManyToManyField(
        "Membership",
        through="OrgUnitManager",
        related_name="managed_units",
        verbose_name=_("managers"),
        blank=True,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "crm_orgunit"
        verbose_name = _("org unit")
        verbose_name_plural = _("org units")
        ordering = ["path"]
        indexes = [
            models.Index(
                fields=["tenant", "path"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="orgunit_tenant_path",
            ),
            models.Index(fields=["tenant", "parent"], name="orgunit_tenant_parent"),
            models.Index(fields=["tenant", "updated_at"], name="orgunit_tenant_updated"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="orgunit_tenant_id_uniq"),
        ]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    ADMIN = "admin", _("Admin")
    MANAGER = "manager", _("Manager")
    REP = "rep", _("Sales rep")


MAX_REMINDER_LEAD_MINUTES = 7 * 24 * 60


class Language(models.TextChoices):
    EN = "en", _("English")
    ZH_HANS = "zh-hans", _("Simplified Chinese")


class Membership(TenantOwned):
    """A user's place in one tenant: role, org unit, start date (ramp-up), active flag."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="memberships",
        db_index=False,
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    org_unit = models.ForeignKey(
        OrgUnit,
        verbose_name=_("org unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="members",
        db_index=False,
    )
    title = models.CharField(_("title"), max_length=120, blank=True)
    # No model default: a default here would be the server's date, not the tenant's.
    # ``tenancy.services.membership_create`` (API, admin, commands) fills in the
    # tenant's today (SPEC preamble).
    start_date = models.DateField(
        _("start date"),
        help_text=_("Drives the ramp-up schedule. Empty on creation: the tenant's today."),
    )
    end_date = models.DateField(_("end date"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    token_version = models.PositiveIntegerField(
        _("token version"),
        default=0,
        editable=False,
        help_text=_("Raised to revoke every token of this member."),
    )
    # Notification settings (SPEC section 7): the digest's e-mail, the reminders' lead.
    language = models.CharField(
        _("language"), max_length=8, choices=Language.choices, default=Language.EN
    )
    email_notifications = models.BooleanField(
        _("e-mail notifications"),
        default=True,
        help_text=_("Send the morning digest by e-mail too (it is always in the app)."),
    )
    reminder_lead_minutes = models.PositiveIntegerField(
        _("reminder lead time (minutes)"),
        default=30,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_REMINDER_LEAD_MINUTES)],
        help_text=_(
            "How many minutes before a follow-up is due its reminder comes (up to a week)."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        db_table = "crm_membership"
        verbose_name = _("member")
        verbose_name_plural = _("members")
        ordering = ["user__username"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_tenant_user_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="membership_tenant_id_uniq"),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(end_date__gte=models.F("start_date")),
                name="membership_end_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(reminder_lead_minutes__lte=MAX_REMINDER_LEAD_MINUTES),
                name="membership_reminder_lead_week",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "org_unit"], name="membership_tenant_unit"),
            models.Index(fields=["tenant", "updated_at"], name="membership_tenant_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.get_role_display()})"

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def managed_unit_list(self) -> list[int]:
        """The ids of the org units this member manages, sorted: as authentication read
        them with the member (``managed_unit_ids``), from the prefetched links
        (``managed_links``), or else read now."""
        loaded = getattr(self, "managed_unit_ids", None)
        if loaded is not None:
            return sorted(loaded)
        links = getattr(self, "managed_links", None)
        if links is not None:
            return sorted(link.org_unit_id for link in links)
        return sorted(
            OrgUnitManager.objects.filter(membership=self).values_list("org_unit_id", flat=True)
        )


class OrgUnitManager(TenantOwned):
    """A manager of an org unit: they see and steer the unit's whole subtree."""

    org_unit = models.ForeignKey(
        OrgUnit, verbose_name=_("org unit"), on_delete=models.CASCADE, db_index=False
    )
    membership = models.ForeignKey(
        Membership, verbose_name=_("member"), on_delete=models.CASCADE, db_index=False
    )

    class Meta:
        db_table = "crm_orgunitmanager"
        verbose_name = _("org unit manager")
        verbose_name_plural = _("org unit managers")
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "org_unit", "membership"], name="orgunitmanager_uniq"
            ),
            models.UniqueConstraint(fields=["tenant", "id"], name="orgunitmanager_tenant_id_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "membership"], name="orgunitmanager_member"),
        ]

    def __str__(self) -> str:
        return gettext("%(member)s manages %(unit)s") % {
            "member": self.membership.display_name,
            "unit": self.org_unit.name,
        }


class ApiToken(TenantOwned):
    """An integration token. Only its SHA-256 is stored; the key is shown once."""

    name = models.CharField(_("name"), max_length=120)
    prefix = models.CharField(_("prefix"), max_length=24, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, editable=False)
    acts_as = models.ForeignKey(
        Membership,
        verbose_name=_("acts as"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
        db_index=False,
        help_text=_("The token sees what this member sees."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        db_table = "crm_apitoken"
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key_hash"], name="apitoken_hash_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="apitoken_tenant_id_uniq"),
        ]
        indexes = [models.Index(fields=["tenant", "acts_as"], name="apitoken_tenant_member")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class Invitation(TenantOwned):
    """An invitation to join the tenant, sent by e-mail and accepted by the invited person
    while logged in as themselves (SPEC 2). Only the token's SHA-256 is stored."""

    email = models.EmailField(_("e-mail"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.REP)
    org_unit = models.ForeignKey(
        OrgUnit,
        verbose_name=_("org unit"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    invited_by = models.ForeignKey(
        Membership,
        verbose_name=_("invited by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        editable=False,
    )
    token_hash = models.CharField(_("token hash"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"), editable=False)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("accepted by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        editable=False,
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    declined_at = models.DateTimeField(_("declined at"), null=True, blank=True, editable=False)

    class Meta:
        db_table = "crm_invitation"
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "token_hash"], name="invitation_hash_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="invitation_tenant_id_uniq"),
            models.UniqueConstraint(
                "tenant",
                models.functions.Lower("email"),
                condition=models.Q(
                    accepted_at__isnull=True, revoked_at__isnull=True, declined_at__isnull=True
                ),
                name="invitation_one_pending_per_email",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def status(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.declined_at is not None:
            return "declined"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"


class JobRun(TenantOwned):
    """One execution of a tenant job: visible to the tenant's admins (SPEC section 7).

    ``error`` is a one-line summary (the exception's class and message): the traceback
    goes to the log only, never to a tenant admin. A nightly step's run names its night
    and step; a retry or a re-run of the step is a new run of the same step.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        RETRIED = "retried", _("Failed, retried")
        LOST = "lost", _("Lost (its worker stopped)")

    task_name = models.CharField(_("task"), max_length=200)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    counts: models.JSONField[Any, Any] = models.JSONField(_("counts"), default=dict, blank=True)
    error = models.TextField(
        _("error"), blank=True, help_text=_("What went wrong, in one line (no traceback).")
    )
    nightly_run = models.ForeignKey(
        "NightlyRun",
        verbose_name=_("night"),
        on_delete=models.CASCADE,
        related_name="job_runs",
        null=True,
        blank=True,
        db_index=False,
    )
    step = models.CharField(_("nightly step"), max_length=64, blank=True)
    time_limit = models.PositiveIntegerField(
        _("time limit (seconds)"),
        null=True,
        blank=True,
        help_text=_("The hard limit the run had; past it and a margin it is marked lost."),
    )
    worker = models.CharField(_("worker"), max_length=200, blank=True)

    class Meta:
        db_table = "crm_jobrun"
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["tenant", "started_at"], name="jobrun_tenant_started"),
            models.Index(fields=["tenant", "nightly_run", "step"], name="jobrun_tenant_night_step"),
            models.Index(
                fields=["tenant", "started_at"],
                condition=models.Q(status="running"),
                name="jobrun_tenant_running",
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="jobrun_tenant_id_uniq"),
        ]

    def __str__(self) -> str:
        started = timezone.localtime(self.started_at)  # the tenant's zone in a request
        return f"{self.task_name} {started:%Y-%m-%d %H:%M} {self.get_status_display()}"

    @property
    def duration(self) -> timedelta | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


class NightlyRun(TenantOwned):
    """A tenant's night (SPEC section 7): the unique (tenant, night) makes it exist once
    per local date, however often and however many dispatchers run.

    ``steps`` are the registered steps' names, in order, when the night was made; each
    step's runs are its job runs (``job_runs``). ``sent_at`` is empty until the chain
    reached the broker, so a night whose sending failed is sent by the next dispatch;
    ``completed_at`` is set when every step has succeeded.
    """

    night = models.DateField(_("night"), help_text=_("The tenant's local date of the run."))
    as_of = models.DateField(_("as of"), help_text=_("The day the jobs computed (the eve)."))
    dispatched_at = models.DateTimeField(_("dispatched at"), default=timezone.now)
    steps: models.JSONField[Any, Any] = models.JSONField(_("steps"), default=list, blank=True)
    sent_at = models.DateTimeField(_("last sent at"), null=True, blank=True)
    send_error = models.CharField(_("sending error"), max_length=500, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        db_table = "crm_nightlyrun"
        verbose_name = _("nightly run")
        verbose_name_plural = _("nightly runs")
        ordering = ["-night"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "night"], name="nightlyrun_uniq"),
            models.UniqueConstraint(fields=["tenant", "id"], name="nightlyrun_tenant_id_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.night}"
