"""Content negotiation: DRF's, its answer to the usual ``Accept`` remembered.

DRF parses the ``Accept`` header and every renderer's media type on each request, about
30 µs of an API request here. Its answer depends only on the header, the view's renderer
classes and a format asked for in the URL, so for the headers an API client sends (none,
``*/*``, ``application/json``) it is worked out by DRF once per set of renderer classes
and remembered. Any other header (a browser's, ``; indent=4``), a ``?format=`` or a
format suffix goes through DRF each time: no header a client writes is kept.
"""

from __future__ import annotations

from collections.abc import Iterable

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

#: The ``Accept`` values answered from memory (DRF reads a missing header as ``*/*``).
USUAL_ACCEPT = frozenset({"*/*", "application/json"})
_ANSWERS: dict[tuple[str, tuple[type, ...]], tuple[int, str]] = {}


class ContentNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        accept = request.META.get("HTTP_ACCEPT", "*/*")
        format_param = self.settings.URL_FORMAT_OVERRIDE
        if (
            format_suffix
            or accept not in USUAL_ACCEPT
            or (format_param and f"{format_param}=" in request.META.get("QUERY_STRING", ""))
        ):
            return super().select_renderer(request, renderers, format_suffix)
        key = (accept, tuple(type(renderer) for renderer in renderers))
        answer = _ANSWERS.get(key)
        if answer is None:
            renderer, media_type = super().select_renderer(request, renderers, format_suffix)
            answer = _ANSWERS[key] = (renderers.index(renderer), media_type)
        position, media_type = answer
        return renderers[position], media_type
