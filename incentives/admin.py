"""Admin: point rules, the points ledger, commission plans (bands as a readable table,
saved through the services so every change of terms is a new version) and statements
with their lines, approved and locked through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from incentives import commissions, selectors
from incentives.models import (
    CommissionAssignment,
    CommissionPlan,
    CommissionStatement,
    PointEntry,
    PointRule,
    StatementLine,
)
from tenancy.admin import TenantScopedAdmin, error_messages, money_column, request_membership
from tenancy.errors import DomainError, Invalid
from tenancy.models import Membership


@admin.register(PointRule)
class PointRuleAdmin(TenantScopedAdmin):
    list_display = ["event", "points", "daily_cap", "is_active", "updated_at"]
    list_editable = ["is_active"]
    fields = ["event", "points", "daily_cap", "is_active"]

    def save_model(self, request: HttpRequest, obj: PointRule, form: Any, change: bool) -> None:
        if not change:
            member = request_membership(request)
            assert member is not None
            obj.tenant_id = member.tenant_id
        super().save_model(request, obj, form, change)


@admin.register(PointEntry)
class PointEntryAdmin(TenantScopedAdmin):
    list_display = [
        "member",
        "event",
        "kind",
        "points",
        "capped",
        "day",
        "source_type",
        "source_id",
    ]
    list_filter = ["event", "kind", "capped", "day"]
    list_select_related = ["member__user"]
    readonly_fields = (
        "member",
        "event",
        "kind",
        "points",
        "capped",
        "day",
        "source_type",
        "source_id",
        "rule",
        "occurred_at",
        "created_at",
    )
    fields = readonly_fields

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return selectors.visible_point_entries(member)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AssignmentInline(admin.TabularInline):
    model = CommissionAssignment
    extra = 0
    fields = ("member", "org_unit", "effective_from", "effective_to")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CommissionPlanForm(forms.ModelForm):
    class Meta:
        model = CommissionPlan
        fields = [
            "name",
            "statement_period",
            "attainment_metric",
            "base_metric",
            "bands",
            "mode",
            "cap",
            "multipliers",
            "is_active",
        ]
        help_texts = {
            "bands": _('Pairs [from, rate] as fractions, e.g. [["0", "0.02"], ["0.8", "0.04"]].'),
            "multipliers": _('{"product line id": multiplier}, e.g. {"3": "1.5"}.'),
        }


@admin.register(CommissionPlan)
class CommissionPlanAdmin(TenantScopedAdmin):
    form = CommissionPlanForm
    list_display = ["name", "statement_period", "attainment_metric", "mode", "version", "is_active"]
    readonly_fields = ["version", "bands_table"]
    inlines = [AssignmentInline]

    fields = (*CommissionPlanForm.Meta.fields, "bands_table", "version")

    @admin.display(description=_("bands"))
    def bands_table(self, plan: CommissionPlan) -> str:
        if not plan.pk:
            return "–"
        return format_html(
            "<table><tr><th>{}</th><th>{}</th></tr>{}</table>",
            _("from attainment"),
            _("rate"),
            format_html_join(
                "",
                "<tr><td>{} %</td><td>{} %</td></tr>",
                ((float(start) * 100, float(rate) * 100) for start, rate in plan.bands),
            ),
        )

    def save_model(
        self, request: HttpRequest, obj: CommissionPlan, form: Any, change: bool
    ) -> None:
        member = request_membership(request)
        assert member is not None
        data = {name: form.cleaned_data.get(name) for name in CommissionPlanForm.Meta.fields}
        try:
            if change:
                saved = commissions.plan_update(actor=member, plan=obj, **data)
            else:
                saved = commissions.plan_create(actor=member, **data)
        except (DomainError, Invalid) as error:
            for message in error_messages(error):
                self.message_user(request, message, messages.ERROR)
            raise _Refused from error
        obj.pk, obj.version = saved.pk, saved.version

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _Refused:
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())


class _Refused(Exception):
    """A service refused the admin's save; the messages say why."""


class StatementLineInline(admin.TabularInline):
    model = StatementLine
    fk_name = "statement"
    extra = 0
    fields = ("kind", "amount", "explanation")
    readonly_fields = fields
    can_delete = False

    @admin.display(description=_("explanation"))
    def explanation(self, line: StatementLine) -> str:
        return commissions.line_explanation(line)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CommissionStatement)
class CommissionStatementAdmin(TenantScopedAdmin):
    list_display = ["member", "plan", "period_start", "period_end", "status", "total_shown"]
    list_filter = ["status", "plan", "period_start"]
    list_select_related = ["member__user", "plan", "tenant"]
    total_shown = money_column("total", _("total"))
    readonly_fields = (
        "member",
        "plan",
        "period_start",
        "period_end",
        "status",
        "total",
        "as_of",
        "computed_at",
        "approved_by",
        "approved_at",
        "locked_by",
        "locked_at",
    )
    fields = readonly_fields
    inlines = [StatementLineInline]
    actions = ["approve", "lock"]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return commissions.visible_statements_for(member)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _each(self, request: HttpRequest, queryset: QuerySet[Any], service: Any) -> None:
        member = request_membership(request)
        if member is None:
            return
        done = 0
        for statement in queryset:
            try:
                service(actor=member, statement_id=statement.pk)
                done += 1
            except (DomainError, Invalid) as error:
                for message in error_messages(error):
                    self.message_user(request, f"{statement}: {message}", messages.WARNING)
        if done:
            self.message_user(
                request,
                ngettext("%(count)d statement done.", "%(count)d statements done.", done)
                % {"count": done},
            )

    @admin.action(description=_("Approve the selected statements"))
    def approve(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, commissions.statement_approve)

    @admin.action(description=_("Lock the selected statements (admins)"))
    def lock(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._each(request, queryset, commissions.statement_lock)
