"""Benchmark: list endpoints on a large tenant, against the raw SQL they run.

    DEBUG=1 .venv/bin/python bench/api_lists.py [--reps 500 --opportunities 200000 ...]
                                                [--reuse | --fresh] [--repeat 30]

Generates (``manage.py generate_data``) or reuses a tenant ``bench`` (500 reps, 200,000
opportunities with their history, 1,000,000 activities, 100,000 visits, 50,000
customers by default) in the database of ``DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/crm_bench``, created and migrated when missing),
then, for a region manager and for a rep, times each list endpoint with a typical filter
and ``page_size=50`` through Django's test client (in process: middleware, auth,
filters, serialization, real PostgreSQL).

First, ``/healthz`` (one query, no authentication, no scope) and the **floor**:
``/api/v1/me/`` of each persona, the fixed cost of an authenticated request (JWT,
membership, transaction and tenant setting, time zone, DRF, JSON); the goal is a floor
within 2x of ``/healthz``. Run it without ``CELERY_BROKER_URL`` so that ``/healthz``
checks the database only.

The process's garbage collector is tuned as ``config/wsgi.py`` tunes a web process's
(``tenancy.runtime``, ``GC_GEN0_THRESHOLD``), and requests are timed with ``DEBUG``
off, as production serves them (``DEBUG=1`` only spares the bench production secrets).

Whatever a ratio compares is timed **in turns** (``bench.common.interleaved``):
``/healthz`` and the floor alternate, and each list request alternates with a floor
request and the bare SQL, so both sides of a ratio see the same machine (timings here
drift by up to ±50 % over minutes; measured minutes apart, the drift alone could make
or break a goal).

For every endpoint and role it reports:

* p50 / p95 of the server time (``Client.get`` wall time) over ``--repeat`` requests
  after ``--warmup`` ones;
* SQL p50: the page's own statements (all but the floor's: transaction control, tenant
  setting, the credential's membership), captured with ``CaptureQueriesContext`` and
  re-run with the driver's cursor inside the same tenant scope; the capped count alone;
* ``server / SQL`` and ``(server - floor) / SQL``, what the Python side adds to the
  page's own SQL beyond the fixed cost of any request (the goal: <= 3);
* the number of queries per request at ``page_size`` 1 and 200 (constant is the goal).

The lists are page-number pages with the capped count (a count over 1,000 rows shows
as ``>1,000``) and one sync page (``updated_since``: the keyset cursor, no count).

Prints a table and writes ``bench/results/api_lists.json`` (with the captured SQL and
its ``EXPLAIN ANALYZE`` plans). Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

RESULTS = common.RESULTS / "api_lists.json"
SLUG = "bench"
GOAL_FLOOR_OVER_HEALTHZ = 2.0
GOAL_ABOVE_FLOOR = 3.0
TRANSACTION_CONTROL = {"BEGIN", "BEGIN;", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
TABLES = [
    "crm_customer",
    "crm_contact",
    "crm_lead",
    "crm_opportunity",
    "crm_stagechange",
    "crm_payment",
    "crm_visit",
    "crm_activity",
    "crm_membership",
    "crm_orgunit",
    "crm_orgunitmanager",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    reuse = parser.add_mutually_exclusive_group()
    reuse.add_argument("--reuse", action="store_true", help="Use the existing bench tenant.")
    reuse.add_argument("--fresh", action="store_true", help="Drop and recreate the database.")
    parser.add_argument("--repeat", type=int, default=30, help="Timed requests per case.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests per case.")
    parser.add_argument("--page-size", type=int, default=50)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("DATABASE_URL", common.DEFAULT_DATABASE_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    common.prepare_database(os.environ["DATABASE_URL"], fresh=args.fresh)

    import django

    django.setup()

    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from crm.models import Opportunity
    from tenancy.api.views import issue_tokens
    from tenancy.models import Membership, Role, Tenant
    from tenancy.runtime import prepare_web_process
    from tenancy.scope import tenant_scope

    call_command("migrate", verbosity=0)

    tenant = Tenant.objects.filter(slug=SLUG).first()
    existing = 0
    if tenant is not None:
        with tenant_scope(tenant):
            existing = Opportunity.all_objects.count()
    generation: dict[str, Any] = {"reused": bool(existing)}
    if existing and not args.reuse:
        sys.exit(
            f"The {SLUG} tenant already has {existing:,} opportunities: "
            "pass --reuse to benchmark it, or --fresh to start over."
        )
    if not existing:
        started = time.monotonic()
        call_command(
            "generate_data",
            f"--tenant={SLUG}",
            "--name=Bench 基准",
            f"--reps={args.reps}",
            f"--customers={args.customers}",
            f"--opportunities={args.opportunities}",
            f"--activities={args.activities}",
            f"--visits={args.visits}",
            f"--months={args.months}",
            f"--seed={args.seed}",
            stderr=sys.stderr,
        )
        generation["seconds"] = round(time.monotonic() - started, 1)
        tenant = Tenant.objects.get(slug=SLUG)
    assert tenant is not None
    print("VACUUM (ANALYZE) of the tenant tables …", file=sys.stderr)
    # ANALYZE of every table too: stale statistics of the small ones (users, stages)
    # make the planner join every deal before sorting a page.
    common.owner_execute([*(f"VACUUM (ANALYZE) {table}" for table in TABLES), "ANALYZE"])

    with tenant_scope(tenant):
        region_manager = (
            Membership.objects.select_related("user", "org_unit", "tenant")
            .filter(role=Role.MANAGER, org_unit__depth=1)
            .order_by("pk")
            .first()
        )
        assert region_manager is not None and region_manager.org_unit is not None
        # A typical rep of that region: the median by number of deals.
        reps_by_deals = list(
            Membership.objects.filter(
                role=Role.REP, org_unit__path__startswith=region_manager.org_unit.path
            )
            .annotate(deals=Count("opportunities"))
            .order_by("deals", "pk")
            .values_list("pk", "deals")
        )
        rep_pk, rep_deals = reps_by_deals[len(reps_by_deals) // 2]
        rep = Membership.objects.select_related("user", "org_unit", "tenant").get(pk=rep_pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                [TABLES],
            )
            table_rows = dict(cursor.fetchall())
            cursor.execute("SHOW server_version")
            (server_version,) = cursor.fetchone() or ("?",)

    month_ago = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    cases = [
        ("opportunities", "crm_opportunity", {"status": "open", "ordering": "-updated_at"}),
        ("customers", "crm_customer", {"level": "A", "ordering": "name"}),
        ("visits", "crm_visit", {"checked_in_after": month_ago, "ordering": "-check_in_at"}),
        ("activities", "crm_activity", {"overdue": "true", "ordering": "due_at"}),
        # A phone's sync: the keyset cursor over (updated_at, id), no count.
        ("opportunities", "crm_opportunity", {"updated_since": month_ago}),
    ]
    personas = [("manager", region_manager), ("rep", rep)]
    print(
        f"Manager: {region_manager.user.username} of {region_manager.org_unit.name} "
        f"({len(reps_by_deals)} reps); rep: {rep.user.username} ({rep_deals} deals).",
        file=sys.stderr,
    )

    # /healthz: one query, no authentication, no tenant scope; timed in turns with each
    # persona's floor, so the two are compared on the same machine load.
    # The collector as config/wsgi.py tunes it for a web process (tenancy.runtime).
    thresholds = prepare_web_process()
    # Timed as a production process runs, without DEBUG (started with DEBUG=1 only to
    # need no production secrets): DEBUG's cursor keeps and logs every statement, about
    # 20 µs a query, which the floor's own statement (sent by the scope's opening, not
    # through a cursor) never pays. The statements are still captured where the bench
    # reads them (CaptureQueriesContext forces that cursor for its block).
    debug = settings.DEBUG
    settings.DEBUG = False
    anonymous = common.https_client()
    health_queries = common.capture(partial(anonymous.get, "/healthz"))[1]
    health: list[float] = []

    results: list[dict[str, Any]] = []
    baselines: dict[str, dict[str, Any]] = {}
    for role, member in personas:
        client = common.https_client(
            headers={"Authorization": f"Bearer {issue_tokens(member)['access']}"}
        )
        # The floor: the fixed cost of an authenticated request (JWT, membership, scope,
        # time zone, DRF, JSON), measured as /api/v1/me/.
        me_statements = common.capture(partial(client.get, "/api/v1/me/"))[1]
        turns = common.interleaved(
            args.repeat,
            args.warmup,
            {
                "healthz": partial(anonymous.get, "/healthz"),
                "me": partial(client.get, "/api/v1/me/"),
            },
        )
        me, health_now = turns["me"], turns["healthz"]
        health += health_now
        floor = statistics.median(me)
        baselines[role] = {
            "endpoint": "/api/v1/me/",
            "server_p50_ms": round(floor, 2),
            "server_p95_ms": round(common.percentile(me, 0.95), 2),
            "healthz_p50_ms": round(statistics.median(health_now), 2),
            "queries": len(me_statements),
            "floor_over_healthz": round(floor / statistics.median(health_now), 2),
            "statements": me_statements,
        }
        for resource, table, filters in cases:
            path = f"/api/v1/{resource}/"
            sync = "updated_since" in filters

            def get(
                page_size: int,
                client: Any = client,
                path: str = path,
                filters: dict[str, str] = filters,
            ) -> Any:
                query = urlencode({**filters, "page_size": page_size})
                response = client.get(f"{path}?{query}")
                assert response.status_code == 200, response.content[:500]
                return response

            queries = {size: len(common.capture(partial(get, size))[1]) for size in (1, 200)}
            statements = common.capture(partial(get, args.page_size))[1]
            count_sql = next((s for s in statements if s.startswith("SELECT COUNT(*)")), None)
            rows_sql = [s for s in statements if f'FROM "{table}"' in s and " LIMIT " in s][-1]
            # The page's own SQL: every statement but the floor's (transaction control,
            # tenant setting, the credential's membership), which /me/ runs too.
            page_sql = [
                s
                for s in statements
                if s not in me_statements and s.split()[0] not in TRANSACTION_CONTROL
            ]

            first = get(1).json()
            total_rows = None if sync else first["count"]

            def run_sql(*sql_statements: str) -> float:
                """The statements on the driver's own cursor (no Django wrapper between
                the clock and the SQL), in the tenant's scope and with the cursor opened
                before the clock (``bench.common.run_sql`` opens its cursor inside it)."""
                with tenant_scope(tenant):
                    raw = connection.connection.cursor()
                    started = time.perf_counter()
                    for statement in sql_statements:
                        raw.execute(statement)
                        raw.fetchall()
                    took = (time.perf_counter() - started) * 1000
                    raw.close()
                return took

            # In turns: the list, the floor and the bare SQL share each round's machine.
            jobs: dict[str, Callable[[], object]] = {
                "server": partial(get, args.page_size),
                "floor": partial(client.get, "/api/v1/me/"),
                "page_sql": partial(run_sql, *page_sql),
                "rows_sql": partial(run_sql, rows_sql),
            }
            if count_sql:
                jobs["count_sql"] = partial(run_sql, count_sql)
            turns = common.interleaved(args.repeat, args.warmup, jobs)
            server, page_ms, rows_ms = turns["server"], turns["page_sql"], turns["rows_sql"]
            count_ms = turns.get("count_sql", [0.0])
            floor = statistics.median(turns["floor"])
            with tenant_scope(tenant):
                plans = {
                    name: common.explain(statement)
                    for name, statement in (("count", count_sql), ("rows", rows_sql))
                    if statement
                }

            p50 = statistics.median(server)
            sql_p50 = statistics.median(page_ms)
            above_floor = (p50 - floor) / sql_p50 if sql_p50 else None
            results.append(
                {
                    "endpoint": path,
                    "query": urlencode({**filters, "page_size": args.page_size}),
                    "mode": "cursor" if sync else "page",
                    "role": role,
                    "member": member.user.username,
                    "total_rows": total_rows,
                    "count_is_exact": None if sync else first["count_is_exact"],
                    "server_p50_ms": round(p50, 2),
                    "server_p95_ms": round(common.percentile(server, 0.95), 2),
                    "floor_p50_ms": round(floor, 2),
                    "page_sql_p50_ms": round(sql_p50, 2),
                    "count_sql_p50_ms": round(statistics.median(count_ms), 2),
                    "rows_sql_p50_ms": round(statistics.median(rows_ms), 2),
                    "ratio": round(p50 / sql_p50, 2) if sql_p50 else None,
                    "ratio_above_floor": None if above_floor is None else round(above_floor, 2),
                    "goal_met": above_floor is not None and above_floor <= GOAL_ABOVE_FLOOR,
                    "queries_page_size_1": queries[1],
                    "queries_page_size_200": queries[200],
                    "queries": statements,
                    "page_sql": page_sql,
                    "count_sql": count_sql,
                    "rows_sql": rows_sql,
                    "plans": plans,
                }
            )
            print(f"  {role:<8} {path:<26} {'cursor' if sync else 'page'} done", file=sys.stderr)

    healthz: dict[str, Any] = {
        "endpoint": "/healthz",
        "server_p50_ms": round(statistics.median(health), 2),
        "server_p95_ms": round(common.percentile(health, 0.95), 2),
        "queries": len(health_queries),
        "broker_checked": bool(os.environ.get("CELERY_BROKER_URL")),
    }

    header = (
        f"{'endpoint':<30} {'role':<8} {'rows':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'SQL p50':>8} {'count':>6} {'ratio':>6} {'-floor':>7} {'q@1':>4} {'q@200':>5}  goal"
    )
    print()
    print(header)
    print("-" * len(header))
    print(
        f"{'/healthz':<30} {'-':<8} {'':>7} {healthz['server_p50_ms']:>8.2f} "
        f"{healthz['server_p95_ms']:>8.2f} {'':>8} {'':>6} {'':>6} {'':>7} "
        f"{healthz['queries']:>4} {healthz['queries']:>5}"
    )
    for role, baseline in baselines.items():
        met = baseline["floor_over_healthz"] <= GOAL_FLOOR_OVER_HEALTHZ
        print(
            f"{'/api/v1/me/ (floor)':<30} {role:<8} {1:>7} {baseline['server_p50_ms']:>8.2f} "
            f"{baseline['server_p95_ms']:>8.2f} {'':>8} {'':>6} {'':>6} {'':>7} "
            f"{baseline['queries']:>4} {baseline['queries']:>5}  "
            f"{baseline['floor_over_healthz']:.2f}x /healthz ({baseline['healthz_p50_ms']:.2f} "
            f"in turns), <= {GOAL_FLOOR_OVER_HEALTHZ:g}x {'met' if met else 'MISSED'}"
        )
    for r in results:
        name = r["endpoint"] + (" sync" if r["mode"] == "cursor" else "")
        rows = "cursor" if r["total_rows"] is None else f"{r['total_rows']:,}"
        if r["count_is_exact"] is False:
            rows = f">{rows}"
        print(
            f"{name:<30} {r['role']:<8} {rows:>7} {r['server_p50_ms']:>8.1f} "
            f"{r['server_p95_ms']:>8.1f} {r['page_sql_p50_ms']:>8.1f} "
            f"{r['count_sql_p50_ms']:>6.1f} {r['ratio']:>6.2f} {r['ratio_above_floor']:>7.2f} "
            f"{r['queries_page_size_1']:>4} {r['queries_page_size_200']:>5}  "
            f"(server - floor) / SQL <= {GOAL_ABOVE_FLOOR:g} {'met' if r['goal_met'] else 'MISSED'}"
        )
    print(
        "\n(SQL p50 = the page's own statements (all but the floor's: transaction, tenant "
        "setting, membership) re-run with a cursor; count = the capped count alone; ratio = "
        "server p50 / SQL p50; -floor = (server p50 - floor p50) / SQL p50; the floor is "
        "/api/v1/me/ of the same member; /healthz is one query without authentication.)"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "generated_at": datetime.now(UTC).isoformat(),
        "database": os.environ["DATABASE_URL"].rsplit("@", 1)[-1],
        "postgres": server_version,
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "tenant": {"slug": SLUG, "id": tenant.pk, "rows": table_rows},
        "generation": generation,
        "personas": {
            "manager": {
                "username": region_manager.user.username,
                "unit": region_manager.org_unit.name,
                "reps_in_subtree": len(reps_by_deals),
            },
            "rep": {"username": rep.user.username, "deals": rep_deals},
        },
        "settings": {
            "repeat": args.repeat,
            "warmup": args.warmup,
            "page_size": args.page_size,
            "gc_thresholds": list(thresholds),
            "debug_while_timing": settings.DEBUG,
            "debug_at_start": debug,
        },
        "healthz": healthz,
        "baselines": baselines,
        "goals": {
            "floor_over_healthz": GOAL_FLOOR_OVER_HEALTHZ,
            "server_minus_floor_over_sql": GOAL_ABOVE_FLOOR,
        },
        "results": results,
    }
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"Wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
