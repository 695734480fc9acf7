"""Purchases without a member over HTTP, on SQLite and PostgreSQL: recorded, idempotent,
earning nothing, announced with no member, returned; and kept out of every member's
history and of simulations."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.models import OutboxEvent, Purchase, PurchaseLine, PurchaseReturn
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import member_body, purchase_body

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
outbox_t = table(OutboxEvent)
purchases_t = table(Purchase)


def anonymous_body(total: int = 10_000, **overrides: Any) -> dict[str, Any]:
    body = purchase_body("unused", total, occurred_at=T0.isoformat())
    del body["member"]
    return body | overrides


async def events_of(
    engine: AsyncEngine, program: ProgramContext, topic: str
) -> list[dict[str, Any]]:
    async with reading(engine) as conn:
        query = select(outbox_t).where(
            outbox_t.c.program_id == program.id, outbox_t.c.topic == topic
        )
        return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def setup(
    engine: AsyncEngine, http: httpx.AsyncClient, **settings: Any
) -> tuple[ProgramContext, Api]:
    with clock.frozen(T0 - timedelta(days=10)):
        program = await make_program(engine, **settings)
    return program, Api(http, await make_key(engine, program, "pos"))


async def test_recorded_without_a_member_earning_nothing(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http, claim_window_days=14)
    body = anonymous_body(12_345)
    with clock.frozen(T0 + timedelta(minutes=1)):
        response = await api.post("/v1/purchases?explain=true", body)
        assert response.status_code == 201, response.text
        again = await api.post("/v1/purchases", dict(body, member=None))
        other = await api.post("/v1/purchases", dict(body, store="store-02"))
    result = response.json()
    assert result["member_id"] is None and result["earned"] == [] and result["balances"] == []
    assert result["points_earned"] == 0 and result["tier"] is None and result["trace"] == []
    assert result["claimable_until"] == "2026-03-16T10:00:00Z"
    # Omitted or null: the same request, answered the same; another body is a conflict.
    assert again.status_code == 201 and again.json() == result
    assert again.headers.get("idempotent-replayed") == "true"
    assert other.status_code == 409
    assert other.json()["errors"][0]["field"] == "external_id"
    async with reading(engine) as conn:
        row = (
            await conn.execute(select(purchases_t).where(purchases_t.c.id == UUID(result["id"])))
        ).one()
        lines = (
            await conn.execute(
                select(table(PurchaseLine)).where(table(PurchaseLine).c.purchase_id == row.id)
            )
        ).all()
    assert row.member_id is None and row.earned == {} and row.claimed_at is None
    assert [line.member_id for line in lines] == [None]
    [event] = await events_of(engine, program, "purchase.recorded")
    assert event["member_id"] is None
    assert event["payload"]["earned"] == {} and event["payload"]["tier"] is None
    assert event["payload"]["external_id"] == body["external_id"]
    assert await events_of(engine, program, "points.earned") == []


async def test_coupon_codes_and_points_need_a_member(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    _, api = await setup(engine, http)
    with clock.frozen(T0):
        codes = await api.post("/v1/purchases", anonymous_body(coupon_codes=["SPRING"]))
        points = await api.post("/v1/purchases", anonymous_body(points_to_spend=100))
        bad_member = await api.post("/v1/purchases", anonymous_body(member={}))
    assert codes.status_code == 422
    assert codes.json()["errors"][0]["field"] == "coupon_codes"
    assert points.status_code == 422
    assert points.json()["errors"][0]["field"] == "points_to_spend"
    assert bad_member.status_code == 422


async def test_quote_and_batch_without_a_member(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http, claim_window_days=0)
    member = member_body()
    anonymous = anonymous_body(5_000)
    with clock.frozen(T0):
        assert (await api.post("/v1/members", member)).status_code == 201
        quote = await api.post("/v1/purchases/quote", anonymous)
        named = purchase_body(member["external_id"], 7_000, occurred_at=T0.isoformat())
        batch = await api.post(
            "/v1/purchases/batch", {"purchases": [anonymous, named, anonymous_body(1_000)]}
        )
    assert quote.status_code == 200, quote.text
    assert quote.json()["id"] is None and quote.json()["member_id"] is None
    assert quote.json()["points_earned"] == 0 and quote.json()["points_payment"] is None
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 201]
    assert results[0]["purchase"]["member_id"] is None
    # A window of 0 days: nothing can be claimed, so no deadline is given.
    assert results[0]["purchase"]["claimable_until"] is None
    assert results[1]["purchase"]["points_earned"] == 70
    recorded = await events_of(engine, program, "purchase.recorded")
    assert sorted(e["member_id"] is None for e in recorded) == [False, True, True]


async def test_returns_of_a_purchase_without_a_member(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http)
    body = anonymous_body(10_000)
    with clock.frozen(T0):
        assert (await api.post("/v1/purchases", body)).status_code == 201
        part = {
            "external_id": "r-1-" + body["external_id"],
            "purchase_external_id": body["external_id"],
            "occurred_at": T0.isoformat(),
            "amount": 4_000,
        }
        first = await api.post("/v1/returns", part)
        again = await api.post("/v1/returns", part)
        rest = await api.post(
            "/v1/returns",
            {
                "external_id": "r-2-" + body["external_id"],
                "purchase_external_id": body["external_id"],
                "occurred_at": T0.isoformat(),
            },
        )
    assert first.status_code == 201, first.text
    assert first.json()["member_id"] is None and first.json()["reversed"] == []
    assert first.json()["balances"] == [] and first.json()["purchase_returned_amount"] == 4_000
    assert again.json() == first.json()
    assert rest.status_code == 201 and rest.json()["amount"] == 6_000
    returned = await events_of(engine, program, "return.recorded")
    assert len(returned) == 2 and {e["member_id"] for e in returned} == {None}
    async with reading(engine) as conn:
        returns_t = table(PurchaseReturn)
        rows = (
            await conn.execute(select(returns_t).where(returns_t.c.program_id == program.id))
        ).all()
    assert [r.member_id for r in rows] == [None, None]


async def test_not_in_a_members_history_nor_in_simulations(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, pos = await setup(engine, http)
    admin = Api(http, await make_key(engine, program, "admin"))
    member = member_body()
    with clock.frozen(T0):
        created = await admin.post("/v1/members", member)
        named = purchase_body(member["external_id"], 3_000, occurred_at=T0.isoformat())
        assert (await pos.post("/v1/purchases", named)).status_code == 201
        assert (await pos.post("/v1/purchases", anonymous_body(9_000))).status_code == 201
    with clock.frozen(T0 + timedelta(days=1)):
        history = await admin.get(f"/v1/members/{created.json()['id']}/purchases")
        simulated = await admin.post("/v1/program/simulate", {"days": 30})
    assert history.status_code == 200, history.text
    assert [p["external_id"] for p in history.json()["items"]] == [named["external_id"]]
    assert simulated.status_code == 200, simulated.text
    assert simulated.json()["purchases"] == 1
