"""The rewards shop under concurrency on PostgreSQL: real row locks, many connections.

The last item goes to one member; a member's limit holds against their own racing tills;
pool codes go out once each; a redemption racing a return ends as one serial order would;
retries of one redemption are recorded once.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.models import RewardRedemption
from kopilka.models.base import table
from tests.conftest import Api
from tests.fixtures.factories import member_body, purchase_body
from tests.ledger.test_concurrency import _api
from tests.purchases.test_endpoints import assert_ledger_sound
from tests.rewards.conftest import available, new_member, new_reward, stock_of
from tests.tiers.test_service import LADDER

pytestmark = pytest.mark.postgres
redemptions_t = table(RewardRedemption)


async def redeem(api: Api, key: str, member_id: str, **extra: Any) -> Any:
    return await api.post(f"/v1/rewards/{key}/redemptions", {"member": {"id": member_id}, **extra})


async def recorded(engine: AsyncEngine, program_id: Any) -> int:
    async with reading(engine) as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(redemptions_t)
            .where(redemptions_t.c.program_id == program_id)
        )
    return int(count or 0)


async def test_ten_members_racing_for_the_last_item(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine, tiers=LADDER)
    async with client:
        reward = await new_reward(api, "physical", stock=1, price=100)
        members = [await new_member(api, points=1_000) for _ in range(10)]
        responses = await asyncio.gather(*(redeem(api, reward["key"], m) for m in members))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 9
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"out_of_stock"}
        winner = next(m for m, r in zip(members, responses, strict=True) if r.status_code == 201)
        for member in members:
            assert await available(api, member) == (900 if member == winner else 1_000)
        assert await stock_of(pg_engine, program, reward["key"]) == 0
        assert await recorded(pg_engine, program.id) == 1
    await assert_ledger_sound(pg_engine, program)


async def test_one_members_racing_tills_cannot_pass_the_limit(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        reward = await new_reward(api, "digital", per_member_limit=2, price=10)
        member = await new_member(api, points=1_000)
        responses = await asyncio.gather(*(redeem(api, reward["key"], member) for _ in range(10)))
        assert sorted(r.status_code for r in responses) == [201] * 2 + [409] * 8
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"limit_reached"}
        assert await available(api, member) == 980
    await assert_ledger_sound(pg_engine, program)


async def test_members_racing_for_a_pool_get_each_code_once(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        reward = await new_reward(api, "digital", code_source="pool", price=50)
        codes = [f"EARLY-{n:03d}" for n in range(5)]
        added = await api.post(f"/v1/rewards/{reward['key']}/codes", {"codes": codes})
        assert added.status_code == 201
        members = [await new_member(api, points=100) for _ in range(12)]
        responses = await asyncio.gather(*(redeem(api, reward["key"], m) for m in members))
        won = [r.json()["code"] for r in responses if r.status_code == 201]
        assert sorted(won) == codes
        lost = [r for r in responses if r.status_code != 201]
        assert len(lost) == 7
        assert {(r.status_code, r.json()["reason"]) for r in lost} == {(409, "out_of_stock")}
        balances = sorted([await available(api, m) for m in members])
        assert balances == [50] * 5 + [100] * 7
    await assert_ledger_sound(pg_engine, program)


async def test_a_redemption_racing_a_return_ends_as_one_serial_order(
    pg_engine: AsyncEngine,
) -> None:
    """The return claws back the purchase's 1,000 points (allowing a negative balance), the
    reward costs 600. Redeemed first: 1,000 − 600 − 1,000 = −600. Returned first: 0 left and
    the redemption is refused. Nothing else is possible."""
    api, program, client = await _api(pg_engine, clawback="allow_negative")
    async with client:
        reward = await new_reward(api, "physical", price=600)
        people = []
        for _ in range(10):
            body = member_body()
            member = (await api.post("/v1/members", body)).json()["id"]
            purchase = purchase_body(body["external_id"], 100_000)
            assert (await api.post("/v1/purchases", purchase)).status_code == 201
            people.append((member, purchase["external_id"]))

        async def give_back(purchase_id: str) -> Any:
            body = {
                "external_id": f"return-{purchase_id}",
                "purchase_external_id": purchase_id,
                "occurred_at": datetime.now(UTC).isoformat(),
            }
            return await api.post("/v1/returns", body)

        results = await asyncio.gather(
            *(
                call
                for member, purchase_id in people
                for call in (redeem(api, reward["key"], member), give_back(purchase_id))
            )
        )
        outcomes = set()
        for index, (member, _) in enumerate(people):
            redeemed, returned = results[2 * index], results[2 * index + 1]
            assert returned.status_code == 201, returned.text
            assert returned.json()["reversed"][0]["reversed"] == 1_000
            balance = await available(api, member)
            if redeemed.status_code == 201:
                assert balance == -600
                outcomes.add("redeemed first")
                # Cancelling refunds the 600: it pays the debt the return left.
                cancel = await api.post(f"/v1/reward-redemptions/{redeemed.json()['id']}/cancel")
                assert cancel.status_code == 200
                assert cancel.json()["balance"]["available"] == 0
            else:
                assert redeemed.status_code == 422, redeemed.text
                assert redeemed.json()["reason"] == "insufficient_balance"
                assert balance == 0
                outcomes.add("returned first")
            assert await available(api, member) == 0
        assert outcomes <= {"redeemed first", "returned first"}
    await assert_ledger_sound(pg_engine, program)


async def test_concurrent_retries_of_one_redemption_are_recorded_once(
    pg_engine: AsyncEngine,
) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        reward = await new_reward(api, "digital", stock=5, price=300)
        member = await new_member(api, points=1_000)
        responses = await asyncio.gather(
            *(redeem(api, reward["key"], member, external_id="till-9/512") for _ in range(10))
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        assert len({r.json()["code"] for r in responses}) == 1
        assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
        assert await available(api, member) == 700
        assert await stock_of(pg_engine, program, reward["key"]) == 4
        assert await recorded(pg_engine, program.id) == 1
        # The same key from another member, at the same time: one wins, the rest conflict.
        others = [await new_member(api, points=1_000) for _ in range(5)]
        clashes = await asyncio.gather(
            *(redeem(api, reward["key"], m, external_id="till-9/513") for m in others)
        )
        assert sorted(r.status_code for r in clashes) == [201] + [409] * 4
        assert await recorded(pg_engine, program.id) == 2
    await assert_ledger_sound(pg_engine, program)
