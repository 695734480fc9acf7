"""Liability and breakage, the pure part: point values, months in the program's zone,
expiry buckets, cohorts, the expected rate and merged lots (no database)."""

from datetime import UTC, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from kopilka.analytics import liability
from kopilka.analytics.liability import (
    LotSums,
    MergedLot,
    OpenPoints,
    PointRate,
    after_breakage,
    attribute_merged,
    cohorts,
    expected_breakage,
    hour_of,
    month_of_hour,
    outstanding,
    point_rate,
)
from kopilka.ledger import domain
from kopilka.programs.schemas import ProgramSettings

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


def settings(**fields: object) -> ProgramSettings:
    return ProgramSettings.model_validate(
        {"currencies": [{"code": "points"}, {"code": "bonus"}, {"code": "cash", "kind": "money"}]}
        | fields
    )


def test_a_point_is_worth_the_set_value_else_the_till_s_rate_else_a_hundred() -> None:
    till = {"points_payment": {"points": 10, "money": 50}}
    assert point_rate(settings(), "points") == PointRate(1, 100)
    assert point_rate(settings(**till), "points") == PointRate(10, 50)
    chosen = {"analytics": {"point_value": {"points": 2, "money": 50}}}
    assert point_rate(settings(**till, **chosen), "points") == PointRate(2, 50)
    assert point_rate(settings(), "cash") == PointRate(1, 1)
    assert point_rate(settings(), "bonus") is None  # nothing says what it is worth
    paying_bonus = {"points_payment": {"currency": "bonus", "points": 1, "money": 30}}
    assert point_rate(settings(**paying_bonus), "bonus") == PointRate(1, 30)
    assert point_rate(settings(**paying_bonus), "points") == PointRate(1, 100)
    assert PointRate(3, 100).value(10) == 333  # rounded down


def test_the_last_hour_before_midnight_in_moscow_belongs_to_the_month_before() -> None:
    midnight = datetime.fromisoformat("2026-05-01T00:00:00+03:00")
    assert month_of_hour(hour_of(midnight) - 1, MOSCOW) == "2026-04"
    assert month_of_hour(hour_of(midnight), MOSCOW) == "2026-05"
    assert month_of_hour(hour_of(midnight), ZoneInfo("UTC")) == "2026-04"


def test_outstanding_points_by_expiry_month_with_never_last_and_overdue_counted() -> None:
    april = hour_of(datetime(2026, 4, 30, 20, tzinfo=UTC))
    past = hour_of(datetime(2026, 4, 1, 5, tzinfo=UTC))
    rows = [
        OpenPoints("points", None, 70, 0),
        OpenPoints("points", april, 100, 30),
        OpenPoints("points", past, 5, 0),
    ]
    found = outstanding(rows, PointRate(2, 50), MOSCOW, NOW)
    assert (found.points, found.pending, found.overdue) == (175, 30, 5)
    assert [(m.month, m.points, m.value) for m in found.by_expiry] == [
        ("2026-04", 105, 2_625),
        (None, 70, 1_750),
    ]


def test_a_cohort_is_mature_once_its_month_is_over_and_nothing_is_left() -> None:
    def hour(day: str) -> int:
        return hour_of(datetime.fromisoformat(day + "T12:00:00+00:00"))

    rows = [
        LotSums("points", hour("2026-01-05"), 1_000, 300, 0),
        LotSums("points", hour("2026-01-25"), 1_000, 100, 0),
        LotSums("points", hour("2026-02-05"), 500, 0, 10),
        LotSums("points", hour("2026-04-02"), 100, 0, 0),  # all spent, but April goes on
    ]
    found = cohorts(rows, MOSCOW, NOW)
    assert [(c.month, c.earned, c.redeemed, c.expired, c.open, c.mature) for c in found] == [
        ("2026-01", 2_000, 1_600, 400, 0, True),
        ("2026-02", 500, 490, 0, 10, False),
        ("2026-04", 100, 100, 0, 0, False),
    ]
    assert found[0].breakage_rate == 0.2
    assert expected_breakage(found).rate == 0.2
    assert expected_breakage(found[1:]).rate is None


def test_the_expected_rate_weighs_the_latest_mature_cohorts_by_what_they_earned() -> None:
    months = [
        liability.Cohort(f"2025-{m:02d}", earned, 0, expired, 0, True, expired / earned)
        for m, earned, expired in ((1, 100, 90), (2, 300, 30), (3, 100, 20))
    ]
    assert expected_breakage(months).rate == pytest.approx(140 / 500)
    latest = expected_breakage(months, limit=2)
    assert latest.months == ["2025-02", "2025-03"] and latest.rate == pytest.approx(50 / 400)


def test_liability_after_breakage_is_rounded_up() -> None:
    assert after_breakage(1_001, 0.5) == 501
    assert after_breakage(1_000, None) == 1_000
    assert after_breakage(0, 0.3) == 0


def test_merged_lots_go_back_to_the_month_their_first_lot_was_earned() -> None:
    """A lot of 300 earned in hour 10 is merged (hour 50) and merged again (hour 90): the
    copies' amounts are not earning; what expired of them and what is left count in hour 10."""
    first, second, third = str(uuid4()), str(uuid4()), str(uuid4())
    rows = [
        LotSums("points", 10, 300, 0, 0),
        LotSums("points", 50, 200 + 40, 0, 0),  # the first copy and a purchase's 40
        LotSums("points", 90, 120, 20, 100),
    ]
    merged = [
        MergedLot(second, first, "points", 50, 200, 0, 0),
        MergedLot(third, second, "points", 90, 120, 20, 100),
    ]
    assert attribute_merged(rows, merged, {first: 10}) == [
        LotSums("points", 10, 300, 20, 100),
        LotSums("points", 50, 40, 0, 0),
    ]


def test_expiry_counts_what_ran_out_of_each_lot() -> None:
    expires = datetime(2026, 3, 1, tzinfo=UTC)
    lots = [
        domain.Lot(uuid4(), 100, 40, "available", NOW, NOW, expires),
        domain.Lot(uuid4(), 50, 50, "available", NOW, NOW, None),
    ]
    balance = domain.Balance(available=90)
    postings = domain.expire(balance, lots, NOW)
    assert [p.amount for p in postings] == [-40, 40]
    assert [(lot.remaining, lot.expired) for lot in lots] == [(0, 40), (50, 0)]
