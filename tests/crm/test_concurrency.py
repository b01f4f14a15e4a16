"""Races from flaky mobile networks: concurrent replays and concurrent edits, on real
connections (one per thread) to PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from crm.models import Customer, Payment
from tenancy.models import Membership
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db(transaction=True)


def in_parallel(count: int, call: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = call(index)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_twenty_concurrent_replays_of_one_offline_create_make_one_row(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    client_id = str(uuid.uuid4())
    payload = {"name": "并发 Concurrent", "client_id": client_id}
    clients = [client_for(tree_a.members["rep"]) for _ in range(20)]
    responses = in_parallel(20, lambda n: clients[n].post("/api/v1/customers/", payload))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 19 + [201], responses
    assert len({r.json()["id"] for r in responses}) == 1
    with tenant_scope(tree_a.tenant):
        assert Customer.objects.filter(client_id=client_id).count() == 1


def test_two_concurrent_updates_with_the_same_version_one_gets_409(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, tree_a.members["rep"])
    clients = [client_for(tree_a.members["rep"]) for _ in range(2)]
    industries = ["Steel", "Textiles"]
    responses = in_parallel(
        2,
        lambda n: clients[n].patch(
            f"/api/v1/customers/{customer.pk}/",
            {"industry": industries[n], "version": 1},
            format="json",
        ),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    winner = next(r for r in responses if r.status_code == 200).json()
    with tenant_scope(tree_a.tenant):
        stored = Customer.objects.get(pk=customer.pk)
    assert (stored.industry, stored.version) == (winner["industry"], 2)


def test_concurrent_reversals_of_one_payment_make_one_reversal(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    with tenant_scope(tree_a.tenant):
        payment = records.received_payment(tree_a, tree_a.members["rep"])
    clients = [client_for(tree_a.members["rep"]) for _ in range(5)]
    responses = in_parallel(
        5, lambda n: clients[n].post(f"/api/v1/payments/{payment.pk}/reverse/", {})
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    with tenant_scope(tree_a.tenant):
        assert Payment.objects.filter(reverses=payment).count() == 1
