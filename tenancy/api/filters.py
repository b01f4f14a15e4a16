"""Filters shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from functools import partial
from typing import Any

import django_filters
from django import forms
from django.db.models import Manager, QuerySet
from django.forms.utils import ErrorDict, ErrorList
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict
from django.utils.translation import gettext_lazy as _
from django_filters.filterset import FilterSetMetaclass
from django_filters.widgets import SuffixedMultiWidget
from django_scopes import scopes_disabled
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.request import Request

from tenancy.copying import shallow_copy
from tenancy.memo import remember
from tenancy.orm import filter_column


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

    Each request's filter set copies the class's filters shallowly, with their own
    ``extra`` arguments, where django-filter deep-copies them (choices, querysets, help
    texts: a fifth of a small list's time), and copies each when it is first read
    (``_FilterCopies``: a request reads the one or two it names). A filter's per-request
    state is what the filter set assigns (``model``, ``parent``) and what it builds
    lazily on itself (its form field, from ``extra``, which a related filter updates
    with the request's queryset; a ``method`` filter's callable, which finds the method
    on its filter set): all of it on the copy.
    """

    def __init__(
        self,
        data: Any = None,
        queryset: QuerySet[Any] | None = None,
        *,
        request: Any = None,
        prefix: str | None = None,
    ) -> None:
        # django_filters.FilterSet.__init__, but for the copy of the filters.
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        self.filters = _FilterCopies(self)

    def get_form_class(self) -> Any:
        """The form class, made once per filter set class (django-filter makes a class, and
        a form field per filter, on every request). A form instance still copies its
        fields. Not cached when a filter's choices come from the request or its tenant
        (``_per_request``): those are made per request as django-filter does."""
        cls = type(self)
        form_class = _FORM_CLASSES.get(cls)
        if form_class is None:
            form_class = super().get_form_class()
            if not any(_per_request(f) for f in self.filters.values()):
                _FORM_CLASSES[cls] = form_class
        return form_class

    @property
    def qs(self) -> Any:
        """django-filter's ``qs``, without its copy of the queryset before filtering: a
        filter returns a new queryset anyway; with none given, the copy is made after."""
        if not hasattr(self, "_qs"):
            rows = self.queryset
            if self.is_bound:
                self.errors  # noqa: B018 - validates first, as django-filter does
                rows = self.filter_queryset(rows)
            self._qs = rows.all() if rows is self.queryset else rows
        return self._qs

    def is_valid(self) -> bool:
        """Validate the parameters the request gave: the form holds only the filters whose
        parameter is in the query (and the required ones). An absent filter does not
        filter, so this changes no answer, only the work: Django's form deep-copies and
        cleans every field, a dozen per list where a request names one or two; and the
        narrowed form, which only cleans its fields, is not made at all: its fields clean
        the parameters as the form would (``_CheckedParameters``). The browsable API's
        filter dialog renders the full form of a filter set of its own."""
        if not hasattr(self, "_form") and self.is_bound:
            form_class = self.get_form_class()
            if _FORM_CLASSES.get(type(self)) is form_class:  # a class made once: narrow it
                form_class = _given_fields_form(form_class, self.data, self.form_prefix)
            if getattr(form_class, "checked_without_form", False):
                self._form = _CheckedParameters(form_class, self.data, self.form_prefix)
            else:
                self._form = form_class(self.data, prefix=self.form_prefix)
        return bool(super().is_valid())


class _FilterCopies(MutableMapping[str, Any]):
    """A filter set's filters: its class's, each copied for the filter set (bound to it
    and its queryset's model) when first read. Iterating reads, so copies, them all."""

    def __init__(self, filterset: TenantFilterSet) -> None:
        self._filterset = filterset
        self._copies: dict[str, Any] = {}
        self._names = list(filterset.base_filters)

    def __getitem__(self, name: str) -> Any:
        copied = self._copies.get(name)
        if copied is None:
            original = self._filterset.base_filters[name]  # KeyError for an unknown one
            copied = self._copies[name] = _copy_filter(original)
            copied.model = self._filterset.queryset.model
            copied.parent = self._filterset
        return copied

    def __setitem__(self, name: str, value: Any) -> None:
        if name not in self._names:
            self._names.append(name)
        self._copies[name] = value

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self._copies.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._names


_FORM_CLASSES: dict[type, Any] = {}
_GIVEN_FIELDS_FORMS: dict[tuple[Any, tuple[str, ...]], Any] = {}
_GIVEN_FIELDS_FORMS_LIMIT = 4096


class _SharedFields(dict[str, Any]):
    """A narrowed form's fields, which its instances share instead of deep-copying them.

    A form copies its class's fields so that an instance may change its own (a rendered
    form sets attributes, a view narrows a choice). The narrowed form only validates the
    request's parameters, which reads its fields and changes none of them, and is never
    rendered (the browsable API renders the full form); each instance still gets a dict
    of its own. Copying a date range's field (two fields, three widgets) was 45 µs of a
    rep's page of visits, in alternating requests."""

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return dict(self)


#: Widgets' ``value_omitted_from_data`` that depend only on which parameters are given
#: (Django's and django-filter's): a form of such widgets is narrowed once per set of
#: parameter names.
_OMITTED_BY_NAMES = frozenset(
    {
        forms.Widget.value_omitted_from_data,
        forms.CheckboxInput.value_omitted_from_data,
        forms.CheckboxSelectMultiple.value_omitted_from_data,
        forms.SelectMultiple.value_omitted_from_data,
        forms.FileInput.value_omitted_from_data,
        forms.ClearableFileInput.value_omitted_from_data,
        forms.SelectDateWidget.value_omitted_from_data,
        forms.MultiWidget.value_omitted_from_data,
        SuffixedMultiWidget.value_omitted_from_data,
    }
)
_BY_NAMES: dict[Any, bool] = {}
_NARROWED_BY_NAMES: dict[tuple[Any, str | None, frozenset[str]], Any] = {}


def _omitted_by_names(widget: Any) -> bool:
    """Whether ``widget`` (and each of its parts) tells an omitted value by the names
    given alone (``_OMITTED_BY_NAMES``)."""
    if type(widget).value_omitted_from_data not in _OMITTED_BY_NAMES:
        return False
    return all(_omitted_by_names(part) for part in getattr(widget, "widgets", ()))


def _given_fields_form(form_class: Any, data: Any, prefix: str | None) -> Any:
    """``form_class`` with only its required fields and those ``data`` gives a value for
    (as the field's widget reads it: a range's two parameters, a list's one), made once
    per class and set of fields; its instances share its fields (``_SharedFields``). When
    every widget tells that by the names given alone, the answer is kept per set of
    names (asking each widget was a fifth of validating a rep's filter of visits)."""
    by_names = _BY_NAMES.get(form_class)
    if by_names is None:
        by_names = _BY_NAMES[form_class] = all(
            _omitted_by_names(field.widget) for field in form_class.base_fields.values()
        )
    if by_names:
        names = (form_class, prefix, frozenset(data))
        known = _NARROWED_BY_NAMES.get(names)
        if known is not None:
            return known
    given = tuple(
        name
        for name, field in form_class.base_fields.items()
        if field.required
        or not field.widget.value_omitted_from_data(
            data,
            {},
            f"{prefix}-{name}" if prefix else name,  # Form.add_prefix
        )
    )
    key = (form_class, given)
    narrowed = _GIVEN_FIELDS_FORMS.get(key)
    if narrowed is None:
        narrowed = type(form_class)(form_class.__name__, (form_class,), {})
        narrowed.base_fields = _SharedFields({name: form_class.base_fields[name] for name in given})
        narrowed.declared_fields = dict(narrowed.base_fields)
        narrowed.checked_without_form = _only_cleans_fields(narrowed)
        remember(_GIVEN_FIELDS_FORMS, key, narrowed, _GIVEN_FIELDS_FORMS_LIMIT)
    if by_names:
        remember(_NARROWED_BY_NAMES, names, narrowed, _GIVEN_FIELDS_FORMS_LIMIT)
    return narrowed


class _CheckedParameters:
    """A narrowed form's validation of the request's parameters (``cleaned_data``,
    ``errors``, ``is_valid``), made without the form: what ``Form.full_clean`` leaves
    for a form that only cleans each of its fields, as a filter set's form does (its
    class does not override ``clean`` or ``_post_clean``, and has no ``clean_<name>``
    method, disabled field or file field; ``_given_fields_form`` checks). Making and
    cleaning the form (bound fields, an error dict, the form's translated label suffix)
    was a third of validating a rep's filter of visits, in alternating requests."""

    def __init__(self, form_class: Any, data: Any, prefix: str | None) -> None:
        self.cleaned_data: dict[str, Any] = {}
        self.errors = ErrorDict()
        files: MultiValueDict[str, Any] = MultiValueDict()
        for name, field in form_class.base_fields.items():
            key = f"{prefix}-{name}" if prefix else name  # Form.add_prefix
            try:
                value = field.widget.value_from_datadict(data, files, key)
                self.cleaned_data[name] = field.clean(value)
            except forms.ValidationError as error:  # Form.add_error, for a field's error
                self.errors[name] = ErrorList(error.error_list)

    def is_valid(self) -> bool:
        return not self.errors


def _only_cleans_fields(form_class: Any) -> bool:
    """The form's validation is its fields' (see ``_CheckedParameters``)."""
    form: Any = forms.Form
    return (
        form_class.clean is form.clean
        and form_class._post_clean is form._post_clean
        and form_class._clean_fields is form._clean_fields
        and form_class._clean_form is form._clean_form
        and not any(
            hasattr(form_class, f"clean_{name}")
            or field.disabled
            or isinstance(field, forms.FileField)
            for name, field in form_class.base_fields.items()
        )
    )


def _per_request(filter_: django_filters.Filter) -> bool:
    """A filter whose choices depend on the request or its tenant: a callable ``queryset``
    (given the request), or a manager (``.all()`` filters by the tenant in scope). The
    choices of a queryset made with the class (outside any scope) do not."""
    queryset = getattr(filter_, "queryset", None)
    return callable(queryset) or isinstance(queryset, Manager)


def _copy_filter(original: django_filters.Filter) -> django_filters.Filter:
    copied = shallow_copy(original)
    copied.extra = dict(original.extra)
    copied.__dict__.pop("_field", None)  # built per filter set, from its own extra
    if original.method is not None:  # a FilterMethod calls back the filter it belongs to
        copied.method = original.method
    copied.get_method = partial(_get_method, copied)
    return copied


def _get_method(filter_: django_filters.Filter, queryset: QuerySet[Any]) -> Any:
    """``Filter.get_method``, filtering a column of the model's own table with the
    condition Django's ``filter`` adds, without resolving its name through the join
    machinery (``tenancy.orm.filter_column``)."""
    if filter_.exclude:
        return queryset.exclude
    return partial(filter_column, queryset)


class SyncFilterSet(TenantFilterSet):
    """Adds ``updated_since`` for mobile offline sync (SPEC section 8)."""

    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text=_("Only rows changed at or after this ISO 8601 time."),
    )


class StrictOrderingFilter(OrderingFilter):
    """DRF's ordering, with an unknown field a 400 naming ``ordering`` (SPEC section 8)
    where DRF silently drops it (``--name`` too: one ``-`` reverses a field). Terms it
    accepts are the ordering as given, which DRF would check against the fields again."""

    def get_ordering(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if raw:
            valid = {
                name for name, _label in self.get_valid_fields(queryset, view, {"request": request})
            }
            asked = [term.strip() for term in raw.split(",") if term.strip()]
            unknown = [term for term in asked if term.removeprefix("-") not in valid]
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
            return asked
        return self.get_default_ordering(view)


class NamedSearchFilter(SearchFilter):
    """DRF's search, with its refusals (a NUL character) naming ``search``.

    A list without search fields, or a request without ``search``, searches nothing and
    is not read further: DRF builds and runs a form field on every list to read the
    absent parameter (35 µs a rep's page of visits, in alternating requests)."""

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> Any:
        if not self.get_search_fields(view, request) or not request.query_params.get(
            self.search_param
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)

    def get_search_terms(self, request: Request) -> list[str]:
        try:
            return list(super().get_search_terms(request))
        except ValidationError as error:
            raise ValidationError({self.search_param: error.detail}) from error
