"""One error shape for every 4xx (SPEC section 8).

``{"error": {"code": "...", "message": "...", "fields": {"field": ["..."]}}}``
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError, IntegrityError
from django.db.models import ProtectedError, RestrictedError, UniqueConstraint
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

from tenancy import errors as domain

logger = logging.getLogger(__name__)


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


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _lazy("The request body is larger than this server accepts.")
    default_code = "request_too_large"


# PostgreSQL SQLSTATEs of the integrity errors bad input can cause.
_UNIQUE, _FOREIGN_KEY, _CHECK, _NOT_NULL = "23505", "23503", "23514", "23502"


def _unique_fields(constraint: str) -> list[str]:
    """The fields a unique constraint covers, without ``tenant`` (every table has it)."""
    for model in apps.get_models():
        for candidate in model._meta.constraints:
            if isinstance(candidate, UniqueConstraint) and candidate.name == constraint:
                return [name for name in candidate.fields if name != "tenant"]
        for together in model._meta.unique_together:
            if constraint.startswith(model._meta.db_table) and all(
                name in constraint for name in together
            ):
                return [name for name in together if name != "tenant"]
    for model in apps.get_models():  # a ``unique=True`` column: <table>_<column>_key
        for field in model._meta.concrete_fields:
            if field.unique and constraint == f"{model._meta.db_table}_{field.column}_key":
                return [field.name]
    return []


def _integrity_error(exc: IntegrityError) -> exceptions.APIException:
    """A constraint the input broke, as a 409 (a duplicate) or a 400 naming the field.

    The view's transaction is broken from here on; the request's scope rolls it back
    because the response is an error (tenancy.middleware)."""
    diag = getattr(exc.__cause__, "diag", None)
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    if sqlstate == _UNIQUE:
        names = _unique_fields(constraint) or ["non_field_errors"]
        message = _("Another record already has this value; choose a different one.")
        if len(names) > 1:
            message = _("Another record already has this combination of %(fields)s.") % {
                "fields": ", ".join(names)
            }
        error = Conflict({name: [message] for name in names}, code="unique")
        return error
    column = getattr(diag, "column_name", None)
    if sqlstate == _FOREIGN_KEY:
        return exceptions.ValidationError(
            {"non_field_errors": [_("A record this one refers to does not exist.")]},
            code="invalid",
        )
    if sqlstate == _NOT_NULL and column:
        return exceptions.ValidationError({column: [_("This field is required.")]})
    return exceptions.ValidationError(
        {
            "non_field_errors": [
                _("These values are not allowed together (%(rule)s).")
                % {"rule": constraint or _("a database rule")}
            ]
        },
        code="invalid" if sqlstate == _CHECK else "integrity",
    )


def _data_error(exc: DataError) -> exceptions.APIException:
    """A value PostgreSQL cannot store or compare (a time-zone offset beyond ±15:59, a
    number out of range): the input's fault, a 400; logged so a real bug stays visible."""
    logger.warning("database refused a value: %s", exc)
    column = getattr(getattr(exc.__cause__, "diag", None), "column_name", None)
    message = _("A value is out of the range this field accepts.")
    return exceptions.ValidationError({column or "non_field_errors": [message]}, code="invalid")


def _convert(exc: Exception) -> Exception:
    if isinstance(exc, DataError):
        return _data_error(exc)
    if isinstance(exc, (ProtectedError, RestrictedError)):  # IntegrityErrors too: first
        return Conflict(_("This object is still referenced by other records and was kept."))
    if isinstance(exc, IntegrityError):
        return _integrity_error(exc)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, domain.DomainError):
        api_error = next(_API_ERRORS[k] for k in type(exc).__mro__ if k in _API_ERRORS)
        return api_error(detail=exc.message, code=exc.code)
    return exc


def flatten_fields(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as ``{"time_weights.3": ["..."]}``: one dotted path per
    field that failed, each with its sentences (never a Python repr)."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = str(key)
            if prefix:
                name = prefix if name == "non_field_errors" else f"{prefix}.{name}"
            flat.update(flatten_fields(value, name))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (list, dict)) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]} if detail else {}
        flat = {}
        for index, item in enumerate(detail):  # a list of rows: the valid ones are empty
            flat.update(flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def _field_error_body(exc: exceptions.APIException) -> dict[str, Any]:
    fields = flatten_fields(exc.detail)
    non_field = fields.pop("non_field_errors", None)
    if non_field:
        message = non_field[0]
    elif fields:
        path, sentences = next(iter(fields.items()))
        message = _("%(field)s: %(detail)s") % {"field": path, "detail": sentences[0]}
    else:
        message = _("Invalid input.")
    return error_body(_flatten_codes(exc.get_codes()), message, fields)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _convert(exc)
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    detail: Any = exc.detail
    if isinstance(exc, exceptions.ValidationError) or (
        isinstance(detail, dict) and "detail" not in detail
    ):
        response.data = _field_error_body(exc)
    elif isinstance(detail, dict):  # e.g. simplejwt's {"detail": ..., "code": ...}
        message = str(detail.get("detail", _("Request failed.")))
        code = str(detail.get("code") or exc.default_code)
        response.data = error_body(code, message)
    else:
        response.data = error_body(_flatten_codes(exc.get_codes()), str(detail))
    return response


def api_bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    """Django's 400s outside a view (``SuspiciousOperation``): a body over the limit read
    by a middleware is a 413, the rest a 400, both in the one error shape."""
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(
            error_body(PayloadTooLarge.default_code, str(PayloadTooLarge.default_detail)),
            status=413,
        )
    return JsonResponse(error_body("bad_request", _("The request could not be read.")), status=400)


def api_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(error_body("not_found", _("Not found.")), status=404)


def api_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(error_body("server_error", _("Internal server error.")), status=500)
