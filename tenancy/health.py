"""Health endpoints for load balancers and orchestrators, without authentication.

* ``/healthz`` (liveness): the process answers and its database does, with one cheap
  query; a broker outage does not make it fail, so the process is not restarted for it.
* ``/readyz`` (readiness): the database and the task broker; ``503`` names the part
  that failed, so traffic is held back until both answer.

Both are exempt from the HTTPS redirect (``SECURE_REDIRECT_EXEMPT``) and never cached.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

BROKER_TIMEOUT_SECONDS = 2


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "error": error.__class__.__name__}
    return {"ok": True}


def _broker() -> dict[str, Any]:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "eager"}
    from config.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - any failure means "down"
        return {"ok": False, "error": error.__class__.__name__}
    return {"ok": True, "mode": "broker"}


def _answer(checks: dict[str, dict[str, Any]]) -> JsonResponse:
    failed = [name for name, check in checks.items() if not check["ok"]]
    return JsonResponse(
        {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks},
        status=503 if failed else 200,
    )


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return _answer({"database": _database()})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    return _answer({"database": _database(), "broker": _broker()})
