"""One error shape for every 4xx (SPEC section 8).

``{"error": {"code": "...", "message": "...", "fields": {"field": ["..."]}}}``
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from tenancy import errors as domain


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = _lazy("The request conflicts with the current state of the resource.")
    default_code = "conflict"


_API_ERRORS: dict[type[domain.DomainError], type[exceptions.APIException]] = {
    domain.NotFound: exceptions.NotFound,
    domain.Conflict: Conflict,
    domain.Forbidden: exceptions.PermissionDenied,
    domain.DomainError: exceptions.APIException,
}


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten_codes(codes: Any) -> str:
    while isinstance(codes, (list, dict)) and codes:
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return str(codes) if codes else "invalid"


def _convert(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, domain.DomainError):
        api_error = next(_API_ERRORS[k] for k in type(exc).__mro__ if k in _API_ERRORS)
        return api_error(detail=exc.message, code=exc.code)
    if isinstance(exc, (ProtectedError, RestrictedError)):
        return Conflict(_("This object is still referenced by other records and was kept."))
    return exc


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _convert(exc)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields: dict[str, Any] = {}
        message = _("Invalid input.")
        if isinstance(detail, dict):
            fields = {key: value for key, value in detail.items() if key != "non_field_errors"}
            non_field: Any = detail.get("non_field_errors")
            if non_field:
                message = str(non_field[0])
            elif fields:
                first = next(iter(fields.values()))
                message = _("Invalid input: %(detail)s") % {
                    "detail": first[0] if isinstance(first, list) and first else first
                }
        elif isinstance(detail, list) and detail:
            message = str(detail[0])
        response.data = error_body(_flatten_codes(exc.get_codes()), message, fields)
    else:
        other: Any = exc.detail
        if isinstance(other, dict):  # e.g. simplejwt's {"detail": ..., "code": ...}
            message = str(other.get("detail", _("Request failed.")))
            code = str(other.get("code") or exc.default_code)
        else:
            message, code = str(other), _flatten_codes(exc.get_codes())
        response.data = error_body(code, message)
    return response


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)


def api_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("server_error", _("Internal server error.")), status=500)
