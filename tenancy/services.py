"""Writes of the tenancy layer: org tree, members, tokens (HackSoft-style services).

Each service takes keyword-only arguments, runs in one transaction and is used alike
by the API, the admin and the management commands.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone
from django.utils.translation import gettext as _

from tenancy.dates import tenant_today
from tenancy.errors import Conflict, Invalid
from tenancy.models import (
    ApiToken,
    Invitation,
    Membership,
    OrgUnit,
    OrgUnitManager,
    Role,
    Tenant,
)
from tenancy.scope import current_tenant_id, tenant_scope
from tenancy.signals import tenant_created

API_TOKEN_PREFIX = "crm"


class _Unset:
    """Marks an argument the caller did not pass (``None`` is a meaningful parent)."""


UNSET = _Unset()


def _check_same_tenant(tenant_id: int, *objects: Any) -> None:
    for obj in objects:
        if obj is not None and obj.tenant_id != tenant_id:
            raise ValidationError(_("Related objects must belong to the same tenant."))


@transaction.atomic
def org_unit_create(
    *, tenant: Tenant, name: str, parent: OrgUnit | None = None, managers: Iterable[Membership] = ()
) -> OrgUnit:
    """Create an org unit under ``parent`` (a root when ``None``) and set its path."""
    _check_same_tenant(tenant.pk, parent, *managers)
    unit = OrgUnit.objects.create(tenant=tenant, name=name, parent=parent)
    unit.path = f"{parent.path if parent else '/'}{unit.pk}/"
    unit.depth = parent.depth + 1 if parent else 0
    unit.save(update_fields=["path", "depth"])
    org_unit_set_managers(unit=unit, managers=managers)
    return unit


@transaction.atomic
def org_unit_update(
    *,
    unit: OrgUnit,
    name: str | None = None,
    parent: OrgUnit | None | _Unset = UNSET,
    managers: Iterable[Membership] | None = None,
) -> OrgUnit:
    """Rename, move (re-paths the whole subtree in one UPDATE) or re-staff a unit."""
    unit = OrgUnit.objects.select_for_update().get(pk=unit.pk)
    if name is not None:
        unit.name = name
    if not isinstance(parent, _Unset) and parent != unit.parent:
        new_parent = parent
        _check_same_tenant(unit.tenant_id, new_parent)
        if new_parent is not None and new_parent.path.startswith(unit.path):
            raise ValidationError(
                {"parent": _("A unit cannot be moved under itself or its own descendants.")}
            )
        old_path, old_depth = unit.path, unit.depth
        new_path = f"{new_parent.path if new_parent else '/'}{unit.pk}/"
        depth_change = (new_parent.depth + 1 if new_parent else 0) - old_depth
        OrgUnit.objects.filter(path__startswith=old_path).update(
            path=Concat(Value(new_path), Substr("path", len(old_path) + 1)),
            depth=F("depth") + depth_change,
        )
        unit.refresh_from_db(fields=["path", "depth"])
        unit.parent = new_parent
    unit.save()
    if managers is not None:
        org_unit_set_managers(unit=unit, managers=managers)
    return unit


def org_unit_set_managers(*, unit: OrgUnit, managers: Iterable[Membership]) -> None:
    wanted = {m.pk: m for m in managers}
    _check_same_tenant(unit.tenant_id, *wanted.values())
    OrgUnitManager.objects.filter(org_unit=unit).exclude(membership_id__in=wanted).delete()
    existing = set(
        OrgUnitManager.objects.filter(org_unit=unit).values_list("membership_id", flat=True)
    )
    OrgUnitManager.objects.bulk_create(
        OrgUnitManager(tenant_id=unit.tenant_id, org_unit=unit, membership=m)
        for pk, m in wanted.items()
        if pk not in existing
    )


def _find_or_create_user(
    *, username: str, email: str, first_name: str, last_name: str, password: str | None
) -> Any:
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None and email and user_model.objects.filter(email__iexact=email).exists():
        raise ValidationError(
            {
                "email": _(
                    "Someone already has an account with this e-mail address. Send them an "
                    "invitation instead; they join when they accept it."
                )
            }
        )
    if user is None:
        user = user_model(
            username=username, email=email, first_name=first_name, last_name=last_name
        )
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean()
        user.save()
        return user
    # An existing account joins another tenant only by accepting an invitation while
    # logged in as itself: a tenant admin can never annex somebody else's account.
    if Membership.objects.filter(user=user).exists():
        raise ValidationError({"username": _("This user is already a member of this tenant.")})
    raise ValidationError(
        {
            "username": _(
                "This person already has an account. Send them an invitation instead "
                "(POST /api/v1/invitations/ with their e-mail); they join when they accept it."
            )
        }
    )


@transaction.atomic
def membership_create(
    *,
    tenant: Tenant,
    username: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    role: str = Role.REP,
    org_unit: OrgUnit | None = None,
    title: str = "",
    start_date: date | None = None,
    is_staff: bool = False,
) -> Membership:
    """Add a user (created when new) to the tenant with a role and an org unit."""
    _check_same_tenant(tenant.pk, org_unit)
    user = _find_or_create_user(
        username=username,
        email=email,
        first_name=first_name,
        last_name=last_name,
        password=password,
    )
    if is_staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return _membership_add(
        tenant=tenant,
        user=user,
        role=role,
        org_unit=org_unit,
        title=title,
        start_date=start_date,
    )


def _membership_add(
    *,
    tenant: Tenant,
    user: Any,
    role: str,
    org_unit: OrgUnit | None,
    title: str = "",
    start_date: date | None = None,
) -> Membership:
    if Membership.objects.filter(user=user).exists():
        raise ValidationError({"username": _("This user is already a member of this tenant.")})
    membership = Membership(
        tenant=tenant,
        user=user,
        role=role,
        org_unit=org_unit,
        title=title,
        start_date=start_date or tenant_today(tenant),
    )
    membership.full_clean(exclude=["tenant", "user"])
    membership.save()
    return membership


@transaction.atomic
def membership_update(*, membership: Membership, **changes: Any) -> Membership:
    """Change role, unit, title, dates or the active flag; deactivation revokes tokens."""
    membership = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_same_tenant(membership.tenant_id, changes.get("org_unit"))
    was_active = membership.is_active
    for field, value in changes.items():
        setattr(membership, field, value)
    membership.full_clean(exclude=["tenant", "user"])
    if was_active and not membership.is_active:
        membership.token_version += 1
    membership.save()
    return membership


#: The tenant's settings its admins may change (SPEC section 7's digest hour, the time
#: zone, visit and pace settings, reps seeing others' money). Slug, currency and the
#: fiscal year's first month shape stored figures: only the platform changes them.
TENANT_SETTINGS = (
    "name",
    "time_zone",
    "digest_hour",
    "visit_radius_m",
    "visit_accuracy_limit_m",
    "pace_threshold",
    "leaderboard_money_visible",
)


def tenant_settings_update(*, tenant: Tenant, **changes: Any) -> Tenant:
    """Change the tenant's own settings (``TENANT_SETTINGS``), validated as a whole:
    an unknown time zone or a digest hour outside 0–23 is ``Invalid`` naming the field,
    and nothing is written."""
    unknown = sorted(set(changes) - set(TENANT_SETTINGS))
    if unknown:
        raise Invalid({name: _("This setting cannot be changed here.") for name in unknown})
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        for field, value in changes.items():
            setattr(tenant, field, value)
        tenant.full_clean(exclude=["slug", "currency", "fiscal_year_start_month"])
        if changes:
            tenant.save(update_fields=list(changes))
    return tenant


def membership_revoke_tokens(*, membership: Membership) -> None:
    """Invalidate every access and refresh token issued to the membership, at once."""
    Membership.objects.filter(pk=membership.pk).update(token_version=F("token_version") + 1)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_id_from_api_key(key: str) -> int | None:
    """Integration keys read ``crm<tenant id>_<secret>``; the id selects the scope."""
    head, sep, secret = key.partition("_")
    if not sep or not secret or not head.startswith(API_TOKEN_PREFIX):
        return None
    digits = head[len(API_TOKEN_PREFIX) :]
    return int(digits) if digits.isdigit() else None


@dataclass(frozen=True)
class IssuedApiToken:
    token: ApiToken
    key: str  # shown once, never stored


@transaction.atomic
def api_token_create(*, acts_as: Membership, name: str) -> IssuedApiToken:
    key = f"{API_TOKEN_PREFIX}{acts_as.tenant_id}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(
        tenant_id=acts_as.tenant_id,
        name=name,
        prefix=key[:16],
        key_hash=hash_api_key(key),
        acts_as=acts_as,
    )
    return IssuedApiToken(token=token, key=key)


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


@dataclass(frozen=True)
class CreatedTenant:
    tenant: Tenant
    root: OrgUnit
    admin: Membership
    created: bool


def tenant_create(
    *,
    name: str,
    slug: str,
    admin_username: str,
    admin_email: str,
    admin_password: str,
    time_zone: str = "Asia/Shanghai",
    fiscal_year_start_month: int = 1,
    currency: str = "CNY",
) -> CreatedTenant:
    """Create a tenant with its root org unit and first admin; idempotent by slug."""
    with transaction.atomic():
        tenant, created = Tenant.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "time_zone": time_zone,
                "fiscal_year_start_month": fiscal_year_start_month,
                "currency": currency,
            },
        )
        if created:
            tenant.full_clean()
    assert current_tenant_id() in (None, tenant.pk)
    with tenant_scope(tenant):
        root = OrgUnit.objects.filter(parent__isnull=True).order_by("pk").first()
        if root is None:
            root = org_unit_create(tenant=tenant, name=name)
        tenant_created.send(sender=Tenant, tenant=tenant)
        admin = Membership.objects.filter(user__username=admin_username).first()
        if admin is None:
            admin = membership_create(
                tenant=tenant,
                username=admin_username,
                email=admin_email,
                password=admin_password,
                role=Role.ADMIN,
                org_unit=root,
                is_staff=True,
            )
    return CreatedTenant(tenant=tenant, root=root, admin=admin, created=created)


# --- invitations (SPEC 2) -----------------------------------------------------------

INVITATION_PREFIX = "inv"
INVITATION_LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # e-mailed once, never stored


def tenant_id_from_invitation_token(token: str) -> int | None:
    """Invitation tokens read ``inv<tenant id>_<secret>``; the id selects the scope."""
    head, sep, secret = token.partition("_")
    if not sep or not secret or not head.startswith(INVITATION_PREFIX):
        return None
    digits = head[len(INVITATION_PREFIX) :]
    return int(digits) if digits.isdigit() and len(digits) < 12 else None


@transaction.atomic
def invitation_create(
    *,
    invited_by: Membership,
    email: str,
    role: str = Role.REP,
    org_unit: OrgUnit | None = None,
    accept_url: str = "",
) -> IssuedInvitation:
    """Invite an e-mail address to the tenant and send the invitation (in the active
    language, the inviter's). One pending invitation per address: an expired one is
    replaced, a live one is a conflict."""
    tenant = invited_by.tenant
    _check_same_tenant(tenant.pk, org_unit)
    email = email.strip()
    if Membership.objects.filter(user__email__iexact=email).exists():
        raise Conflict(_("Someone with this e-mail address is already a member of this tenant."))
    now = timezone.now()
    pending = Invitation.objects.select_for_update().filter(
        email__iexact=email,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        declined_at__isnull=True,
    )
    for old in pending:
        if old.expires_at > now:
            raise Conflict(_("This address already has a pending invitation. Revoke it first."))
        old.revoked_at = now
        old.save(update_fields=["revoked_at"])
    token = f"{INVITATION_PREFIX}{tenant.pk}_{secrets.token_urlsafe(32)}"
    invitation = Invitation(
        tenant=tenant,
        email=email,
        role=role,
        org_unit=org_unit,
        invited_by=invited_by,
        token_hash=hash_api_key(token),
        expires_at=now + INVITATION_LIFETIME,
    )
    invitation.full_clean(exclude=["tenant", "invited_by", "accepted_by"])
    invitation.save()
    link = f"{accept_url}?token={token}" if accept_url else token
    inviter = invited_by.user.get_full_name() or invited_by.user.get_username()
    body = _(
        "%(inviter)s invites you to join %(tenant)s on Target CRM as %(role)s.\n\n"
        "Open this link, log in with your own account, and accept or decline the "
        "invitation (an app can send its token to POST /api/v1/invitations/accept/):"
        "\n\n%(link)s\n\n"
        "The invitation expires on %(expires)s (UTC). If you did not expect it, ignore "
        "this message."
    ) % {
        "inviter": inviter,
        "tenant": tenant.name,
        "role": Role(role).label,
        "link": link,
        "expires": invitation.expires_at.strftime("%Y-%m-%d %H:%M"),
    }
    subject = _("Invitation to join %(tenant)s") % {"tenant": tenant.name}
    transaction.on_commit(lambda: send_mail(subject, body, None, [email]))
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_revoke(*, invitation: Invitation) -> Invitation:
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise Conflict(_("This invitation has already been accepted."))
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
    return invitation


def invitation_for_token(token: str, *, lock: bool = False) -> Invitation:
    """The invitation ``token`` names, read in its tenant's scope; ``Invalid`` for a token
    that names none. The caller enters that scope (``tenant_id_from_invitation_token``)."""
    if tenant_id_from_invitation_token(token) is None:
        raise Invalid({"token": [_("This invitation token is not valid.")]})
    invitations = Invitation.objects.filter(token_hash=hash_api_key(token))
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.select_related("tenant", "org_unit", "invited_by__user").first()
    if invitation is None:
        raise Invalid({"token": [_("This invitation token is not valid.")]})
    return invitation


def invitation_check_answerable(invitation: Invitation, user: Any) -> None:
    """Raise unless ``user`` may still accept or decline ``invitation``: expired (400),
    revoked, declined or used (409), sent to another address (400), or a member already."""
    if invitation.accepted_at is not None:
        raise Conflict(_("This invitation has already been used."))
    if invitation.revoked_at is not None:
        raise Conflict(_("This invitation has been revoked."))
    if invitation.declined_at is not None:
        raise Conflict(_("This invitation has been declined."))
    if invitation.expires_at <= timezone.now():
        raise Invalid({"token": [_("This invitation has expired. Ask for a new one.")]})
    if (user.email or "").lower() != invitation.email.lower():
        raise Invalid({"token": [_("This invitation was sent to another e-mail address.")]})
    if not invitation.tenant.is_active:
        raise Invalid({"token": [_("This company's account has been deactivated.")]})
    if Membership.objects.filter(user=user, tenant_id=invitation.tenant_id).exists():
        raise Conflict(_("You are already a member of this tenant."))


def invitation_accept(*, token: str, user: Any) -> Membership:
    """The logged-in ``user`` accepts the invitation ``token`` names: a membership with
    the invited role and unit. Unknown or expired tokens are invalid (400); a revoked,
    declined or used one is a conflict (409)."""
    tenant_id = tenant_id_from_invitation_token(token)
    if tenant_id is None:
        raise Invalid({"token": [_("This invitation token is not valid.")]})
    with tenant_scope(tenant_id):
        invitation = invitation_for_token(token, lock=True)
        invitation_check_answerable(invitation, user)
        org_unit = (
            OrgUnit.objects.filter(pk=invitation.org_unit_id).first()
            if invitation.org_unit_id
            else None
        )
        membership = _membership_add(
            tenant=invitation.tenant, user=user, role=invitation.role, org_unit=org_unit
        )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        return membership


def invitation_decline(*, token: str, user: Any) -> Invitation:
    """The invited ``user`` declines: the invitation is closed (no longer pending, so the
    tenant may invite the address again), by the same checks as accepting."""
    tenant_id = tenant_id_from_invitation_token(token)
    if tenant_id is None:
        raise Invalid({"token": [_("This invitation token is not valid.")]})
    with tenant_scope(tenant_id):
        invitation = invitation_for_token(token, lock=True)
        invitation_check_answerable(invitation, user)
        invitation.declined_at = timezone.now()
        invitation.save(update_fields=["declined_at"])
        return invitation
