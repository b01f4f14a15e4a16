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
from typing import Any

import psycopg
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from psycopg import sql

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


#: psycopg prepares a statement after this many executions of its text; so high that
#: only the statements asked for (``PreparedCursor``) are prepared.
ONLY_WHEN_ASKED = 2**31 - 1


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    connection.crm_app_role_active = False  # type: ignore[attr-defined]
    if connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS:
        return
    if settings.DATABASE_PREPARED_STATEMENTS:
        # Django turns psycopg's prepared statements off (``prepare_threshold`` None).
        connection.connection.prepare_threshold = ONLY_WHEN_ASKED
    if not _owner_mode:
        switch_to_app_role(connection)


class PreparedCursor(psycopg.Cursor[Any]):
    """A server-side binding cursor whose statements are prepared on first use in each
    connection (when ``DATABASE_PREPARED_STATEMENTS``): the server plans them once.

    Only for statements of a fixed text whose plan does not depend on the values (a
    lookup by primary key): a generic plan for a list filtered by tenant would be chosen
    for the average tenant, not for this one.
    """

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("prepare", True)
        return super().execute(query, params, **kwargs)


def prepared_cursor() -> Any:
    """``connection.cursor()`` over a ``PreparedCursor``: logged, wrapped and counted
    like any Django cursor (query counts in tests, ``DEBUG``'s log, error mapping)."""
    connection = connections["default"]
    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(PreparedCursor(connection.connection))


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
            cursor.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT").format(role)
            )
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
