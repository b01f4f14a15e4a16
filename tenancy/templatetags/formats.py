"""Template filters that show money and rates as people read them (SPEC preamble):
``{{ amount|money:currency }}`` → ``4,890,900.00 CNY``; ``{{ rate|percent }}`` → ``56.3%``.
Both go through ``tenancy.money``, as the admin's columns and the digests do."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django import template

from tenancy.money import format_money, format_rate

register = template.Library()


def to_decimal(value: Any) -> Decimal | None:
    """A template value as a ``Decimal``; None for a missing or unreadable one."""
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def money(value: Any, currency: str) -> str:
    amount = to_decimal(value)
    return format_money(amount, currency) if amount is not None else "–"


@register.filter
def percent(value: Any) -> str:
    return format_rate(to_decimal(value))
