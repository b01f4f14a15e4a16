"""Reads shared by the API, the admin and jobs: which records a member sees (SPEC 2).

One selector per model: a rep sees their own records, a manager the records owned by
members of their org subtree, an admin the whole tenant (``tenancy.selectors``).
"""

from __future__ import annotations

from django.db.models import QuerySet

from crm.models import Activity, Contact, Customer, Lead, Notification, Opportunity, Payment, Visit
from tenancy.models import Membership
from tenancy.selectors import visible_rows


def visible_customers(member: Membership, *, include_deleted: bool = False) -> QuerySet[Customer]:
    """Own (or subtree's) customers plus the public pool (no owner), visible to everyone."""
    rows = Customer.all_objects if include_deleted else Customer.objects
    return visible_rows(rows, member, pool=True)


def visible_contacts(member: Membership, *, include_deleted: bool = False) -> QuerySet[Contact]:
    rows = Contact.all_objects if include_deleted else Contact.objects
    return rows.filter(customer__in=visible_customers(member, include_deleted=True).values("pk"))


def visible_leads(member: Membership, *, include_deleted: bool = False) -> QuerySet[Lead]:
    return visible_rows(Lead.all_objects if include_deleted else Lead.objects, member)


def visible_opportunities(
    member: Membership, *, include_deleted: bool = False
) -> QuerySet[Opportunity]:
    rows = Opportunity.all_objects if include_deleted else Opportunity.objects
    return visible_rows(rows, member)


def visible_payments(member: Membership, *, include_deleted: bool = False) -> QuerySet[Payment]:
    rows = Payment.all_objects if include_deleted else Payment.objects
    return visible_rows(rows, member, "opportunity__owner")


def visible_visits(member: Membership, *, include_deleted: bool = False) -> QuerySet[Visit]:
    rows = Visit.all_objects if include_deleted else Visit.objects
    return visible_rows(rows, member, "rep")


def visible_activities(member: Membership, *, include_deleted: bool = False) -> QuerySet[Activity]:
    rows = Activity.all_objects if include_deleted else Activity.objects
    return visible_rows(rows, member)


def visible_notifications(member: Membership) -> QuerySet[Notification]:
    """Notifications are personal: everyone, admins included, sees only their own."""
    return Notification.objects.filter(recipient=member)
