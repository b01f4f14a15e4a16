from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TargetsConfig(AppConfig):
    name = "targets"
    verbose_name = _("Targets")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from targets import digest
        from targets.tasks import snapshot_tenant_achievements
        from tenancy import nightly

        # The night's step (SPEC section 7), run in its place in the night's order.
        nightly.register(
            name="snapshots", order=nightly.Order.SNAPSHOTS, task=snapshot_tenant_achievements
        )
        digest.register()  # the morning digest's section (crm.digest)
