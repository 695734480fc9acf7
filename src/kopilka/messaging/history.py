"""A member's messages and consent changes, paged newest first, for the customer 360's
timeline. Read only."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.messaging.composition import shown
from kopilka.messaging.history_repository import (
    ConsentHistoryRepository,
    consent_history_repository,
)
from kopilka.messaging.records import MessageRow
from kopilka.messaging.service import MessagingService, messaging_service
from kopilka.programs.service import ProgramContext


@dataclass(frozen=True)
class ConsentChange:
    id: int
    recorded_at: datetime
    channel: str
    purpose: str
    status: str
    source: str
    text_version: str | None


class MessagingHistory:
    def __init__(
        self,
        repository: ConsentHistoryRepository = consent_history_repository,
        messages: MessagingService = messaging_service,
    ) -> None:
        self.repository = repository
        self.messages = messages

    async def consent_changes(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[ConsentChange]:
        rows = await self.repository.member_records(
            conn, program.id, member_id, before=before, limit=limit
        )
        return [
            ConsentChange(
                r.id,
                as_utc(r.recorded_at),
                r.channel,
                r.purpose,
                r.status,
                r.source,
                r.text_version,
            )
            for r in rows
        ]

    async def member_messages(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[MessageRow]:
        """The member's messages as the timeline and an export show them: a one-time code's
        text never (``shown``)."""
        rows = await self.messages.page(
            conn, program, limit=limit, before=before, member_id=member_id
        )
        return [shown(r) for r in rows]


messaging_history = MessagingHistory()
