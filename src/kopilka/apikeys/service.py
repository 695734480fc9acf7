"""API keys: create (the secret is shown once), authenticate, revoke. Never commits."""

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, Unauthorized
from kopilka.kit.ids import new_id
from kopilka.models import ApiKey
from kopilka.models.base import table

Scope = Literal["admin", "pos", "partner", "analyst"]
SCOPES: tuple[Scope, ...] = ("admin", "pos", "partner", "analyst")
KEY_PREFIX = "kp_"

keys_t = table(ApiKey)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of one program with its scopes."""

    key_id: UUID
    program_id: UUID
    scopes: frozenset[str]

    def allows(self, *scopes: str) -> bool:
        return "admin" in self.scopes or any(scope in self.scopes for scope in scopes)


def hash_key(secret: str) -> str:
    # The secret has 256 random bits, so a plain SHA-256 is enough (no password stretching).
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeyService:
    def __init__(self, cache_seconds: float = 30.0) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

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
        await conn.execute(
            keys_t.insert().values(
                id=key_id,
                program_id=program_id,
                name=name,
                prefix=secret[:10],
                key_hash=hash_key(secret),
                scopes=",".join(sorted(set(scopes))),
                created_at=now,
                revoked_at=None,
            )
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
        row = (
            await conn.execute(
                select(keys_t.c.id, keys_t.c.program_id, keys_t.c.scopes).where(
                    keys_t.c.key_hash == digest, keys_t.c.revoked_at.is_(None)
                )
            )
        ).first()
        if row is None:
            raise Unauthorized("unknown or revoked API key")
        principal = Principal(row.id, row.program_id, frozenset(row.scopes.split(",")))
        self._cache[digest] = (time.monotonic(), principal)
        return principal


api_key_service = ApiKeyService()
