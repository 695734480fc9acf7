"""Tier benefits in the rewards shop: exclusive rewards, early access; a personal price
offer used by the redemption it pays."""

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.kit.clock import clock
from tests.benefits.test_till import T, grant, listed
from tests.conftest import Api, make_key, make_program
from tests.rewards.conftest import available, new_member, new_reward, reward_body

CLUB_LADDER: dict[str, Any] = {
    "levels": [
        {"id": "base", "name": "Base"},
        {
            "id": "gold",
            "name": "Gold",
            "qualify": {"spend": 10_000_000},
            "benefits": {"exclusive_rewards": ["club"], "early_access": True},
        },
    ],
    "window": {"kind": "rolling", "months": 12},
}


async def club(engine: AsyncEngine, api: Api) -> Api:
    program = await make_program(engine, tiers=CLUB_LADDER)
    return Api(api.client, await make_key(engine, program, "admin"))


async def redeem(api: Api, key: str, member_id: str) -> Any:
    return await api.post(f"/v1/rewards/{key}/redemptions", {"member": {"id": member_id}})


async def test_exclusive_rewards_only_for_tiers_that_unlock_them(
    engine: AsyncEngine, api: Api
) -> None:
    capi = await club(engine, api)
    with clock.frozen(T):
        reward = await new_reward(capi, "physical", price=100, exclusive_tag="club")
        gold = await new_member(capi, points=1_000, tier="gold")
        plain = await new_member(capi, points=1_000)
        refused = await redeem(capi, reward["key"], plain)
        assert refused.status_code == 409, refused.text
        assert refused.json()["reason"] == "exclusive_to_tiers"
        catalog = (await capi.get("/v1/rewards", member_id=plain)).json()
        assert reward["key"] not in [r["key"] for r in catalog["items"]]
        assert (await redeem(capi, reward["key"], gold)).status_code == 201
        assert await available(capi, plain) == 1_000
        # A tag no member can carry would open the reward to no one: refused.
        for tag in ("bad tag", "тег", ""):
            body = await reward_body(capi, "physical", exclusive_tag=tag)
            bad = await capi.post("/v1/rewards", body)
            assert bad.status_code == 422, bad.text
            assert bad.json()["errors"][0]["field"] == "exclusive_tag"


async def test_early_access_opens_days_before(engine: AsyncEngine, api: Api) -> None:
    capi = await club(engine, api)
    with clock.frozen(T):
        opens = (T + timedelta(days=3)).isoformat()
        reward = await new_reward(
            capi, "physical", price=10, available_from=opens, early_access_days=5
        )
        gold = await new_member(capi, points=100, tier="gold")
        plain = await new_member(capi, points=100)
        refused = await redeem(capi, reward["key"], plain)
        assert refused.status_code == 409
        assert refused.json()["reason"] == "not_yet_available"
        assert (await redeem(capi, reward["key"], gold)).status_code == 201
    with clock.frozen(T + timedelta(days=3)):
        assert (await redeem(capi, reward["key"], plain)).status_code == 201


async def test_a_personal_price_is_used_by_one_redemption(api: Api) -> None:
    with clock.frozen(T):
        reward = await new_reward(api, "physical", price=500)
        member = await new_member(api, points=1_000)
        offer = await grant(
            api, member, "half", "reward", payload={"reward": reward["key"], "price": 250}
        )
        seen = (await api.get(f"/v1/rewards/{reward['key']}", member_id=member)).json()
        assert seen["member_price"] == 250
        first = await redeem(api, reward["key"], member)
        assert first.status_code == 201, first.text
        assert first.json()["price"] == 250
        assert await available(api, member) == 750
        [used] = (await listed(api, member, status="used"))["items"]
        assert used["id"] == offer["id"] and used["used_by"] == first.json()["id"]
        second = await redeem(api, reward["key"], member)
        assert second.json()["price"] == 500
        assert await available(api, member) == 250
