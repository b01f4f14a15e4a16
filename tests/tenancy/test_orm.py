"""``tenancy.orm``: a foreign key's column of its own table is made once, and every query
compiles to the SQL Django's own ``ForeignKey.get_col`` gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Count, Exists, ForeignKey, OuterRef, Q, QuerySet

from crm.models import Opportunity, Visit
from tenancy import orm
from tenancy.models import Membership, OrgUnit
from tenancy.scope import tenant_scope
from tests import records
from tests.factories import TenantTree


def test_installed_when_the_app_starts() -> None:
    assert ForeignKey.get_col is orm._get_col


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
}


def test_every_query_compiles_and_runs_as_with_djangos_get_col(tree_a: TenantTree) -> None:
    with tenant_scope(tree_a.tenant):
        records.won_opportunity(tree_a)
        records.visit(tree_a)
        for name, make in QUERIES.items():
            ours = make()
            ours_sql, ours_rows = str(ours.query), list(ours)
            orm.uninstall()
            try:
                theirs = make()
                theirs_sql, theirs_rows = str(theirs.query), list(theirs)
            finally:
                orm.install()
            assert ours_sql == theirs_sql, name
            assert ours_rows == theirs_rows, name
        # Rows are there to compare.
        assert list(QUERIES["filter and order by keys"]())
        assert list(QUERIES["select related"]()) and list(QUERIES["a count in order"]())
