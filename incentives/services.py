"""Writes of incentives (SPEC section 6): points awards and undos.

Points are written inside the transaction of the CRM event that earns them (the
receiver of ``crm.events.record_event``), so an award commits with its event or not at
all, and the night's catch-up (:func:`points_catch_up`) runs the very same statements
over a range of days. The ledger's unique constraint (rule, source, member, kind) makes
every replay award nothing; the daily cap is applied in commit order under a
transaction-level advisory lock per rule, member and local day.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from incentives import rules
from incentives.models import EntryKind, LeaderboardEntry, PointEntry, PointRule
from incentives.points import EARNING, EVENTS_OF_SOURCE, UNDONE
from incentives.selectors import (
    PERIOD_KINDS,
    board_key,
    board_members,
    board_values,
    period_of,
    previous_period,
)
from targets import calendar
from targets.models import PlanStatus, TargetPlan
from tenancy.models import OrgUnit, Tenant
from tenancy.money import round_money

_CANDIDATES = """
    SELECT {rule_id}, {event!r}, e.source_type, e.source_id, e.member_id, e.occurred_at, e.day
    FROM ({sql}) e
    WHERE e.member_id IS NOT NULL {narrow}
      AND NOT EXISTS (
          SELECT 1 FROM incentives_pointentry pe
          WHERE pe.tenant_id = %(tenant)s AND pe.rule_id = {rule_id}
            AND pe.source_type = e.source_type AND pe.source_id = e.source_id
            AND pe.member_id = e.member_id AND pe.kind = 'award')
"""

Candidate = tuple[int, str, str, int, int, datetime, date]


def _candidates(
    tenant: Tenant,
    active: list[PointRule],
    *,
    narrow_ids: list[int] | None,
    days: tuple[date, date] | None,
) -> list[Candidate]:
    """The rows that earn an active rule's award and have none yet, in commit order."""
    narrow = ""
    if narrow_ids is not None:
        narrow += " AND e.narrow_id = ANY(%(ids)s)"
    if days is not None:
        narrow += " AND e.day BETWEEN %(first)s AND %(last)s"
    parts = [
        _CANDIDATES.format(
            rule_id=int(rule.pk), event=str(rule.event), sql=EARNING[rule.event], narrow=narrow
        )
        for rule in active
    ]
    statement = " UNION ALL ".join(parts) + " ORDER BY 6, 4"
    params: dict[str, Any] = {"tenant": tenant.pk, "tz": tenant.time_zone, "ids": narrow_ids}
    if days is not None:
        params.update(first=days[0], last=days[1])
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return [tuple(row) for row in cursor.fetchall()]


def _lock_key(tenant_id: int, rule_id: int, member_id: int, day: date) -> int:
    digest = hashlib.blake2b(
        f"points:{tenant_id}:{rule_id}:{member_id}:{day}".encode(), digest_size=8
    )
    return int.from_bytes(digest.digest(), "big", signed=True)


def _lock_days(tenant: Tenant, keys: set[tuple[int, int, date]]) -> None:
    """Serialise awards of one rule, member and day until this transaction ends, in a
    fixed order (no deadlock): the daily cap then counts them in commit order."""
    ordered = sorted({_lock_key(int(tenant.pk), *key) for key in keys})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM "
            "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS ordered",
            [ordered],
        )


def _awarded(tenant: Tenant, keys: set[tuple[int, int, date]]) -> dict[tuple[int, int, date], int]:
    """Points of award rows already in the ledger per (rule, member, day); undo rows are
    not subtracted (an undo frees no room under the cap)."""
    rule_ids, member_ids, days = zip(*sorted(keys), strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT pe.rule_id, pe.member_id, pe.day, SUM(pe.points)
            FROM incentives_pointentry pe
            JOIN unnest(%s::bigint[], %s::bigint[], %s::date[]) AS k(rule_id, member_id, day)
              ON k.rule_id = pe.rule_id AND k.member_id = pe.member_id AND k.day = pe.day
            WHERE pe.tenant_id = %s AND pe.kind = 'award'
            GROUP BY 1, 2, 3
            """,
            [list(rule_ids), list(member_ids), list(days), tenant.pk],
        )
        return {(r, m, d): int(total) for r, m, d, total in cursor.fetchall()}


def _active_rules(events: tuple[str, ...] | None) -> list[PointRule]:
    rows = PointRule.objects.filter(is_active=True).order_by("pk")
    if events is not None:
        rows = rows.filter(event__in=events)
    return list(rows)


def points_award(
    *,
    tenant: Tenant,
    events: tuple[str, ...] | None = None,
    narrow_ids: list[int] | None = None,
    days: tuple[date, date] | None = None,
) -> int:
    """Award the points that rows earn and have not yet earned (SPEC section 6 "Points").

    ``events`` limits the rules (None: every active rule); ``narrow_ids`` limits the rows
    to those a change touched (see ``incentives.points``); ``days`` to a range of local
    days. Each (rule, source, member) earns once, ever; under a daily cap an event that
    would pass it gets a row of 0 points that says so. Returns the rows written.
    """
    active = _active_rules(events)
    if not active:
        return 0
    found = _candidates(tenant, active, narrow_ids=narrow_ids, days=days)
    if not found:
        return 0
    by_id = {int(rule.pk): rule for rule in active}
    capped_keys = {
        (rule_id, member_id, day)
        for rule_id, _event, _type, _source, member_id, _at, day in found
        if by_id[rule_id].daily_cap is not None
    }
    already: dict[tuple[int, int, date], int] = {}
    if capped_keys:
        _lock_days(tenant, capped_keys)
        # Read again under the lock: a transaction that held it has committed its rows.
        found = _candidates(tenant, active, narrow_ids=narrow_ids, days=days)
        already = _awarded(tenant, capped_keys) if found else {}
    per_rule: dict[int, list[Candidate]] = defaultdict(list)
    for row in found:
        per_rule[row[0]].append(row)
    entries = []
    for rule_id, rows in per_rule.items():
        rule = by_id[rule_id]
        awards = rules.award_in_order(
            (((member_id, day), rule.points) for _r, _e, _t, _s, member_id, _a, day in rows),
            rule.daily_cap,
            already_awarded={(m, d): total for (r, m, d), total in already.items() if r == rule_id},
        )
        for (_r, event, source_type, source_id, member_id, occurred_at, day), points in zip(
            rows, awards, strict=True
        ):
            entries.append(
                PointEntry(
                    tenant_id=tenant.pk,
                    rule_id=rule_id,
                    member_id=member_id,
                    event=event,
                    source_type=source_type,
                    source_id=source_id,
                    kind=EntryKind.AWARD,
                    points=points,
                    capped=points == 0,
                    day=day,
                    occurred_at=occurred_at,
                )
            )
    return len(PointEntry.objects.bulk_create(entries, ignore_conflicts=True))


_UNDO = """
    INSERT INTO incentives_pointentry
        (tenant_id, rule_id, member_id, event, source_type, source_id, kind, points, capped,
         day, occurred_at, created_at)
    SELECT pe.tenant_id, pe.rule_id, pe.member_id, pe.event, pe.source_type, pe.source_id,
           'undo', -pe.points, false, (now() AT TIME ZONE %(tz)s)::date, now(), now()
    FROM incentives_pointentry pe
    WHERE pe.tenant_id = %(tenant)s AND pe.kind = 'award' AND pe.points > 0
      AND pe.event = %(event)s {narrow} AND {undone}
    ON CONFLICT DO NOTHING
"""


def points_undo(
    *, tenant: Tenant, events: tuple[str, ...] | None = None, source_ids: list[int] | None = None
) -> int:
    """Undo, by a negative row, each award whose source was undone (a deal reopened, a
    payment reversed, a follow-up reopened or deleted), once. Returns the rows written."""
    written = 0
    narrow = " AND pe.source_id = ANY(%(ids)s)" if source_ids is not None else ""
    with connection.cursor() as cursor:
        for event, undone in UNDONE.items():
            if events is not None and event not in events:
                continue
            cursor.execute(
                _UNDO.format(narrow=narrow, undone=undone),
                {"tenant": tenant.pk, "tz": tenant.time_zone, "event": event, "ids": source_ids},
            )
            written += cursor.rowcount
    return written


def points_for_record(*, source: Any) -> int:
    """Award and undo what a change of one CRM record earns (the event receiver)."""
    events = EVENTS_OF_SOURCE.get(type(source).__name__)
    if not events:
        return 0
    if not _active_rules(events):
        return 0  # the common case of a tenant without point rules: one query
    tenant = Tenant.objects.get(pk=source.tenant_id)
    ids = [int(source.pk)]
    reverses = getattr(source, "reverses_id", None)
    if reverses is not None:
        ids.append(int(reverses))
    undoable = tuple(event for event in events if event in UNDONE)
    written = 0
    if undoable:
        written += points_undo(tenant=tenant, events=undoable, source_ids=ids)
    return written + points_award(tenant=tenant, events=events, narrow_ids=ids)


def points_catch_up(*, tenant: Tenant, as_of: date, days: int = 1) -> dict[str, int]:
    """The night's catch-up: award what the ``days`` local days up to ``as_of`` earned and
    no event awarded (a bulk load, a lost worker), and undo what was undone. Set-based:
    one statement per rule for the awards, one per undoable event; safe to run twice."""
    first = as_of - timedelta(days=days - 1)
    with transaction.atomic():
        undone = points_undo(tenant=tenant)
        awarded = points_award(tenant=tenant, days=(first, as_of))
    return {"awarded": awarded, "undone": undone}


# --- leaderboards ----------------------------------------------------------------------------

# One board and period for every unit at once: the members come in the board's order over
# the whole tenant (``rules.competition_ranks``: value descending, ties by display name,
# those without a value last), so a unit's board is that order restricted to its subtree
# and its competition ranks are SQL's RANK() within the unit (exact numeric comparison,
# the same as Decimal's); a member not started by the end of the previous period has no
# previous value, hence no previous rank. The values are sent exact and rounded by the
# columns on insert, as the ORM's insert did.
_BOARD_ROWS = """
    INSERT INTO incentives_leaderboardentry
        (tenant_id, unit_id, board, period_kind, period_start, period_end, as_of, member_id,
         position, value, rank, previous_rank, actual, target, computed_at)
    SELECT %(tenant)s, u.id, %(board)s, %(kind)s, %(start)s, %(end)s, %(as_of)s, m.id,
           ROW_NUMBER() OVER (PARTITION BY u.id ORDER BY m.ord) - 1,
           m.value,
           CASE WHEN m.value IS NOT NULL
                THEN RANK() OVER (PARTITION BY u.id ORDER BY m.value DESC NULLS LAST) END,
           CASE WHEN m.before IS NOT NULL
                THEN RANK() OVER (PARTITION BY u.id ORDER BY m.before DESC NULLS LAST) END,
           m.actual, m.target, %(now)s
    FROM unnest(%(unit_ids)s::bigint[], %(unit_paths)s::text[]) WITH ORDINALITY AS u(id, path, ord)
    JOIN unnest(%(member_ids)s::bigint[], %(paths)s::text[], %(values)s::numeric[],
                %(befores)s::numeric[], %(actuals)s::numeric[], %(targets)s::numeric[])
         WITH ORDINALITY AS m(id, path, value, before, actual, target, ord)
      ON starts_with(m.path, u.path)
    ORDER BY u.ord, m.ord
"""


def _board_columns(
    members: list[Any], values: Any, previous_end: date, currency: str
) -> dict[str, list[Any]]:
    """The members in the board's order over the whole tenant, as the columns of
    ``_BOARD_ROWS``: id, unit path, value, previous value (None when not on the previous
    board), actual and target (half-up to the minor unit)."""
    by_pk = {member.pk: member for member in members}
    ordered = rules.competition_ranks((m.pk, m.name, values[m.pk][0]) for m in members)
    columns: dict[str, list[Any]] = {
        "member_ids": [], "paths": [], "values": [], "befores": [], "actuals": [],
        "targets": [],
    }  # fmt: skip
    for row in ordered:
        member = by_pk[row.key]
        _value, before, actual, target = values[row.key]
        columns["member_ids"].append(row.key)
        columns["paths"].append(member.unit_path)
        columns["values"].append(row.value)
        columns["befores"].append(before if member.start_date <= previous_end else None)
        columns["actuals"].append(actual)
        columns["targets"].append(None if target is None else round_money(target, currency))
    return columns


def leaderboards_refresh(*, tenant: Tenant, as_of: date) -> dict[str, int]:
    """The night's leaderboards (SPEC section 6): for every unit, every period kind
    containing ``as_of`` and every board a rep sees (points, and attainment of each metric
    with a published plan), the ranked rows, replacing the stored ones.

    The figures are read once per board and period for the whole tenant (three queries)
    and put in the board's order once; one statement then writes every unit's rows, ranked
    within the unit (``_BOARD_ROWS``). Safe to run twice. The live board
    (``selectors.leaderboard``, ``rank_board``) ranks the same way, unit by unit.
    """
    fiscal_year = calendar.fiscal_year_of(as_of, tenant.fiscal_year_start_month)
    metrics = sorted(
        set(
            TargetPlan.objects.filter(
                fiscal_year=fiscal_year, status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED]
            ).values_list("metric", flat=True)
        )
    )
    boards: list[tuple[str, str | None]] = [("points", None)]
    boards += [("attainment", metric) for metric in metrics]
    members = board_members(None)
    units = list(OrgUnit.objects.values_list("pk", "path"))
    unit_ids = [pk for pk, _path in units]
    unit_paths = [path for _pk, path in units]
    now = timezone.now()
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for by, metric in boards:
            key = board_key(by, metric)
            for kind in PERIOD_KINDS:
                period = period_of(tenant, kind, as_of)
                previous = previous_period(tenant, period)
                values = board_values(tenant, members, by, metric, period, previous, as_of)
                LeaderboardEntry.objects.filter(
                    board=key, period_kind=kind, period_start=period.start
                ).delete()
                if not members or not units:
                    continue
                params: dict[str, Any] = {
                    "tenant": tenant.pk,
                    "board": key,
                    "kind": kind,
                    "start": period.start,
                    "end": period.end,
                    "as_of": as_of,
                    "now": now,
                    "unit_ids": unit_ids,
                    "unit_paths": unit_paths,
                    **_board_columns(members, values, previous.end, tenant.currency),
                }
                cursor.execute(_BOARD_ROWS, params)
                written += cursor.rowcount
    return {"boards": len(boards) * len(PERIOD_KINDS), "rows": written}
