"""Settings come from the environment and fail loudly when production values are missing.

Settings are read once, at import, so every variation runs in a fresh process.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.tenancy.processes import PRODUCTION, database_url_for_tests, manage, python

SHOW_LOGGING = (
    "import json, logging\n"
    "from django.conf import settings\n"
    "def handlers(name):\n"
    "    return sorted(type(h).__name__ for h in logging.getLogger(name).handlers)\n"
    "print(json.dumps({\n"
    "    'admins': settings.ADMINS,\n"
    "    'eager': settings.CELERY_TASK_ALWAYS_EAGER,\n"
    "    'request': handlers('django.request'),\n"
    "    'task': handlers('celery.app.trace'),\n"
    "}))\n"
)


def shown(code: str, **env: str) -> Any:
    result = python(code, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_debug_a_missing_secret_key_stops_the_start_with_a_clear_message() -> None:
    result = manage("check", ALLOWED_HOSTS="crm.example.com")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_without_debug_missing_allowed_hosts_stops_the_start() -> None:
    result = manage("check", SECRET_KEY="x" * 60)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS is not set" in result.stderr


def test_without_debug_a_missing_broker_stops_the_start_unless_eager_tasks_are_asked_for() -> None:
    without_broker = {k: v for k, v in PRODUCTION.items() if k != "CELERY_BROKER_URL"}
    result = manage("check", **without_broker)
    assert result.returncode != 0
    assert "CELERY_BROKER_URL is not set" in result.stderr
    assert "CELERY_TASK_ALWAYS_EAGER=1" in result.stderr
    assert shown(SHOW_LOGGING, **without_broker, CELERY_TASK_ALWAYS_EAGER="1")["eager"] is True
    # A broker means real queueing; development without one runs tasks eagerly.
    assert shown(SHOW_LOGGING, **PRODUCTION)["eager"] is False
    assert shown(SHOW_LOGGING, DEBUG="1")["eager"] is True


def test_check_deploy_is_clean_with_production_values() -> None:
    result = manage("check", "--deploy", "--fail-level=WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_sentry_errors_are_mailed_to_the_admins() -> None:
    env = {
        **PRODUCTION,
        "ADMINS": '"Ops, Night Shift" <ops@example.com>,Wei Zhang <wei@example.cn>',
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "DATABASE_URL": database_url_for_tests(),
    }
    config = shown(SHOW_LOGGING, **env)
    assert config["admins"] == [
        ["Ops, Night Shift", "ops@example.com"],
        ["Wei Zhang", "wei@example.cn"],
    ]
    assert config["request"] == config["task"] == ["AdminEmailHandler"]
    # A real unhandled exception in a request sends one mail to both admins.
    sent = shown(
        "import json\n"
        "from django.core import mail\n"
        "from django.test import Client\n"
        "from django.urls import path\n"
        "import config.urls\n"
        "def boom(request):\n"
        "    raise ZeroDivisionError('boom')\n"
        "config.urls.urlpatterns.append(path('boom', boom))\n"
        "client = Client(HTTP_HOST='crm.example.com', raise_request_exception=False)\n"
        "status = client.get('/boom', secure=True).status_code\n"
        "print(json.dumps({'status': status,"
        " 'mails': [[m.subject, m.to] for m in getattr(mail, 'outbox', [])]}))\n",
        **env,
    )
    assert sent["status"] == 500
    [(subject, to)] = sent["mails"]
    assert "ERROR" in subject and "/boom" in subject
    assert to == ["ops@example.com", "wei@example.cn"]


def test_in_debug_and_with_sentry_nothing_is_mailed() -> None:
    assert shown(SHOW_LOGGING, DEBUG="1", ADMINS="ops@example.com")["request"] == []
    with_sentry = shown(
        SHOW_LOGGING, **PRODUCTION, ADMINS="ops@example.com", SENTRY_DSN="http://k@127.0.0.1:1/1"
    )
    assert with_sentry["request"] == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADMINS": "Ops Team"}, "ADMINS is not a list of e-mail addresses: 'Ops Team'"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json, not 'xml'"),
    ],
)
def test_malformed_operations_settings_stop_the_start(env: dict[str, str], message: str) -> None:
    result = manage("check", **PRODUCTION, **env)
    assert result.returncode != 0
    assert message in result.stderr


class _FakeSentry(BaseHTTPRequestHandler):
    """Collects the envelopes a Sentry client posts (the DSN points here)."""

    envelopes: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.envelopes.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_sentry() -> Iterator[tuple[str, list[bytes]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeSentry)
    _FakeSentry.envelopes = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://publickey@127.0.0.1:{server.server_port}/42", _FakeSentry.envelopes
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_with_sentry_an_unhandled_error_is_reported_without_personal_data(
    fake_sentry: tuple[str, list[bytes]],
) -> None:
    dsn, envelopes = fake_sentry
    env = {
        **PRODUCTION,
        "DATABASE_URL": database_url_for_tests(),
        "SENTRY_DSN": dsn,
        "SENTRY_ENVIRONMENT": "staging",
        "SENTRY_RELEASE": "target-crm@1.2.3",
    }
    options = shown(
        "import json, sentry_sdk\n"
        "client = sentry_sdk.get_client()\n"
        "print(json.dumps({'pii': client.options['send_default_pii'],"
        " 'integrations': sorted(client.integrations)}))\n",
        **env,
    )
    assert options["pii"] is False
    assert {"django", "celery"} <= set(options["integrations"])
    status = shown(
        # Through the real WSGI application, which the Sentry integration instruments.
        "import json, sentry_sdk, wsgiref.util\n"
        "from django.urls import path\n"
        "import config.urls\n"
        "from config.wsgi import application\n"
        "def boom(request):\n"
        "    raise ZeroDivisionError('boom')\n"
        "config.urls.urlpatterns.append(path('boom', boom))\n"
        "environ = {'HTTP_HOST': 'crm.example.com', 'PATH_INFO': '/boom',\n"
        "           'HTTP_COOKIE': 'sessionid=secret-session-cookie',\n"
        "           'HTTP_AUTHORIZATION': 'Token secret-api-key', 'REMOTE_ADDR': '203.0.113.9',\n"
        "           'HTTP_X_FORWARDED_PROTO': 'https'}\n"
        "wsgiref.util.setup_testing_defaults(environ)\n"
        "statuses = []\n"
        "b''.join(application(environ, lambda status, headers: statuses.append(status)))\n"
        "sentry_sdk.flush(timeout=10)\n"
        "print(json.dumps({'status': statuses[0]}))\n",
        **env,
    )
    assert status == {"status": "500 Internal Server Error"}
    raw = b"\n".join(envelopes)
    events = [
        json.loads(line)
        for line in raw.splitlines()
        if line.startswith(b"{") and b'"exception"' in line
    ]
    assert len(events) == 1, raw[:2000]
    [event] = events
    assert event["environment"] == "staging" and event["release"] == "target-crm@1.2.3"
    assert event["exception"]["values"][-1]["type"] == "ZeroDivisionError"
    assert event["request"]["url"].endswith("://crm.example.com/boom")
    # send_default_pii=False: no cookies, credentials or client address leave the process.
    assert b"secret-session-cookie" not in raw and b"secret-api-key" not in raw
    assert b"203.0.113.9" not in raw
