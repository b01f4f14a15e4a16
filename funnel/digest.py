"""funnel's digest sections (SPEC section 7): the member's stale deals and new alerts.

Both read the alerts the night's warnings step wrote just before the digests (one
query each for all members): a stale deal is an open ``stale_deal`` alert on the deal;
a new alert is any other alert about the member opened since the eve's start."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.digest import (
    Item,
    display_names,
    first_per_member,
    for_teams,
    grouped_with_totals,
    manager_teams,
    member_ids,
    register_section,
)
from funnel.models import Alert, AlertStatus, RuleKey
from tenancy.dates import tenant_zone
from tenancy.models import Membership, Tenant

# The rules' names, lazily translated (read in the reader's language when rendered).
_LABELS = dict(RuleKey.choices)


def _ids(members: Sequence[Membership]) -> list[int]:
    return [m.pk for m in members]


def _titles() -> dict[str, str]:
    """Each rule's name in the active language, translated once per collection (not once
    per alert: thousands of lazy strings)."""
    return {str(rule): str(label) for rule, label in _LABELS.items()}


def collect_stale(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    rows = first_per_member(
        Alert.objects.filter(
            owner_id__in=_ids(members),
            rule=RuleKey.STALE_DEAL,
            subject_type="opportunity",
            status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED],
        ),
        "owner_id",
        "-observed",
        "subject_id",
    ).values_list("owner_id", "_total", "subject_id", "params", "observed")
    return grouped_with_totals(
        (
            owner,
            total,
            {
                "kind": "opportunity",
                "id": deal,
                "path": f"/api/v1/opportunities/{deal}/",
                "title": params.get("deal", ""),
                "idle_days": int(observed),
            },
        )
        for owner, total, deal, params, observed in rows
    )


def collect_new_alerts(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    since = datetime.combine(local_date - timedelta(days=1), time.min, tzinfo=tenant_zone(tenant))
    rows = (
        Alert.objects.filter(
            owner_id__in=_ids(members), status=AlertStatus.OPEN, opened_at__gte=since
        )
        .exclude(rule=RuleKey.STALE_DEAL)
        .order_by("opened_at", "pk")
        .values_list("owner_id", "pk", "rule", "severity")
    )
    titles = _titles()
    return member_ids(
        (
            owner,
            {
                "kind": "alert",
                "id": pk,
                "path": f"/api/v1/alerts/{pk}/",
                "title": titles.get(rule, str(rule)),
                "rule": rule,
                "severity": severity,
            },
        )
        for owner, pk, rule, severity in rows
    )


def collect_team_alerts(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """A manager's digest: the alerts opened since the eve's start about the members of
    their team (SPEC section 7), stale deals included (a deal newly going stale is news
    to the manager). One query for all teams."""
    teams = manager_teams(tenant, members)
    if not teams:
        return {}
    since = datetime.combine(local_date - timedelta(days=1), time.min, tzinfo=tenant_zone(tenant))
    everyone = sorted({pk for team in teams.values() for pk in team})
    rows = (
        Alert.objects.filter(owner_id__in=everyone, status=AlertStatus.OPEN, opened_at__gte=since)
        .order_by("opened_at", "pk")
        .values_list("owner_id", "pk", "rule", "severity")
    )
    names = display_names(tenant, members)
    titles = _titles()
    by_member = member_ids(
        (
            owner,
            {
                "kind": "alert",
                "id": pk,
                "path": f"/api/v1/alerts/{pk}/",
                "title": titles.get(rule, str(rule)),
                "rule": rule,
                "severity": severity,
                "member": names.get(owner, ""),
            },
        )
        for owner, pk, rule, severity in rows
    )
    return for_teams(teams, by_member)


def _team_alert_line(item: dict[str, Any], tenant: Tenant) -> str:
    return gettext("%(member)s: %(rule)s") % {
        "member": item["member"],
        "rule": _LABELS.get(item["rule"], item["rule"]),
    }


def _stale_line(item: dict[str, Any], tenant: Tenant) -> str:
    return gettext("%(deal)s has had no activity for %(days)d days") % {
        "deal": item["title"],
        "days": item["idle_days"],
    }


def _alert_line(item: dict[str, Any], tenant: Tenant) -> str:
    return gettext("New alert: %(rule)s") % {"rule": _LABELS.get(item["rule"], item["rule"])}


def register() -> None:
    register_section("stale_deals", 40, _("Deals going stale"), collect_stale, _stale_line)
    register_section("new_alerts", 60, _("New alerts"), collect_new_alerts, _alert_line)
    register_section(
        "team_alerts", 75, _("New alerts in your team"), collect_team_alerts, _team_alert_line
    )
