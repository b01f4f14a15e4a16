"""The application database role.

The login role owns the tables and runs migrations. Every other connection switches
to ``settings.DATABASE_APP_ROLE`` as soon as it opens: that role owns nothing, is not a
superuser and so is subject to the forced row-level security policies. In production
the login role itself can be the application role (``DATABASE_URL``) with
``MIGRATION_DATABASE_URL`` naming the owner for ``manage.py migrate``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from psycopg import sql

_owner_mode = False


def app_role() -> str:
    return str(settings.DATABASE_APP_ROLE)


def switch_to_app_role(connection: BaseDatabaseWrapper) -> bool:
    """Make the connection act as the application role; false if the role is missing."""
    with connection.cursor() as cursor:
        # One round trip: the role is set (``set_config('role', …)`` is ``SET ROLE``)
        # only when it exists, which the returned row tells.
        cursor.execute(
            "SELECT set_config('role', rolname, false) FROM pg_roles WHERE rolname = %s",
            [app_role()],
        )
        active = cursor.fetchone() is not None
    connection.crm_app_role_active = active  # type: ignore[attr-defined]
    return active


def on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    connection.crm_app_role_active = False  # type: ignore[attr-defined]
    if connection.vendor != "postgresql" or connection.alias == NO_DB_ALIAS or _owner_mode:
        return
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


def create_app_role(apps: Any, schema_editor: Any) -> None:
    """Migration step: create the application role (no login, no ownership) if missing."""
    role = sql.Identifier(app_role())
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role()])
        if cursor.fetchone() is None:
            cursor.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT").format(role)
            )
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if row is not None and not row[0]:
            # A non-superuser owner must be a member of the role to switch to it.
            cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
