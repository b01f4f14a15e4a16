"""The credential's membership, read with one statement written once per process.

Every authenticated request reads its membership with the user, org unit and tenant (to
check each is active, to scope visibility, to take the time zone) and the units it
manages. Built with the ORM, that query cost more to compile (1.5 ms of CPU here: four
models' 50 columns and a subquery) than to run (0.15 ms), on every request. Its text
never changes, so it is written once from the models' fields; each request sends it
with the tenant and the membership id as parameters and makes the four model instances
from the row with ``Model.from_db`` and each field's database converters, as the ORM's
``select_related`` would (``tests/tenancy/test_member_loader.py`` compares both, field by
field). The tenant is named in the ``WHERE`` as well as enforced by row-level security.
It is a prepared statement (``tenancy.db.prepared_cursor``): planning its four joins with
their row-level security took the server about 0.4 ms, several times its execution,
on every request; prepared, the server plans it once per connection.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model

from tenancy.db import prepared_cursor
from tenancy.models import Membership, OrgUnit, OrgUnitManager, Tenant

_Converter = Callable[[Any, Any, Any], Any]


class _Part:
    """One model's columns in the row: where they are, their names, their converters."""

    def __init__(self, model: type[Model], start: int) -> None:
        fields = list(model._meta.concrete_fields)
        self.model = model
        self.start, self.end = start, start + len(fields)
        self.attnames = [field.attname for field in fields]
        self.converters: list[tuple[int, list[_Converter]]] = [
            (index, converters)
            for index, field in enumerate(fields)
            if (converters := field.get_db_converters(connection))
        ]

    def make(self, row: tuple[Any, ...]) -> Model:
        values = list(row[self.start : self.end])
        for index, converters in self.converters:
            for convert in converters:
                values[index] = convert(values[index], None, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


class _Statement:
    def __init__(self) -> None:
        quote = connection.ops.quote_name
        user_model = get_user_model()
        aliases: list[tuple[type[Model], str]] = [
            (Membership, "m"),
            (user_model, "u"),
            (OrgUnit, "o"),
            (Tenant, "t"),
        ]
        self.parts: list[_Part] = []
        columns: list[str] = []
        for model, alias in aliases:
            self.parts.append(_Part(model, len(columns)))
            columns += [f"{alias}.{quote(str(f.column))}" for f in model._meta.concrete_fields]
        self.managed_index = len(columns)
        managers = OrgUnitManager._meta
        self.sql = (
            f"SELECT {', '.join(columns)}, "
            f"ARRAY(SELECT om.{quote(managers.get_field('org_unit').column)} "
            f"FROM {quote(managers.db_table)} om "
            f"WHERE om.tenant_id = m.tenant_id AND om.membership_id = m.id "
            f"ORDER BY 1) "
            f"FROM {quote(Membership._meta.db_table)} m "
            f"JOIN {quote(user_model._meta.db_table)} u ON u.id = m.user_id "
            f"LEFT JOIN {quote(OrgUnit._meta.db_table)} o ON o.id = m.org_unit_id "
            f"JOIN {quote(Tenant._meta.db_table)} t ON t.id = m.tenant_id "
            f"WHERE m.tenant_id = %s AND m.id = %s"
        )


@cache
def _statement() -> _Statement:
    return _Statement()


def load_member(tenant_id: int, membership_id: int) -> Membership | None:
    """The membership ``membership_id`` of ``tenant_id`` with its user, org unit, tenant
    (cached on it as ``select_related`` caches them) and ``managed_unit_ids``, or None."""
    statement = _statement()
    with prepared_cursor() as cursor:
        cursor.execute(statement.sql, [tenant_id, membership_id])
        row = cursor.fetchone()
    if row is None:
        return None
    member_part, user_part, unit_part, tenant_part = statement.parts
    member = member_part.make(row)
    assert isinstance(member, Membership)
    member._state.fields_cache["user"] = user_part.make(row)
    has_unit = row[unit_part.start] is not None
    member._state.fields_cache["org_unit"] = unit_part.make(row) if has_unit else None
    member._state.fields_cache["tenant"] = tenant_part.make(row)
    member.managed_unit_ids = list(row[statement.managed_index])  # type: ignore[attr-defined]
    return member
