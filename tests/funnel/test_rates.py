"""SPEC §5 funnel arithmetic on plain values: hand-computed cases and properties."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from funnel.rates import (
    WON,
    CohortConversion,
    DeferredCounts,
    History,
    Level,
    StageConversion,
    closed_win_rate,
    cohort_conversion,
    mean_days,
    median_days,
    per_week,
    plan_to_close,
    rate,
    reached_counts,
)

D = Decimal
STAGES = ("qualification", "solution", "quote", "negotiation")


def history(
    level: Level,
    *,
    closed: int,
    won: int,
    won_amount: str,
    reached: Mapping[str, int],
    new_opportunities: int = 0,
    leads_created: int = 0,
    leads_converted: int = 0,
    verified_visits: int = 0,
) -> History:
    return History(
        level=level,
        closed_deals=closed,
        won_deals=won,
        won_amount=D(won_amount),
        reached_counts=reached,
        new_opportunities=new_opportunities,
        leads_created=leads_created,
        leads_converted=leads_converted,
        verified_visits=verified_visits,
    )


# Average deal size 10 000; rates 0.6, 2/3, 0.625, 0.8; a quarter of leads converted;
# two verified visits per new opportunity.
TENANT = history(
    "tenant",
    closed=100,
    won=20,
    won_amount="200000",
    reached={"qualification": 100, "solution": 60, "quote": 40, "negotiation": 25},
    new_opportunities=120,
    leads_created=400,
    leads_converted=100,
    verified_visits=240,
)


# -- rates --------------------------------------------------------------------------------


def test_rate_is_rounded_half_up_to_four_places() -> None:
    assert rate(1, 3) == D("0.3333")
    assert rate(2, 3) == D("0.6667")
    assert rate(0, 5) == D("0.0000")
    assert rate(5, 5) == D("1.0000")


def test_rate_is_none_when_the_denominator_is_zero() -> None:
    assert rate(0, 0) is None
    assert rate(3, 0) is None


def test_rate_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        rate(-1, 3)
    with pytest.raises(ValueError):
        rate(1, -3)


def test_closed_win_rate_is_won_over_won_and_lost() -> None:
    assert closed_win_rate(3, 7) == D("0.3000")
    assert closed_win_rate(1, 2) == D("0.3333")
    assert closed_win_rate(0, 0) is None


@given(st.integers(0, 10**6), st.integers(1, 10**6))
def test_rate_is_within_half_a_unit_of_the_fourth_place(numerator: int, denominator: int) -> None:
    result = rate(numerator, denominator)
    assert result is not None
    assert abs(Fraction(result) - Fraction(numerator, denominator)) <= Fraction(1, 20000)


# -- reached and cohort conversion --------------------------------------------------------


def test_skipped_stages_count_as_reached() -> None:
    paths = [
        ["qualification", "quote", "lost"],  # skipped solution, lost at quote
        ["quote", "won"],  # created at quote, skipped the first two, won
    ]
    assert reached_counts(STAGES, paths, won_stage="won") == {
        "qualification": 2,
        "solution": 2,
        "quote": 2,
        "negotiation": 1,
    }


def test_moving_back_does_not_undo_a_stage_reached_and_lost_stages_are_ignored() -> None:
    paths = [
        ["qualification", "solution", "negotiation", "solution", "lost"],
        ["qualification", "lost"],
        [],
    ]
    assert reached_counts(STAGES, paths, won_stage="won") == {
        "qualification": 2,
        "solution": 1,
        "quote": 1,
        "negotiation": 1,
    }


def test_reached_counts_rejects_a_won_stage_among_the_open_stages() -> None:
    with pytest.raises(ValueError):
        reached_counts(STAGES, [], won_stage="quote")


@given(
    st.lists(
        st.lists(st.sampled_from([*STAGES, "won", "lost"]), max_size=6),
        max_size=30,
    )
)
def test_reached_counts_never_grow_along_the_pipeline(paths: list[list[str]]) -> None:
    counts = reached_counts(STAGES, paths, won_stage="won")
    values = [counts[stage] for stage in STAGES]
    assert values == sorted(values, reverse=True)
    assert values[0] <= len(paths)
    # Every won opportunity reached every open stage.
    assert values[-1] >= sum(1 for path in paths if "won" in path)


def test_cohort_conversion_gives_each_stages_rate_to_the_next_and_the_win_rate() -> None:
    result = cohort_conversion(
        STAGES,
        {"qualification": 10, "solution": 6, "quote": 3, "negotiation": 2},
        created=10,
        won=1,
    )
    assert result == CohortConversion(
        stages=(
            StageConversion("qualification", 10, "solution", 6, D("0.6000")),
            StageConversion("solution", 6, "quote", 3, D("0.5000")),
            StageConversion("quote", 3, "negotiation", 2, D("0.6667")),
            StageConversion("negotiation", 2, WON, 1, D("0.5000")),
        ),
        created=10,
        won=1,
        win_rate=D("0.1000"),
    )


def test_cohort_conversion_of_skipped_stages_uses_reached_counts() -> None:
    # One deal created at quote and won skipped two stages: it still passed through them.
    counts = reached_counts(STAGES, [["quote", "won"], ["qualification", "lost"]], won_stage="won")
    result = cohort_conversion(STAGES, counts, created=2, won=1)
    assert [row.rate_to_next_stage for row in result.stages] == [
        D("0.5000"),
        D("1.0000"),
        D("1.0000"),
        D("1.0000"),
    ]
    assert result.win_rate == D("0.5000")


def test_cohort_conversion_has_no_rate_from_a_stage_nobody_reached() -> None:
    result = cohort_conversion(STAGES, {"qualification": 4}, created=4, won=0)
    assert [row.reached for row in result.stages] == [4, 0, 0, 0]
    assert [row.rate_to_next_stage for row in result.stages] == [D("0.0000"), None, None, None]
    assert result.win_rate == D("0.0000")


def test_cohort_conversion_of_an_empty_cohort_has_no_win_rate() -> None:
    assert cohort_conversion(STAGES, {}, created=0, won=0).win_rate is None


def test_cohort_conversion_rejects_a_stage_outside_the_pipeline() -> None:
    with pytest.raises(ValueError, match="outside stage_order"):
        cohort_conversion(STAGES, {"qualifcation": 3}, created=3, won=0)


# -- durations ----------------------------------------------------------------------------


def test_mean_and_median_of_durations_in_days() -> None:
    days = [D("1"), D("2"), D("3"), D("10")]
    assert mean_days(days) == D("4")
    assert median_days(days) == D("2.5")
    assert median_days([D("7"), D("1.5"), D("3")]) == D("3")


def test_mean_and_median_of_no_durations_are_none() -> None:
    assert mean_days([]) is None
    assert median_days([]) is None


def test_a_negative_duration_is_an_error() -> None:
    with pytest.raises(ValueError):
        mean_days([D("1"), D("-1")])


@given(st.lists(st.decimals(min_value=0, max_value=10**4, places=3), min_size=1, max_size=50))
def test_mean_and_median_lie_between_the_shortest_and_the_longest(days: list[Decimal]) -> None:
    mean = mean_days(days)
    median = median_days(days)
    assert mean is not None
    assert median is not None
    assert min(days) <= median <= max(days)
    # The mean is rounded at 28 significant digits, hence the tolerance.
    assert min(days) - D("1e-20") <= mean <= max(days) + D("1e-20")


# -- plan to close ------------------------------------------------------------------------


def test_plan_to_close_walks_the_funnel_backwards_from_the_wins() -> None:
    plan = plan_to_close(D("25000"), [TENANT], stage_order=STAGES)
    # wins = ceil(25000 / 10000) = 3
    assert plan.wins.value == 3
    assert plan.wins.rate is not None
    assert plan.wins.rate.value == D("10000.0000")
    # negotiation: ceil(3 / 0.8) = 4; quote: ceil(4 / 0.625) = 7;
    # solution: ceil(7 / (40/60)) = 11; qualification: ceil(11 / 0.6) = 19.
    assert [(need.stage, need.next_stage, need.needed.value) for need in plan.stages] == [
        ("qualification", "solution", 19),
        ("solution", "quote", 11),
        ("quote", "negotiation", 7),
        ("negotiation", WON, 4),
    ]
    assert [need.needed.rate.value for need in plan.stages if need.needed.rate] == [
        D("0.6000"),
        D("0.6667"),
        D("0.6250"),
        D("0.8000"),
    ]
    assert plan.new_opportunities.value == 19
    # leads = ceil(19 / 0.25) = 76; verified visits = ceil(19 × 2) = 38.
    assert plan.leads.value == 76
    assert plan.verified_visits.value == 38
    assert {figure.source for figure in (plan.wins, plan.leads, plan.verified_visits)} == {"tenant"}


def test_wins_are_rounded_up() -> None:
    plan = plan_to_close(D("20000.01"), [TENANT], stage_order=STAGES)
    assert plan.wins.value == 3
    assert plan_to_close(D("20000"), [TENANT], stage_order=STAGES).wins.value == 2


def test_plan_to_close_divides_by_the_exact_rate_not_the_rounded_one() -> None:
    # A one-in-three rate to won: 10 wins need exactly 30 deals in the last stage,
    # where 10 / 0.3333 would ask for 31.
    tenant = history("tenant", closed=30, won=10, won_amount="1000", reached={"quote": 30})
    plan = plan_to_close(D("1000"), [tenant], stage_order=["quote"])
    assert plan.wins.value == 10
    assert plan.stages[0].needed.rate is not None
    assert plan.stages[0].needed.rate.value == D("0.3333")
    assert plan.stages[0].needed.value == 30


def unit_history() -> History:
    return history(
        "unit",
        closed=10,
        won=5,
        won_amount="25000",
        reached={"qualification": 10, "solution": 10, "quote": 10, "negotiation": 5},
        new_opportunities=10,
        leads_created=20,
        leads_converted=10,
        verified_visits=10,
    )


def member_history(closed: int) -> History:
    return history(
        "member",
        closed=closed,
        won=closed,
        won_amount=str(1000 * closed),
        reached=dict.fromkeys(STAGES, closed),
        new_opportunities=closed,
        leads_created=closed,
        leads_converted=closed,
        verified_visits=closed,
    )


def test_a_member_with_four_closed_deals_falls_back_to_the_units_history() -> None:
    plan = plan_to_close(
        D("10000"), [member_history(4), unit_history(), TENANT], stage_order=STAGES
    )
    # Unit: average 5000 → 2 wins; negotiation 5 → won 5 (rate 1): 2; quote → negotiation
    # 0.5: 4; solution and qualification rate 1: 4; leads 0.5: 8; one visit each: 4.
    assert plan.wins.value == 2
    assert [need.needed.value for need in plan.stages] == [4, 4, 4, 2]
    assert plan.leads.value == 8
    assert plan.verified_visits.value == 4
    figures = [plan.wins, *(need.needed for need in plan.stages), plan.leads]
    assert {figure.source for figure in [*figures, plan.verified_visits]} == {"unit"}


def test_a_member_with_five_closed_deals_uses_their_own_history() -> None:
    plan = plan_to_close(
        D("10000"), [member_history(5), unit_history(), TENANT], stage_order=STAGES
    )
    # Member: average 1000 → 10 wins, every rate 1.
    assert plan.wins.value == 10
    assert plan.wins.source == "member"
    assert [need.needed.value for need in plan.stages] == [10, 10, 10, 10]
    assert plan.leads.value == 10
    assert plan.verified_visits.value == 10


def test_a_member_and_unit_with_few_closed_deals_fall_back_to_the_tenant() -> None:
    unit = history("unit", closed=3, won=3, won_amount="90000", reached=dict.fromkeys(STAGES, 3))
    plan = plan_to_close(D("25000"), [member_history(4), unit, TENANT], stage_order=STAGES)
    assert plan.wins.value == 3
    assert plan.new_opportunities.value == 19
    assert plan.wins.source == "tenant"
    assert {need.needed.source for need in plan.stages} == {"tenant"}


def test_each_figure_falls_back_on_its_own_when_a_level_lacks_that_ratio() -> None:
    # The member has six closed deals but no lead recorded: only lead conversion comes
    # from the unit.
    member = history(
        "member",
        closed=6,
        won=3,
        won_amount="6000",
        reached={"qualification": 6, "solution": 6, "quote": 6, "negotiation": 3},
        new_opportunities=6,
        verified_visits=12,
    )
    plan = plan_to_close(D("10000"), [member, unit_history(), TENANT], stage_order=STAGES)
    # wins ceil(10000 / 2000) = 5; rates 1, 1, 0.5, 1; leads at the unit's 0.5;
    # two verified visits per new opportunity.
    assert plan.wins.value == 5
    assert [need.needed.value for need in plan.stages] == [10, 10, 10, 5]
    assert plan.leads.value == 20
    assert plan.verified_visits.value == 20
    assert plan.wins.source == "member"
    assert {need.needed.source for need in plan.stages} == {"member"}
    assert plan.leads.source == "unit"
    assert plan.verified_visits.source == "member"


def test_a_lead_rate_is_never_judged_from_one_lead() -> None:
    # Six closed deals (enough for the stage rates) but 1 lead created, 0 converted, and
    # 4 new opportunities: "0 of 1" is no evidence. The lead rate falls back to the
    # unit's 10 of 20 and visits per opportunity to the unit's 10 per 10 (SPEC section 5:
    # the same ≥ 5 rule as the stage rates, counted in the rate's own denominator).
    member = history(
        "member",
        closed=6,
        won=3,
        won_amount="6000",
        reached={"qualification": 6, "solution": 6, "quote": 6, "negotiation": 3},
        new_opportunities=4,
        leads_created=1,
        leads_converted=0,
        verified_visits=40,
    )
    plan = plan_to_close(D("10000"), [member, unit_history(), TENANT], stage_order=STAGES)
    # 5 wins (average 2000); 10 new opportunities; leads ceil(10 / 0.5) = 20; visits 10 × 1.
    assert plan.new_opportunities.value == 10 and plan.new_opportunities.source == "member"
    assert (plan.leads.value, plan.leads.source) == (20, "unit")
    assert (plan.verified_visits.value, plan.verified_visits.source) == (10, "unit")
    # Without a unit level the tenant's quarter applies: ceil(10 / 0.25) = 40.
    alone = plan_to_close(D("10000"), [member, TENANT], stage_order=STAGES)
    assert (alone.leads.value, alone.leads.source) == (40, "tenant")


def test_a_zero_conversion_stage_makes_the_plan_say_no_data() -> None:
    # Six closed deals, all lost: three reached quote, none went on to negotiation.
    member = history(
        "member",
        closed=6,
        won=0,
        won_amount="0",
        reached={"qualification": 6, "solution": 5, "quote": 3, "negotiation": 0},
        new_opportunities=6,
        leads_created=12,
        leads_converted=6,
        verified_visits=6,
    )
    plan = plan_to_close(D("10000"), [member, TENANT], stage_order=STAGES)
    # Without a win of their own, deal size and the rate to won come from the tenant:
    # 1 win, then ceil(1 / 0.8) = 2 in negotiation.
    assert plan.wins.value == 1
    assert plan.wins.source == "tenant"
    by_stage = {need.stage: need.needed for need in plan.stages}
    assert by_stage["negotiation"].value == 2
    assert by_stage["negotiation"].source == "tenant"
    # The member's own zero rate from quote is data, and no number of quotes would do.
    quote = by_stage["quote"]
    assert quote.value is None
    assert quote.rate is not None
    assert quote.rate.value == D("0.0000")
    assert quote.source == "member"
    assert quote.reason is not None
    assert "conversion from quote to negotiation is zero" in quote.reason
    for figure in (by_stage["solution"], by_stage["qualification"], plan.leads):
        assert figure.value is None
        assert figure.reason is not None
        assert "no data" in figure.reason
    assert plan.new_opportunities.value is None
    assert plan.verified_visits.value is None


def test_a_tenant_without_history_makes_every_figure_no_data_instead_of_dividing_by_zero() -> None:
    empty = history("tenant", closed=0, won=0, won_amount="0", reached={})
    plan = plan_to_close(D("5000"), [empty], stage_order=STAGES)
    assert plan.wins.value is None
    assert plan.wins.rate is None
    assert plan.wins.reason == "no history has won deals"
    for need in plan.stages:
        assert need.needed.value is None
        assert need.needed.reason is not None
    assert plan.leads.value is None
    assert plan.verified_visits.value is None
    assert plan.verified_visits.reason is not None


def test_zero_lead_conversion_says_no_data_for_leads_only() -> None:
    tenant = history(
        "tenant",
        closed=10,
        won=10,
        won_amount="10000",
        reached=dict.fromkeys(STAGES, 10),
        new_opportunities=10,
        leads_created=50,
        leads_converted=0,
        verified_visits=0,
    )
    plan = plan_to_close(D("3000"), [tenant], stage_order=STAGES)
    assert plan.new_opportunities.value == 3
    assert plan.leads.value is None
    assert plan.leads.reason is not None
    assert "lead conversion is zero" in plan.leads.reason
    # No verified visit per new opportunity: none needed, a figure rather than no data.
    assert plan.verified_visits.value == 0


def test_a_zero_gap_needs_zero_of_everything_even_without_history() -> None:
    empty = history("tenant", closed=0, won=0, won_amount="0", reached={})
    for levels in ([TENANT], [empty]):
        plan = plan_to_close(D("0"), levels, stage_order=STAGES)
        figures = [plan.wins, *(need.needed for need in plan.stages), plan.leads]
        assert [figure.value for figure in [*figures, plan.verified_visits]] == [0] * 7
        assert all(figure.reason is None for figure in figures)


def test_plan_to_close_rejects_levels_out_of_order_and_a_negative_gap() -> None:
    with pytest.raises(ValueError, match="ordered"):
        plan_to_close(D("1"), [TENANT, unit_history()], stage_order=STAGES)
    with pytest.raises(ValueError, match="ordered"):
        plan_to_close(D("1"), [TENANT, TENANT], stage_order=STAGES)
    with pytest.raises(ValueError, match="gap"):
        plan_to_close(D("-1"), [TENANT], stage_order=STAGES)


def test_history_rejects_more_wins_than_closed_deals() -> None:
    with pytest.raises(ValueError):
        history("tenant", closed=1, won=2, won_amount="10", reached={})


@st.composite
def funnel_histories(draw: st.DrawFn) -> History:
    """A tenant history whose reached counts shrink along the pipeline, with wins."""
    counts = sorted(
        draw(st.lists(st.integers(1, 500), min_size=len(STAGES) + 1, max_size=len(STAGES) + 1)),
        reverse=True,
    )
    won = counts[-1]
    return History(
        level="tenant",
        closed_deals=counts[0],
        won_deals=won,
        won_amount=draw(st.decimals(min_value=D("0.01"), max_value=10**7, places=2)) * won,
        reached_counts=dict(zip(STAGES, counts, strict=False)),
        new_opportunities=draw(st.integers(1, 1000)),
        leads_created=draw(st.integers(1, 1000)),
        leads_converted=draw(st.integers(1, 1000)),
        verified_visits=draw(st.integers(0, 1000)),
    )


@given(
    tenant=funnel_histories(),
    gap=st.decimals(min_value=D("0.01"), max_value=10**9, places=2),
)
def test_every_figure_is_the_least_whole_number_that_covers_the_next_one(
    tenant: History, gap: Decimal
) -> None:
    plan = plan_to_close(gap, [tenant], stage_order=STAGES)
    size = Fraction(tenant.won_amount) / tenant.won_deals
    wins = plan.wins.value
    assert wins is not None
    assert wins * size >= Fraction(gap) > (wins - 1) * size
    downstream = wins
    for need in reversed(plan.stages):
        assert need.needed.rate is not None
        exact = Fraction(need.needed.rate.numerator) / Fraction(need.needed.rate.denominator)
        needed = need.needed.value
        assert needed is not None
        assert needed >= downstream  # rates never exceed 1 here
        assert needed * exact >= downstream > (needed - 1) * exact
        downstream = needed
    assert plan.leads.value == math.ceil(
        Fraction(downstream * tenant.leads_created, tenant.leads_converted)
    )
    assert plan.verified_visits.value == math.ceil(
        Fraction(downstream * tenant.verified_visits, tenant.new_opportunities)
    )


# -- per week -----------------------------------------------------------------------------


def test_per_week_rounds_up() -> None:
    assert per_week(19, 4) == 5
    assert per_week(20, 4) == 5
    assert per_week(10, D("2.5")) == 4
    assert per_week(0, 3) == 0


def test_per_week_is_none_without_data_or_weeks_left() -> None:
    assert per_week(None, 4) is None
    assert per_week(10, 0) is None


@given(
    figure=st.decimals(min_value=0, max_value=10**12, places=4),
    weeks=st.decimals(min_value=D("0.0001"), max_value=60, places=4),
)
def test_per_week_is_the_exact_ceiling(figure: Decimal, weeks: Decimal) -> None:
    assert per_week(figure, weeks) == math.ceil(Fraction(figure) / Fraction(weeks))


def test_deferred_counts_are_read_only_when_a_rate_falls_back_to_them() -> None:
    """A level's ``DeferredCounts`` are computed on their first read, once, and checked
    against the stage order then; a plan whose stage rates all come from the member's own
    history never reads the tenant's."""
    reads: list[int] = []

    def tenant_reached() -> dict[str, int]:
        reads.append(1)
        return {"qualification": 10, "solution": 6, "quote": 4, "negotiation": 2}

    member = history(
        "member",
        closed=5,
        won=2,
        won_amount="20000",
        reached={"qualification": 5, "solution": 4, "quote": 3, "negotiation": 2},
    )
    deferred = DeferredCounts(tenant_reached)
    tenant = history("tenant", closed=10, won=2, won_amount="20000", reached=deferred)
    plan = plan_to_close(D("30000"), [member, tenant], stage_order=STAGES)
    assert reads == [] and not deferred.read
    assert {need.needed.source for need in plan.stages} == {"member"}
    # The member has no deal past Quote: that stage's rate comes from the tenant's counts.
    thin = history(
        "member",
        closed=5,
        won=0,
        won_amount="0",
        reached={"qualification": 5, "solution": 2, "quote": 0},
    )
    plan = plan_to_close(D("30000"), [thin, tenant], stage_order=STAGES)
    assert reads == [1] and deferred.read
    assert plan.stages[2].needed.source == "tenant"
    eager = history("tenant", closed=10, won=2, won_amount="20000", reached=tenant_reached())
    assert plan == plan_to_close(D("30000"), [thin, eager], stage_order=STAGES)
    assert dict(deferred) == eager.reached_counts and len(reads) == 2  # read once each
    # Once read, the counts are checked like any others.
    wrong = DeferredCounts(lambda: {"elsewhere": 1})
    assert dict(wrong) == {"elsewhere": 1}
    with pytest.raises(ValueError, match="outside stage_order"):
        plan_to_close(
            D("1"),
            [history("tenant", closed=1, won=1, won_amount="1", reached=wrong)],
            stage_order=STAGES,
        )
