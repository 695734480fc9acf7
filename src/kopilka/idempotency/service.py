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
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import IdempotencyConflict
from kopilka.idempotency.repository import IdempotencyRepository, idempotency_repository
from kopilka.kit.canonical import fingerprint
from kopilka.kit.clock import clock
from kopilka.outbox.unit import UnitOfWork


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
    def __init__(self, repository: IdempotencyRepository = idempotency_repository) -> None:
        self.repository = repository

    async def find_many(
        self, conn: AsyncConnection, program_id: UUID, keys: Sequence[str]
    ) -> dict[str, StoredAnswer]:
        found = await self.repository.find_many(conn, program_id, keys)
        return {key: StoredAnswer(hash_, status, body) for key, hash_, status, body in found}

    async def find(self, conn: AsyncConnection, program_id: UUID, key: str) -> StoredAnswer | None:
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
        self.repository.stage(uow, rows)

    async def insert(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        await self.repository.insert(conn, rows)


idempotency_store = IdempotencyStore()
