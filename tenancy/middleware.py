"""Enter the tenant scope for a request, from its credential (SPEC section 2).

* ``Authorization: Bearer <jwt>``: the signed ``tenant_id`` claim;
* ``Authorization: Token crm<tenant>_<secret>``: the tenant in the key;
* a session (the admin): the membership chosen in the session, else the user's first.

The credential is fully checked by the DRF authentication classes inside the scope;
an unreadable one gets no scope, so any tenant query fails closed. The platform
superuser without a chosen tenant gets the explicit platform scope in the admin.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken

from tenancy.authentication import TENANT_CLAIM
from tenancy.models import Membership
from tenancy.scope import platform_scope, tenant_scope
from tenancy.services import tenant_id_from_api_key

SESSION_MEMBERSHIP_KEY = "crm_membership_id"
SESSION_TENANT_KEY = "crm_tenant_id"


def tenant_id_from_authorization(header: str) -> int | None:
    kind, _, value = header.strip().partition(" ")
    value = value.strip()
    if kind == "Bearer" and value:
        try:
            claim = AccessToken(value).get(TENANT_CLAIM)  # type: ignore[arg-type]
        except TokenError:
            return None
        return claim if isinstance(claim, int) else None
    if kind == "Token" and value:
        return tenant_id_from_api_key(value)
    return None


def session_memberships(user: Any) -> list[Membership]:
    """A user's active memberships across tenants, to pick the admin's tenant."""
    with platform_scope("admin session: list the user's memberships"):
        return list(
            Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
            .select_related("tenant")
            .order_by("tenant__name")
        )


class TenantScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        with self._scope_for(request):
            return self.get_response(request)

    def _scope_for(self, request: HttpRequest) -> AbstractContextManager[Any]:
        header = request.headers.get("Authorization")
        if header:
            tenant_id = tenant_id_from_authorization(header)
            return tenant_scope(tenant_id) if tenant_id is not None else nullcontext()
        user = getattr(request, "user", None)
        # Sessions serve the admin only: the API authenticates every request by header,
        # so a browser session can never act on the API without CSRF protection.
        if request.path.startswith("/api/") or user is None or not user.is_authenticated:
            return nullcontext()
        tenant_id = request.session.get(SESSION_TENANT_KEY)
        if tenant_id is None:
            memberships = session_memberships(user)
            if memberships:
                request.session[SESSION_TENANT_KEY] = memberships[0].tenant_id
                request.session[SESSION_MEMBERSHIP_KEY] = memberships[0].pk
                tenant_id = memberships[0].tenant_id
        if tenant_id is not None:
            return _SessionTenantScope(request, int(tenant_id))
        if user.is_superuser:
            return platform_scope(f"platform superuser {user.pk} without a tenant")
        return nullcontext()


class _SessionTenantScope:
    """Tenant scope for a session request, loading the session's membership inside it."""

    def __init__(self, request: HttpRequest, tenant_id: int) -> None:
        self.request = request
        self.scope = tenant_scope(tenant_id)

    def __enter__(self) -> None:
        self.scope.__enter__()
        membership = (
            Membership.objects.select_related("user", "org_unit", "tenant")
            .filter(
                pk=self.request.session.get(SESSION_MEMBERSHIP_KEY) or 0,
                user_id=self.request.user.pk or 0,
                is_active=True,
            )
            .first()
        )
        self.request.membership = membership  # type: ignore[attr-defined]

    def __exit__(self, *exc: Any) -> bool | None:
        return self.scope.__exit__(*exc)
