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

A request sends it in the round trip that opens its transaction (``MemberOpening``, a
``tenancy.scope.ScopeOpening``), after the ``BEGIN`` and the tenant settings: one round
trip where there were two. There it runs as a prepared statement (``PREPARE crm_member``
once per connection, then ``EXECUTE crm_member(tenant, member)``): planning its four
joins with their row-level security cost the server about 0.4 ms, several times its
execution. ``DATABASE_PREPARED_STATEMENTS=0`` sends the statement itself instead, for a
pooler that does not keep a session's prepared statements (PgBouncer in transaction
mode); a statement the server lost anyway is prepared again (``retry``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from psycopg.adapt import Transformer
from psycopg.pq.abc import PGresult

from tenancy.models import Membership, OrgUnit, OrgUnitManager, Tenant, row_instance

_Converter = Callable[[Any, Any, Any], Any]
PREPARED_NAME = "crm_member"
#: Set on a driver connection once it holds the prepared statement.
_PREPARED_FLAG = "crm_member_prepared"


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

    def make(self, row: tuple[Any, ...], db: BaseDatabaseWrapper) -> Model:
        values = list(row[self.start : self.end])
        for index, converters in self.converters:
            for convert in converters:
                values[index] = convert(values[index], None, db)
        made = row_instance(self.model, db.alias, values)
        return self.model.from_db(db.alias, self.attnames, values) if made is None else made


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
        self.prepare = f"PREPARE {PREPARED_NAME} (bigint, bigint) AS " + self.sql.replace(
            "%s", "$1", 1
        ).replace("%s", "$2", 1)


@cache
def _statement() -> _Statement:
    return _Statement()


def _member_from_row(row: tuple[Any, ...] | None, db: BaseDatabaseWrapper) -> Membership | None:
    if row is None:
        return None
    statement = _statement()
    member_part, user_part, unit_part, tenant_part = statement.parts
    member = member_part.make(row, db)
    assert isinstance(member, Membership)
    member._state.fields_cache["user"] = user_part.make(row, db)
    has_unit = row[unit_part.start] is not None
    member._state.fields_cache["org_unit"] = unit_part.make(row, db) if has_unit else None
    member._state.fields_cache["tenant"] = tenant_part.make(row, db)
    member.managed_unit_ids = list(row[statement.managed_index])  # type: ignore[attr-defined]
    return member


def load_member(tenant_id: int, membership_id: int) -> Membership | None:
    """The membership ``membership_id`` of ``tenant_id`` with its user, org unit, tenant
    (cached on it as ``select_related`` caches them) and ``managed_unit_ids``, or None."""
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        cursor.execute(_statement().sql, [tenant_id, membership_id])
        return _member_from_row(cursor.fetchone(), db)


_TRANSFORMER = "_crm_member_transformer"


class MemberOpening:
    """The credential's membership, read in the round trip that opens the request's
    transaction (``tenant_scope(…, opening=…)``); ``member`` once received."""

    def __init__(self, tenant_id: int, membership_id: int) -> None:
        self.tenant_id, self.membership_id = int(tenant_id), int(membership_id)
        self.received = False
        self.member: Membership | None = None
        self._preparing = False

    def sql(self, db: BaseDatabaseWrapper, *, first: bool) -> str:
        statement = _statement()
        values = (self.tenant_id, self.membership_id)
        self._preparing = False
        if not first or not settings.DATABASE_PREPARED_STATEMENTS:
            return statement.sql % values  # two ints: literals are safe
        execute = f"EXECUTE {PREPARED_NAME}({values[0]}, {values[1]})"
        if getattr(db.connection, _PREPARED_FLAG, False):
            return execute
        self._preparing = True
        return f"{statement.prepare}; {execute}"

    def retry(self, db: BaseDatabaseWrapper, sqlstate: str | None) -> bool:
        """The server lost the statement (26000) or had it already (42P05): send it again,
        prepared anew or executed as it is."""
        if sqlstate in ("26000", "42P05"):
            setattr(db.connection, _PREPARED_FLAG, sqlstate == "42P05")
            return True
        return False

    def receive(self, db: BaseDatabaseWrapper, result: PGresult) -> None:
        driver = db.connection
        if self._preparing:
            setattr(driver, _PREPARED_FLAG, True)
        row = None
        if result.ntuples:
            # One transformer per connection, as a cursor keeps one for all its results:
            # it makes each column type's loader once (about 20 µs of every request).
            loader = getattr(driver, _TRANSFORMER, None)
            if loader is None:
                loader = Transformer(driver)
                setattr(driver, _TRANSFORMER, loader)
            loader.set_pgresult(result)
            row = loader.load_row(0, tuple)
        self.member = _member_from_row(row, db)
        self.received = True
