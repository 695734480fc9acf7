"""``kopilka giftcards verify`` catches what it promises, on SQLite and PostgreSQL.

For each of its six checks, the database is tampered with so that exactly that invariant
breaks: the check fails by name, and the checks the tampering does not concern still pass.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.giftcards.audit import CHECKS, verify
from kopilka.giftcards.repository import cards_t, transactions_t
from kopilka.kit.clock import clock
from kopilka.kit.ids import new_id
from kopilka.programs.service import ProgramContext
from tests.conftest import Api
from tests.giftcards.test_service import assert_cards_sound

tx = transactions_t.c


@dataclass
class Cards:
    """Sound cards: ``spent`` was issued 1,000, paid 600 and refunded 300 of that payment
    (balances 1,000 → 400 → 700); ``fresh`` was issued 500 and never used."""

    spent: UUID
    issue: UUID
    payment: UUID
    refund: UUID
    fresh: UUID


async def _post(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(path, body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _cards(api: Api, engine: AsyncEngine, program: ProgramContext) -> Cards:
    spent = await _post(api, "/v1/gift-cards", {"amount": 1_000})
    paid = await _post(api, f"/v1/gift-cards/{spent['code']}/payments", {"amount": 600})
    refund = await _post(
        api,
        f"/v1/gift-cards/{spent['code']}/refunds",
        {"payment_id": paid["transaction"]["id"], "amount": 300},
    )
    assert refund["card"]["balance"] == 700
    fresh = await _post(api, "/v1/gift-cards", {"amount": 500})
    journal = (await api.get(f"/v1/gift-cards/{spent['code']}/transactions")).json()["items"]
    issue = next(t for t in journal if t["kind"] == "issue")
    await assert_cards_sound(engine, program)
    return Cards(
        spent=UUID(spent["id"]),
        issue=UUID(issue["id"]),
        payment=UUID(paid["transaction"]["id"]),
        refund=UUID(refund["transaction"]["id"]),
        fresh=UUID(fresh["id"]),
    )


async def _set_card(conn: AsyncConnection, card_id: UUID, **values: Any) -> None:
    await conn.execute(update(cards_t).where(cards_t.c.id == card_id).values(**values))


async def _set_tx(conn: AsyncConnection, tx_id: UUID, **values: Any) -> None:
    await conn.execute(update(transactions_t).where(tx.id == tx_id).values(**values))


async def _cache_a_wrong_balance(conn: AsyncConnection, cards: Cards) -> str:
    # The journal still replays to 700 at every step: only the card's balance is wrong.
    await _set_card(conn, cards.spent, balance=701)
    return f"card {cards.spent}: balance 701 and sequence 3 != transactions summing to 700"


async def _skip_a_sequence_number(conn: AsyncConnection, cards: Cards) -> str:
    await _set_card(conn, cards.fresh, last_seq=2)
    return f"card {cards.fresh}: balance 500 and sequence 2 != transactions summing to 500 in 1"


async def _break_the_journal_in_the_middle(conn: AsyncConnection, cards: Cards) -> str:
    # The amounts still sum to the balance; the payment claims to have left 1 more.
    await _set_tx(conn, cards.payment, balance_after=401)
    return f"transaction {cards.payment} (card {cards.spent}, #2): balance_after 401 != 400"


@asynccontextmanager
async def _negative_balances_allowed(conn: AsyncConnection) -> AsyncIterator[None]:
    """Lift the schema's own guards against negative balances for the writes inside: the
    verifier must catch what slips past them (say, in a restored backup). On PostgreSQL the
    constraints are dropped in the test's transaction, which is rolled back; SQLite's switch
    belongs to the connection, which goes back to the pool, so it is turned off again."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
        try:
            yield
        finally:
            await conn.exec_driver_sql("PRAGMA ignore_check_constraints = OFF")
    else:
        for table_name, constraint in (
            ("gift_card_transactions", "ck_gift_card_transactions_balance_after_not_negative"),
            ("gift_cards", "ck_gift_cards_balance_not_negative"),
        ):
            await conn.exec_driver_sql(f"ALTER TABLE {table_name} DROP CONSTRAINT {constraint}")
        yield


async def _overdraw_and_refund_back_above_zero(conn: AsyncConnection, cards: Cards) -> str:
    # A payment of 1,100 from 1,000 then the refund of 300: every sum agrees (1,000, -100,
    # 200), the refund fits in the payment, but the card went below zero in between.
    async with _negative_balances_allowed(conn):
        await _set_tx(conn, cards.payment, amount=-1_100, balance_after=-100)
        await _set_tx(conn, cards.refund, balance_after=200)
        await _set_card(conn, cards.spent, balance=200)
    return f"transaction {cards.payment} left balance -100"


async def _overdraw_a_card(conn: AsyncConnection, cards: Cards) -> str:
    # The fresh card's 500 issued and a payment of 600 from it: the journal agrees with the
    # card's -100, and a payment is a debit; only the sign of the balance is wrong.
    program_id = await conn.scalar(select(cards_t.c.program_id).where(cards_t.c.id == cards.fresh))
    async with _negative_balances_allowed(conn):
        await conn.execute(
            insert(transactions_t).values(
                id=new_id(),
                program_id=program_id,
                card_id=cards.fresh,
                seq=2,
                kind="payment",
                amount=-600,
                balance_after=-100,
                created_at=clock.now(),
            )
        )
        await _set_card(conn, cards.fresh, balance=-100, last_seq=2)
    return f"card {cards.fresh} has balance -100"


async def _give_a_debit_a_credits_sign(conn: AsyncConnection, cards: Cards) -> str:
    # The fresh card's issue recorded as an expiry of +500: balances all still agree.
    fresh_issue = await conn.scalar(
        transactions_t.select().with_only_columns(tx.id).where(tx.card_id == cards.fresh)
    )
    await _set_tx(conn, fresh_issue, kind="expiry")
    return f"transaction {fresh_issue}: a expiry of 500"


async def _refund_more_than_was_paid(conn: AsyncConnection, cards: Cards) -> str:
    # A refund of 700 of the 600 payment, the journal and the card adjusted to match.
    await _set_tx(conn, cards.refund, amount=700, balance_after=1_100)
    await _set_card(conn, cards.spent, balance=1_100)
    return f"refunds of {cards.payment} give back 700, the payment took 600 (payment)"


async def _refund_something_that_is_not_a_payment(conn: AsyncConnection, cards: Cards) -> str:
    await _set_tx(conn, cards.refund, refund_of=cards.issue)
    return f"refunds of {cards.issue} give back 300, the payment took -1000 (issue)"


async def _expire_a_card_that_still_holds_money(conn: AsyncConnection, cards: Cards) -> str:
    await _set_card(conn, cards.fresh, status="expired")
    return f"card {cards.fresh} is expired and holds 500"


Tampering = Callable[[AsyncConnection, Cards], Awaitable[str]]

TAMPERINGS: list[tuple[str, Tampering]] = [
    ("balances equal transactions", _cache_a_wrong_balance),
    ("balances equal transactions", _skip_a_sequence_number),
    ("journal replays to every balance", _break_the_journal_in_the_middle),
    ("never negative", _overdraw_and_refund_back_above_zero),
    ("never negative", _overdraw_a_card),
    ("amounts fit their kinds", _give_a_debit_a_credits_sign),
    ("refunds within their payments", _refund_more_than_was_paid),
    ("refunds within their payments", _refund_something_that_is_not_a_payment),
    ("expired cards are empty", _expire_a_card_that_still_holds_money),
]


def test_every_check_has_a_tampering_that_breaks_it() -> None:
    assert {name for name, _ in TAMPERINGS} == set(CHECKS)


@pytest.mark.parametrize(
    "check,tamper", TAMPERINGS, ids=[t.__name__.strip("_") for _, t in TAMPERINGS]
)
async def test_a_check_fails_by_name_when_its_invariant_is_broken(
    api: Api, engine: AsyncEngine, program: ProgramContext, check: str, tamper: Tampering
) -> None:
    cards = await _cards(api, engine, program)
    # Tampered and verified in one transaction, then rolled back: the schema changes some
    # tamperings need never outlive the test.
    async with engine.connect() as conn, conn.begin() as tampering:
        expected = await tamper(conn, cards)
        problems = await verify(conn, program.id)
        await tampering.rollback()
    assert problems[check], f"{check!r} missed the tampering"
    assert any(expected in problem for problem in problems[check]), problems[check]
    assert {name: found for name, found in problems.items() if name != check} == {
        name: [] for name in CHECKS if name != check
    }
