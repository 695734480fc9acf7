"""Every query of API keys."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import is_postgres, pg_fetch
from kopilka.models import ApiKey
from kopilka.models.base import table

keys_t = table(ApiKey)
IS_ACTIVE_PG = "SELECT 1 FROM api_keys WHERE id = $1 AND revoked_at IS NULL"
# Every server process listens here; the payload is the revoked key's id.
REVOCATIONS_CHANNEL = "kopilka_api_keys"

# What may be shown of a key: never its hash (nor, since it is not stored, its secret).
_SHOWN = (
    keys_t.c.id,
    keys_t.c.program_id,
    keys_t.c.name,
    keys_t.c.prefix,
    keys_t.c.scopes,
    keys_t.c.created_at,
    keys_t.c.revoked_at,
)


class ApiKeyRepository:
    async def insert(
        self,
        conn: AsyncConnection,
        *,
        key_id: UUID,
        program_id: UUID,
        name: str,
        prefix: str,
        key_hash: str,
        scopes: str,
        now: datetime,
    ) -> None:
        await conn.execute(
            keys_t.insert().values(
                id=key_id,
                program_id=program_id,
                name=name,
                prefix=prefix,
                key_hash=key_hash,
                scopes=scopes,
                created_at=now,
                revoked_at=None,
            )
        )

    async def active_by_hash(self, conn: AsyncConnection, key_hash: str) -> Any:
        query = select(keys_t.c.id, keys_t.c.program_id, keys_t.c.scopes).where(
            keys_t.c.key_hash == key_hash, keys_t.c.revoked_at.is_(None)
        )
        return (await conn.execute(query)).first()

    async def is_active(self, conn: AsyncConnection, key_id: UUID) -> bool:
        """Every request asks this first: on PostgreSQL a driver-level statement (a Core
        statement's building and caching would cost more than the look-up itself)."""
        if is_postgres(conn):
            return bool(await pg_fetch(conn, IS_ACTIVE_PG, key_id))
        query = select(keys_t.c.id).where(keys_t.c.id == key_id, keys_t.c.revoked_at.is_(None))
        return (await conn.execute(query)).first() is not None

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None,
        include_revoked: bool,
    ) -> list[Any]:
        """Keys oldest first, ``after`` the (created_at, id) of the last one shown."""
        query = select(*_SHOWN).where(keys_t.c.program_id == program_id)
        if not include_revoked:
            query = query.where(keys_t.c.revoked_at.is_(None))
        if after is not None:
            query = query.where(tuple_(keys_t.c.created_at, keys_t.c.id) > tuple_(*after))
        query = query.order_by(keys_t.c.created_at, keys_t.c.id).limit(limit)
        return list((await conn.execute(query)).all())

    async def find(self, conn: AsyncConnection, program_id: UUID, key: UUID | str) -> list[Any]:
        """Keys of the program with this id or (a string) this prefix."""
        where = keys_t.c.id == key if isinstance(key, UUID) else keys_t.c.prefix == key
        query = select(*_SHOWN, keys_t.c.key_hash).where(keys_t.c.program_id == program_id, where)
        return list((await conn.execute(query)).all())

    async def revoke(self, conn: AsyncConnection, key_id: UUID, now: datetime) -> None:
        """Revoke, and on PostgreSQL tell every listening process when this commits."""
        await conn.execute(
            update(keys_t)
            .where(keys_t.c.id == key_id, keys_t.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if is_postgres(conn):
            await conn.execute(select(func.pg_notify(REVOCATIONS_CHANNEL, str(key_id))))
