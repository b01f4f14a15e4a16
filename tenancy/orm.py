"""Eight costs of Django's ORM a list pays on every query, removed when the app starts
(the seventh where a list asks for it).

**A foreign key's column.** A column of the query's own table compiles through
``Field.get_col``, which returns the field's one cached ``Col`` for every field but a
foreign key: ``ForeignKey.get_col`` makes a new ``Col`` (its output field is the
target's) on every query. The compiler hashes each selected column to match the
``ORDER BY`` against the select list, and a new ``Col`` computes its hash from its
constructor's signature (``inspect``). Keeping one ``Col`` per foreign key for its own
table, as Django keeps one per other field, compiles the same SQL
(``tests/tenancy/test_orm.py`` compares both) and took 0.09–0.1 ms off a rep's page of
visits and 0.13–0.18 ms off the page of deals, measured in alternating requests.

**A model's own columns.** A query of whole rows of one model (no ``only``/``defer``, no
``values``, annotations or ``extra``; with ``select_related``, of foreign keys one level
away only) selects the models' concrete columns of their own tables, which the compiler
makes and compiles one by one on every query (each column's SQL, its select format, the
list of positions the rows are read by): a third of compiling a rep's page of visits.
That list depends only on the model, the compiler, the connection, whether columns get
aliases and the keys followed, as long as each table's alias is the table's name (the
query's first table's always is unless the query was relabelled as a subquery, which
takes Django's way; a related table's, unless the query joins it twice): it is built by
Django once per such key and reused. A related row's join is still set up (or reused)
as Django sets it up, and the kept list is used only when that join has the alias it
had. The tests compile a range of queries both ways (65–80 µs a page of visits, 0.15 ms
one of deals with their stages, measured in alternating requests).

**An order by the model's own columns.** ``order_by("-check_in_at", "id")`` resolves
each name through the join machinery, matches it against every selected column and
compiles it, on every query. When every term names a concrete column of the model that
is not a relation (or ``pk``), the query's first table is the model's own under its own
name, nothing is combined, annotated or ``extra``, and no selected column is aliased
with one of the names, the result depends only on the terms, their default direction,
the model, the compiler and the connection: Django's is kept per such key.

**A condition the rows always have.** The tenant's rows (``ScopedManager``) and a rep's
(``tenancy.selectors.visible_rows``) are filtered by querysets built once and cloned,
and a clone shares its conditions (``tenant_id = 1``, ``deleted_at IS NULL``,
``owner_id = 42``) with every other: Django compiles each again for every query. A
comparison or null test of a column of a model's own table (its alias is the table's
name, always quoted) with a plain value (a number, text, moment, …) compiles to the same
SQL and parameters on a connection whenever it is compiled, so the condition keeps what
it compiled to (37 µs a rep's page of visits, 89 µs a page of activities that counts).
A new condition of that kind (a request's filter, ``check_in_at >= …``) compiles to the
text Django gave the first such condition of its lookup, column and connection, the
value being a parameter, with the parameters Django's lookup prepares for the value
(``get_db_prep_lookup``): 76,000 instructions of a rep's page of visits
(``bench/instructions.py``) where Django compiles it. A boolean or None, whose text
Django writes by the value (``"verified"``, ``NOT "verified"``, ``IS NULL``), is
compiled by Django each time.

**Asking each condition for aggregates and windows.** Before compiling, Django splits
the query's conditions into WHERE, HAVING and QUALIFY by asking the tree whether it holds
an aggregate or a window function: each condition's ``contains_aggregate`` and
``contains_over_clause``, cached properties computed anew for the conditions of every
clone (48,000 instructions of a rep's page of visits, ``bench/instructions.py``). A
comparison or null test of a column with a plain value (the kind of condition above)
holds neither, so a tree of such conditions alone is the WHERE clause as it is, as Django
finds; any other tree is split by Django.

**A filter on a column.** ``filter(check_in_at__gte=…)`` resolves the name through the
join machinery and promotes joins, for a condition on the model's own table.
``filter_column`` adds the condition Django's ``filter`` adds (the lookup of the column
of the query's first table, with the value) when the name is a concrete column of the
model that is not a relation, the lookup one of the field's own, the value a plain one
other than None, and the query neither sliced nor combined; anything else is Django's
``filter`` (a list filter's parameter: 50 µs a rep's page of visits). A column one
foreign key away (``stage__kind``) takes the same way when the key is never null (Django
joins its table with an inner join, as this does through Django's ``Query.join``), the
column is not the key's target (Django reads that from the key itself) nor a null test
(which may make the join an outer one), and the query has no such join yet (Django
would reuse it and decide its type): 70 µs of filtering and compiling a rep's deals by
their stage's kind, in a loop.

**A join's column types.** PostgreSQL's ``prepare_join_on_clause`` compares the
database types of a join's two columns, to cast one when they differ, on every join of
every query; a foreign key's type is its target's ``rel_db_type``, which Django's
``BigAutoField`` answers by making a new ``BigIntegerField``. The answer depends only on
the two fields and the connection: it is decided once per pair of fields and connection
(``_join_needs_cast``), and the clause is Django's.

**A page that is only shown.** A page of a list whose serializer shows nothing but
columns is read into model instances only to be read back column by column.
``reading_columns`` (for a block: a list's pagination) reads such a page's rows (whole
rows of the model alone) as the compiler returns them, the same SQL and the same
converted values, each as a tuple of the model's concrete columns in the model's order
(``ColumnRow``: each column also readable by its attribute name, and ``pk``), without
making an instance (66 µs a rep's page of 19 visits, 0.18 ms a page of 50 customers, in
alternating requests). Rows of foreign keys one level away read with it
(``select_related``) follow its columns and are read as their models' rows (a deal's
stage); a property of the model that reads only columns and such related rows is offered
when the model names it in ``row_properties``, with the relations it reads, which the
page must select (a deal's probability and forecast category, from its stage: 0.40 ms a
rep's page of 39 deals, 0.54 ms a sync page of 50; an activity's ``is_follow_up``: 0.26
ms a page of 50, in alternating requests). A relation not read with the row raises
``RelationNotRead`` instead of being fetched. Nothing is written through such a row, and
no signal is sent for it (``Model.__init__``'s ``pre_init``/``post_init``): a model with
a receiver of either, or of a related row's model, is read into instances as before.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from django.db.models import ForeignKey, Model, QuerySet
from django.db.models import lookups as django_lookups
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Col
from django.db.models.fields import related_lookups
from django.db.models.functions import Cast
from django.db.models.query import BaseIterable, ModelIterable
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import INNER
from django.db.models.sql.where import AND, WhereNode

from tenancy.memo import remember
from tenancy.models import init_is_received

_django_get_col = ForeignKey.get_col
_django_get_select = SQLCompiler.get_select
_django_get_order_by = SQLCompiler.get_order_by
_django_compile = SQLCompiler.compile
_django_get_converters = SQLCompiler.get_converters
_django_split_having_qualify = WhereNode.split_having_qualify


def _get_col(self: ForeignKey[Any, Any], alias: str, output_field: Any = None) -> Any:
    """``ForeignKey.get_col``, the column of the field's own table made once."""
    if output_field is None and alias == self.model._meta.db_table:
        col = self.__dict__.get("_own_table_col")
        if col is None:
            col = self.__dict__["_own_table_col"] = _django_get_col(self, alias)
        return col
    return _django_get_col(self, alias, output_field)


class _KeptSelect:
    """Django's select list of whole rows: the list, the positions of the model's fields,
    for each related row its klass info and table alias, and the converters Django made
    for the list's columns (by their number: the rows are read by the first ones)."""

    def __init__(self, select: list[Any], fields: list[int], related: list[Any]) -> None:
        self.select, self.fields, self.related = select, fields, related
        self.columns = [expression for expression, _sql, _alias in select]
        self.converters: dict[int, Any] = {}


#: Django's select lists of whole rows, by compiler class, model, connection, whether
#: columns are aliased and the related rows selected with them.
_OWN_COLUMNS: dict[tuple[Any, ...], _KeptSelect] = {}


def _own_table(opts: Any) -> bool:
    """A model read from its own table alone (no parent model's table, not a proxy)."""
    return not opts.parents and not opts.proxy


def _first_table_is_own(query: Any) -> bool:
    """The query reads its model from the model's own table alone, as its first table and
    under the table's name (the name it gets when the query has no table yet)."""
    opts = query.get_meta()
    return (
        opts is not None
        and _own_table(opts)
        and (query.base_table if query.alias_map else opts.db_table) == opts.db_table
    )


def _own_field(opts: Any, name: str) -> Any:
    """The field called ``name`` (``pk`` for the primary key) when it is a concrete column
    of the model's own table (a relation's too); else None."""
    if name == "pk":
        name = opts.pk.name
    try:
        field: Any = opts.get_field(name)
    except FieldDoesNotExist:
        return None
    own = field.name == name and getattr(field, "concrete", False) and field.model is opts.model
    return field if own else None


def _own_column(opts: Any, name: str) -> Any:
    """The field called ``name`` (``pk`` for the primary key) when it is a concrete column
    of the model's own table that is not a relation; else None."""
    field = _own_field(opts, name)
    return field if field is not None and not field.is_relation else None


def _whole_rows(query: Any) -> tuple[Any, ...] | None:
    """When the query selects whole rows of its model from the model's own table and
    nothing else but, through ``select_related``, whole rows of models its own foreign
    keys lead to (one level, each from its own table): those keys, in the model's order
    (the order Django selects them in); else None."""
    if not (
        _first_table_is_own(query)
        and query.default_cols
        and query.selected is None
        and not query.deferred_loading[0]
        and not query.extra_select
        and not query.annotation_select
        and not query._filtered_relations
    ):
        return None
    opts = query.get_meta()
    requested = query.select_related
    if not requested:
        return ()
    if not isinstance(requested, dict) or any(requested.values()):
        return None  # every relation (select_related()), or deeper than one level
    keys = tuple(f for f in opts.fields if f.name in requested)
    if len(keys) != len(requested) or not all(
        (f.many_to_one or f.one_to_one) and _own_table(f.remote_field.model._meta) for f in keys
    ):
        return None
    return keys


def _get_select(self: SQLCompiler, with_col_aliases: bool = False) -> Any:
    """``SQLCompiler.get_select``, for a query of whole rows (with related rows one key
    away) the list Django made for the first such query (see the module); any other
    query is Django's."""
    query = self.query
    keys = _whole_rows(query)
    if keys is None:
        return _django_get_select(self, with_col_aliases)
    key = (type(self), query.model, self.connection.alias, with_col_aliases, keys)
    known = _OWN_COLUMNS.get(key)
    if known is None:
        select, klass_info, annotations = _django_get_select(self, with_col_aliases)
        assert klass_info is not None  # a model's columns are read into its rows
        related = [
            (info, select[info["select_fields"][0]][0].alias)
            for info in klass_info.get("related_klass_infos", [])
        ]
        known = _OWN_COLUMNS[key] = _KeptSelect(
            list(select), list(klass_info["select_fields"]), related
        )
        self._kept_select = known  # type: ignore[attr-defined]
        return select, klass_info, annotations
    select, fields, related = known.select, known.fields, known.related
    root = query.get_initial_alias()  # as Django's default columns do (its reference)
    rows_info: dict[str, Any] = {"model": query.model, "select_fields": list(fields)}
    if keys:
        query.get_initial_alias()  # as Django's related selections do
        opts = query.get_meta()
        infos = []
        for field, (info, alias) in zip(keys, related, strict=True):
            # The join Django's related selection sets up (or reuses), set up the same way.
            joined = query.setup_joins([field.name], opts, root)[3][-1]
            if joined != alias:  # another alias than the kept list's: Django's way
                return _django_get_select(self, with_col_aliases)
            infos.append(
                {
                    **info,
                    "select_fields": list(info["select_fields"]),
                    "related_klass_infos": list(info.get("related_klass_infos", ())),
                }
            )
        rows_info["related_klass_infos"] = infos
    self._kept_select = known  # type: ignore[attr-defined]
    return list(select), rows_info, {}


def _get_converters(self: SQLCompiler, expressions: list[Any]) -> Any:
    """``SQLCompiler.get_converters``; for the columns of a kept select list (the same
    objects), the converters Django made for them the first time: a converter depends
    on the column's field and the connection's features, both the same each time."""
    kept: _KeptSelect | None = self.__dict__.get("_kept_select")
    if (
        kept is not None
        and len(expressions) <= len(kept.columns)
        and all(ours is theirs for ours, theirs in zip(expressions, kept.columns, strict=False))
    ):
        converters = kept.converters.get(len(expressions))
        if converters is None:
            converters = kept.converters[len(expressions)] = _django_get_converters(
                self, expressions
            )
        return converters
    return _django_get_converters(self, expressions)


#: Django's ORDER BY of a model's own columns, by compiler class, model, connection,
#: the terms and their default direction; the terms are a request's (``ordering``), so
#: the store is bounded.
_OWN_ORDERS: dict[tuple[Any, ...], list[Any]] = {}
_OWN_ORDERS_LIMIT = 4096


def _own_column_terms(compiler: SQLCompiler) -> tuple[str, ...] | None:
    """The query's ``order_by`` when it names only columns of the model's own table (see
    the module); None otherwise."""
    query = compiler.query
    terms = query.order_by
    if (
        not terms
        or not query.alias_map
        or not _first_table_is_own(query)
        or query.extra_order_by
        or query.extra
        or query.combinator
        or query.annotations
    ):
        return None
    opts = query.get_meta()
    aliases = {alias for _expression, _sql, alias in compiler.select if alias}
    for term in terms:
        if not isinstance(term, str) or not term:
            return None
        name = term[1:] if term[0] == "-" else term
        if name in aliases or _own_column(opts, name) is None:
            return None
    return tuple(str(term) for term in terms)


def _get_order_by(self: SQLCompiler) -> Any:
    """``SQLCompiler.get_order_by``, for an order by the model's own columns the one
    Django made for the first such query (see the module); any other is Django's."""
    terms = _own_column_terms(self)
    if terms is None:
        return _django_get_order_by(self)
    query = self.query
    key = (type(self), query.model, self.connection.alias, terms, query.standard_ordering)
    known = _OWN_ORDERS.get(key)
    if known is None:
        known = remember(_OWN_ORDERS, key, list(_django_get_order_by(self)), _OWN_ORDERS_LIMIT)
        return list(known)
    for _term in terms:
        query.get_initial_alias()  # as Django's resolution of each name does
    return list(known)


#: The conditions whose SQL depends only on their column, their value and the connection.
_KEPT_LOOKUPS = frozenset(
    {
        django_lookups.Exact,
        django_lookups.IsNull,
        django_lookups.GreaterThan,
        django_lookups.GreaterThanOrEqual,
        django_lookups.LessThan,
        django_lookups.LessThanOrEqual,
        related_lookups.RelatedExact,
        related_lookups.RelatedIsNull,
        related_lookups.RelatedGreaterThan,
        related_lookups.RelatedGreaterThanOrEqual,
        related_lookups.RelatedLessThan,
        related_lookups.RelatedLessThanOrEqual,
    }
)
_PLAIN_VALUES = (
    int,
    str,
    bool,
    type(None),
    datetime.datetime,
    datetime.date,
    decimal.Decimal,
    uuid.UUID,
)


#: The text of a condition of a model's own column with a plain value (no boolean or
#: None), by its lookup class, its column and the connection's alias (see the module).
_CONDITION_SQL: dict[tuple[Any, Any, str], str] = {}
_CONDITION_SQL_LIMIT = 4096


def _condition(compiler: SQLCompiler, node: Any) -> tuple[str, tuple[Any, ...]]:
    """What Django compiles the condition ``node`` (of a model's own column and a plain
    value) to: the text kept for its lookup, column and connection, with its value's
    parameters; the first time, and for a boolean or None, Django's own compilation."""
    rhs, connection = node.rhs, compiler.connection
    if rhs is None or type(rhs) is bool:
        sql, params = _django_compile(compiler, node)
        return sql, tuple(params)
    key = (type(node), node.lhs, connection.alias)
    kept = _CONDITION_SQL.get(key)
    if kept is not None:
        return kept, tuple(node.get_db_prep_lookup(rhs, connection)[1])
    sql, params = _django_compile(compiler, node)
    params = tuple(params)
    # Kept when the value is all of its parameters and none of its text.
    value_sql, value_params = node.get_db_prep_lookup(rhs, connection)
    if value_sql == "%s" and tuple(value_params) == params:
        remember(_CONDITION_SQL, key, sql, _CONDITION_SQL_LIMIT)
    return sql, params


def _compile(self: SQLCompiler, node: Any) -> Any:
    """``SQLCompiler.compile``; a condition of a model's own column and a plain value
    keeps what it compiled to on a connection, and compiles to the text of the conditions
    of its lookup and column before it (see the module)."""
    if type(node) in _KEPT_LOOKUPS and not self.query.extra_select:
        lhs, rhs = node.lhs, node.rhs
        kept = node.__dict__.get("_kept_sql")
        # Kept for this column and value objects: a copy of the condition (relabelled for
        # a subquery, resolved again) carries the attribute with other ones.
        if (
            kept is not None
            and kept[0] is lhs
            and kept[1] is rhs
            and kept[2] == self.connection.alias
        ):
            return kept[3], kept[4]
        if (
            type(lhs) is Col
            and lhs.alias == lhs.target.model._meta.db_table
            and isinstance(rhs, _PLAIN_VALUES)
        ):
            sql, params = _condition(self, node)
            node.__dict__["_kept_sql"] = (lhs, rhs, self.connection.alias, sql, params)
            return sql, params
    return _django_compile(self, node)


def _plain_conditions(node: WhereNode) -> bool:
    """Every condition of the tree ``node`` compares a column with a plain value
    (``_KEPT_LOOKUPS``, a ``Col`` and one of ``_PLAIN_VALUES``): no aggregate, no window."""
    pending = [node]
    while pending:
        children: list[Any] = pending.pop().children
        for child in children:
            if type(child) is WhereNode:
                pending.append(child)
            elif not (
                type(child) in _KEPT_LOOKUPS
                and type(child.lhs) is Col
                and isinstance(child.rhs, _PLAIN_VALUES)
            ):
                return False
    return True


def _split_having_qualify(
    self: WhereNode, negated: bool = False, must_group_by: bool = False
) -> tuple[WhereNode | None, WhereNode | None, WhereNode | None]:
    """``WhereNode.split_having_qualify``: a tree of plain conditions alone
    (``_plain_conditions``) is the WHERE clause as it is, what Django returns for a tree
    with neither an aggregate nor a window; any other tree is Django's to split."""
    if type(self) is WhereNode and _plain_conditions(self):
        return self, None, None
    split: Any = _django_split_having_qualify(self, negated, must_group_by)
    return split


def _related_column(opts: Any, name: str, column: str) -> tuple[Any, Any] | None:
    """For ``<relation>__<column>``: the foreign key ``name`` of the model's own table
    that is never null and leads to a model read from its own table, and that model's
    concrete column ``column``, not a relation and not the key's target (Django reads
    that one from the foreign key's own column); else None."""
    relation = _own_field(opts, name)
    if not (
        relation is not None
        and relation.many_to_one
        and not relation.null
        and len(relation.path_infos) == 1
        and _own_table(relation.related_model._meta)
    ):
        return None
    target = _own_column(relation.related_model._meta, column)
    if target is None or target in relation.foreign_related_fields:
        return None
    return relation, target


def filter_column(queryset: QuerySet[Any], **condition: Any) -> QuerySet[Any]:
    """``queryset.filter(**condition)`` for one ``<column>__<lookup>`` or
    ``<relation>__<column>__<lookup>`` condition (see the module)."""
    ((key, value),) = condition.items()
    name, _sep, lookup_name = key.partition(LOOKUP_SEP)
    query = queryset.query
    opts = queryset.model._meta
    # ``pk`` takes Django's way: the name a filter gives is the column's own.
    field: Any = _own_column(opts, name) if name != "pk" else None
    related = None
    if field is None and lookup_name:
        column, _sep, lookup_name = lookup_name.partition(LOOKUP_SEP)
        related = _related_column(opts, name, column)
        # A null test of a related column may make Django's join an outer one.
        field = related[1] if related is not None and lookup_name != "isnull" else None
    lookup = field.get_lookup(lookup_name or "exact") if field is not None else None
    if (
        lookup is None
        or value is None
        or not isinstance(value, _PLAIN_VALUES)
        or query.is_sliced
        or query.combinator
        or queryset._defer_next_filter  # type: ignore[attr-defined]
        or not query.alias_map
        or not _first_table_is_own(query)
    ):
        return queryset.filter(**condition)
    join = None
    if related is not None:
        (path,) = related[0].path_infos
        join = query.join_class(
            path.to_opts.db_table, query.base_table, None, INNER, path.join_field, False
        )
        if any(join == existing for existing in query.alias_map.values()):
            return queryset.filter(**condition)  # joined already: Django decides its type
    rows = queryset._chain()  # type: ignore[attr-defined]
    alias = rows.query.get_initial_alias()  # as Django's filter does (its reference)
    if join is not None:  # an inner join, as Django's for a key that is never null
        alias = rows.query.join(join)
    rows.query.where.add(WhereNode([lookup(field.get_col(alias), value)], connector=AND), AND)
    return rows


class ColumnRow(tuple[Any, ...]):
    """A row of a model read as its concrete columns, in the model's order (see the
    module); each column is also an attribute, by its attribute name, and so is ``pk``.
    ``column_row_class`` makes one subclass per model (and one of that per set of related
    rows read with it)."""

    __slots__ = ()
    model: type[Model]
    #: A column's position in the row, by its attribute name.
    positions: dict[str, int]
    if TYPE_CHECKING:  # each model's row class reads its primary key, and every column

        @property
        def pk(self) -> Any: ...

        def __getattr__(self, attname: str) -> Any: ...


class RelationNotRead(TypeError):
    """A ``ColumnRow``'s related row that was not read with it (not ``select_related``):
    a row of columns cannot fetch it, as an instance would, so it says so (a ``TypeError``,
    which no renderer takes for a missing attribute)."""


_ROW_CLASSES: dict[tuple[type[Model], tuple[tuple[str, int], ...]], type[ColumnRow]] = {}


def _forward_relations(model: type[Model]) -> list[Any]:
    return [f for f in model._meta.concrete_fields if f.many_to_one or f.one_to_one]


def _not_read(name: str) -> property:
    def read(row: ColumnRow) -> Any:
        raise RelationNotRead(
            f"{type(row).__name__}.{name}: the related row was not read with the row "
            "(select_related) and a row of columns does not fetch it."
        )

    return property(read)


def _related_row(start: int, stop: int, pk: int, row_class: type[ColumnRow]) -> property:
    def read(row: ColumnRow) -> Any:  # Django's RelatedPopulator: no key, no row
        return None if row[pk] is None else row_class(row[start:stop])

    return property(read)


def column_row_class(
    model: type[Model], related: tuple[tuple[str, int], ...] = ()
) -> type[ColumnRow]:
    """The ``ColumnRow`` subclass of ``model``, made once.

    Its attributes: every column, ``pk``, the model's ``row_properties`` (properties that
    read only columns and the rows of the relations they name), and each foreign key's
    related row, which raises ``RelationNotRead``. With ``related`` (each a foreign key's
    name and the position of its row's first column), the subclass of that class whose
    rows hold, after the model's columns, the columns of those keys' rows, read as their
    models' rows (None for a missing one), as ``select_related`` reads them."""
    row_class = _ROW_CLASSES.get((model, related))
    if row_class is not None:
        return row_class
    namespace: dict[str, Any] = {"__slots__": (), "__module__": __name__, "model": model}
    if related:
        base = column_row_class(model)
        for name, start in related:
            field: Any = model._meta.get_field(name)
            target = column_row_class(field.related_model)
            stop = start + len(target.positions)
            pk = start + target.positions[field.related_model._meta.pk.attname]
            namespace[name] = _related_row(start, stop, pk, target)
    else:
        base = ColumnRow
        fields = model._meta.concrete_fields
        positions = {field.attname: index for index, field in enumerate(fields)}
        namespace["positions"] = positions
        for attname, index in positions.items():
            namespace[attname] = property(itemgetter(index))
        namespace["pk"] = property(itemgetter(positions[model._meta.pk.attname]))
        for relation in _forward_relations(model):
            namespace[relation.name] = _not_read(relation.name)
        for name in row_properties(model):
            shown = getattr(model, name, None)
            if not isinstance(shown, property):
                raise TypeError(f"{model.__name__}.row_properties: {name} is not a property.")
            namespace[name] = shown
    row_class = _ROW_CLASSES[(model, related)] = type(f"{model.__name__}Row", (base,), namespace)
    return row_class


def row_properties(model: type[Model]) -> dict[str, tuple[str, ...]]:
    """The model's properties a ``ColumnRow`` offers, each with the relations (foreign
    keys' names) whose rows it reads: ``row_properties`` on the model, if any."""
    return dict(getattr(model, "row_properties", {}))


class ColumnRows(BaseIterable):
    """A queryset's rows as ``ColumnRow`` rows: the compiler's rows (its SQL, its
    converters), each wrapped in the model's row class, holding the rows of the foreign
    keys it selects (``select_related``) after its own columns."""

    def __iter__(self) -> Iterator[ColumnRow]:
        queryset = self.queryset
        compiler = queryset.query.get_compiler(queryset.db)
        rows = compiler.results_iter(chunked_fetch=self.chunked_fetch, chunk_size=self.chunk_size)
        info = compiler.klass_info or {}
        related = tuple(
            (related_info["field"].name, related_info["select_fields"][0])
            for related_info in info.get("related_klass_infos", ())
        )
        return map(column_row_class(queryset.model, related), rows)


def reads_columns(queryset: QuerySet[Any], reads: Iterable[str] = ()) -> bool:
    """Whether ``queryset``'s rows can be read as ``ColumnRow`` rows: it reads whole rows of
    its model, alone or with the rows of its own foreign keys (``select_related``, one
    level) including those named in ``reads``, from the models' own tables (no
    ``only``/``defer``, ``values``, annotations, ``extra``, prefetching or rows of a
    related manager) and no receiver waits for the model's instances to be made (see the
    module)."""
    query = queryset.query
    model = queryset.model
    if (
        queryset._iterable_class is not ModelIterable
        or queryset._fields is not None  # type: ignore[attr-defined]
        or queryset._prefetch_related_lookups  # type: ignore[attr-defined]
        or queryset._known_related_objects  # type: ignore[attr-defined]
        or query.combinator
        or init_is_received(model)
    ):
        return False
    keys = _whole_rows(query)
    if keys is None or not {*reads} <= {key.name for key in keys}:
        return False
    return not any(init_is_received(key.related_model) for key in keys)


@contextmanager
def reading_columns(queryset: QuerySet[Any], reads: Iterable[str] | None) -> Iterator[bool]:
    """Within the block, ``queryset`` itself and every queryset made from it read their
    rows as ``ColumnRow`` rows, when it can (``reads_columns``; never with ``reads`` None):
    yields whether it does. Its own way of reading is back after the block, so whoever
    else holds it reads it as before; a page read in the block is made from it (a slice,
    an order) without a copy of the queryset (a query's clone: 30,000 instructions of a
    rep's page of visits, ``bench/instructions.py``). The queryset must be the request's
    own, as a view's always is (DRF's rule: a queryset shared between requests would keep
    the first one's rows), since another thread reading it during the block would read
    columns too."""
    kind = queryset._iterable_class
    columns = reads is not None and reads_columns(queryset, reads)
    if columns:
        queryset._iterable_class = ColumnRows
    try:
        yield columns
    finally:
        queryset._iterable_class = kind


_django_prepare_join_on_clause = PostgresOperations.prepare_join_on_clause
#: Whether a join's right column is cast to the left's type, by the two fields and the
#: connection's alias (fields live as long as the process).
_JOIN_CASTS: dict[tuple[Any, Any, str], bool] = {}


def _join_needs_cast(ops: PostgresOperations, lhs_field: Any, rhs_field: Any) -> bool:
    key = (lhs_field, rhs_field, ops.connection.alias)
    cast = _JOIN_CASTS.get(key)
    if cast is None:
        connection = ops.connection
        cast = _JOIN_CASTS[key] = lhs_field.db_type(connection) != rhs_field.db_type(connection)
    return cast


def _prepare_join_on_clause(
    self: PostgresOperations, lhs_table: str, lhs_field: Any, rhs_table: str, rhs_field: Any
) -> tuple[Any, Any]:
    """PostgreSQL's ``prepare_join_on_clause``, comparing the columns' types once per pair
    of fields and connection (see the module)."""
    lhs_expr: Any = Col(lhs_table, lhs_field)
    rhs_expr: Any = Col(rhs_table, rhs_field)
    if _join_needs_cast(self, lhs_field, rhs_field):
        rhs_expr = Cast(rhs_expr, lhs_field)
    return lhs_expr, rhs_expr


def install() -> None:
    """Called once from ``TenancyConfig.ready``."""
    PostgresOperations.prepare_join_on_clause = _prepare_join_on_clause  # type: ignore[method-assign,assignment]
    ForeignKey.get_col = _get_col  # type: ignore[method-assign,assignment]
    SQLCompiler.get_select = _get_select  # type: ignore[method-assign]
    SQLCompiler.get_order_by = _get_order_by  # type: ignore[method-assign]
    SQLCompiler.compile = _compile  # type: ignore[method-assign]
    SQLCompiler.get_converters = _get_converters  # type: ignore[method-assign]
    WhereNode.split_having_qualify = _split_having_qualify  # type: ignore[method-assign]


def uninstall() -> None:
    """Django's own ``get_col``, ``get_select``, ``get_order_by``, ``compile``,
    ``get_converters``, ``split_having_qualify`` and ``prepare_join_on_clause`` back (for
    the tests that compare)."""
    ForeignKey.get_col = _django_get_col  # type: ignore[method-assign]
    SQLCompiler.get_select = _django_get_select  # type: ignore[method-assign]
    SQLCompiler.get_order_by = _django_get_order_by  # type: ignore[method-assign]
    SQLCompiler.compile = _django_compile  # type: ignore[method-assign]
    SQLCompiler.get_converters = _django_get_converters  # type: ignore[method-assign]
    WhereNode.split_having_qualify = _django_split_having_qualify  # type: ignore[method-assign]
    PostgresOperations.prepare_join_on_clause = _django_prepare_join_on_clause  # type: ignore[method-assign]
