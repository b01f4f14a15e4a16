"""How the pages show figures (SPEC preamble and section 12): money rounded once, half-up,
with thousands separators and the currency (``tenancy.money``), rates as percentages,
times in the tenant's zone (the request's active time zone)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django import template
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.models import ForecastCategory
from tenancy.models import Tenant
from tenancy.money import format_money, format_rate
from tenancy.templatetags.formats import to_decimal

register = template.Library()


@register.filter
def money(value: Any, tenant: Tenant) -> str:
    """``4890900`` → ``4,890,900.00 CNY``; a missing amount → ``-``."""
    amount = to_decimal(value)
    return "-" if amount is None else format_money(amount, tenant.currency)


@register.filter
def percent(value: Any, places: int = 1) -> str:
    """A rate (``0.5632``) as a percentage (``56.3%``); a missing rate → ``-``."""
    rate = to_decimal(value)
    return "-" if rate is None else format_rate(rate, int(places))


@register.filter
def number(value: Any) -> str:
    """A count or a quantity with thousands separators (``12345`` → ``12,345``)."""
    amount = to_decimal(value)
    if amount is None:
        return "-"
    return f"{amount.normalize():,f}" if amount != amount.to_integral() else f"{int(amount):,}"


@register.filter
def clamp_rate(value: Any) -> str:
    """A rate for a <meter>'s value: never below 0 (a meter clamps above its max)."""
    rate = to_decimal(value)
    return "0" if rate is None or rate < 0 else str(rate)


@register.simple_tag
def figure(value: Any, achievement: Any, tenant: Tenant) -> str:
    """A target's figure: money for an amount metric, a plain number for a count."""
    if getattr(achievement, "currency", None):
        return money(value, tenant)
    return number(value)


STATUS_LABELS = {
    "on_track": _("On track"),
    "at_risk": _("At risk"),
    "off_track": _("Off track"),
}


@register.filter
def status_label(status: str | None) -> str:
    return str(STATUS_LABELS.get(status or "", _("No target")))


@register.filter
def indent(depth: int) -> str:
    """A CSS class for a tree row's depth (no inline style under the CSP)."""
    return f"depth-{max(0, min(int(depth or 0), 8))}"


@register.filter
def expected_share(achievement: Any) -> Decimal | None:
    """Expected to date as a share of the target: where the pace bar's marker sits."""
    target = getattr(achievement, "target", None)
    expected = getattr(achievement, "expected_to_date", None)
    if not target or expected is None:
        return None
    return Decimal(expected) / Decimal(target)


@register.filter
def forecast_label(key: str) -> str:
    """A forecast category's name in the reader's language (``best_case`` → "Best case")."""
    try:
        return str(ForecastCategory(key).label)
    except ValueError:
        return key


@register.filter
def period_label(target: Any) -> str:
    """A target's period as people say it: "FY2026", "Q4 2026", "December 2026"."""
    kind = getattr(target, "period_kind", "")
    start = target.period_start
    if kind == "year":
        return _("FY%(year)s") % {"year": target.plan.fiscal_year}
    if kind == "quarter":
        return _("Q%(quarter)s (%(start)s – %(end)s)") % {
            "quarter": target.period_index,
            "start": date_format(start, "SHORT_DATE_FORMAT"),
            "end": date_format(target.period_end, "SHORT_DATE_FORMAT"),
        }
    return date_format(start, "YEAR_MONTH_FORMAT")


@register.simple_tag
def measure(value: Any, is_amount: bool, tenant: Tenant) -> str:
    """A review's figure (a string from the selector): money for an amount plan, a plain
    number for a count."""
    return money(value, tenant) if is_amount else number(value)


# "Closed" alone is a won or lost deal in the catalogue: a review's status has its context.
REVIEW_STATUS_LABELS = {
    "draft": pgettext_lazy("review status", "Draft"),
    "closed": pgettext_lazy("review status", "Closed"),
}
BASELINE_LEVELS = {
    "member": _("the member's own deals"),
    "unit": _("the unit's deals"),
    "tenant": _("the company's deals"),
}


@register.filter
def review_status_label(status: str) -> str:
    return str(REVIEW_STATUS_LABELS.get(status, status))


@register.filter
def baseline_level(level: str | None) -> str:
    """Whose deals the factor analysis' baseline came from (SPEC section 10)."""
    return str(BASELINE_LEVELS.get(level or "", level or "-"))


@register.filter
def iso_date(value: str | None) -> str:
    """A selector's ISO date (``2026-10-31``) in the reader's format; ``-`` for none."""
    try:
        return date_format(date.fromisoformat(str(value)), "DATE_FORMAT")
    except ValueError:
        return "-"
