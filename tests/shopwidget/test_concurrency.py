"""Holds through the widget at once on PostgreSQL: a session's cap and a payment's key hold
under concurrent requests, and the books stay balanced."""

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.app import create_app
from tests.conftest import Api, make_key, make_program
from tests.purchases.test_endpoints import assert_ledger_sound

pytestmark = pytest.mark.postgres
SHOP = "https://shop.example"


def _client(pg_engine: AsyncEngine) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(engine=pg_engine)),
        base_url="http://kopilka.test",
    )


async def _setup(
    pg_engine: AsyncEngine, client: httpx.AsyncClient, points: int, **session: Any
) -> tuple[Any, Api, str, str]:
    program = await make_program(pg_engine)
    api = Api(client, await make_key(pg_engine, program))
    await api.put("/v1/widget/settings", {"allowed_origins": [SHOP]})
    member_id = (await api.post("/v1/members", {"name": "Shopper"})).json()["id"]
    await api.post(
        "/v1/adjustments", {"member": {"id": member_id}, "amount": points, "reason": "gift"}
    )
    answer = await api.post(f"/v1/members/{member_id}/widget-sessions", session or None)
    return program, api, member_id, answer.json()["token"]


def _hold(client: httpx.AsyncClient, slug: str, token: str, points: int, key: str) -> Any:
    return client.post(
        f"/widget/{slug}/api/holds",
        json={"points": points},
        headers={"Authorization": f"Bearer {token}", "Origin": SHOP, "Idempotency-Key": key},
    )


async def _held(api: Api, member_id: str) -> int:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    return int(balance["balances"][0]["held"])


async def test_twenty_holds_at_once_stay_within_the_session_s_cap(
    pg_engine: AsyncEngine,
) -> None:
    async with _client(pg_engine) as client:
        program, api, member_id, token = await _setup(pg_engine, client, 10_000, max_points=500)
        answers = await asyncio.gather(
            *(_hold(client, program.slug, token, 100, f"pay-{n}") for n in range(20))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) == 5 and statuses.count(422) == 15
        assert await _held(api, member_id) == 500
    await assert_ledger_sound(pg_engine, program)


async def test_twenty_retries_of_one_payment_hold_once(pg_engine: AsyncEngine) -> None:
    async with _client(pg_engine) as client:
        program, api, member_id, token = await _setup(pg_engine, client, 1000)
        answers = await asyncio.gather(
            *(_hold(client, program.slug, token, 300, "the-payment") for _ in range(20))
        )
        assert {a.status_code for a in answers} == {201}
        assert len({a.json()["id"] for a in answers}) == 1
        assert await _held(api, member_id) == 300
    await assert_ledger_sound(pg_engine, program)
