"""A personal boost under concurrent purchases on PostgreSQL: exactly one uses it."""

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.benefits.test_till import grant, listed, new_member
from tests.fixtures.factories import purchase_body
from tests.ledger.test_concurrency import _api

pytestmark = pytest.mark.postgres


async def test_two_tills_one_boost(pg_engine: AsyncEngine) -> None:
    api, _, client = await _api(pg_engine)
    async with client:
        member_id, external = await new_member(api)
        boost = await grant(api, member_id, "once", "boost", payload={"factor_percent": 200})
        bodies = [purchase_body(external, 10_000) for _ in range(2)]
        responses = await asyncio.gather(*(api.post("/v1/purchases", b) for b in bodies))
        assert [r.status_code for r in responses] == [201, 201]
        results = [r.json() for r in responses]
        assert sorted(r["points_earned"] for r in results) == [100, 200]
        winner = next(r for r in results if r["points_earned"] == 200)
        assert [a["id"] for a in winner["applied_benefits"]] == [boost["id"]]
        used = (await listed(api, member_id, status="used"))["items"]
        assert [(u["id"], u["used_by"]) for u in used] == [(boost["id"], winner["id"])]
