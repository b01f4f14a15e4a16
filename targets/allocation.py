"""Target decomposition arithmetic (SPEC section 4, "Decomposition").

Pure functions on ``Decimal`` (``int`` is accepted where it is exact; ``float``
is rejected with ``TypeError`` because it cannot hold money exactly). No ORM:
callers pass plain values and store what comes back.

The order of the decomposition (SPEC section 4) is: the org split on annual
values from the tenant down to every member (:func:`org_weights`,
:func:`with_headroom`, :func:`ramped_org_split`, :func:`check_manual`), then an
optional split over product lines (:func:`product_weights`), then each node's
annual value over months (:func:`time_weights`, :func:`ramped_time_weights`,
:func:`split_year`), quarters being sums of their months
(:func:`quarter_totals`). Every split goes through :func:`allocate`, so parts
are always multiples of the quantum (the currency's minor unit for amounts,
1 for counts) and add up exactly to what was split.

Weights are relative: only their ratios matter. Functions that combine shares
(``blend``) return exact values proportional to the shares instead of dividing,
so that no rounding happens before :func:`allocate`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, Rounded, localcontext
from typing import Literal, TypeVar

from targets.calendar import DIVISION_CONTEXT, Period, active_share

__all__ = [
    "DEFAULT_RAMP",
    "ManualValuesMismatch",
    "OrgMethod",
    "RampSchedule",
    "TimeMethod",
    "allocate",
    "check_manual",
    "mean_factor",
    "monthly_factors",
    "org_weights",
    "product_weights",
    "quarter_totals",
    "ramped_org_split",
    "ramped_time_weights",
    "round_half_up",
    "seasonal_weights",
    "fill_history",
    "split_year",
    "tenure_month",
    "time_weights",
    "with_headroom",
]

K = TypeVar("K", bound=Hashable)

#: What callers may pass for a number: ``Decimal``, or an ``int`` (exact).
Number = Decimal | int

TimeMethod = Literal["equal", "seasonal", "manual"]
OrgMethod = Literal["equal", "history", "potential", "blend", "manual"]

_ZERO = Decimal(0)
_ONE = Decimal(1)
# Exact sums and products of realistic targets fit easily; the extra digits keep
# intermediate products (weight x factor x share) from being rounded.
_PRECISION = 60
# Scaling by a power of ten is exact when the context has room for every digit.
_EXACT = Context(prec=200, traps=[Inexact, Rounded])


# --- input checking -------------------------------------------------------------------------


def _to_decimal(value: object, name: str) -> Decimal:
    """``value`` as a finite ``Decimal``; ``float``/``bool``/others -> ``TypeError``."""
    if isinstance(value, float):
        raise TypeError(f"{name} must be a Decimal, not a float ({value!r}): floats are inexact")
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal or int, got {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number, got {result}")
    return result


def _non_negative(value: object, name: str) -> Decimal:
    result = _to_decimal(value, name)
    if result < 0:
        raise ValueError(f"{name} must not be negative, got {result}")
    return result


def _quantum(value: object) -> Decimal:
    result = _to_decimal(value, "quantum")
    if result <= 0:
        raise ValueError(f"quantum must be positive, got {result}")
    return result


def _quanta_in(total: Decimal, quantum: Decimal, name: str) -> int:
    """How many quanta make up ``total``; ``ValueError`` if it is not a whole number."""
    with localcontext() as context:
        context.prec = _PRECISION
        count, remainder = divmod(total, quantum)
    if remainder != 0:
        raise ValueError(f"{name} {total} is not a multiple of the quantum {quantum}")
    return int(count)


# --- the one splitting rule -----------------------------------------------------------------


def _scaled_integers(values: Sequence[Decimal]) -> list[int]:
    """The values times one power of ten, as exact integers (same ratios)."""
    exponent = min((int(value.as_tuple().exponent) for value in values), default=0)
    shift = -min(exponent, 0)
    return [int(value.scaleb(shift, context=_EXACT)) for value in values]


def allocate(total: Number, weights: Mapping[K, Number], quantum: Number) -> dict[K, Decimal]:
    """Split ``total`` over the keys of ``weights`` in proportion to the weights.

    SPEC section 4 "Decomposition": ``total`` must be a multiple of
    ``quantum``; every part is a multiple of ``quantum`` and the parts sum
    exactly to ``total``. Each part is first floored to the quantum, then the
    quanta left over go one each to the largest remainders. Ties go to the
    earlier key in the mapping's iteration (insertion) order, which is the
    only way the order of keys can change the result.

    - Weights are relative and must not be negative (``ValueError``); when they
      are all zero the total is split equally by the same rule.
    - ``total`` must not be negative (``ValueError``): targets are never
      negative. To spread a negative difference, allocate its absolute value
      and negate the parts.
    - The proportional shares are computed with exact fractions, so no
      rounding happens anywhere but in the floor-and-remainder step.

    >>> allocate(Decimal("100"), {"a": 1, "b": 1, "c": 1}, 1)
    {'a': Decimal('34'), 'b': Decimal('33'), 'c': Decimal('33')}
    """
    quantum_value = _quantum(quantum)
    total_value = _non_negative(total, "total")
    quanta = _quanta_in(total_value, quantum_value, "total")
    if not weights:
        raise ValueError("cannot allocate over an empty set of weights")
    keys = list(weights)
    scaled = _scaled_integers([_non_negative(weights[key], f"weight of {key!r}") for key in keys])
    weight_sum = sum(scaled)
    if weight_sum == 0:
        scaled = [1] * len(keys)
        weight_sum = len(keys)
    # Exact in integers: share = quanta × w / Σw = floor + remainder / Σw, and remainders
    # over the same denominator order exactly as the fractions would.
    counts: list[int] = []
    remainders: list[int] = []
    for weight in scaled:
        floor, remainder = divmod(quanta * weight, weight_sum)
        counts.append(floor)
        remainders.append(remainder)
    leftover = quanta - sum(counts)
    # Largest remainder first; on equal remainders the earlier key first.
    by_remainder = sorted(range(len(keys)), key=lambda index: (-remainders[index], index))
    for index in by_remainder[:leftover]:
        counts[index] += 1
    with localcontext() as context:
        context.prec = _PRECISION
        return {key: quantum_value * count for key, count in zip(keys, counts, strict=True)}


def round_half_up(value: Number, quantum: Number) -> Decimal:
    """``value`` rounded half-up to a multiple of ``quantum`` (e.g. 0.01 or 1).

    The one rounding rule for money in SPEC section 4 (headroom, ramped
    shares): 0.005 -> 0.01 at a quantum of 0.01. It is
    ``tenancy.money.round_money``'s rule (``ROUND_HALF_UP``) on a quantum
    instead of a currency, because this module is pure and also rounds
    counts (quantum 1); with the currency's minor unit as quantum the two
    agree (``tests/targets/test_allocation.py`` checks it).
    """
    quantum_value = _quantum(quantum)
    number = _to_decimal(value, "value")
    with localcontext() as context:
        context.prec = _PRECISION
        count = (number / quantum_value).to_integral_value(rounding=ROUND_HALF_UP)
        return count * quantum_value


# --- time split ----------------------------------------------------------------------------


def _twelve(values: Sequence[Number], name: str) -> list[Decimal]:
    if isinstance(values, str | bytes) or len(values) != 12:
        raise ValueError(f"{name} needs 12 monthly values, got {len(values)}")
    return [_non_negative(value, f"{name}[{index}]") for index, value in enumerate(values)]


def time_weights(
    method: TimeMethod,
    *,
    history: Sequence[Number] | None = None,
    manual: Sequence[Number] | None = None,
) -> list[Decimal]:
    """Twelve relative weights for splitting a year over its fiscal months (SPEC section 4).

    - ``equal``: every month weighs 1.
    - ``seasonal``: last year's monthly actuals of the same metric, in fiscal
      order (their ratios are the monthly shares). Where there is no history
      (``None``, or every month zero) the months weigh equally. A month whose
      net actual was negative (collections with reversals) weighs 0.
    - ``manual``: the twelve weights given (non-negative).

    Weights are relative, not normalised: pass them to :func:`split_year`.
    """
    if method == "equal":
        return [_ONE] * 12
    if method == "seasonal":
        if history is None:
            return [_ONE] * 12
        if isinstance(history, str | bytes) or len(history) != 12:
            raise ValueError(f"history needs 12 monthly values, got {len(history)}")
        actuals = [_to_decimal(value, f"history[{index}]") for index, value in enumerate(history)]
        # A month can net out negative through reversals; it cannot weigh less than nothing.
        clamped = [max(actual, _ZERO) for actual in actuals]
        if all(value == 0 for value in clamped):
            return [_ONE] * 12
        return clamped
    if method == "manual":
        if manual is None:
            raise ValueError("the manual time split needs 12 manual weights")
        return _twelve(manual, "manual")
    raise ValueError(f"time split method must be equal, seasonal or manual, got {method!r}")


MIN_HISTORY_MONTHS = 3
"""SPEC section 4: with fewer months of history than this the seasonal split is equal."""


def seasonal_weights(actuals12: Sequence[Number | None], blend: Number = 1) -> list[Decimal]:
    """Twelve seasonal time weights from a window of monthly actuals (SPEC section 4).

    ``actuals12`` are the tenant's actuals of the last 12 complete calendar months, each
    on its fiscal month; ``None`` marks a month before the tenant's first recorded row
    (no history). A month with history keeps its actual as weight, a real 0 included; a
    negative actual (net reversals) counts as 0; a month without history takes the mean
    weight of those with history. With fewer than :data:`MIN_HISTORY_MONTHS` months of
    history, or nothing but zeros, the split is equal. ``blend`` β in [0, 1] mixes the
    shares with equal ones: β·seasonal + (1 − β)·equal.

    Exact: the weights are the shares multiplied by a positive constant (the mean is
    not divided out: known months are scaled by their number instead), so no rounding
    happens before :func:`split_year`.
    """
    if isinstance(actuals12, str | bytes) or len(actuals12) != 12:
        raise ValueError(f"history needs 12 monthly values, got {len(actuals12)}")
    beta = _to_decimal(blend, "seasonal_blend")
    if not 0 <= beta <= 1:
        raise ValueError(f"seasonal_blend must be between 0 and 1, got {beta}")
    known = [
        None if value is None else max(_to_decimal(value, f"history[{index}]"), _ZERO)
        for index, value in enumerate(actuals12)
    ]
    with_history = [value for value in known if value is not None]
    total = sum(with_history, _ZERO)
    if len(with_history) < MIN_HISTORY_MONTHS or total == 0:
        return [_ONE] * 12
    with localcontext() as context:
        context.prec = _PRECISION
        count = Decimal(len(with_history))
        # Known months × their count, missing months the sum: the mean, scaled alike.
        seasonal = [total if value is None else value * count for value in known]
        scaled_total = sum(seasonal, _ZERO)
        if beta == 1:
            return seasonal
        # β·w_i/S + (1 − β)/12, multiplied by 12·S.
        return [beta * 12 * weight + (1 - beta) * scaled_total for weight in seasonal]


def fill_history(
    history: Mapping[K, Number], complete: Sequence[K] | set[K]
) -> dict[K, Decimal] | None:
    """The history weights of a node's children for the ``history`` org split (SPEC
    section 4): a child with a complete history (a member active for all 12 months of
    the window, a unit with at least one such member) keeps its actual (negative → 0);
    the others take the mean of those. None when no child has a complete history: the
    split is then equal. Exact: values are scaled by the number of complete children
    rather than dividing for the mean."""
    complete_set = set(complete)
    values = {
        child: max(_to_decimal(value, f"history of {child!r}"), _ZERO)
        for child, value in history.items()
    }
    full = [values[child] for child in values if child in complete_set]
    if not full:
        return None
    total = sum(full, _ZERO)
    count = Decimal(len(full))
    with localcontext() as context:
        context.prec = _PRECISION
        return {
            child: value * count if child in complete_set else total
            for child, value in values.items()
        }


def split_year(annual: Number, weights12: Sequence[Number], quantum: Number) -> list[Decimal]:
    """Split an annual value over the twelve fiscal months by ``weights12`` (SPEC section 4).

    Uses :func:`allocate`, so the months are multiples of ``quantum`` summing
    exactly to ``annual``; on equal remainders the earlier month gets the
    extra quantum. Quarters are :func:`quarter_totals` of the result.
    """
    weights = _twelve(weights12, "weights12")
    parts = allocate(annual, dict(enumerate(weights)), quantum)
    return [parts[index] for index in range(12)]


def quarter_totals(months12: Sequence[Number]) -> list[Decimal]:
    """The four fiscal quarters' values: each the sum of its three months (SPEC section 4)."""
    if isinstance(months12, str | bytes) or len(months12) != 12:
        raise ValueError(f"quarter_totals needs 12 monthly values, got {len(months12)}")
    values = [_to_decimal(value, f"months12[{index}]") for index, value in enumerate(months12)]
    return [values[3 * q] + values[3 * q + 1] + values[3 * q + 2] for q in range(4)]


# --- org split -----------------------------------------------------------------------------


def org_weights(
    method: OrgMethod,
    children: Sequence[K],
    *,
    history: Mapping[K, Number] | None = None,
    potential: Mapping[K, Number] | None = None,
    alpha: Number | None = None,
) -> dict[K, Decimal]:
    """Relative weights of a node's children (child units and direct members), SPEC section 4.

    - ``equal``: each child weighs 1.
    - ``history``: last year's actual of each child (missing or net negative
      -> 0; when all are zero, :func:`allocate` splits equally).
    - ``potential``: the weight given per child; every child needs one and
      they may not all be zero ("potential weights sum to zero").
    - ``blend``: ``alpha * history_share + (1 - alpha) * potential_share``,
      with each side normalised to shares first and ``alpha`` in [0, 1]. When
      no child has history the history shares are equal. To avoid rounding,
      the result is the blend multiplied by a positive constant
      (``sum(history) * sum(potential)``), which leaves every ratio unchanged.
    - ``manual``: not weights but values: check them with :func:`check_manual`
      (asking for manual weights here raises ``ValueError``).

    Children must be distinct; the result keeps their order (which breaks ties
    in :func:`allocate`).
    """
    child_list = list(children)
    if not child_list:
        raise ValueError("a node needs at least one child to split over")
    if len(set(child_list)) != len(child_list):
        raise ValueError("children must be distinct")
    if method == "equal":
        return dict.fromkeys(child_list, _ONE)
    if method == "history":
        return _history_values(child_list, history)
    if method == "potential":
        return _potential_values(child_list, potential)
    if method == "blend":
        if alpha is None:
            raise ValueError("the blend split needs alpha (the weight of history, 0 to 1)")
        alpha_value = _to_decimal(alpha, "alpha")
        if not 0 <= alpha_value <= 1:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha_value}")
        past = _history_values(child_list, history)
        planned = _potential_values(child_list, potential)
        past_sum = sum(past.values(), _ZERO)
        planned_sum = sum(planned.values(), _ZERO)
        if past_sum == 0:
            # No history at all: history shares are equal (1/n each); scale by n * planned_sum.
            past = dict.fromkeys(child_list, _ONE)
            past_sum = Decimal(len(child_list))
        with localcontext() as context:
            context.prec = _PRECISION
            return {
                child: alpha_value * past[child] * planned_sum
                + (1 - alpha_value) * planned[child] * past_sum
                for child in child_list
            }
    if method == "manual":
        raise ValueError(
            "the manual org split takes values, not weights: check them with check_manual()"
        )
    raise ValueError(
        f"org split method must be equal, history, potential, blend or manual, got {method!r}"
    )


def _history_values(children: list[K], history: Mapping[K, Number] | None) -> dict[K, Decimal]:
    if history is None:
        raise ValueError("the history split needs last year's actual per child")
    result = {}
    for child in children:
        actual = _to_decimal(history.get(child, 0), f"history of {child!r}")
        # Net negative actuals (reversed collections) weigh nothing rather than less than nothing.
        result[child] = max(actual, _ZERO)
    return result


def _potential_values(children: list[K], potential: Mapping[K, Number] | None) -> dict[K, Decimal]:
    if potential is None:
        raise ValueError("the potential split needs a potential weight per child")
    missing = [child for child in children if child not in potential]
    if missing:
        raise ValueError(f"no potential weight for {missing!r}")
    result = {
        child: _non_negative(potential[child], f"potential of {child!r}") for child in children
    }
    if all(value == 0 for value in result.values()):
        raise ValueError("potential weights sum to zero: give at least one child a weight")
    return result


def with_headroom(value: Number, headroom: Number, quantum: Number) -> Decimal:
    """What the children of a node sum to: ``value * (1 + headroom)``, SPEC section 4.

    The product is rounded half-up to the quantum first (10 % on 1,000.05 at
    0.01 -> 1,100.06), then the children are allocated to sum exactly to it.
    ``headroom`` is a fraction (``Decimal("0.10")`` for 10 %) and must not be
    negative.
    """
    headroom_value = _non_negative(headroom, "headroom")
    value_decimal = _non_negative(value, "value")
    with localcontext() as context:
        context.prec = _PRECISION
        product = value_decimal * (1 + headroom_value)
    return round_half_up(product, quantum)


class ManualValuesMismatch(ValueError):
    """Manual child values that do not add up to the parent (with headroom).

    ``expected`` is what they must sum to, ``actual`` what they sum to and
    ``difference = actual - expected`` (positive: too much was assigned).
    Manual values are never scaled silently; the manager fixes them.
    """

    def __init__(self, expected: Decimal, actual: Decimal) -> None:
        self.expected = expected
        self.actual = actual
        self.difference = actual - expected
        direction = "over" if self.difference > 0 else "under"
        super().__init__(
            f"manual values sum to {actual}, expected {expected}: "
            f"{abs(self.difference)} {direction}"
        )


def check_manual(
    parent_value: Number,
    values: Mapping[K, Number],
    headroom: Number = _ZERO,
    *,
    quantum: Number,
) -> dict[K, Decimal]:
    """Validate a manual org split (SPEC section 4) and return the values as ``Decimal``.

    The children's values must be non-negative multiples of ``quantum`` and
    sum exactly to ``with_headroom(parent_value, headroom, quantum)``;
    otherwise :class:`ManualValuesMismatch` reports ``expected``, ``actual``
    and ``difference``. Nothing is rescaled.
    """
    if not values:
        raise ValueError("a manual split needs at least one child value")
    quantum_value = _quantum(quantum)
    expected = with_headroom(parent_value, headroom, quantum_value)
    result: dict[K, Decimal] = {}
    for child, value in values.items():
        amount = _non_negative(value, f"value of {child!r}")
        _quanta_in(amount, quantum_value, f"value of {child!r}")
        result[child] = amount
    with localcontext() as context:
        context.prec = _PRECISION
        actual = sum(result.values(), _ZERO)
    if actual != expected:
        raise ManualValuesMismatch(expected=expected, actual=actual)
    return result


# --- product split -------------------------------------------------------------------------


def product_weights(
    shares: Mapping[K, Number], is_new: Mapping[K, bool], new_multiplier: Number
) -> dict[K, Decimal]:
    """Relative weights of product lines: each share, times ``new_multiplier`` if new.

    SPEC section 4 "Product": shares per product line, with a multiplier for
    ``is_new`` lines (e.g. 1.5 puts half as much again on new products). Every
    line in ``shares`` needs an ``is_new`` flag. When every share is zero the
    lines start from equal shares, so the multiplier still applies.
    """
    if not shares:
        raise ValueError("a product split needs at least one product line")
    multiplier = _non_negative(new_multiplier, "new_multiplier")
    missing = [line for line in shares if line not in is_new]
    if missing:
        raise ValueError(f"no is_new flag for product lines {missing!r}")
    base = {line: _non_negative(share, f"share of {line!r}") for line, share in shares.items()}
    if all(value == 0 for value in base.values()):
        base = dict.fromkeys(base, _ONE)
    with localcontext() as context:
        context.prec = _PRECISION
        return {line: value * (multiplier if is_new[line] else 1) for line, value in base.items()}


# --- ramp-up -------------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class RampSchedule:
    """Capacity factor by tenure month (SPEC section 4 "Ramp-up").

    ``steps`` are ``(from_tenure_month, factor)`` pairs in increasing month
    order, the first starting at month 1; a step's factor holds until the next
    step, the last one for good. Factors lie in [0, 1]. Tenure month 1 is the
    calendar month of the start date.
    """

    steps: tuple[tuple[int, Decimal], ...]

    def __init__(self, steps: Sequence[tuple[int, Number]]) -> None:
        checked: list[tuple[int, Decimal]] = []
        for from_month, factor in steps:
            if isinstance(from_month, bool) or not isinstance(from_month, int):
                raise TypeError(f"a ramp step starts at a whole tenure month, got {from_month!r}")
            factor_value = _to_decimal(factor, "ramp factor")
            if not 0 <= factor_value <= 1:
                raise ValueError(f"a ramp factor lies between 0 and 1, got {factor_value}")
            if checked and from_month <= checked[-1][0]:
                raise ValueError("ramp steps must be in increasing tenure-month order")
            checked.append((from_month, factor_value))
        if not checked or checked[0][0] != 1:
            raise ValueError("a ramp schedule must start at tenure month 1")
        object.__setattr__(self, "steps", tuple(checked))

    def factor(self, tenure: int) -> Decimal:
        """The capacity factor in tenure month ``tenure`` (0 before month 1)."""
        result = _ZERO
        for from_month, factor in self.steps:
            if tenure < from_month:
                break
            result = factor
        return result


#: SPEC default: tenure months 1-3 at 30 %, 4-6 at 60 %, then 100 %.
DEFAULT_RAMP = RampSchedule([(1, Decimal("0.3")), (4, Decimal("0.6")), (7, Decimal("1"))])


def tenure_month(start_date: date, month_start: date) -> int:
    """Tenure month of the calendar month containing ``month_start`` (1 = start month).

    0 or less for months before the start date's month.
    """
    return (month_start.year - start_date.year) * 12 + month_start.month - start_date.month + 1


def monthly_factors(
    fiscal_months: Sequence[Period | tuple[date, date]],
    start_date: date,
    end_date: date | None = None,
    schedule: RampSchedule = DEFAULT_RAMP,
) -> list[Decimal]:
    """A member's capacity factor for each fiscal month (SPEC section 4 "Ramp-up").

    ``factor = ramp factor of the month's tenure month x share of the month's
    days on which the member is active`` (``start_date`` .. ``end_date``,
    inclusive; ``end_date`` ``None`` while they stay). So 0 before the start
    month, prorated in the start month (start on the 16th of a 30-day month
    at 30 %: 0.3 x 15/30 = 0.15) and in the leaving month, 0 after it.
    ``fiscal_months`` are month periods or ``(first_day, last_day)`` pairs.
    Shares that do not terminate carry 28 significant digits.
    """
    factors = []
    for month in fiscal_months:
        period = month if isinstance(month, Period) else Period("month", month[0], month[1])
        tenure = tenure_month(start_date, period.start)
        if tenure < 1:
            factors.append(_ZERO)
            continue
        share = active_share(period, start_date, end_date)
        factors.append(DIVISION_CONTEXT.multiply(schedule.factor(tenure), share))
    return factors


def mean_factor(factors: Sequence[Number]) -> Decimal:
    """The mean of a member's monthly factors: their weight multiplier in the org split."""
    if not factors:
        raise ValueError("mean_factor needs at least one monthly factor")
    values = [_non_negative(factor, "factor") for factor in factors]
    return DIVISION_CONTEXT.divide(sum(values, _ZERO), Decimal(len(values)))


def ramped_org_split(
    total: Number,
    weights: Mapping[K, Number],
    factors_by_member: Mapping[K, Number],
    quantum: Number,
    preserve_total: bool,
) -> tuple[dict[K, Decimal], Decimal]:
    """Org split with ramp-up (SPEC section 4): the parts and the unassigned remainder.

    ``weights`` are the children's org weights (from :func:`org_weights`);
    ``factors_by_member`` holds each ramping member's mean factor
    (:func:`mean_factor`, in [0, 1]); children without one (org units,
    members at full capacity) have factor 1. When every weight is zero the
    children start from equal weights, so ramp-up still applies.

    - ``preserve_total=True``: each child weighs ``weight x factor`` and the
      whole ``total`` is allocated, the others absorbing what ramping members
      cannot carry; unassigned is 0. ``ValueError`` if every ramped weight is
      zero while ``total`` is not.
    - ``preserve_total=False``: each child first gets their unramped share
      (``allocate(total, weights)``); a member's share is then multiplied by
      their factor and rounded half-up to the quantum. The parts may sum to
      less than ``total``; ``unassigned = total - sum(parts)``.
    """
    if not weights:
        raise ValueError("cannot allocate over an empty set of weights")
    quantum_value = _quantum(quantum)
    base = {
        child: _non_negative(weight, f"weight of {child!r}") for child, weight in weights.items()
    }
    if all(value == 0 for value in base.values()):
        base = dict.fromkeys(base, _ONE)
    unknown = [member for member in factors_by_member if member not in base]
    if unknown:
        raise ValueError(f"factors given for {unknown!r}, who are not children of the node")
    factors: dict[K, Decimal] = {}
    for child in base:
        factor = _to_decimal(factors_by_member.get(child, _ONE), f"factor of {child!r}")
        if not 0 <= factor <= 1:
            raise ValueError(f"the factor of {child!r} must be between 0 and 1, got {factor}")
        factors[child] = factor
    total_value = _non_negative(total, "total")
    if preserve_total:
        with localcontext() as context:
            context.prec = _PRECISION
            ramped = {child: base[child] * factors[child] for child in base}
        if all(value == 0 for value in ramped.values()) and any(factors.values()):
            # The only children with weight cannot work and those who can have no
            # weight: capacity alone decides (SPEC section 4: never 0 for missing data).
            ramped = dict(factors)
        if total_value != 0 and all(value == 0 for value in ramped.values()):
            raise ValueError("no child has capacity: every ramped weight is zero")
        return allocate(total_value, ramped, quantum_value), _ZERO
    shares = allocate(total_value, base, quantum_value)
    parts: dict[K, Decimal] = {}
    for child, share in shares.items():
        if factors[child] == 1:
            parts[child] = share
        else:
            with localcontext() as context:
                context.prec = _PRECISION
                product = share * factors[child]
            parts[child] = round_half_up(product, quantum_value)
    with localcontext() as context:
        context.prec = _PRECISION
        unassigned = total_value - sum(parts.values(), _ZERO)
    return parts, unassigned


def ramped_time_weights(weights12: Sequence[Number], factors12: Sequence[Number]) -> list[Decimal]:
    """A ramping member's monthly time weights: each month's weight x that month's factor.

    SPEC section 4 "Ramp-up". All-zero ``weights12`` (no history) count as
    equal, so the factors still shape the split. If the products are all zero
    while some factor is not (seasonal weights zero exactly in the months the
    member works), the factors alone are used, so the member's annual value
    still lands in months they are active. All-zero factors give all-zero
    weights (and :func:`allocate` then splits equally: give such a member 0).
    """
    weights = _twelve(weights12, "weights12")
    factors = _twelve(factors12, "factors12")
    if all(weight == 0 for weight in weights):
        weights = [_ONE] * 12
    with localcontext() as context:
        context.prec = _PRECISION
        products = [weight * factor for weight, factor in zip(weights, factors, strict=True)]
    if all(product == 0 for product in products) and any(factor != 0 for factor in factors):
        return factors
    return products
