"""The ready journey ``examples/journeys/points-expiring.json``: members whose points expire
within 14 days get, at 10:00, one reminder naming the amount, the date and what their points
buy, at most once in 30 days (SQLite and PostgreSQL)."""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.journeys.domain import ReentryPolicy, ScheduleEntry, SendStep, parse_journey
from kopilka.journeys.tasks import enter_daily
from kopilka.kit.clock import clock
from tests.journeys.support import T0, Setup, setup
from tests.messaging.test_flow import plain, settle
from tests.rewards.conftest import new_reward

EXAMPLE = Path(__file__).parents[2] / "examples" / "journeys" / "points-expiring.json"
DAY = date(2026, 5, 24)  # 20 days after T0: points credited at T0 expire in 10 days
EARLY = datetime(2026, 5, 24, 4, 0, tzinfo=UTC)  # 07:00 in Moscow: the daily entries job
TEN = datetime(2026, 5, 24, 7, 0, tzinfo=UTC)  # 10:00 in Moscow: the journey's hour


def document() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return found


def test_the_example_is_a_valid_journey() -> None:
    parsed = parse_journey(document())
    assert isinstance(parsed.entry, ScheduleEntry)
    assert (parsed.entry.segment, parsed.entry.every) == ("points-expiring-14", "day")
    assert parsed.reentry.policy is ReentryPolicy.AFTER_EXIT
    assert parsed.reentry.cooldown_days == 30
    [step] = parsed.steps
    assert isinstance(step, SendStep) and step.kind == "points_expiring"
    assert step.variables == {}  # the amount and the date are each member's own


async def credit(s: Setup, member_id: str, points: int, at: datetime) -> None:
    with clock.frozen(at):
        given = await s.api.post(
            "/v1/adjustments", {"member": {"id": member_id}, "amount": points, "reason": "test"}
        )
    assert given.status_code == 201, given.text


async def daily(s: Setup, today: date, now: datetime) -> int:
    with clock.frozen(now):
        return (await enter_daily(s.engine, s.program.id, now, today)).entered


async def reminders(s: Setup, member_id: str) -> list[dict[str, Any]]:
    with clock.frozen(TEN):
        found = await s.api.get(f"/v1/members/{member_id}/messages")
    assert found.status_code == 200, found.text
    return [m for m in found.json()["items"] if m["kind"] == "points_expiring"]


async def made_for(s: Setup, member_id: str) -> list[tuple[str, str, str | None]]:
    """Every message made for the member: what a failed expectation shows."""
    with clock.frozen(TEN):
        found = await s.api.get("/v1/messages", member_id=member_id)
    return [(m["kind"], m["status"], m.get("error")) for m in found.json()["items"]]


async def test_members_with_points_expiring_get_one_reminder_of_what_they_buy(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http, expiry={"policy": "days", "days": 30})
    with clock.frozen(T0):
        # The journey reminds instead of the built-in daily job, over the same window.
        await settle(
            s.api,
            quiet_hours=None,
            expiring_days=14,
            notifications={"points_expiring": {"enabled": False}},
        )
        segment = await s.api.post(
            "/v1/segments",
            {
                "key": "points-expiring-14",
                "name": "Points expiring within 14 days",
                "definition": {"type": "points_expiring", "within_days": 14},
            },
        )
        assert segment.status_code == 201, segment.text
        await new_reward(s.api, key="coffee", name="Coffee", price=300)
        await new_reward(s.api, key="headphones", name="Headphones", price=1200)
    key = await s.journey(document())
    anna = await s.member(language="en")
    bob = await s.member(language="en")
    await credit(s, anna, 900, T0)  # expires on 3 June
    await credit(s, bob, 900, T0 + timedelta(days=10))  # expires on 13 June: not yet

    assert await daily(s, DAY, EARLY) == 1
    await s.advance(EARLY + timedelta(hours=1))  # 08:00 in Moscow: not yet the hour
    assert await reminders(s, anna) == []
    await s.advance(TEN)
    found = await reminders(s, anna)
    assert len(found) == 1, await made_for(s, anna)
    [told] = found
    assert plain(told["title"]) == "900 points expire on June 3, 2026"
    assert plain(told["body"]).endswith(
        ", 900 points expire on June 3, 2026, in 10 days. Spend them before then. "
        "Your points can buy: Coffee (300 points)."
    )
    assert await reminders(s, bob) == []
    assert [r["member_id"] for r in await s.runs(key)] == [anna]

    # The next day Anna's points still expire within 14 days, but she was told this month.
    next_day = DAY + timedelta(days=1)
    assert await daily(s, next_day, EARLY + timedelta(days=1)) == 0
    await s.advance(TEN + timedelta(days=1))
    assert len(await reminders(s, anna)) == 1
