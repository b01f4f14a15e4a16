"""Admin: tenant staff see their tenant, filtered by their role's visibility.

Tenant admins manage org units, members and tokens; managers and reps may look. The
platform superuser without a chosen tenant works in the explicit platform scope
(``tenancy.middleware``): every tenant's rows, read-only, plus the tenants themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import ModelFormMetaclass
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy
from django_scopes import scopes_disabled

from tenancy import selectors, services
from tenancy.dates import tenant_today
from tenancy.models import (
    ApiToken,
    Invitation,
    JobRun,
    Membership,
    NightlyRun,
    OrgUnit,
    OrgUnitManager,
    Role,
    Tenant,
)
from tenancy.money import format_money
from tenancy.pagination import CappedCountPaginator

# Foreign-key choices in admin forms: only what the user may see. The apps above add
# their models' visibility selectors here (``crm.admin``), so tenancy names none of them.
VISIBLE_CHOICES: dict[Any, Callable[[Membership], QuerySet[Any]]] = {
    OrgUnit: selectors.visible_org_units,
    Membership: lambda member: selectors.visible_memberships(member).select_related("user"),
}


#: Django 5.2's own zh-Hans admin catalogue lacks these (the index's screen-reader
#: headers among them); marked here, they are translated in ours (LOCALE_PATHS wins).
DJANGO_ADMIN_STRINGS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    gettext_noop("In case you’ve forgotten, you are:"),
)


def error_messages(error: Exception) -> list[str]:
    """A service's refusal (``tenancy.errors``, or a validation error) as admin messages."""
    if isinstance(error, ValidationError):
        return list(error.messages)
    return [str(error)]


def request_membership(request: HttpRequest) -> Membership | None:
    return getattr(request, "membership", None)


def money_column(field: str, description: Any) -> Callable[[Any, Any], str]:
    """A changelist column showing ``field`` as money: grouped, with the tenant's currency
    (``4,890,900.00 CNY``). The admin selects ``tenant`` with the rows (no extra query)."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> str:
        return format_money(getattr(obj, field), obj.tenant.currency)

    return column


class TenantScopedAdmin(admin.ModelAdmin):
    """Base of every admin of a tenant-owned model.

    A changelist page costs the same on a tenant of any size: the count reads at most
    ``COUNT_LIMIT + 1`` rows ("more than 1,000 …", ``templates/admin/pagination.html``)
    and the unfiltered total is not counted a second time.
    """

    paginator = CappedCountPaginator
    show_full_result_count = False

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return self.model._default_manager.all()

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        member = request_membership(request)
        if member is not None:
            return self.visible_queryset(member)
        if request.user.is_superuser:  # platform scope, entered by the middleware
            return self.model._default_manager.all()
        return self.model._default_manager.none()

    def get_list_display(self, request: HttpRequest) -> Any:
        fields = list(super().get_list_display(request))
        if request_membership(request) is None and request.user.is_superuser:
            fields.append("tenant")
        return fields

    def _is_member(self, request: HttpRequest) -> bool:
        return request_membership(request) is not None

    def _is_tenant_admin(self, request: HttpRequest) -> bool:
        member = request_membership(request)
        return member is not None and member.role == Role.ADMIN

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_member(request) or request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_member(request) or request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_tenant_admin(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_tenant_admin(request)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        member = request_membership(request)
        selector = VISIBLE_CHOICES.get(db_field.related_model)
        if member is not None and selector is not None:
            kwargs["queryset"] = selector(member)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OrgUnitManagerInline(admin.TabularInline):
    model = OrgUnitManager
    extra = 0
    verbose_name = _("manager")
    verbose_name_plural = _("managers")
    fields = ["membership"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("membership__user", "org_unit")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        member = request_membership(request)
        if member is not None and db_field.name == "membership":
            kwargs["queryset"] = selectors.visible_memberships(member).select_related("user")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_membership(request) is not None or bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        member = request_membership(request)
        return member is not None and member.role == Role.ADMIN

    has_change_permission = has_add_permission
    has_delete_permission = has_add_permission


@admin.register(OrgUnit)
class OrgUnitAdmin(TenantScopedAdmin):
    list_display = ["indented_name", "depth", "member_count", "updated_at"]
    search_fields = ["name"]
    list_filter = ["depth"]
    fields = ["name", "parent", "path", "depth"]
    readonly_fields = ["path", "depth"]
    inlines = [OrgUnitManagerInline]
    ordering = ["path"]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_org_units(member)

    @admin.display(description=_("name"), ordering="path")
    def indented_name(self, unit: OrgUnit) -> str:
        return "\u2003" * unit.depth + unit.name

    @admin.display(description=_("members"))
    def member_count(self, unit: OrgUnit) -> int:
        return getattr(unit, "_member_count", 0)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        from django.db.models import Count

        return super().get_queryset(request).annotate(_member_count=Count("members"))

    def save_model(self, request: HttpRequest, obj: OrgUnit, form: Any, change: bool) -> None:
        if change:
            services.org_unit_update(
                unit=obj, name=obj.name, parent=form.cleaned_data.get("parent")
            )
        else:
            member = request_membership(request)
            assert member is not None
            created = services.org_unit_create(
                tenant=member.tenant, name=obj.name, parent=form.cleaned_data.get("parent")
            )
            obj.pk, obj.tenant_id, obj.path, obj.depth = (
                created.pk,
                created.tenant_id,
                created.path,
                created.depth,
            )
            obj._state.adding = False

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:
            if inline_form.instance.pk is None:
                inline_form.instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)


class ScopeSafeModelFormMetaclass(ModelFormMetaclass):
    """Builds model forms at import time, outside any tenant scope.

    Form fields for foreign keys take ``_default_manager.all()`` lazily (no query), which
    django-scopes refuses outside a scope; the admin narrows them per request anyway.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        with scopes_disabled():
            return super().__new__(mcs, name, bases, attrs)


class MembershipAddForm(forms.ModelForm, metaclass=ScopeSafeModelFormMetaclass):
    username = forms.CharField(label=_("username"), max_length=150)
    email = forms.EmailField(label=_("email"), required=False)
    first_name = forms.CharField(label=_("first name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("last name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("password"),
        widget=forms.PasswordInput,
        required=False,
        help_text=_(
            "Leave empty to have no password yet. Someone who already has an account "
            "joins through an invitation instead."
        ),
    )

    class Meta:
        model = Membership
        fields = ["role", "org_unit", "title", "start_date"]


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ["display_name", "username", "role", "org_unit", "start_date", "is_active"]
    list_filter = ["role", "is_active", "org_unit"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email"]
    list_select_related = ["user", "org_unit"]
    fields = [
        "role",
        "org_unit",
        "title",
        "start_date",
        "end_date",
        "is_active",
        "language",
        "email_notifications",
        "reminder_lead_minutes",
    ]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_memberships(member)

    @admin.display(description=_("name"), ordering="user__first_name")
    def display_name(self, member: Membership) -> str:
        return member.display_name

    @admin.display(description=_("username"), ordering="user__username")
    def username(self, member: Membership) -> str:
        return member.user.get_username()

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = MembershipAddForm
            kwargs["fields"] = None
        return super().get_form(request, obj, change=change, **kwargs)

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial: dict[str, Any] = dict(super().get_changeform_initial_data(request))
        member = request_membership(request)
        if member is not None:  # the tenant's today, not the server's (SPEC preamble)
            initial.setdefault("start_date", tenant_today(member.tenant))
        return initial

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return [
                "username",
                "email",
                "first_name",
                "last_name",
                "password",
                "role",
                "org_unit",
                "title",
                "start_date",
            ]
        return super().get_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            fields = ["role", "org_unit", "title", "start_date", "end_date", "is_active"]
            updated = services.membership_update(
                membership=obj, **{field: data[field] for field in fields if field in data}
            )
            obj.token_version = updated.token_version
            return
        member = request_membership(request)
        assert member is not None
        created = services.membership_create(
            tenant=member.tenant,
            username=data["username"],
            email=data.get("email") or "",
            first_name=data.get("first_name") or "",
            last_name=data.get("last_name") or "",
            password=data.get("password") or None,
            role=data["role"],
            org_unit=data.get("org_unit"),
            title=data.get("title") or "",
            start_date=data.get("start_date"),
            is_staff=True,
        )
        obj.pk, obj.tenant_id, obj.user_id = created.pk, created.tenant_id, created.user_id
        obj._state.adding = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deactivate instead: records keep their owners


@admin.register(ApiToken)
class ApiTokenAdmin(TenantScopedAdmin):
    list_display = ["name", "prefix", "acts_as", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "prefix"]
    fields = ["name", "acts_as"]
    actions = ["revoke"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request) or request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        issued = services.api_token_create(acts_as=obj.acts_as, name=obj.name)
        obj.pk, obj.tenant_id = issued.token.pk, issued.token.tenant_id
        obj._state.adding = False
        messages.warning(
            request,
            _("Copy the key now, it is not shown again: %(key)s") % {"key": issued.key},
        )

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        if not self._is_tenant_admin(request):
            return
        for token in queryset:
            services.api_token_revoke(token=token)
        self.message_user(request, _("Tokens revoked."))


class InvitationAddForm(forms.ModelForm, metaclass=ScopeSafeModelFormMetaclass):
    class Meta:
        model = Invitation
        fields = ["email", "role", "org_unit"]

    def clean_email(self) -> str:
        email = str(self.cleaned_data["email"]).strip()
        if Membership.objects.filter(user__email__iexact=email).exists():
            raise ValidationError(
                _("Someone with this e-mail address is already a member of this tenant.")
            )
        live = Invitation.objects.filter(
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        if live.exists():
            raise ValidationError(
                _("This address already has a pending invitation. Revoke it first.")
            )
        return email


#: An invitation's state in words (``Invitation.status`` is the API's code).
INVITATION_STATUS = {
    "pending": pgettext_lazy("invitation", "Pending"),
    "accepted": pgettext_lazy("invitation", "Accepted"),
    "revoked": pgettext_lazy("invitation", "Revoked"),
    "expired": pgettext_lazy("invitation", "Expired"),
}


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invitations: adding one e-mails it; the invited person accepts while logged in."""

    form = InvitationAddForm
    list_display = ["email", "role", "org_unit", "status", "created_at", "expires_at"]
    list_filter = ["role", "accepted_at", "revoked_at", "declined_at"]
    search_fields = ["email"]
    actions = ["revoke"]

    @admin.display(description=_("status"))
    def status(self, invitation: Invitation) -> str:
        return str(INVITATION_STATUS.get(invitation.status, invitation.status))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request) or request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Invitation, form: Any, change: bool) -> None:
        member = request_membership(request)
        assert member is not None
        issued = services.invitation_create(
            invited_by=member,
            email=obj.email,
            role=obj.role,
            org_unit=obj.org_unit,
            accept_url=request.build_absolute_uri(reverse("invitation-respond")),
        )
        obj.pk, obj.tenant_id = issued.invitation.pk, issued.invitation.tenant_id
        obj._state.adding = False
        self.message_user(request, _("The invitation has been sent to %s.") % obj.email)

    @admin.action(description=_("Revoke the selected invitations"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        if not self._is_tenant_admin(request):
            return
        for invitation in queryset.filter(accepted_at__isnull=True):
            services.invitation_revoke(invitation=invitation)
        self.message_user(request, _("Invitations revoked."))


def _duration(run: JobRun) -> str:
    duration = run.duration
    return "" if duration is None else f"{duration.total_seconds():.1f} s"


@admin.register(JobRun)
class JobRunAdmin(TenantScopedAdmin):
    list_display = [
        "task_name",
        "step",
        "status",
        "started_at",
        "finished_at",
        "duration",
        "counts",
        "error",
    ]
    list_filter = ["status", "task_name", "step"]
    list_select_related = ["nightly_run"]
    readonly_fields = [
        "task_name",
        "task_id",
        "nightly_run",
        "step",
        "status",
        "started_at",
        "finished_at",
        "duration",
        "time_limit",
        "worker",
        "counts",
        "error",
    ]

    @admin.display(description=_("duration"))
    def duration(self, run: JobRun) -> str:
        return _duration(run)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request) or request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NightStepInline(admin.TabularInline):
    """Each run of each step of the night: status, counts, duration, error summary."""

    model = JobRun
    fk_name = "nightly_run"
    extra = 0
    can_delete = False
    ordering = ["started_at", "pk"]
    fields = ["step", "status", "started_at", "duration", "counts", "error"]
    readonly_fields = ["step", "status", "started_at", "duration", "counts", "error"]
    verbose_name = _("step run")
    verbose_name_plural = _("step runs")

    @admin.display(description=_("duration"))
    def duration(self, run: JobRun) -> str:
        return _duration(run)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # whoever may see the night (NightlyRunAdmin decides) sees its steps

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NightlyRun)
class NightlyRunAdmin(JobRunAdmin):
    """A tenant's nights, each with its steps' runs (counts, duration, error summary)."""

    list_display = ["night", "as_of", "dispatched_at", "sent_at", "completed_at", "step_summary"]
    list_filter = []
    list_select_related = []
    readonly_fields = [
        "night",
        "as_of",
        "steps",
        "dispatched_at",
        "sent_at",
        "send_error",
        "completed_at",
    ]
    inlines = [NightStepInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).prefetch_related("job_runs")

    @admin.display(description=_("steps"))
    def step_summary(self, night: NightlyRun) -> str:
        """Each planned step's latest run: "snapshots: succeeded (1.2 s)"."""
        latest: dict[str, JobRun] = {}
        for run in sorted(night.job_runs.all(), key=lambda run: (run.started_at, run.pk)):
            latest[run.step] = run
        parts = []
        for step in night.steps:
            step_run = latest.get(step)
            if step_run is None:
                parts.append(_("%(step)s: not started") % {"step": step})
            else:
                parts.append(
                    _("%(step)s: %(status)s (%(duration)s)")
                    % {
                        "step": step,
                        "status": step_run.get_status_display(),
                        "duration": _duration(step_run) or "…",
                    }
                )
        return "; ".join(str(part) for part in parts)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    """Tenants are platform objects: only the platform superuser manages them."""

    list_display = ["name", "slug", "time_zone", "currency", "fiscal_year_start_month", "is_active"]
    search_fields = ["name", "slug"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_superuser)

    has_change_permission = has_view_permission
    has_delete_permission = has_view_permission

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)


admin.site.site_header = _("Target CRM")
admin.site.site_title = _("Target CRM")
