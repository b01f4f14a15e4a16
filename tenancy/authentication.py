"""DRF authentication: JWT bound to one membership, and hashed integration tokens.

``tenancy.middleware.TenantScopeMiddleware`` reads the tenant from the credential,
enters its scope and checks the credential there once (``check_credential``: the JWT
decoded once, one membership query with its user, unit and tenant). These classes hand
DRF what the middleware found, so a request never decodes its token or loads its
membership twice. A credential the middleware could not read (and so gave no scope) is
checked here from scratch, and fails: the credential and the scope disagree.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, Token

from tenancy.member_loader import MemberOpening, load_member
from tenancy.models import ApiToken, Membership
from tenancy.scope import current_tenant_id
from tenancy.services import hash_api_key, tenant_id_from_api_key

TENANT_CLAIM = "tenant_id"
MEMBERSHIP_CLAIM = "membership_id"
TOKEN_VERSION_CLAIM = "tv"
LAST_USED_RESOLUTION = timedelta(minutes=1)
BEARER = "Bearer"
API_TOKEN = "Token"


@dataclass(frozen=True)
class CheckedCredential:
    """A request's ``Authorization`` header as the middleware checked it, in its scope:
    the membership and DRF's ``request.auth`` (the access token or the API token row),
    or the refusal to raise when DRF authenticates."""

    header: str
    membership: Membership | None = None
    auth: Any = None
    error: exceptions.AuthenticationFailed | None = None


#: Access tokens already verified, by their text: payload and expiry (epoch seconds).
_VERIFIED: dict[str, tuple[dict[str, Any], float]] = {}
VERIFIED_CACHE_SIZE = 10_000
_VERIFIED_WRITES = threading.Lock()


def verified_access_token(raw: str) -> AccessToken:
    """``AccessToken(raw)``: the signature and claims verified once per token text, its
    expiry on every use.

    A phone sends the same access token with every request for its lifetime (15 minutes
    by default); verifying its HMAC and claims again each time cost a quarter of a
    millisecond. Only a token that passed ``AccessToken``'s checks is kept, under its
    whole text, so a changed byte is a different token, verified from scratch. Whether
    the token may still act (its membership active, its ``tv`` current) is not cached:
    ``load_membership_for_token`` reads that on every request. The expiry is checked as
    PyJWT checks it (expired at ``exp - leeway``); the cache holds at most
    ``VERIFIED_CACHE_SIZE`` tokens, dropping the oldest.
    """
    known = _VERIFIED.get(raw)
    if known is not None:
        payload, expires = known
        if time.time() < expires:
            token = AccessToken.__new__(AccessToken)
            token.token = raw  # type: ignore[assignment]
            token.current_time = timezone.now()
            token.payload = dict(payload)
            return token
        with _VERIFIED_WRITES:
            _VERIFIED.pop(raw, None)
    token = AccessToken(raw)  # type: ignore[arg-type]
    exp = token.payload.get("exp")
    if isinstance(exp, (int, float)):
        leeway = token.get_token_backend().get_leeway().total_seconds()
        with _VERIFIED_WRITES:  # threads of one process: no eviction mid-iteration
            while len(_VERIFIED) >= VERIFIED_CACHE_SIZE:
                _VERIFIED.pop(next(iter(_VERIFIED)), None)
            _VERIFIED[raw] = (dict(token.payload), exp + leeway)
    return token


def read_credential(header: str) -> tuple[int | None, AccessToken | str | None]:
    """The tenant a credential claims and what was read to find it (the verified
    ``AccessToken`` or the API key); ``(None, None)`` when it cannot be read."""
    kind, _sep, value = header.strip().partition(" ")
    value = value.strip()
    if kind == BEARER and value:
        try:
            token = verified_access_token(value)
        except TokenError:
            return None, None
        claim = token.get(TENANT_CLAIM)
        return (claim, token) if isinstance(claim, int) else (None, None)
    if kind == API_TOKEN and value:
        tenant_id = tenant_id_from_api_key(value)
        return (tenant_id, value) if tenant_id is not None else (None, None)
    return None, None


def member_opening(credential: AccessToken | str) -> MemberOpening | None:
    """For an access token, the read of its membership that the scope's first round trip
    can carry (``tenant_scope(…, opening=…)``); None for an API key."""
    if not isinstance(credential, AccessToken):
        return None
    membership_id = credential.get(MEMBERSHIP_CLAIM)
    tenant_id = credential.get(TENANT_CLAIM)
    if isinstance(membership_id, int) and isinstance(tenant_id, int):
        return MemberOpening(tenant_id, membership_id)
    return None


def check_credential(
    header: str, credential: AccessToken | str, opened: MemberOpening | None = None
) -> CheckedCredential:
    """Check a credential read by ``read_credential``, inside its tenant's scope (whose
    opening may have read the membership already)."""
    try:
        if isinstance(credential, AccessToken):
            member = load_membership_for_token(credential, opened)
            return CheckedCredential(header, member, credential)
        membership, token = load_membership_for_api_key(credential)
        return CheckedCredential(header, membership, token)
    except exceptions.AuthenticationFailed as error:
        return CheckedCredential(header, error=error)


def _checked_by_middleware(request: Request) -> CheckedCredential | None:
    checked = getattr(request._request, "crm_credential", None)
    if isinstance(checked, CheckedCredential) and checked.header == request.META.get(
        "HTTP_AUTHORIZATION"
    ):
        return checked
    return None


def _attach(request: Request, membership: Membership) -> None:
    request.membership = membership  # type: ignore[attr-defined]
    request._request.membership = membership  # type: ignore[attr-defined]


def _accept(request: Request, checked: CheckedCredential) -> tuple[AbstractBaseUser, Any]:
    if checked.error is not None:
        raise checked.error
    assert checked.membership is not None
    _attach(request, checked.membership)
    return checked.membership.user, checked.auth


def _refuse_inactive_tenant(membership: Membership) -> None:
    """A deactivated tenant ends every credential at once (SPEC 2), not just new logins."""
    if not membership.tenant.is_active:
        raise exceptions.AuthenticationFailed(
            _("This company's account has been deactivated."), "tenant_inactive"
        )


def load_membership_for_token(token: Any, opened: MemberOpening | None = None) -> Membership:
    """The active membership a validated token names, or ``AuthenticationFailed``; read
    by ``opened`` when the scope's opening read it for this very token."""
    tenant_id = token.get(TENANT_CLAIM)
    if tenant_id is None or tenant_id != current_tenant_id():
        raise exceptions.AuthenticationFailed(_("Token is not bound to a tenant."), "token_invalid")
    membership_id = token.get(MEMBERSHIP_CLAIM)
    if (
        opened is not None
        and opened.received
        and (opened.tenant_id, opened.membership_id) == (tenant_id, membership_id)
    ):
        membership = opened.member
    elif isinstance(membership_id, int):
        membership = load_member(tenant_id, membership_id)
    else:
        membership = None
    if membership is None or not membership.is_active or not membership.user.is_active:
        raise exceptions.AuthenticationFailed(
            _("This membership is inactive or no longer exists."), "membership_inactive"
        )
    _refuse_inactive_tenant(membership)
    if token.get(TOKEN_VERSION_CLAIM) != membership.token_version:
        raise exceptions.AuthenticationFailed(_("Token has been revoked."), "token_revoked")
    return membership


def load_membership_for_api_key(key: str) -> tuple[Membership, ApiToken]:
    """The member an integration key acts as and its token row, or ``AuthenticationFailed``;
    records the key's last use (at most once a minute)."""
    tenant_id = tenant_id_from_api_key(key)
    if tenant_id is None or tenant_id != current_tenant_id():
        raise exceptions.AuthenticationFailed(_("Invalid API token."), "token_invalid")
    token = (
        ApiToken.objects.select_related("acts_as__user", "acts_as__org_unit", "acts_as__tenant")
        .filter(key_hash=hash_api_key(key))
        .first()
    )
    if token is None or token.revoked_at is not None:
        raise exceptions.AuthenticationFailed(_("Invalid or revoked API token."), "token_invalid")
    membership = token.acts_as
    if not membership.is_active or not membership.user.is_active:
        raise exceptions.AuthenticationFailed(
            _("The member this token acts as is inactive."), "membership_inactive"
        )
    _refuse_inactive_tenant(membership)
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return membership, token


class MembershipJWTAuthentication(JWTAuthentication):
    """``Authorization: Bearer <access token>``."""

    def __init__(self) -> None:
        """Without simplejwt's ``get_user_model()`` on every request (DRF makes the class
        per request): only simplejwt's ``get_user``, which this class does not call,
        reads ``user_model``, looked up when read."""

    @property
    def user_model(self) -> Any:  # type: ignore[override]
        return get_user_model()

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, Token] | None:  # type: ignore[override]
        header = self.get_header(request)
        if header is None:
            return None
        raw = self.get_raw_token(header)
        if raw is None:
            return None
        checked = _checked_by_middleware(request)
        if checked is not None and (checked.error or isinstance(checked.auth, AccessToken)):
            return _accept(request, checked)
        token = self.get_validated_token(raw)
        membership = load_membership_for_token(token)
        _attach(request, membership)
        return membership.user, token


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token crm<tenant>_<secret>`` for integrations."""

    keyword = API_TOKEN

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace") != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Malformed token header."), "token_invalid")
        checked = _checked_by_middleware(request)
        if checked is not None and (checked.error or isinstance(checked.auth, ApiToken)):
            return _accept(request, checked)
        membership, token = load_membership_for_api_key(parts[1].decode(errors="replace"))
        _attach(request, membership)
        return membership.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
