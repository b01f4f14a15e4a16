"""DRF permissions by tenant role."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenancy.models import Role


class IsTenantMember(BasePermission):
    """Authenticated with an active membership of the scoped tenant."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return getattr(request, "membership", None) is not None


class IsTenantAdminOrReadOnly(IsTenantMember):
    """Everyone in the tenant reads (within visibility); only tenant admins write."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or request.membership.role == Role.ADMIN  # type: ignore[attr-defined]


class IsTenantAdmin(IsTenantMember):
    def has_permission(self, request: Request, view: Any) -> bool:
        return super().has_permission(request, view) and request.membership.role == Role.ADMIN  # type: ignore[attr-defined]
