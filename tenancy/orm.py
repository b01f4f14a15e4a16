"""Three costs of Django's ORM a list pays on every query, removed when the app starts.

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
``values``, annotations, ``extra`` or ``select_related``) selects the model's concrete
columns of its own table, which the compiler makes and compiles one by one on every
query (each column's SQL, its select format, the list of positions the rows are read
by): a third of compiling a rep's page of visits. That list depends only on the model,
the compiler, the connection and whether columns get aliases, as long as the table's
alias is the table's name (it always is for a query's first table unless the query was
relabelled as a subquery, which takes Django's way): it is built by Django once per
such key and reused. The tests compile a range of queries both ways (65–80 µs a page of
visits, measured in alternating requests).

**An order by the model's own columns.** ``order_by("-check_in_at", "id")`` resolves
each name through the join machinery, matches it against every selected column and
compiles it, on every query. When every term names a concrete column of the model that
is not a relation (or ``pk``), the query's first table is the model's own under its own
name, nothing is combined, annotated or ``extra``, and no selected column is aliased
with one of the names, the result depends only on the terms, their default direction,
the model, the compiler and the connection: Django's is kept per such key.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import ForeignKey
from django.db.models.sql.compiler import SQLCompiler

_django_get_col = ForeignKey.get_col
_django_get_select = SQLCompiler.get_select
_django_get_order_by = SQLCompiler.get_order_by


def _get_col(self: ForeignKey[Any, Any], alias: str, output_field: Any = None) -> Any:
    """``ForeignKey.get_col``, the column of the field's own table made once."""
    if output_field is None and alias == self.model._meta.db_table:
        col = self.__dict__.get("_own_table_col")
        if col is None:
            col = self.__dict__["_own_table_col"] = _django_get_col(self, alias)
        return col
    return _django_get_col(self, alias, output_field)


#: Django's select list of a model's own columns, by compiler class, model, connection
#: and whether columns are aliased: the list and the positions of the model's fields.
_OWN_COLUMNS: dict[tuple[Any, ...], tuple[list[Any], list[int]]] = {}


def _selects_own_columns_only(query: Any) -> bool:
    """The query selects whole rows of its model and nothing else, from the model's own
    table (no parent model's table to join, not a proxy)."""
    opts = query.get_meta()
    return (
        opts is not None
        and query.default_cols
        and query.selected is None
        and not query.select_related
        and not query.deferred_loading[0]
        and not query.extra_select
        and not query.annotation_select
        and not opts.parents
        and not opts.proxy
        and (query.base_table if query.alias_map else opts.db_table) == opts.db_table
    )


def _get_select(self: SQLCompiler, with_col_aliases: bool = False) -> Any:
    """``SQLCompiler.get_select``, for a query of whole rows of one model the list Django
    made for the first such query (see the module); any other query is Django's."""
    query = self.query
    if not _selects_own_columns_only(query):
        return _django_get_select(self, with_col_aliases)
    key = (type(self), query.model, self.connection.alias, with_col_aliases)
    known = _OWN_COLUMNS.get(key)
    if known is None:
        select, klass_info, annotations = _django_get_select(self, with_col_aliases)
        assert klass_info is not None  # a model's columns are read into its rows
        _OWN_COLUMNS[key] = (list(select), list(klass_info["select_fields"]))
        return select, klass_info, annotations
    query.get_initial_alias()  # as Django's default columns do (the alias's reference)
    select, fields = known
    return list(select), {"model": query.model, "select_fields": list(fields)}, {}


#: Django's ORDER BY of a model's own columns, by compiler class, model, connection,
#: the terms and their default direction.
_OWN_ORDERS: dict[tuple[Any, ...], list[Any]] = {}


def _own_column_terms(compiler: SQLCompiler) -> tuple[str, ...] | None:
    """The query's ``order_by`` when it names only columns of the model's own table (see
    the module); None otherwise."""
    query = compiler.query
    opts = query.get_meta()
    terms = query.order_by
    if (
        opts is None
        or not terms
        or query.extra_order_by
        or query.extra
        or query.combinator
        or query.annotations
        or not query.alias_map
        or query.base_table != opts.db_table
        or opts.parents
        or opts.proxy
    ):
        return None
    aliases = {alias for _expression, _sql, alias in compiler.select if alias}
    for term in terms:
        if not isinstance(term, str) or not term:
            return None
        name = term[1:] if term[0] == "-" else term
        if name in aliases:
            return None
        if name == "pk":
            field: Any = opts.pk
        else:
            try:
                field = opts.get_field(name)
            except FieldDoesNotExist:
                return None
            if field.name != name:  # a relation's attname, or a related query name
                return None
        if (
            field is None
            or field.is_relation
            or not field.concrete
            or field.model is not opts.model
        ):
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
        known = _OWN_ORDERS[key] = list(_django_get_order_by(self))
        return list(known)
    for _term in terms:
        query.get_initial_alias()  # as Django's resolution of each name does
    return list(known)


def install() -> None:
    """Called once from ``TenancyConfig.ready``."""
    ForeignKey.get_col = _get_col  # type: ignore[method-assign,assignment]
    SQLCompiler.get_select = _get_select  # type: ignore[method-assign]
    SQLCompiler.get_order_by = _get_order_by  # type: ignore[method-assign]


def uninstall() -> None:
    """Django's own ``get_col``, ``get_select`` and ``get_order_by`` back (for the tests
    that compare)."""
    ForeignKey.get_col = _django_get_col  # type: ignore[method-assign]
    SQLCompiler.get_select = _django_get_select  # type: ignore[method-assign]
    SQLCompiler.get_order_by = _django_get_order_by  # type: ignore[method-assign]
