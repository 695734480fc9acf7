"""Coupons and points at many tills at once, on PostgreSQL with real row locks."""

import asyncio
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.coupons.test_endpoints import basket, new_campaign, new_codes, new_member
from tests.fixtures.factories import unique
from tests.ledger.test_concurrency import _api
from tests.purchases.test_endpoints import assert_ledger_sound

pytestmark = pytest.mark.postgres


async def test_one_single_use_code_at_ten_tills_is_redeemed_once(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        campaign = await new_campaign(api)
        [code] = await new_codes(api, campaign["key"])
        members = [await new_member(api) for _ in range(10)]
        responses = await asyncio.gather(
            *(api.post("/v1/purchases", basket(m, coupon_codes=[code])) for m in members)
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] + [409] * 9, [r.text for r in responses]
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"used_up"}
        assert (await api.get(f"/v1/coupons/{code}")).json()["uses"] == 1
        redeemed = (await api.get(f"/v1/coupon-campaigns/{campaign['key']}")).json()
        assert redeemed["redeemed"] == 1
    await assert_ledger_sound(pg_engine, program)


async def test_a_campaign_limit_holds_across_many_codes_and_tills(pg_engine: AsyncEngine) -> None:
    api, _, client = await _api(pg_engine)
    async with client:
        campaign = await new_campaign(api, total_limit=5)
        codes = await new_codes(api, campaign["key"], count=20)
        members = [await new_member(api) for _ in range(20)]
        responses = await asyncio.gather(
            *(
                api.post("/v1/purchases", basket(m, coupon_codes=[c]))
                for m, c in zip(members, codes, strict=True)
            )
        )
        assert sorted(r.status_code for r in responses) == [201] * 5 + [409] * 15
        assert (await api.get(f"/v1/coupon-campaigns/{campaign['key']}")).json()["redeemed"] == 5
        # A till that lost the campaign's last use gave its code's use back (savepoint).
        listed = await api.get(f"/v1/coupon-campaigns/{campaign['key']}/codes", limit=100)
        assert sum(c["uses"] for c in listed.json()["items"]) == 5


async def test_one_member_at_two_tills_keeps_the_per_member_limit(pg_engine: AsyncEngine) -> None:
    api, _, client = await _api(pg_engine)
    async with client:
        campaign = await new_campaign(api, uses_per_code=None, per_member_limit=1)
        [code] = await new_codes(api, campaign["key"], codes=["SUMMER"])
        member = await new_member(api)
        responses = await asyncio.gather(
            *(api.post("/v1/purchases", basket(member, coupon_codes=[code])) for _ in range(6))
        )
        assert sorted(r.status_code for r in responses) == [201] + [409] * 5
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"member_limit"}


async def test_points_spent_at_many_tills_never_overdraw(pg_engine: AsyncEngine) -> None:
    pay = {"points": 1, "money": 100, "max_share_percent": 100}
    api, program, client = await _api(pg_engine, points_payment=pay, earning=[])
    async with client:
        member = await new_member(api)
        credit: dict[str, Any] = {
            "member": {"id": member["id"]},
            "currency": "points",
            "amount": 1_000,
            "reason": "welcome",
        }
        await api.post("/v1/adjustments", credit, **{"Idempotency-Key": unique("k")})
        responses = await asyncio.gather(
            *(api.post("/v1/purchases", basket(member, points_to_spend=300)) for _ in range(8))
        )
        accepted = [r for r in responses if r.status_code == 201]
        assert len(accepted) == 3, [r.text for r in responses]
        assert all(r.status_code == 422 for r in responses if r.status_code != 201)
        balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
        points = next(b for b in balance["balances"] if b["currency"] == "points")
        assert points["available"] == 100  # nothing earned here: spending alone decides
    await assert_ledger_sound(pg_engine, program)
