"""Base of every tenant API view: visibility-scoped querysets, the caller's membership."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from django.db.models import Model, QuerySet

from crm.models import Membership

M = TypeVar("M", bound=Model)


class TenantViewMixin(Generic[M]):
    """Views name their ``model`` and build rows from the caller's visibility selector."""

    model: type[M]
    request: Any

    @property
    def membership(self) -> Membership:
        return self.request.membership

    def visible_queryset(self, member: Membership) -> QuerySet[M]:
        raise NotImplementedError

    def get_queryset(self) -> QuerySet[M]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller
            return self.model._default_manager.none()
        return self.visible_queryset(self.membership)
