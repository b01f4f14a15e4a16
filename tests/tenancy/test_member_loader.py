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
        cursor.execute("SELECT name FROM pg_prepared_statements")
        return [name for (name,) in cursor.fetchall()]


def _statements_of(client: Any, path: str = "/api/v1/me/") -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as context:
        response = client.get(path)
    return response, [q["sql"] for q in context.captured_queries if q["sql"] != "BEGIN"]


@pytest.mark.django_db(transaction=True)
def test_a_requests_membership_comes_with_the_message_opening_its_transaction(
    client_for: Any,
) -> None:
    """Outside a test's transaction, as in production: the membership is read by the
    message that opens the transaction, prepared on the connection's first request and
    executed by name after; the server's copy going missing costs one retry, not a
    failed request."""
    from tests.factories import build_tenant_tree

    tree = build_tenant_tree("opening", "Opening 开")
    rep = tree.members["rep"]
    client = client_for(rep)
    connection.close()  # a new connection: nothing prepared on it yet
    first, statements = _statements_of(client)
    assert first.status_code == 200 and first.json()["member"]["id"] == rep.pk
    assert statements[0].startswith("BEGIN; SET LOCAL app.tenant_id = '")
    assert statements[1] == (
        f"PREPARE crm_member (bigint, bigint) AS {_statement_sql('$1', '$2')}; "
        f"EXECUTE crm_member({tree.tenant.pk}, {rep.pk})"
    )
    assert _prepared_statements() == ["crm_member"]
    again, statements = _statements_of(client)
    assert again.json() == first.json()
    assert statements[1] == f"EXECUTE crm_member({tree.tenant.pk}, {rep.pk})"
    with connection.cursor() as cursor:  # lost behind the application's back
        cursor.execute("DEALLOCATE crm_member")
    lost, statements = _statements_of(client)
    assert lost.json() == first.json()
    assert statements[1].startswith("PREPARE crm_member")
    with tenant_scope(tree.tenant):
        Membership.objects.filter(pk=rep.pk).update(is_active=False)
    refused, _statements = _statements_of(client)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "membership_inactive"


@pytest.mark.django_db(transaction=True)
def test_prepared_statements_can_be_turned_off_for_a_pooler(client_for: Any, settings: Any) -> None:
    """``DATABASE_PREPARED_STATEMENTS=0`` (PgBouncer in transaction mode): the message
    carries the statement itself, and nothing is prepared."""
    from tests.factories import build_tenant_tree

    settings.DATABASE_PREPARED_STATEMENTS = False
    tree = build_tenant_tree("unprepared", "Unprepared 未")
    rep = tree.members["rep"]
    connection.close()
    response, statements = _statements_of(client_for(rep))
    assert response.status_code == 200 and response.json()["member"]["id"] == rep.pk
    assert statements[1] == _statement_sql(str(tree.tenant.pk), str(rep.pk))
    assert _prepared_statements() == []


def _statement_sql(tenant: str, member: str) -> str:
    from tenancy.member_loader import _statement

    return _statement().sql.replace("%s", tenant, 1).replace("%s", member, 1)


def test_a_members_managed_units_read_alike_however_the_member_was_loaded(
    tree_a: TenantTree,
) -> None:
    from django.db.models import Prefetch

    from tenancy.models import OrgUnit
    from tenancy.services import org_unit_set_managers

    manager = tree_a.members["manager"]
    with tenant_scope(tree_a.tenant):
        extra = OrgUnit.objects.get(pk=tree_a.units["south"].pk)
        org_unit_set_managers(unit=extra, managers=[manager])
        expected = sorted([tree_a.units["north"].pk, extra.pk])
        loaded = load_member(tree_a.tenant.pk, manager.pk)
        prefetched = Membership.objects.prefetch_related(
            Prefetch(
                "orgunitmanager_set",
                queryset=OrgUnitManager.objects.all(),
                to_attr="managed_links",
            )
        ).get(pk=manager.pk)
        plain = Membership.objects.get(pk=manager.pk)
        with CaptureQueriesContext(connection) as context:
            assert loaded is not None and loaded.managed_unit_list == expected
            assert prefetched.managed_unit_list == expected
        assert not context.captured_queries  # both read with the member
        assert plain.managed_unit_list == expected  # read now
        assert tree_a.members["rep"].managed_unit_list == []


def test_a_connection_reads_every_member_with_its_one_transformer(tree_a: TenantTree) -> None:
    """The request's opening reads its member with the connection's one transformer: every
    member read so equals the ORM's, the second time as the first."""
    from tenancy import member_loader

    def opened(member: Membership) -> Membership | None:
        opening = member_loader.MemberOpening(tree_a.tenant.pk, member.pk)
        with tenant_scope(tree_a.tenant, opening=opening):
            pass
        assert opening.received
        return opening.member

    members = list(tree_a.members.values())
    loaded = [opened(member) for member in members]
    kept = getattr(connection.connection, member_loader._TRANSFORMER)
    again = [opened(member) for member in members]
    assert getattr(connection.connection, member_loader._TRANSFORMER) is kept
    with tenant_scope(tree_a.tenant):
        orm = Membership.objects.select_related("user", "org_unit", "tenant").in_bulk(
            [member.pk for member in members]
        )
    for first, second in zip(loaded, again, strict=True):
        assert first is not None and second is not None
        assert _values(first) == _values(second) == _values(orm[first.pk])
        assert _values(second.user) == _values(orm[first.pk].user)
        assert _values(second.tenant) == _values(orm[first.pk].tenant)
