from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    """Import, export and webhooks (SPEC section 11): uses every domain app, none uses it."""

    name = "integrations"
    verbose_name = _("Integrations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Webhooks: the domain's signals write the outbox; the worker's tasks register.
        from integrations.webhooks import events, tasks  # noqa: F401

        events.connect()
