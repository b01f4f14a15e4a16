"""PostgreSQL row-level security for tenant tables.

Every tenant table gets the same policy through ``EnableTenantRLS``, a migration
operation. ``tests/tenancy/test_rls.py`` fails if any table with a ``tenant_id`` column
lacks an enabled, forced policy, so a new table cannot be forgotten.

The policy admits a row when its ``tenant_id`` equals the transaction-local setting
``app.tenant_id``, or when ``app.rls_bypass`` is ``on`` (platform scope only, see
``tenancy.scope.platform_scope``). An unset setting matches nothing: fail closed.
The settings are read through scalar sub-selects so PostgreSQL evaluates them once
per statement instead of once per row.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

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
