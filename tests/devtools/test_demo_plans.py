"""The demo's plans agree with its history (issue #13): seeded at any date of the year,
the company is between 60 % and 120 % of what its plan expects by then, and its reps are
spread around that (some ahead, some behind), never all at 0 or all done by September."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from targets.achievement import plan_achievements
from targets.models import Target, TargetPlan
from tenancy.models import OrgUnit, Tenant
from tenancy.scope import tenant_scope

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("as_of", [date(2026, 2, 10), date(2026, 6, 15), date(2026, 11, 20)])
def test_the_demo_plan_is_one_the_team_can_plausibly_reach(as_of: date) -> None:
    call_command("seed_demo", as_of=as_of, stdout=StringIO())
    tenant = Tenant.objects.get(slug="demo")
    with tenant_scope(tenant):
        plan = TargetPlan.objects.get(metric="won_amount", fiscal_year=as_of.year)
        year = Target.objects.filter(plan=plan, period_kind="year", product_line=None)
        root = OrgUnit.objects.get(parent=None)
        nodes = list(year.filter(member__isnull=False)) + [year.get(org_unit=root)]
        results = plan_achievements(plan, as_of, nodes)
        company = results[nodes[-1].pk]
        paces: list[Decimal] = [
            pace
            for node in nodes[:-1]
            if (pace := results[node.pk].pace) is not None
            and node.member is not None
            and node.member.start_date < date(2026, 1, 1)
        ]
        months = Target.objects.filter(
            plan=plan, period_kind="month", org_unit=root, product_line=None
        ).values_list("value", flat=True)
    # "Attainment to date": the company's actual against what its plan expects by then.
    pace = company.pace
    assert pace is not None and Decimal("0.6") <= pace <= Decimal("1.2")
    # No month of the plan is 0 for lack of data, and the year is not met early.
    assert all(value is not None and value > 0 for value in months)
    assert company.attainment is not None and company.attainment < Decimal("1")
    # Reps spread around the company: some ahead, some behind.
    assert min(paces) < pace < max(paces)
    assert max(paces) - min(paces) >= Decimal("0.2")
