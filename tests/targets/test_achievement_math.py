"""SPEC §4 "Achievement" on plain values: hand-computed cases and properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from targets.achievement_math import (
    AT_RISK,
    OFF_TRACK,
    ON_TRACK,
    Achievement,
    OpenDeal,
    PeriodTarget,
    Projection,
    attainment,
    compute_achievement,
    expected_to_date,
    expected_to_date_leaf,
    gap,
    pace,
    projected,
    projected_collections,
    required_per_day,
    run_rate,
    shown_amount,
    shown_rate,
    status,
)

D = Decimal

# Fiscal year 2025 starting in January: month lengths of a non-leap year.
MONTH_DAYS_2025 = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def split_elapsed(elapsed_days: int, day_counts: list[int]) -> list[int]:
    """Elapsed days of each sub-period when the parent has ``elapsed_days`` elapsed."""
    parts = []
    for days in day_counts:
        part = min(max(elapsed_days, 0), days)
        parts.append(part)
        elapsed_days -= part
    return parts


def year_as_of(
    month_targets: list[Decimal],
    elapsed_days: int,
    month_days: tuple[int, ...] = MONTH_DAYS_2025,
) -> PeriodTarget:
    """A year decomposed into quarters and months, each quarter the sum of its months."""
    month_elapsed = split_elapsed(elapsed_days, list(month_days))
    months = [
        PeriodTarget(target=target, total_days=days, elapsed_days=elapsed)
        for target, days, elapsed in zip(month_targets, month_days, month_elapsed, strict=True)
    ]
    quarters = tuple(
        PeriodTarget(
            target=sum((month.target or D(0) for month in months[i : i + 3]), D(0)),
            total_days=sum(month.total_days for month in months[i : i + 3]),
            elapsed_days=sum(month.elapsed_days for month in months[i : i + 3]),
            children=tuple(months[i : i + 3]),
        )
        for i in range(0, 12, 3)
    )
    return PeriodTarget(
        target=sum(month_targets, D(0)),
        total_days=sum(month_days),
        elapsed_days=elapsed_days,
        children=quarters,
    )


# -- attainment ---------------------------------------------------------------------------


def test_attainment_is_exact_and_shown_half_up_to_four_places() -> None:
    assert attainment(D("1234.5"), D("10000")) == D("0.12345")
    assert shown_rate(attainment(D("1234.5"), D("10000"))) == D("0.1235")  # half-even: 0.1234
    assert shown_rate(attainment(D("2"), D("3"))) == D("0.6667")
    assert shown_rate(attainment(D("1"), D("3"))) == D("0.3333")
    assert shown_rate(attainment(D("150"), D("100"))) == D("1.5000")


def test_attainment_can_be_negative_when_reversals_exceed_payments() -> None:
    assert shown_rate(attainment(D("-50"), D("1000"))) == D("-0.0500")


def test_attainment_is_none_when_the_target_is_not_set_or_not_applicable() -> None:
    assert attainment(D("10"), None) is None
    assert attainment(D("10"), D("0")) is None
    assert attainment(D("10"), D("0.00")) is None


@given(
    actual=st.decimals(min_value=-(10**9), max_value=10**9, places=2),
    target=st.decimals(min_value=D("0.01"), max_value=10**9, places=2),
)
def test_attainment_is_within_half_a_unit_of_the_fourth_place(
    actual: Decimal, target: Decimal
) -> None:
    result = shown_rate(attainment(actual, target))
    assert result is not None
    assert result.as_tuple().exponent == -4
    assert abs(Fraction(result) - Fraction(actual) / Fraction(target)) <= Fraction(1, 20000)


# -- expected to date ---------------------------------------------------------------------


def test_expected_to_date_of_a_period_without_sub_periods_is_linear_by_days() -> None:
    assert expected_to_date_leaf(D("100"), 15, 30) == D("50")
    assert expected_to_date(PeriodTarget(D("100"), 30, 15)) == D("50")


def test_expected_to_date_counts_the_as_of_day_itself() -> None:
    # As of the first day of a 30-day month, one day of thirty is expected.
    assert expected_to_date_leaf(D("300"), 1, 30) == D("10")


def test_expected_to_date_keeps_full_precision_for_callers_to_round() -> None:
    result = expected_to_date_leaf(D("100"), 1, 3)
    assert result is not None
    assert result.quantize(D("0.01")) == D("33.33")
    assert result != D("33.33")


def test_expected_to_date_is_none_without_a_target() -> None:
    assert expected_to_date_leaf(None, 5, 30) is None
    assert expected_to_date(PeriodTarget(None, 30, 5)) is None


def test_expected_to_date_of_equal_months_is_elapsed_months_plus_the_current_share() -> None:
    # FY target 1200, twelve 30-day months of 100 each, as of the 15th of the second month.
    year = year_as_of([D("100")] * 12, 30 + 15, month_days=(30,) * 12)
    assert expected_to_date(year) == D("100") + D("100") * 15 / 30 == D("150")


def test_expected_to_date_follows_the_plans_seasonality_not_the_calendar() -> None:
    # January is a slow month (50), February a strong one (150); as of 14 February.
    month_targets = [D("50"), D("150")] + [D("100")] * 10
    year = year_as_of(month_targets, 31 + 14)
    assert expected_to_date(year) == D("50") + D("150") * 14 / 28 == D("125")
    # A year paced linearly by days would expect more than the plan does.
    assert expected_to_date_leaf(D("1200"), 31 + 14, 365) == D("1200") * 45 / 365


def test_expected_to_date_adds_whole_elapsed_quarters_before_the_current_month() -> None:
    month_targets = [D(m) for m in (50, 150, 100, 90, 120, 60, 100, 100, 100, 100, 100, 30)]
    # As of 10 April: Q1 (50 + 150 + 100) is fully elapsed, April is 10 of 30 days in.
    year = year_as_of(month_targets, 31 + 28 + 31 + 10)
    assert expected_to_date(year) == D("300") + D("90") * 10 / 30 == D("330")


def test_expected_to_date_uses_a_fully_elapsed_sub_periods_own_target() -> None:
    # As of 31 March, the last day of Q1: the whole quarter, April not started.
    month_targets = [D(m) for m in (50, 150, 100)] + [D("100")] * 9
    year = year_as_of(month_targets, 31 + 28 + 31)
    assert expected_to_date(year) == D("300")


def test_expected_to_date_is_the_whole_target_on_the_last_day_and_zero_before_the_start() -> None:
    month_targets = [D(m) for m in (50, 150, 100, 90, 120, 60, 100, 100, 100, 100, 100, 30)]
    assert expected_to_date(year_as_of(month_targets, 365)) == D("1100")
    assert expected_to_date(year_as_of(month_targets, 0)) == D("0")


def test_expected_to_date_is_none_when_a_started_sub_period_has_no_target() -> None:
    month_targets: list[Decimal | None] = [D("100"), None, D("100")]
    months = [
        PeriodTarget(target, 30, elapsed)
        for target, elapsed in zip(month_targets, (30, 5, 0), strict=True)
    ]
    quarter = PeriodTarget(D("300"), 90, 35, tuple(months))
    assert expected_to_date(quarter) is None


def test_expected_to_date_ignores_sub_periods_not_started_yet_even_without_target() -> None:
    months = (
        PeriodTarget(D("100"), 30, 30),
        PeriodTarget(D("100"), 30, 6),
        PeriodTarget(None, 30, 0),
    )
    quarter = PeriodTarget(D("300"), 90, 36, months)
    assert expected_to_date(quarter) == D("120")


def test_period_target_rejects_sub_periods_whose_days_do_not_add_up() -> None:
    with pytest.raises(ValueError, match="total_days"):
        PeriodTarget(
            D("200"), 61, 10, (PeriodTarget(D("100"), 30, 10), PeriodTarget(D("100"), 30, 0))
        )
    with pytest.raises(ValueError, match="elapsed_days"):
        PeriodTarget(
            D("200"), 60, 11, (PeriodTarget(D("100"), 30, 10), PeriodTarget(D("100"), 30, 0))
        )


def test_period_target_rejects_a_sub_period_starting_before_the_previous_one_ends() -> None:
    with pytest.raises(ValueError, match="started before"):
        PeriodTarget(
            D("200"), 60, 30, (PeriodTarget(D("100"), 30, 10), PeriodTarget(D("100"), 30, 20))
        )


def test_period_target_rejects_impossible_day_counts() -> None:
    with pytest.raises(ValueError):
        PeriodTarget(D("100"), 0, 0)
    with pytest.raises(ValueError):
        PeriodTarget(D("100"), 30, 31)
    with pytest.raises(ValueError):
        expected_to_date_leaf(D("100"), -1, 30)


month_targets_strategy = st.lists(
    st.decimals(min_value=0, max_value=10**7, places=2), min_size=12, max_size=12
)


@given(per_day=st.integers(min_value=0, max_value=10**6), elapsed=st.integers(0, 365))
def test_expected_to_date_of_a_plan_even_by_day_equals_linear_pacing_of_the_year(
    per_day: int, elapsed: int
) -> None:
    month_targets = [D(per_day * days) for days in MONTH_DAYS_2025]
    year = year_as_of(month_targets, elapsed)
    assert expected_to_date(year) == expected_to_date_leaf(year.target, elapsed, 365)


@given(month_targets=month_targets_strategy, elapsed=st.integers(0, 364))
def test_expected_to_date_never_decreases_and_stays_within_zero_and_the_target(
    month_targets: list[Decimal], elapsed: int
) -> None:
    today = expected_to_date(year_as_of(month_targets, elapsed))
    tomorrow = expected_to_date(year_as_of(month_targets, elapsed + 1))
    assert today is not None
    assert tomorrow is not None
    assert D(0) <= today <= tomorrow <= sum(month_targets, D(0))


@given(month_targets=month_targets_strategy)
def test_expected_to_date_reaches_the_sum_of_the_months_on_the_last_day(
    month_targets: list[Decimal],
) -> None:
    assert expected_to_date(year_as_of(month_targets, 365)) == sum(month_targets, D(0))


def test_a_half_cent_expected_to_date_is_shown_rounded_half_up() -> None:
    # 294,410.55 × 1/30 = 9,813.685: half-up gives 9,813.69 (half-even gave 9,813.68).
    expected = expected_to_date_leaf(D("294410.55"), 1, 30)
    assert expected == D("9813.685")
    assert shown_amount(expected, "CNY") == D("9813.69")
    assert shown_amount(expected, "JPY") == D("9814")
    assert shown_amount(D("2.125"), None) == D("2.13")  # a count paced by days


# -- pace and status ----------------------------------------------------------------------


def test_pace_is_actual_over_expected_shown_to_four_places() -> None:
    assert shown_rate(pace(D("100"), D("100"))) == D("1.0000")
    assert shown_rate(pace(D("90"), D("100"))) == D("0.9000")
    assert pace(D("2"), D("3")) == D(2) / D(3)
    assert shown_rate(pace(D("2"), D("3"))) == D("0.6667")


def test_pace_is_none_when_nothing_is_expected_yet() -> None:
    assert pace(D("10"), D("0")) is None
    assert pace(D("10"), None) is None


def test_status_is_on_track_from_a_pace_of_exactly_one() -> None:
    assert status(D("1")) == ON_TRACK
    assert status(D("1.5")) == ON_TRACK


def test_status_is_at_risk_at_exactly_one_minus_the_threshold() -> None:
    assert status(D("0.9"), D("0.10")) == AT_RISK
    assert status(D("0.9999")) == AT_RISK


def test_status_is_off_track_just_below_one_minus_the_threshold() -> None:
    assert status(D("0.8999"), D("0.10")) == OFF_TRACK
    assert status(D("0")) == OFF_TRACK


def test_status_follows_the_tenants_threshold() -> None:
    assert status(D("0.8"), D("0.20")) == AT_RISK
    assert status(D("0.7999"), D("0.20")) == OFF_TRACK
    # With no tolerance, anything behind is off track.
    assert status(D("0.9999"), D("0")) == OFF_TRACK


def test_status_is_judged_on_the_exact_pace_not_the_one_shown() -> None:
    # SPEC §4: 260,000 / 260,010 = 0.99996… shows as 1.0000 but is at risk.
    close_to_one = pace(D("260000"), D("260010"))
    assert shown_rate(close_to_one) == D("1.0000")
    assert status(close_to_one) == AT_RISK
    # The 1 − t edge: 8,999.5 / 10,000 = 0.89995 shows as 0.9000 but is off track.
    edge = pace(D("8999.5"), D("10000"))
    assert shown_rate(edge) == D("0.9000")
    assert status(edge) == OFF_TRACK
    assert status(pace(D("9000"), D("10000"))) == AT_RISK


def test_status_is_none_without_a_pace() -> None:
    assert status(None) is None


@pytest.mark.parametrize("threshold", [D("1"), D("1.5"), D("-0.01")])
def test_status_rejects_a_threshold_outside_zero_to_one(threshold: Decimal) -> None:
    with pytest.raises(ValueError, match="threshold"):
        status(D("1"), threshold)


@given(
    low=st.decimals(min_value=0, max_value=3, places=4),
    high=st.decimals(min_value=0, max_value=3, places=4),
    threshold=st.decimals(min_value=0, max_value=D("0.9999"), places=4),
)
def test_a_higher_pace_never_has_a_worse_status(
    low: Decimal, high: Decimal, threshold: Decimal
) -> None:
    low, high = sorted((low, high))
    rank = {OFF_TRACK: 0, AT_RISK: 1, ON_TRACK: 2}
    low_status = status(low, threshold)
    high_status = status(high, threshold)
    assert low_status is not None
    assert high_status is not None
    assert rank[low_status] <= rank[high_status]


# -- gap and required per day -------------------------------------------------------------


def test_gap_is_what_is_missing_from_the_target() -> None:
    assert gap(D("100"), D("40")) == D("60")


def test_gap_is_zero_when_the_actual_exceeds_the_target() -> None:
    assert gap(D("100"), D("120")) == D("0")
    assert gap(D("100"), D("100")) == D("0")


def test_gap_is_none_without_a_target() -> None:
    assert gap(None, D("10")) is None


@given(
    target=st.decimals(min_value=0, max_value=10**9, places=2),
    actual=st.decimals(min_value=-(10**9), max_value=10**9, places=2),
)
def test_gap_is_never_negative_and_closes_the_target(target: Decimal, actual: Decimal) -> None:
    missing = gap(target, actual)
    assert missing is not None
    assert missing >= 0
    assert actual + missing >= target


def test_required_per_day_spreads_the_gap_over_the_remaining_days() -> None:
    assert required_per_day(D("60"), 4) == D("15")


def test_required_per_day_is_none_on_the_last_day() -> None:
    assert required_per_day(D("60"), 0) is None


def test_required_per_day_is_zero_when_nothing_is_missing() -> None:
    assert required_per_day(D("0"), 10) == D("0")


def test_required_per_day_is_none_without_a_gap_and_rejects_negative_days() -> None:
    assert required_per_day(None, 10) is None
    with pytest.raises(ValueError):
        required_per_day(D("10"), -1)


# -- projection ---------------------------------------------------------------------------


def test_projected_weights_open_deals_and_commit_takes_commit_deals_at_face_value() -> None:
    deals = [
        OpenDeal(D("10000"), D("50"), "commit"),
        OpenDeal(D("4000"), D("25"), "best_case"),
        OpenDeal(D("2000"), D("100"), "pipeline"),
    ]
    # 1,000 + 5,000 + 1,000 + 2,000 = 9,000; commit: 1,000 + 10,000 (no probability).
    assert projected(D("1000"), deals) == Projection(projected=D("9000"), commit=D("11000"))


def test_projected_accepts_plain_tuples_and_no_deals() -> None:
    assert projected(D("10"), [(D("100"), 10, "commit")]) == (D("20"), D("110"))
    assert projected(D("10"), []) == (D("10"), D("10"))


def test_collections_project_planned_payments_at_face_value() -> None:
    assert projected_collections(D("500"), [D("1200"), D("300.50")]) == (D("2000.50"), None)


def test_other_metrics_project_by_run_rate() -> None:
    # 12 visits in 10 of 30 days → 36; before the period starts there is no rate.
    assert run_rate(D("12"), 10, 30) == D("36")
    assert run_rate(D("7"), 3, 31) == D(7) * 31 / 3
    assert run_rate(D("5"), 0, 30) is None


def test_projected_rejects_a_probability_outside_zero_to_one_hundred() -> None:
    with pytest.raises(ValueError, match="probability"):
        projected(D("0"), [OpenDeal(D("100"), D("101"), "commit")])


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=10**7, places=2),
            st.integers(0, 100),
            st.sampled_from(["pipeline", "best_case", "commit", "omitted"]),
        ),
        max_size=20,
    )
)
def test_projections_never_fall_below_the_actual_with_non_negative_deals(
    deals: list[tuple[Decimal, int, str]],
) -> None:
    weighted, commit = projected(D("500"), deals)
    assert commit is not None
    assert D("500") <= weighted and D("500") <= commit
    # A commit deal counts at least as much in the commit projection as in the weighted one.
    commit_deals = [(amount, p, c) for amount, p, c in deals if c == "commit"]
    assert commit - D("500") >= projected(D("0"), commit_deals).projected


# -- compute_achievement ------------------------------------------------------------------


def test_compute_achievement_fills_every_figure_of_a_month() -> None:
    month = PeriodTarget(target=D("3000"), total_days=30, elapsed_days=10)
    result = compute_achievement(
        period=month,
        actual=D("800"),
        open_deals=[
            OpenDeal(D("1000"), D("40"), "commit"),
            OpenDeal(D("500"), D("20"), "pipeline"),
        ],
    )
    assert result == Achievement(
        target=D("3000"),
        actual=D("800"),
        attainment=D(800) / D(3000),
        expected_to_date=D("1000"),
        pace=D("0.8"),
        status=OFF_TRACK,
        gap=D("2200"),
        remaining_days=20,
        required_per_day=D("110"),
        projected=D("1300"),
        projected_commit=D("1800"),
    )


def test_compute_achievement_of_a_count_metric_has_no_projection() -> None:
    result = compute_achievement(
        period=PeriodTarget(D("20"), 30, 30), actual=D("25"), threshold=D("0.2")
    )
    assert result.attainment == D("1.25")
    assert result.status == ON_TRACK
    assert result.gap == D("0")
    assert result.required_per_day is None
    assert result.projected is None
    assert result.projected_commit is None


def test_compute_achievement_of_a_target_not_set_has_no_attainment_pace_or_gap() -> None:
    result = compute_achievement(period=PeriodTarget(None, 30, 10), actual=D("5"), open_deals=[])
    assert result.attainment is None
    assert result.expected_to_date is None
    assert result.pace is None
    assert result.status is None
    assert result.gap is None
    assert result.required_per_day is None
    assert result.projected == D("5")


def test_compute_achievement_of_a_target_not_applicable_has_no_attainment_nor_status() -> None:
    result = compute_achievement(period=PeriodTarget(D("0"), 30, 10), actual=D("5"))
    assert result.attainment is None
    assert result.pace is None
    assert result.status is None
    assert result.gap == D("0")


def test_compute_achievement_paces_a_decomposed_year_by_its_months() -> None:
    month_targets = [D("50"), D("150")] + [D("100")] * 10
    result = compute_achievement(period=year_as_of(month_targets, 31 + 14), actual=D("115"))
    assert result.expected_to_date == D("125")
    assert result.pace == D("0.9200")
    assert result.status == AT_RISK
    assert result.remaining_days == 365 - 45


def test_a_period_whose_sub_periods_do_not_add_up_is_refused() -> None:
    with pytest.raises(ValueError, match="add up"):
        PeriodTarget(D(1), 10, 5, (PeriodTarget(D(1), 4, 4),))


# --- the whole-plan shortcut: pacing from the months, without building trees ----------


@settings(max_examples=500)
@given(
    fiscal_year=st.integers(min_value=2023, max_value=2028),
    start_month=st.integers(min_value=1, max_value=12),
    offset=st.integers(min_value=-5, max_value=372),
    months=st.lists(st.decimals(min_value=0, max_value=10**12, places=2), min_size=12, max_size=12),
    code=st.integers(min_value=0, max_value=16),
)
def test_pacing_from_months_equals_the_recursive_expected_to_date(
    fiscal_year: int, start_month: int, offset: int, months: list[Decimal], code: int
) -> None:
    """``targets.achievement.Pacing`` (a whole plan's nodes) gives exactly what the tree
    of SPEC §4 gives: year → quarters → months, each the sum of its months."""
    from datetime import timedelta

    from targets import calendar
    from targets.achievement import Pacing
    from targets.models import PERIOD_MONTHS

    year = calendar.fiscal_year(fiscal_year, start_month)
    as_of = year.start + timedelta(days=offset)
    fiscal_months = calendar.months(fiscal_year, start_month)

    def month_node(index: int) -> PeriodTarget:
        period = fiscal_months[index - 1]
        return PeriodTarget(months[index - 1], period.days, calendar.elapsed_days(period, as_of))

    def parent(indices: list[int]) -> PeriodTarget:
        children = tuple(month_node(i) for i in indices)
        return PeriodTarget(
            sum((c.target or D(0) for c in children), D(0)),
            sum(c.total_days for c in children),
            sum(c.elapsed_days for c in children),
            children,
        )

    first, last = PERIOD_MONTHS[code]
    if code == 0:
        quarters = tuple(parent([3 * q + 1, 3 * q + 2, 3 * q + 3]) for q in range(4))
        tree = PeriodTarget(
            sum(months, D(0)), year.days, calendar.elapsed_days(year, as_of), quarters
        )
    elif first == last:
        tree = month_node(first)
    else:
        tree = parent(list(range(first, last + 1)))
    pacing = Pacing(fiscal_year, start_month, as_of)
    assert pacing.expected(code, months) == expected_to_date(tree)
    assert pacing.period_days(code) == (tree.total_days, tree.elapsed_days)
    assert pacing.expected(code, None) is None


def test_pacing_adds_in_the_order_of_the_recursion_to_the_last_digit() -> None:
    """Found by Hypothesis: summing the year's months flat and then the current month's
    prorated part rounds the 28th digit differently from quarter by quarter."""
    from datetime import timedelta

    from targets import calendar
    from targets.achievement import Pacing

    months = [D("0.00"), D("0.00"), D("0.01"), D("0.00"), D("98.39"), D("2.93")] + [D(0)] * 6
    as_of = calendar.fiscal_year(2023, 2).start + timedelta(days=166)
    pacing = Pacing(2023, 2, as_of)
    assert pacing.expected(0, months) == D("100.0067741935483870967741936")


def test_the_achievement_shown_rounds_money_half_up_in_its_currency() -> None:
    from targets.achievement import achievement_json

    month = PeriodTarget(target=D("294410.55"), total_days=30, elapsed_days=1)
    result = compute_achievement(period=month, actual=D("0"), open_deals=[], currency="CNY")
    shown = achievement_json(result)
    # 294,410.55 × 1/30 = 9,813.685 → 9,813.69; gap 294,410.55 over 29 days = 10,152.0879…
    assert shown["expected_to_date"] == "9813.69"
    assert shown["required_per_day"] == "10152.09"
    assert (shown["actual"], shown["gap"], shown["pace"]) == ("0.00", "294410.55", "0.0000")
