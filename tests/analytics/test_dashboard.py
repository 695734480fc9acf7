"""The dashboard's figures, checked against a data set worked out by hand."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.dashboard import dashboard_service, local_midnight, week_starts
from kopilka.db import reading
from kopilka.errors import InvalidInput
from kopilka.programs.service import ProgramContext
from tests.analytics.dataset import NOW, build
from tests.conftest import Api


async def test_every_figure_matches_the_hand_worked_data_set(engine: AsyncEngine, api: Api) -> None:
    data = await build(engine, api)
    async with reading(engine) as conn:
        figures = await dashboard_service.dashboard(conn, data.program, NOW, days=30)
        year = await dashboard_service.dashboard(conn, data.program, NOW, days=365)
    assert (figures.members, figures.blocked) == (4, 1)
    assert figures.active == {30: 2, 90: 3}
    flow = figures.flow
    assert (flow.issued, flow.redeemed, flow.expired, flow.adjusted) == (600, 100, 500, 50)
    assert year.flow.issued == 1_100
    assert figures.liability == 550
    assert [w.start for w in figures.weeks][-2:] == [date(2026, 3, 2), date(2026, 3, 9)]
    assert len(figures.weeks) == 12 and figures.weeks[0].start == date(2025, 12, 22)
    by_start = {w.start: (w.purchases, w.revenue, w.average_check) for w in figures.weeks}
    assert by_start[date(2026, 3, 9)] == (2, 40_000, 20_000)
    assert by_start[date(2026, 3, 2)] == (1, 20_000, 20_000)
    assert by_start[date(2026, 1, 19)] == (1, 50_000, 50_000)
    assert by_start[date(2026, 2, 2)] == (0, 0, None)
    assert sum(w.purchases for w in figures.weeks) == 4
    assert [(t.tier, t.members) for t in figures.tiers or []] == [
        ("base", 3),
        ("silver", 0),
        ("vip", 1),
    ]


async def test_another_program_counts_nothing_of_this_one(
    engine: AsyncEngine, api: Api, program: ProgramContext
) -> None:
    await build(engine, api)
    async with reading(engine) as conn:
        empty = await dashboard_service.dashboard(conn, program, NOW, days=365)
    assert (empty.members, empty.active, empty.liability) == (0, {30: 0, 90: 0}, 0)
    assert (empty.flow.issued, empty.flow.redeemed, empty.flow.expired) == (0, 0, 0)
    assert empty.tiers is None and all(w.purchases == 0 for w in empty.weeks)


async def test_a_period_other_than_7_30_90_or_365_days_is_refused(
    engine: AsyncEngine, api: Api
) -> None:
    data = await build(engine, api)
    async with reading(engine) as conn:
        with pytest.raises(InvalidInput) as refused:
            await dashboard_service.dashboard(conn, data.program, NOW, days=31)
    assert refused.value.field == "days"


def test_weeks_start_on_monday_midnight_in_the_program_s_zone() -> None:
    starts = week_starts(NOW, "Europe/Moscow")
    assert starts[-1] == date(2026, 3, 9) and all(d.weekday() == 0 for d in starts)
    assert local_midnight(date(2026, 3, 9), "Europe/Moscow") == datetime.fromisoformat(
        "2026-03-08T21:00:00+00:00"
    )
    # Sunday 23:30 in Moscow is still last week there, though Monday already in UTC+5.
    sunday_night = datetime.fromisoformat("2026-03-08T20:30:00+00:00")
    assert week_starts(sunday_night, "Europe/Moscow")[-1] == date(2026, 3, 2)
    assert week_starts(sunday_night, "Asia/Yekaterinburg")[-1] == date(2026, 3, 9)
    assert week_starts(NOW + timedelta(days=5), "UTC")[-1] == date(2026, 3, 16)
