"""Enter the tenant scope for a request, from its credential (SPEC section 2).

* ``Authorization: Bearer <jwt>``: the signed ``tenant_id`` claim;
* ``Authorization: Token crm<tenant>_<secret>``: the tenant in the key;
* a session (the admin): the membership chosen in the session, else the user's first.

Inside the scope the credential is checked once (``tenancy.authentication``): the
DRF authentication classes reuse the result. An unreadable credential gets no scope,
so any tenant query fails closed. The platform superuser without a chosen tenant gets
the explicit platform scope in the admin.

The scope is the request's transaction (SPEC section 8: a request that fails writes
nothing): a response with a status of 400 or more rolls back whatever the view wrote,
whether it answered the error itself or raised (Django turns the exception into a 500
before the response reaches this middleware). The tenant's time zone is active for the
whole request, so the admin and the API show local times.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from django.contrib.auth import logout
from django.contrib.messages import middleware as messages_middleware
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.api.errors import error_body
from tenancy.authentication import check_credential, member_opening, read_credential
from tenancy.models import Membership
from tenancy.paths import is_api, is_probe
from tenancy.scope import platform_scope, tenant_scope

logger = logging.getLogger(__name__)
SESSION_MEMBERSHIP_KEY = "crm_membership_id"
SESSION_TENANT_KEY = "crm_tenant_id"


def tenant_id_from_authorization(header: str) -> int | None:
    """The tenant an ``Authorization`` header claims (unchecked), or ``None``."""
    return read_credential(header)[0]


def session_memberships(user: Any) -> list[Membership]:
    """A user's active memberships across tenants, to pick the admin's tenant."""
    with platform_scope("admin session: list the user's memberships"):
        return list(
            Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
            .select_related("tenant")
            .order_by("tenant__name")
        )


def is_database_down(error: BaseException) -> bool:
    """A refused or lost connection: the driver's error carries no SQLSTATE (an error
    the server reported, such as a serialization failure, carries one)."""
    if not isinstance(error, (InterfaceError, OperationalError)):
        return False
    return getattr(error.__cause__, "sqlstate", None) is None


def database_unavailable(error: BaseException) -> HttpResponse:
    """The API's JSON error with ``503`` and a ``Retry-After``, logged."""
    logger.error("Database unavailable: %s", error)
    body = error_body(
        "service_unavailable", str(_("The database is unavailable. Try again in a moment."))
    )
    response = JsonResponse(body, status=503)
    response["Retry-After"] = "30"
    return response


class MessageMiddleware(messages_middleware.MessageMiddleware):
    """Django's flash messages for the pages; an API request carries none, so it makes no
    message storage (a cookie and a session store, about 20 µs of every API request)."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_api(request):
            super().process_request(request)


class _ErrorResponse(Exception):  # noqa: N818 - control flow, not an error
    """Carries an error response out of the scope, so its transaction rolls back."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


class TenantScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.membership = None  # type: ignore[attr-defined]
        if is_probe(request):
            # A probe answers for the process and its database, whoever asks: a credential
            # sent along (a proxy adding one to every request) opens no tenant's scope.
            return self.get_response(request)
        try:
            with ExitStack() as stack:
                self._enter_scope(request, stack)
                response = self.get_response(request)
                if response.status_code >= 400:
                    raise _ErrorResponse(response)
                return response
        except _ErrorResponse as failed:
            return failed.response
        except (InterfaceError, OperationalError) as error:
            # Entering the scope (or its commit) could not reach the database.
            if not is_database_down(error):
                raise
            return database_unavailable(error)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view that lost the database answers 503, not 500 (SPEC 8)."""
        if is_database_down(exception):
            return database_unavailable(exception)
        return None

    def _enter_scope(self, request: HttpRequest, stack: ExitStack) -> None:
        # META itself: request.headers copies every header into a dict of its own first.
        header = request.META.get("HTTP_AUTHORIZATION")
        if header:
            tenant_id, credential = read_credential(header)
            if tenant_id is None or credential is None:
                return
            # An access token's membership is read in the round trip opening the scope.
            opening = member_opening(credential)
            stack.enter_context(tenant_scope(tenant_id, opening=opening))
            checked = check_credential(header, credential, opening)
            # Kept for DRF's authentication classes only: a view outside the API (the
            # admin) never takes its membership from a header.
            request.crm_credential = checked  # type: ignore[attr-defined]
            if checked.membership is not None:
                _activate_time_zone(checked.membership, stack)
            return
        user = getattr(request, "user", None)
        # Sessions serve the admin only: the API authenticates every request by header,
        # so a browser session can never act on the API without CSRF protection.
        if is_api(request) or user is None or not user.is_authenticated:
            return
        tenant_id = request.session.get(SESSION_TENANT_KEY)
        if tenant_id is None:
            memberships = session_memberships(user)
            if memberships:
                request.session[SESSION_TENANT_KEY] = memberships[0].tenant_id
                request.session[SESSION_MEMBERSHIP_KEY] = memberships[0].pk
                tenant_id = memberships[0].tenant_id
        if tenant_id is not None:
            stack.enter_context(tenant_scope(int(tenant_id)))
            membership = (
                Membership.objects.select_related("user", "org_unit", "tenant")
                .order_by()
                .filter(
                    pk=request.session.get(SESSION_MEMBERSHIP_KEY) or 0,
                    user_id=user.pk or 0,
                    is_active=True,
                )
                .first()
            )
            if membership is not None and not membership.tenant.is_active:
                # A deactivated tenant ends its admin sessions on their next request.
                logout(request)
                return
            request.membership = membership  # type: ignore[attr-defined]
            if membership is not None:
                _activate_time_zone(membership, stack)
            return
        if user.is_superuser:
            stack.enter_context(platform_scope(f"platform superuser {user.pk} without a tenant"))


def _activate_time_zone(membership: Membership, stack: ExitStack) -> None:
    timezone.activate(membership.tenant.time_zone)
    stack.callback(timezone.deactivate)
