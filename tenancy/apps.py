from __future__ import annotations

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


class TenancyConfig(AppConfig):
    name = "tenancy"
    verbose_name = _("Tenancy")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import tenancy.api.schema  # noqa: F401  (registers the OpenAPI auth extensions)
        from tenancy import orm, querydict
        from tenancy.db import on_connection_created

        orm.install()
        querydict.install()

        connection_created.connect(on_connection_created, dispatch_uid="crm_app_role")
