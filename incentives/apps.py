from typing import Any

from django.apps import AppConfig


def _record_event(sender: type[Any], *, source: Any, **kwargs: Any) -> None:
    """Points are written in the event's own transaction: they commit with it."""
    from incentives.services import points_for_record

    points_for_record(source=source)


class IncentivesConfig(AppConfig):
    name = "incentives"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from crm import events

        events.record_event.connect(_record_event, dispatch_uid="incentives.points")
