"""Factories: users with factory_boy; tenants, org trees and members through the services,
so tests build data exactly as the product does."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import factory
from django.contrib.auth import get_user_model

from tenancy.models import Membership, OrgUnit, Role, Tenant
from tenancy.scope import tenant_scope
from tenancy.services import (
    membership_create,
    org_unit_create,
    org_unit_set_managers,
    tenant_create,
)

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password(PASSWORD)


@dataclass
class TenantTree:
    """company → north, south → north-1 (under north); members by nickname."""

    tenant: Tenant
    units: dict[str, OrgUnit] = field(default_factory=dict)
    members: dict[str, Membership] = field(default_factory=dict)


def add_member(
    tenant: Tenant, nickname: str, role: str, unit: OrgUnit | None, *, slug: str
) -> Membership:
    return membership_create(
        tenant=tenant,
        username=f"{slug}-{nickname}",
        email=f"{slug}-{nickname}@example.com",
        password=PASSWORD,
        role=role,
        org_unit=unit,
        is_staff=True,
        start_date=date(2020, 1, 6),  # tenured: no ramp-up unless a test asks for it
    )


def build_tenant_tree(slug: str, name: str) -> TenantTree:
    """A small tenant: admin at the root, a manager of 'north', reps in north-1 and south."""
    created = tenant_create(
        name=name,
        slug=slug,
        admin_username=f"{slug}-admin",
        admin_email=f"{slug}-admin@example.com",
        admin_password=PASSWORD,
    )
    tree = TenantTree(tenant=created.tenant)
    with tenant_scope(created.tenant):
        tree.units["company"] = created.root
        tree.units["north"] = org_unit_create(tenant=tree.tenant, name="North", parent=created.root)
        tree.units["south"] = org_unit_create(tenant=tree.tenant, name="South", parent=created.root)
        tree.units["north-1"] = org_unit_create(
            tenant=tree.tenant, name="North 1", parent=tree.units["north"]
        )
        tree.members["admin"] = created.admin
        tree.members["manager"] = add_member(
            tree.tenant, "manager", Role.MANAGER, tree.units["north"], slug=slug
        )
        org_unit_set_managers(unit=tree.units["north"], managers=[tree.members["manager"]])
        tree.members["rep"] = add_member(
            tree.tenant, "rep", Role.REP, tree.units["north-1"], slug=slug
        )
        tree.members["rep2"] = add_member(
            tree.tenant, "rep2", Role.REP, tree.units["north-1"], slug=slug
        )
        tree.members["south-rep"] = add_member(
            tree.tenant, "south-rep", Role.REP, tree.units["south"], slug=slug
        )
    return tree
