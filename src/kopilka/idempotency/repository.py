"""Every query of stored answers (``idempotency_records``)."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import insert_rows
from kopilka.kit.sql import is_postgres, one_of, pg_fetch_keyed
from kopilka.models import IdempotencyRecord
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

idempotency_t = table(IdempotencyRecord)

FIND_PG = (
    "SELECT key, request_hash, status_code, response FROM idempotency_records"
    " WHERE program_id = $1 AND key {keys}"
)


class IdempotencyRepository:
    async def find_many(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> list[tuple[str, str, int, dict[str, Any]]]:
        """(key, request hash, status code, answer) of the keys already used."""
        if not keys:
            return []
        if is_postgres(conn):
            rows = await pg_fetch_keyed(conn, FIND_PG, "varchar", program_id, keys=keys)
            return [(r["key"], r["request_hash"], r["status_code"], r["response"]) for r in rows]
        query = select(
            idempotency_t.c.key,
            idempotency_t.c.request_hash,
            idempotency_t.c.status_code,
            idempotency_t.c.response,
        ).where(
            idempotency_t.c.program_id == program_id,
            one_of(conn, idempotency_t.c.key, set(keys)),
        )
        return [(r[0], r[1], r[2], r[3]) for r in (await conn.execute(query)).all()]

    def stage(self, uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
        uow.insert(idempotency_t, rows)

    async def insert(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if rows:
            await insert_rows(conn, idempotency_t, rows)


idempotency_repository = IdempotencyRepository()
