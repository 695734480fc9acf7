"""Idempotency of value-moving requests.

A request carries a key (the ``Idempotency-Key`` header, or the external id of a purchase or
return). The first request with a key stores its answer in the same transaction as its
effects; a retry with the same key and the same body gets that answer back and moves
nothing; the same key with another body is a 409.
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import IdempotencyConflict
from kopilka.kit.bulk import insert_rows
from kopilka.kit.canonical import fingerprint
from kopilka.kit.clock import clock
from kopilka.kit.sql import is_postgres, one_of, pg_fetch_keyed
from kopilka.models import IdempotencyRecord
from kopilka.models.base import table
from kopilka.outbox.unit import UnitOfWork

idempotency_t = table(IdempotencyRecord)


FIND_PG = (
    "SELECT key, request_hash, status_code, response FROM idempotency_records"
    " WHERE program_id = $1 AND key {keys}"
)


@dataclass(frozen=True)
class StoredAnswer:
    request_hash: str
    status_code: int
    response: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any]


def request_hash(body: Any) -> str:
    return fingerprint(body)


def ensure_same_request(
    first_hash: str, new_hash: str, key: str, field: str = "Idempotency-Key"
) -> None:
    """A key may only be reused for the very same request."""
    if first_hash != new_hash:
        raise IdempotencyConflict(
            f"{field} {key!r} was used before with a different request", field=field
        )


def replay(record: Any, expected_hash: str, key: str, field: str = "Idempotency-Key") -> Replay:
    """The stored answer for ``key``, or a conflict if the new body differs from the first."""
    ensure_same_request(record.request_hash, expected_hash, key, field)
    return Replay(record.status_code, record.response)


class IdempotencyStore:
    async def find_many(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> dict[str, Any]:
        if not keys:
            return {}
        if is_postgres(conn):
            rows = await pg_fetch_keyed(conn, FIND_PG, "varchar", program_id, keys=keys)
            return {
                r["key"]: StoredAnswer(r["request_hash"], r["status_code"], r["response"])
                for r in rows
            }
        query = select(idempotency_t).where(
            idempotency_t.c.program_id == program_id,
            one_of(conn, idempotency_t.c.key, set(keys)),
        )
        return {r.key: r for r in (await conn.execute(query)).all()}

    async def find(self, conn: AsyncConnection, program_id: UUID, key: str) -> Any:
        return (await self.find_many(conn, program_id, [key])).get(key)

    def row(
        self,
        program_id: UUID,
        key: str,
        hash_: str,
        status_code: int,
        body: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "program_id": program_id,
            "key": key,
            "request_hash": hash_,
            "status_code": status_code,
            "response": body,
            "created_at": now,
        }

    async def run_once(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        key: str | None,
        body: BaseModel,
        operation: Callable[[], Awaitable[dict[str, Any]]],
        lock: Callable[[], Awaitable[None]],
        status_code: int = 201,
        *,
        external_id: str | None = None,
    ) -> tuple[int, dict[str, Any], bool]:
        """Run ``operation`` once per key; a retry with the same key replays the first answer.
        Returns (status code, body, replayed). ``external_id``: the key comes from that field
        of the body, and a conflict names it (not the header the caller never sent).

        The key is looked up only after ``lock`` has taken the member's lock: a retry racing
        its first attempt waits for it and then finds its answer, instead of running again.
        """
        if key is None:
            return status_code, await operation(), False
        await lock()
        hash_ = request_hash({"path": type(body).__name__, "body": body.model_dump(mode="json")})
        record = await self.find(conn, program_id, key)
        if record is not None:
            answer = (
                replay(record, hash_, external_id, "external_id")
                if external_id is not None
                else replay(record, hash_, key)
            )
            return answer.status_code, answer.body, True
        result = await operation()
        await self.insert(
            conn, [self.row(program_id, key, hash_, status_code, result, clock.now())]
        )
        return status_code, result, False

    def stage(self, uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
        uow.insert(idempotency_t, rows)

    async def insert(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if rows:
            await insert_rows(conn, idempotency_t, rows)


idempotency_store = IdempotencyStore()
