"""DRF authentication: JWT bound to one membership, and hashed integration tokens.

``tenancy.middleware.TenantScopeMiddleware`` has already read the tenant from the
credential and entered its scope; these classes load and check the membership inside
that scope, and fail when the credential and the scope disagree.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import Token

from tenancy.models import ApiToken, Membership
from tenancy.scope import current_tenant_id
from tenancy.services import hash_api_key, tenant_id_from_api_key

TENANT_CLAIM = "tenant_id"
MEMBERSHIP_CLAIM = "membership_id"
TOKEN_VERSION_CLAIM = "tv"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _attach(request: Request, membership: Membership) -> None:
    request.membership = membership  # type: ignore[attr-defined]
    request._request.membership = membership  # type: ignore[attr-defined]


def load_membership_for_token(token: Any) -> Membership:
    """The active membership a validated token names, or ``AuthenticationFailed``."""
    tenant_id = token.get(TENANT_CLAIM)
    if tenant_id is None or tenant_id != current_tenant_id():
        raise exceptions.AuthenticationFailed(_("Token is not bound to a tenant."), "token_invalid")
    membership = (
        Membership.objects.select_related("user", "org_unit", "tenant")
        .filter(pk=token.get(MEMBERSHIP_CLAIM))
        .first()
    )
    if membership is None or not membership.is_active or not membership.user.is_active:
        raise exceptions.AuthenticationFailed(
            _("This membership is inactive or no longer exists."), "membership_inactive"
        )
    if token.get(TOKEN_VERSION_CLAIM) != membership.token_version:
        raise exceptions.AuthenticationFailed(_("Token has been revoked."), "token_revoked")
    return membership


class MembershipJWTAuthentication(JWTAuthentication):
    """``Authorization: Bearer <access token>``."""

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, Token] | None:  # type: ignore[override]
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        if raw is None:
            return None
        token = self.get_validated_token(raw)
        membership = load_membership_for_token(token)
        _attach(request, membership)
        return membership.user, token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token crm<tenant>_<secret>`` for integrations."""

    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace") != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed token header."), "token_invalid")
        key = parts[1].decode(errors="replace")
        tenant_id = tenant_id_from_api_key(key)
        if tenant_id is None or tenant_id != current_tenant_id():
            raise exceptions.AuthenticationFailed(_("Invalid API token."), "token_invalid")
        token = (
            ApiToken.objects.select_related("acts_as__user", "acts_as__org_unit")
            .filter(key_hash=hash_api_key(key))
            .first()
        )
        if token is None or token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                _("Invalid or revoked API token."), "token_invalid"
            )
        membership = token.acts_as
        if not membership.is_active or not membership.user.is_active:
            raise exceptions.AuthenticationFailed(
                _("The member this token acts as is inactive."), "membership_inactive"
            )
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        _attach(request, membership)
        return membership.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
