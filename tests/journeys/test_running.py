"""Journeys run for members (SQLite and PostgreSQL): entering on an event, points, a tag, a
wait, a branch on a segment definition and a coupon, each once; an awaited event with a
time-out; holdouts that receive nothing; versions that keep members in flight on theirs;
pause; re-entry; and a crash half-way that neither loses nor doubles a step."""

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.journeys.runs import journey_runner
from kopilka.kit.clock import clock
from tests.fixtures.factories import purchase_body, unique
from tests.journeys.support import T0, Setup, setup

WELCOME: dict[str, Any] = {
    "name": "Welcome",
    "entry": {"type": "event", "event": "member.registered"},
    "steps": [
        {"id": "gift", "type": "points", "amount": 100, "reason": "welcome"},
        {"id": "mark", "type": "tag", "add": ["welcomed"]},
        {"id": "pause", "type": "wait", "days": 3},
        {
            "id": "check",
            "type": "branch",
            "condition": {"type": "tags", "tags": ["vip"]},
            "then": "vip-bonus",
        },
        {"id": "coupon", "type": "coupon", "campaign": "CAMPAIGN"},
        {"id": "done", "type": "exit"},
        {"id": "vip-bonus", "type": "points", "amount": 500},
    ],
}


async def campaign(s: Setup) -> str:
    key = unique("camp").lower()
    with clock.frozen(T0):
        made = await s.api.post(
            "/v1/coupon-campaigns",
            {"key": key, "name": "Next visit", "discount": {"kind": "percent", "value": 10}},
        )
    assert made.status_code == 201, made.text
    return key


def welcome(campaign_key: str) -> dict[str, Any]:
    steps = [dict(step) for step in WELCOME["steps"]]
    steps[4]["campaign"] = campaign_key
    return {**WELCOME, "steps": steps}


async def test_a_welcome_journey_takes_each_step_once(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    key = await s.journey(welcome(await campaign(s)))
    anna = await s.member(tags=["vip"])
    boris = await s.member()
    await s.deliver()
    await s.deliver()  # delivered again: no second run
    await s.advance(T0)
    assert await s.balance(anna) == 100 and await s.balance(boris) == 100
    # Waiting three days: a day later nothing moves.
    await s.advance(T0 + timedelta(days=1))
    stats = await s.stats(key)
    assert stats["entered"] == 2 and stats["waiting"] == 2 and stats["active"] == 0
    pause = next(step for step in stats["steps"] if step["id"] == "pause")
    assert pause["at_now"] == 2
    await s.advance(T0 + timedelta(days=3, minutes=1))
    await s.advance(T0 + timedelta(days=3, minutes=2))  # again: nothing twice
    assert await s.balance(anna) == 600  # the VIP branch
    assert await s.balance(boris) == 100
    runs = {r["member_id"]: r for r in await s.runs(key)}
    assert {r["status"] for r in runs.values()} == {"exited"}
    stats = await s.stats(key)
    steps = {step["id"]: step for step in stats["steps"]}
    assert steps["gift"]["outcomes"] == {"credited": 2}
    assert steps["check"]["outcomes"] == {"then": 1, "else": 1}
    assert steps["coupon"]["outcomes"] == {"issued": 1}
    assert steps["vip-bonus"]["outcomes"] == {"credited": 1}
    with clock.frozen(T0):
        member = (await s.api.get(f"/v1/members/{boris}")).json()
        detail = await s.api.get(f"/v1/journeys/{key}/runs/{runs[boris]['id']}")
    assert "welcomed" in member["tags"]
    assert [t["step"] for t in detail.json()["steps"]] == [
        "gift",
        "mark",
        "pause",
        "check",
        "coupon",
        "done",
    ]


async def test_a_crash_before_commit_redoes_the_step_once(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    await s.journey(welcome(await campaign(s)))
    member = await s.member()
    await s.deliver()
    # The worker takes the steps and dies before its transaction commits.
    async with engine.connect() as conn:
        await conn.begin()
        with clock.frozen(T0):
            report = await journey_runner.advance(conn, s.program.id, T0)
        assert report.runs == 1
        await conn.rollback()
    assert await s.balance(member) == 0
    await s.advance(T0)
    await s.advance(T0)
    assert await s.balance(member) == 100


async def test_holdout_members_get_nothing_and_their_goal_still_counts(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        "name": "Win back",
        "entry": {"type": "event", "event": "member.registered"},
        "holdout_percent": 50,
        "goal": {"event": "purchase.recorded", "within_days": 14},
        "steps": [{"id": "gift", "type": "points", "amount": 50}],
    }
    key = await s.journey(document)
    members = [await s.member() for _ in range(24)]
    await s.deliver()
    await s.advance(T0)
    runs = {r["member_id"]: r for r in await s.runs(key)}
    held = [m for m in members if runs[m]["status"] == "held_out"]
    treated = [m for m in members if runs[m]["status"] != "held_out"]
    assert held and treated
    for m in held:
        assert await s.balance(m) == 0
    for m in treated:
        assert await s.balance(m) == 50
    # Everyone buys a day later; one held-out member buys after the goal's window.
    late = held[0]
    for m in members:
        when = T0 + timedelta(days=20 if m == late else 1)
        body = purchase_body("-", 10_000, occurred_at=when.isoformat())
        body["member"] = {"id": m}
        with clock.frozen(when):
            assert (await s.api.post("/v1/purchases", body)).status_code == 201
    await s.deliver()
    stats = await s.stats(key)
    assert stats["entered"] == len(treated) and stats["held_out"] == len(held)
    assert stats["conversion"] == 1.0
    assert stats["holdout_conversion"] == (len(held) - 1) / len(held)
    assert stats["uplift"] is not None and stats["uplift_interval"]["low"] < stats["uplift"]


async def test_waiting_for_an_event_moves_on_it_or_times_out(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        "name": "First purchase",
        "entry": {"type": "event", "event": "member.registered"},
        "steps": [
            {
                "id": "await",
                "type": "wait",
                "event": "purchase.recorded",
                "timeout_days": 7,
                "on_timeout": "nudge",
            },
            {"id": "thanks", "type": "points", "amount": 30},
            {"id": "end", "type": "exit"},
            {"id": "nudge", "type": "tag", "add": ["no-first-purchase"]},
        ],
    }
    key = await s.journey(document)
    buyer, idle = await s.member(), await s.member()
    await s.deliver()
    await s.advance(T0)
    body = purchase_body("-", 10_000, occurred_at=(T0 + timedelta(days=2)).isoformat())
    body["member"] = {"id": buyer}
    with clock.frozen(T0 + timedelta(days=2)):
        assert (await s.api.post("/v1/purchases", body)).status_code == 201
    await s.deliver()
    await s.advance(T0 + timedelta(days=2))
    await s.advance(T0 + timedelta(days=8))
    assert await s.balance(buyer) == 30 + 100  # the journey's 30 and the purchase's own
    with clock.frozen(T0):
        tags = (await s.api.get(f"/v1/members/{idle}")).json()["tags"]
    assert tags == ["no-first-purchase"]
    steps = {step["id"]: step for step in (await s.stats(key))["steps"]}
    assert steps["await"]["outcomes"] == {"waiting": 2, "timed_out": 1}


async def test_members_in_flight_finish_on_their_version(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        "name": "Two steps",
        "entry": {"type": "event", "event": "member.registered"},
        "steps": [
            {"id": "pause", "type": "wait", "days": 1},
            {"id": "gift", "type": "points", "amount": 10},
        ],
    }
    key = await s.journey(document)
    early = await s.member()
    await s.deliver()
    await s.advance(T0)
    changed = {**document, "steps": [document["steps"][0], {**document["steps"][1], "amount": 20}]}
    with clock.frozen(T0):
        assert (
            await s.api.put(f"/v1/journeys/{key}/draft", {"document": changed})
        ).status_code == 200
        assert (await s.api.post(f"/v1/journeys/{key}/publish")).json()["version"] == 2
    late = await s.member()
    await s.deliver()
    await s.advance(T0)
    await s.advance(T0 + timedelta(days=2))
    assert await s.balance(early) == 10 and await s.balance(late) == 20


async def test_the_stats_count_each_versions_steps_under_its_version(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    first = {
        "name": "Two steps",
        "entry": {"type": "event", "event": "member.registered"},
        "steps": [
            {"id": "pause", "type": "wait", "days": 1},
            {"id": "gift", "type": "points", "amount": 10},
        ],
    }
    key = await s.journey(first)
    await s.member()
    await s.deliver()
    await s.advance(T0)
    # Version 2 keeps the id "gift" for another step and drops the wait.
    second = {**first, "steps": [{"id": "gift", "type": "points", "amount": 20}]}
    with clock.frozen(T0):
        assert (await s.api.put(f"/v1/journeys/{key}/draft", {"document": second})).is_success
        assert (await s.api.post(f"/v1/journeys/{key}/publish")).json()["version"] == 2
    await s.member()
    await s.deliver()
    await s.advance(T0)
    await s.advance(T0 + timedelta(days=2))  # the first member finishes on version 1
    stats = await s.stats(key)
    assert stats["version"] == 2
    assert [(x["id"], x["taken"], x["outcomes"]) for x in stats["steps"]] == [
        ("gift", 1, {"credited": 1})
    ]
    assert (stats["entered"], stats["exited"]) == (2, 2)  # every version's runs
    [earlier] = stats["versions"]
    assert (earlier["version"], earlier["entered"], earlier["held_out"]) == (1, 1, 0)
    assert [(x["id"], x["outcomes"]) for x in earlier["steps"]] == [
        ("pause", {"waiting": 1}),
        ("gift", {"credited": 1}),
    ]


async def test_a_paused_journey_neither_enters_nor_moves(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    s = await setup(engine, http)
    document = {
        "name": "Pause me",
        "entry": {"type": "event", "event": "member.registered"},
        "reentry": {"policy": "once"},
        "steps": [
            {"id": "pause", "type": "wait", "hours": 1},
            {"id": "gift", "type": "points", "amount": 10},
        ],
    }
    key = await s.journey(document)
    first = await s.member()
    await s.deliver()
    await s.advance(T0)
    with clock.frozen(T0):
        assert (await s.api.post(f"/v1/journeys/{key}/pause")).json()["status"] == "paused"
    second = await s.member()
    await s.deliver()
    await s.advance(T0 + timedelta(hours=2))
    assert await s.balance(first) == 0
    with clock.frozen(T0):
        assert (await s.api.post(f"/v1/journeys/{key}/resume")).json()["status"] == "active"
    await s.advance(T0 + timedelta(hours=3))
    assert await s.balance(first) == 10 and await s.balance(second) == 0
    assert len(await s.runs(key)) == 1


async def test_an_offer_step_gives_a_boost_the_next_purchase_uses(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """The seeds' "inactive for a month: double points on the next purchase"."""
    s = await setup(engine, http)
    key = await s.journey(
        {
            "name": "Come back: double points",
            "entry": {"type": "event", "event": "member.registered"},
            "steps": [
                {
                    "id": "double",
                    "type": "offer",
                    "kind": "boost",
                    "payload": {"factor_percent": 200},
                    "valid_days": 7,
                    "title": "Double points",
                }
            ],
        }
    )
    member = await s.member()
    await s.deliver()
    await s.advance(T0)
    await s.advance(T0)  # again: one offer
    with clock.frozen(T0):
        offers = (await s.api.get(f"/v1/members/{member}/benefits")).json()["items"]
    assert [(o["kind"], o["status"], o["source"]) for o in offers] == [
        ("boost", "active", "journey")
    ]
    when = T0 + timedelta(days=1)
    body = purchase_body("-", 10_000, occurred_at=when.isoformat())
    body["member"] = {"id": member}
    with clock.frozen(when):
        assert (await s.api.post("/v1/purchases", body)).status_code == 201
        offers = (await s.api.get(f"/v1/members/{member}/benefits")).json()["items"]
    assert offers[0]["status"] == "used"
    assert await s.balance(member) == 200  # 100 points, doubled
    steps = {step["id"]: step for step in (await s.stats(key))["steps"]}
    assert steps["double"]["outcomes"] == {"offered": 1}


async def test_events_from_before_a_journey_was_published_start_nothing(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """A member who registered an hour before the journey was published, their event still
    undelivered (a worker catching up), does not enter; one registered after does."""
    s = await setup(engine, http)
    earlier = await s.member(at=T0 - timedelta(hours=1))
    key = await s.journey({**WELCOME, "steps": [{"id": "gift", "type": "points", "amount": 100}]})
    later = await s.member(at=T0 + timedelta(minutes=1))
    await s.deliver()
    await s.advance(T0 + timedelta(minutes=2))
    assert await s.balance(earlier) == 0 and await s.balance(later) == 100
    assert [r["member_id"] for r in await s.runs(key)] == [later]
