from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenancy.models import Membership
from tests.factories import TenantTree
from tests.tenancy.processes import PRODUCTION, database_url_for_tests, python

pytestmark = pytest.mark.django_db

REQUEST = (
    "import json\n"
    "from django.test import Client\n"
    "response = Client(HTTP_HOST='crm.example.com').get({path!r}, **{environ!r})\n"
    "print(json.dumps({{'status': response.status_code, 'location': response.get('Location'),"
    " 'body': response.content.decode()}}))\n"
)


def request_in_child(
    path: str, environ: dict[str, str] | None = None, /, **env: str
) -> dict[str, object]:
    """A request (with ``environ`` added to its WSGI environment) served by a fresh
    process whose settings come from ``env``."""
    result = python(REQUEST.format(path=path, environ=environ or {}), **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def break_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    from kombu import Connection

    from config.celery import app

    # A real connection attempt, to a port where nothing listens.
    monkeypatch.setattr(app, "connection_for_write", lambda: Connection("redis://127.0.0.1:1/0"))


def test_healthz_checks_the_process_and_the_database_only() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "failed": [], "checks": {"database": {"ok": True}}}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_checks_the_database_and_the_broker() -> None:
    response = Client().get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] is True


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_with_the_broker_down_readyz_is_503_naming_it_and_healthz_stays_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_the_broker(monkeypatch)
    ready = Client().get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable" and body["failed"] == ["broker"]
    assert body["checks"]["broker"] == {"ok": False, "error": "OperationalError"}
    assert body["checks"]["database"] == {"ok": True}
    assert Client().get("/healthz").status_code == 200


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_readyz_reaches_the_real_broker_when_one_is_configured() -> None:
    from config.celery import app

    if not app.conf.broker_url or not app.conf.broker_url.startswith("redis://"):
        pytest.skip("no Redis broker configured (CELERY_BROKER_URL)")
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"] == {"ok": True, "mode": "broker"}


def test_with_the_database_down_both_answer_503_naming_it() -> None:
    down = {
        "DEBUG": "1",
        "ALLOWED_HOSTS": "crm.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/crm",
    }
    for path in ("/healthz", "/readyz"):
        answer = request_in_child(path, **down)
        assert answer["status"] == 503
        body = json.loads(str(answer["body"]))
        assert "database" in body["failed"]
        assert body["checks"]["database"] == {"ok": False, "error": "OperationalError"}


def test_probes_are_exempt_from_the_https_redirect_and_need_no_login() -> None:
    production = {
        **PRODUCTION,
        "DATABASE_URL": database_url_for_tests(),
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    health = request_in_child("/healthz", **production)
    assert health["status"] == 200, health
    # Eager tasks were asked for explicitly: there is no broker to wait for.
    ready = request_in_child("/readyz", **production)
    assert ready["status"] == 200, ready
    assert json.loads(str(ready["body"]))["checks"]["broker"] == {"ok": True, "mode": "eager"}
    admin = request_in_child("/admin/", **production)
    assert admin["status"] == 301 and admin["location"] == "https://crm.example.com/admin/"
    # Mounted under a prefix by the proxy: the probes are still exempt, the pages not.
    prefix = {"SCRIPT_NAME": "/crm"}
    for path in ("/healthz", "/readyz"):
        probe = request_in_child(path, prefix, **production)
        assert probe["status"] == 200, probe
    admin = request_in_child("/admin/", prefix, **production)
    assert admin["status"] == 301 and admin["location"] == "https://crm.example.com/crm/admin/"


def test_unknown_api_urls_answer_json_404(settings: object) -> None:
    settings.DEBUG = False  # type: ignore[attr-defined]
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_api_docs_and_schema_are_served_without_a_cdn() -> None:
    docs = Client().get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "//unpkg" not in html
    schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/members/", "/api/v1/org-units/", "/api/v1/auth/token/"} <= set(paths)


def test_a_credential_sent_to_a_probe_opens_no_tenant_scope(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    """One query (``SELECT 1``), no membership read, for a good or a bad credential."""
    for client in (
        client_for(tree_a.members["rep"]),
        APIClient(HTTP_AUTHORIZATION="Bearer not-a-token"),
        APIClient(HTTP_AUTHORIZATION="Token crm1_not-a-key"),
    ):
        for path in ("/healthz", "/readyz"):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(path)
            assert response.status_code == 200, response.content
            assert [query["sql"] for query in queries.captured_queries] == ["SELECT 1"], path
