"""Every query of wallet passes: the programs' settings, the devices registered for passes,
and — read only — when a member's card last changed, from the rows the ledger, the tiers
and the members keep current anyway (``updated_at``): no write on the purchase path."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.sql import is_postgres, one_of
from kopilka.models import Member, MemberBalance, MemberTier, WalletRegistration, WalletSetting
from kopilka.models.base import table

settings_t = table(WalletSetting)
registrations_t = table(WalletRegistration)
members_t = table(Member)
balances_t = table(MemberBalance)
tiers_t = table(MemberTier)


@dataclass(frozen=True)
class SettingsRow:
    program_id: UUID
    document: dict[str, Any]
    apple_key: str | None
    apple_key_password: str | None
    google_key: str | None
    token_secret: str
    updated_at: datetime


@dataclass(frozen=True)
class Registration:
    program_id: UUID
    member_id: UUID
    pass_type_identifier: str
    push_token: str


class WalletRepository:
    # --- settings ------------------------------------------------------------------------

    async def settings(self, conn: AsyncConnection, program_id: UUID) -> SettingsRow | None:
        rows = await self._settings_where(conn, settings_t.c.program_id == program_id)
        return rows[0] if rows else None

    async def settings_of_pass_type(
        self, conn: AsyncConnection, pass_type_identifier: str
    ) -> list[SettingsRow]:
        """The programs whose Apple passes are of this type (one, unless several programs
        share an Apple developer account's pass type)."""
        return await self._settings_where(
            conn, settings_t.c.apple_pass_type == pass_type_identifier
        )

    async def settings_of_programs(
        self, conn: AsyncConnection, program_ids: Collection[UUID]
    ) -> dict[UUID, SettingsRow]:
        if not program_ids:
            return {}
        rows = await self._settings_where(conn, one_of(conn, settings_t.c.program_id, program_ids))
        return {row.program_id: row for row in rows}

    async def _settings_where(self, conn: AsyncConnection, condition: Any) -> list[SettingsRow]:
        s = settings_t.c
        rows = await conn.execute(
            select(
                s.program_id,
                s.document,
                s.apple_key,
                s.apple_key_password,
                s.google_key,
                s.token_secret,
                s.updated_at,
            ).where(condition)
        )
        return [SettingsRow(*row) for row in rows]

    async def save_settings(
        self, conn: AsyncConnection, program_id: UUID, values: dict[str, Any], secret: str
    ) -> None:
        """Insert the program's row (with ``secret``, the first time) or update it; the
        secret of a row that exists is never replaced."""
        dialect = postgresql if is_postgres(conn) else sqlite
        statement = dialect.insert(settings_t).values(
            program_id=program_id, token_secret=secret, **values
        )
        await conn.execute(
            statement.on_conflict_do_update(index_elements=["program_id"], set_=values)
        )

    # --- registrations -------------------------------------------------------------------

    async def register(
        self,
        conn: AsyncConnection,
        registration: Registration,
        device_library_id: str,
        now: datetime,
    ) -> bool:
        """Register the device for the pass (its newest push token); True if it is new."""
        r = registrations_t.c
        key = and_(
            r.member_id == registration.member_id,
            r.device_library_id == device_library_id,
            r.pass_type_identifier == registration.pass_type_identifier,
        )
        changed = await conn.execute(
            update(registrations_t)
            .where(key)
            .values(push_token=registration.push_token, updated_at=now)
        )
        if changed.rowcount:
            return False
        dialect = postgresql if is_postgres(conn) else sqlite
        made = await conn.execute(
            dialect.insert(registrations_t)
            .values(
                member_id=registration.member_id,
                device_library_id=device_library_id,
                pass_type_identifier=registration.pass_type_identifier,
                program_id=registration.program_id,
                push_token=registration.push_token,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        return bool(made.rowcount)

    async def unregister(
        self,
        conn: AsyncConnection,
        member_id: UUID,
        device_library_id: str,
        pass_type_identifier: str,
    ) -> None:
        r = registrations_t.c
        await conn.execute(
            delete(registrations_t).where(
                r.member_id == member_id,
                r.device_library_id == device_library_id,
                r.pass_type_identifier == pass_type_identifier,
            )
        )

    async def forget_push_tokens(
        self, conn: AsyncConnection, pairs: Sequence[tuple[UUID, str]]
    ) -> None:
        """Registrations whose device no longer has the pass: (member, push token)."""
        if pairs:
            r = registrations_t.c
            await conn.execute(
                delete(registrations_t).where(tuple_(r.member_id, r.push_token).in_(pairs))
            )

    async def forget_members(self, conn: AsyncConnection, member_ids: list[UUID]) -> int:
        """Delete every device registration of these members."""
        r = registrations_t.c
        result = await conn.execute(delete(registrations_t).where(r.member_id.in_(member_ids)))
        return int(result.rowcount or 0)

    async def registrations_of_members(
        self, conn: AsyncConnection, member_ids: Collection[UUID]
    ) -> list[Registration]:
        if not member_ids:
            return []
        r = registrations_t.c
        rows = await conn.execute(
            select(r.program_id, r.member_id, r.pass_type_identifier, r.push_token)
            .where(one_of(conn, r.member_id, member_ids))
            .order_by(r.member_id, r.device_library_id)
        )
        return [Registration(*row) for row in rows]

    async def members_of_device(
        self, conn: AsyncConnection, device_library_id: str, pass_type_identifier: str
    ) -> list[tuple[UUID, UUID]]:
        """(program, member) of each pass of this type the device registered for."""
        r = registrations_t.c
        rows = await conn.execute(
            select(r.program_id, r.member_id).where(
                r.device_library_id == device_library_id,
                r.pass_type_identifier == pass_type_identifier,
            )
        )
        return [(row[0], row[1]) for row in rows]

    # --- when a card last changed ----------------------------------------------------------

    async def last_changes(
        self, conn: AsyncConnection, member_ids: Collection[UUID]
    ) -> dict[UUID, datetime]:
        """When each member's profile, any of their balances or their tier last changed.
        Three primary-key (or indexed) reads; a member with no row is left out."""
        if not member_ids:
            return {}
        latest: dict[UUID, datetime] = {}
        for t in (members_t, balances_t, tiers_t):
            key = t.c.id if t is members_t else t.c.member_id
            rows = await conn.execute(
                select(key, t.c.updated_at).where(one_of(conn, key, member_ids))
            )
            for member_id, moment in rows:
                if member_id not in latest or moment > latest[member_id]:
                    latest[member_id] = moment
        return latest


wallet_repository = WalletRepository()
