from __future__ import annotations

from crm.api import records
from tenancy.api.routers import ApiRouter

router = ApiRouter(trailing_slash=True)
router.include_root_view = False
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

urlpatterns = [*router.urls]
