"""Webhook API (SPEC section 11): ``webhook-endpoints`` and ``webhook-deliveries``.

Admins only (others get 403, like the API tokens). The secret is returned once, when
an endpoint is created and when it is rotated; it is never listed.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from integrations.webhooks import services
from tenancy.api.base import TenantViewMixin
from tenancy.api.filters import TenantFilterSet
from tenancy.api.routers import ApiRouter
from tenancy.api.serializers import ModelSerializer
from tenancy.models import Membership
from tenancy.permissions import IsTenantAdmin


class WebhookAttemptSerializer(ModelSerializer[WebhookAttempt]):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "attempted_at",
            "response_code",
            "duration_ms",
            "error",
            "next_attempt_at",
        ]
        read_only_fields = fields


class WebhookDeliverySerializer(ModelSerializer[WebhookDelivery]):
    attempts = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_type",
            "message_id",
            "status",
            "attempt_count",
            "next_attempt_at",
            "last_attempt_at",
            "last_response_code",
            "last_error",
            "delivered_at",
            "created_at",
            "payload",
            "attempts",
        ]
        read_only_fields = fields


# --- endpoints ------------------------------------------------------------------------


class WebhookEndpointSerializer(ModelSerializer[WebhookEndpoint]):
    url = serializers.URLField(max_length=2000, help_text=_("https URL of the receiver."))
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        allow_empty=False,
        max_length=len(WebhookEvent.choices),
    )
    secret_rotating_until = serializers.DateTimeField(
        source="previous_secret_expires_at", read_only=True, allow_null=True
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "is_active",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "secret_rotating_until",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "disabled_at",
            "disabled_reason",
            "failing_since",
            "created_by",
            "created_at",
            "updated_at",
        ]


EndpointWithSecret = inline_serializer(
    "WebhookEndpointWithSecret",
    {"endpoint": WebhookEndpointSerializer(), "secret": serializers.CharField()},
)


class WebhookEndpointFilter(TenantFilterSet):
    class Meta:
        model = WebhookEndpoint
        fields = ["is_active"]


class WebhookEndpointViewSet(
    TenantViewMixin[WebhookEndpoint],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[WebhookEndpoint],
):
    """Where the tenant's events go (admins only). The secret is shown once: in the
    answer to the creation and to ``rotate-secret``."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsTenantAdmin]
    filterset_class = WebhookEndpointFilter
    ordering = ["-created_at", "-id"]
    ordering_fields = ["created_at", "url"]
    search_fields = ["url", "description"]
    model = WebhookEndpoint

    def visible_queryset(self, member: Membership) -> QuerySet[WebhookEndpoint]:
        return WebhookEndpoint.objects.all()

    def _with_secret(self, endpoint: WebhookEndpoint, secret: str, code: int) -> Response:
        return Response(
            {"endpoint": WebhookEndpointSerializer(endpoint).data, "secret": secret}, status=code
        )

    @extend_schema(responses={201: EndpointWithSecret})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(
            member=self.membership, **serializer.validated_data
        )
        return self._with_secret(endpoint, secret, status.HTTP_201_CREATED)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = services.endpoint_update(
            member=self.membership, endpoint=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        services.endpoint_delete(member=self.membership, endpoint=instance)

    @extend_schema(request=None, responses=EndpointWithSecret)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        """A new secret, returned once; the old one signs too for 24 hours."""
        endpoint, secret = services.endpoint_rotate_secret(
            member=self.membership, endpoint=self.get_object()
        )
        return self._with_secret(endpoint, secret, status.HTTP_200_OK)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a ``ping`` event to this endpoint now; its delivery shows the outcome."""
        delivery = services.endpoint_test(member=self.membership, endpoint=self.get_object())
        return Response(
            WebhookDeliverySerializer(_deliveries().get(pk=delivery.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )


# --- deliveries -----------------------------------------------------------------------


class WebhookDeliveryFilter(TenantFilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    event_type = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type"]


def _deliveries() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.prefetch_related(
        Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number"))
    )


class WebhookDeliveryViewSet(
    TenantViewMixin[WebhookDelivery],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[WebhookDelivery],
):
    """The delivery log (admins only): each event sent to each endpoint, its attempts
    (time, response code, duration, error, next attempt); ``retry`` sends it again."""

    serializer_class = WebhookDeliverySerializer
    permission_classes = [IsTenantAdmin]
    filterset_class = WebhookDeliveryFilter
    ordering = ["-created_at", "-id"]
    ordering_fields = ["created_at", "next_attempt_at", "status"]
    search_fields = ["message_id", "event_type"]
    model = WebhookDelivery

    def visible_queryset(self, member: Membership) -> QuerySet[WebhookDelivery]:
        return _deliveries()

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        """Send again: the same message (same ``webhook-id``), now."""
        delivery = services.delivery_retry(member=self.membership, delivery=self.get_object())
        return Response(
            WebhookDeliverySerializer(_deliveries().get(pk=delivery.pk)).data,
            status=status.HTTP_202_ACCEPTED,
        )


router = ApiRouter(trailing_slash=True)
router.include_root_view = False
router.register("webhook-endpoints", WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")

urlpatterns = [*router.urls]
