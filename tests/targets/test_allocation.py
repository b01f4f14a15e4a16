"""Target decomposition arithmetic (SPEC section 4, "Decomposition"); no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from targets.allocation import (
    DEFAULT_RAMP,
    ManualValuesMismatch,
    RampSchedule,
    allocate,
    check_manual,
    fill_history,
    mean_factor,
    monthly_factors,
    org_weights,
    product_weights,
    quarter_totals,
    ramped_org_split,
    ramped_time_weights,
    round_half_up,
    seasonal_weights,
    split_year,
    tenure_month,
    time_weights,
    with_headroom,
)
from targets.calendar import Period, months
from tenancy.money import minor_unit, round_money

D = Decimal

# --- allocate: hand-computed cases ---------------------------------------------------------


def test_allocate_splits_one_hundred_in_three_with_the_extra_unit_to_the_first() -> None:
    assert allocate(D("100"), {"a": 1, "b": 1, "c": 1}, 1) == {"a": 34, "b": 33, "c": 33}


def test_allocate_splits_currency_to_the_cent() -> None:
    parts = allocate(D("100.00"), {"a": D(1), "b": D(1), "c": D(1)}, D("0.01"))
    assert parts == {"a": D("33.34"), "b": D("33.33"), "c": D("33.33")}
    assert [str(part) for part in parts.values()] == ["33.34", "33.33", "33.33"]


def test_allocate_gives_leftover_quanta_to_largest_remainders() -> None:
    # 10 by 3:3:1 -> exact 4.2857, 4.2857, 1.4286; floors 4 + 4 + 1 = 9; the one leftover
    # unit goes to the largest remainder (0.4286, key c), not to the first key.
    assert allocate(D(10), {"a": 3, "b": 3, "c": 1}, 1) == {"a": 4, "b": 4, "c": 2}


def test_allocate_breaks_equal_remainders_in_favour_of_the_earlier_key() -> None:
    assert allocate(D(1), {"x": 1, "y": 1}, 1) == {"x": 1, "y": 0}
    assert allocate(D(1), {"y": 1, "x": 1}, 1) == {"y": 1, "x": 0}


def test_allocate_splits_equally_when_all_weights_are_zero() -> None:
    assert allocate(D(5), {"a": 0, "b": D("0.00"), "c": 0}, 1) == {"a": 2, "b": 2, "c": 1}


def test_allocate_of_zero_gives_zero_parts_at_the_quantum() -> None:
    parts = allocate(D("0.00"), {"a": 2, "b": 1}, D("0.01"))
    assert parts == {"a": 0, "b": 0}
    assert str(parts["a"]) == "0.00"


def test_allocate_gives_nothing_to_a_zero_weight_beside_positive_ones() -> None:
    assert allocate(D(7), {"a": 0, "b": 1, "c": 1}, 1) == {"a": 0, "b": 4, "c": 3}


def test_allocate_works_with_a_quantum_that_is_not_a_power_of_ten() -> None:
    assert allocate(D(100), {"a": 1, "b": 1, "c": 1}, 5) == {"a": 35, "b": 35, "c": 30}


def test_allocate_rejects_a_total_that_is_not_a_multiple_of_the_quantum() -> None:
    with pytest.raises(ValueError, match="not a multiple of the quantum"):
        allocate(D("100.005"), {"a": 1}, D("0.01"))


def test_allocate_rejects_negative_weights_negative_totals_and_empty_weights() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        allocate(D(10), {"a": 1, "b": -1}, 1)
    with pytest.raises(ValueError, match="must not be negative"):
        allocate(D(-10), {"a": 1}, 1)
    with pytest.raises(ValueError, match="empty"):
        allocate(D(10), {}, 1)
    with pytest.raises(ValueError, match="quantum must be positive"):
        allocate(D(10), {"a": 1}, 0)


def test_allocate_rejects_floats_with_type_error() -> None:
    with pytest.raises(TypeError, match="float"):
        allocate(100.0, {"a": 1}, 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        allocate(D(100), {"a": 0.5}, 1)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="float"):
        allocate(D(100), {"a": 1}, 0.01)  # type: ignore[arg-type]


# --- time split ----------------------------------------------------------------------------

# Last year's monthly actuals (in units of 10,000 yuan) in fiscal order: 11,000,000 in all.
HISTORY = [50, 60, 80, 90, 100, 110, 90, 80, 100, 110, 100, 130]


def test_seasonal_split_of_the_twelve_million_annual_goal() -> None:
    # Each month's exact share is 12,000,000 * h / 1,100 = h * 120,000 / 11 yuan, i.e.
    # h * 12,000,000 / 11 cents. As 12,000,000 = 1 (mod 11), the remainder in cents is
    # (h mod 11) / 11: Dec (130 -> 9/11), Jan (50 -> 6/11) and Feb (60 -> 5/11) are the
    # largest, and the remainders add up to 33/11 = 3 cents, so those three get a cent each.
    weights = time_weights("seasonal", history=[D(h) * 10_000 for h in HISTORY])
    monthly = split_year(D("12000000.00"), weights, D("0.01"))
    assert monthly == [
        D("545454.55"),  # 50: 545,454.5454... + 0.01
        D("654545.46"),  # 60: 654,545.4545... + 0.01
        D("872727.27"),
        D("981818.18"),
        D("1090909.09"),
        D("1200000.00"),
        D("981818.18"),
        D("872727.27"),
        D("1090909.09"),
        D("1200000.00"),
        D("1090909.09"),
        D("1418181.82"),  # 130: 1,418,181.8181... + 0.01
    ]
    assert sum(monthly) == D("12000000.00")
    assert quarter_totals(monthly) == [
        D("2072727.28"),
        D("3272727.27"),
        D("2945454.54"),
        D("3709090.91"),
    ]


def test_seasonal_split_falls_back_to_equal_without_history() -> None:
    assert time_weights("seasonal", history=None) == [1] * 12
    assert time_weights("seasonal", history=[0] * 12) == [1] * 12
    assert split_year(D(12), time_weights("seasonal", history=None), 1) == [1] * 12


def test_seasonal_weights_ignore_months_that_netted_out_negative() -> None:
    history = [D(-5), *[D(10)] * 11]
    assert time_weights("seasonal", history=history) == [0, *[10] * 11]


def test_equal_time_split_spreads_the_odd_units_over_the_first_months() -> None:
    assert split_year(D(100), time_weights("equal"), 1) == [9] * 4 + [8] * 8


def test_manual_time_split_uses_the_twelve_weights_given() -> None:
    weights = time_weights("manual", manual=[1, 1, 2] * 4)
    assert split_year(D(1600), weights, 1) == [100, 100, 200] * 4
    with pytest.raises(ValueError, match="12 monthly values"):
        time_weights("manual", manual=[1] * 11)
    with pytest.raises(ValueError, match="manual weights"):
        time_weights("manual")


def test_quarters_are_sums_of_their_months() -> None:
    assert quarter_totals(list(range(1, 13))) == [6, 15, 24, 33]


# --- org split -----------------------------------------------------------------------------


def test_equal_org_split_weighs_every_child_the_same() -> None:
    weights = org_weights("equal", ["east", "west", "rep-1"])
    assert allocate(D(10), weights, 1) == {"east": 4, "west": 3, "rep-1": 3}


def test_history_org_split_follows_last_years_actuals() -> None:
    weights = org_weights("history", ["a", "b", "new"], history={"a": D(300), "b": D(100)})
    assert allocate(D(1000), weights, 1) == {"a": 750, "b": 250, "new": 0}


def test_blend_mixes_normalised_history_and_potential_shares() -> None:
    # History shares 0.75 / 0.25, potential shares 0.25 / 0.75.
    history = {"a": D(300), "b": D(100)}
    potential = {"a": D(1), "b": D(3)}
    # alpha 0.8: a = 0.8 * 0.75 + 0.2 * 0.25 = 0.65, b = 0.8 * 0.25 + 0.2 * 0.75 = 0.35.
    weights = org_weights("blend", ["a", "b"], history=history, potential=potential, alpha=D("0.8"))
    assert allocate(D(1000), weights, 1) == {"a": 650, "b": 350}
    halfway = org_weights("blend", ["a", "b"], history=history, potential=potential, alpha=D("0.5"))
    assert allocate(D(1000), halfway, 1) == {"a": 500, "b": 500}


def test_blend_without_any_history_uses_equal_history_shares() -> None:
    # History shares 0.5 / 0.5, potential 0.1 / 0.9; alpha 0.5 -> 0.3 / 0.7.
    weights = org_weights(
        "blend", ["a", "b"], history={}, potential={"a": 1, "b": 9}, alpha=D("0.5")
    )
    assert allocate(D(100), weights, 1) == {"a": 30, "b": 70}


def test_blend_rejects_alpha_outside_zero_to_one_and_all_zero_potential() -> None:
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        org_weights("blend", ["a"], history={"a": 1}, potential={"a": 1}, alpha=D("1.5"))
    with pytest.raises(ValueError, match="potential weights sum to zero"):
        org_weights("blend", ["a", "b"], history={"a": 1}, potential={"a": 0, "b": 0}, alpha=0)
    with pytest.raises(ValueError, match="no potential weight"):
        org_weights("potential", ["a", "b"], potential={"a": 1})


def test_manual_org_split_is_not_a_weighting() -> None:
    with pytest.raises(ValueError, match="check_manual"):
        org_weights("manual", ["a", "b"])


# --- headroom and manual values ------------------------------------------------------------


def test_headroom_of_ten_percent_makes_children_sum_to_one_point_one_times_the_parent() -> None:
    parent = D(1_000_000)
    children_total = with_headroom(parent, D("0.10"), 1)
    assert children_total == D(1_100_000)
    parts = allocate(children_total, org_weights("equal", ["a", "b", "c"]), 1)
    assert parts == {"a": 366_667, "b": 366_667, "c": 366_666}


def test_headroom_product_is_rounded_half_up_to_the_quantum() -> None:
    assert with_headroom(D(15), D("0.10"), 1) == 17  # 16.5 -> 17 (half-even would give 16)
    assert with_headroom(D("0.03"), D("0.5"), D("0.01")) == D("0.05")  # 0.045 -> 0.05
    assert with_headroom(D("1000.05"), D("0.10"), D("0.01")) == D("1100.06")  # 1100.055
    assert round_half_up(D("2.5"), 1) == 3
    assert round_half_up(D("-2.5"), 1) == -3


def test_manual_values_that_add_up_are_returned_unchanged() -> None:
    values = {"a": D(600_000), "b": D(400_000)}
    assert check_manual(D(1_000_000), values, quantum=1) == values
    with_room = {"a": D(700_000), "b": D(400_000)}
    assert check_manual(D(1_000_000), with_room, D("0.10"), quantum=1) == with_room


def test_manual_values_that_do_not_add_up_report_the_difference() -> None:
    with pytest.raises(ManualValuesMismatch) as caught:
        check_manual(D(1_000_000), {"a": D(400_000), "b": D(500_000)}, quantum=1)
    assert caught.value.expected == D(1_000_000)
    assert caught.value.actual == D(900_000)
    assert caught.value.difference == D(-100_000)
    assert "100000 under" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_manual_values_over_the_headroom_report_a_positive_difference() -> None:
    with pytest.raises(ManualValuesMismatch) as caught:
        check_manual(D("100.00"), {"a": D("60.00"), "b": D("55.01")}, D("0.10"), quantum=D("0.01"))
    assert caught.value.expected == D("110.00")
    assert caught.value.difference == D("5.01")


def test_manual_values_must_be_multiples_of_the_quantum() -> None:
    with pytest.raises(ValueError, match="not a multiple of the quantum"):
        check_manual(D(1), {"a": D("0.5"), "b": D("0.5")}, quantum=1)


# --- product split -------------------------------------------------------------------------


def test_new_product_lines_weigh_their_share_times_the_multiplier() -> None:
    # 0.6 old vs 0.4 new x 1.5 = 0.6: an even split.
    weights = product_weights(
        {"old": D("0.6"), "new": D("0.4")}, {"old": False, "new": True}, D("1.5")
    )
    assert allocate(D(1000), weights, 1) == {"old": 500, "new": 500}


def test_product_split_without_shares_still_favours_new_lines() -> None:
    weights = product_weights({"old": 0, "new": 0}, {"old": False, "new": True}, D(3))
    assert allocate(D(100), weights, 1) == {"old": 25, "new": 75}


def test_product_split_needs_an_is_new_flag_for_every_line() -> None:
    with pytest.raises(ValueError, match="is_new"):
        product_weights({"old": 1, "new": 1}, {"old": False}, D(2))


# --- ramp-up -------------------------------------------------------------------------------


def test_default_ramp_is_thirty_sixty_then_full_capacity() -> None:
    assert [DEFAULT_RAMP.factor(month) for month in range(0, 9)] == [
        0,
        D("0.3"),
        D("0.3"),
        D("0.3"),
        D("0.6"),
        D("0.6"),
        D("0.6"),
        1,
        1,
    ]
    assert DEFAULT_RAMP.factor(100) == 1


def test_tenure_month_one_is_the_month_of_the_start_date() -> None:
    assert tenure_month(date(2026, 2, 15), date(2026, 2, 1)) == 1
    assert tenure_month(date(2026, 2, 15), date(2027, 1, 1)) == 12
    assert tenure_month(date(2026, 2, 15), date(2026, 1, 1)) == 0


def test_ramp_schedule_rejects_bad_steps() -> None:
    with pytest.raises(ValueError, match="tenure month 1"):
        RampSchedule([(2, D("0.5"))])
    with pytest.raises(ValueError, match="increasing"):
        RampSchedule([(1, D("0.5")), (1, D(1))])
    with pytest.raises(ValueError, match="between 0 and 1"):
        RampSchedule([(1, D("1.5"))])


def test_monthly_factors_are_zero_before_start_and_prorated_in_the_start_month() -> None:
    # FY2026 on a calendar year; start on 15 Feb 2026 (February has 28 days).
    # Jan: before the start -> 0.
    # Feb: tenure month 1 (0.3) x active 15th..28th = 14/28 -> 0.3 x 0.5 = 0.15.
    # Mar, Apr: tenure 2, 3 -> 0.3.   May, Jun, Jul: tenure 4-6 -> 0.6.   Aug..Dec -> 1.
    factors = monthly_factors(months(2026, 1), date(2026, 2, 15), None)
    assert factors == [
        0,
        D("0.15"),
        D("0.3"),
        D("0.3"),
        D("0.6"),
        D("0.6"),
        D("0.6"),
        1,
        1,
        1,
        1,
        1,
    ]


def test_monthly_factors_prorate_the_leaving_month_and_zero_after_it() -> None:
    fiscal_months: list[Period | tuple[date, date]] = [
        (month.start, month.end) for month in months(2026, 1)
    ]
    # A veteran (ramp long done) leaving on 10 Jun 2026: June 10/30, then nothing.
    factors = monthly_factors(fiscal_months, date(2020, 1, 1), date(2026, 6, 10))
    assert factors[:5] == [1] * 5
    assert factors[5] == D(1) / D(3)
    assert factors[6:] == [0] * 6


def test_ramped_member_worked_example() -> None:
    # A rep starting on 1 Jan 2026 (FY2026 = calendar 2026, default ramp):
    #   factors 0.3, 0.3, 0.3, 0.6, 0.6, 0.6, 1, 1, 1, 1, 1, 1 -> sum 8.7, mean 0.725.
    factors = monthly_factors(months(2026, 1), date(2026, 1, 1))
    assert sum(factors) == D("8.7")
    assert mean_factor(factors) == D("0.725")

    # Org split of a team's 1,000,000 over three equal reps, C being the new one.
    weights = org_weights("equal", ["A", "B", "C"])
    # preserve_total: weights 1, 1, 0.725 (sum 2.725). A = B = 1,000,000 / 2.725 =
    # 366,972.477, C = 725,000 / 2.725 = 266,055.046; floors add to 999,999 and the one
    # leftover unit goes to A (remainder 0.477, tied with B, A is earlier).
    parts, unassigned = ramped_org_split(D(1_000_000), weights, {"C": D("0.725")}, 1, True)
    assert parts == {"A": 366_973, "B": 366_972, "C": 266_055}
    assert unassigned == 0
    # Without preserve_total: unramped shares 333,334 / 333,333 / 333,333; C gets
    # 333,333 x 0.725 = 241,666.425 -> 241,666; the rest, 91,667, is unassigned.
    parts, unassigned = ramped_org_split(D(1_000_000), weights, {"C": D("0.725")}, 1, False)
    assert parts == {"A": 333_334, "B": 333_333, "C": 241_666}
    assert unassigned == 91_667

    # C's own time split: equal time weights x factors; an annual 87,000 is 10,000 per unit
    # of factor: 3,000 in each ramp month at 0.3, 6,000 at 0.6, 10,000 at full capacity.
    ramped = ramped_time_weights(time_weights("equal"), factors)
    assert split_year(D(87_000), ramped, 1) == [3000] * 3 + [6000] * 3 + [10_000] * 6


def test_ramped_split_rounds_the_members_share_half_up() -> None:
    # Unramped shares 5 / 5; B at 0.3: 1.5 -> 2 (half-up), unassigned 3.
    parts, unassigned = ramped_org_split(D(10), {"A": 1, "B": 1}, {"B": D("0.3")}, 1, False)
    assert parts == {"A": 5, "B": 2}
    assert unassigned == 3


def test_ramped_split_starts_from_equal_weights_when_all_weights_are_zero() -> None:
    parts, _ = ramped_org_split(D(150), {"A": 0, "B": 0}, {"B": D("0.5")}, 1, True)
    assert parts == {"A": 100, "B": 50}


def test_ramped_split_rejects_factors_for_strangers_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="not children"):
        ramped_org_split(D(10), {"A": 1}, {"Z": D("0.5")}, 1, True)
    with pytest.raises(ValueError, match="between 0 and 1"):
        ramped_org_split(D(10), {"A": 1}, {"A": D("1.5")}, 1, True)
    with pytest.raises(ValueError, match="no child has capacity"):
        ramped_org_split(D(10), {"A": 1}, {"A": 0}, 1, True)


def test_ramped_time_weights_use_factors_when_seasonal_weights_vanish_in_active_months() -> None:
    seasonal = [D(1)] * 6 + [D(0)] * 6
    factors = [D(0)] * 6 + [D(1)] * 6
    assert ramped_time_weights(seasonal, factors) == factors
    assert ramped_time_weights([D(0)] * 12, factors) == factors


# --- properties ----------------------------------------------------------------------------

quanta = st.sampled_from([D(1), D("0.01"), D("0.1"), D(5)])
weight_values = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(Decimal),
    st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False, allow_infinity=False),
)
weight_maps = st.dictionaries(
    st.text(min_size=1, max_size=5), weight_values, min_size=1, max_size=12
)
quanta_counts = st.integers(min_value=0, max_value=10**11)


def _exact_shares(total: Decimal, weights: dict[str, Decimal]) -> dict[str, Fraction]:
    weight_sum = sum((Fraction(w) for w in weights.values()), Fraction(0))
    if weight_sum == 0:
        return {key: Fraction(total) / len(weights) for key in weights}
    return {key: Fraction(total) * Fraction(w) / weight_sum for key, w in weights.items()}


@given(weights=weight_maps, count=quanta_counts, quantum=quanta)
def test_allocated_parts_are_non_negative_multiples_of_the_quantum_summing_to_the_total(
    weights: dict[str, Decimal], count: int, quantum: Decimal
) -> None:
    total = quantum * count
    parts = allocate(total, weights, quantum)
    assert list(parts) == list(weights)
    assert sum(parts.values()) == total
    for part in parts.values():
        assert part >= 0
        assert part % quantum == 0
    # Each part is within one quantum of its exact proportional share.
    for key, share in _exact_shares(total, weights).items():
        assert abs(Fraction(parts[key]) - share) < Fraction(quantum)


@given(
    weights=weight_maps,
    count=quanta_counts,
    quantum=quanta,
    headroom=st.decimals(min_value=0, max_value=1, places=3, allow_nan=False),
)
def test_children_sum_exactly_to_the_parent_with_headroom_rounded(
    weights: dict[str, Decimal], count: int, quantum: Decimal, headroom: Decimal
) -> None:
    parent = quantum * count
    target = with_headroom(parent, headroom, quantum)
    exact = Fraction(parent) * (1 + Fraction(headroom))
    assert target % quantum == 0
    assert abs(Fraction(target) - exact) <= Fraction(quantum) / 2
    parts = allocate(target, weights, quantum)
    assert sum(parts.values()) == target
    assert all(part >= 0 for part in parts.values())


@given(
    data=st.data(),
    weights=weight_maps,
    count=st.integers(min_value=0, max_value=10**9),
    quantum=quanta,
)
def test_permuting_keys_without_tied_remainders_gives_the_same_mapping(
    data: st.DataObject, weights: dict[str, Decimal], count: int, quantum: Decimal
) -> None:
    total = quantum * count
    remainders = [share / Fraction(quantum) % 1 for share in _exact_shares(total, weights).values()]
    nonzero = [remainder for remainder in remainders if remainder]
    assume(len(set(nonzero)) == len(nonzero))
    order = data.draw(st.permutations(list(weights)))
    permuted = {key: weights[key] for key in order}
    assert allocate(total, permuted, quantum) == allocate(total, weights, quantum)


@given(size=st.integers(min_value=1, max_value=30), count=quanta_counts, quantum=quanta)
def test_all_zero_weights_split_equally_within_one_quantum(
    size: int, count: int, quantum: Decimal
) -> None:
    parts = allocate(quantum * count, {index: D(0) for index in range(size)}, quantum)
    assert max(parts.values()) - min(parts.values()) <= quantum
    assert sum(parts.values()) == quantum * count
    # The larger parts come first.
    assert list(parts.values()) == sorted(parts.values(), reverse=True)


@given(
    weights=st.lists(weight_values, min_size=12, max_size=12),
    count=quanta_counts,
    quantum=quanta,
)
def test_split_year_months_sum_to_the_annual_and_quarters_to_the_months(
    weights: list[Decimal], count: int, quantum: Decimal
) -> None:
    annual = quantum * count
    monthly = split_year(annual, weights, quantum)
    assert sum(monthly) == annual
    assert sum(quarter_totals(monthly)) == annual
    assert all(month >= 0 and month % quantum == 0 for month in monthly)


@given(
    weights=weight_maps,
    count=quanta_counts,
    quantum=quanta,
    factors=st.lists(
        st.decimals(min_value=0, max_value=1, places=3, allow_nan=False), min_size=12, max_size=12
    ),
)
def test_ramped_org_split_accounts_for_every_quantum(
    weights: dict[str, Decimal], count: int, quantum: Decimal, factors: list[Decimal]
) -> None:
    total = quantum * count
    members = {key: factor for key, factor in zip(weights, factors, strict=False)}
    first = next(iter(weights))
    members.pop(first, None)  # keep at least one child at full capacity
    preserved, nothing = ramped_org_split(total, weights, members, quantum, True)
    assert sum(preserved.values()) == total
    assert nothing == 0
    parts, unassigned = ramped_org_split(total, weights, members, quantum, False)
    assert sum(parts.values()) + unassigned == total
    assert unassigned >= 0
    assert all(part >= 0 and part % quantum == 0 for part in parts.values())


@given(
    value=st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False),
    currency=st.sampled_from(["CNY", "USD", "JPY", "KWD"]),
)
def test_round_half_up_agrees_with_the_money_helper_on_the_minor_unit(
    value: Decimal, currency: str
) -> None:
    assert round_half_up(value, minor_unit(currency)) == round_money(value, currency)


# -- seasonal weights with partial history (SPEC section 4 "Time") ------------------------

# The tenant's data starts in month 7 of the window: months 1-6 have no history.
PARTIAL = [None] * 6 + [D(100), D(200), D(0), D(-50), D(300), D(400)]


def test_months_before_the_first_row_take_the_mean_of_those_with_history() -> None:
    # With history: 100, 200, a real 0, −50 → 0, 300, 400: sum 1,000 over 6 months, mean
    # 166.67. 12,000 split: 1,000 for each month without history (the mean's share),
    # then 100 × 12,000 / 2,000 … in proportion: 600, 1,200, 0, 0, 1,800, 2,400.
    weights = seasonal_weights(PARTIAL)
    assert split_year(D(12000), weights, 1) == [D(1000)] * 6 + [
        D(600),
        D(1200),
        D(0),
        D(0),
        D(1800),
        D(2400),
    ]


def test_a_seasonal_blend_mixes_the_shares_with_equal_ones() -> None:
    # β = 0.5: 0.5 × share + 0.5 / 12 of 12,000 → 1,000, then 800, 1,100, 500, 500,
    # 1,400, 1,700.
    weights = seasonal_weights(PARTIAL, D("0.5"))
    assert split_year(D(12000), weights, 1) == [D(1000)] * 6 + [
        D(800),
        D(1100),
        D(500),
        D(500),
        D(1400),
        D(1700),
    ]
    assert split_year(D(12000), seasonal_weights(PARTIAL, 0), 1) == [D(1000)] * 12


def test_fewer_than_three_months_of_history_split_equally() -> None:
    assert seasonal_weights([None] * 10 + [D(5), D(7)]) == [D(1)] * 12
    assert seasonal_weights([None] * 12) == [D(1)] * 12
    assert seasonal_weights([D(0)] * 12) == [D(1)] * 12
    with pytest.raises(ValueError, match="seasonal_blend"):
        seasonal_weights(PARTIAL, D("1.5"))


@given(
    history=st.lists(
        st.one_of(st.none(), st.decimals(min_value=-1000, max_value=10**6, places=2)),
        min_size=12,
        max_size=12,
    ),
    blend=st.decimals(min_value=0, max_value=1, places=2),
    count=quanta_counts,
)
def test_seasonal_splits_add_up_and_never_give_a_month_without_history_zero(
    history: list[Decimal | None], blend: Decimal, count: int
) -> None:
    annual = D("0.01") * count
    months = split_year(annual, seasonal_weights(history, blend), D("0.01"))
    assert sum(months) == annual and all(month >= 0 for month in months)
    weights = seasonal_weights(history, blend)
    known = [max(value, D(0)) for value in history if value is not None]
    if len(known) >= 3 and sum(known) > 0:
        # A month without history weighs the mean of the others, never 0.
        assert all(w > 0 for w, value in zip(weights, history, strict=True) if value is None)


def test_a_child_without_a_whole_year_takes_the_mean_of_its_siblings_that_have_one() -> None:
    # a 300, b 100 over the whole window; e joined 3 months ago (50 so far) → mean 200.
    filled = fill_history({"a": D(300), "b": D(100), "e": D(50)}, {"a", "b"})
    assert filled is not None
    assert allocate(D(600), filled, 1) == {"a": D(300), "b": D(100), "e": D(200)}
    # Nobody has a whole year: no history weights at all (the split is equal).
    assert fill_history({"a": D(5), "b": D(0)}, set()) is None
