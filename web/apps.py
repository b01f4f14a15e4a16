from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    """The pages people open every day (SPEC section 12): the top floor, it reads the
    apps' selectors and calls their services; nothing imports it."""

    name = "web"
    verbose_name = _("Pages")
    default_auto_field = "django.db.models.BigAutoField"
