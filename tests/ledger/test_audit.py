"""``kopilka ledger verify`` catches what it promises, on SQLite and PostgreSQL.

Every other test trusts ``assert_ledger_sound``; these show that each of its checks fails,
by name, when the database is tampered with so that exactly its invariant breaks, while the
checks the tampering does not concern still pass.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import httpx
import pytest
from sqlalchemy import ColumnElement, and_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, transaction
from kopilka.ledger.audit import CHECKS, verify
from kopilka.models import Lot, MemberBalance, Posting, Redemption, RedemptionAllocation
from kopilka.models.base import table
from kopilka.programs.service import ProgramContext
from tests.conftest import Api, make_key, make_program
from tests.fixtures.factories import purchase_body
from tests.purchases.test_endpoints import assert_ledger_sound, new_member

postings_t = table(Posting)
balances_t = table(MemberBalance)
lots_t = table(Lot)
redemptions_t = table(Redemption)
allocations_t = table(RedemptionAllocation)


@dataclass
class Books:
    """One member's sound books: a pending lot of 100 points (a purchase, pending 14 days),
    an available lot of 500 (an adjustment), and a hold of 200 taken from it."""

    member_id: UUID
    hold_id: UUID


async def _books(engine: AsyncEngine, http: httpx.AsyncClient) -> tuple[ProgramContext, Books]:
    program = await make_program(engine, pending_days=14)
    api = Api(http, await make_key(engine, program, "admin"))
    member = await new_member(api)
    bought = await api.post("/v1/purchases", purchase_body(member["external_id"], 10_000))
    assert bought.status_code == 201, bought.text
    credit = {"member": {"id": member["id"]}, "amount": 500, "reason": "welcome"}
    assert (await api.post("/v1/adjustments", credit)).status_code == 201
    hold = await api.post(
        "/v1/redemptions", {"member": {"id": member["id"]}, "amount": 200, "mode": "hold"}
    )
    assert hold.status_code == 201, hold.text
    balance = (await api.get(f"/v1/members/{member['id']}/balance")).json()["balances"][0]
    assert (balance["available"], balance["pending"], balance["held"]) == (300, 100, 200)
    await assert_ledger_sound(engine, program)
    return program, Books(UUID(member["id"]), UUID(hold.json()["id"]))


def _lot(books: Books, status: str) -> ColumnElement[bool]:
    return and_(lots_t.c.member_id == books.member_id, lots_t.c.status == status)


async def _unbalance_an_entry(conn: AsyncConnection, books: Books) -> str:
    # The program's leg of the adjustment: no member account changes, only the entry's sum.
    await conn.execute(
        update(postings_t)
        .where(postings_t.c.member_id == books.member_id, postings_t.c.account == "adjustments")
        .values(amount=postings_t.c.amount + 1)
    )
    return "does not sum to zero in points: 1"


async def _cache_a_wrong_available_balance(conn: AsyncConnection, books: Books) -> str:
    await conn.execute(
        update(balances_t)
        .where(balances_t.c.member_id == books.member_id)
        .values(available=balances_t.c.available + 7)
    )
    return "cached available 307 != postings 300"


async def _shrink_an_available_lot(conn: AsyncConnection, books: Books) -> str:
    await conn.execute(
        update(lots_t).where(_lot(books, "available")).values(remaining=lots_t.c.remaining - 1)
    )
    return "available 300 != available lots 299"


async def _shrink_a_pending_lot(conn: AsyncConnection, books: Books) -> str:
    await conn.execute(
        update(lots_t).where(_lot(books, "pending")).values(remaining=lots_t.c.remaining - 1)
    )
    return "pending 100 != pending lots 99"


async def _close_a_hold_without_its_postings(conn: AsyncConnection, books: Books) -> str:
    await conn.execute(
        update(redemptions_t).where(redemptions_t.c.id == books.hold_id).values(status="voided")
    )
    return "held 200 != open holds 0"


async def _cache_a_negative_pending_balance(conn: AsyncConnection, books: Books) -> str:
    # Postings and the cache agree on -100 pending; a lot cannot hold less than nothing, so
    # the pending lot is left empty (it also disagrees with the balance, in the same check).
    await conn.execute(
        update(balances_t).where(balances_t.c.member_id == books.member_id).values(pending=-100)
    )
    await conn.execute(
        update(postings_t)
        .where(postings_t.c.member_id == books.member_id, postings_t.c.account == "pending")
        .values(amount=-postings_t.c.amount)
    )
    await conn.execute(
        update(postings_t)
        .where(postings_t.c.member_id == books.member_id, postings_t.c.account == "issued")
        .values(amount=-postings_t.c.amount)
    )
    await conn.execute(update(lots_t).where(_lot(books, "pending")).values(remaining=0))
    return "negative pending or held balance"


async def _make_a_lot_hold_more_than_it_was_given(conn: AsyncConnection, books: Books) -> str:
    # Remaining unchanged (so every sum still agrees), but above the lot's amount.
    await conn.execute(
        update(lots_t).where(_lot(books, "available")).values(amount=lots_t.c.remaining - 1)
    )
    return "has remaining 300 outside 0..299"


async def _allocate_less_than_the_hold(conn: AsyncConnection, books: Books) -> str:
    await conn.execute(
        update(allocations_t)
        .where(allocations_t.c.redemption_id == books.hold_id)
        .values(amount=allocations_t.c.amount - 1)
    )
    return f"hold {books.hold_id} of 200 has allocations summing to 199"


async def _leave_points_in_transfer(conn: AsyncConnection, books: Books) -> str:
    # Every entry still balances and every member balance agrees: only the program's side
    # now says points left for the transfers account and never arrived anywhere.
    await conn.execute(
        update(postings_t)
        .where(postings_t.c.member_id == books.member_id, postings_t.c.account == "issued")
        .values(account="transfers")
    )
    return "the transfers account holds"


Tampering = Callable[[AsyncConnection, Books], Awaitable[str]]

TAMPERINGS: list[tuple[str, Tampering]] = [
    ("entries sum to zero", _unbalance_an_entry),
    ("balances equal postings and lots", _cache_a_wrong_available_balance),
    ("balances equal postings and lots", _shrink_an_available_lot),
    ("balances equal postings and lots", _shrink_a_pending_lot),
    ("balances equal postings and lots", _close_a_hold_without_its_postings),
    ("balances equal postings and lots", _cache_a_negative_pending_balance),
    ("lots within bounds", _make_a_lot_hold_more_than_it_was_given),
    ("holds fully allocated", _allocate_less_than_the_hold),
    ("merges moved every point they took", _leave_points_in_transfer),
]


def test_every_check_has_a_tampering_that_breaks_it() -> None:
    assert {name for name, _ in TAMPERINGS} == set(CHECKS)


@pytest.mark.parametrize(
    "check,tamper", TAMPERINGS, ids=[t.__name__.strip("_") for _, t in TAMPERINGS]
)
async def test_a_check_fails_by_name_when_its_invariant_is_broken(
    engine: AsyncEngine, http: httpx.AsyncClient, check: str, tamper: Tampering
) -> None:
    program, books = await _books(engine, http)
    # Tampered and verified in one transaction, then rolled back.
    async with engine.connect() as conn, conn.begin() as tampering:
        expected = await tamper(conn, books)
        problems = await verify(conn, program.id)
        await tampering.rollback()
    assert problems[check], f"{check!r} missed the tampering"
    assert any(expected in problem for problem in problems[check]), problems[check]
    assert {name: found for name, found in problems.items() if name != check} == {
        name: [] for name in CHECKS if name != check
    }


async def test_another_programs_tampering_is_not_reported(
    engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    program, _ = await _books(engine, http)
    other, books = await _books(engine, http)
    async with transaction(engine) as conn:
        await _cache_a_wrong_available_balance(conn, books)
    await assert_ledger_sound(engine, program)
    async with reading(engine) as conn:
        assert (await verify(conn, other.id))["balances equal postings and lots"]
