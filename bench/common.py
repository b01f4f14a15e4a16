"""Helpers shared by the benchmarks in ``bench/`` (targets, funnel).

Two scripts are named like the apps they measure (``bench/targets.py``,
``bench/funnel.py``): run as scripts, their directory comes first on ``sys.path``,
where ``import targets`` would find the script itself, so each puts the project root
there instead before importing this module.

Timing conventions: wall time with ``time.perf_counter``, ``--warmup`` untimed runs,
then ``--repeat`` timed ones (``timed``; ``interleaved`` takes the samples of several
jobs in turns, as ``bench/api_lists.py`` does for both sides of every ratio); the
"bare SQL" of a call is the SQL it sent (captured with ``CaptureQueriesContext``)
re-run as is on the driver's own cursor, inside the same tenant scope, fetching every
row, so the ratio call / bare SQL is what the Python side adds.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
#: Captured statements longer than this are cut in the JSON report (a tree's INSERT
#: carries every value as a literal: megabytes).
SQL_REPORT_CHARS = 4_000


def setup_django(*, fresh: bool = False) -> None:
    """Use ``DATABASE_URL`` (default ``crm_bench``), create it when missing, set Django up
    and migrate. Never the ``crm`` or ``test_*`` databases others use."""
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    name = os.environ["DATABASE_URL"].rsplit("/", 1)[-1].split("?")[0]
    if name == "crm" or name.startswith("test_"):
        sys.exit(f"Refusing to benchmark in the {name!r} database: use crm_bench or your own.")
    prepare_database(os.environ["DATABASE_URL"], fresh=fresh)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def https_client(**kwargs: Any) -> Any:
    """A Django test client whose requests come over HTTPS, as production receives them
    (behind TLS): without ``DEBUG`` an HTTP request is only redirected."""
    from django.test import Client

    class HttpsClient(Client):
        def get(self, path: Any, **options: Any) -> Any:  # type: ignore[override]
            options["secure"] = True
            return super().get(path, **options)

    return HttpsClient(**kwargs)


def _admin_connection(config: dict[str, Any], dbname: str) -> Any:
    import psycopg

    return psycopg.connect(
        dbname=dbname,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
        autocommit=True,
    )


def prepare_database(url: str, *, fresh: bool) -> None:
    """Create (or, with ``fresh``, recreate) the database named in ``url``."""
    import dj_database_url
    from psycopg import sql

    config: dict[str, Any] = dict(dj_database_url.parse(url))
    name = config["NAME"]
    with _admin_connection(config, "postgres") as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            log(f"Dropping database {name} …")
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            log(f"Creating database {name} …")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def owner_execute(statements: Iterable[str]) -> None:
    """Run maintenance (``VACUUM``/``ANALYZE``) as the login role, which owns the tables."""
    from django.conf import settings

    config: dict[str, Any] = dict(settings.DATABASES["default"])
    with _admin_connection(config, str(config["NAME"])) as owner:
        for statement in statements:
            owner.execute(statement)


def vacuum_analyze(tables: Iterable[str]) -> None:
    log("VACUUM (ANALYZE) of the tables …")
    owner_execute(f"VACUUM (ANALYZE) {table}" for table in tables)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- timing ------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low, high = int(position), min(int(position) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(percentile(samples, 0.95), 2),
        "max_ms": round(max(samples), 2),
        "min_ms": round(min(samples), 2),
        "n": len(samples),
    }


def timed(
    repeat: int,
    warmup: int,
    run: Callable[[], object],
    *,
    before: Callable[[], object] | None = None,
) -> list[float]:
    """Milliseconds of ``repeat`` calls of ``run`` after ``warmup`` untimed ones;
    ``before`` runs untimed ahead of every call (resets, clean-ups)."""
    from django.db import reset_queries

    samples = []
    for attempt in range(warmup + repeat):
        reset_queries()  # DEBUG keeps every statement; a tree's INSERT is megabytes
        if before is not None:
            before()
        started = time.perf_counter()
        run()
        elapsed = (time.perf_counter() - started) * 1000
        if attempt >= warmup:
            samples.append(elapsed)
    reset_queries()
    return samples


def interleaved(
    repeat: int, warmup: int, runs: dict[str, Callable[[], object]]
) -> dict[str, list[float]]:
    """Samples of several jobs taken in turns: each round runs every job once, so the
    jobs compared in a ratio share the machine's state (this VM's timings drift by up to
    ±50 % over minutes). A job that returns a float measured its own time (in ms)."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            started = time.perf_counter()
            result = run()
            took = (time.perf_counter() - started) * 1000
            samples[name].append(result if isinstance(result, float) else took)
    return samples


def capture(run: Callable[[], Any]) -> tuple[Any, list[str]]:
    """``run()``'s result and the SQL statements it sent, as Django logged them.

    Django keeps the last 9,000 statements only (``queries_limit``), and a capture of
    more would silently lose the first ones: the log is made long enough here.
    """
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    if connection.queries_limit < 10_000_000:
        connection.queries_limit = 10_000_000
        connection.queries_log = deque(maxlen=connection.queries_limit)
    reset_queries()
    with CaptureQueriesContext(connection) as captured:
        result = run()
    statements = [bare_statement(query["sql"]) for query in captured.captured_queries]
    reset_queries()
    return result, statements


_DECLARE = re.compile(r'^\s*DECLARE\s+"[^"]+"\s+NO SCROLL CURSOR\s+(?:WITH(?:OUT)? HOLD\s+)?FOR\s+')


def bare_statement(statement: str) -> str:
    """The statement to re-run: a server-side cursor's ``DECLARE … FOR <query>`` (an
    ``.iterator()``; Django logs the DECLARE, not the FETCHes) becomes ``<query>``."""
    return _DECLARE.sub("", statement, count=1)


def run_sql(statements: Sequence[str]) -> None:
    """Execute ``statements`` on the driver's own cursor (no Django wrapper between the
    clock and the SQL), fetching every row. Inside the caller's tenant scope."""
    from django.db import connection

    raw = connection.connection.cursor()
    try:
        for statement in statements:
            raw.execute(statement)
            if raw.description is not None:
                raw.fetchall()
    finally:
        raw.close()


def explain(statement: str) -> str:
    from django.db import connection

    raw = connection.connection.cursor()
    try:
        raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
        return "\n".join(line for (line,) in raw.fetchall())
    finally:
        raw.close()


class Rollback(Exception):
    """Raised at the end of a block to roll its transaction back."""


@contextmanager
def rolled_back(tenant: Any) -> Iterator[None]:
    """A tenant scope whose transaction is rolled back at the end: every repetition of
    a write starts from the same data."""
    from tenancy.scope import tenant_scope

    try:
        with tenant_scope(tenant):
            yield
            raise Rollback
    except Rollback:
        pass


def short_sql(statement: str) -> str:
    if len(statement) <= SQL_REPORT_CHARS:
        return statement
    return f"{statement[:SQL_REPORT_CHARS]} … [{len(statement):,} characters]"


def statement_kinds(
    statements: Sequence[str], medians: Sequence[float] | None = None
) -> dict[str, Any]:
    """Statements grouped by what they do, with their count (and bare milliseconds)."""
    groups: dict[str, dict[str, Any]] = defaultdict(lambda: {"count": 0, "ms": 0.0})
    for statement, ms in zip(statements, medians or [0.0] * len(statements), strict=True):
        words = statement.split(None, 3)
        kind = words[0].upper() if words else "?"
        if kind in ("DELETE", "INSERT", "UPDATE"):
            kind = " ".join(words[:3])
        elif kind == "SELECT" and " FROM " in statement:
            kind = "SELECT … FROM " + statement.split(" FROM ", 1)[1].split()[0]
        groups[kind]["count"] += 1
        groups[kind]["ms"] += ms
    if medians is None:
        return {kind: {"count": value["count"]} for kind, value in groups.items()}
    return {
        kind: {"count": value["count"], "ms": round(value["ms"], 2)}
        for kind, value in sorted(groups.items(), key=lambda item: -item[1]["ms"])
    }


# --- results -----------------------------------------------------------------------------


@dataclass
class Row:
    """One line of a benchmark table."""

    name: str
    scope: str
    samples: list[float]
    queries: int | None
    bare_samples: list[float] | None = None
    goal: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def bare_p50(self) -> float | None:
        return statistics.median(self.bare_samples) if self.bare_samples else None

    @property
    def ratio(self) -> float | None:
        bare = self.bare_p50
        return self.p50 / bare if bare else None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "scope": self.scope,
            **summary(self.samples),
            "bare_sql": summary(self.bare_samples) if self.bare_samples else None,
            "ratio": None if self.ratio is None else round(self.ratio, 2),
            "queries": self.queries,
            "goal": self.goal,
            "met": self.met,
            "note": self.note,
            **self.extra,
        }


def print_table(rows: Sequence[Row]) -> None:
    name_width = max(len("name"), *(len(row.name) for row in rows))
    scope_width = max(len("scope"), *(len(row.scope) for row in rows))
    header = (
        f"{'name':<{name_width}}  {'scope':<{scope_width}}  {'p50 ms':>9} {'p95 ms':>9} "
        f"{'max ms':>9} {'SQL p50':>9} {'ratio':>6} {'queries':>7}  goal"
    )
    print()
    print(header)
    print("-" * (len(header) + 24))
    for row in rows:
        bare = row.bare_p50
        ratio = row.ratio
        verdict = {True: "met", False: "MISSED", None: ""}[row.met]
        goal = f"{row.goal} {verdict}".strip() if row.goal else ""
        if row.note:
            goal = f"{goal} ({row.note})" if goal else f"({row.note})"
        print(
            f"{row.name:<{name_width}}  {row.scope:<{scope_width}}  {row.p50:>9.1f} "
            f"{percentile(row.samples, 0.95):>9.1f} {max(row.samples):>9.1f} "
            f"{'' if bare is None else f'{bare:.1f}':>9} "
            f"{'' if ratio is None else f'{ratio:.2f}':>6} "
            f"{'' if row.queries is None else row.queries:>7}  {goal}"
        )


def write_report(name: str, report: dict[str, Any]) -> Path:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server_version,) = cursor.fetchone() or ("?",)
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {
        "generated_at": datetime.now(UTC).isoformat(),
        "code": code_revision(),
        "database": os.environ.get("DATABASE_URL", "").rsplit("@", 1)[-1],
        "postgres": server_version,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        **report,
    }
    path.write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str) + "\n")
    log(f"Wrote {path.relative_to(ROOT)}")
    return path


def revision_line() -> str:
    code = code_revision()
    dirty = f" + uncommitted: {', '.join(code['uncommitted'])}" if code["uncommitted"] else ""
    return f"(code measured: {code['commit'][:10]}{dirty})"


def code_revision() -> dict[str, Any]:
    """The commit measured, and any uncommitted change to the code (others edit it too)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = git("status", "--short", "--untracked-files=no").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": changed}
