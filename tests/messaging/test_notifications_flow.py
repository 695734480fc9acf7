"""The notifications a program owes, made by the worker from real domain events: a tier
upgrade with the tier's benefits in the member's language, points spent, nothing for a kind
that is off or for an event too old to be news, and the daily reminder of points about to
expire (one per member per expiry date)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.activities.tasks import celebrate_birthdays
from kopilka.kit.clock import clock
from kopilka.messaging.consumers import CONSUMER
from kopilka.messaging.sender import MessageSender
from kopilka.messaging.tasks import remind_expiring
from kopilka.outbox.consumers import registry
from kopilka.programs.service import ProgramContext
from kopilka.worker.runner import Worker
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body, unique
from tests.messaging.test_flow import mailbox, plain, settle
from tests.tiers.test_service import LADDER

T0 = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
async def tiered(engine: AsyncEngine) -> ProgramContext:
    return await make_program(engine, tiers=LADDER, expiry={"policy": "days", "days": 30})


@pytest.fixture
async def tapi(api: Api, engine: AsyncEngine, tiered: ProgramContext) -> Api:
    return Api(api.client, await make_key(engine, tiered, "admin"))


def worker(engine: AsyncEngine) -> Worker:
    consumer = registry.get(CONSUMER)
    assert consumer is not None
    return Worker(engine, [consumer], senders=[MessageSender(engine, {})])


async def inbox_of(api: Api, member_id: str) -> dict[str, dict[str, Any]]:
    items = (await api.get(f"/v1/members/{member_id}/messages")).json()["items"]
    return {m["kind"]: m for m in items}


async def test_a_tier_upgrade_and_points_spent_are_told(tapi: Api, engine: AsyncEngine) -> None:
    external = unique("m")
    with clock.frozen(T0):
        await settle(tapi, quiet_hours=None)
        created = await tapi.post(
            "/v1/members",
            {
                "name": "Ann Lee",
                "email": mailbox("gold"),
                "language": "en",
                "external_id": external,
            },
        )
        anna = created.json()["id"]
        bought = await tapi.post(
            "/v1/purchases", purchase_body(external, 600_000, occurred_at=T0.isoformat())
        )
        assert bought.status_code == 201, bought.text
        assert bought.json()["tier"]["tier"] == "gold"
        spent = await tapi.post("/v1/redemptions", {"member": {"id": anna}, "amount": 21})
        assert spent.status_code in (200, 201), spent.text
        await worker(engine).drain()
    told = await inbox_of(tapi, anna)
    assert set(told) == {"tier_upgraded", "points_spent"}  # points_earned is off by default
    upgraded = told["tier_upgraded"]
    assert upgraded["title"] == "Your new tier: Gold"
    assert "points ×1.5; free delivery;" in upgraded["body"]
    assert plain(told["points_spent"]["title"]) == "21 points spent"
    email = (await tapi.get("/v1/messages", member_id=anna, channel="email")).json()["items"]
    assert {m["kind"] for m in email} == {"tier_upgraded", "points_spent"}
    assert all(m["status"] == "queued" for m in email)


async def test_old_events_and_kinds_turned_off_make_nothing(tapi: Api, engine: AsyncEngine) -> None:
    external = unique("m")
    with clock.frozen(T0):
        await settle(tapi, quiet_hours=None, notifications={"tier_upgraded": {"enabled": False}})
        created = await tapi.post("/v1/members", {"external_id": external, "email": mailbox("x")})
        anna = created.json()["id"]
        late = purchase_body(external, 600_000, occurred_at=(T0 - timedelta(days=3)).isoformat())
        assert (await tapi.post("/v1/purchases", late)).status_code == 201
        spent = await tapi.post("/v1/redemptions", {"member": {"id": anna}, "amount": 5})
        assert spent.status_code in (200, 201)
    with clock.frozen(T0 + timedelta(days=3)):  # the worker was down for three days
        await worker(engine).drain()
    assert await inbox_of(tapi, anna) == {}


async def test_one_reminder_per_member_and_expiry_date(
    tapi: Api, engine: AsyncEngine, tiered: ProgramContext
) -> None:
    external = unique("m")
    with clock.frozen(T0):
        await settle(tapi, quiet_hours=None, expiring_days=7)
        created = await tapi.post(
            "/v1/members", {"external_id": external, "email": mailbox("exp"), "language": "ru"}
        )
        anna = created.json()["id"]
        purchase = purchase_body(external, 40_000, occurred_at=T0.isoformat())
        assert (await tapi.post("/v1/purchases", purchase)).status_code == 201
    expires = T0 + timedelta(days=30)
    early = await remind_expiring(engine, tiered.id, (T0 + timedelta(days=20)).date(), T0)
    assert (early.members, early.messages) == (0, 0)  # 10 days ahead: not yet
    now = T0 + timedelta(days=24)
    with clock.frozen(now):
        first = await remind_expiring(engine, tiered.id, now.date(), now)
    assert first.members == 1 and first.messages == 3  # inbox, e-mail, push (skipped)
    told = (await inbox_of(tapi, anna))["points_expiring"]
    assert plain(told["title"]) == "400 баллов сгорят 2 апреля 2031 г."
    assert "через 6 дней" in plain(told["body"])
    assert expires.date().isoformat() == "2031-04-02"
    for day in (25, 26):
        later = T0 + timedelta(days=day)
        with clock.frozen(later):
            again = await remind_expiring(engine, tiered.id, later.date(), later)
        assert (again.members, again.messages) == (1, 0)  # the same expiry date: told once


BIRTHDAY_RULES = [
    {
        "id": f"{tier}-birthday",
        "trigger": "birthday",
        "conditions": [{"type": "tier", "tiers": [tier]}],
        "effects": [{"type": "points", "amount": amount}],
    }
    for tier, amount in (("gold", 500), ("silver", 200))
]
SPEND_LADDER = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 100_000}},
        {"id": "gold", "name": "Gold", "qualify": {"spend": 500_000}},
    ],
    "window": {"kind": "rolling", "months": 12},
}


async def test_the_birthday_greeting_says_what_this_member_got(
    api: Api, engine: AsyncEngine
) -> None:
    """The seed's example: Gold gets 500 points on the birthday, Silver 200."""
    program = await make_program(engine, tiers=SPEND_LADDER, rules=BIRTHDAY_RULES)
    admin = Api(api.client, await make_key(engine, program, "admin"))
    day = T0.date()
    greeted = {}
    with clock.frozen(T0):
        await settle(admin, quiet_hours=None)
        for tier, spend in (("gold", 600_000), ("silver", 150_000), ("base", 1_000)):
            external = unique("m")
            created = await admin.post(
                "/v1/members",
                {"external_id": external, "birthday": f"1990-{day:%m-%d}", "language": "ru"},
            )
            body = purchase_body(external, spend, occurred_at=T0.isoformat())
            bought = await admin.post("/v1/purchases", body)
            assert bought.status_code == 201, bought.text
            assert (bought.json()["tier"] or {}).get("tier", "base") == tier
            greeted[tier] = created.json()["id"]
        report = await celebrate_birthdays(engine, program.id, day)
        assert report.members == 3
        await worker(engine).drain()
    said = {tier: (await inbox_of(admin, m))["birthday"]["body"] for tier, m in greeted.items()}
    assert plain(said["gold"]).endswith("с днём рождения! В подарок — 500 баллов.")
    assert plain(said["silver"]).endswith("с днём рождения! В подарок — 200 баллов.")
    assert plain(said["base"]).endswith("с днём рождения!")
