"""Serializer fields that check payload ids against the caller's visibility."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import serializers

from tenancy.models import Membership


class VisiblePrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """An id the caller may see: another tenant's or another rep's id is 'does not exist'.

    ``selector`` is the model's visibility selector (``crm.selectors.visible_*``); without
    one every row of the tenant is acceptable (configuration such as stages).
    """

    def __init__(
        self,
        model: type[Model],
        selector: Callable[[Membership], QuerySet[Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self.model = model
        self.selector = selector
        if not kwargs.get("read_only"):
            kwargs["queryset"] = model._default_manager.none()
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        member = getattr(self.context.get("request"), "membership", None)
        if member is None:
            return self.model._default_manager.none()
        if self.selector is not None:
            return self.selector(member)
        return self.model._default_manager.all()
