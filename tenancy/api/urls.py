from __future__ import annotations

from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from tenancy.api import views
from tenancy.api.routers import ApiRouter

router = ApiRouter(trailing_slash=True)
router.include_root_view = False
router.register("org-units", views.OrgUnitViewSet, basename="org-unit")
router.register("members", views.MemberViewSet, basename="member")
router.register("api-tokens", views.ApiTokenViewSet, basename="api-token")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("job-runs", views.JobRunViewSet, basename="job-run")

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", views.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/token/revoke/", views.TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("invitations/accept/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("me/", views.MeView.as_view(), name="me"),
    path("tenant/", views.TenantSettingsView.as_view(), name="tenant-settings"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file (no inline script) and our
    # template drops the inline <style>; the one relaxation, for this view only: Swagger
    # UI's stylesheet draws its icons as data: images (img-src 'self' data:).
    path(
        "docs/",
        csp_update({"img-src": ["data:"]})(
            SpectacularSwaggerSplitView.as_view(
                url_name="api:schema", template_name="tenancy/api_docs.html"
            )
        ),
        name="docs",
    ),
    *router.urls,
]
