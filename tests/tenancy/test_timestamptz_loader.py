"""Moments load through ``datetime.fromisoformat`` exactly as Django's own loader loads
them (``tenancy.db.IsoTimestamptzLoader``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DataError, connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader

from tenancy.db import IsoTimestamptzLoader
from tenancy.scope import platform_scope

pytestmark = pytest.mark.django_db

LITERALS = [
    "2026-03-01 23:30:00+00",
    "2026-03-01 23:30:00.5+00",
    "2026-03-01 23:30:00.000001+08",
    "1900-01-01 00:00:00+00",
    "9999-12-30 23:59:59.999999+00",
]


def _load(sql: str, zone: str) -> list[Any]:
    with platform_scope("test: moments"), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL TIME ZONE '{zone}'")
        cursor.execute(sql)
        return list(cursor.fetchone())


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai"])
def test_moments_load_as_djangos_loader_loads_them(zone: str, monkeypatch: Any) -> None:
    select = "SELECT " + ", ".join(f"'{value}'::timestamptz" for value in LITERALS)
    loader = connection.connection.adapters.get_loader(1184, 0)  # timestamptz, text
    assert issubclass(loader, IsoTimestamptzLoader)
    ours = _load(select, zone)
    monkeypatch.setattr(IsoTimestamptzLoader, "load", BaseTzLoader.load)
    assert ours == _load(select, zone)
    assert [value.tzinfo for value in ours] == [connection.timezone] * len(LITERALS)


def test_a_moment_python_cannot_hold_fails_as_in_django() -> None:
    for literal in ("infinity", "0044-03-15 12:00:00+00 BC"):
        with pytest.raises(DataError):
            _load(f"SELECT '{literal}'::timestamptz", "UTC")
