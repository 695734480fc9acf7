"""Tier maths without a database: windows, thresholds, reviews, floors, progress."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from kopilka.programs.ladder import TierLadder
from kopilka.tiers import domain
from kopilka.tiers.domain import PurchaseFact, TierState
from kopilka.tiers.progress import money, next_tier, review_outlook

MOSCOW = ZoneInfo("Europe/Moscow")


def ladder(**overrides: Any) -> TierLadder:
    document: dict[str, Any] = {
        "levels": [
            {"id": "base", "name": "Base"},
            {"id": "silver", "name": "Silver", "qualify": {"spend": 1_000, "visits": 5}},
            {"id": "gold", "name": "Gold", "qualify": {"spend": 5_000}},
            {"id": "platinum", "name": "Platinum", "qualify": {"spend": 20_000}},
            {"id": "vip", "name": "VIP", "invitation_only": True},
        ]
    }
    return TierLadder.model_validate(document | overrides)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def bought(moment: datetime, amount: int, points: int = 0) -> PurchaseFact:
    return PurchaseFact(moment, amount, points, 1)


# --- windows and metrics --------------------------------------------------------------------


def test_rolling_window_starts_exactly_n_months_back() -> None:
    twelve = ladder()
    end = at(2026, 3, 31, 12)
    start = at(2025, 3, 31, 12)
    inside = domain.measure(twelve, [bought(start, 700)], None, end, UTC)
    outside = domain.measure(
        twelve, [bought(start - timedelta(microseconds=1), 700)], None, end, UTC
    )
    assert (inside["spend"], outside["spend"]) == (700, 0)
    # The end is exclusive: a purchase at the end belongs to the next window.
    assert domain.measure(twelve, [bought(end, 700)], None, end, UTC)["spend"] == 0


def test_rolling_months_clamp_to_month_ends_and_leap_days() -> None:
    assert domain.add_months(at(2026, 3, 31), -1) == at(2026, 2, 28)
    assert domain.add_months(at(2024, 3, 31), -1) == at(2024, 2, 29)
    assert domain.add_months(at(2024, 2, 29), 12) == at(2025, 2, 28)


def test_calendar_year_is_the_program_zones_year() -> None:
    year = ladder(window={"kind": "calendar_year"})
    # 31 Dec 2025 22:30 UTC is already 1 January 2026 in Moscow (UTC+3).
    new_year_in_moscow = at(2025, 12, 31, 22, 30)
    facts = [bought(new_year_in_moscow, 900), bought(at(2025, 12, 31, 20, 0), 100)]
    metrics = domain.measure(year, facts, None, at(2026, 6, 1), MOSCOW)
    assert metrics["spend"] == 900
    # A review at the start of 1 January (local) looks at the year that just ended.
    review_end = domain.midnight(date(2026, 1, 1), MOSCOW)
    assert domain.measure(year, facts, None, review_end, MOSCOW)["spend"] == 100


def test_lifetime_counts_everything_and_visits_skip_full_returns() -> None:
    lifetime = ladder(window={"kind": "lifetime"})
    facts = [bought(at(2001, 1, 1), 10), PurchaseFact(at(2010, 1, 1), 0, 0, 0)]
    metrics = domain.measure(lifetime, facts, None, at(2026, 1, 1), UTC)
    assert (metrics["spend"], metrics["visits"]) == (10, 1)


def test_tenure_is_full_months_since_joining() -> None:
    joined = at(2024, 1, 31, 10)
    assert domain.full_months(joined, at(2024, 2, 29, 10)) == 1  # clamped to the month's end
    assert domain.full_months(joined, at(2024, 2, 29, 9)) == 0
    assert domain.full_months(at(2024, 2, 29), at(2025, 2, 28)) == 12
    assert domain.full_months(None, at(2025, 1, 1)) == 0


# --- thresholds -----------------------------------------------------------------------------


def test_exactly_at_the_threshold_qualifies_one_below_does_not() -> None:
    rungs = ladder()
    assert domain.qualifying(rungs, {"spend": 5_000}) == "gold"
    assert domain.qualifying(rungs, {"spend": 4_999}) == "silver"
    assert domain.qualifying(rungs, {"spend": 999, "visits": 4}) == "base"


def test_any_or_all_of_the_criteria() -> None:
    rungs = ladder()
    assert domain.qualifying(rungs, {"spend": 0, "visits": 5}) == "silver"
    strict = ladder(
        levels=[
            {"id": "base", "name": "Base"},
            {
                "id": "silver",
                "name": "Silver",
                "qualify": {"spend": 1_000, "visits": 5},
                "match": "all",
            },
        ]
    )
    assert domain.qualifying(strict, {"spend": 1_000, "visits": 4}) == "base"
    assert domain.qualifying(strict, {"spend": 1_000, "visits": 5}) == "silver"


def test_invitation_only_tiers_are_never_reached_by_qualification() -> None:
    assert domain.qualifying(ladder(), {"spend": 10**12}) == "platinum"


def test_a_ladder_is_checked() -> None:
    with pytest.raises(ValidationError, match="entry tier needs no qualification"):
        ladder(levels=[{"id": "base", "name": "B", "qualify": {"spend": 1}}])
    with pytest.raises(ValidationError, match="repeated"):
        ladder(levels=[{"id": "a", "name": "A"}, {"id": "a", "name": "A", "qualify": {"spend": 1}}])
    with pytest.raises(ValidationError, match="invitation_only"):
        ladder(levels=[{"id": "a", "name": "A"}, {"id": "b", "name": "B"}])
    with pytest.raises(ValidationError, match=r"review\.date"):
        ladder(review={"kind": "fixed"})


# --- upgrades and reviews -------------------------------------------------------------------


def gold_since(moment: datetime, rungs: TierLadder, zone: Any = UTC) -> TierState:
    state, change = domain.upgrade(
        rungs, domain.entry_state(rungs), {"spend": 5_000}, moment, zone, "p1"
    )
    assert change is not None and (change.from_tier, change.to_tier) == ("base", "gold")
    return state


def test_upgrade_sets_an_anniversary_review_and_leap_days_fall_on_the_28th() -> None:
    state = gold_since(at(2024, 2, 29, 12), ladder())
    assert state.review_on == date(2025, 2, 28)
    assert (state.achieved_from, state.achieved_by) == ("base", "p1")


def test_upgrade_date_is_the_local_date() -> None:
    # 31 Dec 23:30 UTC is 1 January in Moscow: the review is on 1 January next year.
    state = gold_since(at(2025, 12, 31, 23, 30), ladder(), MOSCOW)
    assert state.review_on == date(2027, 1, 1)


def test_fixed_review_dates() -> None:
    fixed = ladder(review={"kind": "fixed", "date": "03-31"})
    assert domain.next_review(fixed, date(2026, 3, 30)) == date(2026, 3, 31)
    assert domain.next_review(fixed, date(2026, 3, 31)) == date(2027, 3, 31)
    leap = ladder(review={"kind": "fixed", "date": "02-29"})
    assert domain.next_review(leap, date(2025, 1, 1)) == date(2025, 2, 28)
    assert domain.next_review(leap, date(2027, 6, 1)) == date(2028, 2, 29)


def test_no_downgrade_outside_a_review() -> None:
    rungs = ladder()
    state = gold_since(at(2026, 1, 1), rungs)
    same, change = domain.upgrade(rungs, state, {"spend": 0}, at(2026, 6, 1), UTC)
    assert (same, change) == (state, None)


def test_review_keeps_a_tier_still_qualified_for() -> None:
    rungs = ladder()
    state = gold_since(at(2026, 1, 1), rungs)
    after, change, outcome = domain.review(rungs, state, {"spend": 5_000}, UTC)
    assert (after.tier, change, outcome) == ("gold", None, "kept")
    assert after.review_on == date(2028, 1, 1)


@pytest.mark.parametrize(("mode", "expected"), [("requalify", "base"), ("one_step", "gold")])
def test_review_downgrade_options(mode: str, expected: str) -> None:
    rungs = ladder(downgrade={"mode": mode})
    state, _ = domain.upgrade(
        rungs, domain.entry_state(rungs), {"spend": 20_000}, at(2026, 1, 1), UTC
    )
    after, change, outcome = domain.review(rungs, state, {"spend": 0}, UTC)
    assert (after.tier, outcome) == (expected, "downgraded")
    assert change is not None and change.reason == "review"
    assert change.at == at(2027, 1, 1)
    assert after.review_on == (None if expected == "base" else date(2028, 1, 1))


def test_one_step_never_drops_below_what_the_member_qualifies_for() -> None:
    rungs = ladder(downgrade={"mode": "one_step"})
    state, _ = domain.upgrade(
        rungs, domain.entry_state(rungs), {"spend": 20_000}, at(2026, 1, 1), UTC
    )
    after, _, _ = domain.review(rungs, state, {"spend": 6_000}, UTC)
    assert after.tier == "gold"


def test_grace_keeps_the_tier_then_requalifies() -> None:
    rungs = ladder(downgrade={"mode": "grace", "grace_days": 90})
    state = gold_since(at(2026, 1, 1), rungs)
    graced, change, outcome = domain.review(rungs, state, {"spend": 0}, UTC)
    assert (graced.tier, change, outcome) == ("gold", None, "grace")
    assert graced.grace_until == graced.review_on == date(2027, 4, 1)
    recovered, _, outcome = domain.review(rungs, graced, {"spend": 5_000}, UTC)
    assert (recovered.tier, recovered.grace_until, outcome) == ("gold", None, "kept")
    dropped, change, outcome = domain.review(rungs, graced, {"spend": 1_000}, UTC)
    assert (dropped.tier, outcome) == ("silver", "downgraded")


def test_a_manual_tier_is_a_floor_until_it_ends() -> None:
    rungs = ladder()
    state = gold_since(at(2026, 1, 1), rungs)
    until = at(2026, 6, 1)
    vip, change = domain.assign_manual(rungs, state, "vip", "press", until, at(2026, 2, 1))
    assert (vip.tier, vip.earned) == ("vip", "gold")
    assert change is not None and change.reason == "manual"
    # A lower manual tier changes nothing: it is a floor, not a demotion.
    same, change = domain.assign_manual(rungs, state, "silver", "oops", None, at(2026, 2, 1))
    assert (same.tier, change) == ("gold", None)
    # The review drops the earned tier, not the floor.
    floor = domain.assign_manual(rungs, state, "platinum", "press", at(2027, 6, 1), at(2026, 2, 1))[
        0
    ]
    after, change, _ = domain.review(rungs, floor, {"spend": 0}, UTC)
    assert (after.tier, after.earned, change) == ("platinum", "base", None)
    ended, change = domain.end_manual(rungs, vip, until)
    assert ended.tier == "gold" and change is not None and change.reason == "manual_ended"


def test_a_return_undoes_only_the_upgrade_its_purchase_brought() -> None:
    rungs = ladder()
    before, _ = domain.upgrade(
        rungs, domain.entry_state(rungs), {"spend": 1_000}, at(2026, 1, 1), UTC, "p0"
    )
    state, _ = domain.upgrade(rungs, before, {"spend": 5_000}, at(2026, 2, 1), UTC, "p1")
    assert domain.undo_upgrade(rungs, state, "p0", {"spend": 0}, at(2026, 3, 1), UTC)[1] is None
    undone, change = domain.undo_upgrade(rungs, state, "p1", {"spend": 1_200}, at(2026, 3, 1), UTC)
    assert (undone.tier, change and change.reason) == ("silver", "return")
    # Still qualifying after the return: nothing to undo.
    kept, change = domain.undo_upgrade(rungs, state, "p1", {"spend": 5_000}, at(2026, 3, 1), UTC)
    assert (kept.tier, change) == ("gold", None)
    off = ladder(returns_undo_upgrade=False)
    assert domain.undo_upgrade(off, state, "p1", {"spend": 0}, at(2026, 3, 1), UTC)[1] is None


def test_requalify_moves_both_ways_and_drops_unknown_tiers() -> None:
    rungs = ladder()
    state = gold_since(at(2026, 1, 1), rungs)
    down, change = domain.requalify(rungs, state, {"spend": 1_000}, at(2026, 5, 1), UTC)
    assert (down.tier, change and change.reason) == ("silver", "requalify")
    ghost = TierState(tier="diamond", earned="diamond", manual_tier="ruby")
    fixed, change = domain.requalify(rungs, ghost, {"spend": 0}, at(2026, 5, 1), UTC)
    assert (fixed.tier, fixed.manual_tier) == ("base", None)
    assert change is not None and change.from_tier == "diamond"


# --- progress -------------------------------------------------------------------------------


def test_money_is_written_from_minor_units() -> None:
    assert money(320_000, "RUB") == "3,200.00 RUB"
    assert money(5, "USD") == "0.05 USD"


def test_progress_says_how_much_more_and_by_when() -> None:
    year = ladder(window={"kind": "calendar_year"})
    state = domain.entry_state(year)
    found = next_tier(year, state, {"spend": 600, "visits": 2}, at(2026, 3, 1), UTC, "RUB")
    assert found is not None
    assert found["message"] == (
        "Spend 4.00 RUB more or make 3 more purchases to reach Silver by 2026-12-31"
    )
    top = TierState(tier="platinum", earned="platinum")
    assert next_tier(year, top, {}, at(2026, 3, 1), UTC, "RUB") is None


def test_review_outlook_names_what_would_be_lost() -> None:
    rungs = ladder()
    state = gold_since(at(2026, 1, 1), rungs)
    outlook = review_outlook(rungs, state, {"spend": 1_000}, UTC)
    assert outlook is not None
    assert (outlook["would_be"], outlook["keeps"]) == ("silver", False)
    assert outlook["loses"] == rungs.levels[2].benefits
    assert review_outlook(rungs, domain.entry_state(rungs), {}, UTC) is None


# --- invariants -----------------------------------------------------------------------------

Step = tuple[str, int]
steps = st.lists(
    st.tuples(
        st.sampled_from(["buy", "review", "manual", "end_manual"]),
        st.integers(min_value=0, max_value=30_000),
    ),
    max_size=30,
)


# The ladder of ``ladder()`` as the test reads it, independently of the tier code: its order,
# and the thresholds that qualify for each tier (any one of them is enough).
ORDER = ["base", "silver", "gold", "platinum", "vip"]


def qualified_for(spend: int, visits: int) -> str:
    if spend >= 20_000:
        return "platinum"
    if spend >= 5_000:
        return "gold"
    if spend >= 1_000 or visits >= 5:
        return "silver"
    return "base"


def best(*tiers: str | None) -> str:
    return max((t for t in tiers if t is not None), key=ORDER.index)


@given(steps)
def test_the_tier_is_always_the_higher_of_earned_and_a_live_floor(events: list[Step]) -> None:
    """Purchases, reviews (one step down at most) and manual tiers with an end, checked
    against the test's own bookkeeping: the earned tier, the manual floor while it lasts,
    and the member's tier as the higher of the two on the ladder's order."""
    rungs = ladder(downgrade={"mode": "one_step"})
    state = domain.entry_state(rungs)
    moment = at(2026, 1, 1)
    earned, floor, floor_until = "base", None, None
    reviewed = False  # whether a review is due: from the first upgrade on, until back at base
    for kind, value in events:
        moment += timedelta(days=40)
        spend, visits = value, value % 7
        metrics = {"spend": spend, "visits": visits}
        if kind == "buy":
            state, _ = domain.upgrade(rungs, state, metrics, moment, UTC)
            reviewed = reviewed or best(earned, qualified_for(spend, visits)) != earned
            earned = best(earned, qualified_for(spend, visits))
        elif kind == "review" and reviewed:
            assert state.review_on is not None
            moment = max(moment, datetime.combine(state.review_on, datetime.min.time(), UTC))
            state, _, _ = domain.review(rungs, state, metrics, UTC)
            reached = qualified_for(spend, visits)
            # Kept or raised when still qualified; otherwise one step down (the earned tier is
            # never VIP, so the step is to a qualifying tier), never below what is reached.
            if ORDER.index(reached) >= ORDER.index(earned):
                earned = reached
            else:
                earned = best(reached, ORDER[ORDER.index(earned) - 1])
                reviewed = earned != "base"
        elif kind == "manual":
            floor = ORDER[value % len(ORDER)]
            floor_until = moment + timedelta(days=60)
            state, _ = domain.assign_manual(rungs, state, floor, "r", floor_until, moment)
        elif kind == "end_manual":
            floor = floor_until = None
            state, _ = domain.end_manual(rungs, state, moment)
        # Whatever touches the member first ends a manual tier whose end has passed.
        state, _ = domain.expire_manual(rungs, state, moment)
        if floor_until is not None and moment >= floor_until:
            floor = floor_until = None
        assert (state.earned, state.manual_tier, state.manual_until) == (earned, floor, floor_until)
        assert state.tier == best(earned, floor)
        assert (state.review_on is not None) == reviewed
        assert earned != "vip"


def test_a_tier_condition_must_name_tiers_of_the_ladder() -> None:
    from kopilka.programs.schemas import ProgramSettings

    rule = {
        "id": "gold-bonus",
        "conditions": [{"type": "any", "conditions": [{"type": "tier", "tiers": ["gld"]}]}],
        "effects": [{"type": "points", "amount": 10}],
    }
    with pytest.raises(ValidationError, match=r"not on the ladder \['gld'\]"):
        ProgramSettings.model_validate({"rules": [rule], "tiers": ladder().model_dump()})
    rule["conditions"][0]["conditions"][0]["tiers"] = ["gold"]  # type: ignore[index]
    ProgramSettings.model_validate({"rules": [rule], "tiers": ladder().model_dump()})


def test_every_ladder_in_the_docs_is_valid() -> None:
    import re
    from pathlib import Path

    import yaml

    from kopilka.programs.schemas import ProgramSettings

    text = (Path(__file__).parents[2] / "docs" / "tiers.md").read_text("utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    ladders = [b["tiers"] for b in blocks if "tiers" in b]
    assert len(ladders) == 4
    for found in ladders:
        TierLadder.model_validate(found)
    rules = next(b for b in blocks if "rules" in b)
    base = [{"id": "base", "type": "per_amount", "points": 1, "per": 100}]
    ProgramSettings.model_validate({"earning": base, "rules": rules["rules"], "tiers": ladders[0]})


def test_a_review_that_keeps_the_tier_confirms_it_against_later_returns() -> None:
    rungs = ladder()
    state = gold_since(at(2026, 1, 1), rungs)
    kept, _, _ = domain.review(rungs, state, {"spend": 5_000}, UTC)
    assert kept.achieved_by is None
    after, change = domain.undo_upgrade(rungs, kept, "p1", {"spend": 0}, at(2027, 2, 1), UTC)
    assert (after.tier, change) == ("gold", None)


def test_tenure_counts_months_on_the_programs_calendar() -> None:
    joined = datetime(2025, 3, 1, 0, 30, tzinfo=UTC)
    # 20:00 on 28 February in New York is already 1 March, 01:00, on a UTC program's calendar.
    end = datetime(2026, 2, 28, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    assert domain.measure(ladder(), [], joined, end, UTC)["tenure_months"] == 12
