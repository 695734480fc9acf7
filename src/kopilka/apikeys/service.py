"""API keys: create (the secret is shown once), authenticate, list, revoke. Never commits.

Each process caches the keys it has seen. A revoked key is dropped from the revoking
process's cache at once. Any other process learns of it in one of two ways:

- on PostgreSQL, a process listening for revocations (``kopilka.apikeys.revocations``) is
  notified when the revoking transaction commits, and drops the key then;
- otherwise (SQLite, the listener still connecting or its connection lost) every request
  checks, in its own transaction, that its key is still active.
"""

import hashlib
import secrets
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.access.domain import Principal
from kopilka.apikeys.repository import ApiKeyRepository
from kopilka.audit.service import audit_service
from kopilka.errors import Conflict, InvalidInput, NotFound, Unauthorized
from kopilka.kit.ids import new_id

Scope = Literal["admin", "pos", "partner", "analyst"]
SCOPES: tuple[Scope, ...] = ("admin", "pos", "partner", "analyst")
KEY_PREFIX = "kp_"
PREFIX_LENGTH = 10


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never its secret nor its hash."""

    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


def hash_key(secret: str) -> str:
    # The secret has 256 random bits, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: Any) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=sorted(row.scopes.split(",")),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ApiKeyService:
    def __init__(self, cache_seconds: float = 30.0) -> None:
        self.cache_seconds = cache_seconds
        self.repository = ApiKeyRepository()
        self._cache: dict[str, tuple[float, Principal]] = {}
        # Engines whose database notifies this process of every revocation.
        self._watched: weakref.WeakSet[Engine] = weakref.WeakSet()
        # Counts revocations seen; a key read before one is not cached after it.
        self._revocations = 0

    async def create(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        name: str,
        scopes: list[str],
        now: datetime,
    ) -> tuple[str, UUID]:
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise InvalidInput(
                f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}",
                field="scope",
            )
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = new_id()
        await self.repository.insert(
            conn,
            key_id=key_id,
            program_id=program_id,
            name=name,
            prefix=secret[:PREFIX_LENGTH],
            key_hash=hash_key(secret),
            scopes=",".join(sorted(set(scopes))),
            now=now,
        )
        await audit_service.record(
            conn,
            program_id,
            "api_key.created",
            subject_type="api_key",
            subject_id=key_id,
            now=now,
            after={"name": name, "scopes": sorted(set(scopes))},
        )
        return secret, key_id

    def cached(self, secret: str) -> Principal | None:
        """The principal of a key checked less than ``cache_seconds`` ago, if any."""
        found = self._cache.get(hash_key(secret))
        if found is not None and time.monotonic() - found[0] < self.cache_seconds:
            return found[1]
        return None

    async def authenticate(self, conn: AsyncConnection, secret: str) -> Principal:
        digest = hash_key(secret)
        seen = self._revocations
        row = await self.repository.active_by_hash(conn, digest)
        if row is None:
            raise Unauthorized("unknown or revoked API key")
        principal = Principal.of_key(row.id, row.program_id, frozenset(row.scopes.split(",")))
        # A revocation noticed while the key was read may be this key's: do not keep it.
        if seen == self._revocations:
            self._cache[digest] = (time.monotonic(), principal)
        return principal

    async def ensure_active(self, conn: AsyncConnection, principal: Principal) -> None:
        """Unauthorized if the key of ``principal`` was revoked since it was cached. Free
        while this process is told of revocations in ``conn``'s database; otherwise a
        look-up in the request's own transaction."""
        if conn.sync_engine in self._watched:
            return
        if not await self.repository.is_active(conn, principal.key_id):
            self._forget(principal.key_id)
            raise Unauthorized("unknown or revoked API key")

    def watch(self, engine: AsyncEngine) -> None:
        """From now on every revocation in ``engine``'s database is noticed (``revoked``):
        what was cached before may have been revoked unseen, so it goes."""
        self.forget_all()
        self._watched.add(engine.sync_engine)

    def unwatch(self, engine: AsyncEngine) -> None:
        """Revocations are no longer noticed: every request checks its key again."""
        self._watched.discard(engine.sync_engine)

    def revoked(self, key_id: UUID) -> None:
        """Another process revoked ``key_id``."""
        self._revocations += 1
        self._forget(key_id)

    def forget_all(self) -> None:
        self._revocations += 1
        self._cache.clear()

    async def page(
        self,
        conn: AsyncConnection,
        program_id: UUID,
        *,
        limit: int,
        after: tuple[datetime, UUID] | None = None,
        include_revoked: bool = False,
    ) -> list[KeyInfo]:
        rows = await self.repository.page(
            conn, program_id, limit=limit, after=after, include_revoked=include_revoked
        )
        return [_info(row) for row in rows]

    async def revoke(
        self, conn: AsyncConnection, program_id: UUID, key: UUID | str, now: datetime
    ) -> KeyInfo:
        """Revoke the key with this id (or prefix); revoking a revoked key changes nothing."""
        found = await self.repository.find(conn, program_id, key)
        if not found:
            raise NotFound(f"no API key {key}", field="key")
        if len(found) > 1:
            raise Conflict(f"several keys have the prefix {key}: give the id", field="key")
        row = found[0]
        if row.revoked_at is None:
            await self.repository.revoke(conn, row.id, now)
            await audit_service.record(
                conn,
                program_id,
                "api_key.revoked",
                subject_type="api_key",
                subject_id=row.id,
                now=now,
                after={"name": row.name, "prefix": row.prefix},
            )
        self.revoked(row.id)
        info = _info(row)
        return KeyInfo(
            id=info.id,
            name=info.name,
            prefix=info.prefix,
            scopes=info.scopes,
            created_at=info.created_at,
            revoked_at=row.revoked_at or now,
        )

    def _forget(self, key_id: UUID) -> None:
        for digest, (_, principal) in list(self._cache.items()):
            if principal.key_id == key_id:
                del self._cache[digest]


api_key_service = ApiKeyService()
