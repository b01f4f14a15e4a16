"""Incentives API (SPEC sections 6 and 8): point rules, points, leaderboards, commission
plans and statements, and the phone's ``me/incentives/``. Thin views: they validate,
call ``incentives.services``/``incentives.commissions`` or a selector, and serialize;
the domain's errors become 400/403/404/409 at the edge."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet, Sum
from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from incentives import commissions, selectors
from incentives.models import (
    CommissionAssignment,
    CommissionPlan,
    CommissionStatement,
    LineDispute,
    PointEntry,
    PointRule,
    StatementLine,
)
from tenancy import selectors as tenancy_selectors
from tenancy.api.base import TenantViewMixin, date_param
from tenancy.api.filters import TenantFilterSet
from tenancy.api.routers import ApiRouter
from tenancy.api.serializers import ModelSerializer
from tenancy.dates import tenant_today
from tenancy.models import Membership, Tenant
from tenancy.permissions import IsTenantAdminOrReadOnly


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValidationError({name: [_("A whole number.")]}) from error


def _today(request: Request) -> Any:
    return date_param(request, "as_of") or tenant_today(
        Tenant.objects.get(pk=request.membership.tenant_id)  # type: ignore[attr-defined]
    )


# --- point rules and points ------------------------------------------------------------------


class PointRuleSerializer(ModelSerializer[PointRule]):
    class Meta:
        model = PointRule
        fields = ["id", "event", "points", "daily_cap", "is_active", "updated_at"]
        read_only_fields = ["id", "updated_at"]

    def validate_event(self, value: str) -> str:
        taken = PointRule.objects.filter(event=value)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError(_("This event has a rule already; change that one."))
        return value


class PointRuleViewSet(TenantViewMixin[PointRule], viewsets.ModelViewSet[PointRule]):
    """Which events earn how many points, with an optional daily cap; admins write."""

    model = PointRule
    serializer_class = PointRuleSerializer
    permission_classes = [IsTenantAdminOrReadOnly]
    ordering = ["event"]

    def visible_queryset(self, member: Membership) -> QuerySet[PointRule]:
        return PointRule.objects.all()

    def perform_create(self, serializer: serializers.BaseSerializer[PointRule]) -> None:
        serializer.save(tenant_id=self.membership.tenant_id)

    def perform_destroy(self, instance: PointRule) -> None:
        # The ledger keeps its rows: a rule that has awarded points is deactivated.
        if PointEntry.objects.filter(rule=instance).exists():
            instance.is_active = False
            instance.save(update_fields=["is_active", "updated_at"])
        else:
            instance.delete()


class PointEntrySerializer(ModelSerializer[PointEntry]):
    event_label = serializers.CharField(source="get_event_display", read_only=True)

    class Meta:
        model = PointEntry
        fields = [
            "id",
            "member",
            "rule",
            "event",
            "event_label",
            "source_type",
            "source_id",
            "kind",
            "points",
            "capped",
            "day",
            "occurred_at",
        ]
        read_only_fields = fields


class PointEntryFilter(TenantFilterSet):
    class Meta:
        model = PointEntry
        fields = {"member": ["exact"], "event": ["exact"], "kind": ["exact"], "day": ["gte", "lte"]}


class PointEntryViewSet(TenantViewMixin[PointEntry], viewsets.ReadOnlyModelViewSet[PointEntry]):
    """The points ledger: a rep their own rows, a manager their subtree's, an admin all."""

    model = PointEntry
    serializer_class = PointEntrySerializer
    filterset_class = PointEntryFilter
    ordering_fields = ["occurred_at", "day", "points"]
    ordering = ["-occurred_at", "-id"]

    def visible_queryset(self, member: Membership) -> QuerySet[PointEntry]:
        return selectors.visible_point_entries(member)


# --- leaderboards ----------------------------------------------------------------------------


def board_json(board: selectors.Board) -> dict[str, Any]:
    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "unit": board.unit.pk,
        "unit_name": board.unit.name,
        "by": board.by,
        "metric": board.metric,
        "period": {"kind": board.period.kind, "start": board.period.start, "end": board.period.end},
        "as_of": board.as_of,
        "snapshot_at": board.snapshot_at,
        "money_hidden": board.money_hidden,
        "rows": [
            {
                "member": row.member_id,
                "name": row.name,
                "value": text(row.value),
                "rank": row.rank,
                "previous_rank": row.previous_rank,
                "actual": text(row.actual),
                "target": text(row.target),
            }
            for row in board.rows
        ],
    }


LEADERBOARD_PARAMETERS = [
    OpenApiParameter("unit", OpenApiTypes.INT, description="Default: your own unit"),
    OpenApiParameter("period", OpenApiTypes.STR, enum=list(selectors.PERIOD_KINDS)),
    OpenApiParameter("as_of", OpenApiTypes.DATE, description="Default: the tenant's today"),
    OpenApiParameter("by", OpenApiTypes.STR, enum=list(selectors.BOARD_KINDS)),
    OpenApiParameter("metric", OpenApiTypes.STR, description="For attainment and metric"),
    OpenApiParameter("snapshot", OpenApiTypes.BOOL, description="The night's board"),
]


class LeaderboardView(GenericAPIView[Any]):
    """A unit's subtree ranked for a period by points, attainment or a metric."""

    @extend_schema(parameters=LEADERBOARD_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        board = selectors.leaderboard(
            viewer=request.membership,  # type: ignore[attr-defined]
            unit_id=_int_param(request, "unit"),
            period_kind=request.query_params.get("period", "month"),
            as_of=date_param(request, "as_of"),
            by=request.query_params.get("by", "points"),
            metric=request.query_params.get("metric") or None,
            snapshot=request.query_params.get("snapshot") in ("1", "true", "yes"),
        )
        return Response(board_json(board))


# --- commission plans ------------------------------------------------------------------------


class CommissionPlanSerializer(ModelSerializer[CommissionPlan]):
    bands = serializers.JSONField()
    multipliers = serializers.JSONField(required=False)
    cap = serializers.DecimalField(max_digits=18, decimal_places=2, required=False, allow_null=True)

    class Meta:
        model = CommissionPlan
        fields = [
            "id",
            "name",
            "statement_period",
            "attainment_metric",
            "base_metric",
            "bands",
            "mode",
            "cap",
            "multipliers",
            "version",
            "is_active",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "updated_at"]


class AssignmentSerializer(ModelSerializer[CommissionAssignment]):
    class Meta:
        model = CommissionAssignment
        fields = ["id", "plan", "member", "org_unit", "effective_from", "effective_to"]
        read_only_fields = ["id", "plan"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        member: Membership = self.context["request"].membership
        if attrs.get("member") is not None:
            tenancy_selectors.get_visible_membership(member, attrs["member"].pk)
        if attrs.get("org_unit") is not None:
            tenancy_selectors.get_visible_org_unit(member, attrs["org_unit"].pk)
        return attrs


class CommissionPlanViewSet(
    TenantViewMixin[CommissionPlan],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[CommissionPlan],
):
    """Commission plans; a change of terms makes a new version. Admins write."""

    model = CommissionPlan
    serializer_class = CommissionPlanSerializer
    permission_classes = [IsTenantAdminOrReadOnly]
    ordering = ["name"]

    def visible_queryset(self, member: Membership) -> QuerySet[CommissionPlan]:
        return CommissionPlan.objects.all()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        payload = self.get_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        plan = commissions.plan_create(actor=self.membership, **payload.validated_data)
        return Response(self.get_serializer(plan).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        plan = self.get_object()
        payload = self.get_serializer(plan, data=request.data, partial=kwargs.get("partial", False))
        payload.is_valid(raise_exception=True)
        plan = commissions.plan_update(actor=self.membership, plan=plan, **payload.validated_data)
        return Response(self.get_serializer(plan).data)

    @extend_schema(request=AssignmentSerializer, responses=AssignmentSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def assignments(self, request: Request, pk: str | None = None) -> Response:
        """GET the plan's assignments; POST one (a member or a unit, with dates)."""
        plan = self.get_object()
        if request.method == "POST":
            payload = AssignmentSerializer(data=request.data, context={"request": request})
            payload.is_valid(raise_exception=True)
            created = commissions.assignment_add(
                actor=self.membership, plan=plan, **payload.validated_data
            )
            return Response(AssignmentSerializer(created).data, status=status.HTTP_201_CREATED)
        rows = CommissionAssignment.objects.filter(plan=plan).order_by("effective_from", "id")
        return Response(AssignmentSerializer(rows, many=True).data)


# --- statements ------------------------------------------------------------------------------


class DisputeSerializer(ModelSerializer[LineDispute]):
    class Meta:
        model = LineDispute
        fields = [
            "id",
            "line",
            "raised_by",
            "comment",
            "status",
            "resolution",
            "resolved_by",
            "resolved_at",
            "adjustment",
            "created_at",
        ]
        read_only_fields = fields


class StatementLineSerializer(ModelSerializer[StatementLine]):
    explanation = serializers.SerializerMethodField()
    disputes = DisputeSerializer(many=True, read_only=True)

    class Meta:
        model = StatementLine
        fields = ["id", "kind", "amount", "inputs", "corrects", "explanation", "disputes"]
        read_only_fields = fields

    def get_explanation(self, line: StatementLine) -> str:
        return commissions.line_explanation(line)


class StatementSerializer(ModelSerializer[CommissionStatement]):
    lines = StatementLineSerializer(many=True, read_only=True)
    # A plain string in the schema: an enum of month/quarter would collide with the
    # targets' period kinds under the same field name.
    period_kind = serializers.CharField(read_only=True, help_text=_("month or quarter"))

    class Meta:
        model = CommissionStatement
        fields = [
            "id",
            "member",
            "plan",
            "period_kind",
            "period_start",
            "period_end",
            "status",
            "total",
            "as_of",
            "computed_at",
            "approved_by",
            "approved_at",
            "locked_by",
            "locked_at",
            "lines",
        ]
        read_only_fields = fields


class StatementFilter(TenantFilterSet):
    class Meta:
        model = CommissionStatement
        fields = {
            "member": ["exact"],
            "plan": ["exact"],
            "status": ["exact"],
            "period_start": ["exact", "gte", "lte"],
        }


class DisputePayload(serializers.Serializer[Any]):
    line = serializers.IntegerField()
    comment = serializers.CharField(max_length=2000)


class ResolvePayload(serializers.Serializer[Any]):
    dispute = serializers.IntegerField()
    accept = serializers.BooleanField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)
    reason = serializers.CharField(max_length=2000)


class CommissionStatementViewSet(
    TenantViewMixin[CommissionStatement], viewsets.ReadOnlyModelViewSet[CommissionStatement]
):
    """Statements with their lines, explanations and disputes: a rep their own, a manager
    their subtree's, an admin all (others answer 404)."""

    model = CommissionStatement
    serializer_class = StatementSerializer
    filterset_class = StatementFilter
    ordering_fields = ["period_start", "total", "status"]
    ordering = ["-period_start", "member", "id"]

    def visible_queryset(self, member: Membership) -> QuerySet[CommissionStatement]:
        return commissions.visible_statements_for(member).prefetch_related(
            Prefetch(
                "lines",
                queryset=StatementLine.objects.order_by("id").prefetch_related("disputes"),
            )
        )

    def _answer(self, statement: CommissionStatement) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=statement.pk)).data)

    @extend_schema(request=None, responses=StatementSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: str | None = None) -> Response:
        """draft → approved, by a manager above the member or an admin (one of many wins)."""
        return self._answer(commissions.statement_approve(actor=self.membership, statement_id=pk))

    @extend_schema(request=None, responses=StatementSerializer)
    @action(detail=True, methods=["post"])
    def lock(self, request: Request, pk: str | None = None) -> Response:
        """approved → locked, by an admin, for payroll."""
        return self._answer(commissions.statement_lock(actor=self.membership, statement_id=pk))

    @extend_schema(request=None, responses=StatementSerializer)
    @action(detail=True, methods=["post"])
    def recompute(self, request: Request, pk: str | None = None) -> Response:
        """Recompute a draft now (``as_of``, default today)."""
        statement = commissions.statement_recompute(
            actor=self.membership, statement_id=pk, as_of=_today(request)
        )
        return self._answer(statement)

    @extend_schema(request=DisputePayload, responses=DisputeSerializer)
    @action(detail=True, methods=["post"])
    def dispute(self, request: Request, pk: str | None = None) -> Response:
        """The member disputes a line with a comment."""
        self.get_object()  # an invisible statement is a 404 before the body is read
        payload = DisputePayload(data=request.data)
        payload.is_valid(raise_exception=True)
        created = commissions.line_dispute(
            actor=self.membership,
            statement_id=pk,
            line_id=payload.validated_data["line"],
            comment=payload.validated_data["comment"],
        )
        return Response(DisputeSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ResolvePayload, responses=DisputeSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """The approver answers a dispute: an adjustment of ``amount``, or a rejection."""
        self.get_object()  # an invisible statement is a 404 before the body is read
        payload = ResolvePayload(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        answered = commissions.dispute_resolve(
            actor=self.membership,
            statement_id=pk,
            dispute_id=data["dispute"],
            accept=data["accept"],
            amount=data.get("amount"),
            reason=data["reason"],
            as_of=_today(request),
        )
        return Response(DisputeSerializer(answered).data)


# --- the phone -------------------------------------------------------------------------------


class MyIncentivesView(GenericAPIView[Any]):
    """The rep's phone: today's and the month's points and why, their rank on their unit's
    points board, and what their commission would be at the current attainment."""

    @extend_schema(
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE)], responses=OpenApiTypes.OBJECT
    )
    def get(self, request: Request) -> Response:
        member: Membership = request.membership  # type: ignore[attr-defined]
        today = _today(request)
        tenant = Tenant.objects.get(pk=member.tenant_id)
        month = selectors.period_of(tenant, "month", today)
        mine = PointEntry.objects.filter(member=member)
        today_rows = list(mine.filter(day=today).order_by("occurred_at", "id"))
        month_points = mine.filter(day__range=(month.start, today)).aggregate(total=Sum("points"))
        rank = None
        if member.org_unit_id is not None:
            board = selectors.leaderboard(viewer=member, period_kind="month", as_of=today)
            rank = next(
                (
                    {"rank": row.rank, "previous_rank": row.previous_rank, "of": len(board.rows)}
                    for row in board.rows
                    if row.member_id == member.pk
                ),
                None,
            )
        return Response(
            {
                "as_of": today,
                "points_today": sum(row.points for row in today_rows),
                "points_today_entries": PointEntrySerializer(today_rows, many=True).data,
                "points_this_month": month_points["total"] or 0,
                "month": {"start": month.start, "end": month.end},
                "rank_this_month": rank,
                "commission_estimates": [
                    {**estimate, "amount": str(estimate["amount"])}
                    for estimate in commissions.statement_estimates(member=member, as_of=today)
                ],
            }
        )


router = ApiRouter()
router.include_root_view = False
router.register("point-rules", PointRuleViewSet, basename="point-rule")
router.register("points", PointEntryViewSet, basename="point")
router.register("commission-plans", CommissionPlanViewSet, basename="commission-plan")
router.register(
    "commission-statements", CommissionStatementViewSet, basename="commission-statement"
)

urlpatterns = [
    path("leaderboards/", LeaderboardView.as_view(), name="leaderboards"),
    path("me/incentives/", MyIncentivesView.as_view(), name="me-incentives"),
    *router.urls,
]
