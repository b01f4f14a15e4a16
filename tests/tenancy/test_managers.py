"""The tenant managers' querysets, kept per manager, model and tenant and cloned for
each use (``tenancy.models.ScopedManager``), are django-scopes' own."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db.models import Q
from django_scopes import ScopeError

from tenancy.models import TenantOwned
from tenancy.scope import platform_scope, tenant_scope
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def _managers() -> list[Any]:
    found = []
    for model in apps.get_models():
        if issubclass(model, TenantOwned):
            for name in ("objects", "all_objects"):
                manager = getattr(model, name, None)
                if manager is not None:
                    found.append(manager)
    return found


def _uncached(manager: Any) -> Any:
    django_scopes_manager: Any = type(manager).__mro__[1]
    return django_scopes_manager.get_queryset(manager)


def test_each_tenant_gets_django_scopes_own_queryset(
    tree_a: TenantTree, tree_b: TenantTree
) -> None:
    managers = _managers()
    assert len(managers) >= 30
    seen: dict[Any, set[str]] = {}
    for tree in (tree_a, tree_b, tree_a):
        with tenant_scope(tree.tenant):
            for manager in managers:
                cached = manager.all()
                assert str(cached.query) == str(_uncached(manager).query), manager.model
                assert f'"tenant_id" = {tree.tenant.pk}' in str(cached.query)
                seen.setdefault(manager, set()).add(str(cached.query))
    assert all(len(texts) == 2 for texts in seen.values())  # one per tenant


def test_a_clone_changed_in_place_leaves_the_next_one_alone(tree_a: TenantTree) -> None:
    from crm.models import Customer

    with tenant_scope(tree_a.tenant):
        first: Any = Customer.objects.all()
        first.query.add_q(Q(name="changed in place"))
        first._hints["instance"] = object()
        again: Any = Customer.objects.all()
        assert "changed in place" not in str(again.query)
        assert again._hints == {}


def test_outside_a_scope_it_still_fails_closed(tree_a: TenantTree, tree_b: TenantTree) -> None:
    from crm.models import Customer
    from tests import records

    for tree in (tree_a, tree_b):
        with tenant_scope(tree.tenant):
            records.contact(tree)
            assert Customer.objects.count() == 1
    with pytest.raises(ScopeError):
        list(Customer.objects.all())
    with platform_scope("test: both tenants"):  # django-scopes' own path: no tenant filter
        assert Customer.objects.count() == 2
    with tenant_scope(tree_a.tenant):
        owner = tree_a.members["rep"]
        assert owner.customers.count() == Customer.objects.filter(owner=owner).count()
