"""A database of its own for migration tests, owned by a login role that is NOT a
superuser (the README's production set-up), made on the test server and dropped after.

The migrations run in subprocesses (``manage.py`` with the scratch database's URL), as
they do in a deployment: the test suite's own database and connections are untouched.
Reads go through the owner with the row-level security bypass on, so a count sees
every tenant's rows whichever role runs the suite.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from django.conf import settings
from psycopg import sql

from tenancy.db import app_role

ROOT = Path(__file__).resolve().parents[2]

# Every base table and its rows, as text: a changed value, a lost or an added row
# changes the digest.
TABLES_SQL = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1
"""
TENANT_TABLES_SQL = """
SELECT c.table_name FROM information_schema.columns c
JOIN information_schema.tables t
  ON t.table_name = c.table_name AND t.table_schema = c.table_schema
WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'
  AND t.table_type IN ('BASE TABLE', 'VIEW')
ORDER BY 1
"""


def _server() -> dict[str, Any]:
    """How the suite reaches the server (host, port, superuser), not its database."""
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or "",
        "port": str(db.get("PORT") or ""),
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
    }


def _connect(dbname: str, **overrides: str) -> psycopg.Connection[Any]:
    params = {**_server(), **overrides, "dbname": dbname}
    return psycopg.connect(
        **{k: v for k, v in params.items() if v}, autocommit=True, connect_timeout=10
    )


@dataclass
class ScratchDatabase:
    name: str
    owner: str
    password: str

    @property
    def url(self) -> str:
        server = _server()
        host = quote(server["host"], safe="")
        port = f":{server['port']}" if server["port"] else ""
        return f"postgres://{self.owner}:{self.password}@{host}{port}/{self.name}"

    def connect(self) -> psycopg.Connection[Any]:
        """The owner's connection with the RLS bypass on for the whole session."""
        conn = _connect(self.name, user=self.owner, password=self.password)
        conn.execute("SELECT set_config('app.rls_bypass', 'on', false)")
        return conn

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``manage.py`` against this database, logged in as its owner."""
        return self._run([sys.executable, "manage.py", *args], check=check)

    def python(self, code: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Python code with Django set up against this database (one start-up for many steps)."""
        prelude = "import django; django.setup()\n"
        return self._run([sys.executable, "-c", prelude + code], check=check)

    def _run(self, argv: list[str], *, check: bool) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"MIGRATION_DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}
        }
        env.update(
            DATABASE_URL=self.url,
            DEBUG="1",
            DJANGO_SETTINGS_MODULE="config.settings",
            DATABASE_APP_ROLE=app_role(),
        )
        result = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{argv[1:]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def fingerprint(self, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Per base table: its row count and, per column, the md5 of the column's values in
        primary-key order, so that a later comparison can skip columns that later
        migrations added, renamed or replaced."""
        with self.connect() as conn:
            tables = [row[0] for row in conn.execute(TABLES_SQL)]
            result: dict[str, Any] = {}
            for table in tables:
                if table in exclude:
                    continue
                columns = [
                    row[0]
                    for row in conn.execute(
                        "SELECT column_name FROM information_schema.columns WHERE "
                        "table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                        [table],
                    )
                ]
                key = [
                    row[0]
                    for row in conn.execute(
                        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON "
                        "a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                        "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attnum",
                        [table],
                    )
                ] or columns
                order = sql.SQL(", ").join(sql.Identifier("t", c) for c in key)
                digests = sql.SQL(", ").join(
                    sql.SQL(
                        "md5(coalesce(string_agg({c}::text, E'\\x1f' ORDER BY {o}), ''))"
                    ).format(c=sql.Identifier("t", c), o=order)
                    for c in columns
                )
                query = sql.SQL("SELECT count(*), {d} FROM {table} t").format(
                    d=digests, table=sql.Identifier(table)
                )
                count, *values = conn.execute(query).fetchone()  # type: ignore[misc]
                result[table] = (int(count), dict(zip(columns, map(str, values), strict=True)))
        return result

    def tenant_counts(self) -> dict[int, dict[str, int]]:
        """Rows per tenant of every table or view with a ``tenant_id``, seen with the bypass."""
        with self.connect() as conn:
            tables = [row[0] for row in conn.execute(TENANT_TABLES_SQL)]
            counts: dict[int, dict[str, int]] = {}
            for table in tables:
                query = sql.SQL("SELECT tenant_id, count(*) FROM {} GROUP BY 1").format(
                    sql.Identifier(table)
                )
                for tenant_id, count in conn.execute(query):
                    counts.setdefault(int(tenant_id), {})[table] = int(count)
        return counts

    def scoped_counts(self, tenant_ids: list[int]) -> dict[str, Any]:
        """Raw SQL counts inside ``tenant_scope`` in a process of the app (its role switch
        and its scope, nothing re-implemented here)."""
        code = f"""
import json
from django.db import connection
from tenancy.scope import tenant_scope
out = {{"tenants": {{}}}}
with connection.cursor() as cursor:
    cursor.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    out["user"], out["superuser"] = cursor.fetchone()
    cursor.execute({TENANT_TABLES_SQL!r})
    tables = [row[0] for row in cursor.fetchall()]
for tenant_id in {tenant_ids!r}:
    seen = {{}}
    with tenant_scope(tenant_id), connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                f'SELECT count(*), count(*) FILTER (WHERE tenant_id <> %s) FROM "{{table}}"',
                [tenant_id],
            )
            seen[table] = list(cursor.fetchone())
    out["tenants"][str(tenant_id)] = seen
print(json.dumps(out))
"""
        result = self.python(code)
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@contextmanager
def scratch_database(*, createrole: bool = True) -> Iterator[ScratchDatabase]:
    """A fresh database owned by a new non-superuser login role; both dropped after.

    The application role is made to exist beforehand (as on a server where another
    database or owner created it) and the new owner is not a member of it.
    """
    token = secrets.token_hex(4)
    scratch = ScratchDatabase(
        name=f"crm_scratch_{token}", owner=f"crm_owner_{token}", password=secrets.token_hex(16)
    )
    owner = sql.Identifier(scratch.owner)
    role = sql.Identifier(app_role())
    with _connect("postgres") as admin:
        if (
            admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [app_role()]).fetchone()
            is None
        ):
            admin.execute(
                sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT").format(role)
            )
        admin.execute(
            sql.SQL(
                "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOBYPASSRLS NOCREATEDB {}"
            ).format(
                owner,
                sql.Literal(scratch.password),
                sql.SQL("CREATEROLE" if createrole else "NOCREATEROLE"),
            )
        )
        # A non-superuser running the suite (CREATEROLE, CREATEDB) may give a database to
        # a role it is a member of only.
        admin.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner))
        try:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(scratch.name), owner)
            )
            yield scratch
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(scratch.name)
                )
            )
            admin.execute(sql.SQL("REVOKE {} FROM {}").format(role, owner))
            admin.execute(sql.SQL("DROP ROLE {}").format(owner))
