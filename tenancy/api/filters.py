"""Filters shared by every list endpoint."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters.filterset import FilterSetMetaclass
from django_scopes import scopes_disabled
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.request import Request


class StrictBooleanField(forms.Field):
    """``true``/``false`` (or 1/0, yes/no), absent for no filter; anything else is an
    error, where django-filter's widget turns ``overdue=maybe`` into no filter at all."""

    widget = forms.TextInput
    TRUE = frozenset({"true", "1", "yes", "on"})
    FALSE = frozenset({"false", "0", "no", "off"})

    def to_python(self, value: Any) -> bool | None:
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError(_("Use true or false."), code="invalid")


class ScopeSafeFilterSetMetaclass(FilterSetMetaclass):
    """Builds filter sets of tenant models at import time, outside any tenant scope.

    django-filter resolves lookups through ``Model._default_manager.all().query`` when
    the class is created; that touches no rows, so the scope check is lifted for the
    class definition only. Filtering itself always runs inside the request's scope.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        with scopes_disabled():
            new_class = super().__new__(mcs, name, bases, attrs)
        for declared in new_class.base_filters.values():
            if isinstance(declared, django_filters.BooleanFilter):
                declared.field_class = StrictBooleanField
                declared.extra.pop("widget", None)
        return new_class


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


class StrictOrderingFilter(OrderingFilter):
    """DRF's ordering, with an unknown field a 400 naming ``ordering`` (SPEC section 8)
    where DRF silently drops it."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if raw:
            valid = {
                name for name, _label in self.get_valid_fields(queryset, view, {"request": request})
            }
            asked = [term.strip() for term in raw.split(",") if term.strip()]
            unknown = [term for term in asked if term.lstrip("-") not in valid]
            if unknown or not asked:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            _("Cannot order by %(fields)s; choose from %(valid)s.")
                            % {
                                "fields": ", ".join(unknown) or raw,
                                "valid": ", ".join(sorted(valid)),
                            }
                        ]
                    }
                )
        return super().get_ordering(request, queryset, view)


class NamedSearchFilter(SearchFilter):
    """DRF's search, with its refusals (a NUL character) naming ``search``."""

    def get_search_terms(self, request: Request) -> list[str]:
        try:
            return list(super().get_search_terms(request))
        except ValidationError as error:
            raise ValidationError({self.search_param: error.detail}) from error
