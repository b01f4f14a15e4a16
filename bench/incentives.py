"""Benchmark: draft commission statements for 2,000 members and a company leaderboard,
each beside the bare SQL it sends.

    DEBUG=1 .venv/bin/python bench/incentives.py [--reuse] [--repeat 5] [--warmup 1]

Uses (or, without ``--reuse``, generates with ``bench/targets.py``'s generator) the
tenant ``bench-targets`` in the database of ``DATABASE_URL`` (default ``crm_bench``):
2,000 reps in a depth-4 tree with 24 months of history. It makes sure a published
``won_amount`` plan of the current fiscal year exists (decomposing and publishing the
targets benchmark's draft when there is none) and a commission plan ("Bench
commission", marginal, four bands, a multiplier on one product line) assigned to the
root unit, so every member of the company has a statement.

Cases:

* ``statements_compute`` of this month for everyone (T of all members in one query,
  A and B per product line in one, the drafts replaced in bulk);
* ``leaderboard`` of the whole company by attainment for this month (with the previous
  month's ranks), as the admin asks for it live.

Each beside the bare SQL: the statements the call sent, re-run as is on the driver's
cursor in a transaction rolled back. Goals (issue #15): statements within 2× their SQL
and under 3 s; the leaderboard within 2× its SQL; a number of queries that does not
depend on the number of members. Prints a table and writes
``bench/results/incentives.json``. Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    # Run as a script, this file's directory comes first on sys.path, where
    # ``incentives`` would be this file, not the app: import from the project root.
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402
from bench import targets as targets_bench  # noqa: E402

COMMISSION_PLAN = "Bench commission"
BANDS = [["0", "0.02"], ["0.8", "0.04"], ["1", "0.06"], ["1.2", "0.10"]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", action="store_true", help="Use the existing tenant.")
    parser.add_argument("--repeat", type=int, default=5, help="Timed runs per case.")
    parser.add_argument("--warmup", type=int, default=1, help="Untimed runs per case.")
    return parser.parse_args()


def published_plan(tenant: Any, admin: Any, fiscal_year: int) -> Any:
    from targets.models import PlanStatus, TargetPlan
    from targets.services import plan_decompose, plan_publish

    plan = TargetPlan.objects.filter(
        fiscal_year=fiscal_year,
        metric="won_amount",
        status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
    ).first()
    if plan is not None:
        return plan
    from crm.models import ProductLine

    lines = list(ProductLine.objects.order_by("pk").values_list("pk", flat=True))
    draft = targets_bench.draft_plan(tenant, admin, fiscal_year)
    plan_decompose(member=admin, plan=draft, settings=targets_bench.decompose_settings(lines))
    return plan_publish(member=admin, plan=draft)


def commission_plan(admin: Any, root: Any) -> Any:
    from datetime import date

    from crm.models import ProductLine
    from incentives import commissions
    from incentives.models import CommissionPlan

    plan = CommissionPlan.objects.filter(name=COMMISSION_PLAN).first()
    if plan is not None:
        return plan
    first_line = ProductLine.objects.order_by("pk").values_list("pk", flat=True).first()
    plan = commissions.plan_create(
        actor=admin,
        name=COMMISSION_PLAN,
        attainment_metric="won_amount",
        bands=BANDS,
        mode="marginal",
        multipliers={str(first_line): "1.5"} if first_line else {},
    )
    commissions.assignment_add(
        actor=admin, plan=plan, org_unit=root, effective_from=date(2000, 1, 1)
    )
    return plan


def main() -> None:
    args = parse_args()
    common.setup_django()

    from crm.models import Opportunity
    from incentives import commissions, selectors
    from incentives.models import CommissionStatement
    from targets.calendar import fiscal_year_of
    from tenancy.dates import tenant_today
    from tenancy.models import Membership, OrgUnit, Role, Tenant
    from tenancy.scope import tenant_scope

    slug = targets_bench.SLUG
    tenant = Tenant.objects.filter(slug=slug).first()
    existing = 0
    if tenant is not None:
        with tenant_scope(tenant):
            existing = Opportunity.all_objects.count()
    generation: dict[str, Any] = {"reused": bool(existing)}
    if existing and not args.reuse:
        sys.exit(f"The {slug} tenant already has data: pass --reuse to benchmark it.")
    if not existing:
        defaults = argparse.Namespace(
            tenant=slug, reps=2_000, regions=8, areas=5, teams=6, customers=50_000,
            opportunities=200_000, activities=100_000, visits=20_000, months=24, seed=7,
        )  # fmt: skip
        generation.update(targets_bench.generate(defaults))
        tenant = Tenant.objects.get(slug=slug)
    assert tenant is not None
    today = tenant_today(tenant)
    fiscal_year = fiscal_year_of(today, tenant.fiscal_year_start_month)
    with tenant_scope(tenant):
        admin = Membership.objects.get(role=Role.ADMIN, user__username=f"{slug}-admin")
        root = OrgUnit.objects.get(parent__isnull=True)
        target_plan = published_plan(tenant, admin, fiscal_year)
        plan = commission_plan(admin, root)
        commissions.statements_compute(tenant=tenant, as_of=today, plans=[plan])
        members = CommissionStatement.objects.filter(plan=plan, period_start__lte=today).count()
    common.vacuum_analyze([*targets_bench.TABLES, "incentives_commissionstatement",
                           "incentives_statementline"])  # fmt: skip
    common.log(f"Tenant {slug}: {members} statements a month; target plan {target_plan.pk}")

    rows: list[common.Row] = []
    details: dict[str, Any] = {}

    def compute() -> Any:
        return commissions.statements_compute(tenant=tenant, as_of=today, plans=[plan])

    def board() -> Any:
        return selectors.leaderboard(
            viewer=admin, unit_id=root.pk, by="attainment", metric="won_amount", as_of=today
        )

    cases = [
        ("statements_compute (month, everyone)", compute, "≤ 2× SQL and < 3 s", 3000.0),
        ("leaderboard (company, attainment, month)", board, "≤ 2× SQL", None),
    ]
    for name, run, goal, limit in cases:
        common.log(f"{name} …")

        def scoped(run: Any = run) -> Any:
            with tenant_scope(tenant):
                return run()

        samples = common.timed(args.repeat, args.warmup, scoped)
        with common.rolled_back(tenant):
            result, statements = common.capture(run)

        def bare(statements: list[str] = statements) -> None:
            with common.rolled_back(tenant):
                common.run_sql(statements)

        bare_samples = common.timed(args.repeat, args.warmup, bare)
        row = common.Row(
            name=name,
            scope=f"{members} members",
            samples=samples,
            queries=len(statements),
            bare_samples=bare_samples,
            goal=goal,
        )
        ratio = row.ratio or 0.0
        row.met = ratio <= 2.0 and (limit is None or row.p50 < limit)
        rows.append(row)
        details[name] = {
            "statements": [common.short_sql(statement) for statement in statements],
            "result": result if isinstance(result, dict) else {"rows": len(result.rows)},
        }
    common.print_table(rows)
    print(common.revision_line())
    common.write_report(
        "incentives",
        {
            "tenant": slug,
            "generation": generation,
            "members": members,
            "results": [row.as_json() for row in rows],
            "details": details,
        },
    )


if __name__ == "__main__":
    main()
