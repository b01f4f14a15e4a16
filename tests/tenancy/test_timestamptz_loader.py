"""Moments load through psycopg's C loader (``tenancy.db.CTimestamptzLoader``), or
without it through ``datetime.fromisoformat`` (``IsoTimestamptzLoader``), exactly as
Django's own loader loads them in the session Django sets up (UTC)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader
from psycopg.pq import Format

from tenancy import db
from tenancy.scope import platform_scope

pytestmark = pytest.mark.django_db

LITERALS = [
    "2026-03-01 23:30:00+00",
    "2026-03-01 23:30:00.5+00",
    "2026-03-01 23:30:00.000001+08",
    "1900-01-01 00:00:00+00",
    "0001-01-01 00:00:00+00",
    "9999-12-30 23:59:59.999999+00",
]
TIMESTAMPTZ = 1184


def _load(sql: str, zone: str = "UTC") -> list[Any]:
    with platform_scope("test: moments"), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL TIME ZONE '{zone}'")
        cursor.execute(sql)
        return list(cursor.fetchone())


@contextmanager
def _loader(loader: Any) -> Iterator[None]:
    """``loader`` registered on the connection for the block."""
    connection.ensure_connection()
    adapters = connection.connection.adapters
    before = adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
    adapters.register_loader("timestamptz", loader)
    try:
        yield
    finally:
        adapters.register_loader("timestamptz", before)


def _djangos() -> type:
    return type("DjangoTzLoader", (BaseTzLoader,), {"timezone": connection.timezone})


def _ours(kind: str) -> Any:
    """Our loader of the connection's zone: psycopg's C one (``c``) or the ISO one."""
    if kind == "iso":
        return type("Iso", (db.IsoTimestamptzLoader,), {"timezone": connection.timezone})
    return db.timestamptz_loader(connection.timezone)


SELECT = "SELECT " + ", ".join(f"'{value}'::timestamptz" for value in LITERALS)


def test_a_connection_loads_moments_with_psycopgs_c_loader() -> None:
    connection.ensure_connection()
    loader = connection.connection.adapters.get_loader(TIMESTAMPTZ, Format.TEXT)
    assert isinstance(loader, db.CTimestamptzLoader)
    assert loader is db.timestamptz_loader(connection.timezone)  # one per zone
    assert loader.timezone is connection.timezone is UTC
    # Django's cursors see the connection's zone: none registers a loader of its own.
    with connection.cursor() as cursor:
        assert cursor.cursor.adapters.get_loader(TIMESTAMPTZ, Format.TEXT) is loader
    # Its values are psycopg's C loader's.
    with connection.cursor() as cursor:
        cursor.execute("SELECT now()")
        raw = cursor.cursor
        assert type(raw._tx.get_loader(TIMESTAMPTZ, Format.TEXT)).__module__ != "tenancy.db"


@pytest.mark.parametrize("ours", ["c", "iso"])
def test_moments_load_as_djangos_loader_loads_them(ours: str) -> None:
    loader = _ours(ours)
    with _loader(loader):
        values = _load(SELECT)
    with _loader(_djangos()):
        djangos = _load(SELECT)
    assert values == djangos
    assert [value.tzinfo for value in values] == [UTC] * len(LITERALS)
    assert values[2] == datetime(2026, 3, 1, 15, 30, 0, 1, tzinfo=UTC)


def test_in_another_session_zone_the_c_loader_keeps_the_moment() -> None:
    """Nothing here changes the session's zone from Django's; if something did, psycopg's
    loader would still give the same moments (in that zone), where Django's moves
    them by the zone's offset."""
    values = _load(SELECT, "Asia/Shanghai")
    with _loader(db.timestamptz_loader(connection.timezone)):
        assert values == _load(SELECT, "UTC")
    assert str(values[0].tzinfo) == "Asia/Shanghai"


@pytest.mark.parametrize("ours", ["c", "iso"])
def test_a_moment_python_cannot_hold_fails_as_in_django(ours: str) -> None:
    loader = _ours(ours)
    for literal in ("infinity", "-infinity", "0044-03-15 12:00:00+00 BC"):
        with _loader(loader), pytest.raises(DataError):
            _load(f"SELECT '{literal}'::timestamptz")
        with _loader(_djangos()), pytest.raises(DataError):
            _load(f"SELECT '{literal}'::timestamptz")


def test_without_an_aware_zone_or_psycopgs_c_loader_the_iso_loader_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    naive = db.timestamptz_loader(None)
    assert issubclass(naive, db.IsoTimestamptzLoader) and naive.timezone is None
    monkeypatch.setattr(db, "_psycopg_loader_is_c", lambda: False)
    python = db._make_timestamptz_loader(UTC)
    assert issubclass(python, db.IsoTimestamptzLoader) and python.timezone is UTC
    monkeypatch.undo()
    assert isinstance(db._make_timestamptz_loader(UTC), db.CTimestamptzLoader)
