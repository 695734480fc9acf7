"""Scheduled messaging work: reminders of points about to expire.

``points-expiring`` runs daily per program (the worker's scheduler, or ``kopilka jobs
points-expiring``): every member with available points that expire before the end of the
local day ``expiring_days`` ahead gets a ``points_expiring`` message with the amount and
the date. The dedupe key is the member and the expiry date, so a member gets one reminder
per expiry date however many days the scan sees those points; a run after a crash or a
second worker's run sends nothing twice.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.kit.clock import zone_named
from kopilka.ledger.service import ledger_service
from kopilka.messaging.composition import Outgoing
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import program_service
from kopilka.rules.domain import UTC_ZONE

CHUNK = 500


@dataclass
class ExpiringReport:
    members: int = 0
    messages: int = 0
    ran: bool = True  # False: the program has the reminder off


async def remind_expiring(
    engine: AsyncEngine, program_id: UUID, today: date, now: datetime
) -> ExpiringReport:
    """Reminders for points expiring from ``now`` to the end of ``today`` + N days."""

    async def plan(conn: AsyncConnection) -> list[Outgoing] | None:
        program = await program_service.get(conn, program_id)
        setup = await messaging_service.setup(conn, program)
        if not setup.settings.enabled("points_expiring"):
            return None
        zone = zone_named(program.settings.timezone) or UTC_ZONE
        last_day = today + timedelta(days=setup.settings.expiring_days)
        end = datetime.combine(last_day + timedelta(days=1), time(), tzinfo=zone)
        points = program.settings.points_currency()
        amounts: dict[tuple[UUID, date], int] = defaultdict(int)
        for member_id, currency, expires_at, amount in await ledger_service.expiring(
            conn, program, now, end
        ):
            if currency == points:
                amounts[(member_id, expires_at.astimezone(zone).date())] += amount
        return [
            Outgoing(
                "points_expiring",
                member_id,
                f"points_expiring:{member_id}:{day.isoformat()}",
                {"amount": amount, "expires_on": day, "days": (day - today).days},
            )
            for (member_id, day), amount in sorted(amounts.items())
        ]

    items = await run_in_transaction(engine, plan)
    if items is None:
        return ExpiringReport(ran=False)
    report = ExpiringReport(members=len({i.member_id for i in items}))
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]

        async def compose(conn: AsyncConnection, chunk: list[Outgoing] = chunk) -> int:
            program = await program_service.get(conn, program_id)
            return len(await messaging_service.compose(conn, program, chunk, now))

        report.messages += await run_in_transaction(engine, compose)
    return report
