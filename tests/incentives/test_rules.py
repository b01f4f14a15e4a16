"""SPEC section 6 incentive arithmetic on plain values: hand-computed cases and properties.

No database: every function under test is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incentives.rules import (
    Band,
    BandLike,
    BandPart,
    Number,
    Payout,
    RankRow,
    award_in_order,
    band_index,
    commission_payout,
    competition_ranks,
    multiplied_base,
    points_to_award,
    round_half_up,
    validate_bands,
)

D = Decimal
CENT = D("0.01")
# The worked case's bands (SPEC section 6): 0 %: 2 %, 80 %: 4 %, 100 %: 6 %, 120 %: 10 %.
BANDS: list[BandLike] = [
    (0, D("0.02")),
    (D("0.8"), D("0.04")),
    (1, D("0.06")),
    (D("1.2"), D("0.10")),
]


def pay(
    mode: str = "marginal",
    *,
    target: Number | None = 100_000,
    actual: Number,
    base: Number | None = None,
    bands: Sequence[BandLike] | None = None,
    quantum: Number = CENT,
    cap: Number | None = None,
) -> Payout:
    assert mode in ("flat", "marginal")
    return commission_payout(
        BANDS if bands is None else bands,
        "flat" if mode == "flat" else "marginal",
        target=target,
        actual=actual,
        base=actual if base is None else base,
        quantum=quantum,
        cap=cap,
    )


# --- bands ----------------------------------------------------------------------------------


def test_validate_bands_accepts_pairs_and_bands_and_keeps_them_in_order() -> None:
    assert validate_bands([(0, D("0.02")), Band(D("0.8"), D("0.04"))]) == (
        Band(D(0), D("0.02")),
        Band(D("0.8"), D("0.04")),
    )


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ([], "at least one band"),
        ([(D("0.1"), D("0.02"))], "bands must start at 0"),
        ([(0, D("0.02")), (D("0.8"), D("0.04")), (D("0.5"), D("0.06"))], "must be ascending"),
        ([(0, D("0.02")), (D("0.8"), D("0.04")), (D("0.8"), D("0.06"))], "must be ascending"),
        ([(0, D("0.02")), (D("0.8"), D("-0.01"))], "rate must not be negative"),
    ],
)
def test_invalid_bands_raise_value_error_naming_the_problem(
    bands: list[BandLike], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_bands(bands)
    with pytest.raises(ValueError, match=message):
        pay(actual=1000, bands=bands)


def test_band_index_uses_half_open_bands() -> None:
    assert band_index(BANDS, 0, 100_000) == 0
    assert band_index(BANDS, D("79999.99"), 100_000) == 0
    assert band_index(BANDS, 80_000, 100_000) == 1
    assert band_index(BANDS, 100_000, 100_000) == 2
    assert band_index(BANDS, 120_000, 100_000) == 3
    assert band_index(BANDS, 10**9, 100_000) == 3


def test_an_attainment_below_zero_is_in_the_first_band() -> None:
    assert band_index(BANDS, -5_000, 100_000) == 0


def test_band_lookup_compares_exactly_not_a_rounded_quotient() -> None:
    # 2 / 3 rounded to 28 digits is 0.6666666666666666666666666667, the band's start; the
    # exact attainment is below it, so it is still in the first band.
    start = D("0.6666666666666666666666666667")
    bands: list[BandLike] = [(0, D("0.01")), (start, D("0.05"))]
    assert D(2) / D(3) == start
    assert band_index(bands, 2, 3) == 0
    assert pay("flat", target=3, actual=2, bands=bands).band_index == 0


# --- the worked case ------------------------------------------------------------------------


def test_worked_case_marginal_pays_each_band_its_part() -> None:
    result = pay("marginal", actual=130_000)
    assert result.amount == D("4600.00")
    assert str(result.amount) == "4600.00"
    assert result.exact == 4600
    assert result.attainment == D("1.3")
    assert result.band_index == 3
    assert [part.payout for part in result.parts] == [1600, 800, 1200, 1000]
    assert [part.base_part for part in result.parts] == [80_000, 20_000, 20_000, 10_000]
    assert [part.actual_part for part in result.parts] == [80_000, 20_000, 20_000, 10_000]
    assert result.rates == (D("0.02"), D("0.04"), D("0.06"), D("0.10"))
    assert not result.capped
    assert not result.no_target


def test_worked_case_flat_pays_the_reached_rate_on_everything() -> None:
    result = pay("flat", actual=130_000)
    assert result.amount == D("13000.00")
    assert result.band_index == 3
    assert result.parts == (
        BandPart(
            index=3,
            start=D("1.2"),
            rate=D("0.10"),
            actual_part=D(130_000),
            base_part=D(130_000),
            payout=D(13_000),
        ),
    )


# --- edges, bases and targets ---------------------------------------------------------------


def test_attainment_exactly_on_an_edge_is_in_the_band_starting_there() -> None:
    flat = pay("flat", actual=80_000)
    assert flat.attainment == D("0.8")
    assert flat.band_index == 1
    assert flat.amount == D("3200.00")  # 4 % x 80,000
    below = pay("flat", actual=D("79999.99"))
    assert below.band_index == 0
    assert below.amount == D("1600.00")  # 2 % x 79,999.99 = 1,599.9998
    marginal = pay("marginal", actual=80_000)
    assert marginal.band_index == 1
    assert [part.actual_part for part in marginal.parts] == [80_000, 0]
    assert marginal.amount == D("1600.00")


def test_a_base_above_every_band_pays_the_top_rate_on_the_rest() -> None:
    marginal = pay("marginal", actual=300_000)
    # 1,600 + 800 + 1,200 + 10 % x (300,000 - 120,000) = 21,600
    assert marginal.amount == D("21600.00")
    assert marginal.parts[-1].actual_part == 180_000
    assert pay("flat", actual=300_000).amount == D("30000.00")


def test_a_base_in_the_first_band_only() -> None:
    result = pay("marginal", actual=50_000)
    assert result.band_index == 0
    assert len(result.parts) == 1
    assert result.amount == D("1000.00")


@pytest.mark.parametrize("target", [None, 0, D("0.00")])
@pytest.mark.parametrize("mode", ["flat", "marginal"])
def test_no_target_pays_the_first_rate_flat_and_says_so(target: Number | None, mode: str) -> None:
    result = pay(mode, target=target, actual=130_000)
    assert result.no_target
    assert result.attainment is None
    assert result.band_index == 0
    assert result.rates == (D("0.02"),)
    assert result.amount == D("2600.00")


def test_marginal_with_a_base_other_than_the_attainment_metric_scales_by_b_over_a() -> None:
    # Attainment on won amount (130,000), paid on collections (65,000): half of 4,600.
    result = pay("marginal", actual=130_000, base=65_000)
    assert result.amount == D("2300.00")
    assert result.band_index == 3
    assert [part.actual_part for part in result.parts] == [80_000, 20_000, 20_000, 10_000]
    assert [part.base_part for part in result.parts] == [40_000, 10_000, 10_000, 5_000]
    assert [part.payout for part in result.parts] == [800, 400, 600, 500]
    # Flat: the band comes from A, the rate is paid on B.
    assert pay("flat", actual=130_000, base=65_000).amount == D("6500.00")


def test_marginal_scaling_that_does_not_terminate_is_rounded_from_the_exact_fraction() -> None:
    # A = 90,000: 2 % x 80,000 + 4 % x 10,000 = 2,000 on A; B / A = 1 / 9 -> 222.22...
    result = pay("marginal", actual=90_000, base=10_000)
    assert result.amount == D("222.22")
    assert result.exact.quantize(D("0.0001")) == D("222.2222")
    # A cap between the rounded amount and the exact payout binds.
    capped = pay("marginal", actual=90_000, base=10_000, cap=D("222.222"))
    assert capped.capped
    assert capped.amount == D("222.22")


def test_marginal_with_nothing_attained_pays_the_first_rate_on_the_base() -> None:
    result = pay("marginal", actual=0, base=5_000)
    assert result.amount == D("100.00")
    assert result.band_index == 0
    assert result.parts[0].base_part == 5_000


@pytest.mark.parametrize("mode", ["flat", "marginal"])
def test_negative_actual_and_base_from_reversals_pay_the_first_rate(mode: str) -> None:
    result = pay(mode, actual=-1_000, base=-2_000)
    assert result.attainment == D("-0.01")
    assert result.band_index == 0
    assert result.amount == D("-40.00")
    assert not result.capped


def test_a_negative_base_with_a_positive_actual_is_scaled_marginally() -> None:
    # Won 130,000 but collections net -13,000 after a reversal: -0.1 x 4,600.
    assert pay("marginal", actual=130_000, base=-13_000).amount == D("-460.00")


def test_multiplied_base_sums_line_bases_times_multipliers() -> None:
    bases = {"hardware": D("100000.00"), "services": D("30000.00"), "support": D("5000.00")}
    multipliers: dict[str, Number] = {"services": D("1.5"), "support": 0, "training": 2}
    # 100,000 x 1 (no multiplier) + 30,000 x 1.5 + 5,000 x 0 = 145,000; training has no base.
    assert multiplied_base(bases, multipliers) == D("145000.00")
    assert multiplied_base({}, multipliers) == 0


def test_multipliers_change_the_base_but_not_the_attainment() -> None:
    bases = {"hardware": D(100_000), "services": D(30_000)}
    base = multiplied_base(bases, {"services": 2})
    assert base == 160_000
    result = pay("marginal", actual=130_000, base=base)
    assert result.attainment == D("1.3")
    assert result.band_index == 3
    # 4,600 x 160,000 / 130,000 = 5,661.538...
    assert result.amount == D("5661.54")


def test_negative_multiplier_raises() -> None:
    with pytest.raises(ValueError, match="multiplier of 'x' must not be negative"):
        multiplied_base({"x": 1}, {"x": D("-1")})


# --- cap and rounding -----------------------------------------------------------------------


def test_a_cap_that_binds_pays_the_cap() -> None:
    result = pay("marginal", actual=130_000, cap=4_000)
    assert result.capped
    assert result.exact == 4600
    assert result.amount == D("4000.00")


def test_a_cap_that_does_not_bind_changes_nothing() -> None:
    result = pay("marginal", actual=130_000, cap=5_000)
    assert not result.capped
    assert result.amount == D("4600.00")
    exactly = pay("marginal", actual=130_000, cap=4_600)
    assert not exactly.capped
    assert exactly.amount == D("4600.00")


def test_a_cap_of_zero_pays_nothing_but_leaves_a_negative_line_alone() -> None:
    assert pay("flat", actual=130_000, cap=0).amount == D("0.00")
    assert pay("flat", actual=-1_000, cap=0).amount == D("-20.00")


def test_a_cap_applies_to_the_exact_payout_before_rounding() -> None:
    # Exact 10.005; a cap of 10.004 binds and the line rounds the cap: 10.00.
    result = pay("flat", target=None, actual=D("1000.50"), bands=[(0, D("0.01"))], cap=D("10.004"))
    assert result.capped
    assert result.amount == D("10.00")


def test_negative_cap_raises() -> None:
    with pytest.raises(ValueError, match="cap must not be negative"):
        pay(actual=1_000, cap=D("-0.01"))


def test_the_line_rounds_half_up_at_the_minor_unit() -> None:
    bands = [(0, D("0.01"))]
    # 1 % x 1,000.50 = 10.005: half-up gives 10.01 (half-even would give 10.00).
    result = pay("flat", actual=D("1000.50"), bands=bands)
    assert result.exact == D("10.005")
    assert result.amount == D("10.01")
    # Ties go away from zero, as ROUND_HALF_UP does.
    assert pay("flat", actual=D("-1000.50"), bands=bands).amount == D("-10.01")


def test_the_quantum_is_the_callers_currency_minor_unit() -> None:
    # JPY: 2 % x 1,025 = 20.5 -> 21 yen.
    result = pay("flat", actual=1_025, quantum=1)
    assert result.amount == 21
    assert str(result.amount) == "21"
    assert pay("flat", actual=130_000, quantum=D("1")).amount == D("13000")


def test_the_line_is_rounded_once_not_per_band() -> None:
    # T 100.20, bands 0 %: 2 %, 100 %: 5 %; A = B = 100.28.
    # Band 0: 2 % x 100.20 = 2.004; band 1: 5 % x 0.08 = 0.004.
    # Rounded per band: 2.00 + 0.00 = 2.00; rounded once: 2.008 -> 2.01.
    bands = [(0, D("0.02")), (1, D("0.05"))]
    result = pay("marginal", target=D("100.20"), actual=D("100.28"), bands=bands)
    assert [part.payout for part in result.parts] == [D("2.004"), D("0.004")]
    per_band = sum(round_half_up(part.payout, CENT) for part in result.parts)
    assert per_band == D("2.00")
    assert result.exact == D("2.008")
    assert result.amount == D("2.01")


def test_round_half_up() -> None:
    assert round_half_up(D("0.005"), CENT) == D("0.01")
    assert round_half_up(D("0.0049999"), CENT) == D("0.00")
    assert round_half_up(D("-0.005"), CENT) == D("-0.01")
    assert round_half_up(D("12.5"), 1) == 13
    assert round_half_up(D("0.025"), D("0.05")) == D("0.05")


# --- argument checking ----------------------------------------------------------------------


def test_floats_raise_type_error() -> None:
    with pytest.raises(TypeError, match="float"):
        pay(actual=1000.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        pay(actual=1000, base=1000.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        pay(actual=1000, target=100000.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        pay(actual=1000, cap=10.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        pay(actual=1000, quantum=0.01)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        validate_bands([(0, 0.02)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="float"):
        multiplied_base({"x": 1}, {"x": 1.5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="float"):
        round_half_up(0.005, CENT)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        competition_ranks([("a", "A", 0.5)])  # type: ignore[list-item]


def test_other_bad_arguments_raise_value_error() -> None:
    with pytest.raises(ValueError, match="target must not be negative"):
        pay(actual=1000, target=-1)
    with pytest.raises(ValueError, match="quantum must be positive"):
        pay(actual=1000, quantum=0)
    with pytest.raises(ValueError, match="mode must be flat or marginal"):
        commission_payout(BANDS, "tiered", target=1, actual=1, base=1, quantum=CENT)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        pay(actual=D("NaN"))
    with pytest.raises(ValueError, match="target must be positive"):
        band_index(BANDS, 1, 0)


# --- leaderboard ----------------------------------------------------------------------------


def test_ties_share_a_rank_and_the_next_rank_skips() -> None:
    rows = competition_ranks([("c", "Carol", 5), ("a", "Ann", 10), ("b", "Bob", 10)])
    assert rows == [
        RankRow("a", D(10), 1),
        RankRow("b", D(10), 1),
        RankRow("c", D(5), 3),
    ]
    assert [(key, rank) for key, _value, rank in rows] == [("a", 1), ("b", 1), ("c", 3)]


def test_ties_are_listed_by_display_name() -> None:
    rows = competition_ranks(
        [(1, "zoë", D(7)), (2, "Yusuf", D(7)), (3, "adam", D(7)), (4, "Max", D(9))]
    )
    assert [row.key for row in rows] == [4, 3, 2, 1]
    assert [row.rank for row in rows] == [1, 2, 2, 2]


def test_members_without_a_value_come_last_without_a_rank() -> None:
    rows = competition_ranks(
        [("x", "Xavier", None), ("a", "Ann", D("0.5")), ("b", "Bea", None), ("c", "Cy", 0)]
    )
    assert rows == [
        RankRow("a", D("0.5"), 1),
        RankRow("c", D(0), 2),
        RankRow("b", None, None),
        RankRow("x", None, None),
    ]


def test_ranks_compare_exact_values() -> None:
    rows = competition_ranks(
        [("near", "Near", D("0.99996")), ("one", "One", D("1.0000")), ("int", "Int", 1)]
    )
    # 1.0000 and 1 are equal (a tie); 0.99996 would round to 1.0000 at 4 places but is lower.
    assert [(row.key, row.rank) for row in rows] == [("int", 1), ("one", 1), ("near", 3)]


def test_previous_period_rank_is_a_lookup_in_that_periods_rows() -> None:
    previous = competition_ranks([("a", "Ann", 3), ("b", "Bob", 5), ("c", "Cy", None)])
    by_key = {row.key: row.rank for row in previous}
    assert by_key == {"b": 1, "a": 2, "c": None}
    assert by_key.get("d") is None  # not on that board


def test_duplicate_keys_raise_and_an_empty_board_is_empty() -> None:
    with pytest.raises(ValueError, match="distinct"):
        competition_ranks([("a", "Ann", 1), ("a", "Ann", 2)])
    assert competition_ranks([]) == []


# --- points: daily caps ---------------------------------------------------------------------


def test_points_within_the_cap_are_awarded_in_full() -> None:
    assert points_to_award(10, 0, 50) == 10
    assert points_to_award(10, 40, 50) == 10  # reaches the cap exactly


def test_an_award_that_would_pass_the_cap_gets_zero_not_a_partial_award() -> None:
    assert points_to_award(10, 45, 50) == 0
    assert points_to_award(10, 50, 50) == 0
    assert points_to_award(60, 0, 50) == 0


def test_no_cap_awards_everything() -> None:
    assert points_to_award(10, 10**6, None) == 10


def test_points_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        points_to_award(-1, 0, None)
    with pytest.raises(ValueError, match="must not be negative"):
        points_to_award(1, 0, -5)
    with pytest.raises(TypeError):
        points_to_award(1.0, 0, None)  # type: ignore[arg-type]


def test_events_are_capped_in_commit_order_per_member_and_day() -> None:
    ann_mon, ann_tue, bob_mon = ("ann", "mon"), ("ann", "tue"), ("bob", "mon")
    events = [
        (ann_mon, 10),
        (ann_mon, 10),
        (bob_mon, 10),
        (ann_mon, 10),  # 30 > 25: refused
        (ann_tue, 10),  # a new day has room
        (ann_mon, 5),  # 20 + 5 = 25: fits
        (ann_mon, 1),  # 26 > 25: refused
    ]
    assert award_in_order(events, 25) == [10, 10, 10, 0, 10, 5, 0]


def test_earlier_award_rows_count_and_undos_free_no_room() -> None:
    # 20 awarded earlier today and one of them undone: the ledger's award rows still sum
    # to 20, which is what counts.
    assert award_in_order([("ann", 10), ("ann", 5)], 25, already_awarded={"ann": 20}) == [0, 5]


def test_events_without_a_cap_are_all_awarded() -> None:
    assert award_in_order([("a", 10), ("a", 10), ("b", 3)], None) == [10, 10, 3]


# --- properties -----------------------------------------------------------------------------

money = st.integers(min_value=0, max_value=10**9).map(lambda cents: D(cents).scaleb(-2))
positive_money = st.integers(min_value=1, max_value=10**9).map(lambda cents: D(cents).scaleb(-2))
rates = st.integers(min_value=0, max_value=5_000).map(lambda n: D(n).scaleb(-4))
quanta = st.sampled_from([D("0.01"), D("1")])


@st.composite
def band_lists(draw: st.DrawFn, *, rising: bool = False) -> list[tuple[Decimal, Decimal]]:
    starts = draw(
        st.lists(st.integers(min_value=1, max_value=300), max_size=5, unique=True).map(sorted)
    )
    band_rates = draw(st.lists(rates, min_size=len(starts) + 1, max_size=len(starts) + 1))
    if rising:
        band_rates.sort()
    return list(zip([D(0), *(D(start).scaleb(-2) for start in starts)], band_rates, strict=True))


@given(band_lists(), positive_money, money, money)
def test_marginal_payout_does_not_fall_as_the_base_rises(
    bands: list[tuple[Decimal, Decimal]], target: Decimal, first: Decimal, second: Decimal
) -> None:
    low, high = sorted((first, second))
    low_pay = pay("marginal", target=target, actual=low, bands=bands)
    high_pay = pay("marginal", target=target, actual=high, bands=bands)
    assert low_pay.exact <= high_pay.exact
    assert low_pay.amount <= high_pay.amount


@given(band_lists(), positive_money, money)
def test_marginal_payout_never_exceeds_the_top_rate_on_the_base(
    bands: list[tuple[Decimal, Decimal]], target: Decimal, base: Decimal
) -> None:
    result = pay("marginal", target=target, actual=base, bands=bands)
    top = max(rate for _start, rate in bands)
    assert 0 <= result.exact <= top * base


@given(band_lists(rising=True), positive_money, money)
def test_flat_pays_at_least_marginal_when_rates_rise(
    bands: list[tuple[Decimal, Decimal]], target: Decimal, base: Decimal
) -> None:
    flat = pay("flat", target=target, actual=base, bands=bands)
    marginal = pay("marginal", target=target, actual=base, bands=bands)
    assert flat.exact >= marginal.exact
    assert flat.band_index == marginal.band_index


@given(
    band_lists(),
    st.one_of(st.none(), positive_money),
    st.integers(min_value=-(10**9), max_value=10**9).map(lambda cents: D(cents).scaleb(-2)),
    st.sampled_from(["flat", "marginal"]),
    quanta,
    st.one_of(st.none(), money),
)
def test_amount_is_the_capped_exact_payout_rounded_half_up_once(
    bands: list[tuple[Decimal, Decimal]],
    target: Decimal | None,
    base: Decimal,
    mode: str,
    quantum: Decimal,
    cap: Decimal | None,
) -> None:
    result = pay(mode, target=target, actual=base, bands=bands, quantum=quantum, cap=cap)
    assert sum(part.payout for part in result.parts) == result.exact
    payable = result.exact if cap is None else min(result.exact, cap)
    assert result.capped == (cap is not None and result.exact > cap)
    assert result.amount == payable.quantize(quantum, rounding=ROUND_HALF_UP)
    assert result.no_target == (target is None)


@given(st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=5)), max_size=12))
def test_a_rank_is_one_plus_the_number_of_strictly_better_values(
    values: list[int | None],
) -> None:
    items = [(index, f"member {index:02d}", value) for index, value in enumerate(values)]
    rows = competition_ranks(items)
    assert sorted(row.key for row in rows) == list(range(len(values)))
    present = [value for value in values if value is not None]
    for row in rows:
        if row.value is None:
            assert row.rank is None
        else:
            assert row.rank == 1 + sum(1 for value in present if value > row.value)
    ranks = [row.rank for row in rows]
    assert ranks == sorted(ranks, key=lambda rank: (rank is None, rank or 0))


# --- the payout on Decimals against the payout on fractions ---------------------------------


def written(result: Payout) -> tuple[object, ...]:
    """Every figure of a payout as it is written into a statement line's inputs (the
    string: ``4600`` and ``4600.00`` are equal Decimals but not the same text)."""
    return (
        str(result.amount),
        str(result.exact),
        str(result.attainment),
        result.band_index,
        tuple(
            (
                p.index,
                str(p.start),
                str(p.rate),
                str(p.actual_part),
                str(p.base_part),
                str(p.payout),
            )
            for p in result.parts
        ),  # fmt: skip
        result.capped,
        result.no_target,
    )


def both_ways(
    bands: Sequence[BandLike],
    mode: str,
    target: Decimal | None,
    actual: Decimal,
    base: Decimal,
    quantum: Decimal,
    cap: Decimal | None,
) -> tuple[tuple[object, ...], tuple[object, ...]]:
    from incentives.rules import _decimal_payout, _fraction_payout

    checked = validate_bands(bands)
    arguments = (checked, mode, target, actual, base, quantum, cap)
    return written(_decimal_payout(*arguments)), written(_fraction_payout(*arguments))  # type: ignore[arg-type]


# Amounts of any scale, sign and number of places (1E+3, 100.000, -0.07).
amounts = st.builds(
    lambda digits, places: D(digits).scaleb(-places),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=-3, max_value=6),
)


@given(
    band_lists(),
    st.sampled_from(["flat", "marginal"]),
    st.one_of(st.none(), st.just(D(0)), amounts.map(abs)),
    amounts,
    amounts,
    st.sampled_from([D("0.01"), D("1"), D("0.001"), D("0.05")]),
    st.one_of(st.none(), amounts.map(abs)),
)
def test_the_decimal_payout_writes_what_the_fraction_payout_writes(
    bands: list[tuple[Decimal, Decimal]],
    mode: str,
    target: Decimal | None,
    actual: Decimal,
    base: Decimal,
    quantum: Decimal,
    cap: Decimal | None,
) -> None:
    fast, reference = both_ways(bands, mode, target, actual, base, quantum, cap)
    assert fast == reference


@pytest.mark.parametrize(
    ("target", "actual", "base", "cap"),
    [
        (D("300000"), D("100000"), D("100000"), None),  # a = 1/3: 60 digits
        (D("100000"), D("130000"), D("130000.005"), None),  # B / A scaling exact
        (D("100000"), D("90000"), D("100000"), None),  # B / A = 10/9: rounded from the fraction
        (D("3"), D("2"), D("0.0075"), None),  # exactly on a half cent: away from zero
        (D("100000"), D("130000"), D("-130000"), None),  # a negative base, scaled
        (D("100000"), D("-5"), D("-0.005"), None),  # A < 0: first rate, -0.0001 -> 0.00
        (D("100000"), D("90000"), D("100000"), D("2545.00")),  # the cap against B·S / A
        (D("100000"), D("90000"), D("100000"), D("2544.44")),
        (None, D("10"), D("10"), None),
    ],
)
def test_the_decimal_payout_by_hand_cases(
    target: Decimal | None, actual: Decimal, base: Decimal, cap: Decimal | None
) -> None:
    for mode in ("flat", "marginal"):
        fast, reference = both_ways(BANDS, mode, target, actual, base, CENT, cap)
        assert fast == reference, mode
    # By hand, marginal, T 100,000, A 90,000, B 100,000: the bands pay on A
    # 2 % x 80,000 + 4 % x 10,000 = 2,000; times B / A = 10/9: 2,222.22…
    result = pay("marginal", target=D("100000"), actual=D("90000"), base=D("100000"))
    assert result.amount == D("2222.22")
    assert str(result.exact) == "2222." + "2" * 56
    assert [str(p.base_part) for p in result.parts] == ["88888." + "8" * 54 + "9",
                                                        "11111." + "1" * 55]  # fmt: skip
    assert str(result.attainment) == "0.9"


def test_bands_checked_once_are_not_checked_again_and_others_are() -> None:
    checked = validate_bands(BANDS)
    assert pay(actual=130_000, bands=checked).amount == D("4600.00")  # the worked case
    unsorted = (Band(D(0), D("0.02")), Band(D("1.2"), D("0.10")), Band(D("0.8"), D("0.04")))
    with pytest.raises(ValueError, match="ascending"):
        pay(actual=130_000, bands=unsorted)  # a tuple of bands it did not return
    with pytest.raises(ValueError, match="ascending"):
        pay(actual=130_000, bands=list(unsorted))
