"""Members entering journeys on their dates and on a schedule (the daily job), and a
webhook step's event (SQLite and PostgreSQL)."""

from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.journeys.tasks import enter_daily
from kopilka.kit.clock import clock
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from tests.journeys.support import T0, Setup, setup

LADDER = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "gold", "name": "Gold", "invitation_only": True},
    ]
}


async def daily(s: Setup, today: date, now: datetime) -> int:
    with clock.frozen(now):
        return (await enter_daily(s.engine, s.program.id, now, today)).entered


async def test_birthdays_three_days_ahead_with_a_bonus_by_tier(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http, tiers=LADDER)
    key = await s.journey(
        {
            "name": "Birthday",
            "entry": {"type": "date", "field": "birthday", "offset_days": -3, "at": "10:00"},
            "steps": [
                {
                    "id": "by-tier",
                    "type": "branch",
                    "condition": {"type": "tier", "tiers": ["gold"]},
                    "then": "gold",
                },
                {"id": "base", "type": "points", "amount": 100},
                {"id": "end", "type": "exit"},
                {"id": "gold", "type": "points", "amount": 300},
            ],
        }
    )
    soon = await s.member(birthday="1990-05-07")
    gold = await s.member(birthday="1985-05-07")
    later = await s.member(birthday="1990-05-08")
    with clock.frozen(T0):
        raised = await s.api.post(
            f"/v1/members/{gold}/tier/manual", {"tier": "gold", "reason": "VIP guest"}
        )
    assert raised.status_code in (200, 201), raised.text
    today = date(2026, 5, 4)
    early = datetime(2026, 5, 4, 0, 30, tzinfo=UTC)  # 03:30 in Moscow: before 10:00
    assert await daily(s, today, early) == 2
    assert await daily(s, today, early) == 0  # the job again the same day: nothing twice
    await s.advance(early + timedelta(hours=1))  # not yet 10:00 in Moscow
    assert await s.balance(soon) == 0
    await s.advance(datetime(2026, 5, 4, 7, 0, tzinfo=UTC))  # 10:00 in Moscow
    assert (await s.balance(soon), await s.balance(gold), await s.balance(later)) == (100, 300, 0)
    runs = await s.runs(key)
    assert {r["member_id"] for r in runs} == {soon, gold}


async def test_leap_day_birthdays_and_anniversaries_of_joining(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    leap = await s.journey(
        {
            "name": "Birthday",
            "entry": {"type": "date", "field": "birthday"},
            "steps": [{"id": "gift", "type": "points", "amount": 1}],
        }
    )
    anniversary = await s.journey(
        {
            "name": "A year with us",
            "entry": {"type": "date", "field": "joined"},
            "steps": [{"id": "gift", "type": "points", "amount": 2}],
        }
    )
    born_leap = await s.member(birthday="2000-02-29")
    # Joined on 28 February 2026 at 23:30 in Moscow (20:30 UTC), and a day later.
    joined = await s.member(at=datetime(2026, 2, 28, 20, 30, tzinfo=UTC))
    await s.member(at=datetime(2026, 2, 28, 21, 30, tzinfo=UTC))  # 1 March in Moscow
    now = datetime(2027, 2, 28, 5, 0, tzinfo=UTC)
    assert await daily(s, date(2027, 2, 28), now) == 2
    assert [r["member_id"] for r in await s.runs(leap)] == [born_leap]
    assert [r["member_id"] for r in await s.runs(anniversary)] == [joined]


async def test_a_weekly_schedule_over_a_segment(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    members = [await s.member() for _ in range(3)]
    with clock.frozen(T0):
        made = await s.api.post(
            "/v1/segments", {"key": "regulars", "name": "Regulars", "kind": "static"}
        )
        assert made.status_code == 201, made.text
        listed = await s.api.post("/v1/segments/regulars/list", {"members": members[:2]})
        assert listed.status_code == 200, listed.text
    key = await s.journey(
        {
            "name": "Monday news",
            "entry": {"type": "schedule", "segment": "regulars", "every": "week", "weekday": 1},
            "steps": [{"id": "gift", "type": "points", "amount": 5}],
        }
    )
    monday, tuesday = date(2026, 5, 4), date(2026, 5, 5)
    assert await daily(s, tuesday, T0 + timedelta(days=1)) == 0
    assert await daily(s, monday, T0) == 2
    assert sorted(r["member_id"] for r in await s.runs(key)) == sorted(members[:2])


async def test_a_webhook_step_emits_its_event(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    s = await setup(engine, http)
    key = await s.journey(
        {
            "name": "Tell the CRM",
            "entry": {"type": "event", "event": "member.registered"},
            "steps": [{"id": "hook", "type": "webhook", "data": {"list": "newcomers"}}],
        }
    )
    member = await s.member()
    await s.deliver()
    await s.advance(T0)
    outbox = table(OutboxEvent)
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox.c.payload).where(
                outbox.c.program_id == s.program.id, outbox.c.topic == "journey.webhook"
            )
        )
        payloads = [r[0] for r in rows]
    assert len(payloads) == 1
    assert payloads[0]["journey"] == key and payloads[0]["data"] == {"list": "newcomers"}
    assert payloads[0]["step"] == "hook"
    del member
