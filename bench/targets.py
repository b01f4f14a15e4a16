"""Benchmark: decompose a 2,000-rep tree and compute its achievement, against the bare SQL.

    DEBUG=1 .venv/bin/python bench/targets.py [--reuse] [--repeat 5] [--warmup 1]
                                              [--reps 2000 --opportunities 200000 ...]

Generates (or, with ``--reuse``, reuses) the tenant ``bench-targets`` in the database of
``DATABASE_URL`` (default ``crm_bench``): a depth-4 org tree, company → 8 regions → 5
areas each → 6 teams each (240 teams), a manager per unit, 2,000 active reps dealt round
the teams (15 % still ramping up), bulk-inserted like ``devtools.datagen.build_org``; then
24 months of history through ``devtools.datagen.generate_history`` (200,000 opportunities
with their stage changes and payments, so last fiscal year exists for the seasonal and
history methods) and a fifth, new product line that has no sales yet.

On a draft plan of the current fiscal year (``won_amount``) it times:

* ``plan_decompose`` with ``dry_run=True`` (the arithmetic alone) and with
  ``dry_run=False`` (arithmetic, replacing the draft's targets, commit): seasonal time
  split, history org split at the top (regions), equal below, product shares over the
  five lines with a 1.5 multiplier on new lines, ramp on. Every saved run replaces the
  targets of the previous one: ~14,000 series (twelve months per assignee and product
  line) that read as ~233,000 period targets. The bare SQL is the statements of one run
  re-executed in a transaction rolled back (so the same rows are deleted and inserted
  each time), plus ``SET CONSTRAINTS ALL IMMEDIATE``: the foreign keys are deferred, and
  the checks a COMMIT would run belong to the cost of the save.
* ``plan_achievements(plan, as_of=today, nodes)`` for the whole tree as the admin and
  the API ask for it (every year node without a product line), for every month node
  without a product line, and for every year node of every product line; beside the
  bare SQL: the plain aggregates of the metric and of the open pipeline over the same
  rows, per member, unit, product line and month (``monthly_actuals`` and
  ``open_pipeline``), whatever ``plan_achievements`` itself sends.

Goals (the issue): decomposition and save under 2 s with fewer than 50 queries;
whole-tree achievement in fewer than 10 queries and within 3× of the bare aggregate.

Prints a table and writes ``bench/results/targets.json`` (timings, query counts, the
captured SQL, per-statement bare timings and ``EXPLAIN ANALYZE`` of the aggregates).
Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from random import Random
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    # Run as a script, this file's directory comes first on sys.path, where ``targets``
    # would be this file, not the app: import from the project root instead.
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

if TYPE_CHECKING:
    from bench.common import Row
    from targets.models import TargetPlan
    from targets.services import DecomposeSettings
    from tenancy.models import Membership, OrgUnit, Tenant

SLUG = "bench-targets"
PLAN_NAME = "Bench decomposition"
NEW_LINE = "物联网平台 IoT Platform"  # launched this year: no history at all
PRODUCT_SHARES = [35, 30, 20, 10, 5]  # by product line, in id order
TABLES = [
    "crm_orgunit",
    "crm_membership",
    "crm_customer",
    "crm_opportunity",
    "crm_stagechange",
    "crm_payment",
    "crm_productline",
    "targets_targetseries",
    "targets_targetplan",
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenant", default=SLUG, help="Tenant slug (default %(default)s).")
    parser.add_argument("--reps", type=int, default=2_000)
    parser.add_argument("--regions", type=int, default=8)
    parser.add_argument("--areas", type=int, default=5, help="Areas per region.")
    parser.add_argument("--teams", type=int, default=6, help="Teams per area.")
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--visits", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="Use the existing tenant.")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs per case.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed runs per case.")
    parser.add_argument(
        "--profile", action="store_true", help="Print a cProfile of one run of each case."
    )
    return parser.parse_args()


# --- data ---------------------------------------------------------------------------------


def build_tree(
    tenant: Tenant,
    root: OrgUnit,
    *,
    reps: int,
    regions: int,
    areas: int,
    teams: int,
    seed: int,
    today: date,
) -> dict[str, int]:
    """Company → regions → areas → teams, a manager per unit, ``reps`` reps round the teams.

    Units go through ``org_unit_create`` (a few hundred); users, memberships and manager
    links are bulk-inserted with one password hashed once, as ``devtools.datagen.build_org``
    does. Team names carry their city, which ``devtools.datagen.existing_reps`` reads back.
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from devtools.datagen import GIVEN_NAMES, REGIONS, SURNAMES
    from tenancy.models import Membership, OrgUnitManager, Role
    from tenancy.scope import tenant_scope
    from tenancy.services import org_unit_create

    rng = Random(seed)
    slug = tenant.slug
    people: list[tuple[str, str, OrgUnit, str, date]] = []  # username, role, unit, title, start
    team_units: list[OrgUnit] = []
    counts: Counter[str] = Counter()

    def manager(prefix: str, unit: OrgUnit, title: str, low: int, high: int) -> None:
        counts[prefix] += 1
        start = today - timedelta(days=rng.randint(low, high))
        people.append((f"{slug}-{prefix}{counts[prefix]:03d}", Role.MANAGER, unit, title, start))

    with tenant_scope(tenant):
        for region_index in range(regions):
            zh, en, cities = REGIONS[region_index % len(REGIONS)]
            lap = region_index // len(REGIONS)
            suffix = f" {lap + 1}" if lap else ""
            region = org_unit_create(tenant=tenant, name=f"{zh}{suffix} {en}{suffix}", parent=root)
            manager("rm", region, "大区总监 Regional Director", 1500, 4000)
            for area_index in range(areas):
                area = org_unit_create(
                    tenant=tenant,
                    name=f"{zh}{suffix}{area_index + 1}片区 {en}{suffix} Area {area_index + 1}",
                    parent=region,
                )
                manager("am", area, "片区经理 Area Manager", 900, 3000)
                for team_index in range(teams):
                    position = area_index * teams + team_index
                    city_zh, city_en, _latitude, _longitude = cities[position % len(cities)]
                    number = position // len(cities) + 1 + lap * 10
                    team = org_unit_create(
                        tenant=tenant,
                        name=f"{city_zh}{number}组 {city_en} Team {number}",
                        parent=area,
                    )
                    manager("tm", team, "销售经理 Sales Manager", 600, 2500)
                    team_units.append(team)
        # Reps are dealt round the teams, so team sizes differ by one at most.
        for rep_index in range(reps):
            joined_lately = rng.random() < 0.15  # still ramping up
            days = rng.randint(45, 330) if joined_lately else rng.randint(400, 2600)
            people.append(
                (
                    f"{slug}-rep{rep_index + 1:04d}",
                    Role.REP,
                    team_units[rep_index % len(team_units)],
                    "销售代表 Sales Rep",
                    today - timedelta(days=days),
                )
            )

    user_model = get_user_model()
    usernames = [person[0] for person in people]
    taken = list(user_model.objects.filter(username__in=usernames).values_list("username")[:5])
    if taken:
        sys.exit(f"Usernames already taken: {taken}; pass --tenant with another slug.")
    password_hash = make_password("demo")
    users = []
    for username in usernames:
        (surname_zh, surname_en), (given_zh, given_en) = (
            rng.choice(SURNAMES),
            rng.choice(GIVEN_NAMES),
        )
        users.append(
            user_model(
                username=username,
                email=f"{username}@{slug}.example.com",
                first_name=given_en,
                last_name=f"{surname_en} {surname_zh}{given_zh}",
                password=password_hash,
            )
        )
    user_model.objects.bulk_create(users, batch_size=1_000)
    with tenant_scope(tenant):
        memberships = Membership.objects.bulk_create(
            [
                Membership(
                    tenant=tenant, user=user, role=role, org_unit=unit, title=title, start_date=day
                )
                for user, (_name, role, unit, title, day) in zip(users, people, strict=True)
            ],
            batch_size=1_000,
        )
        OrgUnitManager.objects.bulk_create(
            OrgUnitManager(tenant=tenant, org_unit=person[2], membership=member)
            for member, person in zip(memberships, people, strict=True)
            if person[1] == Role.MANAGER
        )
    return {
        "regions": regions,
        "areas": regions * areas,
        "teams": len(team_units),
        "managers": sum(counts.values()),
        "reps": reps,
    }


def generate(args: argparse.Namespace) -> dict[str, Any]:
    """The tenant, its tree and its history; refuses a tenant that has opportunities."""
    from django.utils import timezone

    from crm.models import Opportunity, ProductLine
    from devtools import datagen
    from tenancy.scope import tenant_scope
    from tenancy.services import tenant_create

    started = time.monotonic()
    now = timezone.now()
    created = tenant_create(
        name="Bench Targets 目标基准",
        slug=args.tenant,
        admin_username=f"{args.tenant}-admin",
        admin_email=f"{args.tenant}-admin@{args.tenant}.example.com",
        admin_password="demo",
    )
    tenant = created.tenant
    with tenant_scope(tenant):
        if Opportunity.all_objects.exists():
            sys.exit(f"Tenant {args.tenant!r} has data already: pass --reuse to benchmark it.")
    tree = build_tree(
        tenant,
        created.root,
        reps=args.reps,
        regions=args.regions,
        areas=args.areas,
        teams=args.teams,
        seed=args.seed,
        today=now.date(),
    )
    common.log(f"Tree: {tree}")
    reps = datagen.existing_reps(tenant, as_of=now)
    volumes = datagen.Volumes(
        customers=args.customers,
        opportunities=args.opportunities,
        activities=args.activities,
        visits=args.visits,
        leads=args.customers // 10,
        months=args.months,
    )
    progress = datagen.Progress(
        lambda text: print(text, end="", file=sys.stderr, flush=True), tty=sys.stderr.isatty()
    )
    counts = datagen.generate_history(
        tenant, reps, volumes, seed=args.seed, as_of=now, progress=progress
    )
    with tenant_scope(tenant):
        ProductLine.objects.get_or_create(
            name=NEW_LINE, defaults={"tenant": tenant, "is_new": True}
        )
    return {
        "tree": tree,
        "history": counts.as_dict(),
        "as_of": now.isoformat(),
        "seconds": round(time.monotonic() - started, 1),
    }


# --- the plan -----------------------------------------------------------------------------


def decompose_settings(lines: Sequence[int]) -> DecomposeSettings:
    from targets.services import DecomposeSettings

    return DecomposeSettings(
        time_method="seasonal",
        org_method="equal",
        org_methods_by_depth={0: "history"},  # the regions by last year's actuals
        product_shares={
            line: Decimal(share) for line, share in zip(lines, PRODUCT_SHARES, strict=False)
        },
        new_product_multiplier=Decimal("1.5"),
        ramp=True,
    )


def draft_plan(tenant: Tenant, admin: Membership, fiscal_year: int) -> TargetPlan:
    """The benchmark's draft plan: 20 % above last fiscal year's won amount."""
    from django.db import connection

    from targets import calendar
    from targets.models import PlanStatus, TargetPlan
    from targets.services import plan_create

    plan = TargetPlan.objects.filter(fiscal_year=fiscal_year, name=PLAN_NAME).first()
    if plan is not None:
        if plan.status != PlanStatus.DRAFT:
            sys.exit(f"The plan {PLAN_NAME!r} is {plan.status}: only a draft is decomposed.")
        return plan
    last_year = calendar.fiscal_year(fiscal_year - 1, tenant.fiscal_year_start_month)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(SUM(o.amount), 0) FROM crm_opportunity o
            JOIN crm_stage s ON s.id = o.stage_id
            WHERE o.tenant_id = %s AND s.kind = 'won' AND o.closed_date BETWEEN %s AND %s
            """,
            [tenant.pk, last_year.start, last_year.end],
        )
        (won,) = cursor.fetchone() or (Decimal(0),)
    total = (Decimal(won) * Decimal("1.2") / 10_000).to_integral_value() * 10_000
    return plan_create(
        member=admin,
        fiscal_year=fiscal_year,
        metric="won_amount",
        annual_total=max(total, Decimal(10_000_000)),
        name=PLAN_NAME,
    )


# --- measuring ----------------------------------------------------------------------------


def bare_timings(statements: Sequence[str], repeat: int, warmup: int, tenant: Tenant) -> Any:
    """Per-statement milliseconds of ``statements`` re-run ``repeat`` times, each time in
    a tenant scope rolled back at the end (writes leave nothing behind)."""
    from django.db import connection

    totals: list[float] = []
    per_statement: list[list[float]] = [[] for _ in range(len(statements) + 1)]
    for attempt in range(warmup + repeat):
        with common.rolled_back(tenant):
            raw = connection.connection.cursor()
            elapsed = []
            # The foreign keys are deferred: COMMIT would check every inserted row. The
            # transaction is rolled back instead, so the checks are run here.
            for statement in [*statements, "SET CONSTRAINTS ALL IMMEDIATE"]:
                started = time.perf_counter()
                raw.execute(statement)
                if raw.description is not None:
                    raw.fetchall()
                elapsed.append((time.perf_counter() - started) * 1000)
            raw.close()
        if attempt >= warmup:
            totals.append(sum(elapsed))
            for index, value in enumerate(elapsed):
                per_statement[index].append(value)
    medians = [statistics.median(values) for values in per_statement]
    return totals, medians


def profile(label: str, run: Callable[[], object]) -> str:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    text = f"--- profile: {label} ---\n{out.getvalue()}"
    print(text, file=sys.stderr)
    return text


def main() -> None:
    args = parse_args()
    common.setup_django()

    from crm.models import Opportunity, ProductLine, StageChange
    from targets.achievement import plan_achievements
    from targets.calendar import fiscal_year_of
    from targets.models import PeriodKind, Target, TargetSeries
    from targets.selectors import monthly_actuals, open_pipeline
    from targets.services import plan_decompose
    from tenancy.models import Membership, OrgUnit, Role, Tenant
    from tenancy.scope import tenant_scope

    tenant = Tenant.objects.filter(slug=args.tenant).first()
    existing = 0
    if tenant is not None:
        with tenant_scope(tenant):
            existing = Opportunity.all_objects.count()
    generation: dict[str, Any] = {"reused": bool(existing)}
    if existing and not args.reuse:
        sys.exit(
            f"The {args.tenant} tenant already has {existing:,} opportunities: "
            "pass --reuse to benchmark it (or --tenant for another one)."
        )
    if not existing:
        generation.update(generate(args))
        tenant = Tenant.objects.get(slug=args.tenant)
    assert tenant is not None
    common.vacuum_analyze(TABLES)

    from zoneinfo import ZoneInfo

    from django.utils import timezone

    today = timezone.now().astimezone(ZoneInfo(tenant.time_zone)).date()
    fiscal_year = fiscal_year_of(today, tenant.fiscal_year_start_month)
    with tenant_scope(tenant):
        admin = Membership.objects.get(role=Role.ADMIN, user__username=f"{args.tenant}-admin")
        lines = list(ProductLine.objects.order_by("pk").values_list("pk", flat=True))
        plan = draft_plan(tenant, admin, fiscal_year)
        data = {
            "opportunities": Opportunity.all_objects.count(),
            "stage_changes": StageChange.objects.count(),
            "active_reps": Membership.objects.filter(role=Role.REP, is_active=True).count(),
            "product_lines": len(lines),
            "org_units_by_depth": dict(
                sorted(Counter(OrgUnit.objects.values_list("depth", flat=True)).items())
            ),
        }
    settings = decompose_settings(lines)
    common.log(
        f"Tenant {tenant.slug} (id {tenant.pk}): {data}; plan {plan.pk} FY{fiscal_year} "
        f"total {plan.annual_total:,}"
    )
    rows: list[Row] = []
    profiles: list[str] = []
    details: dict[str, Any] = {}

    # -- decomposition: the arithmetic alone (dry run), then saved --
    def decompose(dry_run: bool) -> Any:
        return plan_decompose(member=admin, plan=plan, settings=settings, dry_run=dry_run)

    def scoped_decompose(dry_run: bool) -> Any:
        with tenant_scope(tenant):
            return decompose(dry_run)

    for dry_run in (True, False):
        name = "plan_decompose " + ("(dry run)" if dry_run else "+ save")
        common.log(f"{name} …")
        samples = common.timed(args.repeat, args.warmup, partial(scoped_decompose, dry_run))
        with common.rolled_back(tenant):
            result, statements = common.capture(partial(decompose, dry_run))
        totals, medians = bare_timings(statements, args.repeat, args.warmup, tenant)
        statements = [*statements, "SET CONSTRAINTS ALL IMMEDIATE"]  # see bare_timings
        with tenant_scope(tenant):
            target_rows = Target.objects.filter(plan=plan).count()  # periods, derived
            series_rows = TargetSeries.objects.filter(plan=plan).count()  # what is stored
        slowest = max(range(len(statements)), key=lambda i: medians[i])
        row = common.Row(
            name=name,
            scope=f"{len(result.nodes):,} nodes",
            samples=samples,
            queries=len(statements),
            bare_samples=totals,
            goal="" if dry_run else "< 2 s, < 50 queries",
            met=None if dry_run else statistics.median(samples) < 2000 and len(statements) < 50,
            extra={
                "nodes": len(result.nodes),
                "series_rows_saved": series_rows,
                "period_targets": target_rows,
                "statements_by_kind": common.statement_kinds(statements, medians),
                "slowest_statement": {
                    "ms": round(medians[slowest], 2),
                    "sql": common.short_sql(statements[slowest]),
                },
                "statements": [common.short_sql(s) for s in statements[:60]],
            },
        )
        rows.append(row)
        if args.profile:
            if dry_run:
                profiles.append(profile(name, partial(scoped_decompose, True)))
            else:
                with common.rolled_back(tenant):
                    profiles.append(profile(name, partial(decompose, False)))
    details["decompose_settings"] = settings.as_json()

    # -- achievement of the whole tree --
    def bare_aggregates() -> list[str]:
        """The baseline, whatever plan_achievements does: the plain aggregates of the
        metric and of the open pipeline over the same rows, per member, unit, product
        line and month (the statements of ``monthly_actuals`` and ``open_pipeline``)."""
        _, captured = common.capture(
            lambda: (
                monthly_actuals(tenant, plan.metric, plan.fiscal_year, today),
                open_pipeline(tenant, plan.fiscal_year, today),
            )
        )
        return captured

    with tenant_scope(tenant):
        plan.refresh_from_db()
        for kind, lines_too in (
            (PeriodKind.YEAR, False),
            (PeriodKind.MONTH, False),
            (PeriodKind.YEAR, True),
        ):
            # The tree as the admin and the API show it: the assignees' totals (no product
            # line); then the year nodes of every product line too.
            nodes = list(
                Target.objects.filter(plan=plan, period_kind=kind)
                if lines_too
                else Target.objects.filter(plan=plan, period_kind=kind, product_line__isnull=True)
            )
            name = f"plan_achievements ({kind}{', with lines' if lines_too else ''})"
            common.log(f"{name} …")
            run = partial(plan_achievements, plan, today, nodes)
            results, statements = common.capture(run)
            assert len(results) == len(nodes)
            samples = common.timed(args.repeat, args.warmup, run)
            aggregates = bare_aggregates()
            bare = common.timed(args.repeat, args.warmup, partial(common.run_sql, aggregates))
            everything = common.timed(args.repeat, args.warmup, partial(common.run_sql, statements))
            p50, bare_p50 = statistics.median(samples), statistics.median(bare)
            rows.append(
                common.Row(
                    name=name,
                    scope=f"whole tree, {len(nodes):,} nodes",
                    samples=samples,
                    queries=len(statements),
                    bare_samples=bare,
                    goal="< 10 queries, ≤ 3× SQL",
                    met=len(statements) < 10 and p50 <= 3 * bare_p50,
                    extra={
                        "nodes": len(nodes),
                        "as_of": today,
                        "bare_sql_note": (
                            "the plain aggregates (monthly_actuals + open_pipeline: per "
                            "member, unit, line and month), run on a cursor"
                        ),
                        "all_statements_bare": common.summary(everything),
                        "statements": [common.short_sql(s) for s in statements],
                        "plans": {
                            f"aggregate {index + 1}": common.explain(statement)
                            for index, statement in enumerate(aggregates)
                        },
                    },
                )
            )
            if args.profile:
                profiles.append(profile(name, run))

    # -- one target by its public id: split into series and code (targets_target's
    # index path), beside the view's computed id alone (which expands every series) --
    from targets.models import target_ids_q

    # The saves above rewrote the series: without fresh statistics PostgreSQL expects one
    # series in the tenant and may walk an index on (tenant, updated_at) instead.
    common.vacuum_analyze(["targets_targetseries"])
    with tenant_scope(tenant):
        sample = Target.objects.filter(plan=plan, period_kind=PeriodKind.QUARTER).last()
        assert sample is not None
        by_id = partial(lambda pk: Target.objects.filter(target_ids_q([pk])).get(), sample.pk)
        by_view_id = partial(lambda pk: Target.objects.filter(pk=pk).get(), sample.pk)
        common.log("target by public id …")
        found, statements = common.capture(by_id)
        assert found.pk == sample.pk
        samples = common.timed(args.repeat, args.warmup, by_id)
        bare = common.timed(args.repeat, args.warmup, partial(common.run_sql, statements))
        view_id_only = common.timed(args.repeat, args.warmup, by_view_id)
        plan_text = common.explain(statements[0])
        rows.append(
            common.Row(
                name="target by public id",
                scope=f"1 of {Target.objects.filter(plan=plan).count():,}",
                samples=samples,
                queries=len(statements),
                bare_samples=bare,
                goal="series by primary key",
                met=f"Index Cond: (id = {sample.series_id})" in plan_text,
                extra={
                    "statement": common.short_sql(statements[0]),
                    "plan": plan_text,
                    "by_the_views_id_alone": common.summary(view_id_only),
                },
            )
        )

    common.print_table(rows)
    print(
        "\n(p50/p95/max of the call; SQL p50 = the bare SQL: for plan_decompose every "
        "statement it sent, re-run on a cursor in a transaction rolled back, plus the "
        "deferred foreign-key checks its COMMIT runs (SET CONSTRAINTS ALL IMMEDIATE); for "
        "plan_achievements the plain aggregates of the metric and the open pipeline over the "
        "same rows (monthly_actuals, open_pipeline) run on a cursor; ratio = p50 / SQL p50; "
        "queries = statements the call sent.)"
    )
    print(common.revision_line())
    common.write_report(
        "targets",
        {
            "tenant": {"slug": tenant.slug, "id": tenant.pk, **data},
            "generation": generation,
            "plan": {
                "id": plan.pk,
                "fiscal_year": fiscal_year,
                "metric": plan.metric,
                "annual_total": plan.annual_total,
            },
            "settings": {"repeat": args.repeat, "warmup": args.warmup},
            "details": details,
            "results": [row.as_json() for row in rows],
            "profiles": profiles,
        },
    )


if __name__ == "__main__":
    main()
