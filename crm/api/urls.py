from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from crm.api import records, tenancy

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("org-units", tenancy.OrgUnitViewSet, basename="org-unit")
router.register("members", tenancy.MemberViewSet, basename="member")
router.register("api-tokens", tenancy.ApiTokenViewSet, basename="api-token")
router.register("job-runs", tenancy.JobRunViewSet, basename="job-run")
router.register("customers", records.CustomerViewSet, basename="customer")
router.register("contacts", records.ContactViewSet, basename="contact")
router.register("leads", records.LeadViewSet, basename="lead")
router.register("product-lines", records.ProductLineViewSet, basename="product-line")
router.register("pipelines", records.PipelineViewSet, basename="pipeline")
router.register("opportunities", records.OpportunityViewSet, basename="opportunity")
router.register("payments", records.PaymentViewSet, basename="payment")
router.register("visits", records.VisitViewSet, basename="visit")
router.register("activities", records.ActivityViewSet, basename="activity")
router.register("notifications", records.NotificationViewSet, basename="notification")

urlpatterns = [
    path("auth/token/", tenancy.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", tenancy.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/token/revoke/", tenancy.TokenRevokeView.as_view(), name="auth-token-revoke"),
    path("me/", tenancy.MeView.as_view(), name="me"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]
