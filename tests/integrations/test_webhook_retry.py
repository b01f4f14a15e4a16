"""The retry schedule (SPEC section 11): exponential backoff with jitter, about three
days. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from integrations.webhooks import retry

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _middle(low: float, high: float) -> float:
    return 0.0  # no jitter: the schedule's centre


def test_the_waits_double_from_ten_seconds_up_to_six_hours() -> None:
    waits = [retry.backoff(n, uniform=_middle) for n in range(1, 14)]
    assert waits[:4] == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    assert waits[11] == timedelta(seconds=10 * 2**11)  # 20,480 s, about 5.7 h
    assert waits[12] == timedelta(hours=6)


@given(failures=st.integers(min_value=1, max_value=500), spread=st.floats(-0.2, 0.2))
def test_a_wait_is_within_twenty_percent_of_its_centre_and_never_above_the_cap(
    failures: int, spread: float
) -> None:
    centre = retry.backoff(failures, uniform=_middle)
    wait = retry.backoff(failures, uniform=lambda low, high: spread)
    assert centre * 0.8 - timedelta(microseconds=1) <= wait <= centre * 1.2
    assert wait <= retry.CAP * 1.2 and wait > timedelta(0)


def test_retries_go_on_for_about_three_days_then_stop() -> None:
    at, failures = START, 0
    while True:
        failures += 1
        following = retry.next_attempt(
            created_at=START, failed_at=at, failures=failures, uniform=_middle
        )
        if following is None:
            break
        at = following
    assert timedelta(days=2, hours=18) <= at - START <= timedelta(days=3)
    assert 20 <= failures <= 25


@given(st.lists(st.floats(-0.2, 0.2), min_size=30, max_size=30))
def test_the_jittered_schedule_never_goes_past_the_window(spreads: list[float]) -> None:
    at = START
    for failures, spread in enumerate(spreads, start=1):

        def fixed(low: float, high: float, spread: float = spread) -> float:
            return spread

        following = retry.next_attempt(
            created_at=START, failed_at=at, failures=failures, uniform=fixed
        )
        if following is None:
            break
        assert following > at and following - START <= retry.WINDOW
        at = following
