"""Admin of CRM records for reps and managers (SPEC section 3).

Everything goes through ``crm.services`` (so the admin writes stage history, fixes
credit at a win and refuses what the API refuses) and through the visibility
selectors (a rep sees their own records, a manager their subtree's, an admin all).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm import selectors, services
from crm.models import (
    Activity,
    Contact,
    Customer,
    Lead,
    Notification,
    Opportunity,
    Payment,
    Pipeline,
    ProductLine,
    Stage,
    StageChange,
    StageKind,
    Visit,
)
from tenancy import selectors as tenancy_selectors
from tenancy.admin import (
    VISIBLE_CHOICES,
    TenantScopedAdmin,
    error_messages,
    money_column,
    request_membership,
)
from tenancy.dates import tenant_today
from tenancy.errors import DomainError
from tenancy.models import Membership, OrgUnit, Role


def _report(request: HttpRequest, error: Exception) -> None:
    """Show a service's refusal (400/409) as an admin error message."""
    messages.error(request, "; ".join(error_messages(error)))


VISIBLE_CHOICES.update(
    {
        Customer: selectors.visible_customers,
        Lead: selectors.visible_leads,
        Opportunity: selectors.visible_opportunities,
    }
)


class RecordAdmin(TenantScopedAdmin):
    """Records: every member works on what they can see; saves bump the sync version."""

    selector: Any = None

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return self.selector(member)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_member(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_member(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_member(request)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        member = request_membership(request)
        assert member is not None
        if change:
            changes = {field: form.cleaned_data[field] for field in form.changed_data}
            if changes:
                services.sync_update(obj, expected_version=None, **changes)
            return
        obj.tenant_id = member.tenant_id
        self.fill_new(obj, member)
        obj.save()

    def fill_new(self, obj: Any, member: Membership) -> None:
        """Defaults for a record created in the admin (owner = the creator)."""
        if hasattr(obj, "owner_id") and obj.owner_id is None and not isinstance(obj, Customer):
            obj.owner = member

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """What depends on a record is listed as protected: the page refuses the delete,
        as the API answers 409 (SPEC 3)."""
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        protected = list(protected)
        for obj in objs:
            protected += [f"{obj}: {phrase}" for phrase in services.delete_blockers(obj)]
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        member = request_membership(request)
        assert member is not None
        services.record_delete(member=member, instance=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:
            if inline_form.instance.pk is None:
                inline_form.instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)


class MemberInlineMixin:
    """Tenant staff hold no Django model permissions: inlines follow the membership."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_membership(request) is not None or bool(request.user.is_superuser)


class ReadOnlyInline(MemberInlineMixin, admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- customers ------------------------------------------------------------------------


class ContactInline(MemberInlineMixin, admin.TabularInline):
    model = Contact
    extra = 0
    fields = ["name", "title", "phone", "email"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return Contact.objects.all()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_membership(request) is not None

    has_change_permission = has_add_permission
    has_delete_permission = has_add_permission


class DistinctValuesFilter(admin.AllValuesFieldListFilter):
    """Django's "all values" filter, whose choices for a member who sees every customer
    are read by skipping through the ``(tenant, field)`` index, one probe per distinct
    value, instead of ``SELECT DISTINCT`` over every customer of the tenant (19 ms at
    25,000 customers and growing with them). Members who see part of the tenant get
    Django's query over their own rows: values of customers they cannot see never show."""

    def __init__(self, field: Any, request: Any, params: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(field, request, params, *args, **kwargs)
        member = request_membership(request)
        if member is not None and member.role == Role.ADMIN and not field.null:
            self.lookup_choices = _distinct_values(field, member.tenant_id)  # type: ignore[assignment]


def _distinct_values(field: Any, tenant_id: int) -> list[Any]:
    """A non-null column's distinct values among the tenant's live rows, in order (a loose
    index scan: each step asks the index for the least value above the previous one)."""
    table = connection.ops.quote_name(field.model._meta.db_table)
    column = connection.ops.quote_name(field.column)
    live = (
        "AND deleted_at IS NULL"
        if any(f.name == "deleted_at" for f in field.model._meta.fields)
        else ""
    )
    sql = f"""
        WITH RECURSIVE seen(value) AS (
            SELECT min(t.{column}) FROM {table} t WHERE t.tenant_id = %(tenant)s {live}
            UNION ALL
            SELECT (SELECT min(t.{column}) FROM {table} t
                    WHERE t.tenant_id = %(tenant)s {live} AND t.{column} > seen.value)
            FROM seen WHERE seen.value IS NOT NULL
        )
        SELECT value FROM seen WHERE value IS NOT NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"tenant": tenant_id})
        return [value for (value,) in cursor.fetchall()]


@admin.register(Customer)
class CustomerAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_customers)
    list_display = ["name", "level", "owner", "region", "industry", "updated_at"]
    list_filter = [
        "level",
        ("owner", admin.EmptyFieldListFilter),
        ("region", DistinctValuesFilter),
        ("industry", DistinctValuesFilter),
    ]
    search_fields = ["name", "address", "industry"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner__user"]
    fields = [
        "name",
        "level",
        "industry",
        "region",
        "source",
        "owner",
        "address",
        ("latitude", "longitude"),
    ]
    inlines = [ContactInline]
    actions = ["claim"]

    def fill_new(self, obj: Any, member: Membership) -> None:
        obj.first_owner = obj.owner

    @admin.action(description=_("Claim the selected customers from the public pool"))
    def claim(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        member = request_membership(request)
        assert member is not None
        claimed = 0
        for customer in queryset.filter(owner__isnull=True):
            try:
                services.customer_claim(member=member, customer=customer)
                claimed += 1
            except DomainError as error:
                _report(request, error)
        self.message_user(
            request,
            ngettext("%(count)d customer claimed.", "%(count)d customers claimed.", claimed)
            % {"count": claimed},
        )


@admin.register(Contact)
class ContactAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_contacts)
    list_display = ["name", "customer", "title", "phone", "email"]
    search_fields = ["name", "phone", "email", "customer__name"]
    autocomplete_fields = ["customer"]
    list_select_related = ["customer"]


# --- leads ------------------------------------------------------------------------------


@admin.register(Lead)
class LeadAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_leads)
    list_display = ["name", "company", "status", "source", "owner", "created_at", "converted_at"]
    list_filter = ["status", "source"]
    search_fields = ["name", "company", "phone", "email"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner__user"]
    readonly_fields = ["converted_at", "converted_customer"]
    actions = ["convert"]

    @admin.action(description=_("Convert to customer and opportunity"))
    def convert(self, request: HttpRequest, queryset: QuerySet[Lead]) -> None:
        member = request_membership(request)
        assert member is not None
        for lead in queryset:
            try:
                services.lead_convert(member=member, lead=lead)
            except (ValidationError, DomainError) as error:
                _report(request, error)
            else:
                self.message_user(request, _("Converted %s.") % lead)


# --- product lines and pipelines ---------------------------------------------------------


class ConfigAdmin(TenantScopedAdmin):
    """Tenant configuration: everyone reads, tenant admins write."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        member = request_membership(request)
        if not change and member is not None:
            obj.tenant_id = member.tenant_id
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for inline_form in formset.forms:
            if inline_form.instance.pk is None:
                inline_form.instance.tenant_id = form.instance.tenant_id
        super().save_formset(request, form, formset, change)


@admin.register(ProductLine)
class ProductLineAdmin(ConfigAdmin):
    list_display = ["name", "is_new", "is_active"]
    list_filter = ["is_new", "is_active"]
    search_fields = ["name"]


class StageInline(MemberInlineMixin, admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["order", "name", "name_zh", "probability", "forecast_category", "kind", "rot_days"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return Stage.objects.all()

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        member = request_membership(request)
        return member is not None and member.role == "admin"

    has_change_permission = has_add_permission
    has_delete_permission = has_add_permission


@admin.register(Pipeline)
class PipelineAdmin(ConfigAdmin):
    list_display = ["name", "is_default"]
    inlines = [StageInline]


# --- opportunities --------------------------------------------------------------------


class StageChangeInline(ReadOnlyInline):
    model = StageChange
    fields = readonly_fields = ("changed_at", "from_stage", "to_stage", "amount", "changed_by")
    show_change_link = False
    ordering = ["changed_at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return StageChange.objects.select_related("from_stage", "to_stage", "changed_by__user")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fk_name = "opportunity"
    fields = readonly_fields = ("amount", "status", "planned_date", "received_date", "note")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return Payment.objects.select_related("tenant")  # its title shows the currency


class ActivityInline(ReadOnlyInline):
    model = Activity
    fields = readonly_fields = ("type", "subject", "owner", "due_at", "done_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return Activity.objects.select_related("owner__user")


class CorrectForm(forms.Form):
    reason = forms.CharField(label=_("reason"), max_length=300)
    amount = forms.DecimalField(label=_("amount"), required=False, max_digits=16, decimal_places=2)
    closed_date = forms.DateField(label=_("closed date"), required=False)


class MoveForm(forms.Form):
    stage = forms.ModelChoiceField(queryset=Stage.objects.none(), label=_("stage"))
    lost_reason = forms.CharField(label=_("lost reason"), required=False, max_length=200)
    reopen = forms.BooleanField(label=_("reopen closed deals"), required=False)


class OwnerUnitFilter(admin.SimpleListFilter):
    """Deals whose owner is in a unit's subtree (``?unit=ID``): the pages' drill-downs
    from a unit's figures land here. Units the viewer cannot see are not offered, and a
    unit id outside the tenant or not a number shows no deal."""

    title = _("owner's org unit")
    parameter_name = "unit"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[Any, str]]:
        member = request_membership(request)
        if member is None:
            return []
        units = tenancy_selectors.visible_org_units(member).order_by("path")
        return [(unit.pk, str(unit)) for unit in units]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        unit = OrgUnit.objects.filter(pk=int(value)).first() if value.isdigit() else None
        if unit is None:
            return queryset.none()
        return queryset.filter(owner__org_unit__path__startswith=unit.path)


@admin.register(Opportunity)
class OpportunityAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_opportunities)
    list_display = [
        "name",
        "customer",
        "owner",
        "stage",
        "amount_shown",
        "expected_close_date",
        "closed_date",
    ]
    list_filter = ["stage__kind", "stage", "product_line", OwnerUnitFilter]
    search_fields = ["name", "customer__name"]
    autocomplete_fields = ["customer", "owner"]
    list_select_related = ["customer", "owner__user", "stage", "tenant"]
    amount_shown = money_column("amount", _("amount"))
    date_hierarchy = "created_at"
    readonly_fields = [
        "closed_date",
        "credited_member",
        "credited_org_unit",
        "source_lead",
        "version",
    ]
    inlines = [StageChangeInline, PaymentInline, ActivityInline]
    actions = ["move", "mark_won", "mark_lost", "correct"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:  # stages change only through the move actions (history!)
            fields += ["pipeline", "stage"]
            if obj.stage.kind != StageKind.OPEN:  # closed: only through a correction
                fields += ["amount", "product_line"]
        return fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        member = request_membership(request)
        assert member is not None
        if change:
            changes = {field: form.cleaned_data[field] for field in form.changed_data}
            if changes:
                services.opportunity_update(
                    member=member, opportunity=obj, expected_version=None, **changes
                )
            return
        data = form.cleaned_data
        created, _created = services.opportunity_create(
            member=member,
            customer=data["customer"],
            name=data["name"],
            owner=data.get("owner") or member,
            pipeline=data.get("pipeline"),
            stage=data.get("stage"),
            lost_reason=data.get("lost_reason") or "",
            amount=data.get("amount"),
            product_line=data.get("product_line"),
            expected_close_date=data.get("expected_close_date"),
            probability_override=data.get("probability_override"),
            forecast_category_override=data.get("forecast_category_override") or "",
        )
        obj.pk, obj.tenant_id = created.pk, created.tenant_id
        obj._state.adding = False

    def _move_all(
        self,
        request: HttpRequest,
        queryset: QuerySet[Opportunity],
        stage: Stage,
        lost_reason: str = "",
        reopen: bool = False,
    ) -> int:
        member = request_membership(request)
        assert member is not None
        moved = 0
        for opportunity in queryset:
            try:
                services.opportunity_move(
                    member=member,
                    opportunity=opportunity,
                    stage=stage,
                    lost_reason=lost_reason,
                    reopen=reopen,
                )
                moved += 1
            except (ValidationError, DomainError) as error:
                messages.error(request, f"{opportunity}: {'; '.join(error_messages(error))}")
        if moved:
            self.message_user(
                request,
                ngettext(
                    "%(count)d deal moved to %(stage)s.",
                    "%(count)d deals moved to %(stage)s.",
                    moved,
                )
                % {
                    "count": moved,
                    "stage": stage,
                },
            )
        return moved

    def _form_page(
        self, request: HttpRequest, queryset: QuerySet[Opportunity], form: MoveForm, action: str
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Move deals"),
            "form": form,
            "queryset": queryset,
            "action": action,
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/crm/opportunity/move.html", context)

    def _stages(self, queryset: QuerySet[Opportunity]) -> QuerySet[Stage]:
        return Stage.objects.filter(pipeline__in=queryset.values("pipeline")).order_by("order")

    @admin.action(description=_("Move to a stage…"))
    def move(self, request: HttpRequest, queryset: QuerySet[Opportunity]) -> HttpResponse | None:
        form = MoveForm(request.POST if "apply" in request.POST else None)
        form.fields["stage"].queryset = self._stages(queryset)  # type: ignore[attr-defined]
        if "apply" in request.POST and form.is_valid():
            self._move_all(
                request,
                queryset,
                form.cleaned_data["stage"],
                form.cleaned_data["lost_reason"],
                form.cleaned_data["reopen"],
            )
            return None
        return self._form_page(request, queryset, form, "move")

    @admin.action(description=_("Correct a closed deal (with a reason)…"))
    def correct(self, request: HttpRequest, queryset: QuerySet[Opportunity]) -> HttpResponse | None:
        """A won or lost deal's amount or closed date, by a manager above or an admin."""
        member = request_membership(request)
        assert member is not None
        form = CorrectForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            data = form.cleaned_data
            changes = {
                field: data[field] for field in ("amount", "closed_date") if data[field] is not None
            }
            for opportunity in queryset:
                try:
                    services.opportunity_correct(
                        member=member, opportunity=opportunity, reason=data["reason"], **changes
                    )
                except (ValidationError, DomainError) as error:
                    messages.error(request, f"{opportunity}: {'; '.join(error_messages(error))}")
                else:
                    self.message_user(request, _("Corrected %s.") % opportunity)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Correct closed deals"),
            "form": form,
            "queryset": queryset,
            "action": "correct",
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/crm/opportunity/correct.html", context)

    @admin.action(description=_("Mark won"))
    def mark_won(self, request: HttpRequest, queryset: QuerySet[Opportunity]) -> None:
        for stage in self._stages(queryset).filter(kind=StageKind.WON):
            self._move_all(request, queryset.filter(pipeline=stage.pipeline_id), stage)

    @admin.action(description=_("Mark lost (with a reason)…"))
    def mark_lost(
        self, request: HttpRequest, queryset: QuerySet[Opportunity]
    ) -> HttpResponse | None:
        lost = self._stages(queryset).filter(kind=StageKind.LOST)
        form = MoveForm(request.POST if "apply" in request.POST else None)
        form.fields["stage"].queryset = lost  # type: ignore[attr-defined]
        form.fields["stage"].initial = lost.first()
        if "apply" in request.POST and form.is_valid():
            if not form.cleaned_data["lost_reason"].strip():
                messages.error(request, _("Say why the deal was lost."))
                return self._form_page(request, queryset, form, "mark_lost")
            self._move_all(
                request, queryset, form.cleaned_data["stage"], form.cleaned_data["lost_reason"]
            )
            return None
        return self._form_page(request, queryset, form, "mark_lost")


# --- payments, visits, activities, notifications ------------------------------------


class ReverseForm(forms.Form):
    note = forms.CharField(label=_("note"), required=False)


@admin.register(Payment)
class PaymentAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_payments)
    list_display = ["opportunity", "amount_shown", "status", "planned_date", "received_date"]
    list_filter = ["status"]
    search_fields = ["opportunity__name", "opportunity__customer__name", "note"]
    autocomplete_fields = ["opportunity"]
    list_select_related = ["opportunity", "tenant"]
    amount_shown = money_column("amount", _("amount"))
    date_hierarchy = "received_date"
    actions = ["reverse"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # received payments are never edited: reverse them

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form_class = super().get_form(request, obj, change=change, **kwargs)
        member = request_membership(request)

        class PaymentForm(form_class):  # type: ignore[misc, valid-type]
            def clean_received_date(self) -> Any:
                """A rep's payment is received today; an admin may give an earlier day."""
                value = self.cleaned_data.get("received_date")
                if member is None:
                    return value
                try:
                    return services.check_record_date(
                        value,
                        "received_date",
                        today=tenant_today(member.tenant),
                        backdate=services.may_backdate(member),
                    )
                except ValidationError as error:
                    raise ValidationError(error.message_dict["received_date"]) from error

        return PaymentForm

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        member = request_membership(request)
        assert member is not None
        data = form.cleaned_data
        opportunity = Opportunity.objects.select_related("stage").get(pk=data["opportunity"].pk)
        created, _created = services.payment_record(
            member=member,
            opportunity=opportunity,
            amount=data["amount"],
            planned_date=data.get("planned_date"),
            received_date=data.get("received_date"),
            note=data.get("note") or "",
        )
        obj.pk, obj.tenant_id = created.pk, created.tenant_id
        obj._state.adding = False

    @admin.action(description=_("Reverse the selected received payments"))
    def reverse(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        member = request_membership(request)
        assert member is not None
        for payment in queryset:
            try:  # dated the tenant's today by the service
                services.payment_reverse(member=member, payment=payment)
            except DomainError as error:
                _report(request, error)


@admin.register(Visit)
class VisitAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_visits)
    list_display = ["customer", "rep", "planned_start", "check_in_at", "distance_m", "verified"]
    list_filter = ["verified"]
    search_fields = ["customer__name", "purpose", "outcome"]
    autocomplete_fields = ["customer"]
    list_select_related = ["customer", "rep__user", "tenant"]  # a visit's title: local time
    date_hierarchy = "planned_start"
    fields = ["customer", "planned_start", "purpose", "outcome", "next_step"]
    readonly_fields = ["check_in_at", "check_out_at", "distance_m", "verified"]

    def fill_new(self, obj: Any, member: Membership) -> None:
        obj.rep = member

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.check_in_at is not None:  # frozen after check-in
            fields.append("customer")
        return fields


@admin.register(Activity)
class ActivityAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_activities)
    list_display = ["subject", "type", "owner", "customer", "opportunity", "due_at", "done_at"]
    list_filter = ["type", ("done_at", admin.EmptyFieldListFilter)]
    search_fields = ["subject", "outcome"]
    autocomplete_fields = ["customer", "lead", "opportunity", "owner"]
    list_select_related = ["owner__user", "customer", "opportunity"]
    date_hierarchy = "due_at"
    actions = ["complete"]

    @admin.action(description=_("Mark done"))
    def complete(self, request: HttpRequest, queryset: QuerySet[Activity]) -> None:
        member = request_membership(request)
        assert member is not None
        for activity in queryset.filter(done_at__isnull=True):
            try:  # done meanwhile by someone else: a message, not an error page
                services.activity_complete(member=member, activity=activity)
            except DomainError as error:
                _report(request, error)


@admin.register(Notification)
class NotificationAdmin(RecordAdmin):
    selector = staticmethod(selectors.visible_notifications)
    list_display = ["text", "kind", "created_at", "read_at"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter)]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
