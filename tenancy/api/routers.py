"""The API's router (its own module: ``tenancy.api.base`` is imported by DRF's settings,
which DRF's router module imports)."""

from __future__ import annotations

from rest_framework.routers import DefaultRouter


class ApiRouter(DefaultRouter):
    """DRF's router without format-suffix routes (``visits.json``): the API speaks JSON
    (a client may still ask with ``Accept`` or ``?format=``), and the suffix variants
    doubled the patterns Django tries in turn on every request, about a hundred before
    a list such as ``visits``."""

    include_format_suffixes = False
