"""incentives' digest sections (SPEC section 7): the member's points of the eve with their
rank, and, for a manager, the commission statements waiting for their approval.

The points read the ledger (one query) and the night's points board of the month, which
the leaderboards step wrote just before the digests (two queries): the rank is the
member's on their own unit's board."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from django.db.models import Count, F
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm.digest import Item, display_names, for_teams, manager_teams, money, register_section
from incentives.models import CommissionStatement, LeaderboardEntry, StatementStatus
from incentives.selectors import member_points, period_of
from tenancy.models import Membership, Tenant


def collect_points(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """The eve's points of each member who earned (or lost) some, with their rank on their
    unit's points board of the month."""
    eve = local_date - timedelta(days=1)
    points = member_points({"eve": (eve, eve)}, [m.pk for m in members])
    earned = {member_id: value for (_name, member_id), value in points.items() if value}
    if not earned:
        return {}
    month = period_of(tenant, "month", eve)
    board = LeaderboardEntry.objects.filter(
        board="points", period_kind="month", period_start=month.start
    )
    ranks = dict(
        board.filter(member_id__in=list(earned), unit_id=F("member__org_unit_id")).values_list(
            "member_id", "rank"
        )
    )
    sizes = dict(
        board.filter(unit_id__in={m.org_unit_id for m in members if m.pk in earned})
        .values("unit_id")
        .annotate(size=Count("id"))
        .values_list("unit_id", "size")
    )
    return {
        member.pk: [
            {
                "kind": "points",
                "id": member.pk,
                "path": "/api/v1/me/incentives/",
                "title": "",
                "points": earned[member.pk],
                "day": eve.isoformat(),
                "rank": ranks.get(member.pk),
                "board_size": sizes.get(member.org_unit_id or 0),
            }
        ]
        for member in members
        if member.pk in earned
    }


def collect_statements_to_approve(
    tenant: Tenant, members: Sequence[Membership], local_date: date
) -> dict[int, list[Item]]:
    """A manager's team's draft statements of periods that have ended: theirs to approve
    (SPEC section 6 "Statement"). One query for all teams."""
    teams = manager_teams(tenant, members)
    if not teams:
        return {}
    everyone = sorted({pk for team in teams.values() for pk in team})
    rows = (
        CommissionStatement.objects.filter(
            member_id__in=everyone, status=StatementStatus.DRAFT, period_end__lt=local_date
        )
        .order_by("period_start", "pk")
        .values_list("member_id", "pk", "plan__name", "period_start", "period_end", "total")
    )
    names = display_names(tenant, members)
    by_member: dict[int, list[Item]] = {}
    for member_id, pk, plan, start, end, total in rows:
        by_member.setdefault(member_id, []).append(
            {
                "kind": "commission_statement",
                "id": pk,
                "path": f"/api/v1/commission-statements/{pk}/",
                "title": plan,
                "member": names.get(member_id, ""),
                "period_start": start.isoformat(),
                "period_end": end.isoformat(),
                "total": str(total),
            }
        )
    return for_teams(teams, by_member)


def _points_line(item: dict[str, Any], tenant: Tenant) -> str:
    earned = ngettext(
        "%(points)d point yesterday", "%(points)d points yesterday", abs(item["points"])
    ) % {"points": item["points"]}
    if item["rank"] is None:
        return earned
    return gettext("%(earned)s; rank %(rank)d of %(size)d in your unit this month") % {
        "earned": earned,
        "rank": item["rank"],
        "size": item["board_size"] or item["rank"],
    }


def _statement_line(item: dict[str, Any], tenant: Tenant) -> str:
    return gettext("%(member)s's statement of %(plan)s, %(start)s to %(end)s: %(total)s") % {
        "member": item["member"],
        "plan": item["title"],
        "start": item["period_start"],
        "end": item["period_end"],
        "total": money(item["total"], tenant),
    }


def register() -> None:
    register_section("points", 55, _("Your points"), collect_points, _points_line)
    register_section(
        "statements_to_approve",
        85,
        _("Commission statements waiting for you"),
        collect_statements_to_approve,
        _statement_line,
    )
