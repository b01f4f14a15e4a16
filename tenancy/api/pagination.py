"""Pagination of every list (SPEC section 8): page numbers with a capped count, and a
cursor for offline sync.

* Page numbers: ``page`` and ``page_size`` (1–200; out of range or not a number is a
  ``400`` naming the parameter). The count is exact up to ``COUNT_LIMIT`` rows; beyond,
  ``count`` is the limit and ``count_is_exact`` is false (``tenancy.pagination``), so a
  page costs the same on a tenant of any size.
* Sync: a list whose filter set is a ``SyncFilterSet``, asked with ``updated_since`` or
  ``cursor``, pages by a keyset cursor ordered by ``(updated_at, id)``, with no count.
  Each page continues after the last row of the one before, so a row that changes
  between two pages is neither skipped nor sent twice in the same state: a row not yet
  sent moves further on and comes once; a row already sent comes again only with its
  new version, at its new place. ``cursor`` in the answer resumes exactly there (on
  the last page too: keep it for the next sync).
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from datetime import datetime
from typing import Any

from django.core.paginator import InvalidPage
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from tenancy.api.filters import SyncFilterSet
from tenancy.pagination import COUNT_LIMIT, CappedCountPaginator

MAX_PAGE_SIZE = 200
CURSOR_PARAM = "cursor"
UPDATED_SINCE_PARAM = "updated_since"
ORDERING_PARAM = "ordering"


def is_sync_list(view: Any) -> bool:
    """A list of a synced resource (its filter set offers ``updated_since``)."""
    filterset = getattr(view, "filterset_class", None)
    action = getattr(view, "action", "list")
    return (
        isinstance(filterset, type)
        and issubclass(filterset, SyncFilterSet)
        and action in ("list", None)
    )


def encode_cursor(updated_at: datetime, pk: int) -> str:
    raw = f"{updated_at.isoformat()}|{pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, int]:
    """The ``(updated_at, id)`` a cursor stands for; a ``400`` naming ``cursor`` if it is
    not one this API gave out."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        stamp, _sep, pk = raw.partition("|")
        updated_at = datetime.fromisoformat(stamp)
        if updated_at.tzinfo is None:
            raise ValueError(stamp)
        return updated_at, int(pk)
    except (ValueError, UnicodeDecodeError, binascii.Error) as error:
        raise ValidationError(
            {
                CURSOR_PARAM: [
                    _(
                        "This cursor was not given out by this list. Start again with "
                        "updated_since, or from the cursor of an earlier answer."
                    )
                ]
            }
        ) from error


class PageNumberPagination(pagination.PageNumberPagination):
    """Page numbers with a capped count, or the sync cursor (see the module)."""

    django_paginator_class = CappedCountPaginator
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    cursor_mode = False

    def get_page_size(self, request: Request) -> int | None:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValidationError(
                {"page_size": [_("Must be a whole number from 1 to %d.") % MAX_PAGE_SIZE]}
            )
        return size

    def paginate_queryset(
        self, queryset: Any, request: Request, view: Any = None
    ) -> list[Any] | None:
        self.request = request
        params = request.query_params
        if is_sync_list(view) and (UPDATED_SINCE_PARAM in params or CURSOR_PARAM in params):
            return self._sync_page(queryset, request)
        page_size = self.get_page_size(request)
        if not page_size:
            return None
        paginator = self.django_paginator_class(queryset, page_size)
        raw = params.get(self.page_query_param) or 1
        if raw not in self.last_page_strings:
            try:
                number = int(raw)
            except (TypeError, ValueError):
                number = 0
            if number < 1:
                raise ValidationError(
                    {self.page_query_param: [_("Must be a whole number from 1.")]}
                )
        if raw in self.last_page_strings:
            raw = paginator.num_pages
        try:
            self.page = paginator.page(raw)
        except InvalidPage as error:
            if paginator.count_is_exact:
                message = _("There is no page %(page)s: the last one is %(last)d.") % {
                    "page": raw,
                    "last": paginator.num_pages,
                }
            else:
                message = _("There is no page %(page)s.") % {"page": raw}
            raise ValidationError({self.page_query_param: [message]}) from error
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return list(self.page.object_list)

    def get_paginated_response(self, data: Any) -> Response:
        if self.cursor_mode:
            return Response(
                OrderedDict(
                    [("next", self._next_cursor_link()), ("cursor", self.cursor), ("results", data)]
                )
            )
        assert self.page is not None
        paginator = self.page.paginator
        return Response(
            OrderedDict(
                [
                    ("count", paginator.count),
                    ("count_is_exact", getattr(paginator, "count_is_exact", True)),
                    ("next", self.get_next_link()),
                    ("previous", self.get_previous_link()),
                    ("results", data),
                ]
            )
        )

    # --- sync cursor ------------------------------------------------------------------

    def _sync_page(self, queryset: QuerySet[Any], request: Request) -> list[Any]:
        if request.query_params.get(ORDERING_PARAM):
            raise ValidationError(
                {
                    ORDERING_PARAM: [
                        _(
                            "A sync (updated_since or cursor) lists rows in the order they "
                            "changed; leave out ordering."
                        )
                    ]
                }
            )
        size = self.get_page_size(request) or self.page_size or MAX_PAGE_SIZE
        self.cursor_mode = True
        rows = queryset.order_by("updated_at", "pk")
        raw = request.query_params.get(CURSOR_PARAM)
        position = decode_cursor(raw) if raw else None
        if position is not None:
            updated_at, pk = position
            rows = rows.filter(updated_at__gte=updated_at).exclude(
                updated_at=updated_at, pk__lte=pk
            )
        page = list(rows[: size + 1])
        self.has_more = len(page) > size
        page = page[:size]
        if page:
            self.cursor: str | None = encode_cursor(page[-1].updated_at, page[-1].pk)
        else:
            self.cursor = raw or None
        return page

    def _next_cursor_link(self) -> str | None:
        if not self.has_more or self.cursor is None:
            return None
        assert self.request is not None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, CURSOR_PARAM, self.cursor)

    # --- schema -----------------------------------------------------------------------

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "count": {
                    "type": "integer",
                    "description": str(
                        _(
                            "Rows matching, exact up to %d; absent in a sync (updated_since "
                            "or cursor)."
                        )
                        % COUNT_LIMIT
                    ),
                },
                "count_is_exact": {
                    "type": "boolean",
                    "description": str(
                        _("False when there are more rows than count: more than %d.") % COUNT_LIMIT
                    ),
                },
                "next": {"type": "string", "nullable": True, "format": "uri"},
                "previous": {"type": "string", "nullable": True, "format": "uri"},
                "cursor": {
                    "type": "string",
                    "nullable": True,
                    "description": str(
                        _("Sync only: pass it as cursor to continue after the last row.")
                    ),
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        if is_sync_list(view):
            parameters.append(
                {
                    "name": CURSOR_PARAM,
                    "required": False,
                    "in": "query",
                    "description": str(
                        _(
                            "Sync: continue after this cursor (from the previous answer); "
                            "rows come ordered by updated_at and id, with no count."
                        )
                    ),
                    "schema": {"type": "string"},
                }
            )
        return parameters
