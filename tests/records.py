"""Builders of CRM records for tests, through the services (must run inside a tenant scope)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from crm import services
from crm.models import (
    Activity,
    Contact,
    Customer,
    Lead,
    Notification,
    Opportunity,
    Payment,
    ProductLine,
    Stage,
    StageKind,
    Visit,
)
from tenancy.dates import tenant_today
from tenancy.models import Membership
from tests.factories import TenantTree

SHANGHAI = (Decimal("31.230416"), Decimal("121.473701"))


def stage(kind: str = StageKind.OPEN, order: int | None = None) -> Stage:
    stages = Stage.objects.filter(pipeline__is_default=True, kind=kind).order_by("order")
    return stages.get(order=order) if order is not None else stages.first()  # type: ignore[return-value]


def customer(
    tree: TenantTree,
    owner: Membership | None = None,
    *,
    name: str = "上海申达 Shenda",
    pool: bool = False,
) -> Customer:
    member = owner or tree.members["south-rep"]
    return Customer.objects.create(
        tenant=tree.tenant,
        name=name,
        owner=None if pool else member,
        first_owner=None if pool else member,
        latitude=SHANGHAI[0],
        longitude=SHANGHAI[1],
        level="A",
    )


def contact(tree: TenantTree, owner: Membership | None = None) -> Contact:
    return Contact.objects.create(tenant=tree.tenant, customer=customer(tree, owner), name="王经理")


def lead(tree: TenantTree, owner: Membership | None = None) -> Lead:
    return Lead.objects.create(
        tenant=tree.tenant,
        name="刘先生",
        company="Hangzhou Bright",
        owner=owner or tree.members["south-rep"],
    )


def product_line(tree: TenantTree, name: str = "Cloud ERP") -> ProductLine:
    return ProductLine.objects.create(tenant=tree.tenant, name=name, is_new=True)


def opportunity(
    tree: TenantTree, owner: Membership | None = None, *, amount: Decimal = Decimal("120000.00")
) -> Opportunity:
    member = owner or tree.members["south-rep"]
    deal, _created = services.opportunity_create(
        member=member,
        customer=customer(tree, member),
        name="ERP rollout",
        amount=amount,
        expected_close_date=date.today() + timedelta(days=30),
    )
    return deal


def won_opportunity(tree: TenantTree, owner: Membership | None = None) -> Opportunity:
    deal = opportunity(tree, owner)
    return services.opportunity_move(
        member=deal.owner, opportunity=deal, stage=stage(StageKind.WON)
    )


def received_payment(tree: TenantTree, owner: Membership | None = None) -> Payment:
    deal = won_opportunity(tree, owner)
    payment, _created = services.payment_record(
        member=deal.owner,
        opportunity=deal,
        amount=Decimal("50000.00"),
        received_date=tenant_today(deal.tenant),  # a rep's payment is received today
    )
    return payment


def visit(tree: TenantTree, rep: Membership | None = None) -> Visit:
    member = rep or tree.members["south-rep"]
    return Visit.objects.create(
        tenant=tree.tenant,
        customer=customer(tree, member),
        rep=member,
        planned_start=timezone.now() + timedelta(hours=2),
        purpose="Demo",
    )


def activity(tree: TenantTree, owner: Membership | None = None) -> Activity:
    return Activity.objects.create(
        tenant=tree.tenant,
        type="call",
        subject="Follow up on quote",
        owner=owner or tree.members["south-rep"],
        due_at=timezone.now() - timedelta(days=1),
    )


def notification(tree: TenantTree, recipient: Membership) -> Notification:
    return Notification.objects.create(
        tenant=tree.tenant, recipient=recipient, kind="digest", text="3 follow-ups overdue"
    )


def published_plan(tree: TenantTree, *, fiscal_year: int = 2026, metric: str = "won_amount") -> Any:
    """A decomposed, published plan (equal splits) of 1,200,000 for the tree's tenant."""
    from targets.models import TargetPlan
    from targets.services import DecomposeSettings, plan_create, plan_decompose, plan_publish

    existing = TargetPlan.objects.filter(fiscal_year=fiscal_year, metric=metric).first()
    if existing is not None:
        return existing
    admin = tree.members["admin"]
    plan = plan_create(
        member=admin, fiscal_year=fiscal_year, metric=metric, annual_total=Decimal("1200000.00")
    )
    plan_decompose(member=admin, plan=plan, settings=DecomposeSettings())
    return plan_publish(member=admin, plan=plan)


def rep_target(
    tree: TenantTree, member: Membership | None = None, kind: str = "month", index: int = 1
) -> Any:
    from targets.models import Target

    plan = published_plan(tree)
    return Target.objects.get(
        plan=plan,
        member=member or tree.members["south-rep"],
        period_kind=kind,
        period_index=index,
        product_line=None,
    )


def adjustment(tree: TenantTree) -> Any:
    from targets.services import target_adjust

    return target_adjust(
        member=tree.members["admin"],
        target=rep_target(tree),
        new_value=Decimal("90000.00"),
        reason="Territory change",
        trigger="personnel",
    )


def commitment(tree: TenantTree) -> Any:
    from targets.services import commitment_submit

    return commitment_submit(
        member=tree.members["south-rep"],
        plan=published_plan(tree),
        period_kind="month",
        period_index=1,
        value=Decimal("120000.00"),
    )


def alert(tree: TenantTree) -> Any:
    from funnel.models import Alert

    return Alert.objects.create(
        tenant=tree.tenant,
        rule="overdue_follow_ups",
        subject_type="member",
        subject_id=tree.members["south-rep"].pk,
        period="2026-11",
        owner=tree.members["south-rep"],
        observed=Decimal(3),
        threshold=Decimal(0),
        severity="warning",
        params={"observed": 3, "threshold": 0},
    )


def warning_rule(tree: TenantTree) -> Any:
    from funnel.warnings import ensure_rules

    return ensure_rules(tree.tenant.pk)[0]


def review(tree: TenantTree) -> Any:
    """A draft review of the south rep's first month, by the admin."""
    from funnel.services import review_create

    return review_create(member=tree.members["admin"], target=rep_target(tree))


def one_of_each(tree: TenantTree) -> None:
    """A row of every kind this module makes (inside the tenant's scope), and a
    notification for the admin: what the serializer comparisons render."""
    for make in (
        contact,
        lead,
        won_opportunity,
        received_payment,
        visit,
        activity,
        adjustment,
        commitment,
        alert,
        review,
    ):
        make(tree)
    notification(tree, tree.members["admin"])
