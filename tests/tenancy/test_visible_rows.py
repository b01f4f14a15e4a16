"""``tenancy.selectors.visible_rows``: what a member sees of a record, with an admin's and
a rep's filtered queryset kept per manager, tenant, member, role and field, exactly the
rows the filter built each time gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Q, QuerySet
from django_scopes import scopes_disabled

from crm import selectors
from crm.models import Activity, Customer, Lead, Opportunity, Payment, Visit
from tenancy import selectors as tenancy_selectors
from tenancy.models import Membership, Role
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db

#: Each selector, its model and how it filtered before (the filter built every time).
SELECTORS: list[tuple[Callable[..., QuerySet[Any]], Any, str, bool]] = [
    (selectors.visible_customers, Customer, "owner", True),
    (selectors.visible_leads, Lead, "owner", False),
    (selectors.visible_opportunities, Opportunity, "owner", False),
    (selectors.visible_payments, Payment, "opportunity__owner", False),
    (selectors.visible_visits, Visit, "rep", False),
    (selectors.visible_activities, Activity, "owner", False),
]


def _built(model: Any, member: Membership, field: str, pool: bool, deleted: bool) -> set[int]:
    rows = (model.all_objects if deleted else model.objects).all()
    if member.role != Role.ADMIN:
        visible = tenancy_selectors.owned_by_visible(member, field)
        rows = rows.filter(visible | Q(**{f"{field}__isnull": True}) if pool else visible)
    return set(rows.values_list("pk", flat=True))


def _fill(tree: TenantTree) -> None:
    records.one_of_each(tree)  # the south rep's
    for name in ("rep", "rep2", "manager"):
        member = tree.members[name]
        records.received_payment(tree, member)
        records.visit(tree, member)
        records.activity(tree, member)
        records.lead(tree, member)
    records.customer(tree, pool=True, name="公海 Pool")
    records.visit(tree, tree.members["rep"]).delete()  # a tombstone


def test_every_member_sees_what_the_filter_built_each_time_gives(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    with tenant_scope(tree_b.tenant):
        _fill(tree_b)  # another tenant's rows, never seen
    with tenant_scope(tree_a.tenant):
        _fill(tree_a)
        for selector, model, field, pool in SELECTORS:
            for name, member in tree_a.members.items():
                for deleted in (False, True):
                    expected = _built(model, member, field, pool, deleted)
                    for _kept in range(2):  # built, then from what was kept
                        rows = selector(member, include_deleted=deleted)
                        got = set(rows.values_list("pk", flat=True))
                        assert got == expected, (selector.__name__, name, deleted)
                    assert expected or name == "admin" and model is Lead  # rows to compare
        rep = tree_a.members["rep"]
        own = set(selectors.visible_visits(rep).values_list("rep_id", flat=True))
        assert own == {rep.pk}
        everything = selectors.visible_visits(tree_a.members["admin"])
        assert everything.count() > selectors.visible_visits(tree_a.members["manager"]).count()


def test_an_admins_and_a_reps_rows_are_kept_and_each_use_is_a_clone(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept: dict[Any, Any] = {}
    monkeypatch.setattr(tenancy_selectors, "_VISIBLE_ROWS", kept)
    rep, manager = tree_a.members["rep"], tree_a.members["manager"]
    with tenant_scope(tree_a.tenant):
        records.visit(tree_a, rep)
        first, second = selectors.visible_visits(rep), selectors.visible_visits(rep)
        assert len(kept) == 1 and first is not second and first.query is not second.query
        assert str(first.query) == str(second.query)
        assert list(first.filter(purpose="none")) == [] and list(second)  # one's filter only
        first._hints["x"] = 1  # type: ignore[attr-defined]
        assert selectors.visible_visits(rep)._hints == {}  # type: ignore[attr-defined]
        selectors.visible_visits(tree_a.members["admin"])
        selectors.visible_visits(rep, include_deleted=True)  # another manager
        assert len(kept) == 3
        selectors.visible_visits(manager)  # a manager's subtree as of now: never kept
        assert len(kept) == 3
        # A rep made an admin sees every row at once (the role is in the key).
        records.visit(tree_a, tree_a.members["south-rep"])
        assert selectors.visible_visits(rep).count() == 1
        promoted = Membership.objects.get(pk=rep.pk)
        promoted.role = Role.ADMIN
        promoted.save(update_fields=["role"])
        assert selectors.visible_visits(promoted).count() == 2 and len(kept) == 4
        with scopes_disabled():  # no tenant in scope: built each time
            assert Visit.objects.filter(pk__in=selectors.visible_visits(rep)).exists()
        assert len(kept) == 4


def test_a_rep_id_in_another_tenants_scope_sees_nothing_there(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        records.visit(tree_a, rep)
        assert selectors.visible_visits(rep).count() == 1
    with tenant_scope(tree_b.tenant):
        records.visit(tree_b, tree_b.members["rep"])
        assert selectors.visible_visits(rep).count() == 0
    with tenant_scope(tree_a.tenant):
        assert selectors.visible_visits(rep).count() == 1
