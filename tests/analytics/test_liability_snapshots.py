"""Daily liability snapshots on the hand-worked ledger of ``test_liability`` (Moscow, UTC+3;
as of 10 April 12:00 UTC: 1,000 points outstanding worth 25,000 kopecks, 55 % expected
breakage, 11,250 after it): the stored rows equal the live report, a second run the same
day replaces the day's rows, the KPIs' totals read a snapshot of today or yesterday (in
Moscow) and fall back to the live figures otherwise, the worker's daily job, and the
history over HTTP."""

from datetime import date, time, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.liability import Snapshot
from kopilka.analytics.liability_service import liability_service
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.programs.service import ProgramContext
from kopilka.worker.repository import job_run_repository
from kopilka.worker.scheduler import JOB_NAMES, Scheduler
from tests.analytics.test_liability import NOW, at, build
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body

TODAY = date(2026, 4, 10)  # NOW in Moscow
HISTORY = "/v1/analytics/liability/history"


async def take(engine: AsyncEngine, program: ProgramContext, now: Any) -> list[Snapshot]:
    async with transaction(engine) as conn:
        return await liability_service.snapshot(conn, program, now)


async def stored(engine: AsyncEngine, program: ProgramContext, start: date, end: date) -> list[Any]:
    async with reading(engine) as conn:
        return (await liability_service.history(conn, program, start, end)).snapshots


async def buy(own: Api, person: dict[str, Any], when: str, points: int) -> None:
    with clock.frozen(at(when)):
        body = purchase_body(person["external_id"], points * 100, occurred_at=when + "Z")
        sold = await own.post("/v1/purchases", body)
        assert sold.status_code in (200, 201), sold.text


def figures(row: Snapshot) -> tuple[Any, ...]:
    return (
        row.outstanding_points,
        row.pending_points,
        row.overdue_points,
        row.outstanding_value,
        row.breakage_rate,
        row.liability_after_breakage,
    )


async def test_a_snapshot_stores_the_live_figures_once_a_day(engine: AsyncEngine, api: Api) -> None:
    program, own, people = await build(engine, api)
    taken = await take(engine, program, NOW)
    async with reading(engine) as conn:
        report = await liability_service.report(conn, program, NOW)
    live = {
        c.currency: (
            c.outstanding_points,
            c.pending_points,
            c.overdue_points,
            c.outstanding_value,
            c.breakage.rate,
            c.liability_after_breakage,
        )
        for c in report.currencies
    }
    rows = await stored(engine, program, TODAY, TODAY)
    assert rows == sorted(taken, key=lambda r: r.currency)
    assert {r.currency: figures(r) for r in rows} == live
    assert live["points"] == (1_000, 0, 0, 25_000, pytest.approx(0.55), 11_250)
    assert {(r.day, r.taken_at) for r in rows} == {(TODAY, NOW)}

    # 20:30 UTC is 23:30 in Moscow: still 10 April, so the day's rows are replaced.
    await buy(own, people["Boris"], "2026-04-10T18:00", 200)
    evening = at("2026-04-10T20:30")
    await take(engine, program, evening)
    rows = await stored(engine, program, TODAY, TODAY)
    assert [(r.currency, r.day, r.taken_at) for r in rows] == [
        ("cashback", TODAY, evening),
        ("points", TODAY, evening),
    ]
    assert figures(rows[1])[:4] == (1_200, 0, 0, 30_000)
    # 21:30 UTC is already 11 April in Moscow: a row of its own.
    await take(engine, program, at("2026-04-10T21:30"))
    assert [r.day for r in await stored(engine, program, TODAY, TODAY + timedelta(days=1))] == [
        TODAY,
        TODAY,
        TODAY + timedelta(days=1),
        TODAY + timedelta(days=1),
    ]


async def test_kpi_totals_read_a_snapshot_of_today_or_yesterday_else_the_live_figures(
    engine: AsyncEngine, api: Api
) -> None:
    program, own, people = await build(engine, api)
    await take(engine, program, NOW)
    # Lots change after the snapshot: the live figures move, the snapshot's do not.
    await buy(own, people["Boris"], "2026-04-10T13:00", 200)

    async def kpi(now: str) -> Any:
        async with reading(engine) as conn:
            return await liability_service.kpi_totals(conn, program, at(now))

    snapshot = (1_000, 25_000, pytest.approx(0.55), 11_250, NOW)
    live_after = (1_200, 30_000, pytest.approx(0.55), 13_500)
    for moment in ("2026-04-10T14:00", "2026-04-11T20:59"):  # Moscow: 10 and 11 April
        totals = await kpi(moment)
        assert (
            totals.outstanding_points,
            totals.outstanding_value,
            totals.breakage_rate,
            totals.liability_after_breakage,
            totals.as_of,
        ) == snapshot, moment
    # 21:00 UTC on 11 April is 12 April in Moscow: the snapshot is two days old.
    for moment in ("2026-04-11T21:00", "2026-04-14T09:00"):
        totals = await kpi(moment)
        assert (
            totals.outstanding_points,
            totals.outstanding_value,
            totals.breakage_rate,
            totals.liability_after_breakage,
        ) == live_after, moment
        assert totals.as_of == at(moment)
    # A snapshot taken after the instant asked about is not used: live figures (of the
    # lots as they stand).
    early = await kpi("2026-04-10T11:00")
    assert (early.outstanding_points, early.as_of) == (1_200, at("2026-04-10T11:00"))
    # The live totals are still the live ones.
    async with reading(engine) as conn:
        live = await liability_service.totals(conn, program, at("2026-04-10T14:00"))
    assert (live.outstanding_points, live.as_of) == (1_200, at("2026-04-10T14:00"))


async def test_a_program_without_a_snapshot_gets_the_live_figures(
    engine: AsyncEngine, program: ProgramContext
) -> None:
    async with reading(engine) as conn:
        totals = await liability_service.kpi_totals(conn, program, NOW)
    assert (totals.outstanding_points, totals.breakage_rate, totals.as_of) == (0, None, NOW)


async def test_the_worker_takes_the_snapshot_daily_after_the_refit(
    engine: AsyncEngine, api: Api
) -> None:
    program, _, _ = await build(engine, api)
    assert JOB_NAMES.index("liability-snapshot") == JOB_NAMES.index("clv-refit") + 1
    assert JOB_NAMES.index("crm-facts") < JOB_NAMES.index("liability-snapshot")
    only = frozenset(JOB_NAMES) - {"liability-snapshot"}
    scheduler = Scheduler(engine, daily_at=time(3, 0), disabled=only)

    async def ours(now: Any) -> list[tuple[str, str, str]]:
        with clock.frozen(now):
            outcomes = await scheduler.run_due()
        return [(o.job, o.outcome, o.detail) for o in outcomes if o.program_id == program.id]

    assert await ours(NOW) == [
        (
            "liability-snapshot",
            "ok",
            "liability of 2026-04-10 stored for points, cashback;"
            " points: 1,000 outstanding, 11,250 after breakage",
        )
    ]
    assert await ours(NOW + timedelta(hours=1)) == []  # done for the day
    # 00:30 in Moscow on 11 April: before 03:00, the day's run is not due yet.
    assert await ours(at("2026-04-10T21:30")) == []
    assert [o[:2] for o in await ours(at("2026-04-11T00:30"))] == [("liability-snapshot", "ok")]
    rows = await stored(engine, program, TODAY, TODAY + timedelta(days=1))
    assert [(r.day, r.currency, r.taken_at) for r in rows] == [
        (TODAY, "cashback", NOW),
        (TODAY, "points", NOW),
        (TODAY + timedelta(days=1), "cashback", at("2026-04-11T00:30")),
        (TODAY + timedelta(days=1), "points", at("2026-04-11T00:30")),
    ]
    async with reading(engine) as conn:
        run = await job_run_repository.get(conn, "liability-snapshot", program.id)
    assert run is not None and (run.period, run.outcome, run.runs) == ("2026-04-11", "ok", 2)


async def test_the_history_over_http(engine: AsyncEngine, api: Api) -> None:
    program, _, _ = await build(engine, api)
    for day in (8, 9, 10):
        await take(engine, program, at(f"2026-04-{day:02d}T12:00"))
    analyst = Api(api.client, await make_key(engine, program, "analyst"))

    answer = await analyst.get(HISTORY, **{"from": "2026-04-08", "to": "2026-04-10"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["start"], body["end"], body["money_currency"], body["timezone"]) == (
        "2026-04-08",
        "2026-04-10",
        "RUB",
        "Europe/Moscow",
    )
    assert [(s["day"], s["currency"]) for s in body["snapshots"]] == [
        (f"2026-04-{day:02d}", currency)
        for day in (8, 9, 10)
        for currency in ("cashback", "points")
    ]
    latest = body["snapshots"][-1]
    assert latest == {
        "day": "2026-04-10",
        "currency": "points",
        "taken_at": "2026-04-10T12:00:00Z",
        "outstanding_points": 1_000,
        "pending_points": 0,
        "overdue_points": 0,
        "outstanding_value": 25_000,
        "breakage_rate": pytest.approx(0.55),
        "liability_after_breakage": 11_250,
    }
    points = await analyst.get(
        HISTORY, **{"from": "2026-04-09", "to": "2026-04-09", "currency": "points"}
    )
    assert [(s["day"], s["currency"]) for s in points.json()["snapshots"]] == [
        ("2026-04-09", "points")
    ]
    # 1,830 days is the longest range.
    longest = await analyst.get(HISTORY, **{"from": "2021-04-07", "to": "2026-04-10"})
    assert longest.status_code == 200, longest.text
    assert len(longest.json()["snapshots"]) == 6

    till = Api(api.client, await make_key(engine, program, "pos"))
    refused = await till.get(HISTORY, **{"from": "2026-04-08", "to": "2026-04-10"})
    assert refused.status_code == 403
    assert (await till.get("/v1/analytics/liability")).status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-04-10", "to": "2026-04-08"}, "from"),
        ({"from": "2021-04-06", "to": "2026-04-10"}, "from"),
        ({"from": "2026-4-8", "to": "2026-04-10"}, "from"),
        ({"from": "2026-04-08", "to": "yesterday"}, "to"),
        ({"from": "2026-02-30", "to": "2026-04-10"}, "from"),
        ({"to": "2026-04-10"}, "from"),
        ({"from": "2026-04-08"}, "to"),
        ({"from": "2026-04-08", "to": "2026-04-10", "currency": "bonus"}, "currency"),
        ({"from": "2026-04-08", "to": "2026-04-10", "currency": ""}, "currency"),
    ],
)
async def test_bad_history_input_is_a_422_naming_the_field_and_changes_nothing(
    engine: AsyncEngine, api: Api, program: ProgramContext, params: dict[str, str], field: str
) -> None:
    await take(engine, program, NOW)
    before = await stored(engine, program, TODAY, TODAY)
    answer = await api.get(HISTORY, **params)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"][0]["field"].removeprefix("query.") == field
    assert await stored(engine, program, TODAY, TODAY) == before


async def test_each_program_sees_only_its_own_history(
    engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    other = await make_program(
        engine,
        currencies=[{"code": "miles"}],
        earning=[
            {"id": "base", "type": "per_amount", "points": 1, "per": 100, "currency": "miles"}
        ],
    )
    await take(engine, program, NOW)
    await take(engine, other, NOW)
    theirs = Api(api.client, await make_key(engine, other, "analyst"))
    week = {"from": "2026-04-04", "to": "2026-04-10"}

    mine = (await api.get(HISTORY, **week)).json()["snapshots"]
    seen = (await theirs.get(HISTORY, **week)).json()["snapshots"]
    assert [s["currency"] for s in mine] == ["cashback", "points"]
    assert [s["currency"] for s in seen] == ["miles"]
    # Another program's currency is not one of this program's.
    refused = await theirs.get(HISTORY, **week, currency="points")
    assert refused.status_code == 422, refused.text
