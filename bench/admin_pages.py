"""Benchmark: admin changelist pages on a small and a large tenant (issue #12 item 3).

    DEBUG=1 .venv/bin/python bench/admin_pages.py [--small 2000] [--large 100000]
                                                  [--repeat 30] [--warmup 3]

Generates, when missing, two tenants in the database of ``DATABASE_URL`` (default
``crm_bench``) with ``manage.py generate_data``: ``admin-2k`` and ``admin-100k``
(``--small`` / ``--large`` opportunities, 100 reps, a customer per four deals, two
activities and half a visit per deal, 24 months, seed 1). Then, logged in as each
tenant's admin (a session, as in a browser), times the first page of the opportunity
changelist, the same page filtered to open deals, and the customer changelist, through
Django's test client (middleware, session, tenant scope, admin, templates, real
PostgreSQL); beside each, its bare SQL (the statements of the page re-run on the
driver's cursor in the same tenant scope).

The goal: each page on the large tenant within 1.5x of the same page on the small one
(the changelists count at most 1,001 rows and skip the unfiltered total). Prints a
table and writes ``bench/results/admin_pages.json``. Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

GOAL = 1.5
PAGES = [
    ("opportunities", "/admin/crm/opportunity/"),
    ("open opportunities", "/admin/crm/opportunity/?stage__kind__exact=open"),
    ("customers", "/admin/crm/customer/"),
]
TABLES = ["crm_opportunity", "crm_customer", "crm_stagechange", "crm_activity", "crm_visit"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2_000, help="Deals of the small tenant.")
    parser.add_argument("--large", type=int, default=100_000, help="Deals of the large tenant.")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    return parser.parse_args()


def slug_for(deals: int) -> str:
    return f"admin-{deals // 1000}k" if deals >= 1000 else f"admin-{deals}"


def ensure_tenant(deals: int) -> Any:
    from django.core.management import call_command

    from crm.models import Opportunity
    from tenancy.models import Tenant
    from tenancy.scope import tenant_scope

    slug = slug_for(deals)
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is not None:
        with tenant_scope(tenant):
            if Opportunity.all_objects.exists():
                return tenant
    common.log(f"Generating {slug} ({deals:,} deals) …")
    started = time.monotonic()
    call_command(
        "generate_data",
        f"--tenant={slug}",
        f"--name=Admin bench {deals:,}",
        "--reps=100",
        f"--customers={max(deals // 4, 1)}",
        f"--opportunities={deals}",
        f"--activities={deals * 2}",
        f"--visits={max(deals // 2, 1)}",
        "--months=24",
        "--seed=1",
        stderr=sys.stderr,
    )
    common.log(f"  {slug} in {time.monotonic() - started:.0f} s")
    return Tenant.objects.get(slug=slug)


def main() -> None:
    args = parse_args()
    common.setup_django()

    from django.test import Client

    from tenancy.scope import tenant_scope

    tenants = {size: ensure_tenant(size) for size in (args.small, args.large)}
    common.vacuum_analyze(TABLES)
    # Every table, the small ones too: with stale statistics of users, members and
    # stages (a tenant just generated) the planner joins all 100,000 deals before it
    # sorts them for a page of 100 (2.2 s instead of 9 ms, measured).
    common.owner_execute(["ANALYZE"])

    rows: list[common.Row] = []
    measured: dict[tuple[str, int], common.Row] = {}
    for size, tenant in tenants.items():
        client = Client(headers={"Accept-Language": "en"})
        assert client.login(username=f"{tenant.slug}-admin", password="demo")
        for name, url in PAGES:

            def get(client: Client = client, url: str = url) -> Any:
                response = client.get(url)
                assert response.status_code == 200, response.content[:300]
                return response

            get()  # the session's first page picks its tenant once: not the page's cost
            _, statements = common.capture(get)
            samples = common.timed(args.repeat, args.warmup, get)
            page_sql = [
                s
                for s in statements
                if s.split()[0] not in ("BEGIN", "BEGIN;", "COMMIT", "SAVEPOINT", "UPDATE")
            ]
            with tenant_scope(tenant):
                bare = common.timed(args.repeat, args.warmup, partial(common.run_sql, page_sql))
            counts = [s for s in statements if "COUNT(" in s]
            row = common.Row(
                name=name,
                scope=f"{size:,} deals",
                samples=samples,
                queries=len(statements),
                bare_samples=bare,
                extra={
                    "url": url,
                    "tenant": tenant.slug,
                    "count_statements": [common.short_sql(s) for s in counts],
                    "statements": common.statement_kinds(statements),
                    "sql": [common.short_sql(s) for s in statements],
                },
            )
            measured[(name, size)] = row
            rows.append(row)
            common.log(f"  {name} at {size:,} deals: {row.p50:.1f} ms")

    for name, _url in PAGES:
        small, large = measured[(name, args.small)], measured[(name, args.large)]
        growth = large.p50 / small.p50
        large.goal = f"{growth:.2f}x the {args.small:,}-deal page, <= {GOAL:g}x"
        large.met = growth <= GOAL
        large.extra["growth"] = round(growth, 2)

    common.print_table(rows)
    print(
        "\n(p50 = the page through the test client with a session; SQL p50 = its "
        "statements re-run on the driver's cursor; ratio = p50 / SQL p50.)"
    )
    print(common.revision_line())
    common.write_report(
        "admin_pages",
        {
            "settings": vars(args),
            "goal": f"each page at {args.large:,} deals within {GOAL:g}x of {args.small:,}",
            "rows": [row.as_json() for row in rows],
        },
    )


if __name__ == "__main__":
    main()
