"""Admin template tags: a date hierarchy whose price does not grow with the tenant.

Django's ``{% date_hierarchy %}`` lists the years (and, within a year, the months) that
have rows with ``SELECT DISTINCT date_trunc(…)`` over every row of the changelist: on a
tenant with 100,000 deals the opportunity page spent most of its time there. Here the
years and months run from the first row to the last one (Django reads them anyway to
pick the level; they are not read twice); a year or month in between with no row is
listed too and opens an empty list. Days, a single month's choices, are Django's own.

The first and last rows are read as two ``ORDER BY … LIMIT 1`` queries, not one
``MIN``/``MAX`` (PostgreSQL answers ``MIN``/``MAX`` from an index only for a single
table), and, on the first level, over the rows the member may see before the list's
filters: the open deals' earliest row is far into the ``(tenant, date)`` index behind
the closed ones, while the tenant's first and last rows are its two ends. The years
listed run from the member's first row to their last; one without a filtered row opens
an empty list, as an empty month between two others always did.
"""

from __future__ import annotations

import datetime
from typing import Any

from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.db.models import Max, Min
from django.utils import timezone

register = template.Library()


def _spanned(first: datetime.date, last: datetime.date, kind: str) -> list[datetime.date]:
    if kind == "year":
        return [
            first.replace(year=year, month=1, day=1) for year in range(first.year, last.year + 1)
        ]
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(first.replace(year=year, month=month, day=1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class _SpanDates:
    """Stands for ``cl.queryset`` in Django's ``date_hierarchy``: years and months from
    the first row to the last, other calls passed to the queryset."""

    def __init__(self, queryset: Any, unfiltered: Any) -> None:
        self.queryset = queryset
        self.unfiltered = unfiltered  # the changelist's rows before its filters
        self.bounds: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.queryset, name)

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # Django reads the first and last date to pick the level: kept, not read again.
        first, last = kwargs.get("first"), kwargs.get("last")
        if not args and isinstance(first, Min) and isinstance(last, Max) and len(kwargs) == 2:
            names = {getattr(e.source_expressions[0], "name", None) for e in (first, last)}
            if len(names) == 1 and None not in names:
                self.bounds = self._bounds(str(names.pop()), self.unfiltered)
                return self.bounds
        result: dict[str, Any] = self.queryset.aggregate(*args, **kwargs)
        return result

    def _bounds(self, field_name: str, rows: Any) -> dict[str, Any]:
        dated = rows.filter(**{f"{field_name}__isnull": False}).values_list(field_name, flat=True)
        return {
            "first": dated.order_by(field_name).first(),
            "last": dated.order_by(f"-{field_name}").first(),
        }

    def _span(self, field_name: str, kind: str, *, datetimes: bool) -> list[Any]:
        if kind not in ("year", "month"):
            method = self.queryset.datetimes if datetimes else self.queryset.dates
            return list(method(field_name, kind))
        bounds = self.bounds or self._bounds(field_name, self.queryset)
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        if datetimes:
            first, last = (
                timezone.localtime(v) if timezone.is_aware(v) else v for v in (first, last)
            )
            first = first.replace(hour=0, minute=0, second=0, microsecond=0)
        return _spanned(first, last, kind)

    def datetimes(self, field_name: str, kind: str, *args: Any, **kwargs: Any) -> list[Any]:
        return self._span(field_name, kind, datetimes=True)

    def dates(self, field_name: str, kind: str, *args: Any, **kwargs: Any) -> list[Any]:
        return self._span(field_name, kind, datetimes=False)


class _ChangeList:
    """The changelist as ``date_hierarchy`` sees it: its queryset lists spans."""

    def __init__(self, cl: Any) -> None:
        self._cl = cl
        self.queryset = _SpanDates(cl.queryset, cl.root_queryset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cl, name)


def tenant_date_hierarchy(cl: Any) -> Any:
    return date_hierarchy(_ChangeList(cl))  # type: ignore[arg-type]  # a stand-in


@register.tag(name="tenant_date_hierarchy")
def tenant_date_hierarchy_tag(parser: Any, token: Any) -> InclusionAdminNode:
    return InclusionAdminNode(  # type: ignore[call-arg]  # django-stubs lag the signature
        parser,
        token,
        func=tenant_date_hierarchy,
        template_name="date_hierarchy.html",
        takes_context=False,
    )
