"""Members' messages and the right to erasure or a retention period. Never commits."""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.messaging import privacy_repository
from kopilka.messaging.consents import CHANNELS, consent_service, own_change
from kopilka.messaging.notifications import Purpose
from kopilka.programs.service import ProgramContext


async def erase_member(
    conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
) -> int:
    """A member's personal data erased: no more marketing (each consent withdrawn, with
    its history line), the texts and addresses of their messages blanked, their push
    subscriptions removed. Returns the messages blanked."""
    await consent_service.change(
        conn,
        program,
        member_id,
        [own_change(str(channel), Purpose.MARKETING, False, "erasure") for channel in CHANNELS],
        now,
        sync_profile=False,
    )
    return await privacy_repository.erase_member(conn, program.id, member_id)


async def blank_messages(conn: AsyncConnection, program: ProgramContext, member_id: UUID) -> int:
    """The texts and addresses of a profile's messages blanked (an earlier profile of an
    erased person, merged into theirs)."""
    return await privacy_repository.erase_member(conn, program.id, member_id)


async def purge_messages(
    conn: AsyncConnection, program: ProgramContext, before: datetime, limit: int
) -> int:
    """Up to ``limit`` messages made before ``before`` deleted (a retention period)."""
    return await privacy_repository.purge_before(conn, program.id, before, limit)
