"""API of CRM records (SPEC sections 3 and 8): thin views over services and selectors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import django_filters
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crm import selectors, services
from crm.api.sync import SyncSerializerMixin, SyncViewSetMixin
from crm.models import (
    Activity,
    Contact,
    Customer,
    Lead,
    Notification,
    Opportunity,
    OpportunityCorrection,
    Payment,
    Pipeline,
    ProductLine,
    Stage,
    StageChange,
    StageKind,
    Visit,
)
from tenancy import selectors as tenancy_selectors
from tenancy.api.base import TenantViewMixin
from tenancy.api.fields import VisiblePrimaryKeyField
from tenancy.api.filters import SyncFilterSet, TenantFilterSet
from tenancy.api.serializers import ModelSerializer
from tenancy.models import ApiToken, Membership, OrgUnit
from tenancy.orm import filter_column
from tenancy.permissions import IsTenantAdminOrReadOnly

MONEY: dict[str, Any] = {"max_digits": 16, "decimal_places": 2}


class CoordinateField(serializers.DecimalField):
    """A latitude or longitude with any number of decimals, rounded half-up to 6 (SPEC 3)."""

    def __init__(self, limit: int, **kwargs: Any) -> None:
        super().__init__(
            max_digits=None,
            decimal_places=None,
            min_value=Decimal(-limit),
            max_value=Decimal(limit),
            **kwargs,
        )

    def to_internal_value(self, data: Any) -> Decimal:
        return services.round_coordinate(super().to_internal_value(data))


def _both_coordinates(attrs: dict[str, Any], instance: Any = None) -> None:
    """A latitude without a longitude (or the reverse) is a 400."""
    latitude = attrs.get("latitude", getattr(instance, "latitude", None))
    longitude = attrs.get("longitude", getattr(instance, "longitude", None))
    if (latitude is None) != (longitude is None):
        missing = "longitude" if longitude is None else "latitude"
        raise serializers.ValidationError({missing: [_("Give both coordinates or neither.")]})


class CreatedAtMixin(serializers.Serializer[Any]):
    """``created_at`` may be given on a create by an admin or an integration (history
    imports), never in the future; a rep's record is created now (SPEC 3)."""

    def validate_created_at(self, value: Any) -> Any:
        if self.instance is not None:
            if value != self.instance.created_at:
                raise serializers.ValidationError(_("The creation time cannot change."))
            return value
        request = self.context["request"]
        with _field_errors("created_at"):
            return services.check_created_at(
                request.membership, value, integration=is_integration(request)
            )


@contextmanager
def _field_errors(field: str) -> Iterator[None]:
    """A service's ``{field: [...]}`` error, raised inside ``validate_<field>``."""
    try:
        yield
    except DjangoValidationError as error:
        raise serializers.ValidationError(error.message_dict.get(field, error.messages)) from error


def is_integration(request: Request) -> bool:
    """The caller authenticated with an integration (API) token."""
    return isinstance(request.auth, ApiToken)


def _member_field(**kwargs: Any) -> VisiblePrimaryKeyField:
    return VisiblePrimaryKeyField(Membership, tenancy_selectors.visible_memberships, **kwargs)


class SubtreeFilterMixin(django_filters.FilterSet):
    """``org_unit``: rows owned by members of that unit and every unit below it."""

    owner_path = "owner__org_unit__path"

    org_unit = django_filters.NumberFilter(
        method="filter_org_unit", help_text=_("Owned by members of this unit or below it.")
    )

    def filter_org_unit(self, queryset: QuerySet[Any], name: str, value: int) -> QuerySet[Any]:
        unit = OrgUnit.objects.filter(pk=value).only("path").first()
        if unit is None:
            return queryset.none()
        return queryset.filter(**{f"{self.owner_path}__startswith": unit.path})


class SyncedViewSet(SyncViewSetMixin, TenantViewMixin[Any], viewsets.ModelViewSet[Any]):
    """A synced record: list, retrieve, idempotent create, versioned update, tombstones."""

    def visible_queryset(self, member: Membership) -> QuerySet[Any]:
        return self.selector(member)


# --- customers and contacts ------------------------------------------------------------


class CustomerSerializer(CreatedAtMixin, SyncSerializerMixin, ModelSerializer[Customer]):
    owner = _member_field(required=False, allow_null=True)
    latitude = CoordinateField(90, required=False, allow_null=True)
    longitude = CoordinateField(180, required=False, allow_null=True)
    created_at = serializers.DateTimeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _both_coordinates(attrs, self.instance)
        return attrs

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "industry",
            "level",
            "region",
            "source",
            "owner",
            "address",
            "latitude",
            "longitude",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "updated_at"]


class CustomerFilter(SubtreeFilterMixin, SyncFilterSet):
    in_pool = django_filters.BooleanFilter(
        field_name="owner", lookup_expr="isnull", help_text=_("Only the public pool (公海).")
    )
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Customer
        fields = ["owner", "level", "region", "industry", "source"]


class CustomerViewSet(SyncedViewSet):
    """客户. A rep sees their own customers and the public pool; claim and release."""

    model = Customer
    selector = staticmethod(selectors.visible_customers)
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields = ["name", "address", "industry"]
    ordering_fields = ["name", "level", "created_at", "updated_at"]
    ordering = ["name"]

    def create_object(self, data: dict[str, Any], client_id: uuid.UUID | None) -> tuple[Any, bool]:
        data.setdefault("owner", self.membership)
        data["first_owner"] = data["owner"]
        return super().create_object(data, client_id)

    @extend_schema(request=None, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def claim(self, request: Request, pk: str | None = None) -> Response:
        """Take the customer from the public pool; 409 if someone else was faster."""
        customer = services.customer_claim(member=self.membership, customer=self.get_object())
        return Response(self.get_serializer(customer).data)

    @extend_schema(request=None, responses=CustomerSerializer)
    @action(detail=True, methods=["post"])
    def release(self, request: Request, pk: str | None = None) -> Response:
        """Return the customer to the public pool."""
        customer = services.customer_release(member=self.membership, customer=self.get_object())
        return Response(self.get_serializer(customer).data)


class ContactSerializer(SyncSerializerMixin, ModelSerializer[Contact]):
    customer = VisiblePrimaryKeyField(Customer, selectors.visible_customers)

    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "name",
            "title",
            "phone",
            "email",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ContactFilter(SyncFilterSet):
    class Meta:
        model = Contact
        fields = ["customer"]


class ContactViewSet(SyncedViewSet):
    model = Contact
    selector = staticmethod(selectors.visible_contacts)
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["name", "phone", "email"]
    ordering_fields = ["name", "updated_at"]
    ordering = ["name"]


# --- leads -------------------------------------------------------------------------------


class LeadSerializer(CreatedAtMixin, SyncSerializerMixin, ModelSerializer[Lead]):
    owner = _member_field(required=False)
    created_at = serializers.DateTimeField(required=False)

    class Meta:
        model = Lead
        fields = [
            "id",
            "name",
            "company",
            "phone",
            "email",
            "source",
            "status",
            "owner",
            "converted_at",
            "converted_customer",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "converted_at", "converted_customer", "updated_at"]


class LeadFilter(SubtreeFilterMixin, SyncFilterSet):
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Lead
        fields = ["owner", "status", "source"]


class LeadConvertSerializer(serializers.Serializer[Any]):
    customer = VisiblePrimaryKeyField(
        Customer,
        selectors.visible_customers,
        required=False,
        allow_null=True,
        help_text=_("Link an existing customer instead of creating one."),
    )
    opportunity_name = serializers.CharField(max_length=200, required=False)
    amount = serializers.DecimalField(required=False, allow_null=True, min_value=0, **MONEY)
    expected_close_date = serializers.DateField(required=False, allow_null=True)


class LeadViewSet(SyncedViewSet):
    """线索, with conversion to a customer and an opportunity."""

    model = Lead
    selector = staticmethod(selectors.visible_leads)
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    search_fields = ["name", "company", "phone", "email"]
    ordering_fields = ["created_at", "updated_at", "name", "status"]
    ordering = ["-created_at"]

    def create_object(self, data: dict[str, Any], client_id: uuid.UUID | None) -> tuple[Any, bool]:
        data.setdefault("owner", self.membership)
        return super().create_object(data, client_id)

    @extend_schema(
        request=LeadConvertSerializer,
        responses=inline_serializer(
            "LeadConverted",
            {"customer": serializers.IntegerField(), "opportunity": serializers.IntegerField()},
        ),
    )
    @action(detail=True, methods=["post"])
    def convert(self, request: Request, pk: str | None = None) -> Response:
        """Create (or link) the customer and create the opportunity, recording the conversion."""
        lead = self.get_object()
        payload = LeadConvertSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        customer, opportunity = services.lead_convert(
            member=self.membership, lead=lead, **payload.validated_data
        )
        return Response(
            {"customer": customer.pk, "opportunity": opportunity.pk},
            status=status.HTTP_201_CREATED,
        )


# --- product lines and pipelines -------------------------------------------------------


class ProductLineSerializer(ModelSerializer[ProductLine]):
    class Meta:
        model = ProductLine
        fields = ["id", "name", "is_new", "is_active", "updated_at"]
        read_only_fields = ["id", "updated_at"]


class ProductLineFilter(TenantFilterSet):
    class Meta:
        model = ProductLine
        fields = ["is_new", "is_active"]


class ProductLineViewSet(TenantViewMixin[ProductLine], viewsets.ModelViewSet[ProductLine]):
    model = ProductLine
    serializer_class = ProductLineSerializer
    permission_classes = [IsTenantAdminOrReadOnly]
    filterset_class = ProductLineFilter
    search_fields = ["name"]
    ordering = ["name"]

    def visible_queryset(self, member: Membership) -> QuerySet[ProductLine]:
        return ProductLine.objects.all()

    def perform_create(self, serializer: serializers.BaseSerializer[ProductLine]) -> None:
        serializer.save(tenant_id=self.membership.tenant_id)

    def perform_destroy(self, instance: ProductLine) -> None:
        services.config_delete(member=self.membership, instance=instance)  # 409 when in use


class StageSerializer(ModelSerializer[Stage]):
    class Meta:
        model = Stage
        fields = [
            "id",
            "name",
            "name_zh",
            "order",
            "probability",
            "forecast_category",
            "kind",
            "rot_days",
        ]
        read_only_fields = fields


class PipelineSerializer(ModelSerializer[Pipeline]):
    stages = StageSerializer(many=True, read_only=True)

    class Meta:
        model = Pipeline
        fields = ["id", "name", "is_default", "stages"]
        read_only_fields = fields


class PipelineViewSet(TenantViewMixin[Pipeline], viewsets.ReadOnlyModelViewSet[Pipeline]):
    """Pipelines with their stages, in order (configured by admins in the admin)."""

    model = Pipeline
    serializer_class = PipelineSerializer
    ordering = ["-is_default", "name"]

    def visible_queryset(self, member: Membership) -> QuerySet[Pipeline]:
        return Pipeline.objects.prefetch_related(
            Prefetch("stages", queryset=Stage.objects.order_by("order"))
        )


# --- opportunities ---------------------------------------------------------------------


class OpportunitySerializer(SyncSerializerMixin, ModelSerializer[Opportunity]):
    customer = VisiblePrimaryKeyField(Customer, selectors.visible_customers)
    owner = _member_field(required=False)
    pipeline = VisiblePrimaryKeyField(Pipeline, required=False)
    stage = VisiblePrimaryKeyField(Stage, required=False)
    product_line = VisiblePrimaryKeyField(ProductLine, required=False, allow_null=True)
    amount = serializers.DecimalField(required=False, allow_null=True, min_value=0, **MONEY)
    probability = serializers.IntegerField(read_only=True)
    forecast_category = serializers.CharField(read_only=True)

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "name",
            "customer",
            "owner",
            "pipeline",
            "stage",
            "amount",
            "product_line",
            "expected_close_date",
            "probability_override",
            "forecast_category_override",
            "probability",
            "forecast_category",
            "lost_reason",
            "closed_date",
            "stage_entered_at",
            "source_lead",
            "credited_member",
            "credited_org_unit",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "id",
            "closed_date",
            "stage_entered_at",
            "source_lead",
            "credited_member",
            "credited_org_unit",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.instance is not None and ({"stage", "pipeline"} & set(attrs)):
            raise serializers.ValidationError(
                {"stage": [_("Change the stage with the move action, which records history.")]}
            )
        return attrs


class OpportunityFilter(SubtreeFilterMixin, SyncFilterSet):
    status = django_filters.ChoiceFilter(
        field_name="stage__kind", choices=StageKind.choices, help_text=_("open, won or lost")
    )
    expected_close = django_filters.DateFromToRangeFilter(field_name="expected_close_date")
    closed = django_filters.DateFromToRangeFilter(field_name="closed_date")
    created = django_filters.IsoDateTimeFromToRangeFilter(field_name="created_at")

    class Meta:
        model = Opportunity
        fields = ["owner", "stage", "pipeline", "customer", "product_line"]


class MoveSerializer(serializers.Serializer[Any]):
    stage = VisiblePrimaryKeyField(Stage)
    lost_reason = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200
    )
    reopen = serializers.BooleanField(required=False, default=False)
    version = serializers.IntegerField(required=False, min_value=1)
    amount = serializers.DecimalField(
        required=False,
        min_value=0,
        help_text=_("Set the amount in the same call (a win)."),
        **MONEY,
    )
    closed_date = serializers.DateField(
        required=False,
        help_text=_(
            "A win or a loss dated in the past: admins and integrations only; default today."
        ),
    )


class CorrectSerializer(serializers.Serializer[Any]):
    reason = serializers.CharField(max_length=300)
    amount = serializers.DecimalField(required=False, min_value=0, **MONEY)
    product_line = VisiblePrimaryKeyField(ProductLine, required=False, allow_null=True)
    closed_date = serializers.DateField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class CorrectionSerializer(ModelSerializer[OpportunityCorrection]):
    class Meta:
        model = OpportunityCorrection
        fields = ["id", "old_values", "new_values", "reason", "corrected_by", "corrected_at"]
        read_only_fields = fields


class StageChangeSerializer(ModelSerializer[StageChange]):
    class Meta:
        model = StageChange
        fields = ["id", "from_stage", "to_stage", "changed_at", "changed_by", "amount"]
        read_only_fields = fields


class OpportunityViewSet(SyncedViewSet):
    """商机. Stages change only through ``move``, which records every change."""

    model = Opportunity
    selector = staticmethod(selectors.visible_opportunities)
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    search_fields = ["name", "customer__name"]
    ordering_fields = ["updated_at", "created_at", "amount", "expected_close_date", "name"]
    ordering = ["-updated_at"]

    def visible_queryset(self, member: Membership) -> QuerySet[Opportunity]:
        return self.selector(member).select_related("stage")

    def create_object(self, data: dict[str, Any], client_id: uuid.UUID | None) -> tuple[Any, bool]:
        return services.opportunity_create(member=self.membership, client_id=client_id, **data)

    @extend_schema(request=MoveSerializer, responses=OpportunitySerializer)
    @action(detail=True, methods=["post"])
    def move(self, request: Request, pk: str | None = None) -> Response:
        """Move to a stage: lost needs ``lost_reason``; back from won or lost needs ``reopen``."""
        opportunity = self.get_object()
        payload = MoveSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        moved = services.opportunity_move(
            member=self.membership,
            opportunity=opportunity,
            stage=data["stage"],
            lost_reason=data["lost_reason"],
            reopen=data["reopen"],
            expected_version=data.get("version"),
            amount=data.get("amount"),
            closed_date=data.get("closed_date"),
            integration=is_integration(request),
        )
        return Response(self.get_serializer(moved).data)

    def update_object(
        self, instance: Any, expected_version: int | None, data: dict[str, Any]
    ) -> Any:
        return services.opportunity_update(
            member=self.membership, opportunity=instance, expected_version=expected_version, **data
        )

    @extend_schema(request=CorrectSerializer, responses=OpportunitySerializer)
    @action(detail=True, methods=["post"])
    def correct(self, request: Request, pk: str | None = None) -> Response:
        """Correct a won or lost deal's amount, product line or closed date, with a reason
        (a manager above the owner or an admin; recorded in ``corrections``)."""
        opportunity = self.get_object()
        payload = CorrectSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        corrected = services.opportunity_correct(
            member=self.membership,
            opportunity=opportunity,
            reason=data.pop("reason"),
            expected_version=data.pop("version", None),
            **data,
        )
        return Response(self.get_serializer(corrected).data)

    @extend_schema(responses=CorrectionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def corrections(self, request: Request, pk: str | None = None) -> Response:
        """The deal's corrections, oldest first: old and new values, reason, by, at."""
        opportunity = self.get_object()
        rows = OpportunityCorrection.objects.filter(opportunity=opportunity).order_by(
            "corrected_at", "pk"
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(CorrectionSerializer(page, many=True).data)

    @extend_schema(responses=StageChangeSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Every stage change of the deal, oldest first."""
        opportunity = self.get_object()
        changes = StageChange.objects.filter(opportunity=opportunity).order_by("changed_at", "pk")
        page = self.paginate_queryset(changes)
        return self.get_paginated_response(StageChangeSerializer(page, many=True).data)


# --- payments ----------------------------------------------------------------------------


class PaymentSerializer(SyncSerializerMixin, ModelSerializer[Payment]):
    opportunity = VisiblePrimaryKeyField(Opportunity, selectors.visible_opportunities)
    amount = serializers.DecimalField(**MONEY)

    class Meta:
        model = Payment
        fields = [
            "id",
            "opportunity",
            "amount",
            "planned_date",
            "received_date",
            "status",
            "reverses",
            "recorded_by",
            "note",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "status", "reverses", "recorded_by", "created_at", "updated_at"]


class PaymentFilter(SyncFilterSet):
    received = django_filters.DateFromToRangeFilter(field_name="received_date")
    planned = django_filters.DateFromToRangeFilter(field_name="planned_date")

    class Meta:
        model = Payment
        fields = ["opportunity", "status"]


class DateSerializer(serializers.Serializer[Any]):
    date = serializers.DateField(required=False)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=300)


class PaymentViewSet(SyncedViewSet):
    """回款. A received payment is never edited: reverse it (a new negative row)."""

    model = Payment
    selector = staticmethod(selectors.visible_payments)
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    ordering_fields = ["received_date", "planned_date", "amount", "updated_at"]
    ordering = ["-updated_at"]
    http_method_names = ["get", "post", "head", "options"]

    def create_object(self, data: dict[str, Any], client_id: uuid.UUID | None) -> tuple[Any, bool]:
        opportunity = Opportunity.objects.select_related("stage").get(pk=data.pop("opportunity").pk)
        return services.payment_record(
            member=self.membership,
            opportunity=opportunity,
            client_id=client_id,
            integration=is_integration(self.request),
            **data,
        )

    @extend_schema(request=DateSerializer, responses=PaymentSerializer)
    @action(detail=True, methods=["post"])
    def receive(self, request: Request, pk: str | None = None) -> Response:
        """Mark a planned payment received (on ``date``, default the tenant's today)."""
        payment = self.get_object()
        payload = DateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        payment = services.payment_receive(
            member=self.membership,
            payment=payment,
            received_date=payload.validated_data.get("date"),
            integration=is_integration(request),
        )
        return Response(self.get_serializer(payment).data)

    @extend_schema(request=DateSerializer, responses=PaymentSerializer)
    @action(detail=True, methods=["post"])
    def reverse(self, request: Request, pk: str | None = None) -> Response:
        """Reverse a received payment with a new negative row."""
        payment = self.get_object()
        payload = DateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        reversal = services.payment_reverse(
            member=self.membership,
            payment=payment,
            reversed_date=payload.validated_data.get("date"),
            note=payload.validated_data["note"],
            integration=is_integration(request),
        )
        return Response(self.get_serializer(reversal).data, status=status.HTTP_201_CREATED)


# --- visits ------------------------------------------------------------------------------


class VisitSerializer(SyncSerializerMixin, ModelSerializer[Visit]):
    customer = VisiblePrimaryKeyField(Customer, selectors.visible_customers)

    class Meta:
        model = Visit
        fields = [
            "id",
            "customer",
            "rep",
            "planned_start",
            "check_in_at",
            "check_in_device_at",
            "check_in_latitude",
            "check_in_longitude",
            "check_in_accuracy_m",
            "check_out_at",
            "check_out_device_at",
            "check_out_latitude",
            "check_out_longitude",
            "distance_m",
            "verified",
            "purpose",
            "outcome",
            "next_step",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            field
            for field in fields
            if field
            not in {
                "customer",
                "planned_start",
                "purpose",
                "outcome",
                "next_step",
                "client_id",
                "version",
            }
        ]


class VisitFilter(SubtreeFilterMixin, SyncFilterSet):
    owner_path = "rep__org_unit__path"
    planned = django_filters.IsoDateTimeFromToRangeFilter(field_name="planned_start")
    checked_in = django_filters.IsoDateTimeFromToRangeFilter(field_name="check_in_at")

    class Meta:
        model = Visit
        fields = ["rep", "customer", "verified"]


class CheckInSerializer(serializers.Serializer[Any]):
    latitude = CoordinateField(90)
    longitude = CoordinateField(180)
    accuracy_m = serializers.DecimalField(
        max_digits=8, decimal_places=1, min_value=0, required=False, allow_null=True
    )
    device_time = serializers.DateTimeField(required=False, allow_null=True)


class CheckOutSerializer(serializers.Serializer[Any]):
    latitude = CoordinateField(90, required=False)
    longitude = CoordinateField(180, required=False)
    device_time = serializers.DateTimeField(required=False, allow_null=True)
    outcome = serializers.CharField(required=False, allow_blank=True)
    next_step = serializers.CharField(required=False, allow_blank=True, max_length=300)


class VisitViewSet(SyncedViewSet):
    """拜访: plan, check in (GPS, verified within the tenant radius), check out."""

    model = Visit
    selector = staticmethod(selectors.visible_visits)
    serializer_class = VisitSerializer
    filterset_class = VisitFilter
    ordering_fields = ["planned_start", "check_in_at", "updated_at"]
    ordering = ["-updated_at"]

    def create_object(self, data: dict[str, Any], client_id: uuid.UUID | None) -> tuple[Any, bool]:
        data["rep"] = self.membership
        return super().create_object(data, client_id)

    def update_object(
        self, instance: Any, expected_version: int | None, data: dict[str, Any]
    ) -> Any:
        return services.visit_update(
            member=self.membership, visit=instance, expected_version=expected_version, **data
        )

    @extend_schema(request=CheckInSerializer, responses=VisitSerializer)
    @action(detail=True, methods=["post"], url_path="check-in")
    def check_in(self, request: Request, pk: str | None = None) -> Response:
        visit = self.get_object()
        payload = CheckInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        visit = services.visit_check_in(
            member=self.membership, visit=visit, **payload.validated_data
        )
        return Response(self.get_serializer(visit).data)

    @extend_schema(request=CheckOutSerializer, responses=VisitSerializer)
    @action(detail=True, methods=["post"], url_path="check-out")
    def check_out(self, request: Request, pk: str | None = None) -> Response:
        visit = self.get_object()
        payload = CheckOutSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        visit = services.visit_check_out(
            member=self.membership, visit=visit, **payload.validated_data
        )
        return Response(self.get_serializer(visit).data)


# --- activities ----------------------------------------------------------------------


class ActivitySerializer(SyncSerializerMixin, ModelSerializer[Activity]):
    customer = VisiblePrimaryKeyField(
        Customer, selectors.visible_customers, required=False, allow_null=True
    )
    lead = VisiblePrimaryKeyField(Lead, selectors.visible_leads, required=False, allow_null=True)
    opportunity = VisiblePrimaryKeyField(
        Opportunity, selectors.visible_opportunities, required=False, allow_null=True
    )
    owner = _member_field(required=False)
    is_follow_up = serializers.BooleanField(read_only=True)

    def validate_done_at(self, value: Any) -> Any:
        with _field_errors("done_at"):
            services.check_done_at(value)
        return value

    class Meta:
        model = Activity
        fields = [
            "id",
            "type",
            "subject",
            "customer",
            "lead",
            "opportunity",
            "owner",
            "due_at",
            "done_at",
            "outcome",
            "is_follow_up",
            "client_id",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]


class ActivityFilter(SubtreeFilterMixin, SyncFilterSet):
    due = django_filters.IsoDateTimeFromToRangeFilter(field_name="due_at")
    done = django_filters.BooleanFilter(field_name="done_at", lookup_expr="isnull", exclude=True)
    overdue = django_filters.BooleanFilter(method="filter_overdue")

    class Meta:
        model = Activity
        fields = ["owner", "type", "customer", "lead", "opportunity"]

    def filter_overdue(self, queryset: QuerySet[Any], name: str, value: bool) -> QuerySet[Any]:
        now = timezone.now()
        if not value:
            return queryset.exclude(done_at__isnull=True, due_at__lt=now)
        # The two conditions filter(done_at__isnull=True, due_at__lt=now) adds, each on a
        # column of the model's own table (tenancy.orm.filter_column).
        return filter_column(filter_column(queryset, done_at__isnull=True), due_at__lt=now)


class CompleteSerializer(serializers.Serializer[Any]):
    outcome = serializers.CharField(required=False, default="", allow_blank=True)
    done_at = serializers.DateTimeField(required=False, allow_null=True)


class ActivityViewSet(SyncedViewSet):
    """Activities; with a due date and no done date, a follow-up."""

    model = Activity
    selector = staticmethod(selectors.visible_activities)
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    search_fields = ["subject", "outcome"]
    ordering_fields = ["due_at", "done_at", "created_at", "updated_at"]
    ordering = ["-updated_at"]

    def create_object(self, data: dict[str, Any], client_id: uuid.UUID | None) -> tuple[Any, bool]:
        data.setdefault("owner", self.membership)
        return super().create_object(data, client_id)

    @extend_schema(request=CompleteSerializer, responses=ActivitySerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        activity = self.get_object()
        payload = CompleteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        activity = services.activity_complete(
            member=self.membership, activity=activity, **payload.validated_data
        )
        return Response(self.get_serializer(activity).data)


# --- notifications --------------------------------------------------------------------


class NotificationSerializer(ModelSerializer[Notification]):
    class Meta:
        model = Notification
        fields = ["id", "kind", "text", "related_type", "related_id", "created_at", "read_at"]
        read_only_fields = fields


class NotificationFilter(TenantFilterSet):
    unread = django_filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")

    class Meta:
        model = Notification
        fields = ["kind"]


class NotificationViewSet(
    TenantViewMixin[Notification],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[Notification],
):
    """The caller's own notifications."""

    model = Notification
    serializer_class = NotificationSerializer
    filterset_class = NotificationFilter
    ordering = ["-created_at"]

    def visible_queryset(self, member: Membership) -> QuerySet[Notification]:
        return selectors.visible_notifications(member)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        notification = self.get_object()
        # Conditional: the first read wins, a second one keeps the first time.
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(
            read_at=timezone.now(), updated_at=timezone.now()
        )
        notification.refresh_from_db()
        return Response(self.get_serializer(notification).data)
