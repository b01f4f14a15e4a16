"""The integrations' tables, one module per capability (imports, webhooks)."""

from integrations.models.imports import (
    ImportJob,
    ImportKind,
    ImportProgress,
    ImportRow,
    ImportStatus,
    RowOutcome,
)

__all__ = ["ImportJob", "ImportKind", "ImportProgress", "ImportRow", "ImportStatus", "RowOutcome"]
