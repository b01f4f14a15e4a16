"""Tenant scoping: the one place that decides which tenant a unit of work sees.

Isolation is enforced twice (SPEC section 2):

* in the ORM, by django-scopes: every tenant-owned model's default manager raises
  ``ScopeError`` when no tenant scope is active (fail-closed);
* in PostgreSQL, by row-level security policies that compare ``tenant_id`` with the
  transaction-local setting ``app.tenant_id`` (see ``tenancy/rls.py``).

``tenant_scope`` opens a transaction, enters the django-scopes scope and sets the
setting with ``set_config(..., true)``, so it ends with the transaction and a pooled
connection never carries a tenant over to the next unit of work.

The scope is entered in exactly three places: the request (``tenancy.middleware``), the
Celery base task (``tenancy.jobs.TenantTask``) and test fixtures. ``platform_scope`` turns
both layers off, explicitly and with a logged reason, for the platform superuser's
admin and cross-tenant management commands.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Model
from django_scopes import scope, scopes_disabled

logger = logging.getLogger(__name__)

TENANT_SETTING = "app.tenant_id"
BYPASS_SETTING = "app.rls_bypass"


@dataclass(frozen=True)
class _DatabaseScope:
    tenant_id: int | None
    bypass: bool


_NO_SCOPE = _DatabaseScope(tenant_id=None, bypass=False)
_current: ContextVar[_DatabaseScope] = ContextVar("crm_tenant_scope", default=_NO_SCOPE)


class TenantScopeError(RuntimeError):
    """Raised when tenant-scoped work is attempted on an unprotected connection."""


def current_tenant_id() -> int | None:
    """The tenant of the active scope, or ``None`` outside one (or in a platform scope)."""
    return _current.get().tenant_id


def _apply(db_scope: _DatabaseScope) -> None:
    if not getattr(connection, "crm_app_role_active", False):
        connection.ensure_connection()
    if not getattr(connection, "crm_app_role_active", False):
        raise TenantScopeError(
            "The database connection is not running as the application role, so row-level "
            "security would not apply. Run `manage.py migrate` to create the role."
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            [
                TENANT_SETTING,
                "" if db_scope.tenant_id is None else str(db_scope.tenant_id),
                BYPASS_SETTING,
                "on" if db_scope.bypass else "off",
            ],
        )


@contextmanager
def _database_scope(db_scope: _DatabaseScope) -> Iterator[None]:
    outermost = not connection.in_atomic_block
    outer = _current.get()
    with transaction.atomic():
        _apply(db_scope)
        token = _current.set(db_scope)
        completed = False
        try:
            yield
            completed = True
        finally:
            _current.reset(token)
        # The settings are transaction-local: a commit of the outermost block clears them
        # and a rollback to the savepoint restores the outer ones, so only a nested block
        # that completed must put the outer scope back by hand.
        if completed and not outermost:
            _apply(outer)


@contextmanager
def tenant_scope(tenant: Model | int) -> Iterator[int]:
    """Run the block inside one tenant: ORM scope, RLS setting and a transaction."""
    tenant_id = int(tenant.pk if isinstance(tenant, Model) else tenant)
    with scope(tenant=tenant_id), _database_scope(_DatabaseScope(tenant_id, bypass=False)):
        yield tenant_id


@contextmanager
def platform_scope(reason: str) -> Iterator[None]:
    """Disable tenant isolation for cross-tenant platform work. Always give a reason."""
    logger.info("Entering platform scope (tenant isolation off): %s", reason)
    with scopes_disabled(), _database_scope(_DatabaseScope(None, bypass=True)):
        yield
