"""The credential's membership read by one prepared statement equals the ORM's
``select_related`` read, field by field (issue #11 item 8)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from tenancy.member_loader import load_member
from tenancy.models import Membership, OrgUnitManager, Tenant
from tenancy.scope import tenant_scope
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def _values(instance: Model | None) -> dict[str, Any] | None:
    if instance is None:
        return None
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.mark.parametrize("who", ["admin", "manager", "rep", "south-rep"])
def test_the_loaded_member_equals_the_orms(tree_a: TenantTree, who: str) -> None:
    member = tree_a.members[who]
    with tenant_scope(tree_a.tenant):
        Tenant.objects.filter(pk=tree_a.tenant.pk).update(time_zone="America/New_York")
        with CaptureQueriesContext(connection) as context:
            loaded = load_member(tree_a.tenant.pk, member.pk)
        orm = Membership.objects.select_related("user", "org_unit", "tenant").get(pk=member.pk)
        managed = sorted(
            OrgUnitManager.objects.filter(membership=member).values_list("org_unit_id", flat=True)
        )
    assert len(context.captured_queries) == 1
    assert loaded is not None
    assert _values(loaded) == _values(orm)
    for relation in ("user", "org_unit", "tenant"):
        assert _values(getattr(loaded, relation)) == _values(getattr(orm, relation))
    assert loaded.managed_unit_ids == managed  # type: ignore[attr-defined]
    assert loaded.tenant.time_zone == "America/New_York"
    assert loaded._state.adding is False and loaded._state.db == "default"
    if who == "manager":
        assert managed == [tree_a.units["north"].pk]
    # The relations are cached: reading them sends nothing more.
    with CaptureQueriesContext(connection) as context:
        loaded.user.username, loaded.tenant.name, loaded.org_unit  # noqa: B018
    assert context.captured_queries == []


def test_a_member_without_a_unit_and_another_tenants_id(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        Membership.objects.filter(pk=rep.pk).update(org_unit=None)
        loaded = load_member(tree_a.tenant.pk, rep.pk)
        assert loaded is not None and loaded.org_unit is None and loaded.org_unit_id is None
        assert load_member(tree_a.tenant.pk, tree_b.members["rep"].pk) is None
        assert load_member(tree_a.tenant.pk, 0) is None
    with tenant_scope(tree_b.tenant):
        # Named with its own tenant but read in another's scope: RLS shows nothing.
        assert load_member(tree_a.tenant.pk, rep.pk) is None


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE from_sql = false")
        return [statement for (statement,) in cursor.fetchall()]


def test_the_statement_is_prepared_once_per_connection(tree_a: TenantTree) -> None:
    """Planned once by the server; the row is the same on every later use, after a
    rollback too (the driver then prepares it again)."""
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        first = load_member(tree_a.tenant.pk, rep.pk)
        prepared = [s for s in _prepared_statements() if "crm_orgunitmanager" in s]
        assert len(prepared) == 1
        assert _values(load_member(tree_a.tenant.pk, rep.pk)) == _values(first)
        assert len([s for s in _prepared_statements() if "crm_orgunitmanager" in s]) == 1
    with pytest.raises(RuntimeError), tenant_scope(tree_a.tenant):
        load_member(tree_a.tenant.pk, rep.pk)
        raise RuntimeError("rolled back")
    with tenant_scope(tree_a.tenant):
        assert _values(load_member(tree_a.tenant.pk, rep.pk)) == _values(first)


def test_prepared_statements_can_be_turned_off_for_a_pooler(settings: Any) -> None:
    """``DATABASE_PREPARED_STATEMENTS=0`` (PgBouncer before 1.21): a new connection
    prepares nothing (psycopg's ``prepare_threshold`` stays off, as Django leaves it)."""
    from django.db import connections

    for enabled in (False, True):
        settings.DATABASE_PREPARED_STATEMENTS = enabled
        other = connections.create_connection("default")
        try:
            other.ensure_connection()
            assert (other.connection.prepare_threshold is not None) is enabled
        finally:
            other.close()
