"""The request itself (issue #11 item 8, #12 items 1 and 4): one credential check per
request, a failed request writes nothing, the tenant's time zone is active."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Membership, OrgUnit, Tenant
from tenancy.scope import tenant_scope
from tests.factories import PASSWORD, TenantTree
from tests.tenancy.failing_urls import NAME

pytestmark = pytest.mark.django_db
ClientFor = object


def _written(tree: TenantTree) -> int:
    with tenant_scope(tree.tenant):
        return OrgUnit.objects.filter(name=NAME).count()


# --- one check of the credential ----------------------------------------------------


def test_me_reads_the_membership_once_and_decodes_the_token_once(
    tree_a: TenantTree, client_for: ClientFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rest_framework_simplejwt import tokens

    client = client_for(tree_a.members["manager"])  # type: ignore[operator]
    decoded = []
    original = tokens.Token.__init__

    def counting_init(self: tokens.Token, *args: object, **kwargs: object) -> None:
        decoded.append(args[:1])
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens.Token, "__init__", counting_init)
    with CaptureQueriesContext(connection) as context:
        response = client.get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["member"]["managed_units"] == [tree_a.units["north"].pk]
    assert len(decoded) == 1
    statements = [query["sql"] for query in context.captured_queries]
    assert sum('FROM "crm_membership"' in sql for sql in statements) == 1
    # Savepoint, tenant setting, membership (with user, unit, tenant and managed units),
    # the outer scope's setting restored (tests run nested), release: 5, was 7.
    assert len(statements) == 5, statements


def test_an_api_token_is_checked_once_and_answers(tree_a: TenantTree) -> None:
    from tenancy.services import api_token_create

    with tenant_scope(tree_a.tenant):
        key = api_token_create(acts_as=tree_a.members["admin"], name="erp").key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    with CaptureQueriesContext(connection) as context:
        assert client.get("/api/v1/me/").status_code == 200
    statements = [query["sql"] for query in context.captured_queries]
    assert sum('FROM "crm_apitoken"' in sql for sql in statements) == 1


def test_a_revoked_membership_is_refused_with_the_middlewares_reason(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    client = client_for(tree_a.members["rep"])  # type: ignore[operator]
    with tenant_scope(tree_a.tenant):
        Membership.objects.filter(pk=tree_a.members["rep"].pk).update(is_active=False)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "membership_inactive"


def test_a_token_of_an_unreadable_kind_gets_no_scope_and_401(tree_a: TenantTree) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert client.get("/api/v1/me/").status_code == 401


# --- a failed request writes nothing ------------------------------------------------


@pytest.mark.urls("tests.tenancy.failing_urls")
@pytest.mark.parametrize(("how", "status"), [("validate", 400), ("answer", 409), ("raise", 500)])
def test_an_api_request_that_fails_after_writing_leaves_no_row(
    how: str, status: int, tree_a: TenantTree, client_for: ClientFor
) -> None:
    client = client_for(tree_a.members["admin"])  # type: ignore[operator]
    client.raise_request_exception = False
    response = client.post(f"/api/v1/test-write-then-fail/?how={how}")
    assert response.status_code == status
    assert _written(tree_a) == 0


@pytest.mark.urls("tests.tenancy.failing_urls")
def test_an_api_request_that_succeeds_keeps_its_row(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    client = client_for(tree_a.members["admin"])  # type: ignore[operator]
    assert client.post("/api/v1/test-write-then-fail/?how=ok").status_code == 201
    assert _written(tree_a) == 1


@pytest.mark.urls("tests.tenancy.failing_urls")
def test_an_admin_request_that_fails_after_writing_leaves_no_row(tree_a: TenantTree) -> None:
    client = Client()
    assert client.login(username="acme-admin", password=PASSWORD)
    assert client.get("/admin-test/write-then-fail/").status_code == 400
    assert _written(tree_a) == 0
    assert client.get("/admin-test/write-then-fail/?how=ok").status_code == 200
    assert _written(tree_a) == 1


# --- the tenant's time zone ---------------------------------------------------------

STAMP = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai, 00:30 in UTC


def _stamp_north(tree: TenantTree, time_zone: str) -> None:
    Tenant.objects.filter(pk=tree.tenant.pk).update(time_zone=time_zone)
    with tenant_scope(tree.tenant):
        OrgUnit.objects.filter(pk=tree.units["north"].pk).update(updated_at=STAMP)


def test_api_datetimes_are_in_the_tenants_time_zone(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    _stamp_north(tree_a, "Asia/Shanghai")
    client = client_for(tree_a.members["admin"])  # type: ignore[operator]
    body = client.get(f"/api/v1/org-units/{tree_a.units['north'].pk}/").json()
    assert body["updated_at"] == "2026-03-01T08:30:00+08:00"
    _stamp_north(tree_a, "UTC")
    body = client.get(f"/api/v1/org-units/{tree_a.units['north'].pk}/").json()
    assert body["updated_at"] == "2026-03-01T00:30:00Z"


def test_the_admin_shows_local_times_of_the_tenant(tree_a: TenantTree) -> None:
    _stamp_north(tree_a, "Asia/Shanghai")
    client = Client(headers={"Accept-Language": "en"})
    assert client.login(username="acme-admin", password=PASSWORD)
    html = client.get("/admin/tenancy/orgunit/").content.decode()
    assert "March 1, 2026, 8:30 a.m." in html
    assert "12:30 a.m." not in html


def test_the_time_zone_is_deactivated_after_the_request(
    tree_a: TenantTree, client_for: ClientFor
) -> None:
    from django.utils import timezone

    client_for(tree_a.members["admin"]).get("/api/v1/me/")  # type: ignore[operator]
    assert timezone.get_current_timezone_name() == "UTC"


# --- the outermost transaction (as in production, not nested in a test's) ----------


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("tests.tenancy.failing_urls")
def test_outside_a_test_transaction_one_message_opens_the_scope_and_errors_roll_back(
    client_for: ClientFor,
) -> None:
    from psycopg.pq import TransactionStatus

    from tests.factories import build_tenant_tree

    tree = build_tenant_tree("outer", "Outer 外")
    client = client_for(tree.members["manager"])  # type: ignore[operator]
    with CaptureQueriesContext(connection) as context:
        me = client.get("/api/v1/me/")
    assert me.status_code == 200
    assert me.json()["member"]["managed_units"] == [tree.units["north"].pk]
    # Django logs "BEGIN" when it turns autocommit off (no round trip); the first
    # message to the server opens the transaction and makes the settings.
    statements = [q["sql"] for q in context.captured_queries if q["sql"] != "BEGIN"]
    assert statements[0].startswith("BEGIN; SET LOCAL app.tenant_id = '")
    assert sum("app.tenant_id" in sql for sql in statements) == 1
    # The transaction ended with the request, and its settings with it.
    assert connection.connection.pgconn.transaction_status == TransactionStatus.IDLE
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('app.tenant_id', true), current_user")
        assert cursor.fetchone() == ("", "crm_app")

    admin = client_for(tree.members["admin"])  # type: ignore[operator]
    admin.raise_request_exception = False
    assert admin.post("/api/v1/test-write-then-fail/?how=raise").status_code == 500
    assert admin.post("/api/v1/test-write-then-fail/").status_code == 400
    assert _written(tree) == 0
    assert admin.post("/api/v1/test-write-then-fail/?how=ok").status_code == 201
    assert _written(tree) == 1


def test_the_api_has_no_format_suffix_routes(tree_a: TenantTree, client_for: ClientFor) -> None:
    """JSON is asked for with Accept or ?format=; no route ends in .json (they doubled
    the patterns each request is matched against)."""
    from django.urls import get_resolver

    def patterns(resolver: object, prefix: str = "") -> list[str]:
        found: list[str] = []
        for pattern in resolver.url_patterns:  # type: ignore[attr-defined]
            text = prefix + str(pattern.pattern)
            found += patterns(pattern, text) if hasattr(pattern, "url_patterns") else [text]
        return found

    api = [p for p in patterns(get_resolver()) if p.startswith("api/v1/")]
    assert api and not [p for p in api if "format" in p]
    client = client_for(tree_a.members["rep"])  # type: ignore[operator]
    assert client.get("/api/v1/visits/", {"format": "json"}).status_code == 200
    assert client.get("/api/v1/visits.json").status_code == 404


def test_api_requests_make_no_message_storage_and_pages_keep_theirs(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    api = client_for(tree_a.members["rep"]).get("/api/v1/me/")
    assert api.status_code == 200
    assert not hasattr(api.wsgi_request, "_messages")
    page = Client().get("/admin/login/")
    assert page.status_code == 200
    assert hasattr(page.wsgi_request, "_messages")  # the pages' flash messages as before
