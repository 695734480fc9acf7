"""A shop program with a tier ladder, members with points, rewards of every kind."""

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.models import OutboxEvent, Reward, RewardRedemption
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, unique
from tests.tiers.test_service import LADDER

rewards_t = table(Reward)
redemptions_t = table(RewardRedemption)
outbox_t = table(OutboxEvent)

# What the campaign of each coupon kind of reward gives.
CAMPAIGN_DISCOUNTS: dict[str, dict[str, Any]] = {
    "discount_coupon": {"kind": "percent", "value": 10},
    "free_product": {"kind": "free_product", "free_sku": "COFFEE-1"},
    "free_delivery": {"kind": "free_delivery"},
}


@pytest.fixture
async def shop(engine: AsyncEngine) -> ProgramContext:
    """A program with the tiers base < silver < gold < vip."""
    return await make_program(engine, tiers=LADDER)


@pytest.fixture
async def sapi(api: Api, engine: AsyncEngine, shop: ProgramContext) -> Api:
    return Api(api.client, await make_key(engine, shop, "admin"))


async def new_member(api: Api, points: int = 0, tier: str | None = None) -> str:
    """A member with ``points`` available (a manual credit), on ``tier`` if given."""
    response = await api.post("/v1/members", member_body())
    assert response.status_code == 201, response.text
    member_id: str = response.json()["id"]
    if points:
        credit = {"member": {"id": member_id}, "amount": points, "reason": "test"}
        response = await api.post("/v1/adjustments", credit)
        assert response.status_code == 201, response.text
    if tier is not None:
        manual = {"tier": tier, "reason": "test"}
        response = await api.post(f"/v1/members/{member_id}/tier/manual", manual)
        assert response.status_code == 200, response.text
    return member_id


async def campaign(api: Api, kind: str) -> str:
    """A coupon campaign giving what a ``kind`` reward hands out; its key."""
    key = unique("camp").lower()
    body = {"key": key, "name": f"Campaign {key}", "discount": CAMPAIGN_DISCOUNTS[kind]}
    response = await api.post("/v1/coupon-campaigns", body)
    assert response.status_code == 201, response.text
    return key


async def reward_body(api: Api, kind: str = "physical", **overrides: Any) -> dict[str, Any]:
    """A reward of ``kind`` with what that kind needs (a coupon campaign, a gift amount)."""
    body: dict[str, Any] = {
        "key": unique("reward"),
        "name": f"A {kind} reward",
        "kind": kind,
        "price": 300,
        "category": "gifts",
    }
    if kind in CAMPAIGN_DISCOUNTS:
        body["coupon_campaign"] = await campaign(api, kind)
    if kind == "gift_certificate":
        body["gift_amount"] = 50_000
    return body | overrides


async def new_reward(api: Api, kind: str = "physical", **overrides: Any) -> dict[str, Any]:
    response = await api.post("/v1/rewards", await reward_body(api, kind, **overrides))
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def available(api: Api, member_id: str) -> int:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    points: int = next(b for b in balance["balances"] if b["currency"] == "points")["available"]
    return points


async def stock_of(engine: AsyncEngine, program: ProgramContext, key: str) -> int | None:
    async with reading(engine) as conn:
        stock: int | None = await conn.scalar(
            select(rewards_t.c.stock).where(
                rewards_t.c.program_id == program.id, rewards_t.c.key == key
            )
        )
    return stock


async def redemption_count(engine: AsyncEngine, program: ProgramContext) -> int:
    async with reading(engine) as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(redemptions_t)
            .where(redemptions_t.c.program_id == program.id)
        )
    return int(count or 0)


async def topics(engine: AsyncEngine, member_id: str) -> list[str]:
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(outbox_t.c.topic)
            .where(outbox_t.c.member_id == UUID(member_id), outbox_t.c.topic.like("reward.%"))
            .order_by(outbox_t.c.id)
        )
        return [row[0] for row in rows]
