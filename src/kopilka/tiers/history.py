"""A member's tier changes, newest first, as the customer 360 shows them. Read only."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.programs.service import ProgramContext
from kopilka.tiers.history_repository import TierHistoryRepository, tier_history_repository


@dataclass(frozen=True)
class TierChangeView:
    id: UUID
    at: datetime
    from_tier: str | None
    to_tier: str
    reason: str  # upgrade, review, grace, manual, manual_ended, return, requalify, import
    source: str | None


class TierHistory:
    def __init__(self, repository: TierHistoryRepository = tier_history_repository) -> None:
        self.repository = repository

    async def changes(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[TierChangeView]:
        rows = await self.repository.member_changes(
            conn, program.id, member_id, before=before, limit=limit
        )
        return [
            TierChangeView(r.id, r.at, r.from_tier, r.to_tier, r.reason, r.source) for r in rows
        ]


tier_history = TierHistory()
