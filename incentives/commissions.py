"""Commission plans and statements (SPEC section 6): the writes.

* Plans are versioned: every change of their terms writes a new version row; statement
  lines record the version (and the target) they used.
* Statements are computed set-based for every assigned member of a plan and period: one
  query for the targets T, one for the actuals A and the base B per product line (two
  when the base metric differs), a fixed number of writes: the number of queries does
  not grow with the number of members.
* ``draft`` → ``approved`` → ``locked`` by conditional updates (``WHERE status = …``):
  of twenty concurrent approvals one succeeds, the others get a conflict.
* Clawbacks: approved and locked periods are computed again from the data as it is now,
  with the recorded version and target; a difference goes as an adjustment line into
  the member's next draft statement of the plan. An approved statement is never
  rewritten.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.db.models import OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import ProductLine
from incentives import rules, signals
from incentives.models import (
    CommissionAssignment,
    CommissionPlan,
    CommissionPlanVersion,
    CommissionStatement,
    DisputeStatus,
    LineDispute,
    LineKind,
    PayoutMode,
    StatementLine,
    StatementPeriod,
    StatementStatus,
)
from incentives.selectors import member_actuals, member_targets, period_of
from targets.calendar import Period
from targets.metrics import METRICS
from tenancy import selectors as tenancy_selectors
from tenancy.errors import Conflict, Forbidden, Invalid, NotFound
from tenancy.models import Membership, OrgUnit, Role, Tenant
from tenancy.money import minor_unit

TERMS = (
    "statement_period",
    "attainment_metric",
    "base_metric",
    "bands",
    "mode",
    "cap",
    "multipliers",
)


# --- plans -----------------------------------------------------------------------------------


def _decimal(value: Any, field: str, label: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise Invalid({field: _("%(what)s must be a number.") % {"what": label}})
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise Invalid({field: _("%(what)s must be a number.") % {"what": label}}) from None
    if not number.is_finite():
        raise Invalid({field: _("%(what)s must be a number.") % {"what": label}})
    return number


def clean_bands(value: Any) -> list[list[str]]:
    """Bands as ``[[from, rate], ...]`` fractions: at least one, the first from 0,
    strictly ascending, no negative rate (SPEC section 6). Stored as strings."""
    if not isinstance(value, list) or not value:
        raise Invalid({"bands": _("Give at least one band as [from, rate], e.g. [[0, 0.02]].")})
    cleaned: list[tuple[Decimal, Decimal]] = []
    for index, band in enumerate(value):
        field = f"bands.{index}"
        if not isinstance(band, list | tuple) or len(band) != 2:
            raise Invalid({field: _("A band is a pair [from, rate], e.g. [0.8, 0.04].")})
        start = _decimal(band[0], field, _("The band's start"))
        rate = _decimal(band[1], field, _("The band's rate"))
        if index == 0 and start != 0:
            raise Invalid({field: _("The first band must start at 0 %.")})
        if cleaned and start <= cleaned[-1][0]:
            raise Invalid(
                {field: _("Bands must be ascending: this one must start above the one before.")}
            )
        if rate < 0:
            raise Invalid({field: _("A band's rate cannot be negative.")})
        cleaned.append((start, rate))
    rules.validate_bands(cleaned)  # the arithmetic's own check, which the above mirrors
    return [[str(start), str(rate)] for start, rate in cleaned]


def _clean_terms(terms: dict[str, Any]) -> dict[str, Any]:
    cleaned = dict(terms)
    errors: dict[str, str] = {}
    if cleaned.get("statement_period") not in StatementPeriod.values:
        errors["statement_period"] = _("Choose month or quarter.")
    if cleaned.get("attainment_metric") not in METRICS:
        errors["attainment_metric"] = _("Choose one of: %(metrics)s.") % {
            "metrics": ", ".join(METRICS)
        }
    if cleaned.get("base_metric") and cleaned["base_metric"] not in METRICS:
        errors["base_metric"] = _("Choose one of: %(metrics)s.") % {"metrics": ", ".join(METRICS)}
    if cleaned.get("mode") not in PayoutMode.values:
        errors["mode"] = _("Choose marginal or flat.")
    if errors:
        raise Invalid(errors)
    cleaned["base_metric"] = cleaned.get("base_metric") or ""
    cleaned["bands"] = clean_bands(cleaned.get("bands"))
    cap = cleaned.get("cap")
    if cap is not None:
        cap = _decimal(cap, "cap", _("The cap"))
        if cap < 0:
            raise Invalid({"cap": _("The cap cannot be below 0.")})
        cleaned["cap"] = str(cap)
    multipliers = cleaned.get("multipliers") or {}
    if not isinstance(multipliers, dict):
        raise Invalid({"multipliers": _("Give multipliers as {product line id: multiplier}.")})
    parsed: dict[str, str] = {}
    for key, raw in multipliers.items():
        field = f"multipliers.{key}"
        try:
            line_id = int(key)
        except (TypeError, ValueError):
            raise Invalid({field: _("Use a product line's id.")}) from None
        number = _decimal(raw, field, _("A multiplier"))
        if number < 0:
            raise Invalid({field: _("A multiplier cannot be negative.")})
        parsed[str(line_id)] = str(number)
    known = set(
        ProductLine.objects.filter(pk__in=[int(k) for k in parsed]).values_list("pk", flat=True)
    )
    for key in parsed:
        if int(key) not in known:
            raise Invalid({f"multipliers.{key}": _("There is no such product line.")})
    cleaned["multipliers"] = parsed
    return cleaned


def _require_admin(actor: Membership) -> None:
    if actor.role != Role.ADMIN:
        raise Forbidden(_("Only an admin sets up commission plans."))


def _terms_of(plan: CommissionPlan) -> dict[str, Any]:
    return {
        "statement_period": plan.statement_period,
        "attainment_metric": plan.attainment_metric,
        "base_metric": plan.base_metric,
        "bands": plan.bands,
        "mode": plan.mode,
        "cap": None if plan.cap is None else str(plan.cap),
        "multipliers": plan.multipliers,
    }


@transaction.atomic
def plan_create(*, actor: Membership, name: str, **terms: Any) -> CommissionPlan:
    """A new plan at version 1 (admins)."""
    _require_admin(actor)
    if not name or not name.strip():
        raise Invalid({"name": _("Give the plan a name.")})
    if CommissionPlan.objects.filter(name=name.strip()).exists():
        raise Invalid({"name": _("A plan with this name exists already.")})
    terms.setdefault("statement_period", StatementPeriod.MONTH)
    terms.setdefault("mode", PayoutMode.MARGINAL)
    cleaned = _clean_terms(terms)
    plan = CommissionPlan.objects.create(tenant_id=actor.tenant_id, name=name.strip(), **cleaned)
    CommissionPlanVersion.objects.create(
        tenant_id=actor.tenant_id, plan=plan, version=1, terms=_terms_of(plan), created_by=actor
    )
    return plan


@transaction.atomic
def plan_update(*, actor: Membership, plan: CommissionPlan, **changes: Any) -> CommissionPlan:
    """Change a plan: new terms make a new version (statements keep the one they used)."""
    _require_admin(actor)
    locked = CommissionPlan.objects.select_for_update(of=("self",)).get(pk=plan.pk)
    if "name" in changes:
        name = str(changes.pop("name") or "").strip()
        if not name:
            raise Invalid({"name": _("Give the plan a name.")})
        if CommissionPlan.objects.filter(name=name).exclude(pk=locked.pk).exists():
            raise Invalid({"name": _("A plan with this name exists already.")})
        locked.name = name
    if "is_active" in changes:
        locked.is_active = bool(changes.pop("is_active"))
    unknown = set(changes) - set(TERMS)
    if unknown:
        raise Invalid({sorted(unknown)[0]: _("This field cannot be changed.")})
    before = _terms_of(locked)
    cleaned = _clean_terms({**before, **changes})
    for key, value in cleaned.items():
        setattr(locked, key, value)
    after = _terms_of(locked)
    if after != before:
        locked.version += 1
        CommissionPlanVersion.objects.create(
            tenant_id=locked.tenant_id,
            plan=locked,
            version=locked.version,
            terms=after,
            created_by=actor,
        )
    locked.save()
    return locked


def _assigned_members(
    tenant_id: int, assignments: Sequence[tuple[int | None, int | None]]
) -> dict[int, set[int]]:
    """Assignment index → the member ids it covers (a unit: its subtree's members)."""
    unit_ids = {unit for _member, unit in assignments if unit is not None}
    paths = dict(OrgUnit.objects.filter(pk__in=unit_ids).values_list("pk", "path"))
    condition = Q(pk__in=[m for m, _u in assignments if m is not None])
    for path in paths.values():
        condition |= Q(org_unit__path__startswith=path)
    members = list(Membership.objects.filter(condition).values_list("pk", "org_unit__path"))
    covered: dict[int, set[int]] = {}
    for index, (member_id, unit_id) in enumerate(assignments):
        if member_id is not None:
            covered[index] = {member_id}
        else:
            prefix = paths.get(unit_id or 0, "\0")
            covered[index] = {pk for pk, path in members if path and path.startswith(prefix)}
    return covered


@transaction.atomic
def assignment_add(
    *,
    actor: Membership,
    plan: CommissionPlan,
    effective_from: date,
    member: Membership | None = None,
    org_unit: OrgUnit | None = None,
    effective_to: date | None = None,
) -> CommissionAssignment:
    """Apply a plan to a member or a unit's subtree from a date. A member the plan
    already covers on an overlapping range is refused (the plan would pay twice)."""
    _require_admin(actor)
    if (member is None) == (org_unit is None):
        raise Invalid({"member": _("Assign the plan to a member or to a unit, one of them.")})
    if effective_to is not None and effective_to < effective_from:
        raise Invalid({"effective_to": _("The end must not be before the start.")})
    # The plan's row is the lock under which overlapping assignments are checked.
    CommissionPlan.objects.select_for_update(of=("self",)).get(pk=plan.pk)
    overlapping = list(
        CommissionAssignment.objects.filter(plan=plan)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=effective_from))
        .filter(**({} if effective_to is None else {"effective_from__lte": effective_to}))
        .values_list("member_id", "org_unit_id")
    )
    new = (member.pk if member else None, org_unit.pk if org_unit else None)
    covered = _assigned_members(plan.tenant_id, [*overlapping, new])
    already = set().union(*(covered[i] for i in range(len(overlapping)))) if overlapping else set()
    twice = covered[len(overlapping)] & already
    if twice:
        raise Invalid(
            {
                "member" if member else "org_unit": _(
                    "The plan already applies to %(count)s of these members in this period."
                )
                % {"count": len(twice)}
            }
        )
    return CommissionAssignment.objects.create(
        tenant_id=plan.tenant_id,
        plan=plan,
        member=member,
        org_unit=org_unit,
        effective_from=effective_from,
        effective_to=effective_to,
    )


# --- computing -------------------------------------------------------------------------------


def _members_of_plan(plan: CommissionPlan, period: Period) -> list[int]:
    assignments = list(
        CommissionAssignment.objects.filter(plan=plan, effective_from__lte=period.end)
        .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=period.start))
        .values_list("member_id", "org_unit_id")
    )
    if not assignments:
        return []
    covered = _assigned_members(plan.tenant_id, assignments)
    return sorted(set().union(*covered.values()))


def _bands(terms: dict[str, Any]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(start), Decimal(rate)) for start, rate in terms["bands"]]


@dataclass(frozen=True)
class _Terms:
    """A plan version's terms read once for all its members: the bands checked, the
    multipliers and the cap as Decimals."""

    bands: tuple[rules.Band, ...]
    multipliers: dict[int, Decimal]
    cap: Decimal | None


def _read_terms(terms: dict[str, Any]) -> _Terms:
    return _Terms(
        bands=rules.validate_bands(_bands(terms)),
        multipliers={int(k): Decimal(v) for k, v in (terms.get("multipliers") or {}).items()},
        cap=None if terms.get("cap") is None else Decimal(terms["cap"]),
    )


def _payout(
    terms: dict[str, Any],
    *,
    target: Decimal | None,
    actual: Decimal,
    base_by_line: dict[int | None, Decimal],
    currency: str,
    read: _Terms | None = None,
) -> tuple[Decimal, dict[str, Any]]:
    """One commission line's amount and inputs (SPEC section 6, ``rules``); ``read``: the
    terms read already (``_read_terms``), for the many members of one plan."""
    read = read or _read_terms(terms)
    multipliers = read.multipliers
    line_multipliers: dict[int | None, Decimal] = dict(multipliers.items())
    base = rules.multiplied_base(base_by_line, line_multipliers)
    payout = rules.commission_payout(
        read.bands,
        terms["mode"],
        target=target,
        actual=actual,
        base=base,
        quantum=minor_unit(currency),
        cap=read.cap,
    )
    inputs = {
        "T": None if target is None else str(target),
        "A": str(actual),
        "B": str(base),
        "base_by_line": {str(k): str(v) for k, v in base_by_line.items() if v},
        "multipliers": {str(k): str(v) for k, v in multipliers.items()},
        "mode": terms["mode"],
        "attainment": None if payout.attainment is None else str(payout.attainment),
        "band_index": payout.band_index,
        "bands_reached": [
            {
                "from": str(p.start),
                "rate": str(p.rate),
                "base": str(p.base_part),
                "payout": str(p.payout),
            }  # fmt: skip
            for p in payout.parts
        ],
        "rates": [str(rate) for rate in payout.rates],
        "exact": str(payout.exact),
        "cap": terms.get("cap"),
        "capped": payout.capped,
        "no_target": payout.no_target,
    }
    return payout.amount, inputs


def _figures(
    tenant: Tenant,
    terms: dict[str, Any],
    period: Period,
    up_to: date,
    member_ids: list[int],
    targets: dict[int, Decimal | None] | None = None,
) -> dict[int, tuple[Decimal | None, Decimal, dict[int | None, Decimal]]]:
    """T, A and B per product line of each member: one query for T (unless given), one
    for A and B (two when the base metric differs)."""
    metric = terms["attainment_metric"]
    base_metric = terms["base_metric"] or metric
    ranges = {"p": (period.start, min(up_to, period.end))}
    if targets is None:
        found = member_targets(tenant, metric, [period], member_ids)
        targets = {pk: found[(pk, period)] for pk in member_ids}
    actual_rows = member_actuals(tenant, metric, ranges, member_ids, by_product_line=True)
    base_rows = (
        actual_rows
        if base_metric == metric
        else member_actuals(tenant, base_metric, ranges, member_ids, by_product_line=True)
    )
    actuals: dict[int, Decimal] = defaultdict(Decimal)
    for (_name, member_id, _line), value in actual_rows.items():
        actuals[member_id] += value
    bases: dict[int, dict[int | None, Decimal]] = defaultdict(dict)
    for (_name, member_id, line), value in base_rows.items():
        bases[member_id][line] = value
    return {pk: (targets[pk], actuals[pk], bases[pk]) for pk in member_ids}


def _refresh_totals(statement_ids: list[int]) -> None:
    """A statement's total is the sum of its lines: one UPDATE for all of them."""
    if not statement_ids:
        return
    line_total = (
        StatementLine.objects.filter(statement_id=OuterRef("pk"))
        .values("statement_id")
        .annotate(total=Sum("amount"))
        .values("total")[:1]
    )
    CommissionStatement.objects.filter(pk__in=statement_ids).update(
        total=Coalesce(Subquery(line_total), Decimal(0)), computed_at=timezone.now()
    )


_UPDATE_LINES = """
    UPDATE incentives_statementline l SET amount = n.amount, inputs = n.inputs
    FROM jsonb_to_recordset(%(lines)s::jsonb) AS n(statement bigint, amount numeric, inputs jsonb)
    WHERE l.tenant_id = %(tenant)s AND l.statement_id = n.statement AND l.kind = 'commission'
"""
_INSERT_LINES = """
    INSERT INTO incentives_statementline (tenant_id, statement_id, kind, amount, inputs, created_at)
    SELECT %(tenant)s, n.statement, 'commission', n.amount, n.inputs, now()
    FROM jsonb_to_recordset(%(lines)s::jsonb) AS n(statement bigint, amount numeric, inputs jsonb)
    WHERE NOT EXISTS (
        SELECT 1 FROM incentives_statementline l
        WHERE l.tenant_id = %(tenant)s AND l.statement_id = n.statement AND l.kind = 'commission')
"""
_UPDATE_DRAFTS = """
    UPDATE incentives_commissionstatement s
    SET as_of = %(as_of)s, computed_at = now(),
        total = (SELECT COALESCE(SUM(l.amount), 0) FROM incentives_statementline l
                 WHERE l.tenant_id = %(tenant)s AND l.statement_id = s.id)
    FROM jsonb_to_recordset(%(lines)s::jsonb) AS n(statement bigint)
    WHERE s.tenant_id = %(tenant)s AND s.id = n.statement
"""


def _write_commission_lines(tenant: Tenant, lines: list[dict[str, Any]], as_of: date) -> None:
    """Each draft's commission line updated in place (a dispute on it keeps its line) or
    inserted, then the drafts' totals: three statements whatever the number of members,
    the rows passed as one JSON document."""
    if not lines:
        return
    params: dict[str, Any] = {"tenant": tenant.pk, "lines": json.dumps(lines), "as_of": as_of}
    with connection.cursor() as cursor:
        cursor.execute(_UPDATE_LINES, params)
        cursor.execute(_INSERT_LINES, params)
        cursor.execute(_UPDATE_DRAFTS, params)


def statements_compute(
    *,
    tenant: Tenant,
    as_of: date,
    plans: list[CommissionPlan] | None = None,
    member_ids: list[int] | None = None,
) -> dict[str, int]:
    """Compute the draft statements of the period containing ``as_of`` for every assigned
    member of every active plan (or of ``plans``, only ``member_ids``), with the figures up
    to ``as_of``. Approved and locked statements are left as they are. Set-based: a fixed
    number of queries per plan, whatever the number of members."""
    plans = plans if plans is not None else list(CommissionPlan.objects.filter(is_active=True))
    computed = 0
    with transaction.atomic():
        for plan in plans:
            period = period_of(tenant, plan.statement_period, as_of)
            members = _members_of_plan(plan, period)
            if member_ids is not None:
                members = [pk for pk in members if pk in set(member_ids)]
            if not members:
                continue
            terms = _terms_of(plan)
            figures = _figures(tenant, terms, period, as_of, members)
            wanted = set(members)
            existing = {
                member_id: status
                for member_id, status in CommissionStatement.objects.filter(
                    plan=plan, period_start=period.start
                ).values_list("member_id", "status")
                if member_id in wanted
            }
            CommissionStatement.objects.bulk_create(
                [
                    CommissionStatement(
                        tenant_id=tenant.pk,
                        member_id=pk,
                        plan=plan,
                        period_kind=period.kind,
                        period_start=period.start,
                        period_end=period.end,
                        as_of=as_of,
                    )
                    for pk in members
                    if pk not in existing
                ],
                ignore_conflicts=True,
            )
            drafts = {
                member_id: statement_id
                for member_id, statement_id in CommissionStatement.objects.filter(
                    plan=plan, period_start=period.start, status=StatementStatus.DRAFT
                ).values_list("member_id", "pk")
                if member_id in wanted
            }
            lines = []
            read = _read_terms(terms) if drafts else None
            for member_id, statement_id in drafts.items():
                target, actual, base_by_line = figures[member_id]
                amount, inputs = _payout(
                    terms, target=target, actual=actual, base_by_line=base_by_line,
                    currency=tenant.currency, read=read,
                )  # fmt: skip
                inputs.update(
                    plan_version=plan.version,
                    period=[period.start.isoformat(), period.end.isoformat()],
                    as_of=as_of.isoformat(),
                )
                lines.append({"statement": statement_id, "amount": str(amount), "inputs": inputs})
            _write_commission_lines(tenant, lines, as_of)
            computed += len(lines)
    return {"statements": computed}


# --- clawbacks -------------------------------------------------------------------------------


def _next_draft(tenant: Tenant, plan: CommissionPlan, member_id: int, as_of: date) -> int:
    """The member's draft statement of the plan for the period of ``as_of`` (or the next
    period's when that one is approved already), created when missing."""
    day = as_of
    for _attempt in range(24):
        period = period_of(tenant, plan.statement_period, day)
        statement, _created = CommissionStatement.objects.get_or_create(
            tenant_id=tenant.pk,
            member_id=member_id,
            plan=plan,
            period_start=period.start,
            defaults={"period_kind": period.kind, "period_end": period.end, "as_of": as_of},
        )
        if statement.status == StatementStatus.DRAFT:
            return int(statement.pk)
        day = period.end + timedelta(days=1)
    raise Conflict(_("No draft statement could be found for the adjustment."))


def statements_clawback(*, tenant: Tenant, as_of: date) -> dict[str, int]:
    """Compute every approved or locked statement again from the data as it is now, with
    the plan version and target recorded on its commission line (SPEC section 6
    "Clawbacks"); where the result differs from what was paid (the line plus the earlier
    adjustments for that period) the difference goes as an adjustment line into the
    member's next draft statement of the same plan. Safe to run twice."""
    closed = list(
        CommissionStatement.objects.filter(
            status__in=[StatementStatus.APPROVED, StatementStatus.LOCKED], period_end__lt=as_of
        ).select_related("plan")
    )
    if not closed:
        return {"checked": 0, "adjustments": 0}
    ids = [statement.pk for statement in closed]
    commission = {
        line.statement_id: line
        for line in StatementLine.objects.filter(statement_id__in=ids, kind=LineKind.COMMISSION)
    }
    paid: dict[int, Decimal] = defaultdict(Decimal)
    for statement_id, amount in StatementLine.objects.filter(
        Q(statement_id__in=ids, kind=LineKind.COMMISSION) | Q(corrects_id__in=ids)
    ).values_list(Coalesce("corrects_id", "statement_id"), "amount"):
        paid[statement_id] += amount
    versions = {
        (plan_id, version): terms
        for plan_id, version, terms in CommissionPlanVersion.objects.filter(
            plan_id__in={s.plan_id for s in closed}
        ).values_list("plan_id", "version", "terms")
    }
    groups: dict[tuple[int, int, date], list[CommissionStatement]] = defaultdict(list)
    for statement in closed:
        line = commission.get(statement.pk)
        if line is None:
            continue
        groups[
            (statement.plan_id, int(line.inputs["plan_version"]), statement.period_start)
        ].append(statement)
    adjustments = []
    with transaction.atomic():
        for (plan_id, version, _start), statements in groups.items():
            terms = versions[(plan_id, version)]
            first = statements[0]
            period = Period(first.period_kind, first.period_start, first.period_end)  # type: ignore[arg-type]
            recorded = {
                s.member_id: (
                    None
                    if commission[s.pk].inputs.get("T") is None
                    else Decimal(commission[s.pk].inputs["T"])
                )
                for s in statements
            }
            figures = _figures(tenant, terms, period, period.end, list(recorded), targets=recorded)
            read = _read_terms(terms)
            for statement in statements:
                target, actual, base_by_line = figures[statement.member_id]
                amount, inputs = _payout(
                    terms, target=target, actual=actual, base_by_line=base_by_line,
                    currency=tenant.currency, read=read,
                )  # fmt: skip
                difference = amount - paid[statement.pk]
                if difference == 0:
                    continue
                inputs.update(
                    cause="recomputed",
                    plan_version=version,
                    period=[period.start.isoformat(), period.end.isoformat()],
                    corrects_statement=statement.pk,
                    paid=str(paid[statement.pk]),
                    due=str(amount),
                )
                adjustments.append(
                    StatementLine(
                        tenant_id=tenant.pk,
                        statement_id=_next_draft(
                            tenant, statement.plan, statement.member_id, as_of
                        ),
                        kind=LineKind.ADJUSTMENT,
                        amount=difference,
                        inputs=inputs,
                        corrects=statement,
                    )
                )
        StatementLine.objects.bulk_create(adjustments)
        _refresh_totals(sorted({line.statement_id for line in adjustments}))
    return {"checked": len(closed), "adjustments": len(adjustments)}


# --- approval, lock, disputes ----------------------------------------------------------------


def visible_statements_for(actor: Membership) -> Any:
    return CommissionStatement.objects.filter(tenancy_selectors.owned_by_visible(actor, "member"))


def get_statement(actor: Membership, statement_id: Any) -> CommissionStatement:
    """The statement if the actor may see it (own, their subtree's, or any for an admin);
    else ``NotFound``, as for one that does not exist."""
    try:
        return visible_statements_for(actor).select_related("member").get(pk=statement_id)
    except (CommissionStatement.DoesNotExist, ValueError, TypeError):
        raise NotFound() from None


def _may_approve(actor: Membership, member: Membership) -> bool:
    if actor.role == Role.ADMIN:
        return True
    return actor.pk != member.pk and tenancy_selectors.is_manager_of(actor, member)


def statement_approve(*, actor: Membership, statement_id: Any) -> CommissionStatement:
    """draft → approved, by a manager above the member or an admin. A conditional update:
    of concurrent approvals one succeeds and the others are a conflict."""
    statement = get_statement(actor, statement_id)
    if not _may_approve(actor, statement.member):
        raise Forbidden(_("A statement is approved by a manager above its member or an admin."))
    with transaction.atomic():
        changed = CommissionStatement.objects.filter(
            pk=statement.pk, status=StatementStatus.DRAFT
        ).update(status=StatementStatus.APPROVED, approved_by=actor, approved_at=timezone.now())
        if changed:
            statement.refresh_from_db()
            signals.statement_approved.send(
                sender=CommissionStatement, statement=statement, member=actor
            )
    if not changed:
        raise Conflict(_("Only a draft statement can be approved; this one is not a draft now."))
    return statement


def statement_lock(*, actor: Membership, statement_id: Any) -> CommissionStatement:
    """approved → locked (for payroll), by an admin; a conditional update."""
    statement = get_statement(actor, statement_id)
    if actor.role != Role.ADMIN:
        raise Forbidden(_("Only an admin locks a statement for payroll."))
    with transaction.atomic():
        changed = CommissionStatement.objects.filter(
            pk=statement.pk, status=StatementStatus.APPROVED
        ).update(status=StatementStatus.LOCKED, locked_by=actor, locked_at=timezone.now())
    if not changed:
        raise Conflict(_("Only an approved statement can be locked; this one is not approved now."))
    statement.refresh_from_db()
    return statement


def statement_recompute(
    *, actor: Membership, statement_id: Any, as_of: date
) -> CommissionStatement:
    """Recompute one draft statement on demand."""
    statement = get_statement(actor, statement_id)
    if statement.status != StatementStatus.DRAFT:
        raise Conflict(_("Only a draft statement is recomputed; approved ones never change."))
    tenant = Tenant.objects.get(pk=statement.tenant_id)
    period = period_of(tenant, statement.plan.statement_period, as_of)
    if period.start != statement.period_start:
        as_of = statement.period_end
    statements_compute(
        tenant=tenant, as_of=as_of, plans=[statement.plan], member_ids=[statement.member_id]
    )
    statement.refresh_from_db()
    return statement


@transaction.atomic
def line_dispute(
    *, actor: Membership, statement_id: Any, line_id: Any, comment: str
) -> LineDispute:
    """The statement's member disputes one of its lines with a comment."""
    statement = get_statement(actor, statement_id)
    if statement.member_id != actor.pk:
        raise Forbidden(_("Only the statement's member disputes its lines."))
    if not comment or not comment.strip():
        raise Invalid({"comment": _("Say what is wrong with the line.")})
    try:
        line = StatementLine.objects.get(pk=line_id, statement=statement)
    except (StatementLine.DoesNotExist, ValueError, TypeError):
        raise NotFound() from None
    if LineDispute.objects.filter(line=line, status=DisputeStatus.OPEN).exists():
        raise Conflict(_("This line is already disputed; wait for the answer."))
    return LineDispute.objects.create(
        tenant_id=actor.tenant_id, line=line, raised_by=actor, comment=comment.strip()
    )


def dispute_resolve(
    *,
    actor: Membership,
    statement_id: Any,
    dispute_id: Any,
    accept: bool,
    amount: Decimal | None = None,
    reason: str = "",
    as_of: date,
) -> LineDispute:
    """The approver answers a dispute: an adjustment line (into this statement when it is
    a draft, else into the member's next draft) or a rejection with a reason."""
    statement = get_statement(actor, statement_id)
    if not _may_approve(actor, statement.member):
        raise Forbidden(_("A dispute is answered by a manager above the member or an admin."))
    if not reason.strip():
        raise Invalid({"reason": _("Give the reason for the answer.")})
    if accept and (amount is None or amount == 0):
        raise Invalid({"amount": _("Give the adjustment's amount (not 0).")})
    with transaction.atomic():
        try:
            dispute = LineDispute.objects.select_for_update(of=("self",)).get(
                pk=dispute_id, line__statement=statement
            )
        except (LineDispute.DoesNotExist, ValueError, TypeError):
            raise NotFound() from None
        if dispute.status != DisputeStatus.OPEN:
            raise Conflict(_("This dispute has been answered already."))
        if accept:
            assert amount is not None
            tenant = Tenant.objects.get(pk=statement.tenant_id)
            target = (
                statement.pk
                if statement.status == StatementStatus.DRAFT
                else _next_draft(tenant, statement.plan, statement.member_id, as_of)
            )
            dispute.adjustment = StatementLine.objects.create(
                tenant_id=statement.tenant_id,
                statement_id=target,
                kind=LineKind.ADJUSTMENT,
                amount=amount,
                inputs={
                    "cause": "dispute",
                    "dispute": dispute.pk,
                    "reason": reason.strip(),
                    "period": [
                        statement.period_start.isoformat(),
                        statement.period_end.isoformat(),
                    ],
                },  # fmt: skip
                corrects=None if target == statement.pk else statement,
            )
            _refresh_totals([target])
        dispute.status = DisputeStatus.ACCEPTED if accept else DisputeStatus.REJECTED
        dispute.resolution = reason.strip()
        dispute.resolved_by = actor
        dispute.resolved_at = timezone.now()
        dispute.save()
    return dispute


# --- explanations ----------------------------------------------------------------------------


def _percent(value: str | None) -> str:
    if value is None:
        return "–"
    return f"{(Decimal(value) * 100).quantize(Decimal('0.01'))} %"


def line_explanation(line: StatementLine) -> str:
    """A sentence saying how the line was computed, in the active language, from the
    inputs recorded on it (so it reads the same later and in either language)."""
    inputs = line.inputs or {}
    period = " – ".join(inputs.get("period", []))
    if line.kind == LineKind.ADJUSTMENT:
        if inputs.get("cause") == "dispute":
            return _("Adjustment of %(amount)s for %(period)s after a dispute: %(reason)s") % {
                "amount": line.amount,
                "period": period,
                "reason": inputs.get("reason", ""),
            }
        return _(
            "Adjustment for %(period)s: recomputed from today's data it comes to %(due)s, "
            "%(paid)s was paid, so the difference is %(amount)s."
        ) % {"period": period, "due": inputs.get("due"), "paid": inputs.get("paid"),
             "amount": line.amount}  # fmt: skip
    if inputs.get("no_target"):
        sentence = _(
            "No target for %(period)s, so only the first band's rate %(rate)s applies to the "
            "base %(base)s: %(amount)s."
        ) % {"period": period, "rate": _percent((inputs.get("rates") or [None])[0]),
             "base": inputs.get("B"), "amount": line.amount}  # fmt: skip
    elif inputs.get("mode") == PayoutMode.FLAT:
        sentence = _(
            "Attainment %(attainment)s (actual %(actual)s of target %(target)s) is in the band "
            "from %(start)s, so its rate %(rate)s applies to the base %(base)s: %(amount)s."
        ) % {"attainment": _percent(inputs.get("attainment")), "actual": inputs.get("A"),
             "target": inputs.get("T"),
             "start": _percent(inputs["bands_reached"][0]["from"]),
             "rate": _percent(inputs["bands_reached"][0]["rate"]), "base": inputs.get("B"),
             "amount": line.amount}  # fmt: skip
    else:
        parts = "; ".join(
            _("%(rate)s on %(base)s") % {"rate": _percent(band["rate"]), "base": band["base"]}
            for band in inputs.get("bands_reached", [])
        )
        sentence = _(
            "Attainment %(attainment)s (actual %(actual)s of target %(target)s), paid band by "
            "band: %(parts)s; total %(amount)s."
        ) % {"attainment": _percent(inputs.get("attainment")), "actual": inputs.get("A"),
             "target": inputs.get("T"), "parts": parts, "amount": line.amount}  # fmt: skip
    if inputs.get("capped"):
        sentence += " " + _("The plan's cap of %(cap)s applied.") % {"cap": inputs.get("cap")}
    return sentence


def statement_estimates(*, member: Membership, as_of: date) -> list[dict[str, Any]]:
    """What each of the member's plans would pay for the current period at the current
    attainment (the phone's estimate): computed, not stored."""
    tenant = Tenant.objects.get(pk=member.tenant_id)
    estimates = []
    for plan in CommissionPlan.objects.filter(is_active=True).order_by("name"):
        period = period_of(tenant, plan.statement_period, as_of)
        if member.pk not in _members_of_plan(plan, period):
            continue
        terms = _terms_of(plan)
        target, actual, base_by_line = _figures(tenant, terms, period, as_of, [member.pk])[
            member.pk
        ]
        amount, inputs = _payout(
            terms, target=target, actual=actual, base_by_line=base_by_line, currency=tenant.currency
        )
        inputs.update(
            plan_version=plan.version, period=[period.start.isoformat(), period.end.isoformat()]
        )
        estimates.append(
            {
                "plan": plan.pk,
                "plan_name": plan.name,
                "period_start": period.start,
                "period_end": period.end,
                "amount": amount,
                "explanation": line_explanation(
                    StatementLine(kind=LineKind.COMMISSION, amount=amount, inputs=inputs)
                ),
            }  # fmt: skip
        )
    return estimates
