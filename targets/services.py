"""Writes of the targets app (SPEC section 4): plans, decomposition, publishing, locking,
adjustments with approval, commitments. One transaction per service."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import ProductLine
from targets import allocation, calendar, signals
from targets.metrics import get_metric
from targets.models import (
    PERIOD_MONTHS,
    AdjustmentStatus,
    Commitment,
    PeriodKind,
    PlanStatus,
    Target,
    TargetAdjustment,
    TargetPlan,
    TargetSeries,
)
from targets.selectors import (
    CreditIndex,
    Key,
    first_recorded_day,
    unit_paths,
    window_actuals,
)
from tenancy import selectors as tenancy_selectors
from tenancy.dates import tenant_today
from tenancy.errors import Conflict, Forbidden
from tenancy.models import Membership, OrgUnit, OrgUnitManager, Role, Tenant
from tenancy.money import minor_unit


def quantum_for(tenant: Tenant, metric_key: str) -> Decimal:
    """The currency's minor unit for amounts (``tenancy.money.minor_unit``, the one rule
    that ``round_money`` uses), 1 for counts (SPEC section 4)."""
    if not get_metric(metric_key).is_amount:
        return Decimal(1)
    return minor_unit(tenant.currency)


# --- plans ----------------------------------------------------------------------------


def plan_create(
    *,
    member: Membership,
    fiscal_year: int,
    metric: str,
    annual_total: Decimal,
    name: str = "Annual plan",
) -> TargetPlan:
    require_planner(member)
    try:
        get_metric(metric)
    except ValueError as error:
        raise ValidationError({"metric": str(error)}) from error
    tenant = Tenant.objects.get(pk=member.tenant_id)
    _check_total(tenant, metric, annual_total)
    try:
        with transaction.atomic():
            return TargetPlan.objects.create(
                tenant=tenant,
                fiscal_year=fiscal_year,
                metric=metric,
                name=name,
                annual_total=annual_total,
                created_by=member,
            )
    except IntegrityError as error:
        raise Conflict(_("A plan for this fiscal year, metric and name exists already.")) from error


def _check_total(tenant: Tenant, metric: str, annual_total: Decimal) -> None:
    quantum = quantum_for(tenant, metric)
    if annual_total < 0 or annual_total % quantum != 0:
        raise ValidationError(
            {"annual_total": _("Must be non-negative and a multiple of %s.") % quantum}
        )


def plan_update(
    *,
    member: Membership,
    plan: TargetPlan,
    name: str | None = None,
    annual_total: Decimal | None = None,
) -> tuple[TargetPlan, int]:
    """Rename a draft plan or change its annual total. A new total leaves the draft's
    decomposition behind (its targets no longer add up to it): the targets are removed,
    and their number returned, for the plan to be decomposed again. Published and
    locked plans change only through adjustments."""
    require_planner(member)
    tenant = Tenant.objects.get(pk=member.tenant_id)
    with transaction.atomic():
        locked = TargetPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status != PlanStatus.DRAFT:
            raise Conflict(_("Only a draft plan changes; adjust the targets of a published one."))
        cleared = 0
        fields = ["updated_at"]
        if annual_total is not None and annual_total != locked.annual_total:
            _check_total(tenant, locked.metric, annual_total)
            cleared = TargetSeries.objects.filter(plan=locked).count()
            _delete_targets(locked)
            locked.annual_total = annual_total
            locked.unassigned = Decimal(0)
            locked.settings = {}
            fields += ["annual_total", "unassigned", "settings"]
        if name is not None and name != locked.name:
            if not name.strip():
                raise ValidationError({"name": _("A plan needs a name.")})
            locked.name = name.strip()
            fields.append("name")
        try:
            with transaction.atomic():
                locked.save(update_fields=fields)
        except IntegrityError as error:
            raise Conflict(
                _("A plan for this fiscal year, metric and name exists already.")
            ) from error
        return locked, cleared


@transaction.atomic
def plan_delete(*, member: Membership, plan: TargetPlan) -> None:
    """Delete a draft plan with its nodes and commitments, set-based (a decomposed tree
    has hundreds of thousands of nodes; the ORM's cascade would load each one)."""
    require_planner(member)
    locked = TargetPlan.objects.select_for_update().get(pk=plan.pk)
    if locked.status != PlanStatus.DRAFT:
        raise Conflict(_("Only a draft plan can be deleted."))
    _delete_targets(locked)
    Commitment.objects.filter(plan=locked).delete()
    locked.delete()


def _set_status(plan: TargetPlan, *, allowed_from: set[str], to: str) -> TargetPlan:
    with transaction.atomic():
        locked = TargetPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status not in allowed_from:
            raise Conflict(
                _("A %(status)s plan cannot become %(to)s.")
                % {"status": PlanStatus(locked.status).label, "to": PlanStatus(to).label}
            )
        if to == PlanStatus.PUBLISHED and not Target.objects.filter(plan=locked).exists():
            raise ValidationError(_("Decompose the plan before publishing it."))
        if to == PlanStatus.PUBLISHED:
            _refuse_a_second_live_plan(locked)
        locked.status = to
        try:
            with transaction.atomic():
                locked.save(update_fields=["status", "updated_at"])
        except IntegrityError as error:
            # A concurrent publish of another plan of the year won the partial unique index.
            raise Conflict(
                _("Another plan for this year and metric was published meanwhile; reload it.")
            ) from error
        return locked


def _refuse_a_second_live_plan(plan: TargetPlan) -> None:
    """One published or locked plan per fiscal year and metric (SPEC 4): name the other."""
    other = (
        TargetPlan.objects.filter(
            fiscal_year=plan.fiscal_year,
            metric=plan.metric,
            status__in=[PlanStatus.PUBLISHED, PlanStatus.LOCKED],
        )
        .exclude(pk=plan.pk)
        .first()
    )
    if other is not None:
        raise Conflict(
            _(
                "“%(name)s” (plan %(id)s) is already the %(status)s plan for FY%(year)s "
                "and this metric; move it back or delete it before publishing another."
            )
            % {
                "name": other.name,
                "id": other.pk,
                "status": PlanStatus(other.status).label.lower(),
                "year": other.fiscal_year,
            }
        )


def plan_publish(*, member: Membership, plan: TargetPlan) -> TargetPlan:
    require_planner(member)
    return _set_status(plan, allowed_from={PlanStatus.DRAFT}, to=PlanStatus.PUBLISHED)


def plan_lock(*, member: Membership, plan: TargetPlan) -> TargetPlan:
    require_planner(member)
    return _set_status(plan, allowed_from={PlanStatus.PUBLISHED}, to=PlanStatus.LOCKED)


def require_planner(member: Membership) -> None:
    """Tenant-wide plans are set by admins and by managers of the top of the org tree
    (a sales director); other managers adjust the targets of their subtree."""
    if member.role == Role.ADMIN:
        return
    if (
        member.role == Role.MANAGER
        and OrgUnitManager.objects.filter(membership=member, org_unit__parent__isnull=True).exists()
    ):
        return
    raise Forbidden(_("Plans are set by admins and by managers of the whole organisation."))


# --- decomposition --------------------------------------------------------------------


@dataclass
class DecomposeSettings:
    """How to decompose (SPEC section 4): validated by the API, stored on the plan."""

    time_method: str = "equal"
    time_weights: list[Decimal] | None = None
    seasonal_blend: Decimal = Decimal(1)
    org_method: str = "equal"
    org_methods_by_depth: dict[int, str] = field(default_factory=dict)
    potential: dict[str, Decimal] = field(default_factory=dict)
    alpha: Decimal | None = None
    manual: dict[str, Decimal] = field(default_factory=dict)
    headroom: Decimal = Decimal(0)
    product_shares: dict[int, Decimal] = field(default_factory=dict)
    new_product_multiplier: Decimal = Decimal(1)
    ramp: bool = True
    ramp_steps: list[tuple[int, Decimal]] | None = None
    preserve_total: bool = True
    include_managers: bool = False

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, Decimal):
                return str(value)
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return {name: plain(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass
class Node:
    key: Key
    name: str
    parent: Key | None
    depth: int
    annual: Decimal = Decimal(0)
    months: list[Decimal] = field(default_factory=list)
    products: dict[int, list[Decimal]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        quarters = allocation.quarter_totals(self.months) if self.months else []
        return {
            "assignee": {"type": self.key[0], "id": self.key[1], "name": self.name},
            "parent": None
            if self.parent is None
            else {"type": self.parent[0], "id": self.parent[1]},
            "depth": self.depth,
            "year": str(self.annual),
            "quarters": [str(q) for q in quarters],
            "months": [str(m) for m in self.months],
            "product_lines": {
                str(pl): {"year": str(sum(values, Decimal(0))), "months": [str(v) for v in values]}
                for pl, values in self.products.items()
            },
        }


@dataclass
class Decomposition:
    plan: TargetPlan
    nodes: list[Node]
    unassigned: Decimal
    time_weights: list[Decimal]

    def as_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan.pk,
            "annual_total": str(self.plan.annual_total),
            "unassigned": str(self.unassigned),  # in the quantum's format: "0.00"
            "time_weights": [str(w) for w in self.time_weights],
            "nodes": [node.as_json() for node in self.nodes],
        }


def _history_of(index: CreditIndex, key: Key) -> Decimal:
    return index.total(key, range(1, 13))


def _tenant_monthly(
    index: CreditIndex, root: OrgUnit, window: list[calendar.Period], first_day: date | None
) -> list[Decimal | None]:
    """The tenant's actual of each fiscal month in the window; None for a month before
    the tenant's first recorded row of the metric (no history, SPEC section 4)."""
    return [
        index.total(("unit", root.pk), [month])
        if first_day is not None and window[month - 1].end >= first_day
        else None
        for month in range(1, 13)
    ]


def _check_keys(settings: DecomposeSettings, assignees: set[Key], depths: set[int]) -> None:
    """An unknown key in ``potential``, ``manual`` or ``org_methods_by_depth`` is a 400
    naming it (SPEC section 4), not a weight silently ignored."""
    known = {f"{kind}:{pk}" for kind, pk in assignees}
    for name in ("potential", "manual"):
        unknown = sorted(set(getattr(settings, name)) - known)
        if unknown:
            raise ValidationError(
                {name: _("No such unit or member in the plan: %s.") % ", ".join(unknown)}
            )
    unknown_depths = sorted(set(settings.org_methods_by_depth) - depths)
    if unknown_depths:
        raise ValidationError(
            {
                "org_methods_by_depth": _("The org tree has no depth %s.")
                % ", ".join(map(str, unknown_depths))
            }
        )


def plan_decompose(
    *,
    member: Membership,
    plan: TargetPlan,
    settings: DecomposeSettings,
    dry_run: bool = False,
    as_of: date | None = None,
) -> Decomposition:
    """Decompose the plan: org split (annual), product split, time split (SPEC section 4).

    ``as_of`` is the day of decomposition (default: the tenant's today): ``seasonal`` and
    ``history`` read the last 12 complete calendar months before it. ``dry_run`` returns
    the whole tree without saving; otherwise the plan's targets are replaced in one
    transaction. Only a draft plan is decomposed.
    """
    require_planner(member)
    if plan.status != PlanStatus.DRAFT:
        raise Conflict(_("Only a draft plan can be decomposed; adjust published targets."))
    tenant = Tenant.objects.get(pk=plan.tenant_id)
    start_month = tenant.fiscal_year_start_month
    quantum = quantum_for(tenant, plan.metric)
    fiscal_months = calendar.months(plan.fiscal_year, start_month)
    year = calendar.fiscal_year(plan.fiscal_year, start_month)
    window = calendar.history_window(as_of or tenant_today(tenant), start_month)
    window_start = min(month.start for month in window)
    window_end = max(month.end for month in window)

    units = list(OrgUnit.objects.order_by("path"))
    roots = [unit for unit in units if unit.parent_id is None]
    if len(roots) != 1:
        raise ValidationError(_("The org tree needs exactly one root unit."))
    root = roots[0]
    # Personal targets go to reps (and managers when asked): a manager's number is
    # their unit's, and admins run the system.
    roles = [Role.REP, Role.MANAGER] if settings.include_managers else [Role.REP]
    members = list(
        Membership.objects.filter(
            is_active=True, org_unit__isnull=False, start_date__lte=year.end, role__in=roles
        )
        .exclude(end_date__lt=year.start)
        .select_related("user")
        .order_by("pk")
    )
    children: dict[int, list[Key]] = defaultdict(list)
    names: dict[Key, str] = {}
    depth: dict[Key, int] = {}
    for unit in units:
        names[("unit", unit.pk)] = unit.name
        depth[("unit", unit.pk)] = unit.depth
        if unit.parent_id is not None:
            children[unit.parent_id].append(("unit", unit.pk))
    unit_ids = {unit.pk: unit for unit in units}
    # History is complete for a member active all 12 months of the window, and for a
    # unit with at least one such member in its subtree (SPEC section 4 "Org").
    complete: set[Key] = set()
    for person in members:
        assert person.org_unit_id is not None
        key: Key = ("member", person.pk)
        names[key] = person.display_name
        depth[key] = depth[("unit", person.org_unit_id)] + 1
        children[person.org_unit_id].append(key)
        if person.start_date <= window_start and (
            person.end_date is None or person.end_date >= window_end
        ):
            complete.add(key)
            path = unit_ids[person.org_unit_id].path
            complete.update(("unit", int(part)) for part in path.strip("/").split("/") if part)
    _check_keys(settings, set(names), {unit.depth for unit in units})

    methods_used = {settings.org_method, *settings.org_methods_by_depth.values()}
    needs_history = bool(methods_used & {"history", "blend"}) or settings.time_method == "seasonal"
    history_index = CreditIndex()
    first_day: date | None = None
    if needs_history:
        history_index = CreditIndex.build(
            window_actuals(tenant, plan.metric, window_start, window_end), unit_paths()
        )
        first_day = first_recorded_day(tenant, plan.metric)

    schedule = allocation.DEFAULT_RAMP
    if settings.ramp_steps:
        schedule = allocation.RampSchedule(settings.ramp_steps)
    factors12: dict[Key, list[Decimal]] = {}
    mean_factors: dict[Key, Decimal] = {}
    if settings.ramp:
        for person in members:
            factors = allocation.monthly_factors(
                fiscal_months, person.start_date, person.end_date, schedule
            )
            if any(factor != 1 for factor in factors):
                factors12[("member", person.pk)] = factors
                mean_factors[("member", person.pk)] = allocation.mean_factor(factors)

    def label(key: Key) -> str:
        return f"{key[0]}:{key[1]}"

    try:
        annual: dict[Key, Decimal] = {("unit", root.pk): plan.annual_total}
        parents: dict[Key, Key | None] = {("unit", root.pk): None}
        unassigned = Decimal(0)
        queue: list[Key] = [("unit", root.pk)]
        while queue:
            parent = queue.pop(0)
            kids = children.get(parent[1], []) if parent[0] == "unit" else []
            if not kids:
                continue
            method = settings.org_methods_by_depth.get(depth[parent], settings.org_method)
            budget = allocation.with_headroom(annual[parent], settings.headroom, quantum)
            if method == "manual":
                values = {kid: settings.manual.get(label(kid)) for kid in kids}
                missing = [label(kid) for kid, value in values.items() if value is None]
                if missing:
                    raise ValidationError(
                        {"manual": _("Give a value for %s.") % ", ".join(missing)}
                    )
                parts = allocation.check_manual(
                    annual[parent],
                    {k: v for k, v in values.items() if v is not None},
                    settings.headroom,
                    quantum=quantum,
                )
            else:
                history: dict[Key, Decimal] | None = None
                if method in ("history", "blend"):
                    history = allocation.fill_history(
                        {kid: _history_of(history_index, kid) for kid in kids}, complete
                    )
                    if history is None:  # nobody has a whole year behind them: equal
                        history = dict.fromkeys(kids, Decimal(0))
                        method = "equal" if method == "history" else method
                weights = allocation.org_weights(
                    method,  # type: ignore[arg-type]
                    kids,
                    history=history,
                    potential={kid: settings.potential.get(label(kid), Decimal(0)) for kid in kids}
                    if method in ("potential", "blend")
                    else None,
                    alpha=settings.alpha,
                )
                ramped = {kid: mean_factors[kid] for kid in kids if kid in mean_factors}
                parts, left = allocation.ramped_org_split(
                    budget, weights, ramped, quantum, settings.preserve_total
                )
                unassigned += left
            for kid, value in parts.items():
                annual[kid] = value
                parents[kid] = parent
                queue.append(kid)

        if settings.time_method == "seasonal":
            weights12 = allocation.seasonal_weights(
                _tenant_monthly(history_index, root, window, first_day), settings.seasonal_blend
            )
        else:
            weights12 = allocation.time_weights(
                settings.time_method,  # type: ignore[arg-type]
                manual=settings.time_weights,
            )
        product_parts: dict[int, Decimal] = {}
        if settings.product_shares:
            lines = dict(
                ProductLine.objects.filter(pk__in=settings.product_shares).values_list(
                    "pk", "is_new"
                )
            )
            unknown = set(settings.product_shares) - set(lines)
            if unknown:
                raise ValidationError({"product_shares": _("Unknown product lines: %s") % unknown})
            product_parts = allocation.product_weights(
                settings.product_shares, lines, settings.new_product_multiplier
            )

        nodes: list[Node] = []
        for key, value in annual.items():
            node_weights = weights12
            if key in factors12:
                node_weights = allocation.ramped_time_weights(weights12, factors12[key])
            node = Node(
                key=key,
                name=names[key],
                parent=parents[key],
                depth=depth[key],
                annual=value,
            )
            node.months = allocation.split_year(value, node_weights, quantum)
            if product_parts:
                for line, part in allocation.allocate(value, product_parts, quantum).items():
                    node.products[line] = allocation.split_year(part, node_weights, quantum)
            nodes.append(node)
    except allocation.ManualValuesMismatch as error:
        raise ValidationError(
            {
                "manual": _(
                    "Manual values add up to %(actual)s, not %(expected)s "
                    "(difference %(difference)s)."
                )
                % {
                    "actual": error.actual,
                    "expected": error.expected,
                    "difference": error.difference,
                }
            }
        ) from error
    except ValueError as error:
        raise ValidationError(str(error)) from error

    unassigned = unassigned.quantize(quantum)  # "0.00", never "0"
    result = Decomposition(plan=plan, nodes=nodes, unassigned=unassigned, time_weights=weights12)
    if dry_run:
        return result
    with transaction.atomic():
        locked = TargetPlan.objects.select_for_update().get(pk=plan.pk)
        if locked.status != PlanStatus.DRAFT:
            raise Conflict(_("Only a draft plan can be decomposed; adjust published targets."))
        _delete_targets(locked)
        _write_series(locked, nodes)
        locked.settings = {**settings.as_json(), "time_weights_used": [str(w) for w in weights12]}
        locked.unassigned = unassigned
        locked.save(update_fields=["settings", "unassigned", "updated_at"])
        result.plan = locked
    return result


def _delete_targets(plan: TargetPlan) -> None:
    """Drop a draft plan's targets in set-based SQL (the ORM's cascade would load every
    row). Snapshots and adjustments hang off published targets only, but are removed
    first so the foreign keys never block; row-level security limits every statement
    to the tenant."""
    with connection.cursor() as cursor:
        for table in ("targets_achievementsnapshot", "targets_targetadjustment"):
            cursor.execute(
                f"DELETE FROM {table} WHERE tenant_id = %s AND series_id IN "
                "(SELECT id FROM targets_targetseries WHERE tenant_id = %s AND plan_id = %s)",
                [plan.tenant_id, plan.tenant_id, plan.pk],
            )
        cursor.execute(
            "DELETE FROM targets_targetseries WHERE tenant_id = %s AND plan_id = %s",
            [plan.tenant_id, plan.pk],
        )


def _array_literal(values: list[Decimal]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _write_series(plan: TargetPlan, nodes: list[Node]) -> None:
    """Write every node's twelve months (and each product line's) in one INSERT … SELECT
    FROM unnest: one row per assignee and line, quarters and years being their sums
    (the ``targets_target`` view). COPY would be faster still, but PostgreSQL refuses
    COPY FROM into tables with row-level security.
    """
    units: list[int | None] = []
    members: list[int | None] = []
    lines: list[int | None] = []
    months: list[str] = []
    for node in nodes:
        series: list[tuple[int | None, list[Decimal]]] = [(None, node.months)]
        series += list(node.products.items())
        for line, values in series:
            units.append(node.key[1] if node.key[0] == "unit" else None)
            members.append(node.key[1] if node.key[0] == "member" else None)
            lines.append(line)
            months.append(_array_literal(values))  # text: far cheaper to send than Decimals
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO targets_targetseries (tenant_id, plan_id, org_unit_id, member_id,
                product_line_id, months, version, updated_at)
            SELECT %s, %s, u, m, l, mo::numeric(18, 2)[], 1, now()
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) AS t(u, m, l, mo)
            """,
            [plan.tenant_id, plan.pk, units, members, lines, months],
        )


# --- adjustments ---------------------------------------------------------------------


def _can_steer(member: Membership, target: Target) -> bool:
    """Admins steer every target; managers those of their subtree (never their own)."""
    if member.role == Role.ADMIN:
        return True
    if member.role != Role.MANAGER:
        return False
    if target.member_id is not None:
        if target.member_id == member.pk:
            return False
        return tenancy_selectors.visible_memberships(member).filter(pk=target.member_id).exists()
    unit = OrgUnit.objects.only("path").get(pk=target.org_unit_id or 0)
    managed = OrgUnitManager.objects.filter(membership=member).values_list(
        "org_unit__path", flat=True
    )
    return any(unit.path.startswith(path) and unit.path != path for path in managed)


def _is_above(approver: Membership, target: Target, requester: Membership | None) -> bool:
    """An admin, or a manager steering the target who is not the requester."""
    if requester is not None and approver.pk == requester.pk:
        return False
    return _can_steer(approver, target)


def _apply_value(series: TargetSeries, target: Target, new_value: Decimal, on: date) -> None:
    """Give ``target`` (a period of the locked ``series``) its new value: its quarter and
    year stay the sums of their months, being derived from them.

    A month changes itself; a quarter or year spreads the difference over its months
    not yet elapsed on ``on`` (the effective date), by the plan's time weights
    (SPEC section 4).
    """
    plan = target.plan
    tenant = Tenant.objects.get(pk=target.tenant_id)
    quantum = quantum_for(tenant, plan.metric)
    # Not set (null): every month from nothing.
    months = [value or Decimal(0) for value in series.months or [Decimal(0)] * 12]
    if target.period_kind == PeriodKind.MONTH:
        months[target.period_index - 1] = new_value
    else:
        ends = [m.end for m in calendar.months(plan.fiscal_year, tenant.fiscal_year_start_month)]
        first, last = PERIOD_MONTHS[target.period_code]
        covered = range(first, last + 1)
        open_months = [index for index in covered if ends[index - 1] >= on]
        if not open_months:
            raise ValidationError(
                {"effective_from": _("Every month of this period has elapsed already.")}
            )
        difference = new_value - sum((months[index - 1] for index in covered), Decimal(0))
        weights_used = [Decimal(w) for w in plan.settings.get("time_weights_used", [])] or [
            Decimal(1)
        ] * 12
        spread = allocation.allocate(
            abs(difference), {index: weights_used[index - 1] for index in open_months}, quantum
        )
        sign = 1 if difference >= 0 else -1
        for index in open_months:
            months[index - 1] += sign * spread[index]
            if months[index - 1] < 0:
                raise ValidationError(
                    {"new_value": _("This would make a remaining month negative.")}
                )
    TargetSeries.objects.filter(pk=series.pk).update(
        months=months, version=F("version") + 1, updated_at=timezone.now()
    )


def _lock(series_id: int, code: int) -> tuple[TargetSeries, Target]:
    """Lock the series (every period of one assignee and line changes together) and
    read its period ``code`` under the lock."""
    series = TargetSeries.objects.select_for_update().get(pk=series_id)
    target = Target.objects.select_related("plan").get(series_id=series_id, period_code=code)
    return series, target


def target_adjust(
    *,
    member: Membership,
    target: Target,
    new_value: Decimal,
    reason: str,
    trigger: str,
    effective_from: date | None = None,
    expected_version: int | None = None,
) -> TargetAdjustment:
    """Request a new value for a published target (SPEC section 4 "Adjustment").

    Published plan: applied at once when the requester steers the target. Locked plan:
    recorded as requested, applied when a manager above or an admin approves. The
    history is append-only; concurrent adjustments of one node serialise on its row.
    """
    if not reason.strip():
        raise ValidationError({"reason": _("Say why the target changes.")})
    if new_value < 0:
        raise ValidationError({"new_value": _("A target cannot be negative.")})
    with transaction.atomic():
        series, locked = _lock(target.series_id, target.period_code)
        if not _can_steer(member, locked):
            # the caller reached it through their visibility (a 404 otherwise)
            raise Forbidden(_("Only a manager above this target or an admin can change it."))
        if locked.plan.status == PlanStatus.DRAFT:
            raise Conflict(_("Targets of a draft plan change by decomposing it again."))
        if expected_version is not None and locked.version != expected_version:
            raise Conflict(_("This target changed meanwhile (newer version). Reload it."))
        tenant = Tenant.objects.get(pk=locked.tenant_id)
        quantum = quantum_for(tenant, locked.plan.metric)
        if new_value % quantum != 0:
            raise ValidationError({"new_value": _("Must be a multiple of %s.") % quantum})
        year = calendar.fiscal_year(locked.plan.fiscal_year, tenant.fiscal_year_start_month)
        if effective_from is not None and not year.start <= effective_from <= year.end:
            raise ValidationError(
                {
                    "effective_from": _(
                        "A change takes effect inside the plan's fiscal year, %(start)s to %(end)s."
                    )
                    % {"start": year.start.isoformat(), "end": year.end.isoformat()}
                }
            )
        adjustment = TargetAdjustment.objects.create(
            tenant_id=locked.tenant_id,
            series=series,
            period_code=locked.period_code,
            old_value=locked.value,
            new_value=new_value,
            target_version=locked.version,
            reason=reason.strip(),
            trigger=trigger,
            requested_by=member,
            effective_from=effective_from or tenant_today(tenant),
        )
        if locked.plan.status == PlanStatus.PUBLISHED:
            _apply_value(series, locked, new_value, adjustment.effective_from)
            adjustment.status = AdjustmentStatus.APPLIED
            adjustment.approved_by = member
            adjustment.decided_at = timezone.now()
            adjustment.save(update_fields=["status", "approved_by", "decided_at"])
            signals.target_adjusted.send(
                sender=TargetAdjustment, adjustment=adjustment, member=member
            )
        return adjustment


def adjustment_decide(
    *, member: Membership, adjustment: TargetAdjustment, approve: bool
) -> TargetAdjustment:
    """Approve (apply) or reject a requested adjustment of a locked plan."""
    with transaction.atomic():
        locked = (
            TargetAdjustment.objects.select_for_update(of=("self",))
            .select_related("requested_by")
            .get(pk=adjustment.pk)
        )
        if locked.status != AdjustmentStatus.REQUESTED:
            raise Conflict(_("This adjustment has been decided already."))
        series, target = _lock(locked.series_id, locked.period_code)
        if not _is_above(member, target, locked.requested_by):
            raise ValidationError(
                _("An adjustment is approved by a manager above the requester or an admin.")
            )
        if approve:
            locked.old_value = target.value
            _apply_value(series, target, locked.new_value, locked.effective_from)
        locked.status = AdjustmentStatus.APPLIED if approve else AdjustmentStatus.REJECTED
        locked.approved_by = member
        locked.decided_at = timezone.now()
        locked.save(update_fields=["status", "approved_by", "decided_at", "old_value"])
        if approve:
            signals.target_adjusted.send(sender=TargetAdjustment, adjustment=locked, member=member)
        return locked


# --- bottom-up ---------------------------------------------------------------------------


def commitment_submit(
    *,
    member: Membership,
    plan: TargetPlan,
    period_kind: str,
    period_index: int,
    value: Decimal,
    assignee_member: Membership | None = None,
    assignee_unit: OrgUnit | None = None,
    note: str = "",
) -> Commitment:
    """A member commits for themselves; a manager for a unit they manage (bottom-up)."""
    if value < 0:
        raise ValidationError({"value": _("A commitment cannot be negative.")})
    if assignee_unit is None and assignee_member is None:
        assignee_member = member
    if assignee_member is not None and assignee_member.pk != member.pk:
        raise ValidationError({"member": _("Members commit for themselves.")})
    if (
        assignee_unit is not None
        and not OrgUnitManager.objects.filter(membership=member, org_unit=assignee_unit).exists()
        and member.role != Role.ADMIN
    ):
        raise ValidationError({"org_unit": _("Managers commit for the units they manage.")})
    with transaction.atomic():
        commitment, _created = Commitment.objects.update_or_create(
            plan=plan,
            period_kind=period_kind,
            period_index=period_index,
            org_unit=assignee_unit,
            member=assignee_member,
            defaults={
                "tenant_id": plan.tenant_id,
                "value": value,
                "note": note,
                "submitted_by": member,
                "submitted_at": timezone.now(),
            },
        )
        return commitment
