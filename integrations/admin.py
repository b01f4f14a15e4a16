"""The integrations' admin, one module per capability."""

from integrations.imports import admin as imports_admin  # noqa: F401 - registers
