"""Concurrency on PostgreSQL: real row locks, many connections at once.

Nothing lost, nothing doubled: many tills redeeming one balance, retries of one purchase
racing each other, redemptions racing the expiry job.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.models import Purchase
from kopilka.models.base import table
from tests.conftest import Api, make_key, make_program
from tests.events.test_endpoints import assert_ledger_sound
from tests.fixtures.factories import member_body, purchase_body

pytestmark = pytest.mark.postgres


async def _api(pg_engine: AsyncEngine, **settings: Any) -> tuple[Api, Any, httpx.AsyncClient]:
    program = await make_program(pg_engine, **settings)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine=pg_engine)),
        base_url="http://kopilka.test",
    )
    return Api(client, await make_key(pg_engine, program)), program, client


async def test_fifty_tills_redeeming_one_balance(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        body = member_body()
        member = (await api.post("/v1/members", body)).json()
        await api.post("/v1/purchases", purchase_body(body["external_id"], 100_000))  # 1,000
        responses = await asyncio.gather(
            *(
                api.post("/v1/redemptions", {"member": {"id": member["id"]}, "amount": 70})
                for _ in range(50)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(201) == 14  # 14 × 70 = 980 ≤ 1,000 < 15 × 70
        assert statuses.count(422) == 36
        balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
        assert balance["balances"][0]["available"] == 20
    await assert_ledger_sound(pg_engine, program)


async def test_twenty_retries_of_one_purchase_post_once(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        body = member_body()
        member = (await api.post("/v1/members", body)).json()
        purchase = purchase_body(body["external_id"], 30_000)
        responses = await asyncio.gather(*(api.post("/v1/purchases", purchase) for _ in range(20)))
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
        assert balance["balances"][0]["available"] == 300
    purchases = table(Purchase)
    async with reading(pg_engine) as conn:
        count = await conn.scalar(
            select(func.count()).select_from(purchases).where(purchases.c.program_id == program.id)
        )
    assert count == 1
    await assert_ledger_sound(pg_engine, program)


async def test_new_member_auto_enrolled_by_concurrent_purchases(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine, auto_enrol=True)
    async with client:
        responses = await asyncio.gather(
            *(api.post("/v1/purchases", purchase_body("walk-in-1", 10_000 + i)) for i in range(10))
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["member_id"] for r in responses}) == 1
    await assert_ledger_sound(pg_engine, program)


async def test_redemptions_racing_the_expiry_job(pg_engine: AsyncEngine) -> None:
    t0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
    api, program, client = await _api(pg_engine, expiry={"policy": "days", "days": 10})
    async with client:
        members = []
        with clock.frozen(t0):
            for _ in range(10):
                body = member_body()
                member = (await api.post("/v1/members", body)).json()
                await api.post(
                    "/v1/purchases",
                    purchase_body(body["external_id"], 50_000, occurred_at=t0.isoformat()),
                )
                members.append(member["id"])
        expire = tasks.expire_points(pg_engine, program.id, t0 + timedelta(days=11))
        redeem = [
            api.post("/v1/redemptions", {"member": {"id": m}, "amount": 300}) for m in members
        ]
        results = await asyncio.gather(expire, *redeem)
        report, responses = results[0], results[1:]
        redeemed = sum(300 for r in responses if r.status_code == 201)
        assert all(r.status_code in (201, 422) for r in responses)
        # Every point was either spent before it expired or expired: none both, none lost.
        assert redeemed + report.amount == 10 * 500
        for member_id in members:
            balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
            assert balance["balances"][0]["available"] == 0
    await assert_ledger_sound(pg_engine, program)
