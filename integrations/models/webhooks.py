"""Webhooks (SPEC section 11): endpoints, the outbox of deliveries and their attempts.

A delivery is one event for one endpoint, written in the transaction that made the
change (the outbox); a worker sends it and records each attempt. The scheme is Standard
Webhooks: see ``integrations.webhooks``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenancy.models import Membership, TenantOwned


class WebhookEvent(models.TextChoices):
    """The events an endpoint can subscribe to (README "Webhooks" documents each payload)."""

    OPPORTUNITY_CREATED = "opportunity.created", _("Opportunity created")
    OPPORTUNITY_STAGE_CHANGED = "opportunity.stage_changed", _("Opportunity changed stage")
    OPPORTUNITY_WON = "opportunity.won", _("Opportunity won")
    OPPORTUNITY_LOST = "opportunity.lost", _("Opportunity lost")
    PAYMENT_RECEIVED = "payment.received", _("Payment received")
    PAYMENT_REVERSED = "payment.reversed", _("Payment reversed")
    VISIT_CHECKED_IN = "visit.checked_in", _("Visit checked in")
    TARGET_ADJUSTED = "target.adjusted", _("Target adjusted")
    ALERT_OPENED = "alert.opened", _("Alert opened")
    STATEMENT_APPROVED = "statement.approved", _("Commission statement approved")


# Sent only by the endpoint's "test" action, whatever it subscribes to.
PING = "ping"


class WebhookEndpoint(TenantOwned):
    """Where a tenant's events go. The secret (``whsec_`` + base64) signs every message;
    after a rotation the previous one signs too until ``previous_secret_expires_at``."""

    url = models.URLField(_("URL"), max_length=2000)
    description = models.CharField(_("description"), max_length=200, blank=True)
    event_types = ArrayField(
        models.CharField(max_length=40, choices=WebhookEvent.choices),
        verbose_name=_("event types"),
    )
    secret = models.CharField(_("secret"), max_length=100, editable=False)
    previous_secret = models.CharField(
        _("previous secret"), max_length=100, blank=True, editable=False
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret expires at"), null=True, blank=True, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True, editable=False)
    disabled_reason = models.CharField(
        _("disabled because"), max_length=200, blank=True, editable=False
    )
    failing_since = models.DateTimeField(
        _("failing since"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("The first failed attempt since the last success."),
    )
    created_by = models.ForeignKey(
        Membership,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        editable=False,
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="webhookendpoint_tenant_id_uniq")
        ]
        indexes = [
            # The outbox writer's lookup: the tenant's active endpoints.
            models.Index(
                fields=["tenant", "is_active"],
                name="webhookendpoint_active",
                condition=Q(is_active=True),
            )
        ]

    def __str__(self) -> str:
        return self.description or self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed")


class WebhookDelivery(TenantOwned):
    """One event for one endpoint (the outbox row) and where its sending stands."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
        verbose_name=_("endpoint"),
    )
    event_type = models.CharField(_("event type"), max_length=40)
    # The ``webhook-id`` header: the same on every attempt, so receivers can deduplicate.
    message_id = models.CharField(_("message id"), max_length=40, editable=False)
    payload: models.JSONField[Any, Any] = models.JSONField(_("payload"), editable=False)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_response_code = models.PositiveIntegerField(_("last response code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="webhookdelivery_tenant_id_uniq"),
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "message_id"], name="webhookdelivery_message_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="webhookdelivery_created"),
            # The sweeper's search: what is due.
            models.Index(
                fields=["tenant", "next_attempt_at"],
                name="webhookdelivery_due",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.message_id}"


class WebhookAttempt(TenantOwned):
    """One try at sending a delivery: when, the answer, how long, what went wrong."""

    delivery = models.ForeignKey(
        WebhookDelivery,
        on_delete=models.CASCADE,
        related_name="attempts",
        db_index=False,
        verbose_name=_("delivery"),
    )
    number = models.PositiveIntegerField(_("number"))
    attempted_at = models.DateTimeField(_("attempted at"), default=timezone.now)
    response_code = models.PositiveIntegerField(_("response code"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    error = models.CharField(_("error"), max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="webhookattempt_tenant_id_uniq"),
            # One row per attempt number: two workers can never both record attempt n.
            models.UniqueConstraint(
                fields=["tenant", "delivery", "number"], name="webhookattempt_number_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.response_code or self.error[:40]}"
