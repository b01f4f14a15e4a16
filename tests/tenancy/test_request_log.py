"""One log line per request, with the caller's tenant and membership (tenancy.request_log)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenancy.models import Membership
from tests.factories import PASSWORD, TenantTree
from tests.tenancy.processes import database_url_for_tests, python

pytestmark = pytest.mark.django_db

FIELDS = ("method", "path", "status", "duration_ms", "tenant_id", "membership_id")


def request_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "tenancy.request"]


def fields(record: logging.LogRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in FIELDS}


def test_an_api_request_logs_one_line_with_its_tenant_and_membership(
    caplog: pytest.LogCaptureFixture,
    client_for: Callable[[Membership], APIClient],
    tree_a: TenantTree,
) -> None:
    rep = tree_a.members["rep"]
    client = client_for(rep)
    caplog.set_level(logging.INFO, logger="tenancy.request")
    response = client.get("/api/v1/me/?search=13800138000")
    assert response.status_code == 200
    [line] = request_lines(caplog)
    logged = fields(line)
    duration = logged.pop("duration_ms")
    assert isinstance(duration, float) and duration > 0
    assert logged == {
        "method": "GET",
        "path": "/api/v1/me/",  # the query string may carry search terms: not logged
        "status": 200,
        "tenant_id": tree_a.tenant.pk,
        "membership_id": rep.pk,
    }
    assert line.levelno == logging.INFO
    assert line.getMessage() == (
        f"GET /api/v1/me/ 200 {duration:.1f}ms tenant={tree_a.tenant.pk} membership={rep.pk}"
    )


def test_an_anonymous_request_logs_dashes_for_tenant_and_membership(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tenancy.request")
    assert APIClient().post("/api/v1/me/").status_code == 401
    [line] = request_lines(caplog)
    assert (line.method, line.status, line.tenant_id, line.membership_id) == (  # type: ignore[attr-defined]
        "POST",
        401,
        "-",
        "-",
    )


def test_an_admin_session_request_logs_the_sessions_membership(
    caplog: pytest.LogCaptureFixture, tree_b: TenantTree
) -> None:
    admin = tree_b.members["admin"]
    client = Client()
    assert client.login(username=admin.user.username, password=PASSWORD)
    caplog.set_level(logging.INFO, logger="tenancy.request")
    assert client.get("/admin/tenancy/membership/").status_code == 200
    [line] = request_lines(caplog)
    assert (line.tenant_id, line.membership_id) == (tree_b.tenant.pk, admin.pk)  # type: ignore[attr-defined]


def test_health_probes_are_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tenancy.request")
    assert Client().get("/healthz").status_code == 200
    assert request_lines(caplog) == []
    caplog.set_level(logging.DEBUG, logger="tenancy.request")
    assert Client().get("/healthz").status_code == 200
    [line] = request_lines(caplog)
    assert line.levelno == logging.DEBUG and line.path == "/healthz"  # type: ignore[attr-defined]


def test_a_server_error_is_logged_as_a_warning_with_the_callers_membership(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    client_for: Callable[[Membership], APIClient],
    tree_a: TenantTree,
) -> None:
    from tenancy.api.views import MeView

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in the view")

    monkeypatch.setattr(MeView, "get", broken)
    client = client_for(tree_a.members["manager"])
    client.raise_request_exception = False
    caplog.set_level(logging.INFO, logger="tenancy.request")
    assert client.get("/api/v1/me/").status_code == 500
    [line] = request_lines(caplog)
    assert line.levelno == logging.WARNING
    assert (line.status, line.membership_id) == (500, tree_a.members["manager"].pk)  # type: ignore[attr-defined]


def test_with_log_format_json_every_line_is_a_json_object() -> None:
    result = python(
        "from django.test import Client\n"
        "Client().get('/api/v1/me/')\n"
        "import logging; logging.getLogger('crm.anything').info('hello %s', 'world')\n",
        DEBUG="1",
        LOG_FORMAT="json",
        DATABASE_URL=database_url_for_tests(),
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    requests = [line for line in lines if line["logger"] == "tenancy.request"]
    assert len(requests) == 1
    [request] = requests
    assert {key: request[key] for key in ("level", "method", "path", "status", "tenant_id")} == {
        "level": "INFO",
        "method": "GET",
        "path": "/api/v1/me/",
        "status": 401,
        "tenant_id": "-",
    }
    assert request["membership_id"] == "-" and request["duration_ms"] > 0 and request["time"]
    assert {"logger": "crm.anything", "message": "hello world"}.items() <= lines[-1].items()
