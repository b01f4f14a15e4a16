"""Access ends when it should (issue 12 item 2, SPEC 2): a deactivated tenant's
credentials stop on their next request, whichever door they use."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenancy.models import Tenant
from tenancy.scope import platform_scope, tenant_scope
from tenancy.services import api_token_create
from tests.factories import PASSWORD, TenantTree

pytestmark = pytest.mark.django_db
TOKEN_URL = "/api/v1/auth/token/"


def _deactivate(tenant: Tenant) -> None:
    with platform_scope("test: deactivate a tenant"):
        Tenant.objects.filter(pk=tenant.pk).update(is_active=False)


def test_a_deactivated_tenants_tokens_stop_working_at_once(
    api_client: APIClient, tree_a: TenantTree, tree_b: TenantTree
) -> None:
    pair = api_client.post(TOKEN_URL, {"username": "acme-rep", "password": PASSWORD}).json()
    with tenant_scope(tree_a.tenant):
        key = api_token_create(acts_as=tree_a.members["admin"], name="ERP").key
    bearer, integration = APIClient(), APIClient()
    bearer.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    integration.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert bearer.get("/api/v1/me/").status_code == 200
    assert integration.get("/api/v1/me/").status_code == 200

    _deactivate(tree_a.tenant)

    for client in (bearer, integration):
        response = client.get("/api/v1/me/")
        assert response.status_code == 401, response.content
        assert response.json()["error"]["code"] == "tenant_inactive"
    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": pair["refresh"]})
    assert refreshed.status_code == 401
    assert refreshed.json()["error"]["code"] == "tenant_inactive"
    # The other tenant is untouched.
    other = api_client.post(TOKEN_URL, {"username": "globex-rep", "password": PASSWORD})
    assert other.status_code == 200


def test_a_deactivated_tenants_admin_session_is_logged_out(tree_a: TenantTree) -> None:
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    assert client.get("/admin/tenancy/membership/").status_code == 200
    _deactivate(tree_a.tenant)
    response = client.get("/admin/tenancy/membership/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert "_auth_user_id" not in client.session
