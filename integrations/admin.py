"""Admin of the integrations (SPEC section 11), scoped to the tenant like every other."""

from __future__ import annotations

# --- webhooks: endpoints and the delivery log (admins only), through the services ------
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from integrations.webhooks import services as webhook_services
from tenancy.admin import ScopeSafeModelFormMetaclass, TenantScopedAdmin, error_messages
from tenancy.admin import request_membership as _membership
from tenancy.errors import DomainError


class _WebhookAdminOnly(TenantScopedAdmin):
    """Webhooks are the tenant admins' (and the platform superuser's, read-only)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._is_tenant_admin(request) or request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)


class WebhookEndpointForm(forms.ModelForm, metaclass=ScopeSafeModelFormMetaclass):
    url = forms.URLField(label=_("URL"), max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "event_types", "is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            return webhook_services.check_url(url)
        except ValidationError as error:
            raise ValidationError(error.message_dict["url"]) from error


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(_WebhookAdminOnly):
    form = WebhookEndpointForm
    list_display = ["url", "description", "is_active", "failing_since", "disabled_reason"]
    list_filter = ["is_active"]
    search_fields = ["url", "description"]
    readonly_fields = [
        "disabled_at",
        "disabled_reason",
        "failing_since",
        "previous_secret_expires_at",
        "created_by",
        "created_at",
    ]
    actions = ["rotate_secret", "send_test"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        editable = ["url", "description", "event_types", "is_active"]
        return editable if obj is None else editable + self.readonly_fields

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        member = _membership(request)
        if member is None:
            return
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        if change:
            webhook_services.endpoint_update(member=member, endpoint=obj, **data)
            return
        endpoint, secret = webhook_services.endpoint_create(
            member=member,
            url=form.cleaned_data["url"],
            event_types=form.cleaned_data["event_types"],
            description=form.cleaned_data.get("description", ""),
            is_active=form.cleaned_data.get("is_active", True),
        )
        obj.pk, obj.tenant_id = endpoint.pk, endpoint.tenant_id
        obj._state.adding = False
        messages.warning(
            request,
            _("Copy the signing secret now, it is not shown again: %(secret)s")
            % {"secret": secret},
        )

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        member = _membership(request)
        if member is not None:
            webhook_services.endpoint_delete(member=member, endpoint=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for endpoint in queryset:
            self.delete_model(request, endpoint)

    @admin.action(description=_("Rotate the signing secret (the old one signs for 24 hours)"))
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        member = _membership(request)
        if member is None:
            return
        for endpoint in queryset:
            try:
                _rotated, secret = webhook_services.endpoint_rotate_secret(
                    member=member, endpoint=endpoint
                )
            except DomainError as error:
                self.message_user(request, f"{endpoint}: {error}", messages.WARNING)
                continue
            self.message_user(
                request,
                _("%(endpoint)s: copy the new secret now, it is not shown again: %(secret)s")
                % {"endpoint": endpoint, "secret": secret},
                messages.WARNING,
            )

    @admin.action(description=_("Send a test (ping) event"))
    def send_test(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        member = _membership(request)
        if member is None:
            return
        for endpoint in queryset:
            try:
                webhook_services.endpoint_test(member=member, endpoint=endpoint)
            except DomainError as error:
                self.message_user(request, f"{endpoint}: {error}", messages.WARNING)
                continue
            self.message_user(request, _("%(endpoint)s: ping sent.") % {"endpoint": endpoint})


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "attempted_at", "response_code", "duration_ms", "error", "next_attempt_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(_WebhookAdminOnly):
    list_display = [
        "event_type",
        "endpoint",
        "status",
        "attempt_count",
        "last_response_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_type"]
    list_select_related = ["endpoint"]
    search_fields = ["message_id"]
    readonly_fields = (
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
    )
    fields = readonly_fields
    inlines = [WebhookAttemptInline]
    actions = ["send_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description=_("Send again"))
    def send_again(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        member = _membership(request)
        if member is None:
            return
        done = 0
        for delivery in queryset:
            try:
                webhook_services.delivery_retry(member=member, delivery=delivery)
                done += 1
            except DomainError as error:
                for message in error_messages(error):
                    self.message_user(request, f"{delivery}: {message}", messages.WARNING)
        if done:
            self.message_user(request, _("%(count)d deliveries sent again.") % {"count": done})


# --- end of webhooks ---------------------------------------------------------------------
