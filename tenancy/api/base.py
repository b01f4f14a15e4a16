"""Base of every tenant API view: visibility-scoped querysets, the caller's membership."""

from __future__ import annotations

from datetime import date
from typing import Any, Generic, TypeVar

from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from tenancy.models import Membership
from tenancy.orm import reading_columns

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

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """DRF's ``ListModelMixin.list``, with a page rendered by the serializer class
        without a serializer where it can (``ModelSerializer.represent_rows``), and read
        as ``ColumnRow`` rows when the serializer shows nothing but columns of the rows and
        row properties whose related rows the page selects (``column_reads``,
        ``tenancy.orm.reading_columns``: no model instance is made for it)."""
        view: Any = self  # a GenericAPIView, which this mixin precedes
        queryset = view.filter_queryset(self.get_queryset())
        serializer_class = view.get_serializer_class()
        column_reads = getattr(serializer_class, "column_reads", None)
        reads = column_reads() if column_reads else None  # None: no column renderer
        with reading_columns(queryset, reads):  # the page only
            page = view.paginate_queryset(queryset)
        if page is None:
            return Response(view.get_serializer(queryset, many=True).data)
        represent = getattr(serializer_class, "represent_rows", None)
        data = represent(page) if represent is not None else None
        if data is None:
            data = view.get_serializer(page, many=True).data
        response: Response = view.get_paginated_response(data)
        return response


def date_param(request: Request, name: str) -> date | None:
    """The query parameter ``name`` as a date (None when absent); a 400 when malformed."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError as error:
        raise ValidationError({name: [_("Use YYYY-MM-DD.")]}) from error


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, with JSON nested too deep for Python's decoder (a few KB of
    ``[[[[``) a 400 like any other malformed body instead of a ``RecursionError``."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as error:
            raise ParseError(_("JSON parse error - the body is nested too deeply.")) from error
