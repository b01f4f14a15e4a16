"""API for the tenancy layer: auth, me, org units, members, API tokens, job runs."""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth import authenticate, get_user_model
from django.db.models import Prefetch, QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS, AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from tenancy import selectors, services
from tenancy.api.base import TenantViewMixin
from tenancy.api.filters import SyncFilterSet, TenantFilterSet
from tenancy.api.serializers import ModelSerializer, current_zone
from tenancy.api.throttling import FailedLoginThrottle, LoginIPThrottle, LoginUserThrottle
from tenancy.authentication import (
    MEMBERSHIP_CLAIM,
    TENANT_CLAIM,
    TOKEN_VERSION_CLAIM,
    load_membership_for_token,
)
from tenancy.models import (
    ApiToken,
    Invitation,
    JobRun,
    Membership,
    OrgUnit,
    OrgUnitManager,
    Role,
    Tenant,
)
from tenancy.permissions import IsTenantAdmin, IsTenantAdminOrReadOnly
from tenancy.scope import platform_scope, tenant_scope

# --- auth ---------------------------------------------------------------------------


class TokenObtainSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)
    tenant = serializers.SlugField(
        required=False, help_text=_("Tenant slug; needed when the user belongs to several.")
    )


class TokenPairSerializer(serializers.Serializer[Any]):
    access = serializers.CharField()
    refresh = serializers.CharField()
    tenant = serializers.SlugField()
    membership_id = serializers.IntegerField()
    role = serializers.CharField()


def issue_tokens(membership: Membership) -> dict[str, Any]:
    refresh = RefreshToken.for_user(membership.user)
    refresh[TENANT_CLAIM] = membership.tenant_id
    refresh[MEMBERSHIP_CLAIM] = membership.pk
    refresh[TOKEN_VERSION_CLAIM] = membership.token_version
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "tenant": membership.tenant.slug,
        "membership_id": membership.pk,
        "role": membership.role,
    }


class PublicAuthView(APIView):
    """Auth endpoints: the credential is in the body, and failures are 401 with a challenge."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class TokenObtainView(PublicAuthView):
    """Exchange username and password (and a tenant slug) for JWTs bound to one membership."""

    throttle_classes = [LoginIPThrottle, LoginUserThrottle]

    @extend_schema(request=TokenObtainSerializer, responses=TokenPairSerializer)
    def post(self, request: Request) -> Response:
        data = TokenObtainSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            for throttle in self.get_throttles():
                if isinstance(throttle, FailedLoginThrottle):
                    throttle.record_failure(request, self)
            raise exceptions.AuthenticationFailed(_("Wrong username or password."))
        with platform_scope("login: find the user's memberships across tenants"):
            memberships = list(
                Membership.objects.filter(user=user, is_active=True, tenant__is_active=True)
                .select_related("tenant", "user")
                .order_by("tenant__slug")
            )
        slug = data.validated_data.get("tenant")
        if slug:
            memberships = [m for m in memberships if m.tenant.slug == slug]
            if not memberships:
                raise exceptions.ValidationError(
                    {"tenant": [_("Unknown tenant, or you have no active membership in it.")]}
                )
        if not memberships:
            raise exceptions.AuthenticationFailed(_("You have no active membership."))
        if len(memberships) > 1:
            choices = ", ".join(m.tenant.slug for m in memberships)
            raise exceptions.ValidationError(
                {"tenant": [_("You belong to several tenants; choose one of: %s.") % choices]}
            )
        return Response(issue_tokens(memberships[0]))


class RefreshSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField()


def _refresh_token(raw: str) -> RefreshToken:
    try:
        return RefreshToken(raw)  # type: ignore[arg-type]
    except TokenError as error:
        raise exceptions.AuthenticationFailed(str(error), "token_invalid") from error


class TokenRefreshView(PublicAuthView):
    """Trade a refresh token for a new pair; the old refresh token is blacklisted."""

    @extend_schema(request=RefreshSerializer, responses=TokenPairSerializer)
    def post(self, request: Request) -> Response:
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        old = _refresh_token(data.validated_data["refresh"])
        tenant_id = old.get(TENANT_CLAIM)
        if not isinstance(tenant_id, int):
            raise exceptions.AuthenticationFailed(_("Token is not bound to a tenant."))
        # The refresh token is the credential of this request: enter its tenant's scope.
        with tenant_scope(tenant_id):
            membership = load_membership_for_token(old)
            old.blacklist()
            membership.tenant = Tenant.objects.get(pk=tenant_id)
            return Response(issue_tokens(membership))


class TokenRevokeView(PublicAuthView):
    """Revoke a refresh token, or with ``all`` every token of the membership at once."""

    @extend_schema(
        request=inline_serializer(
            "TokenRevoke",
            {"refresh": serializers.CharField(), "all": serializers.BooleanField(default=False)},
        ),
        responses={204: None},
    )
    def post(self, request: Request) -> Response:
        data = RefreshSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token = _refresh_token(data.validated_data["refresh"])
        tenant_id = token.get(TENANT_CLAIM)
        if not isinstance(tenant_id, int):
            raise exceptions.AuthenticationFailed(_("Token is not bound to a tenant."))
        with tenant_scope(tenant_id):
            membership = load_membership_for_token(token)
            token.blacklist()
            revoke_all = request.data.get("all", "") if isinstance(request.data, dict) else ""
            if str(revoke_all).lower() in {"1", "true"}:
                services.membership_revoke_tokens(membership=membership)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- me -------------------------------------------------------------------------------


class TenantSerializer(ModelSerializer[Tenant]):
    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "slug",
            "time_zone",
            "currency",
            "fiscal_year_start_month",
            "visit_radius_m",
            "pace_threshold",
            "digest_hour",
            "leaderboard_money_visible",
        ]
        read_only_fields = fields


def _writing_member(serializer: serializers.BaseSerializer[Any]) -> Membership | None:
    """The caller, when the request writes: related fields are narrowed to what the caller
    may reference only then (a read renders ids and never consults the querysets, so
    building them on every GET cost a third of ``/me/``)."""
    request = serializer.context.get("request")
    if request is None or request.method in SAFE_METHODS:
        return None
    return getattr(request, "membership", None)


class UserSerializer(ModelSerializer[Any]):
    """A member's user, read-only (a model serializer, so it renders along its class plan)."""

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "first_name", "last_name", "email"]
        read_only_fields = fields


class MemberSerializer(ModelSerializer[Membership]):
    user = UserSerializer(read_only=True)
    org_unit: serializers.PrimaryKeyRelatedField[OrgUnit] = serializers.PrimaryKeyRelatedField(
        queryset=OrgUnit.objects.none(), allow_null=True, required=False
    )
    display_name = serializers.CharField(read_only=True)
    managed_units = serializers.ListField(
        child=serializers.IntegerField(), read_only=True, source="managed_unit_list"
    )

    class Meta:
        model = Membership
        fields = [
            "id",
            "user",
            "display_name",
            "role",
            "org_unit",
            "title",
            "start_date",
            "end_date",
            "is_active",
            "managed_units",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "user", "created_at", "updated_at"]
        # Omitted on creation: the service gives the tenant's today (SPEC preamble).
        extra_kwargs = {"start_date": {"required": False}}

    fields_change_on_writes_only = True  # get_fields narrows querysets on writes

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        membership = _writing_member(self)
        if membership is not None:
            fields["org_unit"].queryset = selectors.visible_org_units(membership)
        return fields


class MemberCreateSerializer(MemberSerializer):
    username = serializers.CharField(max_length=150, write_only=True)
    email = serializers.EmailField(write_only=True, required=False, default="")
    first_name = serializers.CharField(max_length=150, write_only=True, required=False, default="")
    last_name = serializers.CharField(max_length=150, write_only=True, required=False, default="")
    password = serializers.CharField(
        write_only=True, required=False, allow_null=True, default=None, min_length=8
    )

    class Meta(MemberSerializer.Meta):
        fields = [
            *MemberSerializer.Meta.fields,
            "username",
            "email",
            "first_name",
            "last_name",
            "password",
        ]


class NotificationSettingsSerializer(ModelSerializer[Membership]):
    """The caller's own notification settings (SPEC section 7)."""

    class Meta:
        model = Membership
        fields = ["language", "email_notifications", "reminder_lead_minutes"]


class MeView(APIView):
    """The caller: user, membership, tenant settings; PATCH changes the caller's own
    notification settings (language, digest e-mail on or off, reminder lead time)."""

    def _me(self, request: Request) -> Response:
        # The membership authentication loaded, with its user, unit, tenant and managed
        # units (an API key's member reads its managed units itself: one query).
        member = request.membership  # type: ignore[attr-defined]
        zone = current_zone()  # once for the three
        return Response(
            {
                "member": MemberSerializer.represent(
                    member, context={"request": request}, zone=zone
                ),
                "notifications": NotificationSettingsSerializer.represent(member, zone=zone),
                "tenant": TenantSerializer.represent(member.tenant, zone=zone),
            }
        )

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "member": MemberSerializer(),
                "notifications": NotificationSettingsSerializer(),
                "tenant": TenantSerializer(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return self._me(request)

    @extend_schema(request=NotificationSettingsSerializer, responses={200: None})
    def patch(self, request: Request) -> Response:
        member = request.membership  # type: ignore[attr-defined]
        serializer = NotificationSettingsSerializer(member, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return self._me(request)


class TenantSettingsSerializer(ModelSerializer[Tenant]):
    """The tenant's settings an admin may change (``services.TENANT_SETTINGS``); the rest
    is shown read-only."""

    class Meta:
        model = Tenant
        fields = [
            "id",
            "slug",
            "currency",
            "fiscal_year_start_month",
            *services.TENANT_SETTINGS,
        ]
        read_only_fields = ["id", "slug", "currency", "fiscal_year_start_month"]


class TenantSettingsView(APIView):
    """``GET``/``PATCH /api/v1/tenant/``: the caller's tenant's settings, admins only
    (digest hour 0–23, a time zone of the IANA database, visit and pace settings, whether
    reps see others' money on leaderboards)."""

    permission_classes = [IsTenantAdmin]

    @extend_schema(responses=TenantSettingsSerializer)
    def get(self, request: Request) -> Response:
        tenant = request.membership.tenant  # type: ignore[attr-defined]
        return Response(TenantSettingsSerializer(tenant).data)

    @extend_schema(request=TenantSettingsSerializer, responses=TenantSettingsSerializer)
    def patch(self, request: Request) -> Response:
        tenant = request.membership.tenant  # type: ignore[attr-defined]
        serializer = TenantSettingsSerializer(tenant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tenant = services.tenant_settings_update(tenant=tenant, **serializer.validated_data)
        return Response(TenantSettingsSerializer(tenant).data)


# --- org units -------------------------------------------------------------------------


def _managed_links() -> Prefetch[Any]:
    return Prefetch(
        "orgunitmanager_set", queryset=OrgUnitManager.objects.all(), to_attr="managed_links"
    )


class OrgUnitFilter(SyncFilterSet):
    subtree_of = django_filters.NumberFilter(
        method="filter_subtree_of", help_text=_("Only this unit and its descendants.")
    )

    class Meta:
        model = OrgUnit
        fields = ["parent", "depth"]

    def filter_subtree_of(self, queryset: QuerySet[OrgUnit], name: str, value: int) -> Any:
        unit = OrgUnit.objects.filter(pk=value).only("path").first()
        return queryset.filter(path__startswith=unit.path) if unit else queryset.none()


class OrgUnitSerializer(ModelSerializer[OrgUnit]):
    parent: Any = serializers.PrimaryKeyRelatedField(
        queryset=OrgUnit.objects.none(), allow_null=True, required=False
    )
    managers: Any = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Membership.objects.none(), required=False
    )

    class Meta:
        model = OrgUnit
        fields = ["id", "name", "parent", "path", "depth", "managers", "created_at", "updated_at"]
        read_only_fields = ["id", "path", "depth", "created_at", "updated_at"]

    fields_change_on_writes_only = True  # get_fields narrows querysets on writes

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        membership = _writing_member(self)
        if membership is not None:
            fields["parent"].queryset = selectors.visible_org_units(membership)
            fields["managers"].child_relation.queryset = selectors.visible_memberships(membership)
        return fields


class OrgUnitViewSet(TenantViewMixin[OrgUnit], viewsets.ModelViewSet[OrgUnit]):
    """The org tree. Reps see their unit, managers their subtrees, admins everything."""

    serializer_class = OrgUnitSerializer
    permission_classes = [IsTenantAdminOrReadOnly]
    filterset_class = OrgUnitFilter
    search_fields = ["name"]
    ordering_fields = ["name", "path", "depth", "created_at", "updated_at"]
    ordering = ["path"]

    model = OrgUnit

    def visible_queryset(self, member: Membership) -> QuerySet[OrgUnit]:
        return selectors.visible_org_units(member).prefetch_related(
            Prefetch("managers", queryset=Membership.objects.only("id").order_by("id"))
        )

    def perform_create(self, serializer: serializers.BaseSerializer[OrgUnit]) -> None:
        data = serializer.validated_data
        serializer.instance = services.org_unit_create(
            tenant=self.membership.tenant,
            name=data["name"],
            parent=data.get("parent"),
            managers=data.get("managers", ()),
        )

    def perform_update(self, serializer: serializers.BaseSerializer[OrgUnit]) -> None:
        data = serializer.validated_data
        assert serializer.instance is not None
        serializer.instance = services.org_unit_update(
            unit=serializer.instance,
            name=data.get("name"),
            parent=data.get("parent", services.UNSET),
            managers=data.get("managers"),
        )


# --- members ---------------------------------------------------------------------------


class MemberFilter(SyncFilterSet):
    subtree_of = django_filters.NumberFilter(
        method="filter_subtree_of", help_text=_("Only members of this unit and its descendants.")
    )

    class Meta:
        model = Membership
        fields = ["role", "org_unit", "is_active"]

    def filter_subtree_of(self, queryset: QuerySet[Membership], name: str, value: int) -> Any:
        unit = OrgUnit.objects.filter(pk=value).only("path").first()
        return queryset.filter(org_unit__path__startswith=unit.path) if unit else queryset.none()


class MemberViewSet(
    TenantViewMixin[Membership],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Membership],
):
    """Members of the tenant. Deactivate instead of deleting: history keeps its owners."""

    permission_classes = [IsTenantAdminOrReadOnly]
    filterset_class = MemberFilter
    search_fields = [
        "user__username",
        "user__first_name",
        "user__last_name",
        "user__email",
        "title",
    ]
    ordering_fields = ["user__username", "start_date", "created_at", "updated_at", "role"]
    ordering = ["user__username"]

    def get_serializer_class(self) -> type[MemberSerializer]:
        return MemberCreateSerializer if self.action == "create" else MemberSerializer

    model = Membership

    def visible_queryset(self, member: Membership) -> QuerySet[Membership]:
        return (
            selectors.visible_memberships(member)
            .select_related("user")
            .prefetch_related(_managed_links())
        )

    def perform_create(self, serializer: serializers.BaseSerializer[Membership]) -> None:
        data = dict(serializer.validated_data)
        data.pop("is_active", None)
        data.pop("end_date", None)
        serializer.instance = services.membership_create(
            tenant=self.membership.tenant,
            **data,
        )
        serializer.instance.managed_links = []  # type: ignore[attr-defined]

    def perform_update(self, serializer: serializers.BaseSerializer[Membership]) -> None:
        assert serializer.instance is not None
        member = services.membership_update(
            membership=serializer.instance, **serializer.validated_data
        )
        member.managed_links = serializer.instance.managed_links  # type: ignore[attr-defined]
        serializer.instance = member


# --- API tokens ------------------------------------------------------------------------


class ApiTokenSerializer(ModelSerializer[ApiToken]):
    acts_as: Any = serializers.PrimaryKeyRelatedField(
        queryset=Membership.objects.none(),
        required=False,
        help_text=_("The member whose visibility the token has; yourself by default."),
    )

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "acts_as", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]

    fields_change_on_writes_only = True  # get_fields narrows querysets on writes

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        membership = _writing_member(self)
        if membership is not None:
            fields["acts_as"].queryset = selectors.visible_memberships(membership)
        return fields


class ApiTokenFilter(TenantFilterSet):
    class Meta:
        model = ApiToken
        fields = ["acts_as"]


class ApiTokenViewSet(
    TenantViewMixin[ApiToken],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiToken],
):
    """Integration tokens: the key is returned once, at creation; DELETE revokes."""

    serializer_class = ApiTokenSerializer
    permission_classes = [IsTenantAdmin]
    ordering = ["-created_at"]
    ordering_fields = ["created_at", "last_used_at", "name"]
    search_fields = ["name", "prefix"]
    filterset_class = ApiTokenFilter

    model = ApiToken

    def visible_queryset(self, member: Membership) -> QuerySet[ApiToken]:
        return ApiToken.objects.all()

    @extend_schema(
        responses=inline_serializer(
            "ApiTokenCreated", {"token": ApiTokenSerializer(), "key": serializers.CharField()}
        )
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.api_token_create(
            acts_as=serializer.validated_data.get("acts_as") or self.membership,
            name=serializer.validated_data["name"],
        )
        return Response(
            {"token": ApiTokenSerializer(issued.token).data, "key": issued.key},
            status=status.HTTP_201_CREATED,
        )

    def perform_destroy(self, instance: ApiToken) -> None:
        services.api_token_revoke(token=instance)


# --- invitations ------------------------------------------------------------------------


class InvitationSerializer(ModelSerializer[Invitation]):
    org_unit: Any = serializers.PrimaryKeyRelatedField(
        queryset=OrgUnit.objects.none(), required=False, allow_null=True
    )
    status = serializers.CharField(read_only=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "org_unit",
            "invited_by",
            "status",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "declined_at",
        ]
        read_only_fields = [
            "id",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "declined_at",
        ]

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        if getattr(self.context.get("request"), "membership", None) is not None:
            fields["org_unit"].queryset = OrgUnit.objects.all()
        return fields


class InvitationViewSet(
    TenantViewMixin[Invitation],
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Invitation],
):
    """Invite someone (an existing account of another company, or anyone) by e-mail;
    they join when they accept while logged in as themselves. Admins only."""

    serializer_class = InvitationSerializer
    permission_classes = [IsTenantAdmin]
    ordering = ["-created_at"]
    ordering_fields = ["created_at", "email"]
    search_fields = ["email"]

    model = Invitation

    def visible_queryset(self, member: Membership) -> QuerySet[Invitation]:
        return Invitation.objects.all()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = services.invitation_create(
            invited_by=self.membership,
            email=serializer.validated_data["email"],
            role=serializer.validated_data.get("role", Role.REP),
            org_unit=serializer.validated_data.get("org_unit"),
            accept_url=request.build_absolute_uri(reverse("invitation-respond")),
        )
        return Response(
            InvitationSerializer(issued.invitation).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str | None = None) -> Response:
        invitation = services.invitation_revoke(invitation=self.get_object())
        return Response(InvitationSerializer(invitation).data)


class InvitationAcceptView(APIView):
    """Accept an invitation as the logged-in user (the JWT's user): a new membership."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=inline_serializer("InvitationAccept", {"token": serializers.CharField()}),
        responses=inline_serializer(
            "InvitationAccepted",
            {"tenant": serializers.SlugField(), "membership_id": serializers.IntegerField()},
        ),
    )
    def post(self, request: Request) -> Response:
        token = request.data.get("token") if isinstance(request.data, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise exceptions.ValidationError({"token": [_("Give the invitation's token.")]})
        membership = services.invitation_accept(token=token.strip(), user=request.user)
        return Response(
            {"tenant": membership.tenant.slug, "membership_id": membership.pk},
            status=status.HTTP_201_CREATED,
        )


# --- job runs --------------------------------------------------------------------------


class JobRunSerializer(ModelSerializer[JobRun]):
    night = serializers.DateField(
        source="nightly_run.night",
        read_only=True,
        allow_null=True,
        default=None,
        help_text=_("The local date of the night this run is a step of."),
    )

    class Meta:
        model = JobRun
        fields = [
            "id",
            "task_name",
            "task_id",
            "status",
            "started_at",
            "finished_at",
            "counts",
            "error",
            "nightly_run",
            "night",
            "step",
        ]
        read_only_fields = fields


class JobRunFilter(TenantFilterSet):
    class Meta:
        model = JobRun
        fields = ["task_name", "status", "nightly_run", "step"]


class JobRunViewSet(TenantViewMixin[JobRun], viewsets.ReadOnlyModelViewSet[JobRun]):
    """Background job runs of the tenant (admins only); a nightly step's run names its
    night (``nightly_run``, ``night``) and ``step``. ``error`` is a one-line summary."""

    serializer_class = JobRunSerializer
    permission_classes = [IsTenantAdmin]
    filterset_class = JobRunFilter
    ordering_fields = ["started_at", "finished_at"]
    ordering = ["-started_at"]

    model = JobRun

    def visible_queryset(self, member: Membership) -> QuerySet[JobRun]:
        return JobRun.objects.select_related("nightly_run")
