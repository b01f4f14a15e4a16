from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.urls.resolvers import RoutePattern
from django.views import defaults

from crm.api import urls as crm_api_urls
from funnel import api as funnel_api
from funnel.admin import funnel_report
from incentives import api as incentives_api
from integrations import api_webhooks as webhooks_api
from integrations.imports import urls as imports_urls
from targets import api as targets_api
from tenancy.api import urls as tenancy_api_urls
from tenancy.api.errors import api_bad_request, api_not_found, api_server_error
from tenancy.api.routers import IndexedResolver
from tenancy.health import healthz, readyz
from tenancy.paths import is_api
from tenancy.views import invitation_respond, switch_tenant
from web import views as web_views

# One API namespace; each app contributes its routes (tenancy and crm import none of
# the apps above them).
api_urlpatterns: list[Any] = [
    *tenancy_api_urls.urlpatterns,
    *crm_api_urls.urlpatterns,
    *targets_api.urlpatterns,
    *funnel_api.urlpatterns,
    *incentives_api.urlpatterns,
    *webhooks_api.urlpatterns,
    *imports_urls.urlpatterns,
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/switch-tenant/", switch_tenant, name="switch-tenant"),
    path("admin/invitation/", invitation_respond, name="invitation-respond"),
    path("admin/funnel/report/", funnel_report, name="funnel-report"),
    path("admin/", admin.site.urls),
    # The API's routes, tried by their first segment (IndexedResolver).
    IndexedResolver(RoutePattern("api/v1/"), api_urlpatterns, app_name="api", namespace="api"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("app/", include("web.urls")),
    path("", web_views.home, name="home"),
]


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):  # e.g. a body over DATA_UPLOAD_MAX_MEMORY_SIZE
        return api_bad_request(request, exception)
    return defaults.bad_request(request, exception)


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return api_server_error(request)
    return defaults.server_error(request)
