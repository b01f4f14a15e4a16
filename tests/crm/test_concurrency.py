"""Races from flaky mobile networks: concurrent replays and concurrent edits, on real
connections (one per thread) to PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from crm.models import Activity, Customer, Opportunity, Payment, StageChange, StageKind
from tenancy.errors import Conflict
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


# --- no check-then-write (issue #12 item 3): twenty at once, one wins, the rest 409 ------

RACERS = 20


def _race(client: APIClient, method: str, url: str, payload: dict[str, Any]) -> list[int]:
    """``RACERS`` identical requests at once, each on its own connection; their statuses."""
    clients = [client] * RACERS  # APIClient keeps no state between requests here
    responses = in_parallel(
        RACERS, lambda n: getattr(clients[n], method)(url, payload, format="json")
    )
    errors = [r for r in responses if isinstance(r, Exception)]
    assert not errors, errors
    return sorted(r.status_code for r in responses)


def _one_wins(statuses: list[int], winner: int = 200) -> None:
    assert statuses == sorted([winner] + [409] * (RACERS - 1)), statuses


def test_twenty_concurrent_receipts_of_one_payment_receive_it_once(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deal = records.won_opportunity(tree_a, rep)
        from crm.services import payment_record

        payment, _created = payment_record(
            member=rep, opportunity=deal, amount=Decimal("50000.00"), planned_date=date(2027, 1, 5)
        )
    url = f"/api/v1/payments/{payment.pk}/receive/"
    _one_wins(_race(client_for(rep), "post", url, {}))
    with tenant_scope(tree_a.tenant):
        stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.version) == ("received", 2)


def test_twenty_concurrent_reversals_make_one_negative_row(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        payment = records.received_payment(tree_a, rep)
    url = f"/api/v1/payments/{payment.pk}/reverse/"
    _one_wins(_race(client_for(rep), "post", url, {}), winner=201)
    with tenant_scope(tree_a.tenant):
        assert list(
            Payment.objects.filter(opportunity_id=payment.opportunity_id)
            .order_by("pk")
            .values_list("amount", flat=True)
        ) == [Decimal("50000.00"), Decimal("-50000.00")]


def test_twenty_concurrent_completions_complete_once(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        activity = records.activity(tree_a, rep)
    url = f"/api/v1/activities/{activity.pk}/complete/"
    _one_wins(_race(client_for(rep), "post", url, {"outcome": "Called"}))
    with tenant_scope(tree_a.tenant):
        stored = Activity.objects.get(pk=activity.pk)
    assert stored.done_at is not None and stored.version == 2


def test_twenty_concurrent_claims_give_the_customer_one_owner(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        pooled = records.customer(tree_a, pool=True)
    url = f"/api/v1/customers/{pooled.pk}/claim/"
    _one_wins(_race(client_for(rep), "post", url, {}))
    with tenant_scope(tree_a.tenant):
        stored = Customer.objects.get(pk=pooled.pk)
    assert (stored.owner_id, stored.first_owner_id, stored.version) == (rep.pk, rep.pk, 2)


def test_twenty_concurrent_releases_release_once(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, rep)
    url = f"/api/v1/customers/{customer.pk}/release/"
    _one_wins(_race(client_for(rep), "post", url, {}))
    with tenant_scope(tree_a.tenant):
        stored = Customer.objects.get(pk=customer.pk)
    assert (stored.owner_id, stored.version) == (None, 2)


def test_twenty_concurrent_moves_at_one_version_make_one_stage_change(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, rep)
        quote = records.stage(order=3)
    url = f"/api/v1/opportunities/{deal.pk}/move/"
    _one_wins(_race(client_for(rep), "post", url, {"stage": quote.pk, "version": 1}))
    with tenant_scope(tree_a.tenant):
        stored = Opportunity.objects.get(pk=deal.pk)
        assert (stored.stage_id, stored.version) == (quote.pk, 2)
        assert StageChange.objects.filter(opportunity=deal).count() == 2


def test_twenty_concurrent_wins_without_a_version_win_once(
    tree_a: TenantTree, client_for: Callable[[Membership], APIClient]
) -> None:
    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        deal = records.opportunity(tree_a, rep)
        won = records.stage(StageKind.WON)
    statuses = _race(
        client_for(rep), "post", f"/api/v1/opportunities/{deal.pk}/move/", {"stage": won.pk}
    )
    # The losers find the deal already won: a 409 saying so, never a 500.
    _one_wins(statuses)
    with tenant_scope(tree_a.tenant):
        assert StageChange.objects.filter(opportunity=deal, to_stage=won).count() == 1


def test_a_service_given_a_stale_row_checks_the_locked_one(tree_a: TenantTree) -> None:
    """What a racing loser holds: the row as it was read before the winner committed."""
    from crm import services

    rep = tree_a.members["rep"]
    with tenant_scope(tree_a.tenant):
        customer = records.customer(tree_a, rep)
        stale_customer = Customer.objects.get(pk=customer.pk)
        services.customer_release(member=rep, customer=customer)
        activity = records.activity(tree_a, rep)
        stale_activity = Activity.objects.get(pk=activity.pk)
        services.activity_complete(member=rep, activity=activity)
        for call in (
            lambda: services.customer_release(member=rep, customer=stale_customer),
            lambda: services.activity_complete(member=rep, activity=stale_activity),
        ):
            with pytest.raises(Conflict):
                call()
        assert Customer.objects.get(pk=customer.pk).version == 2
        assert Activity.objects.get(pk=activity.pk).version == 2
