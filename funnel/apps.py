from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FunnelConfig(AppConfig):
    name = "funnel"
    verbose_name = _("Funnel")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from funnel import digest
        from funnel.tasks import evaluate_tenant_warnings
        from tenancy import nightly

        # The night's step (SPEC section 7), run in its place in the night's order.
        nightly.register(
            name="warnings", order=nightly.Order.WARNINGS, task=evaluate_tenant_warnings
        )
        digest.register()  # the morning digest's sections (crm.digest)
