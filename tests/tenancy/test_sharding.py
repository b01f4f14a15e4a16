"""Sharding readiness: tenant tables can be distributed by ``tenant_id`` (Citus)."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.tenancy.test_rls import tenant_tables

pytestmark = pytest.mark.django_db


def _indexes() -> list[tuple[str, str, bool, bool, list[str]]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.relname, ix.indisunique, ix.indisprimary,
                   array(SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                         ORDER BY k.n)
            FROM pg_index ix
            JOIN pg_class t ON t.oid = ix.indrelid
            JOIN pg_class i ON i.oid = ix.indexrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace
            WHERE n.nspname = 'public' AND t.relname = ANY(%s)
            """,
            [tenant_tables()],
        )
        return [(row[0], row[1], row[2], row[3], list(row[4])) for row in cursor.fetchall()]


def test_every_index_and_unique_constraint_of_a_tenant_table_starts_with_tenant_id() -> None:
    offenders = [
        f"{table}.{index} {columns}"
        for table, index, _unique, primary, columns in _indexes()
        # The surrogate primary key is swapped for the unique (tenant_id, id) on distribution.
        if not primary and (not columns or columns[0] != "tenant_id")
    ]
    assert offenders == []


def test_every_tenant_table_has_a_unique_tenant_id_and_id_key() -> None:
    keyed = {
        table
        for table, _index, unique, _primary, columns in _indexes()
        if unique and columns == ["tenant_id", "id"]
    }
    assert sorted(set(tenant_tables()) - keyed) == []
