"""Claiming a purchase without a member by its receipt id, over HTTP, on SQLite and
PostgreSQL: the rules of the purchase's time, the window's edges, claims repeated and
contested, returns before the claim, bad input, the events and the member's facts."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.crm.service import crm_service
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.ledger.audit import verify
from kopilka.models import OutboxEvent
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import BASE_SETTINGS, Api, make_key, make_program
from tests.crm.support import worker
from tests.fixtures.factories import member_body, purchase_body, unique

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
outbox_t = table(OutboxEvent)
LADDER = {
    "levels": [
        {"id": "base", "name": "Base"},
        {"id": "silver", "name": "Silver", "qualify": {"spend": 50_000}},
    ]
}


async def setup(
    engine: AsyncEngine, http: httpx.AsyncClient, **settings: Any
) -> tuple[ProgramContext, Api]:
    with clock.frozen(T0 - timedelta(days=10)):
        program = await make_program(engine, **settings)
    return program, Api(http, await make_key(engine, program, "admin"))


async def new_member(api: Api) -> dict[str, Any]:
    body = member_body()
    response = await api.post("/v1/members", body)
    assert response.status_code == 201, response.text
    return response.json() | {"external_id": body["external_id"]}


async def anonymous(api: Api, total: int = 10_000, at: datetime = T0) -> str:
    body = purchase_body("unused", total, occurred_at=at.isoformat())
    del body["member"]
    response = await api.post("/v1/purchases", body)
    assert response.status_code == 201, response.text
    receipt: str = body["external_id"]
    return receipt


async def claim(api: Api, receipt: str, member: dict[str, Any], **headers: str) -> httpx.Response:
    body = {"receipt": receipt, "member": {"external_id": member["external_id"]}}
    return await api.post("/v1/purchases/claims", body, **headers)


def reason(response: httpx.Response) -> tuple[int, str]:
    problem = response.json()
    return response.status_code, problem.get("reason") or problem["errors"][0].get("reason")


async def events_of(engine: AsyncEngine, program: ProgramContext, topic: str) -> list[Any]:
    async with reading(engine) as conn:
        query = select(outbox_t).where(
            outbox_t.c.program_id == program.id, outbox_t.c.topic == topic
        )
        return list((await conn.execute(query)).all())


async def assert_ledger_sound(engine: AsyncEngine, program: ProgramContext) -> None:
    async with reading(engine, snapshot=True) as conn:
        problems = await verify(conn, program.id)
    assert problems == {name: [] for name in problems}


def points(result: dict[str, Any]) -> dict[str, int]:
    found = next(b for b in result["balances"] if b["currency"] == "points")
    return {"available": found["available"], "pending": found["pending"]}


async def test_a_claim_earns_as_the_rules_did_at_the_purchase(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http, pending_days=3, tiers=LADDER)
    with clock.frozen(T0):
        anna, boris = await new_member(api), await new_member(api)
        receipt = await anonymous(api, 60_000)
    with clock.frozen(T0 + timedelta(hours=1)):
        document = {
            **BASE_SETTINGS,
            "pending_days": 3,
            "tiers": LADDER,
            "earning": [{"id": "base", "type": "per_amount", "points": 3, "per": 100}],
        }
        assert (await api.put("/v1/program/draft", document)).status_code == 200
        assert (await api.post("/v1/program/publish", {})).status_code == 201
    claimed_at = T0 + timedelta(days=1)
    with clock.frozen(claimed_at):
        first = await claim(api, receipt, anna)
        again = await claim(api, receipt, anna)
        contested = await claim(api, receipt, boris)
        history = await api.get(f"/v1/members/{anna['id']}/purchases")
    assert first.status_code == 201, first.text
    result = first.json()
    # Version 1's rate (1 point per rouble), not version 2's three.
    assert result["program_version"] == 1 and result["points_earned"] == 600
    assert result["member_id"] == anna["id"] and result["claimed_at"] == "2026-03-03T10:00:00Z"
    assert result["occurred_at"] == "2026-03-02T10:00:00Z"
    # Dated from the purchase: pending for 3 days from it, so still pending a day later.
    assert result["earned"][0]["status"] == "pending"
    assert points(result) == {"available": 0, "pending": 600}
    assert result["tier"]["tier"] == "silver"  # the claimed purchase counts for the tier
    assert again.status_code == 201 and again.json() == result
    assert again.headers.get("idempotent-replayed") == "true"
    assert reason(contested) == (409, "claimed")
    assert [p["external_id"] for p in history.json()["items"]] == [receipt]
    [event] = await events_of(engine, program, "purchase.claimed")
    assert event.member_id == UUID(anna["id"]) and event.version == 1
    assert event.occurred_at.replace(tzinfo=UTC) == claimed_at
    assert event.payload == {
        "purchase_id": result["id"],
        "external_id": receipt,
        "total": 60_000,
        "currency": "RUB",
        "store": "store-01",
        "channel": "pos",
        "purchased_at": "2026-03-02T10:00:00+00:00",
        "claimed_at": "2026-03-03T10:00:00+00:00",
        "earned": {"points": 600},
        "reversed": {},
        "returned_amount": 0,
        "tier": "silver",
    }
    earned = await events_of(engine, program, "points.earned")
    assert [(e.member_id, e.payload["amount"]) for e in earned] == [(UUID(anna["id"]), 600)]
    await assert_ledger_sound(engine, program)


async def test_the_window_includes_its_last_moment(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http, claim_window_days=7)
    with clock.frozen(T0):
        member = await new_member(api)
        on_time, late = await anonymous(api), await anonymous(api)
    with clock.frozen(T0 + timedelta(days=7)):
        assert (await claim(api, on_time, member)).status_code == 201
    with clock.frozen(T0 + timedelta(days=7, seconds=1)):
        refused = await claim(api, late, member)
    assert reason(refused) == (409, "claim_window_closed")
    assert refused.json()["errors"][0]["field"] == "receipt"
    closed, closed_api = await setup(engine, http, claim_window_days=0)
    with clock.frozen(T0):
        someone = await new_member(closed_api)
        receipt = await anonymous(closed_api)
        assert reason(await claim(closed_api, receipt, someone)) == (409, "claims_closed")
    assert closed.id != program.id


async def test_returns_before_the_claim(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    program, api = await setup(engine, http)
    with clock.frozen(T0):
        member = await new_member(api)
        whole, part = await anonymous(api, 10_000), await anonymous(api, 10_000)
        for receipt, amount in ((whole, None), (part, 4_000)):
            body: dict[str, Any] = {
                "external_id": unique("r"),
                "purchase_external_id": receipt,
                "occurred_at": T0.isoformat(),
            }
            if amount is not None:
                body["amount"] = amount
            assert (await api.post("/v1/returns", body)).status_code == 201
    with clock.frozen(T0 + timedelta(hours=2)):
        refused = await claim(api, whole, member)
        kept = await claim(api, part, member)
        rest = await api.post(
            "/v1/returns",
            {
                "external_id": unique("r"),
                "purchase_external_id": part,
                "occurred_at": (T0 + timedelta(hours=2)).isoformat(),
            },
        )
    assert reason(refused) == (409, "returned")
    assert kept.status_code == 201, kept.text
    result = kept.json()
    # As with the card shown: 100 earned on the basket, 40 taken back for the 40 % returned.
    assert result["points_earned"] == 100 and result["returned_amount"] == 4_000
    assert result["reversed"] == [{"currency": "points", "reversed": 40, "not_clawed_back": 0}]
    assert points(result)["available"] == 60
    # A return after the claim takes back the rest, from the member.
    assert rest.status_code == 201, rest.text
    assert rest.json()["member_id"] == member["id"]
    assert rest.json()["reversed"] == [{"currency": "points", "reversed": 60, "not_clawed_back": 0}]
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 0
    await assert_ledger_sound(engine, program)


async def test_bad_claims_change_nothing(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    program, api = await setup(engine, http)
    other, other_api = await setup(engine, http)
    with clock.frozen(T0):
        member = await new_member(api)
        receipt = await anonymous(api)
        named = purchase_body(member["external_id"], occurred_at=T0.isoformat())
        assert (await api.post("/v1/purchases", named)).status_code == 201
        stranger = await new_member(other_api)
        unknown = await claim(api, "no-such-receipt", member)
        elsewhere = await claim(other_api, receipt, stranger)
        nobody = await claim(api, receipt, {"external_id": "nobody"})
        has_member = await claim(api, named["external_id"], member)
        malformed = [
            await api.post("/v1/purchases/claims", body)
            for body in (
                {"receipt": receipt},
                {"receipt": 7, "member": {"external_id": member["external_id"]}},
                {"receipt": receipt, "member": {"external_id": member["external_id"]}, "x": 1},
            )
        ]
        pos = Api(api.client, await make_key(engine, program, "analyst"))
        forbidden = await claim(pos, receipt, member)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "receipt"
    assert elsewhere.status_code == 404  # another program's key sees nothing
    assert nobody.status_code == 404
    assert nobody.json()["errors"][0]["field"] == "member.external_id"
    assert reason(has_member) == (409, "has_member")
    assert [r.status_code for r in malformed] == [422, 422, 422]
    assert [r.json()["errors"][0]["field"] for r in malformed] == ["member", "receipt", "x"]
    assert forbidden.status_code == 403
    assert await events_of(engine, program, "purchase.claimed") == []
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    assert balance["balances"][0]["available"] == 100  # the named purchase's only
    assert other.id != program.id


async def test_idempotency_key(engine: AsyncEngine, http: httpx.AsyncClient) -> None:
    _, api = await setup(engine, http)
    with clock.frozen(T0):
        member = await new_member(api)
        first, second = await anonymous(api), await anonymous(api)
        made = await claim(api, first, member, **{"Idempotency-Key": "k-1"})
        repeated = await claim(api, first, member, **{"Idempotency-Key": "k-1"})
        reused = await claim(api, second, member, **{"Idempotency-Key": "k-1"})
    assert made.status_code == 201 and repeated.json() == made.json()
    assert repeated.headers.get("idempotent-replayed") == "true"
    assert reused.status_code == 409
    assert reused.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_the_members_facts_count_a_claimed_purchase(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http)
    with clock.frozen(T0 + timedelta(days=1)):
        member = await new_member(api)
        receipt = await anonymous(api, 25_000)
        await anonymous(api, 5_000)
        await worker(engine).drain()
        async with reading(engine) as conn:
            before = await crm_service.facts(conn, program, UUID(member["id"]), clock.now())
        assert (await claim(api, receipt, member)).status_code == 201
        await worker(engine).drain()
        async with reading(engine) as conn:
            after = await crm_service.facts(conn, program, UUID(member["id"]), clock.now())
        # Rebuilding every member's facts passes over the purchase still without one.
        async with transaction(engine) as conn:
            report = await crm_service.refresh(conn, program.id, None, clock.now())
    assert before.purchases == 0
    assert after.purchases == 1 and after.spend == 25_000
    assert report.facts == 1


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_two_members_claiming_at_once_one_wins(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, api = await setup(engine, http)
    with clock.frozen(T0):
        members = [await new_member(api) for _ in range(6)]
        receipts = [await anonymous(api) for _ in range(3)]
        # Three receipts, each claimed by two members at the same moment.
        answers = await asyncio.gather(
            *(claim(api, receipts[i // 2], member) for i, member in enumerate(members))
        )
    statuses = [a.status_code for a in answers]
    for pair in range(3):
        assert sorted(statuses[2 * pair : 2 * pair + 2]) == [201, 409], statuses
    assert len(await events_of(engine, program, "purchase.claimed")) == 3
    earned = await events_of(engine, program, "points.earned")
    assert len(earned) == 3 and {e.payload["amount"] for e in earned} == {100}
    await assert_ledger_sound(engine, program)
