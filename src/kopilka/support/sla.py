"""The SLA job: tickets whose first-response or resolution deadline passed unmet are
flagged, and ``ticket.sla_breached`` goes out once per ticket and deadline. Never commits."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.outbox.support_events import TicketSlaBreached
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext
from kopilka.support.repository import SupportRepository, support_repository

BREACH_CHUNK = 500


@dataclass
class BreachReport:
    tickets: int = 0
    first_response: int = 0
    resolution: int = 0


class SlaService:
    def __init__(self, repository: SupportRepository = support_repository) -> None:
        self.repository = repository

    async def mark_breaches(
        self, conn: AsyncConnection, program: ProgramContext, now: datetime
    ) -> BreachReport:
        """Flag running tickets whose deadline passed unmet and emit ``ticket.sla_breached``
        once per ticket and deadline (a chunk per call; the job calls until none are left)."""
        report = BreachReport()
        rows = await self.repository.due_for_breach(conn, program.id, now, BREACH_CHUNK)
        async with unit_of_work(conn, now) as uow:
            for row in rows:
                values: dict[str, Any] = {}
                targets = []
                if (
                    row.first_responded_at is None
                    and row.first_response_due_at < now
                    and not row.first_response_breached
                ):
                    values["first_response_breached"] = True
                    targets.append(("first_response", row.first_response_due_at))
                    report.first_response += 1
                if row.resolution_due_at < now and not row.resolution_breached:
                    values["resolution_breached"] = True
                    targets.append(("resolution", row.resolution_due_at))
                    report.resolution += 1
                if not values:
                    continue
                report.tickets += 1
                await self.repository.update_ticket(conn, row.id, values)
                for target, due in targets:
                    uow.emit(
                        TicketSlaBreached(
                            program_id=program.id,
                            member_id=row.member_id,
                            occurred_at=now,
                            ticket_id=row.id,
                            target=target,
                            due_at=due,
                            priority=row.priority,
                            status=row.status,
                            assignee_id=row.assignee_id,
                            store=row.store,
                        )
                    )
        return report


sla_service = SlaService()
