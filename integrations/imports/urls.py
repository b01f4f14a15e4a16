"""Routes of imports and exports (SPEC 11)."""

from __future__ import annotations

from django.urls import path

from integrations.exports import ExportView
from integrations.imports.api import ImportJobViewSet
from tenancy.api.routers import ApiRouter

router = ApiRouter(trailing_slash=True)
router.include_root_view = False
router.register("imports", ImportJobViewSet, basename="import")

urlpatterns = [
    *router.urls,
    path("exports/<str:name>/", ExportView.as_view(), name="export"),
]
