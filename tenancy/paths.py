"""Which part of the site a request is for, read from ``request.path_info``.

``path_info`` is the path below the script prefix: behind a proxy that mounts the site
under a prefix (``SCRIPT_NAME=/crm``), ``request.path`` is ``/crm/api/v1/…`` while
``path_info`` is still ``/api/v1/…``, the path the URLconf resolves. Every check of the
kind "is this an API request" reads it here, so the site answers the same under a
prefix as at the root: JSON errors for the API, no session acting on the API, quiet
probes, the pages' navigation.
"""

from __future__ import annotations

from django.http import HttpRequest

API_PREFIX = "/api/"
APP_PREFIX = "/app/"
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def is_probe(request: HttpRequest) -> bool:
    return request.path_info in PROBE_PATHS


def is_app(request: HttpRequest) -> bool:
    return request.path_info.startswith(APP_PREFIX)
