"""Every query of gift cards, wallets and their journal.

Locking is explicit: ``lock=True`` takes the card's row lock (``FOR UPDATE``) on
PostgreSQL; on SQLite a write transaction already holds the database's single write lock
(``BEGIN IMMEDIATE``). Every movement of a card runs under its row lock, and the update
that moves its balance is conditional as well, so the balance cannot go below zero even for
a caller that did not lock.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Row, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.giftcards.domain import ACTIVE, EXPIRED, GIFT_CARD, PAYMENT, REFUND, WALLET
from kopilka.kit.bulk import insert_rows
from kopilka.kit.codes import like_pattern
from kopilka.kit.sql import one_of
from kopilka.models import GiftCard, GiftCardTransaction, OutboxEvent
from kopilka.models.base import table

cards_t = table(GiftCard)
transactions_t = table(GiftCardTransaction)
outbox_t = table(OutboxEvent)

CODES_PER_QUERY = 1000
Moved = tuple[int, int]  # (balance, seq) after a movement


def _unexpired(now: datetime) -> ColumnElement[bool]:
    c = cards_t.c
    return or_(c.expires_at.is_(None), c.expires_at > now)


class GiftCardRepository:
    # --- cards --------------------------------------------------------------------------------

    async def by_code(
        self, conn: AsyncConnection, program_id: UUID, code: str, *, lock: bool = False
    ) -> Row[Any] | None:
        query = select(cards_t).where(
            cards_t.c.program_id == program_id, cards_t.c.code == code, cards_t.c.kind == GIFT_CARD
        )
        if lock:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def by_id(
        self, conn: AsyncConnection, program_id: UUID, card_id: UUID, *, lock: bool = False
    ) -> Row[Any] | None:
        query = select(cards_t).where(cards_t.c.program_id == program_id, cards_t.c.id == card_id)
        if lock:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def wallet(
        self, conn: AsyncConnection, program_id: UUID, member_id: UUID, *, lock: bool = False
    ) -> Row[Any] | None:
        query = select(cards_t).where(
            cards_t.c.program_id == program_id,
            cards_t.c.member_id == member_id,
            cards_t.c.kind == WALLET,
        )
        if lock:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def member_cards(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        member_id: UUID,
        *,
        limit: int,
        before: tuple[datetime, UUID] | None,
    ) -> list[Row[Any]]:
        """The member's gift cards (not the wallet), newest first."""
        c = cards_t.c
        query = select(cards_t).where(
            c.member_id == member_id, c.program_id == program_id, c.kind == GIFT_CARD
        )
        if before is not None:
            query = query.where(tuple_(c.issued_at, c.id) < tuple_(*before))
        query = query.order_by(c.issued_at.desc(), c.id.desc()).limit(limit)
        return list((await conn.execute(query)).all())

    async def insert_cards(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        await insert_rows(conn, cards_t, rows)

    async def insert_wallet(self, conn: AsyncConnection, row: dict[str, Any]) -> None:
        """Insert a wallet unless the member has one: two first top-ups at once open one
        wallet, the second waits for the first and then finds it."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(dialect.insert(cards_t).values(**row).on_conflict_do_nothing())

    async def update_card(
        self, conn: AsyncConnection, card_id: UUID, values: Mapping[str, Any]
    ) -> None:
        await conn.execute(update(cards_t).where(cards_t.c.id == card_id).values(**values))

    async def codes_taken(
        self, conn: AsyncConnection, program_id: UUID, codes: Sequence[str]
    ) -> set[str]:
        taken: set[str] = set()
        for start in range(0, len(codes), CODES_PER_QUERY):
            chunk = codes[start : start + CODES_PER_QUERY]
            query = select(cards_t.c.code).where(
                cards_t.c.program_id == program_id, one_of(conn, cards_t.c.code, chunk)
            )
            taken.update((await conn.execute(query)).scalars())
        return taken

    async def count_matching(self, conn: AsyncConnection, program_id: UUID, pattern: str) -> int:
        """How many of the program's codes have the shape of ``pattern``."""
        query = select(func.count()).where(
            cards_t.c.program_id == program_id,
            cards_t.c.code.like(like_pattern(pattern), escape="\\"),
        )
        return int(await conn.scalar(query) or 0)

    # --- movements ----------------------------------------------------------------------------

    async def _move(
        self,
        conn: AsyncConnection,
        card_id: UUID,
        amount: int,
        now: datetime,
        *conditions: ColumnElement[bool],
    ) -> Moved | None:
        """Add ``amount`` to the balance and take the next sequence number in one statement,
        only where ``conditions`` hold; None when they do not."""
        c = cards_t.c
        statement = (
            update(cards_t)
            .where(c.id == card_id, *conditions)
            .values(balance=c.balance + amount, last_seq=c.last_seq + 1, updated_at=now)
            .returning(c.balance, c.last_seq)
        )
        row = (await conn.execute(statement)).first()
        return None if row is None else (int(row[0]), int(row[1]))

    async def debit(
        self, conn: AsyncConnection, card_id: UUID, amount: int, now: datetime
    ) -> Moved | None:
        """Take ``amount`` (> 0) from an active, unexpired card that holds it. This one
        statement is what keeps any number of tills paying at once from taking a card below
        zero: each sees the balance the previous one left."""
        c = cards_t.c
        return await self._move(
            conn, card_id, -amount, now, c.balance >= amount, c.status == ACTIVE, _unexpired(now)
        )

    async def credit(
        self,
        conn: AsyncConnection,
        card_id: UUID,
        amount: int,
        now: datetime,
        statuses: Sequence[str],
    ) -> Moved | None:
        """Add ``amount`` (> 0) to an unexpired card in one of ``statuses``."""
        c = cards_t.c
        return await self._move(conn, card_id, amount, now, c.status.in_(statuses), _unexpired(now))

    async def close_expired(
        self,
        conn: AsyncConnection,
        card_id: UUID,
        balance: int,
        as_of: datetime,
        now: datetime,
    ) -> Moved | None:
        """Empty an overdue card holding ``balance`` and mark it expired; an empty card
        gets no movement (its sequence number stays)."""
        c = cards_t.c
        statement = (
            update(cards_t)
            .where(
                c.id == card_id,
                c.balance == balance,
                c.status != EXPIRED,
                c.expires_at <= as_of,
            )
            .values(
                balance=0,
                status=EXPIRED,
                last_seq=c.last_seq + (1 if balance else 0),
                updated_at=now,
            )
            .returning(c.balance, c.last_seq)
        )
        row = (await conn.execute(statement)).first()
        return None if row is None else (int(row[0]), int(row[1]))

    async def due(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        as_of: datetime,
        after: UUID | None,
        limit: int,
    ) -> list[UUID]:
        """Cards expired by ``as_of`` and not yet closed, in id order after ``after`` (the
        order the job locks them in)."""
        c = cards_t.c
        # ``status <> 'expired'`` as written in the partial index, so the index serves it.
        query = select(c.id).where(
            c.program_id == program_id, c.status != EXPIRED, c.expires_at <= as_of
        )
        if after is not None:
            query = query.where(c.id > after)
        query = query.order_by(c.id).limit(limit)
        return list((await conn.execute(query)).scalars())

    # --- the journal --------------------------------------------------------------------------

    async def insert_transactions(
        self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]
    ) -> None:
        await insert_rows(conn, transactions_t, rows)

    async def by_external_id(
        self, conn: AsyncConnection, card_id: UUID, kind: str, external_id: str
    ) -> Row[Any] | None:
        t = transactions_t.c
        query = select(transactions_t).where(
            t.card_id == card_id, t.kind == kind, t.external_id == external_id
        )
        return (await conn.execute(query)).first()

    async def payment(
        self,
        conn: AsyncConnection,
        card_id: UUID,
        *,
        payment_id: UUID | None = None,
        external_id: str | None = None,
    ) -> Row[Any] | None:
        t = transactions_t.c
        query = select(transactions_t).where(t.card_id == card_id, t.kind == PAYMENT)
        if payment_id is not None:
            query = query.where(t.id == payment_id)
        else:
            query = query.where(t.external_id == external_id)
        return (await conn.execute(query)).first()

    async def refunded(self, conn: AsyncConnection, payment_id: UUID) -> int:
        """What refunds have given back of the payment so far (read under the card's lock:
        no refund of it can be added meanwhile)."""
        t = transactions_t.c
        query = select(func.coalesce(func.sum(t.amount), 0)).where(
            t.refund_of == payment_id, t.kind == REFUND
        )
        return int(await conn.scalar(query) or 0)

    async def transactions(
        self, conn: AsyncConnection, card_id: UUID, *, limit: int, before_seq: int | None
    ) -> list[Row[Any]]:
        """The card's journal, newest first, from before ``before_seq``."""
        t = transactions_t.c
        query = select(transactions_t).where(t.card_id == card_id)
        if before_seq is not None:
            query = query.where(t.seq < before_seq)
        query = query.order_by(t.seq.desc()).limit(limit)
        return list((await conn.execute(query)).all())


gift_card_repository = GiftCardRepository()
