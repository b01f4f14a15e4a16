"""Exports (SPEC 11): any list, with its filters and within the caller's visibility, as
CSV or XLSX, streamed.

``GET /api/v1/exports/<list>/?format=csv|xlsx&<the list's filters>``: the rows are those
``GET /api/v1/<list>/`` would page through (the list viewset's own queryset and filter
backends build them), every one of them, in id order. Customers, contacts, leads,
opportunities, payments and members are written with the import's columns (so a file exported
and imported again changes nothing); the other lists with their API fields.

The response streams: the rows are read and written chunk by chunk while the body is
sent, so memory stays flat whatever the size. The request's tenant scope (and its
transaction) ends when the view returns, before the body is sent, so the stream enters
the same tenant's scope again (ORM scope and row-level security) for its reads; the
query was built by the request, inside the caller's visibility.

XLSX is written by hand as a minimal workbook (inline strings, one sheet) through a
streaming ZIP: a spreadsheet library would keep every string until the end.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api import records
from integrations.imports import kinds
from tenancy.api.renderers import JSONRenderer
from tenancy.api.views import MemberViewSet
from tenancy.dates import tenant_zone
from tenancy.scope import tenant_scope

# The lists that can be exported: name → (list viewset, import kind or None).
EXPORTS: dict[str, tuple[type[viewsets.GenericViewSet[Any]], str | None]] = {
    "customers": (records.CustomerViewSet, "customers"),
    "contacts": (records.ContactViewSet, "contacts"),
    "leads": (records.LeadViewSet, "leads"),
    "opportunities": (records.OpportunityViewSet, "opportunities"),
    "payments": (records.PaymentViewSet, "payments"),
    "members": (MemberViewSet, "members"),
    "visits": (records.VisitViewSet, None),
    "activities": (records.ActivityViewSet, None),
}
FORMATS = ("csv", "xlsx")
CHUNK = 2000


# --- writers --------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


class _Sink:
    """A write-only, unseekable file that hands its bytes over when asked."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def csv_stream(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """UTF-8 with a BOM, so that spreadsheet programs read the Chinese right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield ("\ufeff" + buffer.getvalue()).encode()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([_text(value) for value in row])
        yield buffer.getvalue().encode()


_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_NS}" xmlns:r="{_REL}">'
        '<sheets><sheet name="Export" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
}


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "<c/>"
    if isinstance(value, (int, Decimal, float)) and not isinstance(value, bool):
        return f'<c t="n"><v>{value}</v></c>'
    text = escape(_XML_ILLEGAL.sub("", _text(value)))
    return f'<c t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


def xlsx_stream(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:  # type: ignore[call-overload]
        for name, text in _PARTS.items():
            archive.writestr(name, text)
        yield sink.take()
        with archive.open("xl/worksheets/sheet1.xml", mode="w", force_zip64=True) as sheet:
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_NS}">'
                "<sheetData>".encode()
            )
            sheet.write(("<row>" + "".join(_cell(h) for h in header) + "</row>").encode())
            lines: list[str] = []
            for row in rows:
                lines.append("<row>" + "".join(_cell(value) for value in row) + "</row>")
                if len(lines) >= 500:
                    sheet.write("".join(lines).encode())
                    lines.clear()
                    yield sink.take()
            sheet.write(("".join(lines) + "</sheetData></worksheet>").encode())
    yield sink.take()


# --- rows of a list ----------------------------------------------------------------------


def _serializer_rows(
    view: viewsets.GenericViewSet[Any], queryset: QuerySet[Any]
) -> tuple[list[str], Callable[[], Iterator[list[Any]]]]:
    serializer = view.get_serializer()
    names = list(serializer.fields)  # type: ignore[attr-defined]
    labels = [str(serializer.fields[name].label or name) for name in names]  # type: ignore[attr-defined]

    def rows() -> Iterator[list[Any]]:
        for instance in queryset.order_by("pk").iterator(chunk_size=CHUNK):
            data = view.get_serializer(instance).data
            yield [
                ", ".join(map(_text, data[n])) if isinstance(data[n], list) else data[n]
                for n in names
            ]

    return labels, rows


def export_response(request: Request, name: str, file_format: str) -> StreamingHttpResponse:
    """Build the list's query inside the request, stream it inside the tenant's scope."""
    viewset_class, kind_name = EXPORTS[name]
    view = viewset_class()
    view.request = request
    view.args, view.kwargs = (), {}
    view.action = "list"
    view.format_kwarg = None
    queryset = view.filter_queryset(view.get_queryset())
    member = request.membership  # type: ignore[attr-defined]
    tenant_id = member.tenant_id
    zone = tenant_zone(member.tenant)
    if kind_name is not None:
        kind = kinds.KINDS[kind_name]
        header = [str(column.label) for column in kind.columns]

        def rows() -> Iterator[list[Any]]:
            return kind.export_rows(queryset, zone)
    else:
        header, rows = _serializer_rows(view, queryset)

    writer = csv_stream if file_format == "csv" else xlsx_stream

    def body() -> Iterator[bytes]:
        with tenant_scope(tenant_id):
            yield from writer(header, rows())

    content_type = (
        "text/csv; charset=utf-8"
        if file_format == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response = StreamingHttpResponse(body(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response


class _FileRenderer(BaseRenderer):
    charset = None

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> Any:
        return JSONRenderer().render(data)


class CSVRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"


class XLSXRenderer(_FileRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"


class _JSONForErrors(BaseContentNegotiation):
    """``format`` names the file, not a renderer: errors are answered in JSON."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        renderer = JSONRenderer()
        return renderer, renderer.media_type


class ExportView(APIView):
    """``GET /exports/<list>/?format=csv|xlsx``: the list's rows as a file."""

    content_negotiation_class = _JSONForErrors
    renderer_classes = [JSONRenderer, CSVRenderer, XLSXRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(FORMATS), required=True),
            OpenApiParameter("name", str, OpenApiParameter.PATH, enum=list(EXPORTS)),
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, XLSXRenderer.media_type): OpenApiTypes.BINARY,
        },
        description="The list's rows (with the list's own filters) as a streamed file.",
    )
    def get(self, request: Request, name: str) -> Response | StreamingHttpResponse:
        if name not in EXPORTS:
            raise exceptions.NotFound()
        file_format = request.query_params.get("format", "")
        if file_format not in FORMATS:
            raise exceptions.ValidationError({"format": [_("Choose csv or xlsx.")]})
        return export_response(request, name, file_format)
