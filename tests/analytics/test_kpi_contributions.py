"""The per-day and per-month sums of members give, for any day and any range of months,
what counting the members one by one gives; and adding the difference of a change to the
sums of the members before it gives the sums of the members after it (Hypothesis)."""

from collections import Counter
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from kopilka.analytics.kpi_contributions import (
    MemberState,
    Sums,
    day_number,
    day_of,
    difference,
    months_of,
    spells,
)
from kopilka.analytics.kpis import (
    ACTIVE_WINDOWS,
    BuyerMonthRow,
    TierDayRow,
    buyers_over,
    members_as_of,
    month_index,
    new_buyers,
)

FIRST = date(2025, 11, 1)
DAYS = 200
TIERS = ("", "silver")


@st.composite
def member(draw: st.DrawFn) -> MemberState:
    bought = draw(st.lists(st.integers(0, DAYS - 1), max_size=8, unique=True))
    numbers = sorted(day_number(FIRST) + d for d in bought)
    # A month with two or more purchases: a day bought on twice (the days are distinct).
    twice = {month_index(day_of(n)) for n in numbers if draw(st.booleans())}
    months = {month_index(day_of(n)): month_index(day_of(n)) in twice for n in numbers}
    return MemberState(
        gone=draw(st.booleans()) and draw(st.booleans()),
        tier=draw(st.sampled_from(TIERS)),
        joined=FIRST + timedelta(days=draw(st.integers(0, DAYS - 1))),
        days=tuple(numbers),
        months=months,
        first_day=day_of(numbers[0]) if numbers else None,
    )


def day_rows(sums: Sums) -> list[TierDayRow]:
    return [
        TierDayRow(
            tier,
            day,
            c["joined"],
            c["first_bought"],
            c["active_30"],
            c["active_90"],
        )
        for (day, tier), c in sums.days.items()
    ]


def month_rows(sums: Sums, first: int, last: int) -> list[BuyerMonthRow]:
    """What ``kpi_report_repository.buyer_months`` sums for months ``first..last``."""
    found: dict[int, list[int]] = {}
    for (month, _, previous, following, multi), n in sums.months.items():
        if first <= month <= last:
            row = found.setdefault(month, [0, 0, 0, 0])
            entering = previous < first
            row[0] += n
            row[1] += n if multi else 0
            row[2] += n if entering else 0
            row[3] += n if entering and following > last and not multi else 0
    return [BuyerMonthRow("", month, *row) for month, row in found.items()]


def added(members: list[MemberState]) -> Sums:
    return difference([], members)


@settings(max_examples=150, deadline=None)
@given(st.lists(member(), max_size=12), st.integers(0, DAYS + 100), st.integers(0, 60))
def test_sums_count_what_counting_members_counts(
    members: list[MemberState], end_offset: int, length: int
) -> None:
    sums = added(members)
    end = FIRST + timedelta(days=end_offset)
    start = end - timedelta(days=length)
    counted = members_as_of(day_rows(sums), start, end)
    present = [m for m in members if not m.gone]
    assert counted.participants == sum(m.joined is not None and m.joined <= end for m in present)
    assert counted.new_participants == sum(
        m.joined is not None and start <= m.joined <= end for m in present
    )
    for window in ACTIVE_WINDOWS:
        since = day_number(end) - window + 1
        assert counted.active is not None
        assert counted.active[window] == sum(
            any(since <= d <= day_number(end) for d in m.days)
            for m in present
            if m.joined is not None and m.joined <= end
        )
        assert counted.active[window] <= counted.participants
    assert new_buyers(day_rows(sums), start, end) == sum(
        m.first_day is not None and start <= m.first_day <= end for m in members
    )
    first, last = month_index(start), month_index(end)
    buyers, repeat = buyers_over(month_rows(sums, first, last))
    in_range = [[mo for mo in m.months if first <= mo <= last] for m in members]
    assert buyers == sum(bool(months) for months in in_range)
    assert repeat == sum(
        len(months) > 1 or any(m.months[mo] for mo in months)
        for m, months in zip(members, in_range, strict=True)
    )


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(member(), member()), max_size=8))
def test_a_difference_turns_the_sums_before_into_the_sums_after(
    changes: list[tuple[MemberState, MemberState]],
) -> None:
    before = [old for old, _ in changes]
    after = [new for _, new in changes]
    moved = added(before)
    change = difference(before, after)
    for key, columns in change.days.items():
        moved.days.setdefault(key, Counter()).update(columns)
    moved.months.update(change.months)
    assert moved.nonzero() == added(after).nonzero()


def test_spells_join_purchases_closer_than_the_window() -> None:
    assert spells([10, 20, 45, 100], 30) == [(10, 74), (100, 129)]
    assert spells([10, 40], 30) == [(10, 69)]  # day 40 is the day after 10's last: one spell
    assert spells([], 30) == []


def test_months_of_reads_both_masks() -> None:
    assert months_of([(405, 0b101, 0b100)]) == {24300: False, 24302: True}
