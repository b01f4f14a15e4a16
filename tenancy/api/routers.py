"""The API's router (its own module: ``tenancy.api.base`` is imported by DRF's settings,
which DRF's router module imports)."""

from __future__ import annotations

from typing import Any

from django.urls import URLResolver
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, ResolverMatch, RoutePattern
from django.utils.functional import cached_property
from rest_framework.routers import DefaultRouter


class ApiRouter(DefaultRouter):
    """DRF's router without format-suffix routes (``visits.json``): the API speaks JSON
    (a client may still ask with ``Accept`` or ``?format=``), and the suffix variants
    doubled the patterns Django tries in turn on every request, about a hundred before
    a list such as ``visits``."""

    include_format_suffixes = False


class IndexedResolver(URLResolver):
    """A ``URLResolver`` that tries, for a path, only the patterns that can match it.

    Django tries a resolver's patterns in turn until one matches: the API's several
    hundred routes cost 20 µs before ``me/`` and 40 µs before ``visits/``, on every
    request. A pattern whose route starts with a literal first segment (``visits/``)
    matches only paths starting with that segment, so the patterns are indexed by it
    once; a path is resolved by Django's own ``URLResolver`` over the patterns of its
    first segment and those without a literal one (a converter or a regular expression
    first, or no slash), in their order: the first to match is the one Django's full
    scan finds. Only a 404's list of tried patterns is shorter (it names the candidates).
    """

    @cached_property
    def _by_segment(self) -> tuple[dict[str, URLResolver], URLResolver]:
        segments: dict[str, list[int]] = {}
        always: list[int] = []
        for position, pattern in enumerate(self.url_patterns):
            prefix = _literal_prefix(pattern.pattern)
            if "/" in prefix:
                segments.setdefault(prefix[: prefix.index("/") + 1], []).append(position)
            else:
                always.append(position)

        def resolver(positions: list[int]) -> URLResolver:
            patterns = [self.url_patterns[index] for index in sorted(positions)]
            return URLResolver(
                self.pattern, patterns, self.default_kwargs, self.app_name, self.namespace
            )

        by_segment = {key: resolver(found + always) for key, found in segments.items()}
        return by_segment, resolver(always)

    def resolve(self, path: Any) -> ResolverMatch:
        path = str(path)
        match = self.pattern.match(path)
        if not match:
            raise Resolver404({"path": path})
        rest = match[0]
        slash = rest.find("/")
        by_segment, others = self._by_segment
        narrowed = by_segment.get(rest[: slash + 1], others) if slash >= 0 else others
        return narrowed.resolve(path)


_REGEX_SPECIAL = frozenset("\\.^$*+?{}[]|()")


def _literal_prefix(pattern: Any) -> str:
    """The text every path a pattern matches starts with: a route up to its first
    converter, a regular expression up to its first special character; "" for any
    other pattern."""
    if isinstance(pattern, RoutePattern):
        route = str(getattr(pattern, "_route", ""))
        return route.split("<", 1)[0]
    if isinstance(pattern, RegexPattern):
        regex = str(getattr(pattern, "_regex", ""))
        if not regex.startswith("^"):
            return ""
        literal = []
        for character in regex[1:]:
            if character in _REGEX_SPECIAL:
                break
            literal.append(character)
        return "".join(literal)
    return ""
