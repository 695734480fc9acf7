"""Liability and breakage on a hand-made ledger: lots earned in three months (and one more
in the current month), some spent, some expired, the figures worked out by hand.

The program is in Moscow (UTC+3), points expire at the end of the month after the month of
earning, and a point is worth 25 kopecks (``point_value`` 2 points = 50 kopecks):

=========  =====================================  ======  ========================================
month      what happens (UTC)                     points  fate
=========  =====================================  ======  ========================================
January    Anna buys on 10 Jan                    1,000   600 spent on 5 Feb, 400 expire 1 Mar
January    Boris buys on 20 Jan                     500   expire on 1 Mar
February   Boris buys on 31 Jan 22:30 (1 Feb in     300   spent on 10 Mar
           Moscow)
February   Anna buys on 10 Feb                      200   expire on 1 Apr
March      Clara buys on 5 Mar                      800   open, last day 30 April
March      Anna buys on 20 Mar                      100   50 spent on 5 Apr, 50 open (30 April)
April      Boris buys on 8 Apr                      150   open, last day 31 May
=========  =====================================  ======  ========================================

As of 10 April: January earned 1,500, redeemed 600, expired 900 (mature, 60 %); February
earned 500, redeemed 300, expired 200 (mature, 40 %); March earned 900, redeemed 50, open
850; April (this month) 150 open. Expected breakage: (900 + 200) ÷ (1,500 + 500) = 55 %.
Outstanding: 850 points last spendable in April, 150 in May: 1,000 points worth 25,000
kopecks; after breakage 25,000 × 0.45 = 11,250.
"""

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.liability_service import liability_service
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.ledger.audit import verify
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
COHORTS = [
    ("2026-01", 1_500, 600, 900, 0, True),
    ("2026-02", 500, 300, 200, 0, True),
    ("2026-03", 900, 50, 0, 850, False),
    ("2026-04", 150, 0, 0, 150, False),
]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def build(
    engine: AsyncEngine, api: Api
) -> tuple[ProgramContext, Api, dict[str, dict[str, Any]]]:
    program = await make_program(
        engine,
        timezone="Europe/Moscow",
        expiry={"policy": "end_of_month", "months": 1},
        analytics={"point_value": {"points": 2, "money": 50}},
    )
    own = Api(api.client, await make_key(engine, program, "admin"))
    people: dict[str, dict[str, Any]] = {}
    with clock.frozen(at("2026-01-01T00:00")):
        for name in ("Anna", "Boris", "Clara"):
            body = member_body(name=name)
            created = await own.post("/v1/members", body)
            assert created.status_code == 201, created.text
            people[name] = {"id": created.json()["id"], "external_id": body["external_id"]}

    async def buy(name: str, when: str, points: int) -> None:
        with clock.frozen(at(when)):
            body = purchase_body(people[name]["external_id"], points * 100, occurred_at=when + "Z")
            sold = await own.post("/v1/purchases", body)
            assert sold.status_code in (200, 201), sold.text

    async def spend(name: str, when: str, points: int) -> None:
        with clock.frozen(at(when)):
            spent = await own.post(
                "/v1/redemptions", {"member": {"id": people[name]["id"]}, "amount": points}
            )
            assert spent.status_code == 201, spent.text

    async def expire(when: str) -> None:
        with clock.frozen(at(when)):
            await tasks.expire_points(engine, program.id, at(when))

    await buy("Anna", "2026-01-10T10:00", 1_000)
    await buy("Boris", "2026-01-20T10:00", 500)
    await buy("Boris", "2026-01-31T22:30", 300)
    await spend("Anna", "2026-02-05T10:00", 600)
    await buy("Anna", "2026-02-10T10:00", 200)
    await expire("2026-03-01T00:00")
    await buy("Clara", "2026-03-05T10:00", 800)
    await spend("Boris", "2026-03-10T10:00", 300)
    await buy("Anna", "2026-03-20T10:00", 100)
    await expire("2026-04-01T00:00")
    await spend("Anna", "2026-04-05T10:00", 50)
    await buy("Boris", "2026-04-08T10:00", 150)
    return program, own, people


def cohort_rows(report: Any) -> list[tuple[str, int, int, int, int, bool]]:
    points = next(c for c in report.currencies if c.currency == "points")
    return [(c.month, c.earned, c.redeemed, c.expired, c.open, c.mature) for c in points.cohorts]


async def test_liability_and_breakage_match_the_hand_worked_ledger(
    engine: AsyncEngine, api: Api
) -> None:
    program, own, _ = await build(engine, api)
    async with reading(engine) as conn:
        report = await liability_service.report(conn, program, NOW)
        totals = await liability_service.totals(conn, program, NOW)
        assert all(not problems for problems in (await verify(conn, program.id)).values())
    points = next(c for c in report.currencies if c.currency == "points")
    assert [(m.month, m.points, m.value) for m in points.by_expiry] == [
        ("2026-04", 850, 21_250),
        ("2026-05", 150, 3_750),
    ]
    assert (points.outstanding_points, points.pending_points, points.overdue_points) == (
        1_000,
        0,
        0,
    )
    assert points.outstanding_value == 25_000
    assert cohort_rows(report) == COHORTS
    assert [c.breakage_rate for c in points.cohorts] == [0.6, 0.4, None, None]
    assert points.breakage.months == ["2026-01", "2026-02"]
    assert points.breakage.rate == pytest.approx(0.55)
    assert points.liability_after_breakage == 11_250
    assert (
        totals.outstanding_points,
        totals.outstanding_value,
        totals.liability_after_breakage,
    ) == (1_000, 25_000, 11_250)
    assert totals.breakage_rate == pytest.approx(0.55)
    # The cashback currency holds nothing: no value owed, no cohort, no rate.
    cashback = next(c for c in report.currencies if c.currency == "cashback")
    assert (cashback.outstanding_value, cashback.cohorts, cashback.breakage.rate) == (0, [], None)

    # Only the latest mature cohort: February's 40 %.
    with clock.frozen(NOW):
        answer = await own.get("/v1/analytics/liability", cohorts=1)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    main = next(c for c in body["currencies"] if c["currency"] == "points")
    assert main["breakage"] == {"rate": 0.4, "months": ["2026-02"], "earned": 500, "expired": 200}
    assert main["liability_after_breakage"] == 15_000
    assert main["point_value"] == {"points": 2, "money": 50}


async def test_points_moved_by_a_merge_stay_in_the_month_they_were_earned(
    engine: AsyncEngine, api: Api
) -> None:
    """Clara's 800 March points move to Boris's profile on 9 April as a new lot: March
    still earned them (and still holds them), April earned nothing more."""
    program, own, people = await build(engine, api)
    with clock.frozen(at("2026-04-09T10:00")):
        merged = await own.post(
            f"/v1/members/{people['Boris']['id']}/merge",
            {"merged": people["Clara"]["id"], "reason": "same person"},
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["points_moved"] == {"points": 800}
    async with reading(engine) as conn:
        report = await liability_service.report(conn, program, NOW)
    assert cohort_rows(report) == COHORTS
    points = next(c for c in report.currencies if c.currency == "points")
    assert [(m.month, m.points) for m in points.by_expiry] == [("2026-04", 850), ("2026-05", 150)]


async def test_no_mature_cohort_means_no_breakage_assumed(
    engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    body = member_body()
    with clock.frozen(NOW):
        created = await api.post("/v1/members", body)
        assert created.status_code == 201, created.text
        sold = await api.post(
            "/v1/purchases", purchase_body(body["external_id"], 12_345, occurred_at=NOW.isoformat())
        )
        assert sold.status_code in (200, 201), sold.text
    async with reading(engine) as conn:
        totals = await liability_service.totals(conn, program, NOW)
    # 123 points that never expire, 1 point = 100 kopecks by default; nothing is mature.
    assert totals.outstanding_points == 123 and totals.outstanding_value == 12_300
    assert totals.breakage_rate is None and totals.liability_after_breakage == 12_300


async def test_a_bad_cohort_count_is_refused_naming_it(api: Api) -> None:
    for cohorts in ("0", "121", "true", "1.5"):
        answer = await api.get("/v1/analytics/liability", cohorts=cohorts)
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] in ("cohorts", "query.cohorts"), cohorts
