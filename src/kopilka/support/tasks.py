"""Scheduled job: the SLA breach check.

``kopilka support sla-check`` (and the worker's frequent ``support-sla`` job) flags every
running ticket of a program whose first-response or resolution deadline passed unmet and
emits ``ticket.sla_breached`` once per ticket and deadline; a chunk of tickets per
transaction, until none is left.
"""

from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.programs.service import program_service
from kopilka.support.sla import BREACH_CHUNK, BreachReport, sla_service


async def check_sla(engine: AsyncEngine, program_id: UUID, now: datetime) -> BreachReport:
    total = BreachReport()
    while True:

        async def chunk(conn: AsyncConnection) -> BreachReport:
            program = await program_service.get(conn, program_id)
            return await sla_service.mark_breaches(conn, program, now)

        report = await run_in_transaction(engine, chunk)
        total.tickets += report.tickets
        total.first_response += report.first_response
        total.resolution += report.resolution
        if report.tickets < BREACH_CHUNK:
            return total
