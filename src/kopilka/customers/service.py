"""The customer 360: one view of a member over every feature. Never commits."""

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.access.domain import Principal
from kopilka.customers.domain import Cursor, ItemType, TimelineItem
from kopilka.customers.timeline import Timeline, timeline
from kopilka.members.service import MemberService, member_service
from kopilka.programs.service import ProgramContext
from kopilka.purchases.history import PurchaseHistory, PurchaseView, purchase_history


class CustomerService:
    def __init__(
        self,
        members: MemberService = member_service,
        history: PurchaseHistory = purchase_history,
        items: Timeline = timeline,
    ) -> None:
        self.members = members
        self.history = history
        self.items = items

    async def timeline(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        types: Iterable[ItemType] | None,
        cursor: Cursor | None,
        limit: int,
        principal: Principal | None = None,
    ) -> list[TimelineItem]:
        return await self.items.page(
            conn, program, member_id, types=types, cursor=cursor, limit=limit, principal=principal
        )

    async def purchases(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[PurchaseView]:
        """The member's purchases with lines, newest first; 404 for a member not of the
        program."""
        await self.members.get(conn, program, member_id)
        return await self.history.purchases(conn, program, member_id, before=before, limit=limit)


customer_service = CustomerService()
