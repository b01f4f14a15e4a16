"""The application database role.

The login role owns the tables and runs migrations. Every other connection switches
to ``settings.DATABASE_APP_ROLE`` as soon as it opens: that role owns nothing, is not a
superuser and so is subject to the forced row-level security policies. In production
the login role itself can be the application role (``DATABASE_URL``) with
``MIGRATION_DATABASE_URL`` naming the owner for ``manage.py migrate``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg import sql
from psycopg.pq import Format

logger = logging.getLogger(__name__)

_owner_mode = False


def app_role() -> str:
    return str(settings.DATABASE_APP_ROLE)


def switch_to_app_role(connection: BaseDatabaseWrapper) -> bool:
    """Make the connection act as the application role; false if it cannot.

    It cannot when the role is missing (before the first ``migrate``) or when the login
    role may not become it: a non-superuser owner on a server where the role was made
    earlier (by another database or another owner) is not a member until ``migrate``
    grants it. Work that needs the role (``tenant_scope``) then refuses to run, so
    skipping the switch fails closed instead of failing every connection, ``migrate``'s
    own system checks included.
    """
    # PostgreSQL 16 separates the right to SET ROLE from membership (GRANT … WITH SET).
    privilege = "SET" if connection.pg_version >= 160000 else "MEMBER"  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        # One round trip: the role is set (``set_config('role', …)`` is ``SET ROLE``)
        # only when it exists and the login role may become it, which the row tells.
        cursor.execute(
            "SELECT allowed, CASE WHEN allowed THEN set_config('role', rolname, false) END "
            "FROM (SELECT rolname, pg_has_role(current_user, oid, %s) AS allowed "
            "FROM pg_roles WHERE rolname = %s) AS role",
            [privilege, app_role()],
        )
        row = cursor.fetchone()
    if row is None or not row[0]:
        connection.crm_app_role_active = False  # type: ignore[attr-defined]
        if row is not None and not _owner_mode:
            logger.warning(
                "The database user may not switch to the role %s; run `manage.py "
                "migrate` as the owner to grant it. Tenant work refuses to run meanwhile.",
                app_role(),
            )
        return False
    connection.crm_app_role_active = True  # type: ignore[attr-defined]
    return True


class IsoTimestamptzLoader(BaseTzLoader):
    """Django's ``timestamptz`` loader, parsing with ``datetime.fromisoformat``: the loader
    when psycopg runs without its C implementation (``PSYCOPG_IMPL=python``).

    Django's loader (the value with the connection's time zone, UTC) is built on
    psycopg's pure-Python loader, which parses each value with a regular expression:
    about 3 µs a value, a third of a millisecond for a page of 50 rows with seven moments.
    PostgreSQL writes a ``timestamptz`` as ISO 8601 (``DateStyle`` ISO, the session in UTC,
    as Django sets it), which the standard library's C parser reads in a tenth of that.
    Anything else (infinity, a BC or five-digit year, an offset other than UTC) goes to
    Django's loader, so every value loads exactly as Django loads it.
    """

    def load(self, data: Any) -> Any:
        try:
            value = datetime.fromisoformat(bytes(data).decode())
        except ValueError:
            return super().load(data)
        if value.utcoffset() != _NO_OFFSET:
            return super().load(data)
        if value.tzinfo is self.timezone:  # the parser's UTC is Django's: nothing to set
            return value
        return value.replace(tzinfo=self.timezone)


_NO_OFFSET = timedelta(0)

#: psycopg's own ``timestamptz`` loader: its C implementation (``psycopg[binary]``),
#: unless psycopg runs as pure Python.
_PSYCOPG_TIMESTAMPTZ_LOADER: Any = psycopg.adapters.get_loader(
    psycopg.adapters.types["timestamptz"].oid, Format.TEXT
)


class CTimestamptzLoader:
    """psycopg's C ``timestamptz`` loader, registered for a connection's time zone.

    Django registers a loader of its own (``BaseTzLoader``), written in Python on top of
    psycopg's pure-Python one, so every moment a query returns costs a Python call: with
    ``IsoTimestamptzLoader``, a fifth of a millisecond for a rep's page of 19 visits
    (seven moments each), measured in alternating requests on this machine. psycopg's
    C loader gives the same values: the moment in the session's time zone, which is
    the connection's (Django sets the session's ``TimeZone`` to it when it connects, and
    nothing here changes it), with ``datetime.timezone.utc`` for UTC as Django gives.
    Its class cannot be subclassed, so this stands in for it where a loader class is
    registered: it makes psycopg's loader and carries the ``timezone`` Django's
    ``create_cursor`` compares with the connection's for every cursor (a loader of
    another zone would make Django register its own on each cursor).
    ``tests/tenancy/test_timestamptz_loader.py`` compares the values with Django's.
    """

    format = Format.TEXT

    def __init__(self, zone: Any) -> None:
        self.timezone = zone

    def __call__(self, oid: int, context: Any = None) -> Any:
        return _PSYCOPG_TIMESTAMPTZ_LOADER(oid, context)


def _psycopg_loader_is_c() -> bool:
    return not _PSYCOPG_TIMESTAMPTZ_LOADER.__module__.startswith("psycopg.")


@cache
def timestamptz_loader(zone: Any) -> Any:
    """The ``timestamptz`` loader of connections in ``zone``, made once per zone."""
    return _make_timestamptz_loader(zone)


def _make_timestamptz_loader(zone: Any) -> Any:
    """psycopg's C loader (``CTimestamptzLoader``) for an aware zone when psycopg has it,
    else ``IsoTimestamptzLoader`` (with ``USE_TZ`` off, Django's zone is None: naive)."""
    if zone is not None and _psycopg_loader_is_c():
        return CTimestamptzLoader(zone)
    return type("IsoTimestamptzLoader", (IsoTimestamptzLoader,), {"timezone": zone})


def _use_fast_timestamptz_loader(connection: BaseDatabaseWrapper) -> None:
    loader = timestamptz_loader(connection.timezone)
    connection.connection.adapters.register_loader("timestamptz", loader)


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    connection.crm_app_role_active = False  # type: ignore[attr-defined]
    if connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS:
        return
    _use_fast_timestamptz_loader(connection)
    if not _owner_mode:
        switch_to_app_role(connection)


@contextmanager
def owner_role(using: str = "default") -> Iterator[None]:
    """Act as the login (owner) role for the block: migrations and grants only."""
    global _owner_mode
    connection = connections[using]
    _owner_mode = True
    try:
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET ROLE")
            connection.crm_app_role_active = False  # type: ignore[attr-defined]
        yield
    finally:
        _owner_mode = False
        if connection.connection is not None:
            switch_to_app_role(connection)


def grant_app_role_privileges(using: str = "default") -> None:
    """Give the application role data access (never ownership) to every table."""
    role = sql.Identifier(app_role())
    table_privileges = "SELECT, INSERT, UPDATE, DELETE"
    if settings.DATABASE_APP_ROLE_CAN_TRUNCATE:
        table_privileges += ", TRUNCATE"
    with connections[using].cursor() as cursor:
        cursor.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
        cursor.execute(
            sql.SQL("GRANT " + table_privileges + " ON ALL TABLES IN SCHEMA public TO {}").format(
                role
            )
        )
        cursor.execute(
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role)
        )


def ensure_app_role(connection: BaseDatabaseWrapper) -> None:
    """Create the application role (no login, no ownership) if missing, and make the
    current user a member so it may switch to it.

    A superuser is a member of every role. A non-superuser owner needs ``CREATEROLE``
    to create the role or grant it to itself; on PostgreSQL 16+ it may grant only a role
    it holds with ADMIN OPTION (one it created itself). When it may not, the error says
    which statement a superuser must run.
    """
    role = sql.Identifier(app_role())
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role()])
        if cursor.fetchone() is None:
            try:
                with transaction.atomic(using=connection.alias):
                    cursor.execute(
                        sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT").format(
                            role
                        )
                    )
            except DatabaseError as error:
                # Roles belong to the server: another database's migrate (a parallel test
                # worker's, say) may have created it between the check and here.
                if not isinstance(
                    error.__cause__,
                    psycopg.errors.DuplicateObject | psycopg.errors.UniqueViolation,
                ):
                    raise
        cursor.execute("SELECT current_user, pg_has_role(current_user, %s, 'MEMBER')", [app_role()])
        user, member = cursor.fetchone()
        if member:
            return
        try:
            with transaction.atomic(using=connection.alias):
                cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
        except DatabaseError as error:
            raise ImproperlyConfigured(
                f"The database user {user} may not grant itself the role {app_role()} "
                f"({error}). As a superuser, run: GRANT {app_role()} TO {user};"
            ) from error


def create_app_role(apps: Any, schema_editor: Any) -> None:
    """Migration step: ``ensure_app_role`` on the migration's connection."""
    ensure_app_role(schema_editor.connection)
