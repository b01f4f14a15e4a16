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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django_scopes import scope, scopes_disabled
from psycopg.pq import DiagnosticField, ExecStatus, TransactionStatus
from psycopg.pq.abc import PGresult

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


class ScopeOpening(Protocol):
    """A statement of the scope's first round trip, sent after its ``BEGIN`` and settings.

    ``sql(db, first=True)`` is its text there (literals only: it travels in one
    simple-protocol message); ``sql(db, first=False)`` its text when the scope opens
    inside a transaction already open (a nested scope, a test's transaction), where it is
    sent alone. ``receive`` gets its result. If the message fails, ``retry`` is asked with
    the error's SQLSTATE whether to roll back and send it once more (a prepared statement
    the server no longer has, say). Each is given the database connection it runs on
    (Django's; its ``connection`` is the driver's).
    """

    def sql(self, db: BaseDatabaseWrapper, *, first: bool) -> str: ...

    def receive(self, db: BaseDatabaseWrapper, result: PGresult) -> None: ...

    def retry(self, db: BaseDatabaseWrapper, sqlstate: str | None) -> bool: ...


def _log(db: BaseDatabaseWrapper, statement: str, started: float) -> None:
    if db.queries_logged:  # shown like any statement in DEBUG and in tests
        duration = time.monotonic() - started
        db.queries_log.append({"sql": statement, "time": f"{duration:.3f}"})


def _failure(result: PGresult) -> tuple[str | None, str]:
    sqlstate = result.error_field(DiagnosticField.SQLSTATE)
    message = (result.error_message or b"").decode(errors="replace")
    return (sqlstate.decode() if sqlstate else None), message


def _apply(
    db: BaseDatabaseWrapper,
    db_scope: _DatabaseScope,
    *,
    begin: bool = False,
    opening: ScopeOpening | None = None,
) -> None:
    """Make the scope's settings on ``db`` (the connection itself, looked up once by the
    caller: each read through ``django.db.connection`` or ``connections[…]`` looks it up
    again in the thread's and task's locals, about 12,000 instructions)."""
    if not getattr(db, "crm_app_role_active", False):
        db.ensure_connection()
    if not getattr(db, "crm_app_role_active", False):
        raise TenantScopeError(
            "The database connection is not running as the application role, so row-level "
            "security would not apply. Run `manage.py migrate` to create the role."
        )
    if begin and db.connection.pgconn.transaction_status == TransactionStatus.IDLE:
        _begin_with_settings(db, db_scope, opening)
        return
    tenant, bypass = _setting_values(db_scope.tenant_id, bypass=db_scope.bypass)
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
            [TENANT_SETTING, tenant, BYPASS_SETTING, bypass],
        )
    if opening is not None:
        statement = opening.sql(db, first=False)
        started = time.monotonic()
        result = db.connection.pgconn.exec_(statement.encode())
        _log(db, statement, started)
        if result.status != ExecStatus.TUPLES_OK:
            raise TenantScopeError(f"Could not open the tenant's scope: {_failure(result)[1]}")
        opening.receive(db, result)


def _setting_values(tenant_id: int | None, *, bypass: bool) -> tuple[str, str]:
    """The values of the two settings: the tenant id as text (empty for none) and
    ``on``/``off``."""
    return ("" if tenant_id is None else str(int(tenant_id))), ("on" if bypass else "off")


def begin_with_settings_sql(tenant_id: int | None, *, bypass: bool) -> str:
    """The statements that open a scope's transaction and make its settings, for one
    simple-protocol message: the values are literals (``_setting_values``: a tenant id
    made an ``int``, and a fixed ``on``/``off``). The settings are made with ``SET LOCAL``, which is
    ``set_config(…, true)``: a utility command the server runs without planning a query,
    taking a snapshot or sending a row back (``SELECT set_config(…)`` cost the server
    about 0.08 ms more of every request here: ``bench/opening.py``)."""
    tenant, on_off = _setting_values(tenant_id, bypass=bypass)
    return (
        f"BEGIN; SET LOCAL {TENANT_SETTING} = '{tenant}'; SET LOCAL {BYPASS_SETTING} = '{on_off}'"
    )


def _begin_with_settings(
    db: BaseDatabaseWrapper, db_scope: _DatabaseScope, opening: ScopeOpening | None = None
) -> None:
    """Open the transaction and make the settings in one round trip, with the opening
    statement if there is one (a request's credential: its membership).

    The driver would send its own ``BEGIN`` and wait for it before the settings: two
    round trips at the start of every request. Sent as one simple-protocol message
    (``begin_with_settings_sql``), the driver sees the open transaction and sends no
    ``BEGIN`` of its own; Django's commit or rollback ends it as usual. The message's
    last result is the opening's.
    """
    settings_sql = begin_with_settings_sql(db_scope.tenant_id, bypass=db_scope.bypass)
    pgconn = db.connection.pgconn
    for attempt in (1, 2):
        opening_sql = opening.sql(db, first=True) if opening is not None else ""
        started = time.monotonic()
        statement = f"{settings_sql}; {opening_sql}" if opening_sql else settings_sql
        result = pgconn.exec_(statement.encode())
        # The last result: the opening's rows, or without one the last SET's completion.
        if result.status == (ExecStatus.TUPLES_OK if opening_sql else ExecStatus.COMMAND_OK):
            break
        sqlstate, message = _failure(result)
        if pgconn.transaction_status != TransactionStatus.IDLE:
            pgconn.exec_(b"ROLLBACK")
        if attempt == 2 or opening is None or not opening.retry(db, sqlstate):
            raise TenantScopeError(f"Could not open the tenant's transaction: {message}")
    _log(db, settings_sql, started)
    if opening is not None:
        _log(db, opening_sql, started)
        opening.receive(db, result)


@contextmanager
def _database_scope(
    db_scope: _DatabaseScope, opening: ScopeOpening | None = None
) -> Iterator[None]:
    db = connections[DEFAULT_DB_ALIAS]
    outermost = not db.in_atomic_block
    outer = _current.get()
    with transaction.atomic():
        _apply(db, db_scope, begin=outermost, opening=opening)
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
            _apply(db, outer)


@contextmanager
def tenant_scope(tenant: Model | int, *, opening: ScopeOpening | None = None) -> Iterator[int]:
    """Run the block inside one tenant: ORM scope, RLS setting and a transaction; with an
    ``opening``, its statement shares the round trip that opens the transaction."""
    tenant_id = int(tenant.pk if isinstance(tenant, Model) else tenant)
    db_scope = _DatabaseScope(tenant_id, bypass=False)
    with scope(tenant=tenant_id), _database_scope(db_scope, opening):
        yield tenant_id


@contextmanager
def platform_scope(reason: str) -> Iterator[None]:
    """Disable tenant isolation for cross-tenant platform work. Always give a reason."""
    logger.info("Entering platform scope (tenant isolation off): %s", reason)
    with scopes_disabled(), _database_scope(_DatabaseScope(None, bypass=True)):
        yield
