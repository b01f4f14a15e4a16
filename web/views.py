"""The pages (SPEC section 12): thin views like the API's. Each one checks who is asking,
reads through ``web.pages`` (the apps' selectors) or calls a service, and renders; the
domain's errors become 404 (not visible), 403 (visible, not allowed) or a form's message
(422, swapped in by htmx)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from incentives import commissions
from targets import services as target_services
from targets.achievement import plan_achievements, plan_as_of
from targets.models import PlanStatus, TargetAdjustment, TargetPlan
from targets.selectors import get_visible_target, visible_series, visible_targets
from tenancy import errors
from tenancy.dates import tenant_today
from tenancy.models import Membership, Role
from web import pages
from web.forms import AdjustForm, DecomposeForm

View = Callable[..., HttpResponse]


def member_page(view: View) -> View:
    """Logged in (else the login page) with a membership in the session's tenant (a
    platform superuser without one goes to the admin)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("web:login"))
        member: Membership | None = getattr(request, "membership", None)
        if member is None:
            if request.user.is_superuser:
                return HttpResponseRedirect(reverse("admin:index"))
            raise Http404("no membership")
        try:
            return view(request, member, *args, **kwargs)
        except errors.NotFound as error:
            raise Http404(str(error)) from error
        except errors.Forbidden as error:
            raise PermissionDenied(str(error)) from error

    return wrapped


def _managers_only(member: Membership) -> None:
    if member.role not in (Role.MANAGER, Role.ADMIN):
        raise PermissionDenied(_("The team page is for managers and admins."))


def home(request: HttpRequest) -> HttpResponse:
    """``/``: the page that fits the person (the admin's "View site" leads here)."""
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("web:login"))
    member: Membership | None = getattr(request, "membership", None)
    if member is None:
        return HttpResponseRedirect(reverse("admin:index"))
    if member.role == Role.REP:
        return HttpResponseRedirect(reverse("web:my-day"))
    return HttpResponseRedirect(reverse("web:team"))


class WebLoginView(LoginView):
    """The admin's login (the same users and session) in the pages' layout. The tenant
    is chosen as for the admin: the session's choice, else the user's first tenant."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return reverse("home")


# --- my day ------------------------------------------------------------------------------


@member_page
def my_day(request: HttpRequest, member: Membership) -> HttpResponse:
    return render(request, "web/my_day.html", {"member": member, **pages.my_day(member)})


# --- team --------------------------------------------------------------------------------


@member_page
def team(request: HttpRequest, member: Membership) -> HttpResponse:
    _managers_only(member)
    query = pages.team_query(member, request.GET)
    context = {"member": member, **pages.team(member, query)}
    if getattr(request, "htmx", False) and request.headers.get("HX-Target") == "team-body":
        return render(request, "web/partials/team_body.html", context)
    return render(request, "web/team.html", context)


def _waiting(request: HttpRequest, member: Membership, note: str = "") -> HttpResponse:
    context = {"member": member, "waiting": pages.waiting_for(member), "note": note}
    return render(request, "web/partials/waiting.html", context)


@require_POST
@member_page
def adjustment_decide(
    request: HttpRequest, member: Membership, pk: int, decision: str
) -> HttpResponse:
    """Approve or reject a requested adjustment (``targets.services.adjustment_decide``)."""
    adjustment = (
        TargetAdjustment.objects.filter(series__in=visible_series(member).values("pk"), pk=pk)
        .select_related("requested_by")
        .first()
    )
    if adjustment is None or decision not in ("approve", "reject"):
        raise Http404("adjustment")
    try:
        target_services.adjustment_decide(
            member=member, adjustment=adjustment, approve=decision == "approve"
        )
    except (errors.Conflict, DjangoValidationError) as error:
        return _waiting(request, member, " ".join(_messages(error)))
    note = _("Approved.") if decision == "approve" else _("Rejected.")
    response = _waiting(request, member, note)
    response["HX-Trigger"] = "targets-changed"
    return response


@require_POST
@member_page
def statement_approve(request: HttpRequest, member: Membership, pk: int) -> HttpResponse:
    """Approve a draft commission statement (``incentives.commissions.statement_approve``)."""
    try:
        commissions.statement_approve(actor=member, statement_id=pk)
    except errors.Conflict as error:
        return _waiting(request, member, str(error))
    return _waiting(request, member, _("Statement approved."))


def _messages(error: Exception) -> list[str]:
    if isinstance(error, DjangoValidationError):
        return [str(m) for m in error.messages]
    return [str(error)]


# --- adjusting a target -----------------------------------------------------------------


@member_page
def target_adjust(request: HttpRequest, member: Membership, public_id: int) -> HttpResponse:
    """The adjust dialog (GET) and the adjustment (POST, ``targets.services.target_adjust``):
    applied at once on a published plan, requested for approval on a locked one."""
    target = get_visible_target(member, public_id)
    form = AdjustForm(
        request.POST or None, initial={"new_value": target.value, "version": target.version}
    )
    context: dict[str, Any] = {"member": member, "target": target, "form": form}
    if request.method != "POST":
        return render(request, "web/partials/adjust_dialog.html", context)
    if form.is_valid():
        data = form.cleaned_data
        try:
            adjustment = target_services.target_adjust(
                member=member,
                target=target,
                new_value=data["new_value"],
                reason=data["reason"],
                trigger=data["trigger"],
                expected_version=data.get("version"),
            )
        except DjangoValidationError as error:
            for name, found in getattr(error, "message_dict", {"__all__": error.messages}).items():
                for message in found:
                    form.add_error(name if name in form.fields else None, message)
        except errors.Conflict as error:
            form.add_error(None, str(error))
        else:
            context["adjustment"] = adjustment
            response = render(request, "web/partials/adjust_done.html", context)
            response["HX-Trigger"] = "targets-changed"
            return response
    return render(request, "web/partials/adjust_dialog.html", context, status=422)


# --- plans -------------------------------------------------------------------------------


def _plan_context(member: Membership, plan: TargetPlan | None) -> dict[str, Any]:
    plans = list(TargetPlan.objects.order_by("-fiscal_year", "metric", "pk"))
    context: dict[str, Any] = {"member": member, "plans": plans, "plan": plan, "rows": []}
    if plan is None:
        return context
    settings = plan.settings or {}
    context["form"] = DecomposeForm(
        initial={
            key: settings[key]
            for key in (
                "time_method",
                "org_method",
                "alpha",
                "headroom",
                "ramp",
                "include_managers",
            )
            if key in settings
        }
    )
    if plan.status != PlanStatus.DRAFT:
        year = list(
            visible_targets(member)
            .filter(plan=plan, period_kind="year", product_line__isnull=True)
            .select_related("org_unit", "member__user", "member__org_unit")
        )
        tenant = member.tenant
        results = plan_achievements(plan, plan_as_of(plan, tenant, tenant_today(tenant)), year)
        context["rows"] = pages.tree_rows(year, results, base_depth=0)
    return context


def _plan(member: Membership, pk: int) -> TargetPlan:
    plan = TargetPlan.objects.filter(pk=pk).first()
    if plan is None:
        raise Http404("plan")
    return plan


@member_page
def plans(request: HttpRequest, member: Membership) -> HttpResponse:
    _managers_only(member)
    chosen = pages._int(request.GET, "plan")
    plan = (
        _plan(member, chosen)
        if chosen is not None
        else TargetPlan.objects.order_by("-fiscal_year", "metric", "pk").first()
    )
    context = _plan_context(member, plan)
    try:
        target_services.require_planner(member)
        context["can_plan"] = True
    except errors.Forbidden:
        context["can_plan"] = False  # other managers adjust their subtree's targets here
    return render(request, "web/plans.html", context)


@require_POST
@member_page
def plan_decompose(request: HttpRequest, member: Membership, pk: int, mode: str) -> HttpResponse:
    """Preview (dry run, nothing saved) or apply the decomposition with the chosen methods."""
    if mode not in ("preview", "apply"):
        raise Http404(mode)
    target_services.require_planner(member)
    plan = _plan(member, pk)
    form = DecomposeForm(request.POST)
    decompose_settings = form.decompose_settings()
    context: dict[str, Any] = {"member": member, "plan": plan, "form": form}
    if decompose_settings is None:
        return render(request, "web/partials/plan_preview.html", context, status=422)
    try:
        result = target_services.plan_decompose(
            member=member, plan=plan, settings=decompose_settings, dry_run=mode == "preview"
        )
    except (errors.Conflict, DjangoValidationError) as error:
        context["problems"] = _messages(error)
        return render(request, "web/partials/plan_preview.html", context, status=422)
    if mode == "preview":
        nodes = pages.in_tree_order([node.as_json() for node in result.nodes])
        context.update(
            nodes=nodes,
            unassigned=result.unassigned,
            assigned=sum((node.annual for node in result.nodes if node.depth == 0), start=0),
        )
        return render(request, "web/partials/plan_preview.html", context)
    messages.success(request, _("The plan was decomposed."))
    response = HttpResponse(status=204)
    response["HX-Redirect"] = f"{reverse('web:plans')}?plan={plan.pk}"
    return response


@require_POST
@member_page
def plan_status(request: HttpRequest, member: Membership, pk: int, action: str) -> HttpResponse:
    """Publish or lock (``targets.services.plan_publish`` / ``plan_lock``)."""
    if action not in ("publish", "lock"):
        raise Http404(action)
    plan = _plan(member, pk)
    service = target_services.plan_publish if action == "publish" else target_services.plan_lock
    try:
        service(member=member, plan=plan)
    except (errors.Conflict, DjangoValidationError) as error:
        for message in _messages(error):
            messages.error(request, message)
    else:
        done = _("The plan is published.") if action == "publish" else _("The plan is locked.")
        messages.success(request, done)
    return HttpResponseRedirect(f"{reverse('web:plans')}?plan={plan.pk}")


# --- incentives --------------------------------------------------------------------------


@member_page
def incentives(request: HttpRequest, member: Membership) -> HttpResponse:
    return render(request, "web/incentives.html", {"member": member, **pages.incentives(member)})
