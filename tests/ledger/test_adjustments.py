"""Manual adjustments over HTTP, on SQLite and PostgreSQL: credits and, above all, debits.

A debit (a negative ``amount`` on ``POST /v1/adjustments``) is spent like a redemption:
soonest-expiring lots first, never below zero, once per idempotency key.
"""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.db import reading
from kopilka.kit.clock import as_utc, clock
from kopilka.models import JournalEntry, Lot, Posting
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.purchases.test_endpoints import assert_ledger_sound, new_member

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
lots_t = table(Lot)
entries_t = table(JournalEntry)
postings_t = table(Posting)


async def _expiring_program(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> tuple[Api, ProgramContext]:
    program = await make_program(engine, expiry={"policy": "days", "days": 30})
    return Api(http, await make_key(engine, program, "admin")), program


async def _adjust(api: Api, member_id: str, amount: int, **headers: str) -> httpx.Response:
    body = {"member": {"id": member_id}, "amount": amount, "reason": f"adjust {amount}"}
    return await api.post("/v1/adjustments", body, **headers)


async def _lots(engine: AsyncEngine, member_id: str) -> list[tuple[int, int, datetime | None]]:
    """(amount, remaining, expires_at) of the member's lots, soonest expiry first."""
    async with reading(engine) as conn:
        rows = await conn.execute(
            select(lots_t.c.amount, lots_t.c.remaining, lots_t.c.expires_at)
            .where(lots_t.c.member_id == UUID(member_id))
            .order_by(lots_t.c.expires_at)
        )
        return [(int(a), int(r), e and as_utc(e)) for a, r, e in rows]


async def _available(api: Api, member_id: str) -> int:
    balance = (await api.get(f"/v1/members/{member_id}/balance")).json()
    points: dict[str, Any] = next(b for b in balance["balances"] if b["currency"] == "points")
    return int(points["available"])


async def test_a_debit_spends_the_soonest_expiring_lots_first(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    api, program = await _expiring_program(engine, http)
    member = await new_member(api)
    # Credited out of expiry order: the 300 expires before the 200.
    with clock.frozen(T0):
        assert (await _adjust(api, member["id"], 100)).status_code == 201  # expires T0+30d
    with clock.frozen(T0 + timedelta(days=10)):
        assert (await _adjust(api, member["id"], 200)).status_code == 201  # expires T0+40d
    with clock.frozen(T0 + timedelta(days=5)):
        assert (await _adjust(api, member["id"], 300)).status_code == 201  # expires T0+35d
    with clock.frozen(T0 + timedelta(days=12)):
        debit = await _adjust(api, member["id"], -150)
        assert debit.status_code == 201, debit.text
        assert debit.json()["amount"] == -150
        assert debit.json()["balance"]["available"] == 450
        assert await _available(api, member["id"]) == 450
        balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()
    # 100 from the lot expiring first, the other 50 from the next one; the latest untouched.
    assert await _lots(engine, member["id"]) == [
        (100, 0, T0 + timedelta(days=30)),
        (300, 250, T0 + timedelta(days=35)),
        (200, 200, T0 + timedelta(days=40)),
    ]
    assert [(e["amount"], e["expires_at"]) for e in balance["next_expiring"]] == [
        (250, "2026-04-14T12:00:00Z"),
        (200, "2026-04-19T12:00:00Z"),
    ]
    # The debit is one entry moving points from the member to the program's adjustments.
    async with reading(engine) as conn:
        entry = (
            await conn.execute(
                select(entries_t.c.id, entries_t.c.reason).where(
                    entries_t.c.member_id == UUID(member["id"]),
                    entries_t.c.reason == "adjust -150",
                )
            )
        ).one()
        legs = (
            await conn.execute(
                select(postings_t.c.account, postings_t.c.amount)
                .where(postings_t.c.entry_id == entry.id)
                .order_by(postings_t.c.account)
            )
        ).all()
    assert [(a, int(n)) for a, n in legs] == [("adjustments", 150), ("available", -150)]
    await assert_ledger_sound(engine, program)


async def test_a_debit_cannot_overdraw(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    assert (await _adjust(api, member["id"], 500)).status_code == 201
    too_much = await _adjust(api, member["id"], -501)
    assert too_much.status_code == 422, too_much.text
    assert too_much.json()["errors"][0]["field"] == "amount"
    assert await _available(api, member["id"]) == 500
    # All of it may go, and then nothing more.
    assert (await _adjust(api, member["id"], -500)).status_code == 201
    assert await _available(api, member["id"]) == 0
    assert (await _adjust(api, member["id"], -1)).status_code == 422
    assert await _available(api, member["id"]) == 0
    assert [(a, r) for a, r, _ in await _lots(engine, member["id"])] == [(500, 0)]
    await assert_ledger_sound(engine, program)


async def test_a_debit_is_idempotent_by_key(
    api: Api, engine: AsyncEngine, program: ProgramContext
) -> None:
    member = await new_member(api)
    assert (await _adjust(api, member["id"], 1_000)).status_code == 201
    first = await _adjust(api, member["id"], -300, **{"Idempotency-Key": "debit-1"})
    again = await _adjust(api, member["id"], -300, **{"Idempotency-Key": "debit-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert await _available(api, member["id"]) == 700
    other = await _adjust(api, member["id"], -200, **{"Idempotency-Key": "debit-1"})
    assert other.status_code == 409
    assert await _available(api, member["id"]) == 700
    async with reading(engine) as conn:
        debits = (
            await conn.execute(
                select(entries_t.c.id).where(
                    entries_t.c.member_id == UUID(member["id"]),
                    entries_t.c.reason == "adjust -300",
                )
            )
        ).all()
    assert len(debits) == 1
    await assert_ledger_sound(engine, program)
