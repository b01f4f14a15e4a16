"""Invitations replace attaching another company's account (issue 12 item 2, SPEC 2)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from rest_framework.test import APIClient

from tenancy.models import Invitation, Membership
from tenancy.scope import tenant_scope
from tenancy.services import invitation_accept, invitation_create
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]


@pytest.fixture(autouse=True)
def _mail_on_commit(django_capture_on_commit_callbacks: Any) -> None:
    global _capture
    _capture = django_capture_on_commit_callbacks


_capture: Any = None


def _invite(admin: APIClient, email: str, **extra: object) -> tuple[dict[str, Any], str]:
    # The mail leaves when the request's transaction commits.
    with _capture(execute=True):
        response = admin.post("/api/v1/invitations/", {"email": email, **extra})
    assert response.status_code == 201, response.content
    token = re.search(r"token=(inv\d+_\S+)", str(mail.outbox[-1].body))
    assert token is not None, mail.outbox[-1].body
    return response.json(), token.group(1)


def join_by_invitation(tree: TenantTree, member: Membership, role: str = "rep") -> Membership:
    """``member``'s user joins ``tree``'s tenant the only way there is: invited, accepting."""
    with tenant_scope(tree.tenant):
        issued = invitation_create(
            invited_by=tree.members["admin"], email=member.user.email, role=role
        )
    return invitation_accept(token=issued.token, user=member.user)


def test_attaching_another_tenants_user_is_refused_with_a_hint_to_invite(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    admin_b = client_for(tree_b.members["admin"])
    by_name = admin_b.post(
        "/api/v1/members/", {"username": "acme-rep", "email": "acme-rep@example.com"}
    )
    assert by_name.status_code == 400, by_name.content
    assert "invitation" in by_name.json()["error"]["fields"]["username"][0]
    by_email = admin_b.post(
        "/api/v1/members/", {"username": "new-name", "email": "ACME-REP@example.com"}
    )
    assert by_email.status_code == 400, by_email.content
    assert "invitation" in by_email.json()["error"]["fields"]["email"][0]
    with tenant_scope(tree_b.tenant):
        assert not Membership.objects.filter(user__username="acme-rep").exists()


def test_an_invitation_is_mailed_and_accepted_by_the_invited_user_only(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    admin_b = client_for(tree_b.members["admin"])
    body, token = _invite(
        admin_b, "acme-rep@example.com", role="manager", org_unit=tree_b.units["north"].pk
    )
    assert body["status"] == "pending"
    message = mail.outbox[-1]
    assert message.to == ["acme-rep@example.com"] and "Globex" in message.subject
    with tenant_scope(tree_b.tenant):
        assert token not in Invitation.objects.get().token_hash

    # Someone else (another e-mail) cannot use it.
    other = client_for(tree_a.members["rep2"]).post("/api/v1/invitations/accept/", {"token": token})
    assert other.status_code == 400

    invited = client_for(tree_a.members["rep"])
    accepted = invited.post("/api/v1/invitations/accept/", {"token": token})
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["tenant"] == "globex"
    with tenant_scope(tree_b.tenant):
        joined = Membership.objects.get(user__username="acme-rep")
        assert (joined.role, joined.org_unit_id) == ("manager", tree_b.units["north"].pk)
        assert Invitation.objects.get().accepted_by_id == joined.user_id

    again = invited.post("/api/v1/invitations/accept/", {"token": token})
    assert again.status_code == 409


def test_revoked_expired_and_forged_tokens_are_refused(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    admin_b = client_for(tree_b.members["admin"])
    invited = client_for(tree_a.members["rep"])
    body, token = _invite(admin_b, "acme-rep@example.com")
    duplicate = admin_b.post("/api/v1/invitations/", {"email": "Acme-Rep@example.com"})
    assert duplicate.status_code == 409
    revoked = admin_b.post(f"/api/v1/invitations/{body['id']}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    assert invited.post("/api/v1/invitations/accept/", {"token": token}).status_code == 409

    body, token = _invite(admin_b, "acme-rep@example.com")
    with tenant_scope(tree_b.tenant):
        Invitation.objects.filter(pk=body["id"]).update(
            expires_at=Invitation.objects.get(pk=body["id"]).created_at - timedelta(days=1)
        )
    assert invited.post("/api/v1/invitations/accept/", {"token": token}).status_code == 400
    forged = f"inv{tree_b.tenant.pk}_nope"
    assert invited.post("/api/v1/invitations/accept/", {"token": forged}).status_code == 400
    assert invited.post("/api/v1/invitations/accept/", {}).status_code == 400
    with tenant_scope(tree_b.tenant):
        assert not Membership.objects.filter(user__username="acme-rep").exists()


def test_invitations_are_for_admins_and_stay_in_their_tenant(
    tree_a: TenantTree, tree_b: TenantTree, client_for: ClientFor
) -> None:
    admin_b = client_for(tree_b.members["admin"])
    body, _token = _invite(admin_b, "someone@example.com")
    rep_b = client_for(tree_b.members["rep"])
    assert rep_b.post("/api/v1/invitations/", {"email": "x@example.com"}).status_code == 403
    assert rep_b.get("/api/v1/invitations/").status_code == 403
    admin_a = client_for(tree_a.members["admin"])
    assert admin_a.get(f"/api/v1/invitations/{body['id']}/").status_code == 404
    assert admin_a.post(f"/api/v1/invitations/{body['id']}/revoke/").status_code == 404
    assert admin_a.get("/api/v1/invitations/").json()["count"] == 0
    assert admin_b.get("/api/v1/invitations/").json()["count"] == 1


def test_the_admin_sends_lists_and_revokes_invitations(tree_b: TenantTree) -> None:
    from django.test import Client

    from tests.factories import PASSWORD

    client = Client()
    assert client.login(username="globex-admin", password=PASSWORD)
    with _capture(execute=True):
        added = client.post(
            "/admin/tenancy/invitation/add/", {"email": "new@example.com", "role": "rep"}
        )
    assert added.status_code == 302, added.content.decode()[:2000]
    assert mail.outbox[-1].to == ["new@example.com"] and "token=inv" in str(mail.outbox[-1].body)
    twice = client.post(
        "/admin/tenancy/invitation/add/", {"email": "NEW@example.com", "role": "rep"}
    )
    assert twice.status_code == 200 and "pending invitation" in twice.content.decode()
    listed = client.get("/admin/tenancy/invitation/")
    assert listed.status_code == 200 and "new@example.com" in listed.content.decode()
    with tenant_scope(tree_b.tenant):
        pk = Invitation.objects.get().pk
    revoked = client.post(
        "/admin/tenancy/invitation/",
        {"action": "revoke", "_selected_action": [pk]},
    )
    assert revoked.status_code == 302
    with tenant_scope(tree_b.tenant):
        assert Invitation.objects.get().revoked_at is not None
