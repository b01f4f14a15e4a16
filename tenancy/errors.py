"""The domain's own errors (SPEC section 8), raised by services and selectors.

They carry a message a person can read (already translated, or lazily) and no HTTP:
the API edge (``tenancy.api.errors``) maps them to 404, 409, 400 and 403 in the one
error shape, and the admin shows them as messages. So no service imports DRF.

``Invalid`` is Django's ``ValidationError`` (a dict of field → messages, or a
message), so model validation (``full_clean``) and the services' own checks reach
the caller the same way.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

__all__ = ["Conflict", "DomainError", "Forbidden", "Invalid", "NotFound"]


class DomainError(Exception):
    """A request the domain refuses, with a sentence saying why."""

    code = "error"
    default_message: Any = _("The request could not be carried out.")

    def __init__(self, message: Any = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(str(self.message))

    def __str__(self) -> str:
        return str(self.message)


class NotFound(DomainError):
    """The object does not exist, or the caller may not see it (both answer 404)."""

    code = "not_found"
    default_message = _("Not found.")


class Conflict(DomainError):
    """The request conflicts with the current state (stale version, already done, a
    duplicate, records that depend on it)."""

    code = "conflict"
    default_message = _("The request conflicts with the current state of the resource.")


class Forbidden(DomainError):
    """The caller sees the object but may not do this to it; the message says who may."""

    code = "permission_denied"
    default_message = _("You do not have permission to perform this action.")


Invalid = ValidationError
