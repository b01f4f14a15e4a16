from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


def _record_event(sender: type[Any], *, source: Any, **kwargs: Any) -> None:
    """Points are written in the event's own transaction: they commit with it."""
    from incentives.services import points_for_record

    points_for_record(source=source)


class IncentivesConfig(AppConfig):
    name = "incentives"
    verbose_name = _("Incentives")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import events

        events.record_event.connect(_record_event, dispatch_uid="incentives.points")

        from incentives.tasks import compute_statements, points_catch_up, refresh_leaderboards
        from tenancy import nightly

        # The night's steps (SPEC section 7), each in its place in the night's order.
        nightly.register(
            name="points_catch_up", order=nightly.Order.POINTS_CATCH_UP, task=points_catch_up
        )
        nightly.register(
            name="leaderboards", order=nightly.Order.LEADERBOARDS, task=refresh_leaderboards
        )
        nightly.register(
            name="statements", order=nightly.Order.DRAFT_STATEMENTS, task=compute_statements
        )

        from incentives import digest

        digest.register()  # the morning digest's sections (crm.digest)
