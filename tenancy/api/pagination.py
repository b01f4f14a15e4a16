from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

MAX_PAGE_SIZE = 200


class PageNumberPagination(pagination.PageNumberPagination):
    """``page`` and ``page_size`` (1–200); a page size out of range is a 400, not clamped."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

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
