"""Targets API (SPEC sections 4 and 8): plans with decompose / publish / lock, targets with
achievement, adjustments and approval, commitments and reconciliation, and ``me/targets``."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from targets import allocation, services
from targets.achievement import achievement_json, plan_achievements, plan_as_of, today_in
from targets.metrics import METRICS
from targets.models import (
    AdjustmentTrigger,
    Commitment,
    PeriodKind,
    PlanStatus,
    Target,
    TargetAdjustment,
    TargetPlan,
    target_ids_q,
)
from targets.selectors import get_target, visible_commitments, visible_series, visible_targets
from tenancy import selectors as tenancy_selectors
from tenancy.api.base import TenantViewMixin, date_param
from tenancy.api.fields import VisiblePrimaryKeyField
from tenancy.api.filters import SyncFilterSet, TenantFilterSet
from tenancy.api.routers import ApiRouter
from tenancy.api.serializers import ModelSerializer
from tenancy.models import Membership, OrgUnit, Tenant

VALUE: dict[str, Any] = {"max_digits": 18, "decimal_places": 2}


def as_of_for_plan(request: Request, plan: TargetPlan) -> date:
    """The ``as_of`` asked for (outside the plan's fiscal year: a 400 from the
    achievement), else today in the tenant's time zone, clamped into the plan's year."""
    requested = date_param(request, "as_of")
    if requested is not None:
        return requested
    return plan_as_of(plan, Tenant.objects.get(pk=plan.tenant_id))


def as_of_today(request: Request, member: Membership) -> date:
    """The ``as_of`` asked for, else today in the tenant's time zone."""
    requested = date_param(request, "as_of")
    return requested or today_in(Tenant.objects.get(pk=member.tenant_id))


# --- plans ----------------------------------------------------------------------------


class TargetPlanSerializer(ModelSerializer[TargetPlan]):
    metric = serializers.ChoiceField(choices=[(key, m.label) for key, m in METRICS.items()])
    annual_total = serializers.DecimalField(min_value=0, **VALUE)

    class Meta:
        model = TargetPlan
        fields = [
            "id",
            "fiscal_year",
            "metric",
            "name",
            "annual_total",
            "status",
            "settings",
            "unassigned",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "status",
            "settings",
            "unassigned",
            "created_by",
            "created_at",
            "updated_at",
        ]


class PlanUpdateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=120, required=False)
    annual_total = serializers.DecimalField(min_value=0, required=False, **VALUE)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError(_("Give a name or an annual total."))
        return attrs


class DecomposeSerializer(serializers.Serializer[Any]):
    dry_run = serializers.BooleanField(default=False)
    time_method = serializers.ChoiceField(["equal", "seasonal", "manual"], default="equal")
    time_weights = serializers.ListField(
        child=serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0),
        min_length=12,
        max_length=12,
        required=False,
    )
    seasonal_blend = serializers.DecimalField(
        max_digits=5,
        decimal_places=4,
        min_value=0,
        max_value=1,
        default=Decimal(1),
        help_text=_("β: β·seasonal + (1 − β)·equal shares, 0 to 1 (default 1)."),
    )
    org_method = serializers.ChoiceField(
        ["equal", "history", "potential", "blend", "manual"], default="equal"
    )
    org_methods_by_depth = serializers.DictField(
        child=serializers.ChoiceField(["equal", "history", "potential", "blend", "manual"]),
        required=False,
        help_text=_('Method per parent depth, e.g. {"0": "history"}.'),
    )
    potential = serializers.DictField(
        child=serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0),
        required=False,
        help_text=_("Weights per child, keyed 'unit:ID' or 'member:ID'."),
    )
    alpha = serializers.DecimalField(
        max_digits=5, decimal_places=4, min_value=0, max_value=1, required=False
    )
    manual = serializers.DictField(
        child=serializers.DecimalField(min_value=0, **VALUE),
        required=False,
        help_text=_(
            "Values per child, keyed 'unit:ID' or 'member:ID'; when omitted, those "
            "recorded on the plan (by an import of its manual values)."
        ),
    )
    headroom = serializers.DecimalField(
        max_digits=5, decimal_places=4, min_value=0, max_value=1, default=Decimal(0)
    )
    product_shares = serializers.DictField(
        child=serializers.DecimalField(max_digits=20, decimal_places=6, min_value=0),
        required=False,
        help_text=_("Shares per product line id."),
    )
    new_product_multiplier = serializers.DecimalField(
        max_digits=6, decimal_places=3, min_value=0, default=Decimal(1)
    )
    ramp = serializers.BooleanField(default=True)
    ramp_steps = serializers.ListField(
        child=serializers.ListField(min_length=2, max_length=2), required=False
    )
    preserve_total = serializers.BooleanField(default=True)
    include_managers = serializers.BooleanField(default=False)

    def validate_org_methods_by_depth(self, value: dict[str, str]) -> dict[int, str]:
        try:
            return {int(depth): method for depth, method in value.items()}
        except ValueError as error:
            raise serializers.ValidationError(_("Depths are whole numbers.")) from error

    def validate_product_shares(self, value: dict[str, Decimal]) -> dict[int, Decimal]:
        try:
            return {int(line): share for line, share in value.items()}
        except ValueError as error:
            raise serializers.ValidationError(_("Keys are product line ids.")) from error

    def validate_ramp_steps(self, value: list[list[Any]]) -> list[tuple[int, Decimal]]:
        """Checked here with the pure schedule's own rules, so a bad step is a 400 on
        ``ramp_steps`` rather than a ``ValueError`` in the middle of decomposing."""
        rule = _(
            "Give [tenure month, factor] pairs: whole months starting at 1 and increasing, "
            "factors between 0 and 1."
        )
        steps: list[tuple[int, Decimal]] = []
        for month, factor in value:
            if isinstance(month, bool) or not isinstance(month, int):
                raise serializers.ValidationError(rule)
            try:
                steps.append((month, Decimal(str(factor))))
            except ArithmeticError as error:
                raise serializers.ValidationError(rule) from error
        try:
            allocation.RampSchedule(steps)
        except (TypeError, ValueError) as error:
            raise serializers.ValidationError(rule) from error
        return steps

    def settings(self) -> services.DecomposeSettings:
        data = dict(self.validated_data)
        data.pop("dry_run")
        return services.DecomposeSettings(**data)


class PlanFilter(TenantFilterSet):
    class Meta:
        model = TargetPlan
        fields = ["fiscal_year", "metric", "status"]


class TargetPlanViewSet(
    TenantViewMixin[TargetPlan],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[TargetPlan],
):
    """Annual goals. Admins and managers of the whole organisation create, decompose,
    publish and lock them (the services check); everyone in the tenant reads them."""

    model = TargetPlan
    serializer_class = TargetPlanSerializer
    filterset_class = PlanFilter
    ordering = ["-fiscal_year", "metric", "name"]

    def visible_queryset(self, member: Membership) -> QuerySet[TargetPlan]:
        return TargetPlan.objects.all()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan = services.plan_create(member=self.membership, **serializer.validated_data)
        return Response(self.get_serializer(plan).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: TargetPlan) -> None:
        services.plan_delete(member=self.membership, plan=instance)

    @extend_schema(request=PlanUpdateSerializer, responses=TargetPlanSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Rename a draft or change its annual total (which removes its decomposition:
        ``targets_removed`` says how many series; decompose it again)."""
        plan = self.get_object()  # another tenant's plan is a 404 whatever the body
        serializer = PlanUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        plan, removed = services.plan_update(
            member=self.membership, plan=plan, **serializer.validated_data
        )
        return Response({**self.get_serializer(plan).data, "targets_removed": removed})

    @extend_schema(request=DecomposeSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def decompose(self, request: Request, pk: str | None = None) -> Response:
        """Split the annual goal over the org tree, product lines and months. With
        ``dry_run`` the whole tree comes back and nothing is saved."""
        plan = self.get_object()
        payload = DecomposeSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        settings = payload.settings()
        if "manual" not in payload.validated_data and plan.settings.get("manual"):
            # Manual values recorded by an import (or the last decomposition).
            settings.manual = {k: Decimal(str(v)) for k, v in plan.settings["manual"].items()}
        result = services.plan_decompose(
            member=self.membership,
            plan=plan,
            settings=settings,
            dry_run=payload.validated_data["dry_run"],
        )
        return Response(result.as_json())

    @extend_schema(request=None, responses=TargetPlanSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        plan = services.plan_publish(member=self.membership, plan=self.get_object())
        return Response(self.get_serializer(plan).data)

    @extend_schema(request=None, responses=TargetPlanSerializer)
    @action(detail=True, methods=["post"])
    def lock(self, request: Request, pk: str | None = None) -> Response:
        plan = services.plan_lock(member=self.membership, plan=self.get_object())
        return Response(self.get_serializer(plan).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("as_of", OpenApiTypes.DATE),
            OpenApiParameter("period_kind", OpenApiTypes.STR, enum=PeriodKind.values),
            OpenApiParameter("period_index", OpenApiTypes.INT),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=True, methods=["get"])
    def achievement(self, request: Request, pk: str | None = None) -> Response:
        """Achievement of every node the caller can see, for one period (default: the
        year), in a fixed number of queries: a manager's whole team in one request."""
        plan = self.get_object()
        as_of = as_of_for_plan(request, plan)
        kind = request.query_params.get("period_kind", PeriodKind.YEAR)
        if kind not in PeriodKind.values:
            raise ValidationError({"period_kind": [_("Choose year, quarter or month.")]})
        nodes = visible_targets(self.membership).filter(
            plan=plan, period_kind=kind, product_line__isnull=True
        )
        if "period_index" in request.query_params:
            try:
                nodes = nodes.filter(period_index=int(request.query_params["period_index"]))
            except ValueError as error:
                raise ValidationError({"period_index": [_("A whole number.")]}) from error
        chosen = list(nodes.order_by("org_unit", "member"))
        results = plan_achievements(plan, as_of, chosen)
        return Response(
            {
                "plan": plan.pk,
                "as_of": as_of,
                "nodes": [
                    {
                        "target": node.pk,
                        "org_unit": node.org_unit_id,
                        "member": node.member_id,
                        "period_kind": node.period_kind,
                        "period_index": node.period_index,
                        **achievement_json(results[node.pk]),
                    }
                    for node in chosen
                ],
            }
        )

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def reconciliation(self, request: Request, pk: str | None = None) -> Response:
        """Top-down targets beside bottom-up commitments and their difference, per node."""
        plan = self.get_object()
        commitments = {
            (c.period_kind, c.period_index, c.org_unit_id, c.member_id): c.value
            for c in Commitment.objects.filter(plan=plan)
        }
        rows = []
        visible = visible_targets(self.membership).filter(plan=plan, product_line__isnull=True)
        for target in visible.order_by("period_kind", "period_index", "org_unit", "member"):
            key = (target.period_kind, target.period_index, target.org_unit_id, target.member_id)
            bottom_up = commitments.get(key)
            if bottom_up is None:
                continue
            rows.append(
                {
                    "target": target.pk,
                    "period_kind": target.period_kind,
                    "period_index": target.period_index,
                    "org_unit": target.org_unit_id,
                    "member": target.member_id,
                    "top_down": str(target.value),
                    "bottom_up": str(bottom_up),
                    "difference": str(bottom_up - (target.value or Decimal(0))),
                }
            )
        return Response({"plan": plan.pk, "rows": rows})


# --- targets -----------------------------------------------------------------------------


class TargetSerializer(ModelSerializer[Target]):
    fiscal_year = serializers.IntegerField(source="plan.fiscal_year", read_only=True)
    metric = serializers.CharField(source="plan.metric", read_only=True)

    class Meta:
        model = Target
        fields = [
            "id",
            "plan",
            "fiscal_year",
            "metric",
            "period_kind",
            "period_index",
            "period_start",
            "period_end",
            "org_unit",
            "member",
            "product_line",
            "value",
            "version",
            "updated_at",
        ]
        read_only_fields = fields


class TargetFilter(SyncFilterSet):
    fiscal_year = django_filters.NumberFilter(field_name="plan__fiscal_year")
    metric = django_filters.CharFilter(field_name="plan__metric")
    no_product_line = django_filters.BooleanFilter(
        field_name="product_line", lookup_expr="isnull", help_text=_("Only totals.")
    )

    class Meta:
        model = Target
        fields = ["plan", "period_kind", "period_index", "member", "org_unit", "product_line"]


class AdjustSerializer(serializers.Serializer[Any]):
    new_value = serializers.DecimalField(min_value=0, **VALUE)
    reason = serializers.CharField(max_length=2000)
    trigger = serializers.ChoiceField(AdjustmentTrigger.choices)
    effective_from = serializers.DateField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class AdjustmentSerializer(ModelSerializer[TargetAdjustment]):
    target = serializers.IntegerField(
        source="target_id", read_only=True, help_text=_("The period target's id.")
    )

    class Meta:
        model = TargetAdjustment
        fields = [
            "id",
            "target",
            "old_value",
            "new_value",
            "target_version",
            "reason",
            "trigger",
            "status",
            "requested_by",
            "approved_by",
            "self_approved",
            "effective_from",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


class TargetViewSet(TenantViewMixin[Target], viewsets.ReadOnlyModelViewSet[Target]):
    """Target nodes within the caller's visibility, with achievement and adjustment."""

    model = Target
    serializer_class = TargetSerializer
    filterset_class = TargetFilter
    ordering_fields = ["period_start", "value", "updated_at"]
    ordering = ["plan", "period_kind", "period_index", "id"]

    def visible_queryset(self, member: Membership) -> QuerySet[Target]:
        return visible_targets(member).select_related("plan")

    def get_object(self) -> Target:
        # By series and period code (the public id split), not by the view's id.
        target = get_target(self.filter_queryset(self.get_queryset()), self.kwargs["pk"])
        self.check_object_permissions(self.request, target)
        return target

    @extend_schema(
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE)], responses=OpenApiTypes.OBJECT
    )
    @action(detail=True, methods=["get"])
    def achievement(self, request: Request, pk: str | None = None) -> Response:
        """Actual, attainment, expected to date, pace, status, gap, required per day and
        projections as of ``as_of`` (default today)."""
        target = self.get_object()
        as_of = as_of_for_plan(request, target.plan)
        result = plan_achievements(target.plan, as_of, [target])[target.pk]
        return Response({"target": target.pk, "as_of": as_of, **achievement_json(result)})

    @extend_schema(request=AdjustSerializer, responses=AdjustmentSerializer)
    @action(detail=True, methods=["post"])
    def adjust(self, request: Request, pk: str | None = None) -> Response:
        """Change a published target with a reason (applied at once), or request a change
        of a locked one (applied when approved)."""
        target = self.get_object()
        payload = AdjustSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        adjustment = services.target_adjust(
            member=self.membership,
            target=target,
            new_value=data["new_value"],
            reason=data["reason"],
            trigger=data["trigger"],
            effective_from=data.get("effective_from"),
            expected_version=data.get("version"),
        )
        return Response(AdjustmentSerializer(adjustment).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=AdjustmentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def adjustments(self, request: Request, pk: str | None = None) -> Response:
        """The target's history of adjustments, newest first."""
        target = self.get_object()
        history = TargetAdjustment.objects.filter(
            series_id=target.series_id, period_code=target.period_code
        ).order_by("-created_at", "-id")
        page: Any = self.paginate_queryset(history)  # type: ignore[arg-type]
        return self.get_paginated_response(AdjustmentSerializer(page, many=True).data)


class AdjustmentFilter(TenantFilterSet):
    target = django_filters.NumberFilter(
        method="filter_target", help_text=_("A target's id: its adjustments.")
    )

    class Meta:
        model = TargetAdjustment
        fields = ["status", "trigger", "target"]

    def filter_target(
        self, queryset: QuerySet[TargetAdjustment], name: str, value: Decimal
    ) -> QuerySet[TargetAdjustment]:
        return queryset.filter(target_ids_q([value]))


class TargetAdjustmentViewSet(
    TenantViewMixin[TargetAdjustment], viewsets.ReadOnlyModelViewSet[TargetAdjustment]
):
    """Adjustments of the targets the caller can see; approve or reject requests."""

    model = TargetAdjustment
    serializer_class = AdjustmentSerializer
    filterset_class = AdjustmentFilter
    ordering = ["-created_at"]

    def visible_queryset(self, member: Membership) -> QuerySet[TargetAdjustment]:
        return TargetAdjustment.objects.filter(series__in=visible_series(member).values("pk"))

    @extend_schema(request=None, responses=AdjustmentSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        decided = services.adjustment_decide(
            member=self.membership, adjustment=self.get_object(), approve=True
        )
        return Response(AdjustmentSerializer(decided).data)

    @extend_schema(request=None, responses=AdjustmentSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: str | None = None) -> Response:
        decided = services.adjustment_decide(
            member=self.membership, adjustment=self.get_object(), approve=False
        )
        return Response(AdjustmentSerializer(decided).data)


# --- commitments ----------------------------------------------------------------------


class CommitmentSerializer(ModelSerializer[Commitment]):
    plan = VisiblePrimaryKeyField(TargetPlan)
    org_unit = VisiblePrimaryKeyField(
        OrgUnit, tenancy_selectors.visible_org_units, required=False, allow_null=True
    )
    member = VisiblePrimaryKeyField(
        Membership,
        tenancy_selectors.visible_memberships,
        required=False,
        allow_null=True,
        help_text=_("Whom the commitment is for: yourself (the default) or nobody for a unit."),
    )
    value = serializers.DecimalField(min_value=0, **VALUE)

    class Meta:
        model = Commitment
        fields = [
            "id",
            "plan",
            "period_kind",
            "period_index",
            "org_unit",
            "member",
            "value",
            "note",
            "submitted_by",
            "submitted_at",
            "version",
        ]
        read_only_fields = ["id", "submitted_by", "submitted_at", "version"]


class CommitmentChangeSerializer(serializers.Serializer[Any]):
    value = serializers.DecimalField(min_value=0, required=False, **VALUE)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)
    version = serializers.IntegerField(
        min_value=1, help_text=_("The version you last read. A stale one answers 409.")
    )


class CommitmentViewSet(
    TenantViewMixin[Commitment],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Commitment],
):
    """Bottom-up commitments: members for themselves, managers for their units. One per
    plan, period and assignee (a second ``POST`` is a 409); ``PATCH`` with ``version``."""

    model = Commitment
    serializer_class = CommitmentSerializer
    ordering = ["plan", "period_kind", "period_index"]

    def visible_queryset(self, member: Membership) -> QuerySet[Commitment]:
        return visible_commitments(member)

    def get_serializer_class(self) -> Any:
        if self.action == "partial_update":  # the body of a change: value, note, version
            return CommitmentChangeSerializer
        return CommitmentSerializer

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        commitment = services.commitment_submit(
            member=self.membership,
            plan=data["plan"],
            period_kind=data["period_kind"],
            period_index=data["period_index"],
            value=data["value"],
            assignee_member=data.get("member"),
            assignee_unit=data.get("org_unit"),
            note=data.get("note", ""),
        )
        return Response(self.get_serializer(commitment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CommitmentChangeSerializer, responses=CommitmentSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        commitment = self.get_object()
        change = CommitmentChangeSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        data = change.validated_data
        updated = services.commitment_update(
            member=self.membership,
            commitment=commitment,
            expected_version=data["version"],
            value=data.get("value"),
            note=data.get("note"),
        )
        return Response(CommitmentSerializer(updated, context=self.get_serializer_context()).data)


# --- me --------------------------------------------------------------------------------


class MyTargetsView(APIView):
    """The caller's targets for the fiscal year containing ``as_of``, with achievement:
    what a rep's phone shows every morning."""

    @extend_schema(
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE)],
        responses=inline_serializer(
            "MyTargets", {"as_of": serializers.DateField(), "targets": serializers.ListField()}
        ),
    )
    def get(self, request: Request) -> Response:
        member: Membership = request.membership  # type: ignore[attr-defined]
        as_of = as_of_today(request, member)
        nodes = list(
            Target.objects.filter(
                member=member,
                period_start__lte=as_of,
                period_end__gte=as_of,
                plan__status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
            )
            .select_related("plan")
            .order_by("plan", "product_line", "period_kind")
        )
        by_plan: dict[int, list[Target]] = defaultdict(list)
        for node in nodes:
            by_plan[node.plan_id].append(node)
        rows = []
        for plan_nodes in by_plan.values():
            plan = plan_nodes[0].plan
            results = plan_achievements(plan, as_of, plan_nodes)
            for node in plan_nodes:
                rows.append(
                    {
                        **TargetSerializer(node).data,
                        "achievement": achievement_json(results[node.pk]),
                    }
                )
        return Response({"as_of": as_of, "targets": rows})


router = ApiRouter()
router.include_root_view = False
router.register("target-plans", TargetPlanViewSet, basename="target-plan")
router.register("targets", TargetViewSet, basename="target")
router.register("target-adjustments", TargetAdjustmentViewSet, basename="target-adjustment")
router.register("commitments", CommitmentViewSet, basename="commitment")

urlpatterns = [
    path("me/targets/", MyTargetsView.as_view(), name="me-targets"),
    *router.urls,
]
