"""Money rounding (SPEC preamble): half-up, once, to the currency's minor unit.

The minor unit comes from the CLDR currency data that Babel maintains (CNY and USD 2
decimals, JPY 0, KWD 3), not from a list kept here. Rates and paces are shown to 4
places with :func:`round_rate`; comparisons with thresholds use exact values.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision

RATE_QUANTUM = Decimal("0.0001")


@lru_cache(maxsize=64)
def minor_unit(currency: str) -> Decimal:
    """The currency's smallest amount: ``Decimal("0.01")`` for CNY, ``Decimal("1")`` for JPY."""
    return Decimal(1).scaleb(-get_currency_precision(currency.upper()))


def round_money(amount: Decimal | int, currency: str) -> Decimal:
    """``amount`` rounded half-up to the currency's minor unit (9,813.685 → 9,813.69)."""
    if isinstance(amount, float):
        raise TypeError("money must be a Decimal or an int, not a float")
    return Decimal(amount).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def round_rate(rate: Decimal) -> Decimal:
    """A rate or pace for display: half-up to 4 places (0.99996 → 1.0000)."""
    return rate.quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)


def format_money(amount: Decimal | str | int | None, currency: str) -> str:
    """An amount as shown (SPEC preamble): rounded once, half-up, to the currency's minor
    unit, grouped by thousands, with the currency: ``4,890,900.00 CNY``; ``–`` for none.
    The admin's columns, the digests and the pages all show money through this."""
    if amount is None or amount == "":
        return "–"
    return f"{round_money(Decimal(amount), currency):,} {currency}"


def format_rate(rate: Decimal | None, places: int = 1) -> str:
    """A rate (a fraction) as a percentage, half-up: ``Decimal("0.5632")`` → ``56.3%``."""
    if rate is None:
        return "–"
    percent = (Decimal(rate) * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{percent:,}%"
