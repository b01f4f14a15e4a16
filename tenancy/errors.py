"""Domain errors that map to HTTP statuses (imported by services; no view machinery)."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.exceptions import NotFound

__all__ = ["Conflict", "NotFound"]


class Conflict(exceptions.APIException):
    """409: the request conflicts with the current state (stale version, already done)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"
