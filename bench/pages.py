"""Benchmark: the pages (SPEC section 12, issue #16 item 7) against the selectors they call.

    DEBUG=1 .venv/bin/python bench/pages.py [--reuse] [--opportunities 200000] [--reps 500]
                                            [--repeat 10] [--warmup 2]

Generates, when missing, the tenant ``--tenant`` (default ``bench-pages``) in the database
of ``DATABASE_URL`` (default ``crm_bench``) with ``manage.py generate_data`` (500 reps,
200,000 opportunities, 24 months, seed 1) and a published ``won_amount`` plan for the
current fiscal year (``bench/funnel.py``'s). Then, logged in with a session as in a
browser, times each page through Django's test client (middleware, session, tenant scope,
view, templates, real PostgreSQL), and beside it the page's data functions of
``web.pages`` (the selectors and the achievement the page calls) run directly in the
same tenant scope: the "SQL p50" column here is that selector time, and ratio = page /
selectors.

Pages: the team page for the admin (the whole tenant) and for the manager of the
smallest team, my day and incentives for a rep, the plans page for the admin. The
goals: each page within 2x of its selectors, and the team page the same number of
queries for one team and for the whole tenant. Prints a table and writes
``bench/results/pages.json``. Not a test: run it on demand.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":
    sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench")]

from bench import common  # noqa: E402

GOAL = 2.0
TABLES = ["crm_opportunity", "crm_customer", "crm_stagechange", "crm_activity", "crm_visit"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tenant", default="bench-pages")
    parser.add_argument("--reuse", action="store_true", help="Fail if the tenant is missing.")
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--opportunities", type=int, default=200_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    return parser.parse_args()


def ensure_tenant(args: argparse.Namespace) -> Any:
    from django.core.management import call_command

    from crm.models import Opportunity
    from tenancy.models import Tenant
    from tenancy.scope import tenant_scope

    tenant = Tenant.objects.filter(slug=args.tenant).first()
    if tenant is not None:
        with tenant_scope(tenant):
            if Opportunity.all_objects.exists():
                return tenant
    if args.reuse:
        sys.exit(f"No {args.tenant} tenant with data to reuse: run without --reuse.")
    common.log(f"Generating {args.tenant} ({args.opportunities:,} deals) …")
    started = time.monotonic()
    deals = args.opportunities
    call_command(
        "generate_data",
        f"--tenant={args.tenant}",
        "--name=Pages bench 页面",
        f"--reps={args.reps}",
        f"--customers={max(deals // 4, 1)}",
        f"--opportunities={deals}",
        f"--activities={deals}",
        f"--visits={max(deals // 4, 1)}",
        f"--months={args.months}",
        "--seed=1",
        stderr=sys.stderr,
    )
    common.log(f"  generated in {time.monotonic() - started:.0f} s")
    return Tenant.objects.get(slug=args.tenant)


def people(tenant: Any) -> dict[str, Any]:
    """The admin, the manager of the smallest team, and a rep of that team."""
    from django.db.models import Count

    from tenancy.models import Membership, OrgUnit, Role
    from tenancy.scope import tenant_scope

    with tenant_scope(tenant):
        admin = Membership.objects.filter(role=Role.ADMIN).order_by("pk").first()
        team = (
            OrgUnit.objects.filter(children__isnull=True, managers__isnull=False)
            .annotate(size=Count("members", distinct=True))
            .order_by("size", "pk")
            .first()
        )
        assert admin is not None and team is not None, "the tenant has no team with a manager"
        manager = team.managers.order_by("pk").first()
        rep = Membership.objects.filter(org_unit=team, role=Role.REP).order_by("pk").first()
        found = {"admin": admin, "manager": manager, "rep": rep}
        return {
            name: Membership.objects.select_related("user", "tenant", "org_unit").get(pk=m.pk)
            for name, m in found.items()
            if m is not None
        }


def main() -> None:
    args = parse_args()
    common.setup_django()

    from django.http import QueryDict
    from django.test import Client

    from bench.funnel import published_plan
    from targets.calendar import fiscal_year_of
    from tenancy.dates import tenant_today
    from tenancy.scope import tenant_scope
    from web import pages

    tenant = ensure_tenant(args)
    members = people(tenant)
    plan = published_plan(
        tenant,
        members["admin"],
        fiscal_year_of(tenant_today(tenant), tenant.fiscal_year_start_month),
    )
    common.vacuum_analyze(TABLES)
    common.owner_execute(["ANALYZE"])

    def team_data(member: Any) -> Any:
        return pages.team(member, pages.team_query(member, QueryDict()))

    def plans_data(member: Any) -> Any:
        # The plans page's data: the view's context builder over the first plan (as the
        # page picks it), the plan tree's achievement included.
        from targets.models import TargetPlan
        from web.views import _plan_context

        first = TargetPlan.objects.order_by("-fiscal_year", "metric", "pk").first()
        return _plan_context(member, first)

    cases = [
        ("team (whole tenant)", "admin", "/app/team/", team_data),
        ("team (smallest team)", "manager", "/app/team/", team_data),
        ("my day", "rep", "/app/", pages.my_day),
        ("incentives", "rep", "/app/incentives/", pages.incentives),
        ("plans", "admin", "/app/plans/", plans_data),
    ]
    rows: list[common.Row] = []
    for name, role, url, data in cases:
        member = members[role]
        client = Client(headers={"Accept-Language": "en"})
        client.force_login(member.user)

        def get(client: Client = client, url: str = url) -> Any:
            response = client.get(url)
            assert response.status_code == 200, response.content[:300]
            return response

        get()  # the session's first page picks its tenant once: not the page's cost
        _, statements = common.capture(get)
        samples = common.timed(args.repeat, args.warmup, get)
        selector_samples = None
        if data is not None:

            def read(member: Any = member, data: Any = data) -> Any:
                with tenant_scope(tenant):
                    return data(member)

            selector_samples = common.timed(args.repeat, args.warmup, read)
        row = common.Row(
            name=name,
            scope=f"{args.opportunities:,} deals, {role}",
            samples=samples,
            queries=len(statements),
            bare_samples=selector_samples,
            extra={
                "url": url,
                "tenant": tenant.slug,
                "plan": plan,
                "statements": common.statement_kinds(statements),
                "sql": [common.short_sql(s) for s in statements],
            },
        )
        if row.ratio is not None:
            row.goal = f"<= {GOAL:g}x its selectors"
            row.met = row.ratio <= GOAL
        rows.append(row)
        common.log(f"  {name}: {row.p50:.1f} ms, {row.queries} queries")

    whole, small = rows[0], rows[1]
    small.note = f"queries {small.queries} vs {whole.queries} for the whole tenant"
    common.print_table(rows)
    print(
        "\n(p50 = the page through the test client with a session; SQL p50 = the page's "
        "data functions in web.pages (its selectors) called directly; ratio = p50 / that.)"
    )
    print(common.revision_line())
    common.write_report(
        "pages",
        {
            "settings": vars(args),
            "goal": f"each page within {GOAL:g}x of its selectors; constant queries",
            "constant_queries": small.queries == whole.queries,
            "rows": [row.as_json() for row in rows],
        },
    )


if __name__ == "__main__":
    main()
