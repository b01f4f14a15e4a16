"""One log line per request: method, path, status, latency, tenant and membership.

The middleware is the outermost one, so the latency covers every layer. It reads the
membership after the response, when the tenant scope middleware (sessions) or the DRF
authentication classes (tokens) have set ``request.membership``; a request without one
logs ``-``. The path is logged without its query string, which may carry search terms.
Health probes are logged at DEBUG, so a load balancer's polling does not fill the log.

With ``LOG_FORMAT=json`` the fields are the JSON object's keys (``method``, ``path``,
``status``, ``duration_ms``, ``tenant_id``, ``membership_id``); in text they are the
message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from tenancy.paths import is_probe

logger = logging.getLogger("tenancy.request")


def _tenant_and_membership(request: HttpRequest) -> tuple[int | str, int | str]:
    membership = getattr(request, "membership", None)
    tenant: Any = getattr(request, "tenant", None)
    tenant_id = getattr(membership, "tenant_id", None) or getattr(tenant, "pk", None)
    membership_id = getattr(membership, "pk", None)
    return tenant_id or "-", membership_id or "-"


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        tenant_id, membership_id = _tenant_and_membership(request)
        if is_probe(request):
            level = logging.DEBUG
        elif response.status_code >= 500:
            level = logging.WARNING
        else:
            level = logging.INFO
        logger.log(
            level,
            "%s %s %s %.1fms tenant=%s membership=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            tenant_id,
            membership_id,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "tenant_id": tenant_id,
                "membership_id": membership_id,
            },
        )
        return response
