"""Benchmark: a 500-rep tenant's whole night and its morning digests, each step beside the
bare SQL of its aggregates, and the peak memory of the process running them as the data
doubles.

    DEBUG=1 .venv/bin/python bench/nightly.py [--repeat 3] [--warmup 1]
        [--reps 500 --opportunities 200000 --activities 1000000]

Uses (generating with ``manage.py generate_data`` when missing) two tenants in the
database of ``DATABASE_URL`` (default ``crm_bench``): ``bench-night`` with ``--reps``
reps, ``--opportunities`` opportunities and ``--activities`` activities over 12 months,
and ``bench-night-half`` with the same reps and half the records. Each gets what the
night reads: a published ``won_amount`` plan of the current fiscal year (the targets
benchmark's decomposition), a commission plan on the root unit (``bench/incentives.py``'s)
and point rules for every event.

Each tenant's night runs in a child process of its own (a worker's pool child does the
same: one process running the steps eagerly), for the eve of the tenant's today:

* every registered step of the night in its order (``tenancy.nightly.steps()``: snapshots,
  warnings, points catch-up, leaderboards, draft statements, the digests' preparation),
  its task body run inside the tenant's scope;
* ``digests (prepare + send)``: every member's digest of today prepared and sent (claim,
  in-app notification, rendering, mail on Django's in-memory backend), the day's digests
  and their notifications deleted before each run.

Beside each: its bare SQL, every statement the step sent (its aggregates and its bulk
writes) re-run as is on the driver's cursor in a transaction rolled back, or its reads
alone when a write does not replay (the table says which); the reads alone are reported
too. The child reports its peak RSS (``ru_maxrss``) after each step; the parent
compares the two tenants' peaks. Goals (issue #14): each step ≤ 2× its bare SQL, the
digests of 500 members under 10 s, the peak RSS at full size ≤ 1.2× the half size's.

Prints a table and writes ``bench/results/nightly.json``. Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    # Run as a script, this file's directory comes first on sys.path: import from the root.
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

FULL, HALF = "bench-night", "bench-night-half"
POINT_EVENTS = {
    "visit_verified": 5,
    "lead_created": 2,
    "lead_converted": 5,
    "opportunity_created": 3,
    "stage_advanced": 2,
    "deal_won": 20,
    "payment_received": 10,
    "activity_done": 1,
}
TABLES = [
    "crm_opportunity",
    "crm_activity",
    "crm_payment",
    "crm_visit",
    "crm_stagechange",
    "crm_membership",
    "targets_targetseries",
    "targets_achievementsnapshot",
    "funnel_alert",
    "incentives_pointentry",
    "incentives_leaderboardentry",
    "incentives_commissionstatement",
    "incentives_statementline",
    "crm_digest",
    "crm_notification",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="Timed runs per step.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed runs per step.")
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--activities", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a tenant's slug: run its night
    return parser.parse_args()


# --- the tenants -----------------------------------------------------------------------------


def generate(slug: str, args: argparse.Namespace, share: int) -> float:
    """``generate_data`` for the tenant (``share``: 1 full, 2 half); seconds taken."""
    from django.core.management import call_command

    started = time.monotonic()
    call_command(
        "generate_data",
        tenant=slug,
        reps=args.reps,
        customers=20_000 // share,
        opportunities=args.opportunities // share,
        activities=args.activities // share,
        visits=20_000 // share,
        months=12,
        seed=11,
    )
    return time.monotonic() - started


def equip(slug: str) -> dict[str, Any]:
    """What the night reads: a published plan, a commission plan, point rules."""
    from bench import incentives as incentives_bench
    from crm.models import Opportunity
    from incentives.models import PointRule
    from targets.calendar import fiscal_year_of
    from tenancy.dates import tenant_today
    from tenancy.models import Membership, OrgUnit, Role, Tenant
    from tenancy.scope import tenant_scope

    tenant = Tenant.objects.get(slug=slug)
    with tenant_scope(tenant):
        admin = Membership.objects.get(role=Role.ADMIN, user__username=f"{slug}-admin")
        root = OrgUnit.objects.get(parent__isnull=True)
        fiscal_year = fiscal_year_of(tenant_today(tenant), tenant.fiscal_year_start_month)
        plan = incentives_bench.published_plan(tenant, admin, fiscal_year)
        incentives_bench.commission_plan(admin, root)
        for event, points in POINT_EVENTS.items():
            PointRule.objects.get_or_create(
                tenant=tenant, event=event, defaults={"points": points, "daily_cap": 200}
            )
        return {
            "opportunities": Opportunity.all_objects.count(),
            "members": Membership.objects.filter(is_active=True).count(),
            "plan": plan.pk,
        }


# --- a night, in a child process -------------------------------------------------------------


def _reads(statements: list[str]) -> list[str]:
    """The statements that read (the aggregates), not those that write."""
    writes = ("INSERT ", "UPDATE ", "DELETE ")
    return [
        statement
        for statement in statements
        if statement.lstrip()[:6].upper() in ("SELECT", "WITH")
        and not (statement.lstrip()[:4].upper() == "WITH" and any(w in statement for w in writes))
    ]


def _replayable(statements: list[str]) -> list[str]:
    """Every statement but the scope's own ``BEGIN; SET LOCAL …`` (the replay
    runs inside a scope of its own) and savepoints."""
    skip = ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")
    return [s for s in statements if not s.lstrip().upper().startswith(skip)]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(args: argparse.Namespace) -> None:
    """Run every step of the tenant's night, then the digests; print JSON on stdout."""
    from datetime import timedelta

    from django.conf import settings

    from crm import digest
    from crm.models import Digest, Notification
    from tenancy import nightly
    from tenancy.dates import tenant_today
    from tenancy.models import Tenant
    from tenancy.scope import tenant_scope

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    tenant = Tenant.objects.get(slug=args.child)
    today = tenant_today(tenant)
    eve = (today - timedelta(days=1)).isoformat()
    results: list[dict[str, Any]] = []
    started_rss = _rss_mb()

    def clear_digests() -> None:
        with tenant_scope(tenant):
            Digest.objects.filter(local_date=today).delete()
            Notification.objects.filter(kind="digest").delete()

    def measure(name: str, run: Any, before: Any = None) -> None:
        common.log(f"{args.child}: {name} …")
        samples = common.timed(args.repeat, args.warmup, run, before=before)
        if before is not None:
            before()
        result, statements = common.capture(run)
        reads = _reads(statements)

        def replay(chosen: list[str]) -> None:
            with common.rolled_back(tenant):
                common.run_sql(chosen)

        # The bare SQL is every statement the step sent, writes included, replayed in a
        # transaction rolled back; should a write not replay (it meets a row it wrote),
        # the reads alone.
        everything = _replayable(statements)
        try:
            replay(everything)
            bare_statements, bare_kind = everything, "all statements"
        except Exception as error:  # noqa: BLE001 - reported, then the reads alone
            common.log(f"  the writes do not replay ({type(error).__name__}): reads only")
            bare_statements, bare_kind = reads, "reads only"
        bare_samples = common.timed(args.repeat, args.warmup, lambda: replay(bare_statements))
        read_samples = common.timed(args.repeat, args.warmup, lambda: replay(reads))
        results.append(
            {
                "name": name,
                "samples": samples,
                "bare_samples": bare_samples,
                "bare_kind": bare_kind,
                "reads_samples": read_samples,
                "queries": len(statements),
                "reads": len(reads),
                "rss_mb": round(_rss_mb(), 1),
                "result": result if isinstance(result, dict) else None,
                "kinds": common.statement_kinds(statements),
            }
        )

    for step in nightly.steps():

        def run(step: Any = step) -> Any:
            with tenant_scope(tenant):
                return step.task.run(tenant.pk, as_of=eve)

        before = clear_digests if step.order == nightly.Order.DIGESTS else None
        measure(f"night: {step.name}", run, before)

    def digests() -> dict[str, int]:
        with tenant_scope(tenant):
            prepared = digest.prepare_digests(tenant, today)
        sent = digest.send_pending(tenant, today)
        return {**prepared, **sent}

    measure("digests (prepare + send)", digests, clear_digests)
    clear_digests()
    print(
        json.dumps(
            {
                "tenant": args.child,
                "as_of": eve,
                "rss_start_mb": round(started_rss, 1),
                "rss_peak_mb": round(_rss_mb(), 1),
                "steps": results,
            },
            default=str,
        )
    )


def night_in_child(slug: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        slug,
        f"--repeat={args.repeat}",
        f"--warmup={args.warmup}",
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr[-4000:] if done.returncode else "")
    if done.returncode:
        sys.exit(f"The night of {slug} failed (exit {done.returncode}).")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- the parent -------------------------------------------------------------------------------


def main() -> None:
    args = parse_args()
    common.setup_django()
    if args.child:
        run_child(args)
        return

    from crm.models import Opportunity
    from tenancy.models import Tenant
    from tenancy.scope import tenant_scope

    generation: dict[str, Any] = {}
    for slug, share in ((FULL, 1), (HALF, 2)):
        tenant = Tenant.objects.filter(slug=slug).first()
        existing = 0
        if tenant is not None:
            with tenant_scope(tenant):
                existing = Opportunity.all_objects.count()
        if not existing:
            common.log(f"Generating {slug} …")
            generation[slug] = {"seconds": round(generate(slug, args, share), 1)}
        generation.setdefault(slug, {"reused": True}).update(equip(slug))
    common.vacuum_analyze(TABLES)

    nights = {slug: night_in_child(slug, args) for slug in (HALF, FULL)}
    rows: list[common.Row] = []
    for slug in (FULL, HALF):
        members = generation[slug]["members"]
        for step in nights[slug]["steps"]:
            row = common.Row(
                name=step["name"],
                scope=f"{slug} ({members} members)",
                samples=step["samples"],
                queries=step["queries"],
                bare_samples=step["bare_samples"] or None,
                note=f"bare: {step['bare_kind']}; reads alone "
                f"{statistics.median(step['reads_samples']):.0f} ms",
                extra={
                    "bare_kind": step["bare_kind"],
                    "reads_alone": common.summary(step["reads_samples"]),
                    "reads": step["reads"],
                    "rss_mb": step["rss_mb"],
                    "result": step["result"],
                    "kinds": step["kinds"],
                },
            )
            ratio = row.ratio
            if step["name"].startswith("digests"):
                row.goal = "< 10 s"
                row.met = row.p50 < 10_000
            else:
                row.goal = "≤ 2× SQL"
                row.met = ratio is not None and ratio <= 2.0
            rows.append(row)
    full_peak, half_peak = nights[FULL]["rss_peak_mb"], nights[HALF]["rss_peak_mb"]
    growth = full_peak / half_peak if half_peak else None
    common.print_table(rows)
    print(
        f"\nPeak RSS of the process running the night and the digests: {HALF} "
        f"{half_peak:.1f} MB, {FULL} {full_peak:.1f} MB: ×{growth:.2f} as the data doubles "
        f"(goal ≤ 1.2: {'met' if growth is not None and growth <= 1.2 else 'MISSED'})"
    )
    print(common.revision_line())
    common.write_report(
        "nightly",
        {
            "generation": generation,
            "nights": {
                slug: {k: v for k, v in night.items() if k != "steps"}
                for slug, night in nights.items()
            },
            "rss_growth": None if growth is None else round(growth, 3),
            "results": [row.as_json() for row in rows],
        },
    )


if __name__ == "__main__":
    main()
