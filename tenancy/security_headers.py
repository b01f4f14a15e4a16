"""The Content-Security-Policy header, built once per settings for most responses.

django-csp's middleware builds the headers of every response from the settings: for
each of the policy and the report-only policy, the response's and request's parts as a
dict (``dataclasses.asdict``, deep copies), then every known directive copied and
turned into text. For a response that changes nothing of either policy (no view
decorator's config, update or replace, no nonce asked for), the texts depend on the
settings alone, yet building them was 317,000 instructions of every response
(``bench/instructions.py``), a sixth of ``/healthz``.

``ContentSecurityPolicyMiddleware`` is django-csp's middleware (``MIDDLEWARE``) that
sets such a response's headers from the texts django-csp's ``build_policy`` made the
first time, under the same conditions as django-csp (not on a debug 404 or 500, not
over a header already set, not on an exempt response or an excluded path), and leaves
every other response to django-csp. A change of either setting (a test's
``override_settings``) forgets the texts and the excluded paths read with them.
``tests/tenancy/test_security_headers.py`` compares the headers with django-csp's own.
"""

from __future__ import annotations

import http.client
from typing import Any

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponseBase

#: What a view's decorators set on a response to change its policies (django-csp's
#: ``get_policy_parts`` reads them).
_RESPONSE_PARTS = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_DEBUG_CODES = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)
#: Per policy (enforced, report-only): its header and the response's exemption flag.
_POLICIES = ((False, HEADER, "_csp_exempt"), (True, HEADER_REPORT_ONLY, "_csp_exempt_ro"))
_SETTINGS = {False: "CONTENT_SECURITY_POLICY", True: "CONTENT_SECURITY_POLICY_REPORT_ONLY"}
#: Per policy (``report_only``): its text built from the settings alone, and the path
#: prefixes its setting excludes.
_TEXTS: dict[bool, tuple[str, tuple[str, ...]]] = {}


def settings_policy(report_only: bool) -> tuple[str, tuple[str, ...]]:
    """django-csp's text of the settings' own policy (or report-only policy) and the path
    prefixes it is not sent for (``EXCLUDE_URL_PREFIXES``), made once."""
    known = _TEXTS.get(report_only)
    if known is None:
        policy = getattr(settings, _SETTINGS[report_only], None) or {}
        excluded = tuple(policy.get("EXCLUDE_URL_PREFIXES", None) or ())
        known = _TEXTS[report_only] = (build_policy(report_only=report_only), excluded)
    return known


@receiver(setting_changed)
def _forget_policies(*, setting: str, **kwargs: Any) -> None:
    if setting in _SETTINGS.values():
        _TEXTS.clear()


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, a response that changes no policy given the settings'
    texts made once (see the module)."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _RESPONSE_PARTS
        ):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_CODES and settings.DEBUG:
            return response
        for report_only, header, exempt in _POLICIES:
            text, excluded = settings_policy(report_only)
            if (
                text
                and getattr(response, exempt, False) is False
                and header not in response
                and not request.path_info.startswith(excluded)
            ):
                response[header] = text
        # As django-csp: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
