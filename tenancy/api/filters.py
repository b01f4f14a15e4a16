"""Filters shared by every list endpoint."""

from __future__ import annotations

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from django_filters.filterset import FilterSetMetaclass
from django_scopes import scopes_disabled


class ScopeSafeFilterSetMetaclass(FilterSetMetaclass):
    """Builds filter sets of tenant models at import time, outside any tenant scope.

    django-filter resolves lookups through ``Model._default_manager.all().query`` when
    the class is created; that touches no rows, so the scope check is lifted for the
    class definition only. Filtering itself always runs inside the request's scope.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        with scopes_disabled():
            return super().__new__(mcs, name, bases, attrs)


class TenantFilterSet(django_filters.FilterSet, metaclass=ScopeSafeFilterSetMetaclass):
    """Base of every filter set of a tenant model.

    Views declare a ``filterset_class`` derived from this one, never ``filterset_fields``:
    a class built on the fly would resolve its lookups outside the scope-safe metaclass.
    """


class SyncFilterSet(TenantFilterSet):
    """Adds ``updated_since`` for mobile offline sync (SPEC section 8)."""

    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text=_("Only rows changed at or after this ISO 8601 time."),
    )
