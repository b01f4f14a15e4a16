"""SPEC §10 review arithmetic on plain values: hand-computed cases and properties (no database)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnel.rates import LEVEL_ORDER
from funnel.review import (
    NO_BASELINE,
    ZERO_BASELINE_DEAL_SIZE,
    Baseline,
    ChildGap,
    Effects,
    FactorAnalysis,
    Gap,
    Level,
    factor_analysis,
    gap_of,
    pick_baseline,
    unit_gap,
)

D = Decimal
CENT = D("0.01")


def baseline(level: Level, closed: int, won: int, won_amount: str) -> Baseline:
    return Baseline(level=level, closed_deals=closed, won_deals=won, won_amount=D(won_amount))


# w₀ = 5 / 20 = 0.25 and s₀ = 250,000 / 5 = 50,000: the SPEC's worked baseline.
MEMBER = baseline("member", 20, 5, "250000")


def effects_of(analysis: FactorAnalysis) -> Effects:
    assert analysis.effects is not None
    return analysis.effects


# -- the worked case ------------------------------------------------------------------------


def test_the_worked_case_of_the_spec() -> None:
    analysis = factor_analysis(D("1000000"), D("945000"), 70, 21, [MEMBER], quantum=CENT)

    assert analysis.reason is None
    assert analysis.source == "member"
    assert analysis.baseline == MEMBER
    assert analysis.baseline_win_rate == D("0.25")
    assert analysis.baseline_deal_size == D("50000")
    assert analysis.closed_deals_needed == D("80")
    assert analysis.closed_deals == 70
    assert analysis.won_deals == 21
    assert analysis.win_rate == D("0.3")
    assert analysis.deal_size == D("45000")
    effects = effects_of(analysis)
    assert str(effects.volume) == "-125000.00"
    assert str(effects.win_rate) == "175000.00"
    assert str(effects.deal_size) == "-105000.00"
    assert effects.total == D("-55000.00")
    assert effects.volume + effects.win_rate + effects.deal_size == D("945000") - D("1000000")


def test_an_actual_above_the_target_has_positive_effects() -> None:
    # N 100, 30 won (w 0.30), A 1,650,000 (s 55,000): volume (100 − 80) × 12,500 = 250,000;
    # win rate 100 × 0.05 × 50,000 = 250,000; deal size 30 × 5,000 = 150,000.
    effects = effects_of(
        factor_analysis(D("1000000"), D("1650000"), 100, 30, [MEMBER], quantum=CENT)
    )
    assert effects == Effects(
        volume=D("250000"), win_rate=D("250000"), deal_size=D("150000"), total=D("650000")
    )


def test_effects_of_both_signs() -> None:
    # N 120, 24 won (w 0.20), A 1,440,000 (s 60,000): volume 40 × 12,500 = 500,000;
    # win rate 120 × (−0.05) × 50,000 = −300,000; deal size 24 × 10,000 = 240,000.
    effects = effects_of(
        factor_analysis(D("1000000"), D("1440000"), 120, 24, [MEMBER], quantum=CENT)
    )
    assert effects.volume == D("500000")
    assert effects.win_rate == D("-300000")
    assert effects.deal_size == D("240000")
    assert effects.total == D("440000")


# -- nothing won, nothing closed ------------------------------------------------------------


def test_nothing_won_takes_the_baseline_deal_size_and_has_no_deal_size_effect() -> None:
    # N 40, none won, A 0: s = s₀ = 50,000; volume (40 − 80) × 0.25 × 50,000 = −500,000;
    # win rate 40 × (0 − 0.25) × 50,000 = −500,000; deal size 0 × (s₀ − s₀) = 0.
    analysis = factor_analysis(D("1000000"), D("0"), 40, 0, [MEMBER], quantum=CENT)
    assert analysis.win_rate == 0
    assert analysis.deal_size == D("50000")
    effects = effects_of(analysis)
    assert effects.volume == D("-500000")
    assert effects.win_rate == D("-500000")
    assert effects.deal_size == 0
    assert effects.total == D("-1000000")


def test_no_closed_deal_puts_the_whole_gap_on_volume() -> None:
    analysis = factor_analysis(D("1000000.00"), D("0"), 0, 0, [MEMBER], quantum=CENT)
    assert analysis.win_rate is None  # w = won ÷ N has no value for N = 0
    assert analysis.deal_size == D("50000")  # s = s₀
    assert analysis.closed_deals_needed == D("80")
    effects = effects_of(analysis)
    assert effects == Effects(
        volume=D("-1000000.00"), win_rate=D("0"), deal_size=D("0"), total=D("-1000000.00")
    )
    assert effects.volume + effects.win_rate + effects.deal_size == effects.total


def test_a_zero_target_with_deals_is_all_above_target() -> None:
    # T 0 → N₀ 0: volume 2 × 12,500 = 25,000; win rate 2 × 0.25 × 50,000 = 25,000;
    # deal size 1 × (40,000 − 50,000) = −10,000; sum 40,000 = A.
    analysis = factor_analysis(D("0"), D("40000"), 2, 1, [MEMBER], quantum=CENT)
    assert analysis.closed_deals_needed == 0
    assert effects_of(analysis) == Effects(
        volume=D("25000"), win_rate=D("25000"), deal_size=D("-10000"), total=D("40000")
    )


# -- baseline fallback ----------------------------------------------------------------------


def test_the_tenant_baseline_is_used_when_member_and_unit_do_not_qualify() -> None:
    levels = [
        baseline("member", 4, 2, "90000"),  # fewer than 5 closed deals
        baseline("unit", 12, 0, "0"),  # enough closed deals but no win
        baseline("tenant", 200, 50, "2500000"),  # w₀ 0.25, s₀ 50,000
    ]
    analysis = factor_analysis(D("1000000"), D("945000"), 70, 21, levels, quantum=CENT)
    assert analysis.source == "tenant"
    assert analysis.baseline == levels[2]
    assert analysis.baseline_win_rate == D("0.25")
    assert analysis.baseline_deal_size == D("50000")
    effects = effects_of(analysis)
    assert (effects.volume, effects.win_rate, effects.deal_size) == (
        D("-125000"),
        D("175000"),
        D("-105000"),
    )


def test_a_level_with_enough_closed_deals_but_no_win_is_skipped() -> None:
    member = baseline("member", 8, 0, "0")
    unit = baseline("unit", 6, 1, "1000")
    assert pick_baseline([member, unit]) == unit


def test_five_closed_deals_and_one_win_are_enough() -> None:
    member = baseline("member", 5, 1, "1000")
    assert pick_baseline([member, baseline("tenant", 100, 10, "1")]) == member
    assert pick_baseline([baseline("member", 4, 4, "1000")]) is None
    assert pick_baseline([baseline("member", 4, 4, "1000")], min_closed_deals=4) is not None


def test_the_tenant_is_held_to_the_same_rule() -> None:
    assert pick_baseline([baseline("tenant", 4, 2, "1000")]) is None
    assert pick_baseline([baseline("tenant", 50, 0, "0")]) is None


def test_a_unit_review_starts_at_the_unit() -> None:
    unit = baseline("unit", 30, 6, "60000")
    assert pick_baseline([unit, baseline("tenant", 100, 10, "1")]) == unit


def test_no_baseline_anywhere_says_so() -> None:
    levels = [
        baseline("member", 3, 1, "500"),
        baseline("unit", 4, 1, "500"),
        baseline("tenant", 9, 0, "0"),
    ]
    analysis = factor_analysis(D("1000000"), D("945000"), 70, 21, levels, quantum=CENT)
    assert analysis.reason == NO_BASELINE == "no_baseline"
    assert analysis.effects is None
    assert analysis.source is None
    assert analysis.baseline is None
    assert analysis.baseline_win_rate is None
    assert analysis.baseline_deal_size is None
    assert analysis.closed_deals_needed is None
    # The period's own figures are still there.
    assert analysis.win_rate == D("0.3")
    assert analysis.deal_size == D("45000")


def test_no_baseline_and_nothing_won_has_no_deal_size() -> None:
    analysis = factor_analysis(D("1000"), D("0"), 3, 0, [], quantum=CENT)
    assert analysis.reason == NO_BASELINE
    assert analysis.win_rate == 0
    assert analysis.deal_size is None


def test_a_baseline_of_zero_amounts_has_no_closed_deals_needed() -> None:
    analysis = factor_analysis(
        D("1000"), D("500"), 10, 2, [baseline("member", 5, 1, "0")], quantum=CENT
    )
    assert analysis.reason == ZERO_BASELINE_DEAL_SIZE
    assert analysis.source == "member"
    assert analysis.baseline_win_rate == D("0.2")
    assert analysis.baseline_deal_size == 0
    assert analysis.closed_deals_needed is None
    assert analysis.effects is None


# -- rounding -------------------------------------------------------------------------------


def test_volume_and_win_rate_are_rounded_and_deal_size_takes_the_rest() -> None:
    # w₀ 3/6 = 0.5, s₀ 100/3, so w₀ × s₀ = 50/3 and N₀ = 1,000 ÷ 50/3 = 60. N 10, 4 won,
    # A 150 (w 0.4, s 37.5). Exact: volume (10 − 60) × 50/3 = −833.333…, win rate
    # 10 × (−0.1) × 100/3 = −33.333…, deal size 4 × (37.5 − 100/3) = 16.666…
    # Rounded: −833.33 and −33.33; the rest 16.66 (not 16.67) keeps the sum at −850.00.
    levels = [baseline("member", 6, 3, "100.00")]
    analysis = factor_analysis(D("1000.00"), D("150.00"), 10, 4, levels, quantum=CENT)
    assert analysis.closed_deals_needed == D("60")
    assert analysis.baseline_win_rate == D("0.5")
    s0 = analysis.baseline_deal_size
    assert s0 is not None
    assert s0.quantize(D("0.0001")) == D("33.3333")
    assert abs(Fraction(s0) - Fraction(100, 3)) < Fraction(1, 10**55)  # exact, not rounded
    effects = effects_of(analysis)
    assert str(effects.volume) == "-833.33"
    assert str(effects.win_rate) == "-33.33"
    assert str(effects.deal_size) == "16.66"
    assert effects.total == D("-850.00")
    assert effects.volume + effects.win_rate + effects.deal_size == effects.total


def test_halves_are_rounded_up_away_from_zero() -> None:
    # w₀ 2/8 = 0.25, s₀ 100.12 / 2 = 50.06, w₀ × s₀ = 12.515. T 1,000, N 1, 1 won, A 60.06:
    # volume 12.515 − 1,000 = −987.485 → −987.49 (half-even would give −987.48);
    # win rate 50.06 − 12.515 = 37.545 → 37.55 (half-even: 37.54); deal size 60.06 − 50.06.
    levels = [baseline("member", 8, 2, "100.12")]
    effects = effects_of(factor_analysis(D("1000"), D("60.06"), 1, 1, levels, quantum=CENT))
    assert effects.volume == D("-987.49")
    assert effects.win_rate == D("37.55")
    assert effects.deal_size == D("10.00")
    assert effects.total == D("-939.94")


def test_nothing_won_with_two_halves_leaves_one_cent_of_deal_size() -> None:
    # Same baseline, N 1, none won: volume −987.485 → −987.49 and win rate −12.515 → −12.52
    # both round away from zero, so the rest that keeps the sum exact is one cent.
    levels = [baseline("member", 8, 2, "100.12")]
    effects = effects_of(factor_analysis(D("1000"), D("0"), 1, 0, levels, quantum=CENT))
    assert (effects.volume, effects.win_rate, effects.deal_size) == (
        D("-987.49"),
        D("-12.52"),
        D("0.01"),
    )
    assert effects.total == D("-1000")


def test_a_whole_unit_quantum() -> None:
    # Same as the rounding case at a quantum of 1 (a currency without minor unit).
    levels = [baseline("member", 6, 3, "100")]
    effects = effects_of(factor_analysis(D("1000"), D("150"), 10, 4, levels, quantum=1))
    assert (effects.volume, effects.win_rate, effects.deal_size) == (D("-833"), D("-33"), D("16"))


# -- invalid input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"target": 1000.0},
        {"actual": 945.0},
        {"quantum": 0.01},
        {"closed_deals": 70.0},
        {"won_deals": 21.0},
        {"won_deals": True},
        {"target": "1000"},
    ],
)
def test_floats_and_other_types_are_rejected(changes: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "target": D("1000000"),
        "actual": D("945000"),
        "closed_deals": 70,
        "won_deals": 21,
        "baselines": [MEMBER],
        "quantum": CENT,
        **changes,
    }
    with pytest.raises(TypeError):
        factor_analysis(**arguments)


def test_a_float_baseline_amount_is_rejected() -> None:
    with pytest.raises(TypeError):
        Baseline(level="member", closed_deals=10, won_deals=2, won_amount=1000.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Baseline(level="member", closed_deals=10.0, won_deals=2, won_amount=D(1))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"won_deals": 71},  # more wins than closed deals
        {"closed_deals": -1},
        {"won_deals": -1},
        {"target": D("-1")},
        {"actual": D("-1")},
        {"won_deals": 0},  # an actual without a win
        {"quantum": D("0")},
        {"target": D("NaN")},
        {"min_closed_deals": -1},
    ],
)
def test_invalid_inputs_are_rejected(changes: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {
        "target": D("1000000"),
        "actual": D("945000"),
        "closed_deals": 70,
        "won_deals": 21,
        "baselines": [MEMBER],
        "quantum": CENT,
        **changes,
    }
    with pytest.raises(ValueError):
        factor_analysis(**arguments)


@pytest.mark.parametrize(
    ("closed", "won", "amount"),
    [(5, 6, "100"), (-1, 0, "0"), (5, -1, "0"), (5, 1, "-1"), (5, 0, "100")],
)
def test_invalid_baselines_are_rejected(closed: int, won: int, amount: str) -> None:
    with pytest.raises(ValueError):
        baseline("member", closed, won, amount)


def test_baseline_levels_must_be_distinct_and_in_order() -> None:
    with pytest.raises(ValueError):
        pick_baseline([baseline("unit", 10, 2, "1"), baseline("member", 10, 2, "1")])
    with pytest.raises(ValueError):
        pick_baseline([MEMBER, MEMBER])
    with pytest.raises(ValueError):
        Baseline(level="team", closed_deals=1, won_deals=0, won_amount=D(0))  # type: ignore[arg-type]


# -- the property ---------------------------------------------------------------------------


@st.composite
def analyses(draw: st.DrawFn) -> tuple[Decimal, Decimal, int, int, Baseline, Decimal]:
    quantum = draw(st.sampled_from([D("0.01"), D("1"), D("0.001")]))
    target = draw(st.integers(1, 10**10)) * quantum
    closed0 = draw(st.integers(5, 10**4))
    won0 = draw(st.integers(1, closed0))
    amount0 = draw(st.integers(1, 10**10)) * quantum
    level: Level = draw(st.sampled_from(LEVEL_ORDER))
    closed = draw(st.integers(0, 10**4))
    won = draw(st.integers(0, closed))
    # A is the sum of the wins' amounts: 0 when nothing was won.
    actual = draw(st.integers(0, 10**10)) * quantum if won else D(0)
    history = Baseline(level=level, closed_deals=closed0, won_deals=won0, won_amount=amount0)
    return target, actual, closed, won, history, quantum


def _multiple_of(value: Decimal, quantum: Decimal) -> bool:
    return (Fraction(value) / Fraction(quantum)).denominator == 1


@given(analyses())
def test_the_effects_add_up_to_the_gap_and_two_are_whole_quanta(
    case: tuple[Decimal, Decimal, int, int, Baseline, Decimal],
) -> None:
    target, actual, closed, won, history, quantum = case
    analysis = factor_analysis(target, actual, closed, won, [history], quantum=quantum)
    assert analysis.source == history.level
    effects = effects_of(analysis)
    assert effects.total == actual - target
    assert effects.volume + effects.win_rate + effects.deal_size == actual - target
    assert _multiple_of(effects.volume, quantum)
    assert _multiple_of(effects.win_rate, quantum)
    assert _multiple_of(effects.deal_size, quantum)  # A and T are whole quanta here

    # Each rounded effect lies within half a quantum of its exact value.
    w0 = Fraction(history.won_deals, history.closed_deals)
    s0 = Fraction(history.won_amount) / history.won_deals
    n0 = Fraction(target) / (w0 * s0)
    half = Fraction(quantum) / 2
    if closed == 0:
        assert effects.volume == -target
        assert effects.win_rate == effects.deal_size == 0
        return
    w = Fraction(won, closed)
    s = Fraction(actual) / won if won else s0
    assert abs(Fraction(effects.volume) - (closed - n0) * w0 * s0) <= half
    assert abs(Fraction(effects.win_rate) - closed * (w - w0) * s0) <= half
    assert abs(Fraction(effects.deal_size) - closed * w * (s - s0)) <= 2 * half


# -- gap ------------------------------------------------------------------------------------


def test_gap_figures() -> None:
    assert gap_of(D("1000000"), D("945000")) == Gap(
        target=D("1000000"), actual=D("945000"), attainment=D("0.945"), gap=D("-55000")
    )
    assert gap_of(D("100"), D("120")).gap == D("20")


def test_attainment_is_not_rounded() -> None:
    attainment = gap_of(D("3"), D("1")).attainment
    assert attainment is not None
    assert attainment.quantize(D("0.0001")) == D("0.3333")
    assert abs(Fraction(attainment) - Fraction(1, 3)) < Fraction(1, 10**55)


def test_gap_without_a_target_or_with_a_zero_target() -> None:
    assert gap_of(None, D("50")) == Gap(target=None, actual=D("50"), attainment=None, gap=None)
    assert gap_of(D("0"), D("50")) == Gap(
        target=D("0"), actual=D("50"), attainment=None, gap=D("50")
    )


def test_gap_input_checks() -> None:
    with pytest.raises(TypeError):
        gap_of(100.0, D("1"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        gap_of(D("100"), 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gap_of(D("-1"), D("1"))
    assert gap_of(D("100"), D("-10")).gap == D("-110")  # reversed collections


def test_a_unit_beside_the_sum_of_its_children() -> None:
    result = unit_gap(
        D("1000"),
        D("900"),
        [("north", D("600"), D("500")), ("south", D("500"), D("400")), ("ann", None, D("0"))],
    )
    assert result.own == gap_of(D("1000"), D("900"))
    assert result.children == (
        ChildGap(key="north", gap=gap_of(D("600"), D("500"))),
        ChildGap(key="south", gap=gap_of(D("500"), D("400"))),
        ChildGap(key="ann", gap=gap_of(None, D("0"))),
    )
    assert result.children_total == gap_of(D("1100"), D("900"))
    assert result.target_difference == D("100")  # the children carry 10 % headroom


def test_a_unit_whose_children_have_no_target() -> None:
    result = unit_gap(D("1000"), D("10"), [(1, None, D("10"))])
    assert result.children_total == gap_of(None, D("10"))
    assert result.target_difference is None
    assert unit_gap(None, D("0"), []).children_total == gap_of(None, D("0"))
    assert unit_gap(None, D("0"), [(1, D("5"), D("0"))]).target_difference is None


def test_a_child_listed_twice_is_rejected() -> None:
    with pytest.raises(ValueError):
        unit_gap(D("1"), D("0"), [("a", D("1"), D("0")), ("a", D("1"), D("0"))])
