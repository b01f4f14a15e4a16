"""Fixtures shared by the import tests."""

from __future__ import annotations

import pytest

from crm.models import Customer
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree


@pytest.fixture
def customer_a(tree_a: TenantTree) -> Customer:
    """The rep's customer in tenant A, external id ``C-1`` (the files name it so)."""
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, tree_a.members["rep"])
        Customer.objects.filter(pk=customer.pk).update(external_id="C-1")
        customer.refresh_from_db()
        return customer
