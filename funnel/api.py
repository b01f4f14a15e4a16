"""Funnel API (SPEC sections 5 and 8): conversion, loss, cycle, weighted pipeline, stale
deals, plan to close, alerts and warning rules. Every figure is computed within the
caller's visibility, narrowed by ``pipeline``, ``org_unit`` or ``member`` (and the
figures by ``product_line``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from crm.models import Opportunity, Pipeline, ProductLine
from funnel import selectors
from funnel.models import Alert, AlertStatus, RuleKey, WarningRule, clean_thresholds
from funnel.plan import HistoryMemo, plan_to_close
from funnel.review_api import ReviewViewSet, TargetReviewView
from funnel.warnings import alert_message, ensure_rules, visible_alerts
from targets.api import as_of_for_plan, as_of_today
from targets.calendar import period_containing
from targets.models import PeriodKind, PlanStatus, Target
from targets.selectors import get_visible_target
from tenancy import selectors as tenancy_selectors
from tenancy.api.base import TenantViewMixin, date_param
from tenancy.api.filters import TenantFilterSet
from tenancy.api.routers import ApiRouter
from tenancy.api.serializers import ModelSerializer
from tenancy.models import Membership, Tenant
from tenancy.money import round_money
from tenancy.permissions import IsTenantAdminOrReadOnly

WINDOW_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.DATE, description="First day (default: quarter start)"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Last day (default: quarter end)"),
    OpenApiParameter("pipeline", OpenApiTypes.INT, description="Default: the default pipeline"),
    OpenApiParameter("org_unit", OpenApiTypes.INT, description="Only this unit's subtree"),
    OpenApiParameter("member", OpenApiTypes.INT, description="Only this member's deals"),
]
FIGURE_PARAMETERS = [
    *WINDOW_PARAMETERS,
    OpenApiParameter(
        "product_line", OpenApiTypes.INT, description="Only this product line's deals"
    ),
]


def _id(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)  # type: ignore[arg-type]
    except ValueError as error:
        raise ValidationError({name: [_("A whole number.")]}) from error


def scope_and_window(request: Request) -> tuple[selectors.Scope, selectors.Window]:
    """The funnel question of a request; out-of-sight ids are 404 like unknown ones."""
    member: Membership = request.membership  # type: ignore[attr-defined]
    tenant = Tenant.objects.get(pk=member.tenant_id)
    today = timezone.now().astimezone(ZoneInfo(tenant.time_zone)).date()
    quarter = period_containing(today, "quarter", tenant.fiscal_year_start_month)
    window = selectors.Window(
        date_param(request, "start") or quarter.start,
        date_param(request, "end") or quarter.end,
        tenant.time_zone,
    )
    if window.end < window.start:
        raise ValidationError({"end": [_("The window ends before it starts.")]})
    if (window.end - window.start).days > 3 * 366:
        raise ValidationError({"end": [_("Windows are at most three years long.")]})
    pipeline_id = _id(request, "pipeline")
    pipelines = Pipeline.objects.all()
    pipeline = (
        pipelines.filter(pk=pipeline_id).first()
        if pipeline_id is not None
        else pipelines.filter(is_default=True).first()
    )
    if pipeline is None:
        raise NotFound()
    unit = None
    unit_id = _id(request, "org_unit")
    if unit_id is not None:
        unit = tenancy_selectors.get_visible_org_unit(member, unit_id)
    person = None
    member_id = _id(request, "member")
    if member_id is not None:
        person = tenancy_selectors.get_visible_membership(member, member_id)
    return selectors.Scope(caller=member, pipeline=pipeline, org_unit=unit, member=person), window


def product_line_param(request: Request) -> ProductLine | None:
    """The ``product_line`` filter: a 400 naming it for an unknown (or another tenant's) id,
    as the list filters answer."""
    line_id = _id(request, "product_line")
    if line_id is None:
        return None
    line = ProductLine.objects.filter(pk=line_id).first()
    if line is None:
        raise ValidationError({"product_line": [_("No such product line.")]})
    return line


def _window_json(window: selectors.Window) -> dict[str, Any]:
    return {"start": window.start, "end": window.end}


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class FunnelView(GenericAPIView):
    """Base of the funnel figures: GET only, one scope and window per request."""

    def figures(
        self, scope: selectors.Scope, window: selectors.Window, *, line: ProductLine | None
    ) -> dict[str, Any]:
        raise NotImplementedError

    @extend_schema(parameters=FIGURE_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        scope, window = scope_and_window(request)
        line = product_line_param(request)
        return Response(
            {
                "window": _window_json(window),
                "pipeline": scope.pipeline.pk,
                "org_unit": scope.org_unit.pk if scope.org_unit else None,
                "member": scope.member.pk if scope.member else None,
                "product_line": line.pk if line else None,
                **self.figures(scope, window, line=line),
            }
        )


class ConversionView(FunnelView):
    """Cohort conversion per stage of the deals created in the window, the cohort win
    rate and the closed win rate (won / (won + lost) closed in the window)."""

    def figures(
        self, scope: selectors.Scope, window: selectors.Window, *, line: ProductLine | None
    ) -> dict[str, Any]:
        cohort = selectors.cohort_conversion(scope, window, product_line=line)
        names = {str(s.pk): str(s) for s in selectors.open_stages(scope.pipeline)}
        won_name = selectors.won_stage_name(scope.pipeline)
        closed = selectors.closed_win_rate(scope, window, product_line=line)
        return {
            "created": cohort.created,
            "won": cohort.won,
            "cohort_win_rate": _text(cohort.win_rate),
            "stages": [
                {
                    "stage": int(row.stage),
                    "name": names[row.stage],
                    "reached": row.reached,
                    "next_stage": names.get(row.next_stage, won_name),
                    "next_reached": row.next_reached,
                    "rate_to_next_stage": _text(row.rate_to_next_stage),
                }
                for row in cohort.stages
            ],
            "closed": {**closed, "win_rate": _text(closed["win_rate"])},
        }


class LossView(FunnelView):
    """Lost deals by the last open stage before the loss, with reasons and amounts."""

    def figures(
        self, scope: selectors.Scope, window: selectors.Window, *, line: ProductLine | None
    ) -> dict[str, Any]:
        rows = selectors.loss_by_stage(scope, window, product_line=line)
        return {"losses": [{**row, "amount": str(row["amount"])} for row in rows]}


class CycleView(FunnelView):
    """Time in stage (mean, median days, exits in the window) and creation → won cycle."""

    def figures(
        self, scope: selectors.Scope, window: selectors.Window, *, line: ProductLine | None
    ) -> dict[str, Any]:
        def days(row: dict[str, Any]) -> dict[str, Any]:
            return {
                key: _text(value) if isinstance(value, Decimal) else value
                for key, value in row.items()
            }

        return {
            "time_in_stage": [
                days(row) for row in selectors.time_in_stage(scope, window, product_line=line)
            ],
            "cycle": days(selectors.cycle_time(scope, window, product_line=line)),
        }


class PipelineView(FunnelView):
    """Weighted pipeline of open deals expected to close in the window, by forecast
    category."""

    def figures(
        self, scope: selectors.Scope, window: selectors.Window, *, line: ProductLine | None
    ) -> dict[str, Any]:
        result = selectors.weighted_pipeline(scope, window, product_line=line)
        currency = scope.caller.tenant.currency  # the caller's tenant, loaded with them

        def money(bucket: dict[str, Any]) -> dict[str, Any]:
            # Shown half-up to the currency's minor unit (SPEC preamble), once, here.
            return {
                "deals": bucket["deals"],
                "amount": str(round_money(Decimal(bucket["amount"]), currency)),
                "weighted": str(round_money(Decimal(bucket["weighted"]), currency)),
            }

        return {
            "total": money(result["total"]),
            "by_forecast_category": {
                key: money(bucket) for key, bucket in result["by_forecast_category"].items()
            },
        }


class StaleDealSerializer(ModelSerializer[Opportunity]):
    last_touch = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "name",
            "customer",
            "owner",
            "stage",
            "amount",
            "stage_entered_at",
            "last_touch",
        ]
        read_only_fields = fields


class StaleView(GenericAPIView):
    """Open deals idle longer than their stage's rot days, oldest first (paginated)."""

    serializer_class = StaleDealSerializer
    queryset = Opportunity.objects.none()  # for the schema; rows come from the selector

    @extend_schema(parameters=WINDOW_PARAMETERS[2:], responses=StaleDealSerializer(many=True))
    def get(self, request: Request) -> Response:
        scope, _window = scope_and_window(request)
        rules = {rule.key: rule for rule in ensure_rules(scope.caller.tenant_id)}
        default_rot = int(rules[RuleKey.STALE_DEAL].threshold("default_rot_days"))
        rows = selectors.stale_deals(scope, default_rot_days=default_rot)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


# --- plan to close ------------------------------------------------------------------


PLAN_PERIODS = (PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR)


class TargetPlanToCloseView(GenericAPIView):
    """What the target's assignee still needs to close its gap: wins, stage entries, new
    opportunities, leads and verified visits, with the rates and their fallback level."""

    @extend_schema(
        parameters=[OpenApiParameter("as_of", OpenApiTypes.DATE)], responses=OpenApiTypes.OBJECT
    )
    def get(self, request: Request, pk: str) -> Response:
        member: Membership = request.membership  # type: ignore[attr-defined]
        target = get_visible_target(member, pk)
        return Response(plan_to_close(target, as_of_for_plan(request, target.plan)))


class MyPlanToCloseView(GenericAPIView):
    """Plan to close for the caller's own won-amount targets of the periods containing
    ``as_of``: the month, the quarter and the year together (a met month says nothing
    about a quarter that still has a gap), or only the ``period_kind`` asked for."""

    @extend_schema(
        parameters=[
            OpenApiParameter("as_of", OpenApiTypes.DATE),
            OpenApiParameter(
                "period_kind", OpenApiTypes.STR, enum=[kind.value for kind in PLAN_PERIODS]
            ),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        member: Membership = request.membership  # type: ignore[attr-defined]
        as_of = as_of_today(request, member)
        kinds = list(PLAN_PERIODS)
        if "period_kind" in request.query_params:
            asked = request.query_params["period_kind"]
            if asked not in PeriodKind.values:
                raise ValidationError({"period_kind": [_("Choose month, quarter or year.")]})
            kinds = [PeriodKind(asked)]
        targets = {
            target.period_kind: target
            for target in Target.objects.filter(
                member=member,
                plan__metric="won_amount",
                product_line__isnull=True,
                period_kind__in=kinds,
                period_start__lte=as_of,
                period_end__gte=as_of,
                plan__status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
            )
            .select_related("plan")
            .order_by("plan_id")
        }
        if not targets:
            raise NotFound(_("You have no published won-amount target for that period."))
        memo: HistoryMemo = {}  # the periods share one member's histories
        periods = [
            plan_to_close(targets[kind], as_of, memo=memo) for kind in kinds if kind in targets
        ]
        return Response({"as_of": as_of, "periods": periods})


# --- alerts and rules ----------------------------------------------------------------


class AlertSerializer(ModelSerializer[Alert]):
    message = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "subject_type",
            "subject_id",
            "period",
            "owner",
            "observed",
            "threshold",
            "severity",
            "status",
            "message",
            "opened_at",
            "updated_at",
            "resolved_at",
            "acknowledged_by",
        ]
        read_only_fields = fields

    def get_message(self, alert: Alert) -> str:
        return alert_message(alert)


class AlertFilter(TenantFilterSet):
    class Meta:
        model = Alert
        fields = ["rule", "status", "subject_type", "subject_id", "period", "owner", "severity"]


class AlertViewSet(TenantViewMixin[Alert], viewsets.ReadOnlyModelViewSet[Alert]):
    """Warnings with their explanation in the caller's language; acknowledge to triage."""

    model = Alert
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["opened_at", "updated_at", "severity"]
    ordering = ["-opened_at", "-id"]

    def visible_queryset(self, member: Membership) -> QuerySet[Alert]:
        return visible_alerts(member)

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        alert = self.get_object()
        if alert.status == AlertStatus.OPEN:
            alert.status = AlertStatus.ACKNOWLEDGED
            alert.acknowledged_by = self.membership
            alert.save(update_fields=["status", "acknowledged_by", "updated_at"])
        return Response(self.get_serializer(alert).data)


class WarningRuleSerializer(ModelSerializer[WarningRule]):
    class Meta:
        model = WarningRule
        fields = ["id", "key", "enabled", "thresholds", "severity", "updated_at"]
        read_only_fields = ["id", "key", "updated_at"]

    def validate_thresholds(self, value: Any) -> dict[str, Any]:
        rule: WarningRule | None = self.instance
        current = dict(rule.thresholds) if rule else {}
        try:
            return clean_thresholds(rule.key if rule else "", current, value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from error


class WarningRuleViewSet(
    TenantViewMixin[WarningRule],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[WarningRule],
):
    """The tenant's six warning rules; admins enable them and edit thresholds."""

    model = WarningRule
    serializer_class = WarningRuleSerializer
    permission_classes = [IsTenantAdminOrReadOnly]
    ordering = ["key"]

    def visible_queryset(self, member: Membership) -> QuerySet[WarningRule]:
        ensure_rules(member.tenant_id)
        return WarningRule.objects.all()


router = ApiRouter()
router.include_root_view = False
router.register("alerts", AlertViewSet, basename="alert")
router.register("warning-rules", WarningRuleViewSet, basename="warning-rule")
router.register("reviews", ReviewViewSet, basename="review")

urlpatterns = [
    path("funnel/conversion/", ConversionView.as_view(), name="funnel-conversion"),
    path("funnel/loss/", LossView.as_view(), name="funnel-loss"),
    path("funnel/cycle/", CycleView.as_view(), name="funnel-cycle"),
    path("funnel/pipeline/", PipelineView.as_view(), name="funnel-pipeline"),
    path("funnel/stale/", StaleView.as_view(), name="funnel-stale"),
    path(
        "targets/<int:pk>/plan-to-close/",
        TargetPlanToCloseView.as_view(),
        name="target-plan-to-close",
    ),
    path("me/plan-to-close/", MyPlanToCloseView.as_view(), name="me-plan-to-close"),
    path("targets/<int:pk>/review/", TargetReviewView.as_view(), name="target-review"),
    *router.urls,
]
