"""Mounted under a script prefix (a proxy's ``SCRIPT_NAME=/crm``), the site answers as
at the root: every "is this the API / a probe / a page" check reads ``path_info``
(``tenancy.paths``), where ``request.path`` carries the prefix."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Membership
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db

PREFIX = "/crm"


def test_the_request_sees_the_prefix_in_its_path_only() -> None:
    response = Client().get("/healthz", SCRIPT_NAME=PREFIX)
    assert response.wsgi_request.path == "/crm/healthz"
    assert response.wsgi_request.path_info == "/healthz"


def test_an_unknown_api_url_under_the_prefix_is_a_json_404(settings: object) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    response = Client().get("/api/v1/no-such-thing/", SCRIPT_NAME=PREFIX)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_browser_session_under_the_prefix_opens_no_scope_for_the_api(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    """The API authenticates every request by its header; a logged-in browser's session
    opens no tenant scope for it (no membership read), with or without the prefix."""
    browser = Client()
    browser.force_login(tree_a.members["rep"].user)
    assert browser.get("/app/", SCRIPT_NAME=PREFIX).status_code == 200  # the session has its tenant
    with CaptureQueriesContext(connection) as queries:
        api = browser.get("/api/v1/me/", SCRIPT_NAME=PREFIX)
    assert api.status_code == 401
    assert api.wsgi_request.membership is None  # type: ignore[attr-defined]
    assert not [q for q in queries.captured_queries if "crm_membership" in q["sql"]]
    assert not hasattr(api.wsgi_request, "_messages")  # an API request: no flash messages
    # The header still works under the prefix.
    me = client_for(tree_a.members["rep"]).get("/api/v1/me/", SCRIPT_NAME=PREFIX)
    assert me.status_code == 200 and me.json()["member"]["id"] == tree_a.members["rep"].pk


def test_a_page_under_the_prefix_keeps_its_navigation(tree_a: TenantTree) -> None:
    browser = Client()
    browser.force_login(tree_a.members["rep"].user)
    page = browser.get("/app/", SCRIPT_NAME=PREFIX)
    assert page.status_code == 200
    assert page.context["web_nav"], "no navigation under the prefix"
    assert hasattr(page.wsgi_request, "_messages")


def test_a_probe_under_the_prefix_opens_no_scope_and_logs_quietly(
    tree_a: TenantTree,
    client_for: Callable[[Membership], APIClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = client_for(tree_a.members["rep"])
    with (
        caplog.at_level(logging.DEBUG, logger="tenancy.request"),
        CaptureQueriesContext(connection) as queries,
    ):
        response = client.get("/healthz", SCRIPT_NAME=PREFIX)
    assert response.status_code == 200
    assert [query["sql"] for query in queries.captured_queries] == ["SELECT 1"]
    logged = [r for r in caplog.records if r.name == "tenancy.request"]
    assert logged and all(r.levelno == logging.DEBUG for r in logged)
    assert logged[0].path == "/crm/healthz"  # type: ignore[attr-defined]


def test_a_sessions_membership_never_passes_the_apis_permission(tree_a: TenantTree) -> None:
    """Even with the membership set as the middleware sets it for a page, an API view
    refuses a request no API authenticator accepted."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from tenancy.permissions import IsTenantAdmin, IsTenantAdminOrReadOnly, IsTenantMember

    django_request = APIRequestFactory().get("/api/v1/me/")
    django_request.membership = tree_a.members["admin"]  # type: ignore[attr-defined]
    request = Request(django_request, authenticators=[])
    assert request.membership is not None and request.successful_authenticator is None  # type: ignore[attr-defined]
    for permission in (IsTenantMember, IsTenantAdminOrReadOnly, IsTenantAdmin):
        assert not permission().has_permission(request, None)
