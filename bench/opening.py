"""Benchmark: the server's side of the message that opens a request's transaction.

    DEBUG=1 .venv/bin/python bench/opening.py [--repeat 2000] [--gap-us 1000]

Every authenticated request opens its transaction with one message (``tenancy.scope``):
``BEGIN``, the tenant settings, and the credential's membership
(``EXECUTE crm_member(…)``). This times that message's round trip on the driver's own
connection, as the application role, for the ways of making the settings, beside
``SELECT 1`` (what ``/healthz`` sends):

* ``SELECT set_config(…, true), set_config(…, true)`` (what the scope sent before): a
  query the server plans and runs, with a snapshot and a row sent back;
* ``SET LOCAL …; SET LOCAL …`` (what it sends now, ``tenancy.scope.begin_with_settings_sql``):
  utility commands, none of that.

Each message is timed alone, then its transaction is committed untimed; the cases are
timed in turns (``common.interleaved``), with ``--gap-us`` of Python work before each
message, as a request does its own work between round trips (back to back, the server
stays warm and every case looks cheaper). It needs a tenant with a membership: the one
``bench/api_lists.py`` generates in ``crm_bench`` (``DATABASE_URL`` says otherwise),
else the first membership found. Prints a table and writes
``bench/results/opening.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    ROOT = Path(__file__).resolve().parent.parent
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

#: The settings as the scope made them before ``SET LOCAL``, for the comparison.
SELECT_SETTINGS = (
    "BEGIN; SELECT set_config('app.tenant_id', '{tenant}', true), "
    "set_config('app.rls_bypass', 'off', true)"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--gap-us", type=int, default=1000, help="Python work before each timed message."
    )
    return parser.parse_args()


def _busy(microseconds: int) -> None:
    end = time.perf_counter() + microseconds / 1e6
    while time.perf_counter() < end:
        pass


def main() -> None:
    args = parse_args()
    common.setup_django()
    import psycopg
    from django.conf import settings
    from psycopg.pq import ExecStatus, TransactionStatus

    from tenancy.member_loader import PREPARED_NAME, _statement
    from tenancy.models import Membership
    from tenancy.scope import begin_with_settings_sql, platform_scope

    with platform_scope("bench: a membership to read"):
        member = Membership.objects.order_by("tenant_id", "pk").first()
    if member is None:
        sys.exit("No membership in this database: run bench/api_lists.py first.")
    tenant, membership = member.tenant_id, member.pk

    raw = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    pgconn = raw.pgconn
    pgconn.exec_(f"SET ROLE {settings.DATABASE_APP_ROLE}".encode())
    prepared = pgconn.exec_(_statement().prepare.encode())
    if prepared.status != ExecStatus.COMMAND_OK:
        sys.exit(f"Could not prepare the membership's statement: {prepared.error_message!r}")
    execute = f"EXECUTE {PREPARED_NAME}({tenant}, {membership})"
    select_settings = SELECT_SETTINGS.format(tenant=tenant)
    set_local = begin_with_settings_sql(tenant, bypass=False)  # what the scope sends
    before, after = (
        "BEGIN; SELECT set_config ×2; EXECUTE member",
        "BEGIN; SET LOCAL ×2; EXECUTE member",
    )
    messages = {
        "SELECT 1 (/healthz)": "SELECT 1",
        "BEGIN; SELECT set_config ×2": select_settings,
        "BEGIN; SET LOCAL ×2": set_local,
        before: f"{select_settings}; {execute}",
        after: f"{set_local}; {execute}",
    }

    def timing(message: bytes) -> float:
        _busy(args.gap_us)
        started = time.perf_counter()
        result = pgconn.exec_(message)
        took = (time.perf_counter() - started) * 1000
        if result.status not in (ExecStatus.TUPLES_OK, ExecStatus.COMMAND_OK):
            sys.exit(f"{message!r} failed: {result.error_message!r}")
        if pgconn.transaction_status != TransactionStatus.IDLE:
            pgconn.exec_(b"COMMIT")
        return took

    runs: dict[str, Callable[[], object]] = {
        name: partial(timing, sql.encode()) for name, sql in messages.items()
    }
    common.log(f"Timing {len(runs)} messages × {args.repeat} in turns …")
    samples = common.interleaved(args.repeat, args.warmup, runs)
    raw.close()

    healthz = statistics.median(samples["SELECT 1 (/healthz)"])
    results: list[dict[str, Any]] = [
        {
            "message": name,
            "statements": messages[name].count(";") + 1,
            "p50_us": round(statistics.median(values) * 1000),
            "p25_us": round(common.percentile(values, 0.25) * 1000),
            "p75_us": round(common.percentile(values, 0.75) * 1000),
            "over_select_1": round(statistics.median(values) / healthz, 2),
        }
        for name, values in samples.items()
    ]
    width = max(len(row["message"]) for row in results)
    header = f"{'message':<{width}}  {'p25 µs':>7} {'p50 µs':>7} {'p75 µs':>7}  ÷ SELECT 1"
    print()
    print(header)
    print("-" * len(header))
    for row in results:
        print(
            f"{row['message']:<{width}}  {row['p25_us']:>7} {row['p50_us']:>7} "
            f"{row['p75_us']:>7}  {row['over_select_1']:>9.2f}"
        )
    p50 = {row["message"]: row["p50_us"] for row in results}
    print(
        f"\nThe opening message: {p50[before]} µs with SELECT set_config, {p50[after]} µs "
        f"with SET LOCAL ({p50[after] - p50[before]:+} µs). {common.revision_line()}"
    )
    common.write_report(
        "opening",
        {"gap_us": args.gap_us, "repeat": args.repeat, "warmup": args.warmup, "results": results},
    )


if __name__ == "__main__":
    main()
