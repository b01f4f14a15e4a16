from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tenancy.dates import tenant_today
from tenancy.money import minor_unit, round_money, round_rate


@dataclass
class _Tenant:
    time_zone: str


def test_today_is_the_tenants_date_not_utcs() -> None:
    # 03:30 in Shanghai is 19:30 UTC the day before.
    at = datetime(2026, 11, 30, 19, 30, tzinfo=UTC)
    assert tenant_today(_Tenant("Asia/Shanghai"), at) == date(2026, 12, 1)
    assert tenant_today(_Tenant("America/New_York"), at) == date(2026, 11, 30)


def test_money_rounds_half_up_to_the_currencys_minor_unit() -> None:
    # 294,410.55 × 1/30 = 9,813.685: half-even would give 9,813.68.
    assert round_money(Decimal("294410.55") / 30, "CNY") == Decimal("9813.69")
    assert round_money(Decimal("-10.005"), "CNY") == Decimal("-10.01")
    assert round_money(Decimal("1234.5"), "JPY") == Decimal("1235")
    assert round_money(Decimal("1.0005"), "KWD") == Decimal("1.001")
    assert minor_unit("usd") == Decimal("0.01")


def test_money_refuses_floats() -> None:
    with pytest.raises(TypeError):
        round_money(1.5, "CNY")  # type: ignore[arg-type]


def test_rates_show_four_places_half_up() -> None:
    assert round_rate(Decimal(260000) / Decimal(260010)) == Decimal("1.0000")
    assert round_rate(Decimal("0.12345")) == Decimal("0.1235")
