"""Addresses nothing more is sent to: hard bounces (recorded by the sender), complaints
reported by a provider or a person, and an operator's own decisions; each with its reason,
visible, and removable when the address works again."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import InvalidInput, NotFound
from kopilka.members.domain import normalise_email, normalise_phone
from kopilka.messaging.audience_repository import AudienceRepository, audience_repository
from kopilka.messaging.records import SuppressionRow
from kopilka.programs.service import ProgramContext


def normalised(channel: str, address: str) -> str:
    """The address as members' addresses are stored, so a suppression matches them."""
    try:
        return normalise_email(address) if channel == "email" else normalise_phone(address)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, field="address") from None


class SuppressionService:
    def __init__(self, audience: AudienceRepository = audience_repository) -> None:
        self.audience = audience

    async def page(
        self, conn: AsyncConnection, program: ProgramContext, channel: str | None, limit: int
    ) -> list[SuppressionRow]:
        return await self.audience.suppressions(conn, program.id, channel, limit)

    async def add(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        channel: str,
        address: str,
        reason: str,
        detail: str | None,
        now: datetime,
    ) -> SuppressionRow:
        """Suppress ``address`` (an existing suppression keeps its first reason)."""
        stored = normalised(channel, address)
        await self.audience.suppress(
            conn,
            {
                "program_id": program.id,
                "channel": channel,
                "address": stored,
                "reason": reason,
                "detail": detail,
                "message_id": None,
                "created_at": now,
            },
        )
        [found] = await self.audience.suppressions(conn, program.id, channel, 1, stored)
        return found

    async def remove(
        self, conn: AsyncConnection, program: ProgramContext, channel: str, address: str
    ) -> None:
        stored = normalised(channel, address)
        if not await self.audience.unsuppress(conn, program.id, channel, stored):
            raise NotFound(f"{address!r} is not suppressed on {channel}", field="address")


suppression_service = SuppressionService()
