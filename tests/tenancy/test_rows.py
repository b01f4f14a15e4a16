"""A tenant model's row becomes an instance exactly as ``Model.from_db`` makes it
(``tenancy.models.TenantOwned.from_db``), for every model of every app."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db.models import Model
from django.db.models.signals import post_init

from tenancy.models import TenantOwned, _row_attnames
from tenancy.scope import tenant_scope
from tests.factories import TenantTree

pytestmark = pytest.mark.django_db


def _tenant_models() -> list[type[Model]]:
    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantOwned) and not model._meta.proxy
    ]


def _state(instance: Model) -> dict[str, Any]:
    values = {k: v for k, v in instance.__dict__.items() if k != "_state"}
    return {
        "values": values,
        "adding": instance._state.adding,
        "db": instance._state.db,
        "cache": dict(instance._state.fields_cache),
    }


def test_every_tenant_model_loads_rows_as_django_does(tree_a: TenantTree) -> None:
    from tests import records

    with tenant_scope(tree_a.tenant):
        for make in (records.contact, records.won_opportunity, records.visit, records.activity):
            make(tree_a)
        compared = 0
        for model in _tenant_models():
            assert _row_attnames(model) is not None, model  # every model takes the short path
            for row in model._default_manager.all()[:3]:
                names = [field.attname for field in model._meta.concrete_fields]
                values = [getattr(row, name) for name in names]
                ours = model.from_db("default", names, values)
                django = Model.from_db.__func__(model, "default", names, values)  # type: ignore[attr-defined]
                assert type(ours) is type(django) is model
                assert _state(ours) == _state(django), model
                assert ours == django and ours.pk == row.pk
                compared += 1
    assert compared >= 20


def test_deferred_columns_and_init_receivers_take_djangos_path(tree_a: TenantTree) -> None:
    from crm.models import Customer

    seen: list[Any] = []

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        seen.append(instance)

    with tenant_scope(tree_a.tenant):
        from tests import records

        records.contact(tree_a)
        deferred = Customer.objects.only("name").first()
        assert deferred is not None and deferred.get_deferred_fields()
        post_init.connect(receiver, sender=Customer)
        try:
            loaded = Customer.objects.first()
        finally:
            post_init.disconnect(receiver, sender=Customer)
    assert seen == [loaded]
