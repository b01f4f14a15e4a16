"""A page that is only shown is read as columns (``tenancy.orm.reading_columns``): the same
SQL and values as the model's instances, rendered (``column_renderer``) as the
instances are, and every list of the API answers the same with it as without it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.db.models import Prefetch, QuerySet
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver, reverse
from django.utils import timezone

from crm.models import Customer, Visit
from tenancy import orm
from tenancy.api.serializers import _UNBOUND_PLANS, _renderer
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree
from tests.tenancy.test_orm import QUERIES
from tests.tenancy.test_serializer_fields import ZONES, _api_serializers

#: The queries of ``test_orm`` that read more or less than whole rows of their model.
NOT_WHOLE_ROWS = {
    "values of keys",
    "a self join selected",
    "a count in order",
    "ordered, only the keys",
    "ordered by the key that is selected as pk",
    "ordered by an annotation",
    "related rows two keys away",
    "every related row",
    "only some columns",
    "deferred columns",
    "an annotation",
    "extra select",
    "a union of whole rows",
    "a union with a constant",
    "a filter on an aggregate",
    "an aggregate or a column",
    "a filter on a window",
}


def column_rows(queryset: QuerySet[Any], reads: Iterable[str] = ()) -> QuerySet[Any] | None:
    """A copy of ``queryset`` reading its rows as ``ColumnRow`` rows, as
    ``orm.reading_columns`` makes it read them in its block, when it can
    (``orm.reads_columns``); else None."""
    if not orm.reads_columns(queryset, reads):
        return None
    rows: Any = queryset._chain()  # type: ignore[attr-defined]
    rows._iterable_class = orm.ColumnRows
    return rows


def _columns(instance: Any) -> tuple[Any, ...]:
    return tuple(getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields)


def test_whole_rows_read_as_columns_are_the_instances_columns(tree_a: TenantTree) -> None:
    compared = 0
    with_related: dict[str, int] = {}
    missing: set[str] = set()
    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
        records.visit(tree_a)
        records.visit(tree_a)
        for name, make in QUERIES.items():
            columns = column_rows(make())
            if name in NOT_WHOLE_ROWS:
                assert columns is None, name
                continue
            assert columns is not None, name
            instances = make()
            assert str(columns.query) == str(instances.query), name
            rows, models = list(columns), list(instances)
            width = len(instances.model._meta.concrete_fields)
            assert [tuple(row)[:width] for row in rows] == [_columns(m) for m in models], name
            row_class = orm.column_row_class(instances.model)
            related = instances.query.select_related
            selected = sorted(related) if isinstance(related, dict) else []
            for row, model in zip(rows, models, strict=True):
                assert isinstance(row, row_class) and row.model is instances.model
                assert len(row) > width if selected else type(row) is row_class
                assert row.pk == model.pk
                for field in instances.model._meta.concrete_fields:
                    assert getattr(row, field.attname) == getattr(model, field.attname)
                # The rows read with it, as select_related reads them (None when missing).
                for relation in selected:
                    theirs, ours = getattr(model, relation), getattr(row, relation)
                    if theirs is None:
                        assert ours is None, (name, relation)
                        continue
                    related_class = orm.column_row_class(type(theirs))
                    assert type(ours) is related_class, (name, relation)
                    assert tuple(ours) == _columns(theirs), (name, relation)
                    with_related[name] = with_related.get(name, 0) + 1
                missing.update(key for key in selected if getattr(model, key) is None)
            compared += len(rows)
        assert compared > 20
        # Read with their related rows: each of a key that may be missing, too.
        assert len(with_related) >= 6, with_related
        assert "product_line" in missing, "no missing related row was compared"


def _refused() -> Iterator[tuple[str, QuerySet[Any]]]:
    customer = Customer.objects.first()
    assert customer is not None
    yield "prefetched", Visit.objects.prefetch_related("customer")
    yield (
        "prefetched into an attribute",
        Customer.objects.prefetch_related(Prefetch("visits", to_attr="seen")),
    )
    yield "a related manager's rows", customer.visits.all()
    yield "values", Visit.objects.values("id")
    yield "values_list", Visit.objects.values_list("id", flat=True)
    yield "read as columns already", column_rows(Visit.objects.all())  # type: ignore[misc]


def test_anything_but_whole_rows_of_the_model_alone_is_read_as_instances(
    tree_a: TenantTree,
) -> None:
    with tenant_scope(tree_a.tenant):
        records.visit(tree_a)
        for name, queryset in _refused():
            assert column_rows(queryset) is None, name


def test_a_queryset_reads_columns_in_the_block_only(tree_a: TenantTree) -> None:
    """``reading_columns``: the queryset itself and what is made from it in the block read
    ``ColumnRow`` rows; after the block (an error too) it reads instances again, and a
    queryset that cannot, or no ``reads``, is left as it is."""
    with tenant_scope(tree_a.tenant):
        records.visit(tree_a)
        visits = Visit.objects.order_by("pk")
        with orm.reading_columns(visits, ()) as columns:
            assert columns
            assert isinstance(visits[:1][0], orm.ColumnRow)
            assert isinstance(visits.filter(pk__gt=0).get(), orm.ColumnRow)
            sliced = list(visits[:5])
        assert [row.pk for row in sliced] == [visit.pk for visit in visits]
        assert isinstance(next(iter(visits.all())), Visit)
        with pytest.raises(ZeroDivisionError), orm.reading_columns(visits, ()):
            raise ZeroDivisionError
        assert isinstance(visits.all()[0], Visit)
        for reads, refused in ((None, visits), ((), Visit.objects.values("pk"))):
            kind = refused._iterable_class
            with orm.reading_columns(refused, reads) as columns:
                assert not columns
                assert refused._iterable_class is kind
        for name, queryset in _refused():
            with orm.reading_columns(queryset, ()) as columns:
                assert not columns, name


def test_a_model_whose_instances_are_awaited_is_read_as_instances(tree_a: TenantTree) -> None:
    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        pass  # connected: the model's instances are awaited

    with tenant_scope(tree_a.tenant):
        records.visit(tree_a)
        assert column_rows(Visit.objects.all()) is not None
        post_init.connect(receiver, sender=Visit)
        try:
            assert column_rows(Visit.objects.all()) is None
            assert column_rows(Customer.objects.all()) is not None  # another model's
        finally:
            post_init.disconnect(receiver, sender=Visit)


def test_every_column_only_plan_renders_a_row_of_columns_as_its_instance(
    tree_a: TenantTree,
) -> None:
    rendered: set[str] = set()
    with tenant_scope(tree_a.tenant):
        records.one_of_each(tree_a)
        for cls in _api_serializers():
            model = getattr(cls.Meta, "model", None)
            if model is None or getattr(model._meta, "proxy", False):
                continue
            cls()._read_plan()  # plans the class
            render = cls.column_renderer()
            if render is None:
                continue
            assert cls.column_renderer() is render  # written once
            plan = _UNBOUND_PLANS[cls]
            reads = cls.column_reads()  # the related rows its row properties read
            assert reads is not None, cls.__qualname__  # rendered as columns: it has them
            instances = list(model._default_manager.order_by("pk")[:5])
            manager = model._default_manager
            rows = manager.select_related(*reads) if reads else manager.all()
            columns = column_rows(rows.order_by("pk")[:5], reads)
            assert columns is not None, cls.__qualname__
            assert column_rows(model._default_manager.all(), reads) is None or not reads
            for zone in ZONES:
                with timezone.override(zone):
                    shown = cls.represent_rows(list(columns))
                    assert shown == cls.represent_rows(instances), (cls.__qualname__, zone)
                    assert shown == [dict(row) for row in cls(instances, many=True).data]
                    assert shown == [
                        _renderer(plan)(m, (timezone.get_current_timezone(),)) for m in instances
                    ]
            if instances:
                rendered.add(cls.__qualname__)
    # The record lists that show only columns, at least.
    shown = {"VisitSerializer", "CustomerSerializer", "OpportunitySerializer", "ActivitySerializer"}
    assert shown <= rendered, sorted(rendered)


def test_rows_of_columns_a_class_cannot_show_are_refused(tree_a: TenantTree) -> None:
    from crm.api.records import CustomerSerializer, VisitSerializer

    with tenant_scope(tree_a.tenant):
        records.visit(tree_a)
        VisitSerializer()._read_plan()
        CustomerSerializer()._read_plan()
        assert CustomerSerializer.column_renderer() is not None
        visits = column_rows(Visit.objects.all())
        assert visits is not None
        with pytest.raises(TypeError):
            CustomerSerializer.represent_rows(list(visits))  # another model's rows
        with pytest.raises(TypeError):
            VisitSerializer.represent_rows([*visits, *Visit.objects.all()])  # a mix


def test_a_row_property_reads_the_related_row_read_with_it_and_never_fetches_one(
    tree_a: TenantTree,
) -> None:
    """A deal's probability and forecast category come from its stage unless overridden:
    on a row of columns they read the stage's row selected with it, as the instance reads
    its cached stage. A page whose rows lack a relation a property reads is not read as
    columns; a row without it says so instead of fetching it (or of a renderer taking the
    error for a missing attribute and leaving the field out)."""
    from crm.api.records import OpportunitySerializer
    from crm.models import Opportunity

    with tenant_scope(tree_a.tenant):
        won = records.won_opportunity(tree_a)
        overridden = records.opportunity(tree_a)
        Opportunity.objects.filter(pk=overridden.pk).update(
            probability_override=35, forecast_category_override="best_case"
        )
        OpportunitySerializer()._read_plan()
        assert OpportunitySerializer.column_reads() == {"stage"}
        assert column_rows(Opportunity.objects.all(), {"stage"}) is None
        assert column_rows(Opportunity.objects.select_related("customer"), {"stage"}) is None
        selected = Opportunity.objects.select_related("stage", "product_line").order_by("id")
        columns = column_rows(selected, {"stage"})
        assert columns is not None
        rows, instances = list(columns), list(selected)
        assert {(row.probability, row.forecast_category) for row in rows} == {
            (100, won.stage.forecast_category),
            (35, "best_case"),
        }
        for row, instance in zip(rows, instances, strict=True):
            assert (row.probability, row.forecast_category) == (
                instance.probability,
                instance.forecast_category,
            )
            assert row.stage.name == instance.stage.name
        bare = column_rows(Opportunity.objects.order_by("id"))
        assert bare is not None
        first = list(bare)[0]
        with (
            pytest.raises(orm.RelationNotRead, match="stage"),
            CaptureQueriesContext(connection) as queries,
        ):
            first.probability  # noqa: B018 - not overridden: reads the stage
        assert len(queries) == 0


def _list_paths() -> list[str]:
    """Every list of the API (a route named ``…-list`` without arguments)."""
    names: set[str] = set()

    def walk(patterns: list[Any]) -> None:
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns)
            elif pattern.name and pattern.name.endswith("-list"):
                names.add(pattern.name)

    walk(get_resolver().url_patterns)
    paths = []
    for name in sorted(names):
        try:
            paths.append(reverse(f"api:{name}"))
        except Exception:  # noqa: BLE001, S112 - a list under another object's id
            continue
    return paths


@pytest.mark.parametrize("role", ["admin", "rep"])
def test_every_list_answers_the_same_read_as_columns_or_as_instances(
    tree_a: TenantTree, client_for: Any, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    with tenant_scope(tree_a.tenant):
        records.one_of_each(tree_a)
        for number in range(3):
            records.visit(tree_a, rep=tree_a.members["rep"])
            records.customer(tree_a, tree_a.members["rep"], name=f"客户 {number}")
    client = client_for(tree_a.members[role])
    since = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
    read: list[Any] = []
    counted = orm.reads_columns

    def counting(queryset: QuerySet[Any], reads: Any = ()) -> bool:
        columns = counted(queryset, reads)
        read.append(columns)
        return columns

    paths = _list_paths()
    assert "/api/v1/visits/" in paths and len(paths) > 20, paths
    for path in paths:
        for query in ({"page_size": 2}, {"page_size": 2, "updated_since": since}):
            monkeypatch.setattr(orm, "reads_columns", counting)
            first = client.get(path, query)
            monkeypatch.setattr(orm, "reads_columns", lambda queryset, reads=(): False)
            second = client.get(path, query)
            assert first.status_code == second.status_code, (path, query)
            assert first.content == second.content, (path, query)
            if first.status_code == 200 and first.json().get("cursor"):
                cursor = {"cursor": first.json()["cursor"], "page_size": 2}
                monkeypatch.setattr(orm, "reads_columns", counting)
                following = client.get(path, cursor).content
                monkeypatch.setattr(orm, "reads_columns", lambda queryset, reads=(): False)
                assert following == client.get(path, cursor).content, path
    assert any(read), "no list was read as columns"
