"""Admin of targets for managers (SPEC section 4).

Plans with their tree (indented by level) and achievement, targets within the caller's
visibility with achievement columns, adjustments with a reason, approvals, the history
of every node, commitments and ramp schedules.

Every write goes through ``targets.services`` (which enforce who may do what; their
refusals are shown as error messages) and every read through ``visible_targets``.
Achievement is computed with one ``plan_achievements`` call per plan shown, never one
per row.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import display_for_field
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Field, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.models import ProductLine
from targets import allocation, services
from targets.achievement import plan_achievements, plan_as_of, today_in
from targets.achievement_math import Achievement
from targets.metrics import METRICS
from targets.models import (
    AdjustmentTrigger,
    Commitment,
    PeriodKind,
    RampSchedule,
    Target,
    TargetAdjustment,
    TargetPlan,
    target_ids_q,
)
from targets.selectors import (
    get_target,
    targets_of,
    visible_commitments,
    visible_series,
    visible_targets,
)
from tenancy.admin import (
    ScopeSafeModelFormMetaclass,
    TenantScopedAdmin,
    error_messages,
    request_membership,
)
from tenancy.errors import DomainError, NotFound
from tenancy.models import Membership, OrgUnit, Role, Tenant
from tenancy.money import format_money, format_rate

NONE = "–"
STATUS_LABELS = {
    "on_track": _("On track"),
    "at_risk": _("At risk"),
    "off_track": _("Off track"),
}
#: Where an assignee's targets' related rows come from, in one query with the targets.
TARGET_RELATED = ["plan", "org_unit", "member__user", "member__org_unit", "product_line"]


# --- helpers ----------------------------------------------------------------------------


def _error_text(error: Exception) -> str:
    """A service's refusal (400/404/409) as one line for an admin message."""
    if isinstance(error, NotFound):
        return gettext("you may not change this target.")
    return "; ".join(error_messages(error))


def _tenant_of(request: HttpRequest, tenant_id: int, cache: dict[int, Tenant]) -> Tenant:
    """The tenant of a plan: the caller's (already loaded) or, platform scope, fetched."""
    member = request_membership(request)
    if member is not None and member.tenant_id == tenant_id:
        return member.tenant
    if tenant_id not in cache:
        cache[tenant_id] = Tenant.objects.get(pk=tenant_id)
    return cache[tenant_id]


def _places(plan: TargetPlan) -> int:
    metric = METRICS.get(plan.metric)
    return 2 if metric is None or metric.is_amount else 0


def _decimal(value: Decimal, places: int) -> str:
    """Rounded half-up (``number_format`` alone would truncate), grouped, localised."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return number_format(rounded, decimal_pos=places, force_grouping=True)


def _number(value: Decimal | None, places: int) -> str:
    return NONE if value is None else _decimal(value, places)


def _amount(plan: TargetPlan, value: Decimal | None, tenant: Tenant) -> str:
    """A plan's figure as shown in a list: money with the tenant's currency for amount
    metrics (``1,200,000.00 CNY``), a grouped whole number for counts."""
    if value is None:
        return NONE
    if _places(plan) == 2:
        return format_money(value, tenant.currency)
    return _decimal(value, 0)


def _percent(ratio: Decimal | None) -> str:
    return NONE if ratio is None else f"{_decimal(ratio * 100, 1)}%"


def _ratio(ratio: Decimal | None) -> str:
    """A pace (actual ÷ expected to date) as a percentage, like attainment (SPEC 12)."""
    return NONE if ratio is None else format_rate(ratio)


def _status(achievement: Achievement | None) -> str:
    if achievement is None or achievement.status is None:
        return NONE
    return str(STATUS_LABELS.get(achievement.status, achievement.status))


def period_label(kind: str, index: int, start: date | None = None) -> str:
    if kind == PeriodKind.YEAR:
        return gettext("Year")
    if kind == PeriodKind.QUARTER:
        return f"Q{index}"
    return f"M{index} ({start:%Y-%m})" if start else f"M{index}"


def assignee_label(node: Target | Commitment) -> str:
    if node.member_id is not None:
        assert node.member is not None
        return node.member.display_name
    return node.org_unit.name if node.org_unit is not None else NONE


def target_label(target: Target) -> str:
    parts = [str(target.plan), period_label(target.period_kind, target.period_index)]
    parts.append(assignee_label(target))
    if target.product_line is not None:
        parts.append(target.product_line.name)
    return " · ".join(parts)


def _achievements(
    request: HttpRequest, targets: Iterable[Target]
) -> dict[int, tuple[Achievement, date]]:
    """Achievement of the given targets: one ``plan_achievements`` call per plan."""
    by_plan: dict[int, list[Target]] = defaultdict(list)
    for target in targets:
        by_plan[target.plan_id].append(target)
    tenants: dict[int, Tenant] = {}
    results: dict[int, tuple[Achievement, date]] = {}
    for nodes in by_plan.values():
        plan = nodes[0].plan
        as_of = plan_as_of(plan, _tenant_of(request, plan.tenant_id, tenants))
        for pk, achievement in plan_achievements(plan, as_of, nodes).items():
            results[pk] = (achievement, as_of)
    return results


class _MemberActions:
    """Actions only for tenant members (the platform superuser looks, never acts)."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        if request_membership(request) is None:
            return {}
        return super().get_actions(request)  # type: ignore[misc]

    def has_steer_permission(self, request: HttpRequest) -> bool:
        """Admins and managers adjust and decide (the services check each node)."""
        member = request_membership(request)
        return member is not None and member.role in (Role.ADMIN, Role.MANAGER)

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """Tenant admins create, decompose, publish and lock plans."""
        member = request_membership(request)
        return member is not None and member.role == Role.ADMIN


# --- a plan's decomposition settings, as a table ----------------------------------------

SETTING_LABELS = {
    "time_method": _("Split over the months"),
    "time_weights": _("Month weights"),
    "time_weights_used": _("Month shares applied"),
    "seasonal_blend": _("Seasonal blend"),
    "org_method": _("Split over the team"),
    "org_methods_by_depth": _("Split by level"),
    "potential": _("Potential factors"),
    "alpha": _("History weight (blend)"),
    "manual": _("Manual values"),
    "headroom": _("Headroom"),
    "product_shares": _("Product-line shares"),
    "new_product_multiplier": _("New product multiplier"),
    "ramp": _("Ramp-up for new members"),
    "ramp_steps": _("Ramp-up steps"),
    "preserve_total": _("Preserve the total"),
    "include_managers": _("Managers get targets"),
}
METHOD_LABELS = {
    "equal": _("Equal"),
    "seasonal": _("Seasonal (last year's pattern)"),
    "manual": _("Manual"),
    "history": _("By history"),
    "potential": _("By potential"),
    "blend": _("Blend of history and potential"),
}


def _setting_value(name: str, value: Any, names: dict[str, str]) -> str:
    """One decomposition setting in words: methods by name, yes/no, shares as
    percentages, keyed values by the unit, member or product line they are for."""
    if value is None or value == {} or value == []:
        return NONE
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if name in ("time_method", "org_method"):
        return str(METHOD_LABELS.get(value, value))
    if name in ("headroom", "product_shares") and not isinstance(value, dict):
        return _percent(Decimal(str(value)))
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            label = names.get(str(key), str(key))
            if name == "org_methods_by_depth":
                label = gettext("level %(depth)s") % {"depth": key}
                item = METHOD_LABELS.get(item, item)
            elif name == "product_shares":
                item = _percent(Decimal(str(item)))
            parts.append(f"{label}: {item}")
        return "; ".join(parts)
    if isinstance(value, list):
        if name == "ramp_steps":
            return ", ".join(
                gettext("month %(month)s: %(factor)s") % {"month": m, "factor": f} for m, f in value
            )
        if name in ("time_weights", "time_weights_used"):
            weights = [Decimal(str(item)) for item in value]
            total = sum(weights, Decimal(0))
            if total > 0:  # each month's share of the year
                return ", ".join(f"M{i}: {_percent(w / total)}" for i, w in enumerate(weights, 1))
        return ", ".join(str(item) for item in value)
    return str(value)


def _setting_names(settings: dict[str, Any]) -> dict[str, str]:
    """Names for the keys the settings use (``unit:4``, ``member:9``, product line ids):
    one query per kind."""
    keys = {str(k) for v in settings.values() if isinstance(v, dict) for k in v}
    units = [int(k[5:]) for k in keys if k.startswith("unit:") and k[5:].isdigit()]
    members = [int(k[7:]) for k in keys if k.startswith("member:") and k[7:].isdigit()]
    names: dict[str, str] = {}
    for unit in OrgUnit.objects.filter(pk__in=units):
        names[f"unit:{unit.pk}"] = unit.name
    for member in Membership.objects.filter(pk__in=members).select_related("user"):
        names[f"member:{member.pk}"] = member.display_name
    lines = [int(k) for k in settings.get("product_shares") or {} if str(k).isdigit()]
    for line in ProductLine.objects.filter(pk__in=lines):
        names[str(line.pk)] = line.name
    return names


def settings_table(settings: dict[str, Any] | None) -> str:
    """A plan's decomposition settings as a two-column table (read-only)."""
    if not settings:
        return NONE
    names = _setting_names(settings)
    rows = [
        (SETTING_LABELS.get(name, name), _setting_value(name, value, names))
        for name, value in settings.items()
    ]
    body = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
    return format_html('<table class="decomposition-settings">{}</table>', body)


# --- plans ------------------------------------------------------------------------------


class MetricFilter(admin.SimpleListFilter):
    title = _("metric")
    parameter_name = "metric"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [(key, metric.label) for key, metric in METRICS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(metric=self.value()) if self.value() else queryset


class TargetPlanAddForm(forms.ModelForm, metaclass=ScopeSafeModelFormMetaclass):
    """A new plan, created by ``targets.services.plan_create`` while the form cleans (so
    its refusals show on the form)."""

    metric = forms.ChoiceField(
        label=_("metric"), choices=[(key, metric.label) for key, metric in METRICS.items()]
    )
    member: Membership | None = None
    created: TargetPlan | None = None

    class Meta:
        model = TargetPlan
        fields = ["fiscal_year", "metric", "name", "annual_total"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors or self.member is None:
            return data
        try:
            with transaction.atomic():
                self.created = services.plan_create(
                    member=self.member,
                    fiscal_year=data["fiscal_year"],
                    metric=data["metric"],
                    annual_total=data["annual_total"],
                    name=data.get("name") or "Annual plan",
                )
        except ValidationError as error:
            self.add_error(None, error)
        except DomainError as error:
            self.add_error(None, _error_text(error))
        return data


@admin.register(TargetPlan)
class TargetPlanAdmin(_MemberActions, TenantScopedAdmin):
    """Everyone in the tenant views plans; tenant admins add, decompose, publish and
    lock them. A plan's page shows its tree with achievement as of today."""

    list_display = [
        "fiscal_year",
        "metric_label",
        "name",
        "annual_total_shown",
        "status",
        "unassigned_shown",
    ]
    list_display_links = ["fiscal_year", "metric_label", "name"]
    list_select_related = ["tenant"]
    list_filter = ["fiscal_year", "status", MetricFilter]
    search_fields = ["name"]
    add_fields = ["fiscal_year", "metric", "name", "annual_total"]
    fields = (
        "fiscal_year",
        "metric_label",
        "name",
        "annual_total",
        "status",
        "unassigned",
        "decomposition",
        "created_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ["decompose_equal", "publish", "lock", "delete_drafts"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("created_by__user", "tenant")

    @admin.display(description=_("decomposition settings"))
    def decomposition(self, plan: TargetPlan) -> str:
        return settings_table(plan.settings)

    @admin.display(description=_("annual total"), ordering="annual_total")
    def annual_total_shown(self, plan: TargetPlan) -> str:
        return _amount(plan, plan.annual_total, plan.tenant)

    @admin.display(description=_("unassigned"), ordering="unassigned")
    def unassigned_shown(self, plan: TargetPlan) -> str:
        return _amount(plan, plan.unassigned, plan.tenant)

    @admin.display(description=_("metric"), ordering="metric")
    def metric_label(self, plan: TargetPlan) -> str:
        metric = METRICS.get(plan.metric)
        return str(metric.label) if metric is not None else plan.metric

    # Plans change only through the services (actions); nothing is edited in place.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fields if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.readonly_fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        kwargs["form"] = TargetPlanAddForm
        kwargs["fields"] = self.add_fields
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"member": request_membership(request)})

    def save_model(self, request: HttpRequest, obj: TargetPlan, form: Any, change: bool) -> None:
        created = getattr(form, "created", None)
        assert created is not None and not change  # the add form created it already
        for name in ("pk", "tenant_id", "status", "created_by_id", "created_at", "updated_at"):
            setattr(obj, name, getattr(created, name))
        obj._state.adding = False

    # --- the tree ---

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None:
            context.update(self.tree_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def tree_context(self, request: HttpRequest, plan: TargetPlan) -> dict[str, Any]:
        """The plan's year-level nodes the caller can see, indented (units by depth,
        members one level under their unit), with achievement from ONE call."""
        member = request_membership(request)
        visible = visible_targets(member) if member is not None else Target.objects.all()
        nodes = list(
            visible.filter(plan=plan, period_kind=PeriodKind.YEAR, product_line__isnull=True)
            .select_related("org_unit", "member__user", "member__org_unit")
            .order_by("pk")
        )
        tenant = _tenant_of(request, plan.tenant_id, {})
        requested = None
        with contextlib.suppress(ValueError):  # ?as_of=YYYY-MM-DD looks at another day
            requested = date.fromisoformat(request.GET.get("as_of", ""))
        as_of = plan_as_of(plan, tenant, requested)
        results = plan_achievements(plan, as_of, nodes) if nodes else {}
        places = _places(plan)
        rows = []
        for node in nodes:
            if node.member_id is not None:
                assert node.member is not None
                unit = node.member.org_unit
                depth = unit.depth + 1 if unit is not None else 0
                order = (unit.path if unit is not None else "~", 1, node.member.display_name)
                kind = "member"
            else:
                assert node.org_unit is not None
                depth = node.org_unit.depth
                order = (node.org_unit.path, 0, "")
                kind = "unit"
            achievement = results[node.pk]
            rows.append(
                (
                    order,
                    {
                        "pk": node.pk,
                        "kind": kind,
                        "depth": depth,
                        "indent_level": min(depth, 12),  # CSS classes depth-0 … depth-12
                        "name": assignee_label(node),
                        "url": reverse("admin:targets_target_change", args=[node.pk]),
                        "target": _number(node.value, places),
                        "actual": _number(achievement.actual, places),
                        "attainment": _percent(achievement.attainment),
                        "pace": _ratio(achievement.pace),
                        "status": achievement.status or "",
                        "status_label": _status(achievement),
                        "gap": _number(achievement.gap, places),
                    },
                )
            )
        rows.sort(key=lambda pair: pair[0])
        return {
            "plan_tree": [row for _order, row in rows],
            "plan_as_of": as_of,
            "plan_targets_url": reverse("admin:targets_target_changelist")
            + f"?plan__id__exact={plan.pk}",
        }

    # --- actions ---

    def _each_plan(
        self, request: HttpRequest, queryset: QuerySet[TargetPlan], done_text: Any, run: Any
    ) -> None:
        """``done_text(count)`` is the success message (an ``ngettext`` for the count)."""
        member = request_membership(request)
        assert member is not None
        done = 0
        for plan in queryset:
            try:
                run(member, plan)
            except (ValidationError, DomainError) as error:
                messages.error(request, f"{plan}: {_error_text(error)}")
            else:
                done += 1
        if done:
            self.message_user(request, done_text(done) % {"count": done})

    @admin.action(description=_("Decompose (equal splits)"), permissions=["manage"])
    def decompose_equal(self, request: HttpRequest, queryset: QuerySet[TargetPlan]) -> None:
        self._each_plan(
            request,
            queryset,
            lambda n: ngettext("%(count)d plan decomposed.", "%(count)d plans decomposed.", n),
            lambda member, plan: services.plan_decompose(
                member=member, plan=plan, settings=services.DecomposeSettings()
            ),
        )

    @admin.action(description=_("Publish"), permissions=["manage"])
    def publish(self, request: HttpRequest, queryset: QuerySet[TargetPlan]) -> None:
        self._each_plan(
            request,
            queryset,
            lambda n: ngettext("%(count)d plan published.", "%(count)d plans published.", n),
            lambda member, plan: services.plan_publish(member=member, plan=plan),
        )

    @admin.action(description=_("Lock"), permissions=["manage"])
    def lock(self, request: HttpRequest, queryset: QuerySet[TargetPlan]) -> None:
        self._each_plan(
            request,
            queryset,
            lambda n: ngettext("%(count)d plan locked.", "%(count)d plans locked.", n),
            lambda member, plan: services.plan_lock(member=member, plan=plan),
        )

    @admin.action(description=_("Delete draft plans with their targets"), permissions=["manage"])
    def delete_drafts(self, request: HttpRequest, queryset: QuerySet[TargetPlan]) -> None:
        self._each_plan(
            request,
            queryset,
            lambda n: ngettext(
                "%(count)d draft plan deleted.", "%(count)d draft plans deleted.", n
            ),
            lambda member, plan: services.plan_delete(member=member, plan=plan),
        )


# --- targets ----------------------------------------------------------------------------


#: The columns of a target's adjustment history on its page (every version, newest first).
HISTORY_FIELDS = (
    "created_at",
    "old_value",
    "new_value",
    "target_version",
    "reason",
    "trigger",
    "status",
    "requested_by",
    "approved_by",
    "self_approved",
    "effective_from",
    "decided_at",
)


class AdjustForm(forms.Form):
    new_value = forms.DecimalField(
        label=_("new value"), min_value=Decimal(0), max_digits=18, decimal_places=2
    )
    reason = forms.CharField(
        label=_("reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        error_messages={"required": _("Say why the target changes.")},
    )
    trigger = forms.ChoiceField(label=_("trigger"), choices=AdjustmentTrigger.choices)
    effective_from = forms.DateField(
        label=_("effective from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_(
            "A quarter's or year's change is spread over its months not yet elapsed on this day."
        ),
    )


@admin.register(Target)
class TargetAdmin(_MemberActions, TenantScopedAdmin):
    """Target nodes within the caller's visibility with achievement as of today.

    Values are read-only: they change through the "Adjust…" action (a new version with
    a reason; on a locked plan a request that a manager above or an admin approves).
    """

    list_display = [
        "plan",
        "period",
        "assignee",
        "product_line",
        "value_shown",
        "version",
        "attainment",
        "pace",
        "pace_status",
    ]
    list_display_links = ["plan", "period"]
    list_filter = ["plan", "period_kind", ("product_line", admin.EmptyFieldListFilter)]
    list_select_related = [*TARGET_RELATED, "tenant"]
    search_fields = [
        "member__user__username",
        "member__user__first_name",
        "member__user__last_name",
        "org_unit__name",
    ]
    ordering = ["plan", "period_start", "-period_end", "org_unit", "member", "product_line"]
    fields = readonly_fields = (
        "plan",
        "period_kind",
        "period_index",
        "period_start",
        "period_end",
        "org_unit",
        "member",
        "product_line",
        "value",
        "version",
        "updated_at",
        "achievement",
    )
    actions = ["adjust"]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return visible_targets(member)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # With the tenant: its currency shows the values (the changelist adds nothing to
        # a queryset that selects related rows already).
        return super().get_queryset(request).select_related(*TARGET_RELATED, "tenant")

    def get_list_select_related(self, request: HttpRequest) -> Any:
        return [*TARGET_RELATED, "tenant"]

    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        # By series and period code (the public id split), not by the view's id.
        try:
            return get_target(self.get_queryset(request), object_id)
        except NotFound:
            return None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # targets come from decomposing a plan

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # values change only through adjustments

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- achievement for the whole page at once ---

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        if request.method == "GET":  # actions (POST) never render the rows
            page = list(changelist.result_list)  # fills the queryset's cache: same objects
            results = _achievements(request, page)
            for target in page:
                target._achievement = results[target.pk][0]
        return changelist

    @staticmethod
    def _of(target: Target) -> Achievement | None:
        return getattr(target, "_achievement", None)

    @admin.display(description=_("target"), ordering="value")
    def value_shown(self, target: Target) -> str:
        return _amount(target.plan, target.value, target.tenant)

    @admin.display(description=_("period"), ordering="period_start")
    def period(self, target: Target) -> str:
        return period_label(target.period_kind, target.period_index, target.period_start)

    @admin.display(description=_("assignee"))
    def assignee(self, target: Target) -> str:
        return assignee_label(target)

    @admin.display(description=_("attainment"))
    def attainment(self, target: Target) -> str:
        achievement = self._of(target)
        return _percent(achievement.attainment if achievement else None)

    @admin.display(description=_("pace"))
    def pace(self, target: Target) -> str:
        achievement = self._of(target)
        return _ratio(achievement.pace if achievement else None)

    @admin.display(description=_("status"))
    def pace_status(self, target: Target) -> str:
        return _status(self._of(target))

    @admin.display(description=_("achievement"))
    def achievement(self, target: Target) -> str:
        computed = getattr(target, "_achievement_as_of", None)
        if computed is None:
            return NONE
        achievement, as_of = computed
        places = _places(target.plan)
        return gettext(
            "As of %(as_of)s: actual %(actual)s, attainment %(attainment)s, pace %(pace)s "
            "(%(status)s), gap %(gap)s, required per day %(per_day)s"
        ) % {
            "as_of": as_of,
            "actual": _number(achievement.actual, places),
            "attainment": _percent(achievement.attainment),
            "pace": _ratio(achievement.pace),
            "status": _status(achievement),
            "gap": _number(achievement.gap, places),
            "per_day": _number(achievement.required_per_day, places),
        }

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        if obj is not None:  # the readonly "achievement" field renders from this
            obj._achievement_as_of = _achievements(request, [obj])[obj.pk]
            context["subtitle"] = target_label(obj)
            context["adjustment_history"] = self._history(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    @staticmethod
    def _history(target: Target) -> dict[str, Any]:
        """Every version of the target, newest first: read-only, never rewritten."""
        rows = (
            TargetAdjustment.objects.filter(
                series_id=target.series_id, period_code=target.period_code
            )
            .select_related("requested_by__user", "approved_by__user")
            .order_by("-created_at", "-id")
        )
        fields = [cast(Field, TargetAdjustment._meta.get_field(name)) for name in HISTORY_FIELDS]
        return {
            "headers": [field.verbose_name for field in fields],
            "rows": [
                [display_for_field(getattr(row, field.name), field, NONE) for field in fields]
                for row in rows
            ],
        }

    # --- adjust ---

    def _adjust_page(
        self, request: HttpRequest, targets: list[Target], form: AdjustForm
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Adjust targets"),
            "form": form,
            "targets": [(target, target_label(target)) for target in targets],
            "action": "adjust",
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/targets/target/adjust.html", context)

    @admin.action(description=_("Adjust…"), permissions=["steer"])
    def adjust(self, request: HttpRequest, queryset: QuerySet[Target]) -> HttpResponse | None:
        member = request_membership(request)
        assert member is not None
        if request.POST.get("select_across") != "1":
            # The admin filtered the view's id; the series and codes make it an index lookup.
            queryset = queryset.filter(target_ids_q(request.POST.getlist(ACTION_CHECKBOX_NAME)))
        targets = list(queryset.select_related(*TARGET_RELATED))
        applying = "apply" in request.POST
        form = AdjustForm(
            request.POST if applying else None,
            initial={"effective_from": today_in(member.tenant), "trigger": "other"},
        )
        if not (applying and form.is_valid()):
            return self._adjust_page(request, targets, form)
        data = form.cleaned_data
        applied = requested = 0
        for target in targets:
            raw = request.POST.get(f"version-{target.pk}", "")
            try:
                adjustment = services.target_adjust(
                    member=member,
                    target=target,
                    new_value=data["new_value"],
                    reason=data["reason"],
                    trigger=data["trigger"],
                    effective_from=data.get("effective_from"),
                    expected_version=int(raw) if raw.isdigit() else None,
                )
            except (ValidationError, DomainError) as error:
                messages.error(request, f"{target_label(target)}: {_error_text(error)}")
                continue
            if adjustment.status == "applied":
                applied += 1
            else:
                requested += 1
        if applied:
            self.message_user(
                request,
                ngettext("%(count)d target adjusted.", "%(count)d targets adjusted.", applied)
                % {"count": applied},
            )
        if requested:
            self.message_user(
                request,
                ngettext(
                    "%(count)d adjustment requested: it applies once approved.",
                    "%(count)d adjustments requested: they apply once approved.",
                    requested,
                )
                % {"count": requested},
            )
        return None


# --- adjustments ------------------------------------------------------------------------


def _attach_targets(adjustments: list[TargetAdjustment]) -> None:
    """Give each adjustment its period target (``_target``), all in one query (a join
    on the period view would expand every series)."""
    targets = targets_of(adjustments, Target.objects.select_related(*TARGET_RELATED))
    for adjustment in adjustments:
        adjustment._target = targets.get(adjustment.target_id)  # type: ignore[attr-defined]


@admin.register(TargetAdjustment)
class TargetAdjustmentAdmin(_MemberActions, TenantScopedAdmin):
    """Adjustments of the targets the caller can see; managers above the requester and
    admins approve or reject requests (of locked plans)."""

    list_display = [
        "target_link",
        "values",
        "reason",
        "trigger",
        "status",
        "requested_by",
        "approved_by",
        "self_approved",
        "created_at",
        "decided_at",
    ]
    list_display_links = ["values"]
    list_filter = ["status", "trigger", "series__plan"]
    list_select_related = ["requested_by__user", "approved_by__user"]
    search_fields = ["reason"]
    ordering = ["-created_at", "-id"]
    fields = readonly_fields = (
        "target_link",
        "old_value",
        "new_value",
        "target_version",
        "reason",
        "trigger",
        "status",
        "requested_by",
        "approved_by",
        "self_approved",
        "effective_from",
        "created_at",
        "decided_at",
    )
    actions = ["approve", "reject"]

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return TargetAdjustment.objects.filter(series__in=visible_series(member).values("pk"))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related(*self.list_select_related)

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        if request.method == "GET":  # the page's targets in one query by series and code
            page = list(changelist.result_list)
            _attach_targets(page)
        return changelist

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("target"))
    def target_link(self, adjustment: TargetAdjustment) -> str:
        if not hasattr(adjustment, "_target"):  # one adjustment's page
            _attach_targets([adjustment])
        target = adjustment._target  # type: ignore[attr-defined]
        if target is None:
            return NONE
        url = reverse("admin:targets_target_change", args=[target.pk])
        return format_html('<a href="{}">{}</a>', url, target_label(target))

    @admin.display(description=_("old → new"))
    def values(self, adjustment: TargetAdjustment) -> str:
        target = getattr(adjustment, "_target", None)
        places = _places(target.plan) if target is not None else 2
        return f"{_number(adjustment.old_value, places)} → {_number(adjustment.new_value, places)}"

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[TargetAdjustment], approve: bool
    ) -> None:
        member = request_membership(request)
        assert member is not None
        done = 0
        for adjustment in queryset:
            try:
                services.adjustment_decide(member=member, adjustment=adjustment, approve=approve)
            except (ValidationError, DomainError) as error:
                messages.error(request, f"{adjustment}: {_error_text(error)}")
            else:
                done += 1
        if done:
            text = (
                ngettext("%(count)d adjustment approved.", "%(count)d adjustments approved.", done)
                if approve
                else ngettext(
                    "%(count)d adjustment rejected.", "%(count)d adjustments rejected.", done
                )
            )
            self.message_user(request, text % {"count": done})

    @admin.action(description=_("Approve"), permissions=["steer"])
    def approve(self, request: HttpRequest, queryset: QuerySet[TargetAdjustment]) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description=_("Reject"), permissions=["steer"])
    def reject(self, request: HttpRequest, queryset: QuerySet[TargetAdjustment]) -> None:
        self._decide(request, queryset, approve=False)


# --- commitments and ramp schedules ----------------------------------------------------------


@admin.register(Commitment)
class CommitmentAdmin(TenantScopedAdmin):
    """Bottom-up commitments, read-only (members submit them through the API)."""

    list_display = [
        "plan",
        "period",
        "assignee",
        "value_shown",
        "note",
        "submitted_by",
        "submitted_at",
    ]
    list_filter = ["plan", "period_kind"]
    list_select_related = ["plan", "org_unit", "member__user", "submitted_by__user", "tenant"]
    fields = readonly_fields = (
        "plan",
        "period_kind",
        "period_index",
        "org_unit",
        "member",
        "value",
        "note",
        "submitted_by",
        "submitted_at",
        "version",
    )

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return visible_commitments(member)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related(*self.list_select_related)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("value"), ordering="value")
    def value_shown(self, commitment: Commitment) -> str:
        return _amount(commitment.plan, commitment.value, commitment.tenant)

    @admin.display(description=_("period"))
    def period(self, commitment: Commitment) -> str:
        return period_label(commitment.period_kind, commitment.period_index)

    @admin.display(description=_("assignee"))
    def assignee(self, commitment: Commitment) -> str:
        return assignee_label(commitment)


class RampScheduleForm(forms.ModelForm, metaclass=ScopeSafeModelFormMetaclass):
    class Meta:
        model = RampSchedule
        fields = ["name", "steps", "is_default"]
        help_texts = {
            "steps": _(
                "[tenure month, factor] pairs from month 1, "
                'e.g. [[1, "0.3"], [4, "0.6"], [7, "1"]].'
            )
        }

    def clean_steps(self) -> list[list[Any]]:
        steps = self.cleaned_data["steps"]
        try:
            pairs = [(int(month), Decimal(str(factor))) for month, factor in steps]
            schedule = allocation.RampSchedule(pairs)
        except (TypeError, ValueError, ArithmeticError) as error:
            raise ValidationError(
                _("Give [tenure month, factor] pairs from month 1, factors 0 to 1 (%(error)s).")
                % {"error": error}
            ) from error
        return [[month, str(factor)] for month, factor in schedule.steps]


@admin.register(RampSchedule)
class RampScheduleAdmin(TenantScopedAdmin):
    """Ramp-up schedules: everyone reads, tenant admins write; one default per tenant."""

    form = RampScheduleForm
    list_display = ["name", "steps_text", "is_default"]
    list_filter = ["is_default"]
    search_fields = ["name"]

    @admin.display(description=_("steps"))
    def steps_text(self, schedule: RampSchedule) -> str:
        return ", ".join(f"{month}: {factor}" for month, factor in schedule.steps or [])

    def save_model(self, request: HttpRequest, obj: RampSchedule, form: Any, change: bool) -> None:
        member = request_membership(request)
        if not change and member is not None:
            obj.tenant_id = member.tenant_id
        super().save_model(request, obj, form, change)
        if obj.is_default:
            RampSchedule.objects.filter(is_default=True).exclude(pk=obj.pk).update(is_default=False)
