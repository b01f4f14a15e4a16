"""Admin: warning rules, alerts with their explanations, and a team's funnel table."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm.models import Pipeline
from funnel import selectors
from funnel.models import FRACTION_THRESHOLDS, Alert, AlertStatus, WarningRule
from funnel.warnings import alert_message, ensure_rules, visible_alerts
from targets.calendar import period_containing
from tenancy import selectors as tenancy_selectors
from tenancy.admin import TenantScopedAdmin, request_membership
from tenancy.dates import tenant_today
from tenancy.models import Membership, Tenant
from tenancy.money import format_rate

THRESHOLD_LABELS = {
    "win_rate": _("win rate below"),
    "min_closed": _("closed deals at least"),
    "window_days": _("window (days)"),
    "drop_points": _("drop of at least"),
    "min_cohort": _("cohort at least"),
    "decline": _("decline of at least"),
    "no_visit_days": _("days without a visit"),
    "default_rot_days": _("days in a stage (default)"),
    "max_overdue": _("overdue follow-ups allowed"),
}


@admin.register(WarningRule)
class WarningRuleAdmin(TenantScopedAdmin):
    list_display = ["key", "enabled", "severity", "thresholds_text", "updated_at"]
    list_editable = ["enabled"]
    fields = ["key", "enabled", "severity", "thresholds"]
    readonly_fields = ["key"]

    @admin.display(description=_("thresholds"))
    def thresholds_text(self, rule: WarningRule) -> str:
        """The thresholds in words, fractions as percentages: "win rate below: 15.0%"."""
        return "; ".join(
            f"{THRESHOLD_LABELS.get(name, name)}: "
            + (format_rate(Decimal(str(value))) if name in FRACTION_THRESHOLDS else str(value))
            for name, value in (rule.thresholds or {}).items()
        )

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        ensure_rules(member.tenant_id)
        return WarningRule.objects.all()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(TenantScopedAdmin):
    list_display = ["explanation", "rule", "severity", "status", "owner", "period", "opened_at"]
    list_filter = ["rule", "status", "severity"]
    list_select_related = ["owner__user"]
    readonly_fields = (
        "rule",
        "subject_type",
        "subject_id",
        "period",
        "owner",
        "observed",
        "threshold",
        "severity",
        "status",
        "explanation",
        "opened_at",
        "resolved_at",
        "acknowledged_by",
    )
    fields = readonly_fields
    actions = ["acknowledge"]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return visible_alerts(member)

    @admin.display(description=_("explanation"))
    def explanation(self, alert: Alert) -> str:
        return alert_message(alert)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Acknowledge"))
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Alert]) -> None:
        member = request_membership(request)
        if member is None:
            return
        count = queryset.filter(status=AlertStatus.OPEN).update(
            status=AlertStatus.ACKNOWLEDGED, acknowledged_by=member
        )
        self.message_user(
            request,
            ngettext("%(count)d alert acknowledged.", "%(count)d alerts acknowledged.", count)
            % {"count": count},
        )


@staff_member_required
def funnel_report(request: HttpRequest) -> HttpResponse:
    """The funnel of the caller's team (or a unit they see) for a window, as tables."""
    member = request_membership(request)
    if member is None:
        raise Http404
    tenant = Tenant.objects.get(pk=member.tenant_id)
    quarter = period_containing(tenant_today(tenant), "quarter", tenant.fiscal_year_start_month)
    units = tenancy_selectors.visible_org_units(member)
    unit = None
    if request.GET.get("org_unit"):
        unit = units.filter(pk=request.GET["org_unit"]).first()
        if unit is None:
            raise Http404
    pipeline = Pipeline.objects.filter(is_default=True).first()
    if pipeline is None:
        raise Http404
    scope = selectors.Scope(caller=member, pipeline=pipeline, org_unit=unit)
    window = selectors.Window(quarter.start, quarter.end, tenant.time_zone)
    stages = {str(stage.pk): str(stage) for stage in selectors.open_stages(pipeline)}
    cohort = selectors.cohort_conversion(scope, window)
    context = {
        **admin.site.each_context(request),
        "title": _("Funnel"),
        "currency": tenant.currency,
        "units": units,
        "unit": unit,
        "window": window,
        "cohort": [
            {"name": stages[row.stage], "reached": row.reached, "rate": row.rate_to_next_stage}
            for row in cohort.stages
        ],
        "created": cohort.created,
        "won": cohort.won,
        "win_rate": cohort.win_rate,
        "closed": selectors.closed_win_rate(scope, window),
        "losses": [
            {**row, "stage_name": stages.get(str(row["stage"]), "—")}
            for row in selectors.loss_by_stage(scope, window)
        ],
        "time_in_stage": [
            {**row, "stage_name": stages.get(str(row["stage"]), str(row["stage"]))}
            for row in selectors.time_in_stage(scope, window)
        ],
        "cycle": selectors.cycle_time(scope, window),
        "pipeline": selectors.weighted_pipeline(scope, window),
    }
    return TemplateResponse(request, "admin/funnel/report.html", context)
