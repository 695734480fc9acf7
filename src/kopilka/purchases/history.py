"""A member's purchase history as the customer 360 shows it: purchases with their lines,
and returns. Read only; never commits."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.programs.service import ProgramContext
from kopilka.purchases.history_repository import (
    PurchaseHistoryRepository,
    purchase_history_repository,
)


@dataclass(frozen=True)
class LineView:
    line_no: int
    sku: str
    name: str | None
    category: str | None
    brand: str | None
    quantity: int
    unit_price: int
    discount: int
    amount: int
    returned_quantity: int


@dataclass(frozen=True)
class PurchaseView:
    id: UUID
    external_id: str
    occurred_at: datetime
    store: str | None
    channel: str
    currency: str
    total: int
    returned_amount: int
    earned: dict[str, int]
    reversed: dict[str, int]
    payments: dict[str, Any] | None
    lines: list[LineView]


@dataclass(frozen=True)
class ReturnView:
    id: UUID
    purchase_id: UUID
    external_id: str
    occurred_at: datetime
    amount: int
    reversed: dict[str, int]


def _line(row: Any) -> LineView:
    return LineView(
        line_no=row.line_no,
        sku=row.sku,
        name=row.name,
        category=row.category,
        brand=row.brand,
        quantity=row.quantity,
        unit_price=row.unit_price,
        discount=row.discount,
        amount=row.amount,
        returned_quantity=row.returned_quantity,
    )


class PurchaseHistory:
    def __init__(self, repository: PurchaseHistoryRepository = purchase_history_repository) -> None:
        self.repository = repository

    async def purchases(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
        lines: bool = True,
    ) -> list[PurchaseView]:
        """The member's purchases, newest first, each with its lines (or none)."""
        rows = await self.repository.member_purchases(
            conn, program.id, member_id, before=before, limit=limit
        )
        by_purchase: dict[UUID, list[LineView]] = {}
        if lines:
            for line in await self.repository.lines_of(conn, [r.id for r in rows]):
                by_purchase.setdefault(line.purchase_id, []).append(_line(line))
        return [
            PurchaseView(
                id=r.id,
                external_id=r.external_id,
                occurred_at=r.occurred_at,
                store=r.store,
                channel=r.channel,
                currency=r.currency,
                total=r.total,
                returned_amount=r.returned_amount,
                earned=dict(r.earned or {}),
                reversed=dict(r.reversed or {}),
                payments=r.payments,
                lines=by_purchase.get(r.id, []),
            )
            for r in rows
        ]

    async def returns(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[ReturnView]:
        rows = await self.repository.member_returns(
            conn, program.id, member_id, before=before, limit=limit
        )
        return [
            ReturnView(
                id=r.id,
                purchase_id=r.purchase_id,
                external_id=r.external_id,
                occurred_at=r.occurred_at,
                amount=r.amount,
                reversed=dict(r.reversed or {}),
            )
            for r in rows
        ]

    async def reassign_member(
        self, conn: AsyncConnection, program: ProgramContext, source: UUID, target: UUID
    ) -> int:
        """``source``'s purchases (with lines and returns) become ``target``'s, so tiers,
        facts and segments count them for the person. Returns the purchases moved."""
        return await self.repository.reassign(conn, program.id, source, target)


purchase_history = PurchaseHistory()
