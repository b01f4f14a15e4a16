"""Reviews API (SPEC §10 and §8 ``reviews``): create, list, read, write findings, add
action items, close; and ``targets/{id}/review/``, the unsaved preview of a node's review.

Thin views: the figures are ``funnel.review_selectors``, the writes ``funnel.services``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from funnel import review_selectors, services
from funnel.models import Review, ReviewAction
from targets.selectors import get_visible_target
from tenancy import selectors as tenancy_selectors
from tenancy.api.base import TenantViewMixin
from tenancy.api.fields import VisiblePrimaryKeyField
from tenancy.api.filters import TenantFilterSet
from tenancy.api.serializers import ModelSerializer
from tenancy.dates import tenant_today
from tenancy.models import Membership, Tenant


def _today(member: Membership) -> Any:
    return tenant_today(Tenant.objects.get(pk=member.tenant_id))


class ReviewActionSerializer(ModelSerializer[ReviewAction]):
    owner = VisiblePrimaryKeyField(Membership, tenancy_selectors.visible_memberships)
    owner_name = serializers.SerializerMethodField()
    done = serializers.SerializerMethodField()
    done_at = serializers.SerializerMethodField()

    class Meta:
        model = ReviewAction
        fields = [
            "id",
            "review",
            "text",
            "owner",
            "owner_name",
            "due_date",
            "follow_up",
            "done",
            "done_at",
            "created_at",
        ]
        read_only_fields = ["id", "review", "follow_up", "created_at"]

    @extend_schema_field(OpenApiTypes.STR)
    def get_owner_name(self, item: ReviewAction) -> str:
        return str(item.owner)

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_done(self, item: ReviewAction) -> bool:
        """Done when its follow-up is (a follow-up deleted since counts as not done)."""
        return item.follow_up is not None and item.follow_up.done_at is not None

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_done_at(self, item: ReviewAction) -> Any:
        if item.follow_up is None or item.follow_up.done_at is None:
            return None
        return serializers.DateTimeField().to_representation(item.follow_up.done_at)


class ReviewSerializer(ModelSerializer[Review]):
    target = serializers.IntegerField(
        source="target_id", help_text=_("The period target reviewed (its public id).")
    )

    class Meta:
        model = Review
        fields = [
            "id",
            "target",
            "plan",
            "org_unit",
            "member",
            "period_kind",
            "period_start",
            "period_end",
            "reviewer",
            "status",
            "findings",
            "created_at",
            "updated_at",
            "closed_at",
            "closed_by",
        ]
        read_only_fields = [name for name in fields if name not in ("target", "findings")]


class ReviewDetailSerializer(ReviewSerializer):
    figures = serializers.SerializerMethodField()
    actions = serializers.SerializerMethodField()
    previous_review = serializers.SerializerMethodField()

    class Meta(ReviewSerializer.Meta):
        fields = [*ReviewSerializer.Meta.fields, "figures", "actions", "previous_review"]
        read_only_fields = [*ReviewSerializer.Meta.read_only_fields, "figures", "actions"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_figures(self, review: Review) -> dict[str, Any]:
        member: Membership = self.context["request"].membership
        figures = review_selectors.review_figures_of(
            review, caller=member, today=self.context["today"]
        )
        return review_selectors.localize(figures)

    @extend_schema_field(ReviewActionSerializer(many=True))
    def get_actions(self, review: Review) -> list[dict[str, Any]]:
        items = review_selectors.review_actions([review])[review.pk]
        return ReviewActionSerializer(items, many=True, context=self.context).data  # type: ignore[return-value]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_previous_review(self, review: Review) -> dict[str, Any] | None:
        """The node's previous review and whether its actions were done."""
        previous = review_selectors.previous_review(review)
        if previous is None:
            return None
        items = review_selectors.review_actions([previous])[previous.pk]
        return {
            "id": previous.pk,
            "period_start": previous.period_start,
            "period_end": previous.period_end,
            "status": previous.status,
            "actions": ReviewActionSerializer(items, many=True, context=self.context).data,
            "actions_done": sum(
                1 for item in items if item.follow_up and item.follow_up.done_at is not None
            ),
        }


class ReviewCreateSerializer(serializers.Serializer[Any]):
    target = serializers.IntegerField(
        help_text=_("The period target to review: a unit's or member's total (no product line).")
    )


class ReviewUpdateSerializer(serializers.Serializer[Any]):
    findings = serializers.CharField(allow_blank=True, max_length=20000)


class ReviewActionCreateSerializer(serializers.Serializer[Any]):
    text = serializers.CharField(max_length=200)
    owner = VisiblePrimaryKeyField(Membership, tenancy_selectors.visible_memberships)
    due_date = serializers.DateField()


class ReviewFilter(TenantFilterSet):
    class Meta:
        model = Review
        fields = ["status", "plan", "org_unit", "member", "period_kind", "reviewer"]


class ReviewViewSet(
    TenantViewMixin[Review],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Review],
):
    """Reviews (复盘) of the nodes the caller sees: a draft's figures are live, a closed
    review's are those frozen at its close."""

    model = Review
    filterset_class = ReviewFilter
    ordering_fields = ["period_start", "created_at", "updated_at"]
    ordering = ["-period_start", "-id"]

    def visible_queryset(self, member: Membership) -> QuerySet[Review]:
        return review_selectors.visible_reviews(member)

    def get_serializer_class(self) -> Any:
        return ReviewSerializer if self.action == "list" else ReviewDetailSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if not getattr(self, "swagger_fake_view", False) and self.action != "list":
            context["today"] = _today(self.membership)
        return context

    def _detail(self, review: Review, code: int = status.HTTP_200_OK) -> Response:
        serializer = ReviewDetailSerializer(review, context=self.get_serializer_context())
        return Response(serializer.data, status=code)

    @extend_schema(request=ReviewCreateSerializer, responses={201: ReviewDetailSerializer})
    def create(self, request: Request) -> Response:
        payload = ReviewCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        # The node is the resource addressed: out of sight is a 404, as in a URL.
        target = get_visible_target(self.membership, payload.validated_data["target"])
        review = services.review_create(member=self.membership, target=target)
        return self._detail(review, status.HTTP_201_CREATED)

    @extend_schema(request=ReviewUpdateSerializer, responses=ReviewDetailSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        review = self.get_object()
        payload = ReviewUpdateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.review_update(
            member=self.membership, review=review, findings=payload.validated_data["findings"]
        )
        return self._detail(review)

    @extend_schema(request=ReviewActionCreateSerializer, responses={201: ReviewActionSerializer})
    @action(detail=True, methods=["post"])
    def actions(self, request: Request, pk: str | None = None) -> Response:
        review = self.get_object()
        payload = ReviewActionCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        payload.is_valid(raise_exception=True)
        item = services.review_action_add(
            member=self.membership, review=review, **payload.validated_data
        )
        item = ReviewAction.objects.select_related("owner__user", "follow_up").get(pk=item.pk)
        return Response(
            ReviewActionSerializer(item, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(request=None, responses=ReviewDetailSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str | None = None) -> Response:
        review = self.get_object()
        review = services.review_close(member=self.membership, review=review)
        return self._detail(review)


class TargetReviewView(GenericAPIView):
    """The review of a target's node for its period, computed now and not saved: the
    gap (and each child's), the factor analysis, process targets, losses, adjustments."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, pk: str) -> Response:
        member: Membership = request.membership  # type: ignore[attr-defined]
        target = get_visible_target(member, pk)
        figures = review_selectors.review_figures(target, caller=member, today=_today(member))
        return Response(review_selectors.localize(figures))
