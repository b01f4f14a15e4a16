"""Benchmark: funnel figures and the warning evaluation, against their bare SQL.

    DEBUG=1 .venv/bin/python bench/funnel.py [--reuse] [--repeat 10] [--warmup 2]
                                             [--stage-changes 1000000] [--no-top-up]
                                             [--slow-ms 2000 --slow-repeat 3]
                                             [--only selectors|warnings]

Uses the tenant ``bench`` of ``bench/api_lists.py`` in the database of ``DATABASE_URL``
(default ``crm_bench``), generating it with ``manage.py generate_data`` and the same
defaults when it is missing (500 reps, 200,000 opportunities, 24 months).

``devtools.datagen`` moves deals forward only (3.2 stage changes per deal, ~640,000 for
200,000 deals), below the ~1,000,000 stage changes the issue asks for. Unless
``--reuse`` or ``--no-top-up`` is given, the tenant is topped up to ``--stage-changes``
with back-and-forth moves: in a share of the spans a deal spent in an open stage after
the first (and then left), it slipped back one stage and came back, two stage changes
between the ones that exist. Reach, losses, cycle times, the pipeline and the deals'
current stages are unchanged by construction; time in stage sees the extra spans.
The top-up is idempotent (nothing is added once the count is reached). The warning
rule "behind pace" needs a published plan: a ``won_amount`` plan for the current
fiscal year is decomposed and published once (``Bench funnel plan``).

For the whole tenant (admin) and for one team (its manager, the team's subtree), over
the API's default window (the current fiscal quarter), and for the whole tenant over
the last 365 days, it times ``cohort_conversion``, ``closed_win_rate``,
``loss_by_stage``, ``time_in_stage``, ``cycle_time`` and ``weighted_pipeline``; each
beside its bare SQL: the statements the selector sent (``CaptureQueriesContext``)
re-run on the driver's cursor in the same tenant scope. Then ``evaluate_warnings`` for
the whole tenant, twice: the first run (no alerts yet: it opens them) and the
idempotent re-run, each repetition in a transaction rolled back so every one starts
from the same alerts; the bare SQL is every statement of one run, re-run the same way.

Goals (the issue): each within 2× of its bare SQL, and under a second for the whole
tenant. Prints a table and writes ``bench/results/funnel.json`` (with the captured SQL
and ``EXPLAIN ANALYZE`` of the slowest statement per case). Not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    # Run as a script, this file's directory comes first on sys.path, where ``funnel``
    # would be this file, not the app: import from the project root instead.
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

if TYPE_CHECKING:
    from tenancy.models import Membership, Tenant

SLUG = "bench"
PLAN_NAME = "Bench funnel plan"
TABLES = [
    "crm_opportunity",
    "crm_stagechange",
    "crm_stage",
    "crm_membership",
    "crm_orgunit",
    "crm_customer",
    "crm_payment",
    "crm_visit",
    "crm_activity",
    "crm_lead",
    "targets_targetseries",
    "targets_targetplan",
    "funnel_alert",
    "funnel_warningrule",
]
SELECTORS = [
    "cohort_conversion",
    "closed_win_rate",
    "loss_by_stage",
    "time_in_stage",
    "cycle_time",
    "weighted_pipeline",
]

# Back-and-forth moves: for ``%(pairs)s`` spans in an open stage after the first that the
# deal left later, a move back one (open) stage at 40 % of the span and forward again at
# 70 %. The spans are picked by a fixed scramble of their ids, so a run is repeatable.
TOP_UP_SQL = """
WITH spans AS (
    SELECT sc.id, sc.opportunity_id, sc.to_stage_id, sc.changed_at, sc.amount,
           s.pipeline_id, s."order", s.kind,
           LEAD(sc.changed_at) OVER (
               PARTITION BY sc.opportunity_id ORDER BY sc.changed_at, sc.id) AS left_at
    FROM crm_stagechange sc JOIN crm_stage s ON s.id = sc.to_stage_id
    WHERE sc.tenant_id = %(tenant)s
), chosen AS (
    SELECT sp.opportunity_id, sp.to_stage_id, back.id AS back_stage_id, sp.amount,
           sp.changed_at + (sp.left_at - sp.changed_at) * 0.4 AS back_at,
           sp.changed_at + (sp.left_at - sp.changed_at) * 0.7 AS return_at
    FROM spans sp
    JOIN crm_stage back ON back.pipeline_id = sp.pipeline_id AND back."order" = sp."order" - 1
                       AND back.kind = 'open'
    WHERE sp.kind = 'open' AND sp.left_at IS NOT NULL
    ORDER BY (sp.id * 7919) %% 100003, sp.id
    LIMIT %(pairs)s
)
INSERT INTO crm_stagechange (tenant_id, opportunity_id, from_stage_id, to_stage_id, changed_at,
                             changed_by_id, amount)
SELECT %(tenant)s, c.opportunity_id, move.from_id, move.to_id, move.at, o.owner_id, c.amount
FROM chosen c
JOIN crm_opportunity o ON o.id = c.opportunity_id
CROSS JOIN LATERAL (VALUES (c.to_stage_id, c.back_stage_id, c.back_at),
                           (c.back_stage_id, c.to_stage_id, c.return_at))
    AS move(from_id, to_id, at)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default=SLUG, help="Tenant slug (default %(default)s).")
    parser.add_argument("--reuse", action="store_true", help="Skip data generation.")
    parser.add_argument("--repeat", type=int, default=10, help="Timed runs per case.")
    parser.add_argument("--warmup", type=int, default=2, help="Untimed runs per case.")
    parser.add_argument(
        "--stage-changes",
        type=int,
        default=1_000_000,
        help="Top the tenant's stage changes up to this many (default %(default)s).",
    )
    parser.add_argument("--no-top-up", action="store_true", help="Leave stage changes as they are.")
    parser.add_argument(
        "--slow-ms",
        type=float,
        default=2_000,
        help="A case whose first run takes longer is repeated --slow-repeat times only.",
    )
    parser.add_argument("--slow-repeat", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=["selectors", "warnings"],
        help="Time only the selectors or only the warning evaluation (default: both).",
    )
    generation = parser.add_argument_group("generation (only when the tenant is missing)")
    generation.add_argument("--reps", type=int, default=500)
    generation.add_argument("--customers", type=int, default=50_000)
    generation.add_argument("--opportunities", type=int, default=200_000)
    generation.add_argument("--activities", type=int, default=1_000_000)
    generation.add_argument("--visits", type=int, default=100_000)
    generation.add_argument("--months", type=int, default=24)
    generation.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


# --- data ---------------------------------------------------------------------------------


def top_up_stage_changes(tenant: Tenant, wanted: int) -> dict[str, int]:
    """Add back-and-forth moves until the tenant has ``wanted`` stage changes (see above)."""
    from django.db import connection

    from crm.models import StageChange
    from crm.services import stage_exits_recompute
    from tenancy.scope import tenant_scope

    with tenant_scope(tenant):
        before = StageChange.objects.count()
        pairs = max(0, (wanted - before + 1) // 2)
        if pairs:
            common.log(f"Topping up {before:,} stage changes with {pairs:,} back-and-forth moves …")
            with connection.cursor() as cursor:
                cursor.execute(TOP_UP_SQL, {"tenant": tenant.pk, "pairs": pairs})
            stage_exits_recompute(tenant.pk)
        after = StageChange.objects.count()
    if after < wanted * 0.95:
        common.log(f"Only {after:,} stage changes: too few spans to reach {wanted:,}.")
    return {"before": before, "added": after - before, "after": after}


def published_plan(tenant: Tenant, admin: Membership, fiscal_year: int) -> dict[str, Any]:
    """A published ``won_amount`` plan for ``fiscal_year`` (behind pace reads it)."""
    from django.db import connection

    from crm.models import ProductLine
    from targets import calendar
    from targets.models import PlanStatus, Target, TargetPlan
    from targets.services import DecomposeSettings, plan_create, plan_decompose, plan_publish
    from tenancy.scope import tenant_scope

    with tenant_scope(tenant):
        plan = TargetPlan.objects.filter(fiscal_year=fiscal_year, name=PLAN_NAME).first()
        if plan is None:
            last_year = calendar.fiscal_year(fiscal_year - 1, tenant.fiscal_year_start_month)
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    SELECT COALESCE(SUM(o.amount), 0) FROM crm_opportunity o
                    JOIN crm_stage s ON s.id = o.stage_id
                    WHERE o.tenant_id = %s AND s.kind = 'won'
                      AND o.closed_date BETWEEN %s AND %s
                    """,
                    [tenant.pk, last_year.start, last_year.end],
                )
                (won,) = cursor.fetchone() or (Decimal(0),)
            total = (Decimal(won) * Decimal("1.2") / 10_000).to_integral_value() * 10_000
            plan = plan_create(
                member=admin,
                fiscal_year=fiscal_year,
                metric="won_amount",
                annual_total=max(total, Decimal(10_000_000)),
                name=PLAN_NAME,
            )
        if plan.status == PlanStatus.DRAFT:
            common.log(f"Decomposing and publishing {PLAN_NAME!r} …")
            lines = list(ProductLine.objects.order_by("pk").values_list("pk", flat=True))
            plan_decompose(
                member=admin,
                plan=plan,
                settings=DecomposeSettings(
                    time_method="seasonal",
                    org_methods_by_depth={0: "history"},
                    product_shares=dict.fromkeys(lines, Decimal(1)),
                    new_product_multiplier=Decimal("1.5"),
                ),
            )
            plan = plan_publish(member=admin, plan=plan)
        return {
            "id": plan.pk,
            "fiscal_year": plan.fiscal_year,
            "status": plan.status,
            "annual_total": plan.annual_total,
            "targets": Target.objects.filter(plan=plan).count(),
        }


# --- measuring ----------------------------------------------------------------------------


def per_statement(statements: Sequence[str]) -> list[float]:
    """Milliseconds of each statement, one timed pass."""
    from django.db import connection

    raw = connection.connection.cursor()
    elapsed = []
    for statement in statements:
        started = time.perf_counter()
        raw.execute(statement)
        if raw.description is not None:
            raw.fetchall()
        elapsed.append((time.perf_counter() - started) * 1000)
    raw.close()
    return elapsed


def slowest(statements: Sequence[str]) -> tuple[int, float]:
    """The index of the slowest statement (one timed pass each) and its milliseconds."""
    elapsed = per_statement(statements)
    index = max(range(len(elapsed)), key=elapsed.__getitem__)
    return index, elapsed[index]


def repetitions(args: argparse.Namespace, first_ms: float) -> tuple[int, int]:
    """``(repeat, warmup)``: a case slower than ``--slow-ms`` runs ``--slow-repeat`` times,
    its captured first run serving as the warm-up, so that a run ends in minutes."""
    if first_ms > args.slow_ms:
        return min(args.repeat, args.slow_repeat), 0
    return args.repeat, args.warmup


def measure(
    name: str,
    scope_label: str,
    run: Callable[[], Any],
    args: argparse.Namespace,
    *,
    whole_tenant: bool,
) -> common.Row:
    """Time ``run`` and its captured SQL, inside the caller's tenant scope."""
    started = time.perf_counter()
    result, statements = common.capture(run)
    repeat, warmup = repetitions(args, (time.perf_counter() - started) * 1000)
    samples = common.timed(repeat, warmup, run)
    bare = common.timed(repeat, warmup, partial(common.run_sql, statements))
    p50, bare_p50 = statistics.median(samples), statistics.median(bare)
    index, _ms = slowest(statements)
    met = p50 <= 2 * bare_p50 and (not whole_tenant or p50 < 1000)
    # The issue sets no time for a team; a team slower than the whole tenant's goal is
    # worth saying all the same.
    note = "" if whole_tenant or p50 < 1000 else f"yet {p50 / 1000:.1f} s for one team"
    return common.Row(
        name=name,
        scope=scope_label,
        samples=samples,
        queries=len(statements),
        bare_samples=bare,
        goal="≤ 2× SQL" + (", < 1 s" if whole_tenant else ""),
        met=met,
        note=note,
        extra={
            "result": result,
            "statements": statements,
            "slowest_statement_plan": common.explain(statements[index]),
        },
    )


def measure_write(
    name: str,
    tenant: Tenant,
    run: Callable[[], Any],
    args: argparse.Namespace,
    *,
    before: Callable[[], Any] | None = None,
) -> common.Row:
    """Time a write, each repetition (and its bare SQL) in a transaction rolled back."""

    def prepare() -> None:
        if before is not None:
            before()

    with common.rolled_back(tenant):
        prepare()
        started = time.perf_counter()
        result, statements = common.capture(run)
        repeat, warmup = repetitions(args, (time.perf_counter() - started) * 1000)
    samples: list[float] = []
    bare: list[float] = []
    for attempt in range(warmup + repeat):
        for sink, call in ((samples, run), (bare, partial(common.run_sql, statements))):
            with common.rolled_back(tenant):
                prepare()
                started = time.perf_counter()
                call()
                elapsed = (time.perf_counter() - started) * 1000
            if attempt >= warmup:
                sink.append(elapsed)
    with common.rolled_back(tenant):
        prepare()
        timings = per_statement(statements)
    top = sorted(range(len(statements)), key=lambda i: -timings[i])[:8]
    p50, bare_p50 = statistics.median(samples), statistics.median(bare)
    return common.Row(
        name=name,
        scope="tenant",
        samples=samples,
        queries=len(statements),
        bare_samples=bare,
        goal="≤ 2× SQL, < 1 s",
        met=p50 <= 2 * bare_p50 and p50 < 1000,
        extra={
            "result": result,
            "statements_by_kind": common.statement_kinds(statements, timings),
            "slowest_statements": [
                {"ms": round(timings[i], 2), "sql": common.short_sql(statements[i])} for i in top
            ],
            "statements": [common.short_sql(s) for s in statements[:40]],
        },
    )


def main() -> None:
    args = parse_args()
    common.setup_django()

    from zoneinfo import ZoneInfo

    from django.core.management import call_command
    from django.db.models import Count
    from django.utils import timezone

    from crm.models import Activity, Opportunity, Pipeline, StageChange
    from funnel import selectors
    from funnel.models import Alert
    from funnel.warnings import evaluate_warnings
    from targets.calendar import fiscal_year_of, period_containing
    from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
    from tenancy.scope import tenant_scope

    tenant = Tenant.objects.filter(slug=args.tenant).first()
    existing = 0
    if tenant is not None:
        with tenant_scope(tenant):
            existing = Opportunity.all_objects.count()
    generation: dict[str, Any] = {"reused": bool(existing)}
    if not existing:
        if args.reuse:
            sys.exit(f"No {args.tenant} tenant with data to reuse: run without --reuse.")
        started = time.monotonic()
        call_command(
            "generate_data",
            f"--tenant={args.tenant}",
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
        tenant = Tenant.objects.get(slug=args.tenant)
    assert tenant is not None
    zone = ZoneInfo(tenant.time_zone)
    today = timezone.now().astimezone(zone).date()
    with tenant_scope(tenant):
        admin = Membership.objects.filter(role=Role.ADMIN).order_by("pk").first()
    assert admin is not None
    # Both are no-ops when already done, so a reused tenant is completed too.
    if not args.no_top_up:
        generation["stage_change_top_up"] = top_up_stage_changes(tenant, args.stage_changes)
    generation["plan"] = published_plan(
        tenant, admin, fiscal_year_of(today, tenant.fiscal_year_start_month)
    )
    common.vacuum_analyze(TABLES)

    with tenant_scope(tenant):
        pipeline = Pipeline.objects.get(is_default=True)
        data = {
            "opportunities": Opportunity.all_objects.count(),
            "stage_changes": StageChange.objects.count(),
            "activities": Activity.all_objects.count(),
            "reps": Membership.objects.filter(role=Role.REP, is_active=True).count(),
        }
        # A typical team: the median one by number of deals.
        leaf_depth = max(OrgUnit.objects.values_list("depth", flat=True))
        teams = list(
            OrgUnit.objects.filter(depth=leaf_depth)
            .annotate(deals=Count("members__opportunities"))
            .order_by("deals", "pk")
        )
        team = teams[len(teams) // 2]
        link = OrgUnitManager.objects.filter(org_unit=team).select_related("membership").first()
        manager = link.membership if link is not None else admin
    if data["stage_changes"] < 900_000:
        common.log(
            f"Note: {data['stage_changes']:,} stage changes, far below the issue's ~1,000,000."
        )
    quarter = period_containing(today, "quarter", tenant.fiscal_year_start_month)
    windows = {
        "quarter": selectors.Window(quarter.start, quarter.end, tenant.time_zone),
        "365 days": selectors.Window(today - timedelta(days=364), today, tenant.time_zone),
    }
    cases = [
        ("tenant", selectors.Scope(caller=admin, pipeline=pipeline), windows["quarter"], True),
        (
            "team",
            selectors.Scope(caller=manager, pipeline=pipeline, org_unit=team),
            windows["quarter"],
            False,
        ),
        ("tenant", selectors.Scope(caller=admin, pipeline=pipeline), windows["365 days"], True),
    ]
    common.log(
        f"Tenant {tenant.slug} (id {tenant.pk}): {data}; team {team.name} "
        f"({getattr(team, 'deals', 0):,} deals, manager {manager.pk}); "
        f"quarter {quarter.start}…{quarter.end}"
    )

    rows: list[common.Row] = []
    with tenant_scope(tenant):
        for label, scope, window, whole_tenant in cases if args.only != "warnings" else []:
            span = "quarter" if window is windows["quarter"] else "365 days"
            for name in SELECTORS:
                function = getattr(selectors, name)
                common.log(f"{name} ({label}, {span}) …")
                rows.append(
                    measure(
                        name,
                        f"{label}, {span}",
                        partial(function, scope, window),
                        args,
                        whole_tenant=whole_tenant,
                    )
                )

    alerts: dict[str, int] = {}
    counts_note = ""
    if args.only != "selectors":
        # -- warnings: the first run opens the alerts, the re-run finds them open --
        def forget_alerts() -> None:
            Alert.objects.all().delete()

        with tenant_scope(tenant):
            forget_alerts()  # a first run starts from no alerts
        evaluate = partial(evaluate_warnings, tenant_id=tenant.pk, as_of=today)
        common.log("evaluate_warnings (first run) …")
        first = measure_write(
            "evaluate_warnings (1st run)", tenant, evaluate, args, before=forget_alerts
        )
        with tenant_scope(tenant):
            first_counts = evaluate()  # committed: the alerts the re-run finds
        common.log("evaluate_warnings (re-run) …")
        rerun = measure_write("evaluate_warnings (re-run)", tenant, evaluate, args)
        with tenant_scope(tenant):
            rerun_counts = evaluate()
            alerts = dict(
                Alert.objects.values_list("rule").annotate(n=Count("id")).order_by("rule")
            )
        first.extra["committed_run"] = first_counts
        rerun.extra["committed_run"] = rerun_counts
        first.note = f"opened {first_counts['opened']:,}"
        rerun.note = f"updated {rerun_counts['updated']:,}, opened {rerun_counts['opened']}"
        rows += [first, rerun]

        counts_note = (
            f" evaluate_warnings: each run and its SQL in a transaction rolled back, the 1st "
            f"run from no alerts, the re-run from the {sum(alerts.values()):,} alerts of a "
            f"committed first run: {first_counts}, then {rerun_counts}."
        )

    common.print_table(rows)
    print(
        "\n(p50/p95/max of the call inside the tenant scope; SQL p50 = the statements the "
        "call sent, re-run on a cursor in the same scope; ratio = p50 / SQL p50;"
        f"{counts_note})"
    )
    for row in rows:
        if not row.name.startswith("evaluate_warnings"):
            row.extra["statements"] = [common.short_sql(s) for s in row.extra["statements"]]
    print(common.revision_line())
    common.write_report(
        "funnel",
        {
            "tenant": {"slug": tenant.slug, "id": tenant.pk, **data},
            "generation": generation,
            "team": {
                "id": team.pk,
                "name": team.name,
                "deals": getattr(team, "deals", None),
                "manager": manager.pk,
            },
            "windows": {
                name: {"start": w.start, "end": w.end, "time_zone": w.time_zone}
                for name, w in windows.items()
            },
            "alerts": alerts,
            "settings": {"repeat": args.repeat, "warmup": args.warmup},
            "results": [row.as_json() for row in rows],
        },
    )


if __name__ == "__main__":
    main()
