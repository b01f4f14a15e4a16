from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _default_pipeline(sender: Any, tenant: Any, **kwargs: Any) -> None:
    from crm.services import pipeline_create_default

    pipeline_create_default(tenant=tenant)


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = _("CRM")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tenancy.signals import tenant_created

        tenant_created.connect(_default_pipeline, dispatch_uid="crm_default_pipeline")

        from crm import digest, tasks
        from tenancy import nightly

        digest.register_crm_sections()
        # The night's last step (SPEC section 7): prepare the day's digests.
        nightly.register(
            name="digests", order=nightly.Order.DIGESTS, task=tasks.prepare_tenant_digests
        )
