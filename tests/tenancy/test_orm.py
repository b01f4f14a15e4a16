"""``tenancy.orm``: a foreign key's column of its own table is made once, a model's own
select list is compiled once, and every query compiles to the SQL (and leaves the table
references) Django's own ``ForeignKey.get_col`` and ``SQLCompiler.get_select`` give."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Count, Exists, F, ForeignKey, OuterRef, Q, QuerySet, Value, Window
from django.db.models.functions import RowNumber
from django.db.models.lookups import Exact
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.where import WhereNode

from crm.models import Customer, Opportunity, Visit
from tenancy import orm
from tenancy.models import Membership, OrgUnit, Tenant
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree


def test_installed_when_the_app_starts() -> None:
    assert ForeignKey.get_col is orm._get_col
    assert SQLCompiler.get_select is orm._get_select


def test_the_own_tables_column_is_made_once_and_any_other_each_time() -> None:
    field: Any = Opportunity._meta.get_field("stage")
    own = field.get_col(Opportunity._meta.db_table)
    assert field.get_col(Opportunity._meta.db_table) is own
    assert (own.alias, own.target, own.output_field) == (
        "crm_opportunity",
        field,
        field.target_field,
    )
    assert field.get_col("T5") is not field.get_col("T5")  # another alias: Django's way
    assert field.get_col("T5").alias == "T5"
    explicit = field.get_col(Opportunity._meta.db_table, field)
    assert explicit is not own and explicit.output_field is field
    # A foreign key of another model keeps its own column.
    assert Visit._meta.get_field("customer").get_col("crm_visit") is not own


QUERIES: dict[str, Callable[[], QuerySet[Any]]] = {
    "filter and order by keys": lambda: Opportunity.objects.filter(
        stage__isnull=False, owner__isnull=False
    ).order_by("stage", "-owner", "id"),
    "select related": lambda: Opportunity.objects.select_related("stage", "customer").order_by(
        "-updated_at"
    )[:5],
    "values of keys": lambda: Opportunity.objects.values("stage_id", "customer").annotate(
        n=Count("id")
    ),
    "a subquery on the outer key": lambda: Membership.objects.filter(
        Exists(Opportunity.objects.filter(owner=OuterRef("pk"), stage=OuterRef("pk")))
    ),
    "a self join": lambda: OrgUnit.objects.filter(
        Q(parent__parent__isnull=False) | Q(parent=None)
    ).order_by("parent", "parent__parent"),
    "a self join selected": lambda: OrgUnit.objects.select_related("parent__parent").order_by(
        "path"
    ),
    "a count in order": lambda: (
        Visit.objects.filter(rep__isnull=False)
        .order_by("customer", "-check_in_at")
        .values("pk")[:1001]
    ),
    # Whole rows of one model (the select list compiled once) …
    "whole rows, filtered and ordered": lambda: Visit.objects.filter(
        rep__isnull=False, check_in_at__isnull=False
    ).order_by("-check_in_at")[:51],
    "whole rows, every row": lambda: Visit.all_objects.all(),
    "whole rows of an unscoped model, unfiltered": lambda: Tenant.objects.all(),
    "whole rows of a table joined in the filter": lambda: Opportunity.objects.filter(
        stage__kind="open", owner__org_unit__path__startswith="0"
    ).order_by("-updated_at", "id"),
    "whole rows, distinct": lambda: Opportunity.objects.filter(activities__isnull=False).distinct(),
    # Orders by the model's own columns (the ORDER BY compiled once) …
    "ordered by own columns, both ways": lambda: Visit.objects.order_by(
        "-check_in_at", "planned_start", "pk"
    )[:51],
    "a term twice": lambda: Visit.objects.order_by("check_in_at", "-check_in_at", "-id"),
    "forwards": lambda: Visit.objects.order_by("-check_in_at", "id")[:3],
    "reversed": lambda: Visit.objects.order_by("-check_in_at", "id").reverse()[:3],
    "ordered with a related row selected": lambda: Opportunity.objects.select_related(
        "stage"
    ).order_by("-updated_at", "id")[:51],
    "ordered, only the keys": lambda: (
        Opportunity.objects.filter(stage__kind="open").order_by("-updated_at").values("pk")[:1001]
    ),
    "ordered by the key that is selected as pk": lambda: Visit.objects.values("pk").order_by("-pk"),
    "ordered and distinct": lambda: (
        Opportunity.objects.filter(activities__isnull=False).distinct().order_by("name")
    ),
    # … and orders by anything else.
    "ordered by a key's column": lambda: Visit.objects.order_by("customer_id", "-rep_id"),
    "ordered by a related column": lambda: Visit.objects.order_by("customer__name", "id"),
    "ordered by an annotation": lambda: Visit.objects.annotate(n=Count("id")).order_by("-n"),
    "ordered by an expression": lambda: Visit.objects.order_by(F("check_in_at").desc()),
    "ordered by a reverse relation": lambda: Customer.objects.order_by("visits", "id"),
    # … with the rows their keys lead to (one level) …
    "related rows": lambda: Visit.objects.select_related("customer", "rep").order_by("id"),
    "a related row that may be missing": lambda: Opportunity.objects.select_related(
        "product_line", "stage"
    ).order_by("-updated_at")[:5],
    "a related row already joined by the filter": lambda: Opportunity.objects.filter(
        stage__kind="open"
    ).select_related("stage"),
    "a related row of the same table": lambda: OrgUnit.objects.select_related("parent"),
    "a related row of the same table, joined twice": lambda: OrgUnit.objects.filter(
        parent__parent__isnull=False
    ).select_related("parent"),
    "a related row of the same table, joined under another alias": lambda: OrgUnit.objects.filter(
        children__name__isnull=False
    ).select_related("parent"),
    # … and the queries that select anything else (Django's way).
    "related rows two keys away": lambda: Opportunity.objects.select_related("stage__pipeline"),
    "every related row": lambda: Visit.objects.select_related(),
    "only some columns": lambda: Visit.objects.only("id", "check_in_at").order_by("id"),
    "deferred columns": lambda: Visit.objects.defer("outcome", "next_step"),
    "an annotation": lambda: Visit.objects.annotate(late=F("check_in_at")).order_by("late"),
    "an alias only": lambda: Visit.objects.alias(late=F("check_in_at")).order_by("late"),
    "extra select": lambda: Visit.objects.extra(select={"one": "1"}).order_by("id"),
    "whole rows of the same model in a subquery": lambda: Visit.objects.filter(
        pk__in=Visit.objects.filter(rep__isnull=False).values("pk")
    ).exclude(pk__in=Visit.objects.filter(customer__isnull=True)),
    # Conditions on aggregates and windows (HAVING, QUALIFY): Django splits them.
    "a filter on an aggregate": lambda: (
        Visit.objects.filter(rep__isnull=False)
        .values("rep")
        .annotate(n=Count("id"))
        .filter(n__gte=1)
    ),
    "an aggregate or a column": lambda: (
        Visit.objects.values("rep")
        .annotate(n=Count("id"))
        .filter(Q(n__gte=1) | Q(rep__isnull=True))
    ),
    "a filter on a window": lambda: (
        Visit.objects.filter(rep__isnull=False)
        .annotate(r=Window(RowNumber(), partition_by=[F("rep")], order_by=F("id").asc()))
        .filter(r=1)
    ),
    "a union of whole rows": lambda: Visit.objects.filter(rep__isnull=False).union(
        Visit.objects.filter(customer__isnull=False)
    ),
    "a union with a constant": lambda: Visit.objects.annotate(k=Value(1)).union(
        Visit.objects.annotate(k=Value(2))
    ),
}


def test_every_query_compiles_and_runs_as_with_djangos_get_col(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
        records.visit(tree_a)
        for name, make in QUERIES.items():
            for _compiled_before in range(2):  # the second time from what was kept
                ours = make()
                ours_sql, ours_rows = str(ours.query), list(ours)
                ours_refs = dict(ours.query.alias_refcount)
                orm.uninstall()
                try:
                    theirs = make()
                    theirs_sql, theirs_rows = str(theirs.query), list(theirs)
                    theirs_refs = dict(theirs.query.alias_refcount)
                finally:
                    orm.install()
                assert ours_sql == theirs_sql, name
                assert ours_refs == theirs_refs, name
                assert ours_rows == theirs_rows, name
        # Rows are there to compare.
        assert list(QUERIES["filter and order by keys"]())
        assert list(QUERIES["select related"]()) and list(QUERIES["a count in order"]())


SPLIT: dict[str, Callable[[], QuerySet[Any]]] = {
    "plain conditions": lambda: Visit.objects.filter(
        rep__isnull=False, check_in_at__gte=datetime(2026, 1, 1, tzinfo=UTC)
    ).exclude(Q(verified=True) | Q(distance_m__gt=Decimal("1.5"))),
    "a condition on an expression": lambda: Visit.objects.filter(
        check_in_at__gte=F("planned_start")
    ),
    "a condition in a related table": lambda: Visit.objects.filter(customer__name="x"),
    "an aggregate": lambda: Visit.objects.values("rep").annotate(n=Count("id")).filter(n__gte=1),
    "an aggregate negated": lambda: (
        Visit.objects.values("rep")
        .annotate(n=Count("id"))
        .exclude(Q(n__gte=1) & Q(rep__isnull=True))
    ),
    "a window": lambda: Visit.objects.annotate(
        r=Window(RowNumber(), order_by=F("id").asc())
    ).filter(r__lte=3, rep__isnull=False),
}


def _split_parts(where: WhereNode, **arguments: Any) -> list[str | None]:
    return [None if part is None else str(part) for part in where.split_having_qualify(**arguments)]


@pytest.mark.parametrize("name", sorted(SPLIT))
def test_conditions_split_into_where_having_and_qualify_as_djangos(
    tree_a: TenantTree, name: str
) -> None:
    arguments = [{}, {"negated": True}, {"must_group_by": True}]
    with tenant_scope(tree_a.tenant):
        where = SPLIT[name]().query.where
        ours = [_split_parts(where, **given) for given in arguments]
        # A tree of plain conditions is not asked whether it holds aggregates or windows.
        plain = name in {"plain conditions", "a condition in a related table"}
        assert ("contains_aggregate" not in where.__dict__) is plain
        assert where.split_having_qualify()[0] is where or not plain
        orm.uninstall()
        try:
            where = SPLIT[name]().query.where
            theirs = [_split_parts(where, **given) for given in arguments]
        finally:
            orm.install()
    assert ours == theirs
    assert any(part is not None for part in ours[0][1:]) is name.startswith(("an agg", "a win"))


def test_a_models_own_columns_are_compiled_once_per_kind_of_compiler(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []

    def django_get_select(compiler: SQLCompiler, with_col_aliases: bool = False) -> Any:
        made.append((type(compiler).__name__, compiler.query.model, with_col_aliases))
        return orm_django_get_select(compiler, with_col_aliases)

    orm_django_get_select = orm._django_get_select
    monkeypatch.setattr(orm, "_django_get_select", django_get_select)
    monkeypatch.setattr(orm, "_OWN_COLUMNS", {})
    with tenant_scope(tree_a.tenant):
        records.visit(tree_a)  # (its points rules are read: another model)
        made.clear()
        pages = [
            Visit.objects.filter(rep=member).order_by("-check_in_at")[:51]
            for member in (tree_a.members["rep"], tree_a.members["manager"])
        ]
        assert [str(page.query) for page in pages] and len(made) == 1  # kept for the second
        assert list(pages[0]) == list(Visit.objects.filter(rep=tree_a.members["rep"]))
        assert len(made) == 1  # and for running it
        str(Visit.objects.only("id").query)  # another select list: Django's every time
        str(Visit.objects.only("id").query)
        assert len(made) == 3
        str(OrgUnit.objects.all().query)  # another model: its own list
        str(OrgUnit.objects.all().query)
        assert len(made) == 4


def test_an_order_by_own_columns_is_compiled_once_per_terms_and_direction(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []

    def django_get_order_by(compiler: SQLCompiler) -> Any:
        made.append(tuple(compiler.query.order_by))
        return orm_django_get_order_by(compiler)

    orm_django_get_order_by = orm._django_get_order_by
    monkeypatch.setattr(orm, "_django_get_order_by", django_get_order_by)
    monkeypatch.setattr(orm, "_OWN_ORDERS", {})
    with tenant_scope(tree_a.tenant):
        for member in ("rep", "rep2"):
            str(Visit.objects.filter(rep=tree_a.members[member]).order_by("-check_in_at").query)
        assert made == [("-check_in_at",)]  # the second from what was kept
        str(Visit.objects.order_by("-check_in_at").reverse().query)  # the other direction
        str(Visit.objects.order_by("check_in_at").query)  # other terms
        str(Visit.objects.order_by("customer").query)  # a relation: Django's every time
        str(Visit.objects.order_by("customer").query)
        assert made == [("-check_in_at",)] * 2 + [("check_in_at",)] + [("customer",)] * 2


def test_related_rows_join_as_with_django_and_a_wrong_name_is_still_an_error(
    tree_a: TenantTree,
) -> None:
    from django.core.exceptions import FieldError

    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
        for _compiled_before in range(2):
            deals = list(Opportunity.objects.select_related("stage", "product_line"))
            assert deals and all(deal._state.fields_cache["stage"].pk for deal in deals)
            with pytest.raises(FieldError):
                str(Opportunity.objects.select_related("stage", "nope").query)  # type: ignore[misc]
            with pytest.raises(FieldError):
                str(Opportunity.objects.select_related("name").query)  # type: ignore[misc]


def test_a_condition_shared_by_clones_is_compiled_once_per_column_and_value(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled: list[Any] = []

    def django_compile(compiler: SQLCompiler, node: Any) -> Any:
        if type(node) in orm._KEPT_LOOKUPS:
            compiled.append(node)
        return orm_django_compile(compiler, node)

    orm_django_compile = orm._django_compile
    monkeypatch.setattr(orm, "_django_compile", django_compile)
    with tenant_scope(tree_a.tenant):
        base = Visit.objects.filter(rep=tree_a.members["rep"], verified=False)
        str(base.filter(purpose="a").query)
        assert compiled[-1].rhs == "a"
        before = len(compiled)
        sql = str(base.filter(purpose="b").query)
        # The shared ones kept, the new one from the text kept for the first.
        assert compiled[before:] == []
        assert '"crm_visit"."rep_id" = ' in sql and '"crm_visit"."verified"' in sql
        # In a subquery the conditions are relabelled copies: compiled for their alias.
        before = len(compiled)
        inner = str(Visit.objects.filter(pk__in=base.values("pk")).query)
        assert len(compiled) - before >= 3 and 'U0."rep_id" = ' in inner
        # A condition comparing with another column is compiled every time.
        compared = base.filter(planned_start__gte=F("check_in_at"))
        before = len(compiled)
        str(compared.query)
        str(compared.query)
        kinds = [type(node.rhs).__name__ for node in compiled[before:]]
        assert kinds == ["Col", "Col"]


#: New conditions of a model's own column (named) and a plain value, each made with two
#: values: the second compiles to the text kept from the first.
NEW_CONDITIONS: dict[str, tuple[str, Callable[[Any], QuerySet[Any]], list[Any]]] = {
    "a moment, at or after": (
        "check_in_at",
        lambda v: Visit.objects.filter(check_in_at__gte=v),
        [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)],
    ),
    "a moment, before": (
        "planned_start",
        lambda v: Visit.objects.filter(planned_start__lt=v),
        [datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 5, 6, 7, 8, 9, 10, tzinfo=UTC)],
    ),
    "a date": (
        "expected_close_date",
        lambda v: Opportunity.objects.filter(expected_close_date__lte=v),
        [date(2026, 1, 31), date(2026, 12, 31)],
    ),
    "a decimal": (
        "amount",
        lambda v: Opportunity.objects.filter(amount__gt=v),
        [Decimal("10.50"), Decimal("1000")],
    ),
    "a text": ("purpose", lambda v: Visit.objects.filter(purpose=v), ["a", "一个 O'Brien %s"]),
    "a key's id": ("rep", lambda v: Visit.objects.filter(rep=v), [1, 2]),
    "a key's id, at least": (
        "customer",
        lambda v: Visit.objects.filter(customer_id__gte=v),
        [3, 4],
    ),
    "a uuid": (
        "client_id",
        lambda v: Visit.objects.filter(client_id=v),
        [uuid.UUID(int=1), uuid.UUID(int=2**100)],
    ),
    "a boolean": ("verified", lambda v: Visit.objects.filter(verified=v), [True, False]),
    "a null test": (
        "check_out_at",
        lambda v: Visit.objects.filter(check_out_at__isnull=v),
        [True, False],
    ),
    "a null test of a key": (
        "customer",
        lambda v: Visit.objects.filter(customer__isnull=v),
        [False, True],
    ),
}


@pytest.mark.parametrize("name", sorted(NEW_CONDITIONS))
def test_a_new_condition_compiles_to_the_text_kept_for_its_lookup_and_column(
    name: str, tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    column, make, values = NEW_CONDITIONS[name]
    compiled: list[Any] = []
    orm_django_compile = orm._django_compile

    def django_compile(compiler: SQLCompiler, node: Any) -> Any:
        if type(node) in orm._KEPT_LOOKUPS and node.lhs.target.name == column:
            compiled.append(node.rhs)
        return orm_django_compile(compiler, node)

    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
        records.visit(tree_a)
        orm._CONDITION_SQL.clear()
        for value in values:
            monkeypatch.setattr(orm, "_django_compile", django_compile)
            ours = make(value)
            ours_sql, ours_params = ours.query.sql_with_params()
            monkeypatch.setattr(orm, "_django_compile", orm_django_compile)
            ours_rows = list(ours)
            orm.uninstall()
            try:
                theirs = make(value)
                theirs_sql, theirs_params = theirs.query.sql_with_params()
                theirs_rows = list(theirs)
            finally:
                orm.install()
            assert (ours_sql, tuple(ours_params)) == (theirs_sql, tuple(theirs_params))
            assert [type(p) for p in ours_params] == [type(p) for p in theirs_params]
            assert ours_rows == theirs_rows
        # Django compiles the first value; a value written in the text, every one.
        by_value = all(type(value) is bool for value in values)
        assert compiled == (values if by_value else values[:1])


def test_the_kept_condition_texts_are_bounded(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        orm._CONDITION_SQL.clear()
        str(Visit.objects.filter(purpose="a").query)
        purpose = Visit._meta.get_field("purpose").get_col("crm_visit")
        assert orm._CONDITION_SQL[(Exact, purpose, "default")] == '"crm_visit"."purpose" = %s'
        orm._CONDITION_SQL.update(
            {(object(), index, "default"): "x" for index in range(orm._CONDITION_SQL_LIMIT - 1)}
        )
        str(Visit.objects.filter(outcome="b").query)  # the store was full: emptied first
        outcome = Visit._meta.get_field("outcome").get_col("crm_visit")
        assert list(orm._CONDITION_SQL) == [(Exact, outcome, "default")]


def test_a_kept_select_lists_converters_are_made_once_and_convert_as_djangos(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm.models import Notification

    made: list[int] = []

    def django_get_converters(compiler: SQLCompiler, expressions: list[Any]) -> Any:
        made.append(len(expressions))
        return orm_django_get_converters(compiler, expressions)

    orm_django_get_converters = orm._django_get_converters
    monkeypatch.setattr(orm, "_django_get_converters", django_get_converters)
    monkeypatch.setattr(orm, "_OWN_COLUMNS", {})
    with tenant_scope(tree_a.tenant):
        for member in tree_a.members.values():
            Notification.objects.create(
                tenant=tree_a.tenant, recipient=member, kind="digest", payload={"n": member.pk}
            )
        made.clear()  # (the inserts' returned ids)
        pages = [
            list(Notification.objects.filter(recipient=member).order_by("id"))
            for member in tree_a.members.values()
        ]
        assert made == [len(Notification._meta.concrete_fields)]  # the first page's only
        assert [page[0].payload for page in pages] == [
            {"n": member.pk} for member in tree_a.members.values()
        ]  # a JSON column's converter applied
        orm.uninstall()
        try:
            theirs = [
                list(Notification.objects.filter(recipient=member).order_by("id"))
                for member in tree_a.members.values()
            ]
        finally:
            orm.install()
        columns = [field.attname for field in Notification._meta.concrete_fields]

        def values(rows: list[Any]) -> list[list[Any]]:
            return [[getattr(row, name) for name in columns] for row in rows]

        assert [values(page) for page in pages] == [values(page) for page in theirs]
        before = len(made)
        list(Notification.objects.values("payload"))  # another select list: Django's
        list(Notification.objects.values("payload"))
        assert len(made) == before + 2


FILTERED: dict[str, Callable[[], tuple[QuerySet[Any], dict[str, Any]]]] = {
    "a moment from": lambda: (
        Visit.objects.order_by("-check_in_at"),
        {"check_in_at__gte": datetime(2026, 1, 1, tzinfo=UTC)},
    ),
    "a moment before": lambda: (Visit.objects.all(), {"planned_start__lt": datetime.now(UTC)}),
    "text": lambda: (Visit.objects.all(), {"purpose": "Demo"}),
    "text, exact": lambda: (Visit.objects.all(), {"purpose__exact": "Demo"}),
    "text contains": lambda: (Visit.objects.all(), {"purpose__icontains": "em"}),
    "a boolean": lambda: (Visit.objects.all(), {"verified": False}),
    "null": lambda: (Visit.objects.all(), {"check_in_at__isnull": True}),
    "not null": lambda: (Visit.objects.all(), {"check_out_at__isnull": False}),
    "a decimal": lambda: (Opportunity.objects.all(), {"amount__gte": Decimal("10.00")}),
    "a day": lambda: (Opportunity.objects.all(), {"closed_date__lte": date(2027, 1, 1)}),
    "a key": lambda: (Opportunity.objects.all(), {"id__gt": 0}),
    "the key by its alias": lambda: (Opportunity.objects.all(), {"pk__gt": 0}),
    "with a related row selected": lambda: (
        Opportunity.objects.select_related("stage").filter(stage__kind="won"),
        {"name__startswith": "Deal"},
    ),
    "a related column": lambda: (Visit.objects.all(), {"customer__name": "x"}),
    "a related column's lookup": lambda: (Opportunity.objects.all(), {"stage__kind": "won"}),
    "a related text contains": lambda: (
        Opportunity.objects.all(),
        {"stage__name__icontains": "w"},
    ),
    "a related column, its row selected": lambda: (
        Opportunity.objects.select_related("stage").order_by("-updated_at"),
        {"stage__kind": "won"},
    ),
    "a related column after other joins": lambda: (
        Opportunity.objects.filter(owner__org_unit__path__startswith="/"),
        {"stage__kind__lte": "won"},
    ),
    # Django's way:
    "a relation": lambda: (Visit.objects.all(), {"rep": 1}),
    "a relation's column": lambda: (Visit.objects.all(), {"rep_id": 1}),
    "a related column of a key that may be null": lambda: (
        Opportunity.objects.all(),
        {"product_line__name": "x"},
    ),
    "the related key's target": lambda: (Opportunity.objects.all(), {"stage__id": 1}),
    "the related key's target by its alias": lambda: (
        Opportunity.objects.all(),
        {"stage__pk__gt": 0},
    ),
    "a related null test": lambda: (Opportunity.objects.all(), {"stage__name__isnull": False}),
    "a related column joined already": lambda: (
        Opportunity.objects.filter(stage__order__gte=0),
        {"stage__kind": "won"},
    ),
    "a related column joined already, in an alternative": lambda: (
        Opportunity.objects.filter(Q(stage__kind="won") | Q(name="x")),
        {"stage__kind": "won"},
    ),
    "a related relation": lambda: (Opportunity.objects.all(), {"stage__pipeline": 1}),
    "two relations away": lambda: (Opportunity.objects.all(), {"stage__pipeline__name": "x"}),
    "a related column's transform": lambda: (
        Visit.objects.all(),
        {"customer__created_at__date": date(2026, 1, 1)},
    ),
    "a reverse relation's column": lambda: (Customer.objects.all(), {"visits__purpose": "x"}),
    "none": lambda: (Visit.objects.all(), {"check_in_at": None}),
    "a list": lambda: (Visit.objects.all(), {"pk__in": [1, 2]}),
    "a transform": lambda: (Visit.objects.all(), {"check_in_at__date": date(2026, 1, 1)}),
    "an expression": lambda: (Visit.objects.all(), {"check_in_at__gte": F("planned_start")}),
    "a union": lambda: (Visit.objects.union(Visit.objects.all()), {"purpose": "x"}),
}


#: The conditions added without Django's filter (the others take it).
ADDED_DIRECTLY = {
    "a moment from",
    "a moment before",
    "text",
    "text, exact",
    "text contains",
    "a boolean",
    "null",
    "not null",
    "a decimal",
    "a day",
    "a key",
    "with a related row selected",
    "a related column",
    "a related column's lookup",
    "a related text contains",
    "a related column, its row selected",
    "a related column after other joins",
}


@pytest.mark.parametrize("name", FILTERED)
def test_a_filter_on_a_column_adds_what_djangos_filter_adds(
    name: str, tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.db.models.sql.query import Query

    filtered: list[Any] = []
    django_add_q = Query.add_q

    def add_q(query: Query, q_object: Q) -> None:
        filtered.append(q_object)
        django_add_q(query, q_object)

    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
        records.visit(tree_a)
        rows, condition = FILTERED[name]()
        try:
            theirs: Any = rows.filter(**condition)
        except Exception as error:  # noqa: BLE001 - both must refuse alike
            with pytest.raises(type(error)):
                orm.filter_column(rows, **condition)
            return
        monkeypatch.setattr(Query, "add_q", add_q)
        ours = orm.filter_column(rows, **condition)
        monkeypatch.setattr(Query, "add_q", django_add_q)
        assert (not filtered) == (name in ADDED_DIRECTLY), filtered
        assert ours is not rows and ours.query is not rows.query
        assert dict(ours.query.alias_refcount) == dict(theirs.query.alias_refcount)
        assert str(ours.query) == str(theirs.query)
        assert list(ours) == list(theirs)
        assert str(rows.query) == str(FILTERED[name]()[0].query)  # the queryset unchanged


def test_a_sliced_queryset_refuses_a_filter_as_djangos_does(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant), pytest.raises(TypeError):
        orm.filter_column(Visit.objects.all()[:5], purpose="x")


def test_the_kept_orders_are_bounded_as_a_request_chooses_them(
    tree_a: TenantTree, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ordering=name,name,…`` makes a new key for every length: the store forgets all
    it kept when full, and what it compiles again is the same."""
    from tenancy.memo import remember

    kept: dict[Any, Any] = {}
    monkeypatch.setattr(orm, "_OWN_ORDERS", kept)
    monkeypatch.setattr(orm, "_OWN_ORDERS_LIMIT", 3)
    with tenant_scope(tree_a.tenant):
        sqls = [str(Visit.objects.order_by(*["purpose"] * n).query) for n in range(1, 8)]
        assert 1 <= len(kept) <= 3
        assert [str(Visit.objects.order_by(*["purpose"] * n).query) for n in range(1, 8)] == sqls
    store: dict[str, int] = {"a": 1, "b": 2}
    assert remember(store, "c", 3, 2) == 3 and store == {"c": 3}
    assert remember(store, "d", 4, 2) == 4 and store == {"c": 3, "d": 4}


def test_a_joins_column_types_are_compared_once_per_pair_of_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.db import connection
    from django.db.models.functions import Cast

    kept: dict[Any, bool] = {}
    monkeypatch.setattr(orm, "_JOIN_CASTS", kept)
    stage: Any = Opportunity._meta.get_field("stage")
    target = stage.target_field
    asked: list[Any] = []
    original = type(target).db_type

    def counting(field: Any, connection: Any) -> Any:
        asked.append(field)
        return original(field, connection)

    monkeypatch.setattr(type(target), "db_type", counting)
    for _ in range(3):
        lhs, rhs = connection.ops.prepare_join_on_clause("crm_opportunity", stage, "T3", target)
        assert (lhs.alias, lhs.target, rhs.alias, rhs.target) == (
            "crm_opportunity",
            stage,
            "T3",
            target,
        )
        assert not isinstance(rhs, Cast)
    assert len(asked) == 1 and kept == {(stage, target, connection.alias): False}
    # Columns of different types: the right one is cast to the left's, as Django does.
    name: Any = Customer._meta.get_field("name")
    lhs, rhs = connection.ops.prepare_join_on_clause("a", name, "b", target)
    assert isinstance(rhs, Cast) and rhs.output_field is name
    orm.uninstall()
    try:
        theirs = connection.ops.prepare_join_on_clause("a", name, "b", target)[1]
    finally:
        orm.install()
    assert isinstance(theirs, Cast) and theirs.output_field is name
