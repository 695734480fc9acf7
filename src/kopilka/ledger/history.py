"""A member's movements of points as the customer 360 shows them: each journal entry with
what it did to the member's available, pending and held points. Read only."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.ledger.domain import MEMBER_ACCOUNTS
from kopilka.ledger.history_repository import MovementRepository, movement_repository
from kopilka.programs.service import ProgramContext

# {currency: {account: amount}} — e.g. {"points": {"pending": 120}}
AccountChanges = dict[str, dict[str, int]]


@dataclass(frozen=True)
class Movement:
    id: UUID
    occurred_at: datetime
    kind: str  # earn, redeem, expire, adjust, reverse, release, hold, capture, void …
    reason: str | None
    reference_type: str | None
    reference_id: str | None
    changes: AccountChanges


class MovementHistory:
    def __init__(self, repository: MovementRepository = movement_repository) -> None:
        self.repository = repository

    async def movements(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[Movement]:
        """The member's movements, newest first by when they happened."""
        entries = await self.repository.member_entries(
            conn, program.id, member_id, before=before, limit=limit
        )
        changes: dict[UUID, AccountChanges] = {}
        accounts = tuple(str(a) for a in MEMBER_ACCOUNTS)
        for posting in await self.repository.postings_in(conn, [e.id for e in entries], accounts):
            per_currency = changes.setdefault(posting.entry_id, {}).setdefault(posting.currency, {})
            per_currency[posting.account] = per_currency.get(posting.account, 0) + posting.amount
        return [_movement(entry, changes.get(entry.id, {})) for entry in entries]


def _movement(entry: Any, changes: AccountChanges) -> Movement:
    return Movement(
        id=entry.id,
        occurred_at=entry.occurred_at,
        kind=entry.kind,
        reason=entry.reason,
        reference_type=entry.reference_type,
        reference_id=entry.reference_id,
        changes=changes,
    )


movement_history = MovementHistory()
