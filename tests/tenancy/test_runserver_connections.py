"""`make run` serves with runserver (a thread per connection): a burst of requests must
not leave PostgreSQL connections open (issue #12 item 3; config/settings.py CONN_MAX_AGE)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "runserver_connections.py"


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("runserver_connections", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _test_database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"


def test_a_burst_of_requests_under_runserver_leaves_no_connection_open() -> None:
    bench = _bench()
    url = _test_database_url()
    quick_start = bench.burst(url, 60, concurrency=10, DEBUG="1")  # as `make run`
    assert quick_start["statuses"] == {"200": 60}
    assert quick_start["open_connections"] == 0
    # The check can fail: persistent connections (the production default) pile up here.
    persistent = bench.burst(url, 60, concurrency=10, DEBUG="1", CONN_MAX_AGE="60")
    assert persistent["open_connections"] > 0
