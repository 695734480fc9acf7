"""``kopilka giftcards verify``: the invariants of gift cards and wallets, checked with
set-based queries. Each check returns readable violations; none means the cards are sound:

1. every card's balance equals the sum of its transactions, and its sequence number the
   count of them (numbered 1, 2, 3 … with no gap);
2. every transaction's ``balance_after`` equals the sum of the card's transactions up to
   it: replayed in order, the journal gives every balance the card ever had;
3. no balance, now or after any transaction, is negative;
4. issues, top-ups and refunds add money, payments and expiries take it;
5. refunds refer to a payment of the same card and never give back more than it took;
6. expired cards are empty.
"""

from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.giftcards.domain import CREDITS, DEBITS, EXPIRED, PAYMENT, REFUND
from kopilka.models import GiftCard, GiftCardTransaction
from kopilka.models.base import table

cards_t = table(GiftCard)
tx_t = table(GiftCardTransaction)
LIMIT = 20  # violations reported per check: one is enough to fail, twenty to diagnose


async def balance_mismatches(conn: AsyncConnection, program_id: UUID) -> list[str]:
    journal = (
        select(
            tx_t.c.card_id,
            func.sum(tx_t.c.amount).label("total"),
            func.count().label("entries"),
            func.max(tx_t.c.seq).label("last"),
            func.min(tx_t.c.seq).label("first"),
        )
        .group_by(tx_t.c.card_id)
        .subquery()
    )
    total = func.coalesce(journal.c.total, 0)
    entries = func.coalesce(journal.c.entries, 0)
    query = (
        select(cards_t.c.id, cards_t.c.balance, cards_t.c.last_seq, total, entries)
        .join(journal, journal.c.card_id == cards_t.c.id, isouter=True)
        .where(
            cards_t.c.program_id == program_id,
            or_(
                cards_t.c.balance != total,
                cards_t.c.last_seq != entries,
                cards_t.c.last_seq != func.coalesce(journal.c.last, 0),
                journal.c.first < 1,
            ),
        )
        .limit(LIMIT)
    )
    return [
        f"card {r[0]}: balance {r[1]} and sequence {r[2]} != transactions summing to {r[3]} "
        f"in {r[4]} entries"
        for r in (await conn.execute(query)).all()
    ]


async def journal_breaks(conn: AsyncConnection, program_id: UUID) -> list[str]:
    running = (
        select(
            tx_t.c.id,
            tx_t.c.card_id,
            tx_t.c.seq,
            tx_t.c.balance_after,
            func.sum(tx_t.c.amount)
            .over(partition_by=tx_t.c.card_id, order_by=tx_t.c.seq)
            .label("running"),
        )
        .where(tx_t.c.program_id == program_id)
        .subquery()
    )
    query = (
        select(
            running.c.id,
            running.c.card_id,
            running.c.seq,
            running.c.balance_after,
            running.c.running,
        )
        .where(running.c.balance_after != running.c.running)
        .limit(LIMIT)
    )
    return [
        f"transaction {r[0]} (card {r[1]}, #{r[2]}): balance_after {r[3]} != {r[4]} summed up to it"
        for r in (await conn.execute(query)).all()
    ]


async def negative_balances(conn: AsyncConnection, program_id: UUID) -> list[str]:
    cards = select(cards_t.c.id, cards_t.c.balance).where(
        cards_t.c.program_id == program_id, cards_t.c.balance < 0
    )
    entries = select(tx_t.c.id, tx_t.c.balance_after).where(
        tx_t.c.program_id == program_id, tx_t.c.balance_after < 0
    )
    problems = [f"card {r[0]} has balance {r[1]}" for r in (await conn.execute(cards.limit(LIMIT)))]
    problems += [
        f"transaction {r[0]} left balance {r[1]}"
        for r in (await conn.execute(entries.limit(LIMIT)))
    ]
    return problems[:LIMIT]


async def wrong_signs(conn: AsyncConnection, program_id: UUID) -> list[str]:
    query = (
        select(tx_t.c.id, tx_t.c.kind, tx_t.c.amount)
        .where(
            tx_t.c.program_id == program_id,
            ~or_(
                and_(tx_t.c.kind.in_(sorted(CREDITS)), tx_t.c.amount > 0),
                and_(tx_t.c.kind.in_(sorted(DEBITS)), tx_t.c.amount < 0),
            ),
        )
        .limit(LIMIT)
    )
    return [f"transaction {r[0]}: a {r[1]} of {r[2]}" for r in (await conn.execute(query)).all()]


async def over_refunds(conn: AsyncConnection, program_id: UUID) -> list[str]:
    payments = tx_t.alias("payments")
    refunded = (
        select(tx_t.c.refund_of, tx_t.c.card_id, func.sum(tx_t.c.amount).label("total"))
        .where(tx_t.c.program_id == program_id, tx_t.c.kind == REFUND)
        .group_by(tx_t.c.refund_of, tx_t.c.card_id)
        .subquery()
    )
    query = (
        select(refunded.c.refund_of, refunded.c.total, payments.c.amount, payments.c.kind)
        .join(payments, payments.c.id == refunded.c.refund_of, isouter=True)
        .where(
            or_(
                payments.c.id.is_(None),
                payments.c.kind != PAYMENT,
                payments.c.card_id != refunded.c.card_id,
                refunded.c.total > -payments.c.amount,
            )
        )
        .limit(LIMIT)
    )
    return [
        f"refunds of {r[0]} give back {r[1]}, the payment took {-(r[2] or 0)} ({r[3]})"
        for r in (await conn.execute(query)).all()
    ]


async def expired_not_empty(conn: AsyncConnection, program_id: UUID) -> list[str]:
    query = (
        select(cards_t.c.id, cards_t.c.balance)
        .where(
            cards_t.c.program_id == program_id,
            cards_t.c.status == EXPIRED,
            cards_t.c.balance != 0,
        )
        .limit(LIMIT)
    )
    return [f"card {r[0]} is expired and holds {r[1]}" for r in (await conn.execute(query)).all()]


CHECKS = {
    "balances equal transactions": balance_mismatches,
    "journal replays to every balance": journal_breaks,
    "never negative": negative_balances,
    "amounts fit their kinds": wrong_signs,
    "refunds within their payments": over_refunds,
    "expired cards are empty": expired_not_empty,
}


async def verify(conn: AsyncConnection, program_id: UUID) -> dict[str, list[str]]:
    """Run every check; the result maps a check's name to its violations."""
    return {name: await check(conn, program_id) for name, check in CHECKS.items()}
