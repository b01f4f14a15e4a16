"""How many PostgreSQL connections a burst of requests leaves open under `make run`.

Starts `manage.py runserver` (one thread per request, as in the quick start) on a free
port against DATABASE_URL, sends REQUESTS requests to /healthz (CONCURRENCY at a time;
each reads the database), then counts the server's connections in pg_stat_activity.
Prints a table and writes bench/results/runserver_connections.json.

    DEBUG=1 DATABASE_URL=postgres://.../crm_x .venv/bin/python bench/runserver_connections.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = int(os.environ.get("REQUESTS", "200"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "10"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def count_backends(url: str, name: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [name]
        ).fetchone()
        return int(row[0]) if row else 0


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def burst(
    url: str, requests: int, concurrency: int = CONCURRENCY, **environ: str
) -> dict[str, object]:
    """Serve ``requests`` requests (``concurrency`` at a time) with runserver on the
    database ``url``; count the connections it leaves open. ``environ`` adds variables
    (``CONN_MAX_AGE``) to the server's environment."""
    port = free_port()
    name = f"runserver-burst-{port}"  # libpq's PGAPPNAME labels the server's connections
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env={**os.environ, **environ, "DATABASE_URL": url, "PGAPPNAME": name},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}/healthz"
        for _ in range(150):
            try:
                get(base)
                break
            except OSError:
                time.sleep(0.2)
        statuses: dict[str, int] = {}
        with ThreadPoolExecutor(concurrency) as pool:
            for code in pool.map(lambda _: str(get(base)), range(requests)):
                statuses[code] = statuses.get(code, 0) + 1
        time.sleep(1)
        return {
            "requests": requests,
            "concurrency": concurrency,
            "open_connections": count_backends(url, name),
            "statuses": statuses,
        }
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm")
    result = burst(url, REQUESTS)
    print(f"{'requests':>10} {'at a time':>10} {'connections left open':>22}  statuses")
    print(
        f"{result['requests']:>10} {result['concurrency']:>10} "
        f"{result['open_connections']:>22}  {result['statuses']}"
    )
    out = ROOT / "bench" / "results" / "runserver_connections.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
