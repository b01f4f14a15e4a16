"""Fiscal calendar arithmetic (SPEC section 4, "Fiscal calendar"); no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from targets.calendar import (
    Period,
    active_days,
    active_share,
    elapsed_days,
    fiscal_year,
    fiscal_year_of,
    local_date,
    months,
    months_of,
    period_containing,
    period_from_key,
    quarters,
    remaining_days,
    sub_periods,
    validate_start_month,
    week_target,
)

start_months = st.integers(min_value=1, max_value=12)
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2090, 12, 31))


# --- fiscal years, quarters, months -------------------------------------------------------


def test_fiscal_year_starting_in_april_runs_to_the_end_of_march() -> None:
    year = fiscal_year(2026, 4)
    assert year == Period("year", date(2026, 4, 1), date(2027, 3, 31))
    assert year.days == 365


def test_fourth_quarter_of_an_april_fiscal_year_is_january_to_march() -> None:
    q1, q2, q3, q4 = quarters(2026, 4)
    assert q1 == Period("quarter", date(2026, 4, 1), date(2026, 6, 30))
    assert q2 == Period("quarter", date(2026, 7, 1), date(2026, 9, 30))
    assert q3 == Period("quarter", date(2026, 10, 1), date(2026, 12, 31))
    assert q4 == Period("quarter", date(2027, 1, 1), date(2027, 3, 31))


def test_months_are_listed_in_fiscal_order() -> None:
    fiscal_months = months(2026, 4)
    assert len(fiscal_months) == 12
    assert fiscal_months[0] == Period("month", date(2026, 4, 1), date(2026, 4, 30))
    assert fiscal_months[9] == Period("month", date(2027, 1, 1), date(2027, 1, 31))
    assert fiscal_months[11] == Period("month", date(2027, 3, 1), date(2027, 3, 31))


def test_calendar_year_fiscal_year_is_january_to_december() -> None:
    assert fiscal_year(2028, 1) == Period("year", date(2028, 1, 1), date(2028, 12, 31))
    assert fiscal_year(2028, 1).days == 366
    assert months(2028, 1)[1].days == 29


def test_fiscal_year_is_named_by_the_calendar_year_it_starts_in() -> None:
    assert fiscal_year_of(date(2027, 3, 31), 4) == 2026
    assert fiscal_year_of(date(2027, 4, 1), 4) == 2027
    assert fiscal_year_of(date(2026, 12, 31), 1) == 2026
    assert fiscal_year_of(date(2026, 1, 1), 12) == 2025
    assert fiscal_year_of(date(2026, 12, 1), 12) == 2026


@pytest.mark.parametrize("bad", [0, 13, -1, True, 4.0, "4"])
def test_fiscal_start_month_outside_one_to_twelve_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="fiscal_year_start_month"):
        validate_start_month(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fiscal_year_start_month"):
        fiscal_year(2026, bad)  # type: ignore[arg-type]


def test_period_that_ends_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Period("month", date(2026, 5, 1), date(2026, 4, 30))


def test_sub_periods_go_year_to_quarters_to_months_to_nothing() -> None:
    year = fiscal_year(2026, 4)
    assert sub_periods(year, 4) == quarters(2026, 4)
    q4 = quarters(2026, 4)[3]
    assert sub_periods(q4, 4) == months(2026, 4)[9:12]
    assert sub_periods(months(2026, 4)[0], 4) == []
    assert sub_periods(period_containing(date(2026, 4, 8), "week", 4), 4) == []


def test_months_of_a_year_are_its_twelve_fiscal_months() -> None:
    assert months_of(fiscal_year(2026, 7)) == months(2026, 7)
    month = months(2026, 7)[2]
    assert months_of(month) == [month]
    with pytest.raises(ValueError, match="whole months"):
        months_of(Period("quarter", date(2026, 1, 2), date(2026, 3, 31)))


def test_period_containing_finds_year_quarter_month_and_iso_week() -> None:
    day = date(2027, 2, 14)  # a Sunday
    assert period_containing(day, "year", 4) == fiscal_year(2026, 4)
    assert period_containing(day, "quarter", 4) == quarters(2026, 4)[3]
    assert period_containing(day, "month", 4) == months(2026, 4)[10]
    assert period_containing(day, "week", 4) == Period("week", date(2027, 2, 8), date(2027, 2, 14))


def test_period_keys_name_fiscal_positions_and_parse_back() -> None:
    assert fiscal_year(2026, 4).key(4) == "FY2026"
    assert quarters(2026, 4)[3].key(4) == "FY2026-Q4"
    assert months(2026, 4)[0].key(4) == "FY2026-M01"
    assert months(2026, 4)[11].key(4) == "FY2026-M12"
    week = period_containing(date(2026, 4, 8), "week", 4)
    assert week.key(4) == "2026-W15"
    for period in [fiscal_year(2026, 4), *quarters(2026, 4), *months(2026, 4), week]:
        assert period_from_key(period.key(4), 4) == period


def test_a_quarter_that_is_not_fiscal_has_no_key() -> None:
    calendar_q1 = Period("quarter", date(2026, 1, 1), date(2026, 3, 31))
    assert calendar_q1.key(1) == "FY2026-Q1"
    with pytest.raises(ValueError, match="not a fiscal quarter"):
        calendar_q1.key(2)


@given(day=days, start_month=start_months)
def test_every_day_lies_in_exactly_one_month_of_its_fiscal_year(
    day: date, start_month: int
) -> None:
    fy = fiscal_year_of(day, start_month)
    assert fiscal_year(fy, start_month).contains(day)
    containing = [month for month in months(fy, start_month) if month.contains(day)]
    assert containing == [period_containing(day, "month", start_month)]
    quarter = period_containing(day, "quarter", start_month)
    assert quarter.contains(day)
    assert sum(month.days for month in months_of(quarter)) == quarter.days


@given(fy=st.integers(min_value=1990, max_value=2090), start_month=start_months)
def test_quarters_and_months_tile_the_fiscal_year(fy: int, start_month: int) -> None:
    year = fiscal_year(fy, start_month)
    for parts in (quarters(fy, start_month), months(fy, start_month)):
        assert parts[0].start == year.start
        assert parts[-1].end == year.end
        for before, after in zip(parts, parts[1:], strict=False):
            assert after.start == before.end + timedelta(days=1)
        assert sum(part.days for part in parts) == year.days


# --- elapsed and remaining days -------------------------------------------------------------


def test_elapsed_days_count_the_as_of_day_itself() -> None:
    april = months(2026, 4)[0]
    assert elapsed_days(april, date(2026, 4, 1)) == 1
    assert elapsed_days(april, date(2026, 4, 15)) == 15
    assert elapsed_days(april, date(2026, 4, 30)) == 30


def test_elapsed_days_are_zero_before_the_period_and_capped_after_it() -> None:
    april = months(2026, 4)[0]
    assert elapsed_days(april, date(2026, 3, 31)) == 0
    assert elapsed_days(april, date(2026, 5, 1)) == 30
    assert elapsed_days(april, date(2030, 1, 1)) == 30


def test_remaining_days_are_the_days_after_as_of_up_to_the_period_end() -> None:
    april = months(2026, 4)[0]
    assert remaining_days(april, date(2026, 4, 1)) == 29
    assert remaining_days(april, date(2026, 4, 29)) == 1
    assert remaining_days(april, date(2026, 4, 30)) == 0
    assert remaining_days(april, date(2026, 5, 1)) == 0
    assert remaining_days(april, date(2026, 3, 31)) == 30


def test_day_counts_around_quarter_and_fiscal_year_boundaries() -> None:
    year = fiscal_year(2026, 4)
    q4 = quarters(2026, 4)[3]  # 2027-01-01 .. 2027-03-31: 31 + 28 + 31 = 90 days
    last_day_of_q3 = date(2026, 12, 31)
    assert elapsed_days(q4, last_day_of_q3) == 0
    assert remaining_days(q4, last_day_of_q3) == 90
    assert elapsed_days(year, last_day_of_q3) == 275
    assert remaining_days(year, last_day_of_q3) == 90
    last_day_of_fy = date(2027, 3, 31)
    assert elapsed_days(year, last_day_of_fy) == 365
    assert remaining_days(year, last_day_of_fy) == 0
    first_day_of_next_fy = date(2027, 4, 1)
    assert elapsed_days(fiscal_year(2027, 4), first_day_of_next_fy) == 1
    assert remaining_days(fiscal_year(2027, 4), first_day_of_next_fy) == 365


@given(day=days, start_month=start_months, kind=st.sampled_from(["year", "quarter", "month"]))
def test_elapsed_and_remaining_days_add_up_to_the_period_inside_it(
    day: date, start_month: int, kind: str
) -> None:
    period = period_containing(day, kind, start_month)  # type: ignore[arg-type]
    assert elapsed_days(period, day) + remaining_days(period, day) == period.days
    assert 1 <= elapsed_days(period, day) <= period.days


# --- weeks ----------------------------------------------------------------------------------


def test_week_inside_one_month_gets_seven_days_of_that_month() -> None:
    # 7 of April's 30 days: 3000 * 7 / 30 = 700.
    assert week_target(date(2026, 4, 6), {(2026, 4): Decimal("3000")}) == Decimal("700")


def test_week_across_two_months_prorates_each_month_by_its_own_days() -> None:
    # Mon 2026-03-30 .. Sun 2026-04-05: 2/31 of March's 3100 + 5/30 of April's 6000
    # = 200 + 1000 = 1200.
    targets = {(2026, 3): Decimal("3100"), (2026, 4): Decimal("6000")}
    assert week_target(date(2026, 3, 30), targets) == Decimal("1200")


def test_week_target_accepts_month_periods_as_keys_and_keeps_precision() -> None:
    march, april = months(2026, 1)[2], months(2026, 1)[3]
    value = week_target(date(2026, 3, 30), {march: Decimal("100"), april: Decimal("100")})
    # 100 * 2/31 + 100 * 5/30 = 6.4516... + 16.6666... = 23.1182795698924731182795698...
    assert value.quantize(Decimal("0.000001")) == Decimal("23.118280")
    assert abs(value - (Decimal(200) / 31 + Decimal(500) / 30)) < Decimal("1e-24")


def test_week_target_needs_every_month_the_week_touches() -> None:
    with pytest.raises(KeyError, match="2026-04"):
        week_target(date(2026, 3, 30), {(2026, 3): Decimal("3100")})


@given(
    week_start=st.dates(min_value=date(2000, 1, 1), max_value=date(2050, 12, 24)),
    values=st.lists(st.integers(min_value=0, max_value=10**12), min_size=2, max_size=2),
)
def test_week_target_is_the_sum_of_its_days_at_month_target_over_month_length(
    week_start: date, values: list[int]
) -> None:
    week_end = week_start + timedelta(days=6)
    first = (week_start.year, week_start.month)
    last = (week_end.year, week_end.month)
    targets = {first: Decimal(values[0]) / 100, last: Decimal(values[1]) / 100}
    expected = Fraction(0)
    for offset in range(7):
        day = week_start + timedelta(days=offset)
        month = period_containing(day, "month", 1)
        expected += Fraction(targets[(day.year, day.month)]) / month.days
    value = week_target(week_start, targets)
    assert abs(Fraction(value) - expected) <= Fraction(1, 10**14)
    if first == last:
        assert value == targets[first] * 7 / period_containing(week_start, "month", 1).days


# --- active days ----------------------------------------------------------------------------


def test_active_share_prorates_a_member_joining_mid_month() -> None:
    april = months(2026, 4)[0]
    assert active_days(april, date(2026, 4, 16), None) == 15
    assert active_share(april, date(2026, 4, 16), None) == Decimal("0.5")


def test_active_share_is_one_for_members_active_all_period_and_zero_outside() -> None:
    april = months(2026, 4)[0]
    assert active_share(april, None, None) == 1
    assert active_share(april, date(2020, 1, 1), date(2030, 1, 1)) == 1
    assert active_share(april, date(2026, 5, 1), None) == 0
    assert active_share(april, None, date(2026, 3, 31)) == 0


def test_active_share_counts_first_and_last_day_inclusive() -> None:
    april = months(2026, 4)[0]
    # Active 10th to 19th: 10 of 30 days.
    share = active_share(april, date(2026, 4, 10), date(2026, 4, 19))
    assert share == Decimal(1) / Decimal(3)
    assert active_days(april, date(2026, 4, 10), date(2026, 4, 19)) == 10


def test_active_range_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        active_share(months(2026, 4)[0], date(2026, 4, 10), date(2026, 4, 9))


# --- time zones -----------------------------------------------------------------------------


def test_local_date_in_shanghai_at_1630_utc_is_the_next_day() -> None:
    instant = datetime(2026, 3, 31, 16, 30, tzinfo=UTC)
    assert local_date(instant, "Asia/Shanghai") == date(2026, 4, 1)
    # ... which moves the instant into the next fiscal year for an April start.
    assert fiscal_year_of(local_date(instant, "Asia/Shanghai"), 4) == 2026
    assert fiscal_year_of(instant.date(), 4) == 2025


def test_local_date_before_midnight_locally_stays_on_the_same_day() -> None:
    instant = datetime(2026, 3, 31, 15, 59, tzinfo=UTC)
    assert local_date(instant, "Asia/Shanghai") == date(2026, 3, 31)
    assert local_date(datetime(2026, 1, 1, 3, 0, tzinfo=UTC), "America/New_York") == date(
        2025, 12, 31
    )


def test_local_date_rejects_naive_datetimes_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="aware"):
        local_date(datetime(2026, 3, 31, 16, 30), "Asia/Shanghai")
    with pytest.raises(ValueError, match="unknown time zone"):
        local_date(datetime(2026, 3, 31, 16, 30, tzinfo=UTC), "Mars/Olympus_Mons")
