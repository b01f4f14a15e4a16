"""Admin: warning rules, alerts with their explanations, and a team's funnel table."""

from __future__ import annotations

import json
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
from funnel import review_selectors, selectors, services
from funnel.models import (
    FRACTION_THRESHOLDS,
    Alert,
    AlertStatus,
    Review,
    ReviewAction,
    ReviewStatus,
    WarningRule,
)
from funnel.warnings import alert_message, ensure_rules, visible_alerts
from targets.calendar import period_containing
from tenancy import selectors as tenancy_selectors
from tenancy.admin import TenantScopedAdmin, request_membership
from tenancy.dates import tenant_today
from tenancy.errors import Forbidden
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


# --- reviews (SPEC §10) ---------------------------------------------------------------


class ReviewActionInline(admin.TabularInline):
    """The review's action items with their follow-up's state; added through the API
    (each creates its owner's follow-up), shown here read-only."""

    model = ReviewAction
    extra = 0
    can_delete = False
    fields = ["text", "owner", "due_date", "follow_up", "done"]
    readonly_fields = ["text", "owner", "due_date", "follow_up", "done"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return ReviewAction.objects.select_related("owner__user", "follow_up")

    @admin.display(description=_("done"), boolean=True)
    def done(self, item: ReviewAction) -> bool:
        return item.follow_up is not None and item.follow_up.done_at is not None

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request_membership(request) is not None or bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Review)
class ReviewAdmin(TenantScopedAdmin):
    """Reviews of the nodes the caller sees; the findings of a draft are editable by
    whoever may review the node, the figures (frozen at the close) are read-only."""

    list_display = ["__str__", "plan", "period_kind", "status", "reviewer", "closed_at"]
    list_filter = ["status", "period_kind"]
    list_select_related = ["plan", "reviewer__user"]
    fields = [
        "plan",
        "org_unit",
        "member",
        "period_kind",
        "period_start",
        "period_end",
        "reviewer",
        "status",
        "findings",
        "closed_at",
        "closed_by",
        "frozen_figures",
    ]
    readonly_fields = [name for name in fields if isinstance(name, str) and name != "findings"]
    inlines = [ReviewActionInline]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return review_selectors.visible_reviews(member)

    @admin.display(description=_("figures at the close"))
    def frozen_figures(self, review: Review) -> str:
        if review.figures is None:
            return str(_("Computed live until the review is closed."))
        return json.dumps(review.figures, ensure_ascii=False, indent=2)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        member = request_membership(request)
        if member is None or obj is None:
            return member is not None
        if obj.status != ReviewStatus.DRAFT:
            return False
        try:
            services.check_may_review(member, review_selectors.review_target(obj))
        except Forbidden:
            return False
        return True

    def save_model(self, request: HttpRequest, obj: Review, form: Any, change: bool) -> None:
        member = request_membership(request)
        if member is None or not change:
            raise Http404
        services.review_update(member=member, review=obj, findings=obj.findings)
