"""Benchmark: import 100,000 opportunities with history columns (CSV and XLSX), dry run
and confirm, beside a bare ``INSERT … SELECT`` of the same rows; export 200,000 streamed.

    DEBUG=1 .venv/bin/python bench/imports.py [--rows 100000] [--reps 50]

Uses the tenant ``bench-imports`` in the database of ``DATABASE_URL`` (default
``crm_bench``), made when missing: an admin, ``--reps`` reps in one unit, 2,000
customers with external ids. The files have one row per deal: external id, name,
customer (external id), owner (username), stage (60 % won, 10 % lost with a reason,
30 % open), amount, created date and closed date (last year's history).

For each format it times, on one run each (the machine is shared: say so with the
figures):

* ``import_check`` (the dry run: read, parse, check every row, store every outcome);
* ``import_confirm`` (read and check again, then insert the deals and their stage
  changes, committed);
* the bare SQL: the same rows ``COPY``'d into a temporary table (not timed), then one
  ``INSERT … SELECT`` of the deals (joined to customers, members and stages) and their
  stage changes, committed: what PostgreSQL alone needs to store the same rows (the same
  columns, credits and history rows as the import; the table shows both row counts).
  It runs twice, into the empty tables before the imports and after them, and the
  faster of the two is the baseline.

After each import all the tenant's deals (with the first bare insert's: twice
``--rows``, then three times) are exported through the API
(``GET /api/v1/exports/opportunities/?format=…``) and the body consumed chunk by chunk;
the Python heap's peak during the export (``tracemalloc``) at both sizes says whether
memory is flat. The database (``DATABASE_URL``, never ``crm`` or
``test_*``) is made afresh on every run.

Goals (issue 18): import under 2 minutes and within 3× the bare insert; export streamed
with flat memory. Prints a table and writes ``bench/results/imports.json``.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

SLUG = "bench-imports"
HEADER = ["external_id", "name", "customer", "owner", "stage", "amount", "lost_reason",
          "created_at", "closed_date"]  # fmt: skip


def build_tenant(reps: int) -> Any:
    from crm.models import Customer
    from tenancy.models import Membership, Role, Tenant
    from tenancy.scope import platform_scope, tenant_scope
    from tenancy.services import membership_create, tenant_create

    with platform_scope("bench: find the tenant"):
        tenant = Tenant.objects.filter(slug=SLUG).first()
    if tenant is None:
        common.log("Creating the tenant …")
        created = tenant_create(
            name="Bench imports",
            slug=SLUG,
            admin_username="bench-imports-admin",
            admin_email="bench-imports-admin@example.com",
            admin_password="bench-password-1",
        )
        tenant = created.tenant
        with tenant_scope(tenant):
            Customer.objects.bulk_create(
                Customer(tenant=tenant, name=f"客户 {i}", external_id=f"K{i}", level="B")
                for i in range(2000)
            )
    with tenant_scope(tenant):
        from tenancy.models import OrgUnit

        root = OrgUnit.objects.get(parent__isnull=True)
        existing = set(Membership.objects.values_list("user__username", flat=True))
        for i in range(reps):
            if f"bench-imports-rep{i}" not in existing:
                membership_create(
                    tenant=tenant,
                    username=f"bench-imports-rep{i}",
                    role=Role.REP,
                    org_unit=root,
                    start_date=date(2020, 1, 6),
                )
    with tenant_scope(tenant):
        admin = Membership.objects.select_related("tenant", "user").get(
            user__username="bench-imports-admin"
        )
    return tenant, admin


def deal_rows(count: int, prefix: str, reps: int, today: date) -> list[list[Any]]:
    random = Random(18)
    rows: list[list[Any]] = []
    for i in range(count):
        closed = today - timedelta(days=random.randint(30, 700))
        created = closed - timedelta(days=random.randint(5, 120))
        roll = random.random()
        stage, reason, closed_text = "Won", "", closed.isoformat()
        if roll >= 0.7:
            stage, closed_text = random.choice(["Qualification", "Solution", "Quote"]), ""
        elif roll >= 0.6:
            stage, reason = "Lost", "价格 price"
        rows.append(
            [
                f"{prefix}{i}",
                f"商机 Deal {i}",
                f"K{random.randrange(2000)}",
                f"bench-imports-rep{random.randrange(reps)}",
                stage,
                f"{random.randint(1000, 900000)}.{random.randint(0, 99):02d}",
                reason,
                created.isoformat(),
                closed_text,
            ]
        )
    return rows


def csv_file(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def xlsx_file(rows: list[list[Any]]) -> bytes:
    from integrations.exports import xlsx_stream

    return b"".join(xlsx_stream(HEADER, rows))


# The same rows as the import writes, in the same tables: each deal (a win credited to
# its owner and owner's unit, a loss to the owner's unit; entered its stage at the close)
# and its stage changes (a closed deal: created into the pipeline's first open stage,
# left at the close into its closed stage), ids from the table's sequence.
BARE_SQL = """
WITH src AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('crm_opportunity', 'id')) AS id, s.external_id,
        s.name, c.id AS customer_id, m.id AS owner_id, m.org_unit_id, st.pipeline_id,
        st.id AS stage_id, st.kind, f.id AS first_id, s.amount, s.lost_reason,
        s.closed_date, s.created_at,
        (s.closed_date + time '12:00') AT TIME ZONE %(zone)s AS closed_at
    FROM bench_staging s
    JOIN crm_customer c ON c.tenant_id = %(tenant)s AND c.external_id = s.customer
    JOIN auth_user u ON u.username = s.owner
    JOIN crm_membership m ON m.tenant_id = %(tenant)s AND m.user_id = u.id
    JOIN crm_stage st ON st.tenant_id = %(tenant)s AND st.name = s.stage
    CROSS JOIN LATERAL (
        SELECT f.id FROM crm_stage f
        WHERE f.tenant_id = %(tenant)s AND f.pipeline_id = st.pipeline_id AND f.kind = 'open'
        ORDER BY f."order" LIMIT 1) f
), deals AS (
    INSERT INTO crm_opportunity (id, tenant_id, external_id, name, customer_id, owner_id,
        pipeline_id, stage_id, amount, lost_reason, closed_date, created_at, updated_at,
        stage_entered_at, version, forecast_category_override,
        credited_member_id, credited_org_unit_id)
    SELECT id, %(tenant)s, external_id, name, customer_id, owner_id, pipeline_id, stage_id,
        amount, CASE WHEN kind = 'lost' THEN lost_reason ELSE '' END, closed_date,
        LEAST(created_at, closed_at), now(), COALESCE(closed_at, created_at), 1, '',
        CASE WHEN kind = 'won' THEN owner_id END,
        CASE WHEN kind <> 'open' THEN org_unit_id END
    FROM src
)
INSERT INTO crm_stagechange (tenant_id, opportunity_id, from_stage_id, to_stage_id,
    changed_at, exited_at, changed_by_id, amount)
SELECT %(tenant)s, id, NULL, CASE WHEN kind <> 'open' THEN first_id ELSE stage_id END,
    LEAST(created_at, closed_at), closed_at, %(member)s, amount
FROM src
UNION ALL
SELECT %(tenant)s, id, first_id, stage_id, closed_at, NULL, %(member)s, amount
FROM src WHERE kind <> 'open'
"""


def bare_insert(tenant: Any, admin: Any, rows: list[list[Any]]) -> float:
    """COPY the rows into a temporary table (untimed), then time the INSERT … SELECT of
    the deals and their stage changes, committed."""
    from django.db import connection, transaction

    from tenancy.scope import tenant_scope

    with tenant_scope(tenant), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bench_staging (external_id text, name text, customer "
            "text, owner text, stage text, amount numeric, lost_reason text, created_at "
            "timestamptz, closed_date date) ON COMMIT PRESERVE ROWS"
        )
        with cursor.cursor.copy("COPY bench_staging FROM STDIN") as copy:
            for row in rows:
                copy.write_row([*row[:7], f"{row[7]} 12:00+08", row[8] or None])
    started = time.perf_counter()
    with tenant_scope(tenant), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            BARE_SQL, {"tenant": tenant.pk, "member": admin.pk, "zone": tenant.time_zone}
        )
    elapsed = time.perf_counter() - started
    with tenant_scope(tenant), connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_staging")
    return elapsed


def deal_count(tenant: Any) -> int:
    from crm.models import Opportunity
    from tenancy.scope import tenant_scope

    with tenant_scope(tenant):
        return Opportunity.objects.count()


def rows_written(tenant: Any) -> dict[str, tuple[int, int]]:
    """Deals and stage changes per external id prefix (CSV-, XLSX-, B1- and B2- for the
    bare SQL)."""
    from django.db import connection, transaction

    from tenancy.scope import tenant_scope

    with tenant_scope(tenant), transaction.atomic(), connection.cursor() as cursor:
        # The tables were just filled and not analysed: keep the planner off nested loops.
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(
            """
            SELECT split_part(o.external_id, '-', 1), COUNT(DISTINCT o.id), COUNT(sc.id)
            FROM crm_opportunity o LEFT JOIN crm_stagechange sc
                ON sc.tenant_id = o.tenant_id AND sc.opportunity_id = o.id
            WHERE o.tenant_id = %s GROUP BY 1
            """,
            [tenant.pk],
        )
        return {prefix: (deals, changes) for prefix, deals, changes in cursor.fetchall()}


def run_import(tenant: Any, admin: Any, content: bytes, name: str) -> dict[str, float]:
    from django.db import reset_queries

    from integrations.imports import services
    from tenancy.scope import tenant_scope

    with tenant_scope(tenant):
        job = services.import_upload(
            member=admin, kind="opportunities", file_name=name, content=content
        )
    reset_queries()
    started = time.perf_counter()
    with tenant_scope(tenant):
        job = services.import_check(job=job)
    check = time.perf_counter() - started
    assert job.counts["error"] == 0, job.counts
    reset_queries()
    started = time.perf_counter()
    with tenant_scope(tenant):
        job = services.import_confirm(member=admin, job=job)
    confirm = time.perf_counter() - started
    reset_queries()
    return {"check_s": check, "confirm_s": confirm, "rows": job.counts["new"]}


def export(admin: Any, file_format: str) -> dict[str, Any]:
    from rest_framework.test import APIClient

    from tenancy.api.views import issue_tokens

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_tokens(admin)['access']}")
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get("/api/v1/exports/opportunities/", {"format": file_format})
    size = 0
    first_byte = None
    for chunk in response.streaming_content:  # type: ignore[attr-defined]
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"seconds": elapsed, "bytes": size, "peak_mb": peak / 1e6, "first_byte_s": first_byte}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--formats", default="csv,xlsx", help="csv, xlsx or both")
    parser.add_argument("--no-export", action="store_true", help="skip the exports")
    args = parser.parse_args()
    # A fresh database each run: deleting the imported rows again would cost more than
    # importing them (and the figures must not depend on what an earlier run left).
    common.setup_django(fresh=True)
    from django.conf import settings

    from tenancy.dates import tenant_today

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    tenant, admin = build_tenant(args.reps)
    today = tenant_today(tenant)
    table: list[common.Row] = []
    report: dict[str, Any] = {"rows": args.rows, "shared_machine": True}
    exports: list[tuple[int, dict[str, Any]]] = []
    formats = [f for f in (("csv", csv_file), ("xlsx", xlsx_file)) if f[0] in args.formats]
    common.log("Bare INSERT … SELECT into the empty tables …")
    before = bare_insert(tenant, admin, deal_rows(args.rows, "B1-", args.reps, today))
    common.log(f"bare INSERT … SELECT before the imports: {before:.2f} s")
    for file_format, content_of in formats:
        rows = deal_rows(args.rows, f"{file_format.upper()}-", args.reps, today)
        content = content_of(rows)
        common.log(f"Importing {len(rows):,} deals from {file_format} ({len(content):,} bytes) …")
        figures = run_import(tenant, admin, content, f"deals.{file_format}")
        common.log(f"{file_format}: {figures}")
        total = figures["check_s"] + figures["confirm_s"]
        report[file_format] = {**figures, "file_bytes": len(content)}
        table.append(
            common.Row(
                f"dry run ({file_format})", f"{args.rows:,} rows", [figures["check_s"] * 1000], None
            )  # fmt: skip
        )
        table.append(
            common.Row(
                f"confirm ({file_format})",
                f"{args.rows:,} rows",
                [figures["confirm_s"] * 1000],
                None,
            )  # fmt: skip
        )
        table.append(
            common.Row(
                f"dry run + confirm ({file_format})",
                f"{args.rows:,} rows",
                [total * 1000],
                None,
                goal="< 120 s" if args.rows >= 100_000 else "",
                met=total < 120 if args.rows >= 100_000 else None,
            )
        )
        total = deal_count(tenant)
        common.log(f"Exporting {total:,} deals …")
        for export_format in () if args.no_export else ("csv", "xlsx"):
            figures = export(admin, export_format)
            exports.append((total, figures))
            report[f"export_{export_format}_{total}"] = figures
            table.append(
                common.Row(
                    f"export ({export_format})",
                    f"{total:,} rows",
                    [figures["seconds"] * 1000],
                    None,
                    note=f"peak heap {figures['peak_mb']:.1f} MB, first byte "
                    f"{figures['first_byte_s'] * 1000:.0f} ms, {figures['bytes']:,} bytes",
                )
            )
    sizes = sorted({n for n, _figures in exports})
    small = max((f["peak_mb"] for n, f in exports if n == sizes[0]), default=0.0)
    large = max((f["peak_mb"] for n, f in exports if n == sizes[-1]), default=0.0)
    report["export_peak_mb"] = {"rows": small, "twice_the_rows": large}
    common.log("Bare INSERT … SELECT after the imports …")
    after = bare_insert(tenant, admin, deal_rows(args.rows, "B2-", args.reps, today))
    common.log(f"bare INSERT … SELECT after the imports: {after:.2f} s")
    bare = min(before, after)
    report["bare_insert_s"] = {"before": before, "after": after, "baseline": bare}
    written = rows_written(tenant)
    report["rows_written"] = written
    for file_format, _content_of in formats:
        confirm = report[file_format]["confirm_s"]
        table.append(
            common.Row(
                f"confirm ({file_format}) vs bare",
                f"{args.rows:,} rows",
                [confirm * 1000],
                None,
                bare_samples=[bare * 1000],
                goal="≤ 3× bare insert",
                met=confirm <= 3 * bare,
                note="deals, stage changes written: import {} / bare {}".format(
                    written[file_format.upper()], written["B1"]
                ),
            )
        )
    if sizes:  # not measured with --no-export
        table.append(
            common.Row(
                "export memory",
                f"{sizes[0]:,} → {sizes[-1]:,} rows",
                [0.0],
                None,
                goal="flat",
                met=large < small * 1.5 + 2,
                note=f"peak heap {small:.1f} MB → {large:.1f} MB",
            )
        )
    common.print_table(table)
    print(common.revision_line())
    print("Shared machine (2 cores, other jobs running): one run of each, not a median.")
    common.write_report("imports", {"figures": report, "table": [row.as_json() for row in table]})


if __name__ == "__main__":
    main()
