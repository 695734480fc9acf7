"""Every query of purchases, returns and their lines."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch, insert_rows
from kopilka.kit.idempotency import StoredAnswer
from kopilka.kit.sql import is_postgres, one_of, pg_fetch, pg_fetch_keyed
from kopilka.models import OutboxEvent, Purchase, PurchaseLine, PurchaseReturn
from kopilka.models.base import table

purchases_t = table(Purchase)
lines_t = table(PurchaseLine)
returns_t = table(PurchaseReturn)
outbox_t = table(OutboxEvent)


# A till's single purchase on PostgreSQL: the member by identifier, their balance rows
# locked, and the stored answer of a purchase with this external id, in one round trip.
# The answer is read with the statement's snapshot, taken before the lock wait: a retry
# racing its own first attempt may miss it, insert, and hit the unique key; the transaction
# is then run again and finds it.
LOCK_MEMBER_WITH_ANSWER_PG = (
    "SELECT m.id, m.status, b.currency, b.available, b.pending, b.held,"
    " p.request_hash, p.answer"
    " FROM member_identifiers i JOIN members m ON m.id = i.member_id"
    " JOIN member_balances b ON b.member_id = m.id"
    " LEFT JOIN purchases p ON p.program_id = $1 AND p.external_id = $4"
    " WHERE i.program_id = $1 AND i.kind = $2 AND i.value = $3"
    " ORDER BY b.currency FOR UPDATE OF b"
)
FIND_ANSWERS_PG = (
    "SELECT external_id, request_hash, answer FROM purchases"
    " WHERE program_id = $1 AND external_id {keys}"
)


class PurchaseRepository:
    async def purchase_answers(
        self, conn: AsyncConnection, program_id: UUID, external_ids: Sequence[str]
    ) -> dict[str, StoredAnswer]:
        """The stored answer of each purchase already recorded under these external ids."""
        if not external_ids:
            return {}
        if is_postgres(conn):
            rows = await pg_fetch_keyed(
                conn, FIND_ANSWERS_PG, "varchar", program_id, keys=external_ids
            )
        else:
            query = select(
                purchases_t.c.external_id, purchases_t.c.request_hash, purchases_t.c.answer
            ).where(
                purchases_t.c.program_id == program_id,
                one_of(conn, purchases_t.c.external_id, set(external_ids)),
            )
            rows = list((await conn.execute(query)).all())
        return {r[0]: StoredAnswer(r[1], 201, r[2]) for r in rows}

    async def lock_member_with_answer(
        self, conn: AsyncConnection, program_id: UUID, kind: str, value: str, external_id: str
    ) -> list[Any]:
        """PostgreSQL only: see ``LOCK_MEMBER_WITH_ANSWER_PG``; one row per balance row."""
        return await pg_fetch(
            conn, LOCK_MEMBER_WITH_ANSWER_PG, program_id, kind, value, external_id
        )

    def stage_purchases(
        self, batch: WriteBatch, purchases: list[dict[str, Any]], lines: list[dict[str, Any]]
    ) -> None:
        batch.insert(purchases_t, purchases)
        batch.insert(lines_t, lines)

    def stage_outbox(self, batch: WriteBatch, rows: list[dict[str, Any]]) -> None:
        batch.insert(outbox_t, rows)

    async def insert_outbox(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if rows:
            await insert_rows(conn, outbox_t, rows)

    async def purchase_by_external_id(
        self, conn: AsyncConnection, program_id: UUID, external_id: str
    ) -> Any:
        query = select(purchases_t).where(
            purchases_t.c.program_id == program_id, purchases_t.c.external_id == external_id
        )
        return (await conn.execute(query)).one_or_none()

    async def purchase_lines(self, conn: AsyncConnection, purchase_id: UUID) -> list[Any]:
        query = (
            select(lines_t).where(lines_t.c.purchase_id == purchase_id).order_by(lines_t.c.line_no)
        )
        return list((await conn.execute(query)).all())

    async def record_return(
        self,
        conn: AsyncConnection,
        purchase_id: UUID,
        values: dict[str, Any],
        line_returns: dict[int, int],
        row: dict[str, Any],
    ) -> None:
        await conn.execute(
            update(purchases_t).where(purchases_t.c.id == purchase_id).values(**values)
        )
        if line_returns:
            await conn.execute(
                update(lines_t)
                .where(lines_t.c.id == bindparam("line_id"))
                .values(returned_quantity=bindparam("new_returned")),
                [{"line_id": k, "new_returned": v} for k, v in line_returns.items()],
            )
        await insert_rows(conn, returns_t, [row])


purchase_repository = PurchaseRepository()
