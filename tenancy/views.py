"""Small HTML views around the admin: switching tenant, answering an invitation."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from tenancy import services
from tenancy.errors import Conflict, DomainError
from tenancy.middleware import SESSION_MEMBERSHIP_KEY, SESSION_TENANT_KEY, session_memberships
from tenancy.models import Invitation, Role
from tenancy.scope import tenant_scope


@staff_member_required
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Choose which of the user's tenants the admin shows (a user may belong to several)."""
    memberships = session_memberships(request.user)
    if request.method == "POST":
        chosen = next((m for m in memberships if str(m.pk) == request.POST.get("membership")), None)
        if chosen is not None:
            request.session[SESSION_TENANT_KEY] = chosen.tenant_id
            request.session[SESSION_MEMBERSHIP_KEY] = chosen.pk
        elif request.user.is_superuser and request.POST.get("membership") == "platform":
            request.session.pop(SESSION_TENANT_KEY, None)
            request.session.pop(SESSION_MEMBERSHIP_KEY, None)
        target = request.POST.get("next") or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
            target = reverse("admin:index")
        return HttpResponseRedirect(target)
    context = {
        **admin.site.each_context(request),
        "memberships": memberships,
        "current": request.session.get(SESSION_MEMBERSHIP_KEY),
        "title": "Switch tenant",
    }
    return render(request, "admin/tenancy/switch_tenant.html", context)


def _refusal_text(error: Exception) -> str:
    """A domain error's sentence (a ``ValidationError`` keeps its first message)."""
    if isinstance(error, ValidationError):
        return str(error.messages[0]) if error.messages else str(error)
    return str(error)


@require_http_methods(["GET", "POST"])
def invitation_respond(request: HttpRequest) -> HttpResponse:
    """The page the invitation e-mail links to (SPEC 2): the logged-in user, as themselves,
    accepts or declines. Another account sees a refusal; an expired, revoked, declined or
    used invitation a message saying so. The services are the API's
    (``invitation_accept``); nothing here writes on a GET."""
    token = (request.POST.get("token") or request.GET.get("token") or "").strip()
    if not request.user.is_authenticated:
        # The site's login (settings.LOGIN_URL), not the admin's: an invited rep is not
        # necessarily staff, and the admin's login refuses anyone who is not.
        return redirect_to_login(request.get_full_path())
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": _("Invitation"),
        "token": token,
        "invitation": None,
        "refusal": None,
    }
    tenant_id = services.tenant_id_from_invitation_token(token)
    if tenant_id is None:
        context["refusal"] = _("This invitation link is not valid.")
        return render(request, "tenancy/invitation.html", context, status=404)
    if request.method == "POST":
        return _answer(request, token, context)
    try:
        with tenant_scope(tenant_id):
            invitation = services.invitation_for_token(token)
            context["invitation"] = invitation
            context.update(_describe(invitation))
            services.invitation_check_answerable(invitation, request.user)
    except DomainError as error:
        return _refuse(request, context, error)
    except ValidationError as error:
        return _refuse(request, context, error)
    return render(request, "tenancy/invitation.html", context)


def _describe(invitation: Invitation) -> dict[str, Any]:
    inviter = invitation.invited_by.user if invitation.invited_by else None
    return {
        "tenant_name": invitation.tenant.name,
        "role_label": Role(invitation.role).label,
        "unit_name": invitation.org_unit.name if invitation.org_unit else "",
        "inviter_name": (inviter.get_full_name() or inviter.get_username()) if inviter else "",
    }


def _refuse(request: HttpRequest, context: dict[str, Any], error: Exception) -> HttpResponse:
    """The page with the reason the invitation cannot be answered here, and no buttons."""
    context["refusal"] = _refusal_text(error)
    invitation = context.get("invitation")
    # The address is not shown to another account: the link may have been forwarded.
    context["other_account"] = invitation is not None and (
        (request.user.email or "").lower() != invitation.email.lower()  # type: ignore[union-attr]
    )
    status = 409 if isinstance(error, Conflict) else 403 if context["other_account"] else 400
    return render(request, "tenancy/invitation.html", context, status=status)


def _answer(request: HttpRequest, token: str, context: dict[str, Any]) -> HttpResponse:
    answer = request.POST.get("answer")
    try:
        if answer == "accept":
            membership = services.invitation_accept(token=token, user=request.user)
        elif answer == "decline":
            declined = services.invitation_decline(token=token, user=request.user)
        else:
            raise ValidationError(_("Choose to accept or to decline the invitation."))
    except (DomainError, ValidationError) as error:
        tenant_id = services.tenant_id_from_invitation_token(token)
        try:
            with tenant_scope(tenant_id or 0):
                context["invitation"] = services.invitation_for_token(token)
                context.update(_describe(context["invitation"]))
        except (DomainError, ValidationError):
            context["invitation"] = None
        return _refuse(request, context, error)
    if answer == "decline":
        context["declined_tenant"] = declined.tenant.name
        return render(request, "tenancy/invitation.html", context)
    # Work in the tenant just joined from the next page on.
    request.session[SESSION_TENANT_KEY] = membership.tenant_id
    request.session[SESSION_MEMBERSHIP_KEY] = membership.pk
    messages.success(
        request,
        _("You joined %(tenant)s as %(role)s.")
        % {"tenant": membership.tenant.name, "role": membership.get_role_display()},
    )
    return HttpResponseRedirect(reverse("admin:index"))
