"""The API's routes resolve by their first segment (``tenancy.api.routers.IndexedResolver``)
to exactly what Django's own resolver finds scanning every route in turn."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, path, re_path
from django.urls.resolvers import RegexPattern, RoutePattern

from config.urls import api_urlpatterns
from tenancy.api.routers import IndexedResolver, _literal_prefix


def _sample(pattern: Any) -> str:
    """A path the pattern matches: each converter or group given the value 7."""
    if isinstance(pattern, RoutePattern):
        return re.sub(r"<(?:\w+:)?\w+>", "7", str(pattern))
    regex = str(pattern).removeprefix("^").removesuffix("$")
    regex = re.sub(r"\(\?P<\w+>[^)]*\)", "7", regex)
    return regex.replace("\\.", ".")


def _shape(match: Any) -> tuple[Any, ...]:
    return (
        match.func,
        match.args,
        match.kwargs,
        match.url_name,
        match.route,
        match.app_names,
        match.namespaces,
        match.captured_kwargs,
        match.extra_kwargs,
    )


def _django() -> URLResolver:
    return URLResolver(RoutePattern("api/v1/"), api_urlpatterns, app_name="api", namespace="api")


def test_the_api_resolves_with_the_index() -> None:
    (api,) = [p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/"]
    assert isinstance(api, IndexedResolver)
    assert all(isinstance(pattern, URLPattern) for pattern in api.url_patterns)  # flat


def test_every_route_resolves_as_djangos_full_scan_finds_it() -> None:
    (ours,) = [p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/"]
    theirs = _django()
    paths = {"api/v1/" + _sample(pattern.pattern) for pattern in api_urlpatterns}
    assert len(paths) >= 100
    for sample in sorted(paths):
        assert _shape(ours.resolve(sample)) == _shape(theirs.resolve(sample)), sample
        assert get_resolver().resolve("/" + sample).view_name.startswith("api:"), sample


@pytest.mark.parametrize(
    "path",
    [
        "api/v1/",
        "api/v1/nowhere/",
        "api/v1/visits",
        "api/v1/visits.json",
        "api/v1/visits/7/nowhere/",
        "api/v1/me",
        "api/v1//visits/",
        "api/v2/visits/",
    ],
)
def test_a_path_no_route_matches_is_not_found_by_either(path: str) -> None:
    with pytest.raises(Resolver404):
        _django().resolve(path)
    (api,) = [p for p in get_resolver().url_patterns if str(p.pattern) == "api/v1/"]
    with pytest.raises(Resolver404):
        api.resolve(path)


def test_a_route_without_a_literal_first_segment_is_tried_for_every_path() -> None:
    """The first match in the routes' order wins, whatever their segments: a route that
    starts with a converter or a group is a candidate for every path, in its place."""

    def view(*args: Any, **kwargs: Any) -> HttpResponse:
        return HttpResponse()

    patterns = [
        path("visits/", view, name="visits"),
        path("<slug:kind>/", view, name="any-kind"),
        path("leads/", view, name="leads"),
        re_path(r"^(?P<x>\w+)/more/$", view, name="more"),
        re_path(r"^leads/more/$", view, name="leads-more"),
        path("leads.json", view, name="suffixed"),
    ]
    indexed = IndexedResolver(RoutePattern("api/"), patterns)
    plain = URLResolver(RoutePattern("api/"), patterns)
    for tail in ("visits/", "leads/", "other/", "leads/more/", "x/more/", "leads.json"):
        assert indexed.resolve("api/" + tail).url_name == plain.resolve("api/" + tail).url_name
    assert indexed.resolve("api/leads/").url_name == "any-kind"  # before leads/
    assert indexed.resolve("api/leads/more/").url_name == "more"
    assert indexed.resolve("api/leads.json").url_name == "suffixed"


def test_literal_prefixes() -> None:
    assert _literal_prefix(RoutePattern("visits/<int:pk>/check-in/")) == "visits/"
    assert _literal_prefix(RoutePattern("me/plan-to-close/")) == "me/plan-to-close/"
    assert _literal_prefix(RoutePattern("<int:pk>/")) == ""
    assert _literal_prefix(RegexPattern(r"^visits/(?P<pk>[^/.]+)/$")) == "visits/"
    assert _literal_prefix(RegexPattern(r"^visits\.json$")) == "visits"
    assert _literal_prefix(RegexPattern(r"visits/$")) == ""  # not anchored
    assert _literal_prefix(RegexPattern(r"^(?:a|b)/$")) == ""
