"""``tenancy.security_headers``: the Content-Security-Policy headers are django-csp's,
the settings' own built once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE, SELF
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory, override_settings

from tenancy import security_headers
from tenancy.security_headers import ContentSecurityPolicyMiddleware

REPORT_ONLY = {"DIRECTIVES": {"default-src": [SELF], "report-uri": "/csp-reports/"}}
WITH_NONCE = {"DIRECTIVES": {"default-src": [SELF], "script-src": [SELF, NONCE]}}


def _plain(request: HttpRequest, response: HttpResponse) -> None:
    pass


def _updated(request: HttpRequest, response: HttpResponse) -> None:
    response._csp_update = {"img-src": ["data:"]}  # type: ignore[attr-defined]


def _replaced_report_only(request: HttpRequest, response: HttpResponse) -> None:
    response._csp_replace_ro = {"default-src": ["'none'"]}  # type: ignore[attr-defined]


def _exempt(request: HttpRequest, response: HttpResponse) -> None:
    response._csp_exempt = True  # type: ignore[attr-defined]


def _header_set(request: HttpRequest, response: HttpResponse) -> None:
    response[HEADER] = "default-src 'none'"


def _nonce_used(request: HttpRequest, response: HttpResponse) -> None:
    str(request.csp_nonce)  # type: ignore[attr-defined]  # a template asked for it


def _not_found(request: HttpRequest, response: HttpResponse) -> None:
    response.status_code = 404


VIEWS: dict[str, Callable[[HttpRequest, HttpResponse], None]] = {
    "plain": _plain,
    "updated": _updated,
    "report-only replaced": _replaced_report_only,
    "exempt": _exempt,
    "header already set": _header_set,
    "nonce used": _nonce_used,
    "not found": _not_found,
}
SETTINGS: dict[str, dict[str, Any]] = {
    "ours": {},
    "report only too": {"CONTENT_SECURITY_POLICY_REPORT_ONLY": REPORT_ONLY},
    "with a nonce": {"CONTENT_SECURITY_POLICY": WITH_NONCE},
    "an excluded path": {
        "CONTENT_SECURITY_POLICY": {
            **settings.CONTENT_SECURITY_POLICY,
            "EXCLUDE_URL_PREFIXES": ["/excluded"],
        }
    },
    "debug": {"DEBUG": True},
    "no policy": {"CONTENT_SECURITY_POLICY": None},
}


def _answer(middleware_class: type[CSPMiddleware], view: Any, path: str) -> tuple[Any, ...]:
    request = RequestFactory().get(path)

    def get_response(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("ok")
        view(request, response)
        return response

    middleware = middleware_class(get_response)
    response: Any = middleware(request)
    try:  # a nonce asked for after the header is written is refused, unless already made
        late = str(request.csp_nonce)  # type: ignore[attr-defined]
    except CSPNonceError:
        late = "refused"
    nonce = getattr(request, "_csp_nonce", None)
    header = response.get(HEADER)
    if nonce:  # one per request
        header = header and header.replace(nonce, "<nonce>")
        late = late.replace(nonce, "<nonce>")
    return header, response.get(HEADER_REPORT_ONLY), response.status_code, late


def test_the_settings_use_this_middleware() -> None:
    assert "tenancy.security_headers.ContentSecurityPolicyMiddleware" in settings.MIDDLEWARE
    assert "csp.middleware.CSPMiddleware" not in settings.MIDDLEWARE


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_the_headers_are_django_csps(setting: str, view: str) -> None:
    path = "/excluded/page" if setting == "an excluded path" else "/api/v1/me/"
    with override_settings(**SETTINGS[setting]):
        for _twice in range(2):  # the second time from the texts kept
            ours = _answer(ContentSecurityPolicyMiddleware, VIEWS[view], path)
            theirs = _answer(CSPMiddleware, VIEWS[view], path)
            assert ours == theirs
    if setting == "ours" and view == "plain":
        assert ours[0] and "default-src 'self'" in ours[0]


def test_the_settings_texts_are_made_once_and_again_after_a_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[bool] = []
    build = security_headers.build_policy

    def counted(**kwargs: Any) -> str:
        made.append(kwargs["report_only"])
        return build(**kwargs)

    monkeypatch.setattr(security_headers, "build_policy", counted)
    security_headers._TEXTS.clear()
    for _request in range(3):
        _answer(ContentSecurityPolicyMiddleware, _plain, "/")
    assert made == [False, True]
    with override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": ["'none'"]}}):
        assert _answer(ContentSecurityPolicyMiddleware, _plain, "/")[0] == "default-src 'none'"
    assert made == [False, True, False, True]
    assert "default-src 'self'" in _answer(ContentSecurityPolicyMiddleware, _plain, "/")[0]
    assert made == [False, True, False, True, False, True]  # the settings back: made again
