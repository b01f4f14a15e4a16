"""When a failed delivery is tried again (SPEC section 11): exponential backoff with
jitter, for about three days. Pure: no database, no clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

# The first retry waits about BASE, each next one twice as long, at most CAP; a retry
# that would fall after WINDOW from the event is not made (the delivery has failed).
BASE = timedelta(seconds=10)
CAP = timedelta(hours=6)
WINDOW = timedelta(days=3)
JITTER = 0.2  # each delay is spread by ±20 %, so failed deliveries do not retry in step


def backoff(
    failures: int,
    *,
    base: timedelta = BASE,
    cap: timedelta = CAP,
    uniform: Callable[[float, float], float] = random.uniform,
) -> timedelta:
    """The wait after the ``failures``-th failed attempt (1 → about ``base``)."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    # 2**30 times the base is far past any cap; doubling further would overflow timedelta.
    raw = min(base * (2 ** min(failures - 1, 30)), cap)
    return raw * (1 + uniform(-JITTER, JITTER))


def next_attempt(
    *,
    created_at: datetime,
    failed_at: datetime,
    failures: int,
    base: timedelta = BASE,
    cap: timedelta = CAP,
    window: timedelta = WINDOW,
    uniform: Callable[[float, float], float] = random.uniform,
) -> datetime | None:
    """When to try again after ``failures`` failed attempts, or None past the window."""
    at = failed_at + backoff(failures, base=base, cap=cap, uniform=uniform)
    return at if at <= created_at + window else None
