"""seed_demo writes 18 months of believable CRM history once, for the demo's own reps."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count, Max, Min
from django.utils import timezone

from crm.models import (
    Activity,
    Customer,
    Lead,
    Opportunity,
    Payment,
    ProductLine,
    StageChange,
    Visit,
)
from tenancy.models import Tenant
from tenancy.scope import tenant_scope

pytestmark = pytest.mark.django_db


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_adds_eighteen_months_of_history_once() -> None:
    first = seed()
    assert "History of 18 months added: 300 customers, 1,500 opportunities" in first
    with tenant_scope(Tenant.objects.get(slug="demo")):
        totals = {
            model.__name__: model.objects.count()
            for model in (Customer, Opportunity, StageChange, Payment, Visit, Activity, Lead)
        }
        assert totals["Customer"] == 300 and totals["Opportunity"] == 1_500
        assert totals["Lead"] == 40 and totals["Visit"] == 1_200 and totals["Activity"] == 6_000
        assert totals["StageChange"] > 3_000 and totals["Payment"] > 100

        now = timezone.now()
        span = Opportunity.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
        assert now - timedelta(days=560) <= span["first"] <= now - timedelta(days=500)
        assert now - timedelta(days=30) <= span["last"] <= now
        by_kind = dict(
            Opportunity.objects.values_list("stage__kind").annotate(n=Count("pk")).order_by()
        )
        assert by_kind["won"] > 150 and by_kind["lost"] > 300 and by_kind["open"] > 100
        reasons = set(
            Opportunity.objects.filter(stage__kind="lost").values_list("lost_reason", flat=True)
        )
        assert {"价格 Price", "竞品 Competitor", "预算 Budget"} <= reasons
        assert Activity.objects.filter(done_at=None, due_at__lt=now).count() > 50
        assert (
            Visit.objects.filter(verified=True).count()
            > Visit.objects.filter(verified=False, check_in_at__isnull=False).count()
        )
        lines = dict(ProductLine.objects.values_list("name", "is_new"))
        assert len(lines) == 4 and sum(lines.values()) == 1
        # The demo logins have a book of their own.
        assert Opportunity.objects.filter(owner__user__username="demo-rep").count() > 20
        assert Customer.objects.filter(owner__user__username="demo-rep").exists()

    second = seed()
    assert "History already there (1,500 opportunities): nothing added." in second
    with tenant_scope(Tenant.objects.get(slug="demo")):
        assert Opportunity.objects.count() == 1_500
        assert StageChange.objects.count() == totals["StageChange"]
        assert Activity.objects.count() == 6_000


def test_seed_demo_gives_the_quick_start_incentives_once() -> None:
    """Point rules, the last 30 days' points and a commission plan for every seller: the
    night of ``make run`` then has leaderboards and draft statements to show."""
    from incentives.models import CommissionAssignment, CommissionPlan, PointEntry, PointRule

    first = seed()
    assert "8 point rules added" in first
    with tenant_scope(Tenant.objects.get(slug="demo")):
        points = PointEntry.objects.count()
        assert PointRule.objects.count() == 8
        assert points > 0
        # Only the last 30 local days earned points (the catch-up's window).
        oldest = PointEntry.objects.aggregate(first=Min("day"))["first"]
        assert oldest >= (timezone.now() - timedelta(days=31)).date()
        plan = CommissionPlan.objects.get()
        assert plan.attainment_metric == "won_amount"
        assert CommissionAssignment.objects.filter(plan=plan, org_unit__parent=None).count() == 1
    second = seed()
    assert "0 point rules added, 0 points awarded" in second
    with tenant_scope(Tenant.objects.get(slug="demo")):
        assert PointEntry.objects.count() == points
        assert CommissionPlan.objects.count() == 1
