"""Small HTML views around the admin."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from tenancy.middleware import SESSION_MEMBERSHIP_KEY, SESSION_TENANT_KEY, session_memberships


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
