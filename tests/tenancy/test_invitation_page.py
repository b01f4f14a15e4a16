"""The invitation e-mail's link opens a page where the invited person, logged in as
themselves, accepts or declines (SPEC 2; issue #12 item 2). Someone else sees a refusal;
an expired, revoked, declined or used invitation a message saying so."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tenancy.middleware import SESSION_MEMBERSHIP_KEY, SESSION_TENANT_KEY
from tenancy.models import Invitation, Membership
from tenancy.scope import tenant_scope
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
ClientFor = Callable[[Membership], APIClient]


@pytest.fixture
def invite(
    tree_b: TenantTree, client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> Callable[[str], tuple[int, str]]:
    """Globex's admin invites an address over the API; the e-mail's link (path + query)."""
    admin_b = client_for(tree_b.members["admin"])

    def send(email: str) -> tuple[int, str]:
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_b.post(
                "/api/v1/invitations/",
                {"email": email, "role": "manager", "org_unit": tree_b.units["north"].pk},
            )
        assert response.status_code == 201, response.content
        link = re.search(
            r"(https?://\S+/admin/invitation/\?token=inv\d+_\S+)", str(mail.outbox[-1].body)
        )
        assert link is not None, mail.outbox[-1].body
        parts = urlsplit(link.group(1))
        return response.json()["id"], f"{parts.path}?{parts.query}"

    return send


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password=PASSWORD)
    return client


def _token(link: str) -> str:
    return link.split("token=", 1)[1]


def test_the_invited_user_accepts_on_the_linked_page_and_works_in_the_new_tenant(
    tree_a: TenantTree,
    tree_b: TenantTree,
    invite: Callable[[str], tuple[int, str]],
    django_assert_max_num_queries: Any,
) -> None:
    _id, link = invite("acme-rep@example.com")
    browser = login("acme-rep")
    browser.get("/admin/")  # the session's tenant chosen once
    # A fixed number: session, user, the request's scope and membership, the invitation's
    # scope (savepoint and settings, in and out), the invitation with its tenant, unit
    # and inviter in one query, the check that the user is not a member yet.
    with django_assert_max_num_queries(15):
        page = browser.get(link)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Globex 环球" in html and "Manager" in html and "North" in html
    assert 'value="accept"' in html and 'value="decline"' in html
    with tenant_scope(tree_b.tenant):  # a GET writes nothing
        assert Invitation.objects.get().accepted_at is None

    accepted = browser.post("/admin/invitation/", {"token": _token(link), "answer": "accept"})
    assert accepted.status_code == 302 and accepted["Location"] == "/admin/"
    with tenant_scope(tree_b.tenant):
        joined = Membership.objects.select_related("user").get(user__username="acme-rep")
        assert (joined.role, joined.org_unit_id) == ("manager", tree_b.units["north"].pk)
        assert Invitation.objects.get().accepted_by_id == joined.user_id
    assert browser.session[SESSION_TENANT_KEY] == tree_b.tenant.pk
    assert browser.session[SESSION_MEMBERSHIP_KEY] == joined.pk
    home = browser.get("/admin/").content.decode()
    assert "Globex 环球" in home and "You joined" in home

    # The link once more: used, said so, no buttons.
    used = browser.get(link)
    assert used.status_code == 409
    assert "already been used" in used.content.decode()
    assert 'value="accept"' not in used.content.decode()


def test_someone_else_logged_in_sees_a_refusal_and_cannot_accept(
    tree_a: TenantTree, tree_b: TenantTree, invite: Callable[[str], tuple[int, str]]
) -> None:
    _id, link = invite("acme-rep@example.com")
    other = login("acme-rep2")
    page = other.get(link)
    assert page.status_code == 403
    html = page.content.decode()
    assert "sent to another e-mail address" in html and "logged in as acme-rep2" in html
    assert "acme-rep@example.com" not in html  # the invited address is not shown to them
    assert 'value="accept"' not in html
    for answer in ("accept", "decline"):
        refused = other.post("/admin/invitation/", {"token": _token(link), "answer": answer})
        assert refused.status_code == 403
    with tenant_scope(tree_b.tenant):
        invitation = Invitation.objects.get()
        assert (invitation.accepted_at, invitation.declined_at) == (None, None)
        assert not Membership.objects.filter(user__username__startswith="acme-").exists()


def test_declining_closes_the_invitation_and_the_tenant_may_invite_again(
    tree_a: TenantTree, tree_b: TenantTree, invite: Callable[[str], tuple[int, str]]
) -> None:
    first_id, link = invite("acme-rep@example.com")
    browser = login("acme-rep")
    declined = browser.post("/admin/invitation/", {"token": _token(link), "answer": "decline"})
    assert declined.status_code == 200
    assert "You declined the invitation to join Globex 环球" in declined.content.decode()
    with tenant_scope(tree_b.tenant):
        assert Invitation.objects.get(pk=first_id).status == "declined"
        assert not Membership.objects.filter(user__username="acme-rep").exists()
    again = browser.get(link)
    assert again.status_code == 409 and "has been declined" in again.content.decode()
    late = browser.post("/admin/invitation/", {"token": _token(link), "answer": "accept"})
    assert late.status_code == 409
    _second_id, second_link = invite("acme-rep@example.com")  # no pending one blocks it
    assert browser.get(second_link).status_code == 200


def test_expired_revoked_and_forged_links_say_so(
    tree_a: TenantTree,
    tree_b: TenantTree,
    invite: Callable[[str], tuple[int, str]],
    client_for: ClientFor,
) -> None:
    browser = login("acme-rep")
    invitation_id, link = invite("acme-rep@example.com")
    client_for(tree_b.members["admin"]).post(f"/api/v1/invitations/{invitation_id}/revoke/")
    revoked = browser.get(link)
    assert revoked.status_code == 409 and "has been revoked" in revoked.content.decode()

    invitation_id, link = invite("acme-rep@example.com")
    with tenant_scope(tree_b.tenant):
        Invitation.objects.filter(pk=invitation_id).update(
            expires_at=Invitation.objects.get(pk=invitation_id).created_at - timedelta(days=1)
        )
    expired = browser.get(link)
    assert expired.status_code == 400 and "has expired" in expired.content.decode()
    refused = browser.post("/admin/invitation/", {"token": _token(link), "answer": "accept"})
    assert refused.status_code == 400

    for forged in (f"inv{tree_b.tenant.pk}_nope", "nonsense", ""):
        page = browser.get("/admin/invitation/", {"token": forged})
        assert page.status_code in (400, 404)
        assert "not valid" in page.content.decode()
    with tenant_scope(tree_b.tenant):
        assert not Membership.objects.filter(user__username="acme-rep").exists()


def test_an_anonymous_visitor_is_sent_to_log_in_first(
    tree_a: TenantTree, tree_b: TenantTree, invite: Callable[[str], tuple[int, str]]
) -> None:
    _id, link = invite("acme-rep@example.com")
    response = Client().get(link)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse(settings.LOGIN_URL)}?next=/admin/invitation/")
    assert Client().post("/admin/invitation/", {"answer": "accept"}).status_code == 302
    # A rep who is not staff (the admin's login would refuse them) logs in on the site's
    # login page and lands on the invitation.
    get_user_model().objects.filter(username="acme-rep").update(is_staff=False)
    visitor = Client()
    landed = visitor.post(
        response["Location"], {"username": "acme-rep", "password": PASSWORD}, follow=True
    )
    assert landed.redirect_chain[-1][0] == link
    assert landed.status_code == 200
    assert "accept" in landed.content.decode().lower()
