"""DRF permissions by tenant role."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenancy.models import Role


class IsTenantMember(BasePermission):
    """Authenticated with an active membership of the scoped tenant, by one of the API's
    own authenticators (a token or an API key in the header): a membership the tenant
    middleware took from a browser's session never acts on the API, whose views do not
    check CSRF. The middleware opens no session scope for the API either; this holds
    even if it judged a request's path wrongly (as it once did under a script prefix)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return (
            getattr(request, "membership", None) is not None
            and request.successful_authenticator is not None
        )


class IsTenantAdminOrReadOnly(IsTenantMember):
    """Everyone in the tenant reads (within visibility); only tenant admins write."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or request.membership.role == Role.ADMIN  # type: ignore[attr-defined]


class IsTenantAdmin(IsTenantMember):
    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request.membership.role == Role.ADMIN  # type: ignore[attr-defined]
