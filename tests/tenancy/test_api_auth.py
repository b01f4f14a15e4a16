"""Auth: JWT bound to one membership, refresh and revoke, API tokens, throttling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from tenancy.models import ApiToken, Membership, OrgUnitManager
from tenancy.scope import tenant_scope
from tenancy.services import membership_update
from tests.factories import PASSWORD, TenantTree
from tests.tenancy.test_invitations import join_by_invitation

pytestmark = pytest.mark.django_db
TOKEN_URL = "/api/v1/auth/token/"


def login(client: APIClient, username: str, password: str = PASSWORD, **extra: str) -> Any:
    return client.post(TOKEN_URL, {"username": username, "password": password, **extra})


def test_login_returns_tokens_bound_to_the_membership(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    response = login(api_client, "acme-rep")
    assert response.status_code == 200, response.content
    body = response.json()
    claims = AccessToken(body["access"])
    rep = tree_a.members["rep"]
    assert (claims["tenant_id"], claims["membership_id"]) == (tree_a.tenant.pk, rep.pk)
    assert (body["tenant"], body["role"]) == ("acme", "rep")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    me = api_client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["member"]["id"] == rep.pk
    assert me.json()["tenant"]["slug"] == "acme"


def test_wrong_password_is_401_in_the_error_format(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    response = login(api_client, "acme-rep", "nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert response.json()["error"]["message"] == "Wrong username or password."


def test_missing_fields_are_400_with_field_errors(api_client: APIClient) -> None:
    response = api_client.post(TOKEN_URL, {"username": "x"})
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"password"}


def test_malformed_json_is_400(api_client: APIClient) -> None:
    response = api_client.generic("POST", TOKEN_URL, "{bad", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_unknown_tenant_slug_is_400(api_client: APIClient, tree_a: TenantTree) -> None:
    response = login(api_client, "acme-rep", tenant="no-such-tenant")
    assert response.status_code == 400
    assert "tenant" in response.json()["error"]["fields"]


def test_a_user_in_several_tenants_must_choose_one(
    api_client: APIClient, tree_a: TenantTree, tree_b: TenantTree
) -> None:
    join_by_invitation(tree_b, tree_a.members["rep"])
    ambiguous = login(api_client, "acme-rep")
    assert ambiguous.status_code == 400
    assert "acme, globex" in ambiguous.json()["error"]["fields"]["tenant"][0]
    chosen = login(api_client, "acme-rep", tenant="globex")
    assert chosen.status_code == 200
    assert AccessToken(chosen.json()["access"])["tenant_id"] == tree_b.tenant.pk


def test_a_deactivated_membership_cannot_log_in_and_its_tokens_stop_working(
    api_client: APIClient, tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    client = client_for(rep)
    assert client.get("/api/v1/me/").status_code == 200
    with tenant_scope(tree_a.tenant):
        membership_update(membership=rep, is_active=False)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] in {"membership_inactive", "token_revoked"}
    assert login(api_client, "acme-rep").status_code == 401


def test_an_expired_access_token_is_401(api_client: APIClient, tree_a: TenantTree) -> None:
    body = login(api_client, "acme-rep").json()
    token = AccessToken(body["access"])
    token.set_exp(from_time=timezone.now() - timedelta(hours=1), lifetime=timedelta(minutes=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_a_verified_token_is_decoded_once_and_still_expires(
    api_client: APIClient, tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signature of a token is verified once per process; its expiry on every use."""
    from rest_framework_simplejwt.backends import TokenBackend

    decoded: list[str] = []
    original = TokenBackend.decode

    def counting_decode(self: TokenBackend, token: Any, verify: bool = True) -> Any:
        decoded.append(token)
        return original(self, token, verify)

    monkeypatch.setattr(TokenBackend, "decode", counting_decode)
    access = login(api_client, "acme-rep").json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    for _ in range(3):
        assert api_client.get("/api/v1/me/").status_code == 200
    assert decoded.count(access) == 1
    expiry = AccessToken(access)["exp"]
    with time_machine.travel(expiry + 1, tick=False):
        response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"
    with time_machine.travel(expiry - 5, tick=False):  # its last seconds: still valid
        assert api_client.get("/api/v1/me/").status_code == 200


def test_a_token_changed_by_one_character_is_verified_anew(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    access = login(api_client, "acme-rep").json()["access"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api_client.get("/api/v1/me/").status_code == 200  # now cached
    header, payload, signature = access.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{flipped}")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_a_forged_token_is_401(api_client: APIClient, tree_a: TenantTree) -> None:
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert api_client.get("/api/v1/me/").status_code == 401


def test_refresh_issues_a_new_pair_and_blacklists_the_old_refresh_token(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    first = login(api_client, "acme-rep").json()
    refreshed = api_client.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]})
    assert refreshed.status_code == 200, refreshed.content
    assert AccessToken(refreshed.json()["access"])["membership_id"] == tree_a.members["rep"].pk
    replay = api_client.post("/api/v1/auth/token/refresh/", {"refresh": first["refresh"]})
    assert replay.status_code == 401


def test_revoke_all_invalidates_access_tokens_at_once(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    body = login(api_client, "acme-rep").json()
    revoked = api_client.post(
        "/api/v1/auth/token/revoke/", {"refresh": body["refresh"], "all": True}
    )
    assert revoked.status_code == 204
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    response = api_client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_revoked"
    assert (
        api_client.post("/api/v1/auth/token/refresh/", {"refresh": body["refresh"]}).status_code
        == 401
    )


def test_login_attempts_are_throttled_per_username(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    statuses = [login(api_client, "acme-rep", "wrong").status_code for _ in range(5)]
    assert statuses == [401] * 5
    blocked = login(api_client, "acme-rep", PASSWORD)
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "throttled"


def test_login_attempts_are_throttled_per_address(
    api_client: APIClient, tree_a: TenantTree
) -> None:
    statuses = [login(api_client, f"someone-{n}", "wrong").status_code for n in range(5)]
    assert statuses == [401] * 5
    assert login(api_client, "acme-rep").status_code == 429


def test_api_tokens_are_shown_once_stored_hashed_and_revocable(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    from tenancy.services import org_unit_set_managers

    with tenant_scope(tree_a.tenant):  # a key's member with managed units to show
        org_unit_set_managers(unit=tree_a.units["south"], managers=[tree_a.members["admin"]])
    admin = client_for(tree_a.members["admin"])
    created = admin.post("/api/v1/api-tokens/", {"name": "ERP sync"})
    assert created.status_code == 201, created.content
    key = created.json()["key"]
    token_id = created.json()["token"]["id"]
    with tenant_scope(tree_a.tenant):
        stored = ApiToken.objects.get(pk=token_id)
    assert key not in (stored.key_hash, stored.prefix) and len(stored.key_hash) == 64
    assert "key" not in admin.get(f"/api/v1/api-tokens/{token_id}/").json()

    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    members = integration.get("/api/v1/members/")
    assert members.status_code == 200
    assert members.json()["count"] == len(tree_a.members)
    with tenant_scope(tree_a.tenant):
        assert ApiToken.objects.get(pk=token_id).last_used_at is not None
        managed = sorted(
            OrgUnitManager.objects.filter(membership=tree_a.members["admin"]).values_list(
                "org_unit_id", flat=True
            )
        )
    # The key's member reads its managed units itself (authentication did not).
    me = integration.get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["member"]["managed_units"] == managed
    assert managed == [tree_a.units["south"].pk]

    assert admin.delete(f"/api/v1/api-tokens/{token_id}/").status_code == 204
    assert integration.get("/api/v1/members/").status_code == 401


def test_an_api_token_with_a_guessed_secret_is_401(tree_a: TenantTree) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token crm{tree_a.tenant.pk}_guessed")
    assert client.get("/api/v1/members/").status_code == 401


def test_only_tenant_admins_manage_api_tokens(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    manager = client_for(tree_a.members["manager"])
    assert manager.post("/api/v1/api-tokens/", {"name": "x"}).status_code == 403
    assert manager.get("/api/v1/api-tokens/").status_code == 403


def test_the_per_username_counter_key_holds_no_client_text() -> None:
    """The failed-login counter is keyed by the username as login normalises it, hashed:
    the same key for ``" ACME-Rep "`` and ``acme-rep``, and none of what was typed (spaces,
    brackets, any script) in a cache key."""
    import warnings
    from types import SimpleNamespace

    from django.core.cache.backends.base import memcache_key_warnings

    from tenancy.api.throttling import LoginUserThrottle

    def key(username: object) -> str | None:
        request: Any = SimpleNamespace(data={"username": username})
        return LoginUserThrottle().get_cache_key(request, None)

    assert key(" ACME-Rep ") == key("acme-rep") != key("acme-rep2")
    assert key("") is None
    for typed in ("acme rep", "[None, None]", ["a", "b"], "销售 一部", "x" * 5000):
        made = key(typed)
        assert made is not None and "acme" not in made and len(made) < 100
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert not list(memcache_key_warnings(made))
