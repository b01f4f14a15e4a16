"""Row-level security: the database itself hides other tenants' rows (SPEC section 2)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction
from django_scopes import ScopeError

from tenancy.db import app_role
from tenancy.models import Membership
from tenancy.rls import POLICY_NAME
from tenancy.scope import platform_scope, tenant_scope
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def tenant_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_name = c.table_name AND t.table_schema = c.table_schema
            WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'
              AND t.table_type = 'BASE TABLE'
            ORDER BY 1
            """
        )
        return [row[0] for row in cursor.fetchall()]


def test_every_table_with_a_tenant_id_has_an_enabled_and_forced_policy() -> None:
    tables = tenant_tables()
    assert "crm_membership" in tables and "crm_orgunit" in tables
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = %s)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relname = ANY(%s)
            """,
            [POLICY_NAME, tables],
        )
        rows = {name: (enabled, forced, has_policy) for name, enabled, forced, has_policy in cursor}
    unprotected = sorted(name for name in tables if rows.get(name) != (True, True, True))
    assert unprotected == [], f"tables without a forced tenant policy: {unprotected}"


def test_the_app_connects_as_a_role_that_is_neither_superuser_nor_owner() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT current_user, r.rolsuper, r.rolbypassrls,
                   (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
                      AND tableowner = current_user)
            FROM pg_roles r WHERE r.rolname = current_user
            """
        )
        user, superuser, bypass, owned = cursor.fetchone()
    assert (user, superuser, bypass, owned) == (app_role(), False, False, 0)


def _raw_count(sql: str, params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return int(cursor.fetchone()[0])


def test_raw_sql_sees_only_the_scoped_tenants_rows(tree_a: TenantTree, tree_b: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        visible = _raw_count("SELECT count(*) FROM crm_membership")
        foreign = _raw_count(
            "SELECT count(*) FROM crm_membership WHERE tenant_id = %s", [tree_b.tenant.pk]
        )
    assert visible == len(tree_a.members)
    assert foreign == 0
    with platform_scope("test: count every tenant"):
        assert _raw_count("SELECT count(*) FROM crm_membership") == len(tree_a.members) + len(
            tree_b.members
        )


def test_raw_sql_outside_any_scope_sees_nothing(tree_a: TenantTree) -> None:
    with transaction.atomic():
        assert _raw_count("SELECT count(*) FROM crm_membership") == 0
        assert _raw_count("SELECT count(*) FROM crm_orgunit") == 0


def test_raw_sql_cannot_write_into_or_change_another_tenant(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    other_unit = tree_b.units["north"]
    with tenant_scope(tree_a.tenant):
        with connection.cursor() as cursor:
            cursor.execute("UPDATE crm_orgunit SET name = 'hacked' WHERE id = %s", [other_unit.pk])
            assert cursor.rowcount == 0
            cursor.execute("DELETE FROM crm_orgunit WHERE id = %s", [other_unit.pk])
            assert cursor.rowcount == 0
        refused = pytest.raises(DatabaseError, match="row-level security")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_orgunit (tenant_id, name, path, depth, created_at, updated_at)"
                " VALUES (%s, 'smuggled', '/', 0, now(), now())",
                [tree_b.tenant.pk],
            )
        refused = pytest.raises(DatabaseError, match="row-level security")
        with refused, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE crm_orgunit SET tenant_id = %s WHERE id = %s",
                [tree_b.tenant.pk, tree_a.units["south"].pk],
            )
    with tenant_scope(tree_b.tenant):
        assert _raw_count("SELECT count(*) FROM crm_orgunit WHERE name = 'hacked'") == 0
        assert _raw_count("SELECT count(*) FROM crm_orgunit WHERE id = %s", [other_unit.pk]) == 1


def test_an_unscoped_orm_query_raises_instead_of_returning_everything(tree_a: TenantTree) -> None:
    with pytest.raises(ScopeError):
        list(Membership.objects.all())
    with pytest.raises(ScopeError):
        Membership.objects.count()


def test_the_orm_inside_a_scope_returns_only_that_tenant(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_b.tenant):
        tenants = set(Membership.objects.values_list("tenant_id", flat=True))
    assert tenants == {tree_b.tenant.pk}


def test_nested_scopes_restore_the_outer_tenant(tree_a: TenantTree, tree_b: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        with tenant_scope(tree_b.tenant):
            assert _raw_count(
                "SELECT count(*) FROM crm_membership WHERE tenant_id = %s", [tree_b.tenant.pk]
            ) == len(tree_b.members)
        assert (
            _raw_count(
                "SELECT count(*) FROM crm_membership WHERE tenant_id = %s", [tree_b.tenant.pk]
            )
            == 0
        )
        assert _raw_count("SELECT count(*) FROM crm_membership") == len(tree_a.members)


def _settings() -> tuple[str | None, str | None]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('app.tenant_id', true), current_setting('app.rls_bypass', true)"
        )
        row = cursor.fetchone()
    return row[0], row[1]


@pytest.mark.django_db(transaction=True)
def test_an_outermost_scope_makes_its_settings_for_its_transaction_only() -> None:
    """Outside a test's transaction, as a request or a task enters it: the message that
    opens the transaction makes the settings (``SET LOCAL``), the block sees them, and
    they end with its commit or rollback."""
    from django.test.utils import CaptureQueriesContext

    from tests.factories import build_tenant_tree

    tree = build_tenant_tree("setlocal", "Set local 本地")
    other = build_tenant_tree("setlocal-b", "Set local B")
    with CaptureQueriesContext(connection) as context, tenant_scope(tree.tenant):
        assert _settings() == (str(tree.tenant.pk), "off")
        assert {m.tenant_id for m in Membership.objects.all()} == {tree.tenant.pk}
    opening = [q["sql"] for q in context.captured_queries if q["sql"] != "BEGIN"][0]
    assert opening == (
        f"BEGIN; SET LOCAL app.tenant_id = '{tree.tenant.pk}'; SET LOCAL app.rls_bypass = 'off'"
    )
    assert _settings() in (("", ""), ("", "off"))

    with platform_scope("test: the bypass ends with its transaction"):
        assert _settings() == ("", "on")
        tenants = set(Membership.objects.values_list("tenant_id", flat=True))
        assert {tree.tenant.pk, other.tenant.pk} <= tenants
    assert _settings()[1] != "on"

    with pytest.raises(RuntimeError), tenant_scope(other.tenant):
        assert _settings() == (str(other.tenant.pk), "off")
        raise RuntimeError("rolled back")
    assert _settings()[0] == ""
    with connection.cursor() as cursor:  # outside every scope the policies show nothing
        cursor.execute("SELECT count(*) FROM crm_membership")
        assert cursor.fetchone() == (0,)
