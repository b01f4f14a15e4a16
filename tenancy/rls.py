"""PostgreSQL row-level security for tenant tables.

Every tenant table gets the same policy through ``EnableTenantRLS``, a migration
operation. ``tests/tenancy/test_rls.py`` fails if any table with a ``tenant_id`` column
lacks an enabled, forced policy, so a new table cannot be forgotten.

The policy admits a row when its ``tenant_id`` equals the transaction-local setting
``app.tenant_id``, or when ``app.rls_bypass`` is ``on`` (platform scope only, see
``tenancy.scope.platform_scope``). An unset setting matches nothing: fail closed.
The settings are read through scalar sub-selects so PostgreSQL evaluates them once
per statement instead of once per row.

Migrations run as the owner, and ``FORCE ROW LEVEL SECURITY`` holds the owner to the
policy too (only a superuser or a ``BYPASSRLS`` role skips it): a data migration that
reads or writes tenant rows without the bypass sees none of them. Such a migration
starts with the ``BypassRLS`` operation (or calls ``bypass_rls`` in its ``RunPython``);
``manage.py migrate`` also turns the bypass on for its whole connection, so a migration
that forgets still works there, and the tests that run the migrations by other means
catch it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import migrations
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from tenancy.scope import BYPASS_SETTING

POLICY_NAME = "tenant_isolation"

TENANT_PREDICATE = (
    "tenant_id = NULLIF((SELECT current_setting('app.tenant_id', true)), '')::bigint "
    "OR (SELECT current_setting('app.rls_bypass', true)) = 'on'"
)


def enable_sql(table: str) -> list[str]:
    quoted = f'"{table}"'
    return [
        f"ALTER TABLE {quoted} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {quoted}",
        f"CREATE POLICY {POLICY_NAME} ON {quoted} "
        f"USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})",
    ]


def disable_sql(table: str) -> list[str]:
    quoted = f'"{table}"'
    return [
        f"DROP POLICY IF EXISTS {POLICY_NAME} ON {quoted}",
        f"ALTER TABLE {quoted} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted} DISABLE ROW LEVEL SECURITY",
    ]


class EnableTenantRLS(migrations.operations.base.Operation):
    """Migration operation: enable and force the tenant policy on a model's table."""

    reversible = True
    reduces_to_sql = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def _table(self, app_label: str, apps: StateApps) -> str:
        return str(apps.get_model(app_label, self.model_name)._meta.db_table)

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        for statement in enable_sql(self._table(app_label, to_state.apps)):
            schema_editor.execute(statement)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        for statement in disable_sql(self._table(app_label, from_state.apps)):
            schema_editor.execute(statement)

    def describe(self) -> str:
        return f"Enable tenant row-level security on {self.model_name}"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [], {"model_name": self.model_name})


def bypass_rls(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Let the rest of this migration read and write every tenant's rows.

    The setting is local to the migration's transaction, so the migration must be atomic
    (the default on PostgreSQL); it ends with the migration.
    """
    if not schema_editor.atomic_migration:
        raise ValueError("bypass_rls needs an atomic migration: the setting is transaction-local.")
    schema_editor.execute("SELECT set_config(%s, 'on', true)", [BYPASS_SETTING])


class BypassRLS(migrations.operations.base.Operation):
    """Migration operation: the data operations after it see every tenant's rows."""

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        bypass_rls(schema_editor)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: Any,
        to_state: Any,
    ) -> None:
        bypass_rls(schema_editor)

    def describe(self) -> str:
        return "Bypass tenant row-level security for the rest of the migration"

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (self.__class__.__qualname__, [], {})


@contextmanager
def session_bypass(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """The bypass for a whole connection (``manage.py migrate`` only), off again after."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', false)", [BYPASS_SETTING])
    try:
        yield
    finally:
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, 'off', false)", [BYPASS_SETTING])
