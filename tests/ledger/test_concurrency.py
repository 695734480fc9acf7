"""Concurrency on PostgreSQL: real row locks, many connections at once.

Nothing lost, nothing doubled: many tills redeeming one balance, retries of one purchase
racing each other, redemptions racing the expiry job.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from kopilka.db import reading, run_in_transaction
from kopilka.kit.clock import clock
from kopilka.ledger import tasks
from kopilka.ledger.service import ledger_service
from kopilka.models import Purchase
from kopilka.models.base import table
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body
from tests.purchases.test_endpoints import assert_ledger_sound

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


async def test_concurrent_retries_of_one_redemption_get_one_answer(pg_engine: AsyncEngine) -> None:
    api, program, client = await _api(pg_engine)
    async with client:
        body = member_body()
        member = (await api.post("/v1/members", body)).json()
        await api.post("/v1/purchases", purchase_body(body["external_id"], 100_000))  # 1,000
        spend = {"member": {"id": member["id"]}, "amount": 600}
        responses = await asyncio.gather(
            *(
                api.post("/v1/redemptions", spend, **{"Idempotency-Key": "till-1/77"})
                for _ in range(10)
            )
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        hold = (
            await api.post(
                "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 100, "mode": "hold"}
            )
        ).json()
        captures = await asyncio.gather(
            *(
                api.post(f"/v1/redemptions/{hold['id']}/capture", **{"Idempotency-Key": "c-1"})
                for _ in range(5)
            )
        )
        assert {r.status_code for r in captures} == {200}
        balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
        assert balance["balances"][0]["available"] == 300
    await assert_ledger_sound(pg_engine, program)


async def test_deadlocks_are_retried(pg_engine: AsyncEngine) -> None:
    """Two transactions taking two members' locks in opposite orders: PostgreSQL aborts one,
    and the retry completes it."""
    program = await make_program(pg_engine)
    api = Api(
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(engine=pg_engine)),
            base_url="http://kopilka.test",
        ),
        await make_key(pg_engine, program),
    )
    ids = []
    for _ in range(2):
        ids.append(UUID((await api.post("/v1/members", member_body())).json()["id"]))
    await api.client.aclose()
    first_locked = [asyncio.Event(), asyncio.Event()]

    async def lock_both(order: list[UUID], mine: asyncio.Event, other: asyncio.Event) -> int:
        attempts = 0

        async def work(conn: Any) -> None:
            nonlocal attempts
            attempts += 1
            await ledger_service.lock(conn, program, [order[0]], clock.now())
            mine.set()
            if attempts == 1:
                await asyncio.wait_for(other.wait(), 5)
            await ledger_service.lock(conn, program, [order[1]], clock.now())

        await run_in_transaction(pg_engine, work)
        return attempts

    results = await asyncio.gather(
        lock_both(ids, first_locked[0], first_locked[1]),
        lock_both(list(reversed(ids)), first_locked[1], first_locked[0]),
    )
    assert sorted(results)[1] >= 2  # one of them was aborted as a deadlock and ran again
