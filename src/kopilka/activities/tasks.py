"""Scheduled events: members' birthdays.

``kopilka jobs birthdays`` (daily, from cron) records a ``birthday`` event for every active
member whose birthday falls on the given local day of the program, so rules on the
``birthday`` trigger run without the integrator sending anything. Each event's id is the
member's and the year's: running the job again the same day, or after a crash, gives
nobody a second birthday. A 29 February birthday is kept on 28 February in other years.
"""

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import partial
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.activities.schemas import ActivityCreate
from kopilka.activities.service import activity_service
from kopilka.db import run_in_transaction
from kopilka.earning.service import has_trigger
from kopilka.kit.clock import clock, zone_named
from kopilka.members.schemas import MemberRef
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext, program_service
from kopilka.rules.domain import UTC_ZONE

CHUNK = 200


@dataclass
class BirthdayReport:
    members: int = 0
    points: int = 0
    ran: bool = True  # False: the program has no birthday rules


def birthdays_on(day: date) -> list[tuple[int, int]]:
    """The (month, day) birthdays celebrated on ``day``."""
    days = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        days.append((2, 29))
    return days


async def _chunk(
    conn: AsyncConnection, program: ProgramContext, day: date, after: UUID | None
) -> list[UUID]:
    return await member_service.born_on(conn, program, birthdays_on(day), after=after, limit=CHUNK)


async def _celebrate_chunk(
    conn: AsyncConnection, program_id: UUID, day: date | None, after: UUID | None
) -> tuple[list[UUID], int]:
    """One chunk of members, in one transaction: their ids and the points they earned
    (-1 when the program has no birthday rules)."""
    program = await program_service.get(conn, program_id)
    if not has_trigger(program, "birthday"):
        return [], -1
    zone = zone_named(program.settings.timezone) or UTC_ZONE
    local_day = day or clock.now().astimezone(zone).date()
    # Noon, local: the event falls on that day wherever it is looked at from.
    moment = datetime.combine(local_day, time(12), zone)
    ids = await _chunk(conn, program, local_day, after)
    points = 0
    for member_id in ids:
        event = ActivityCreate(
            member=MemberRef(id=member_id),
            external_id=f"birthday:{member_id}:{local_day.year}",
            type="birthday",
            occurred_at=moment,
        )
        _, answer, replayed = await activity_service.record(
            conn, program, event, max(clock.now(), moment)
        )
        if not replayed:
            currency = program.settings.points_currency()
            points += sum(e["amount"] for e in answer["earned"] if e["currency"] == currency)
    return ids, points


async def celebrate_birthdays(
    engine: AsyncEngine, program_id: UUID, day: date | None
) -> BirthdayReport:
    """Record the birthday event of every member born on ``day`` (default: today in the
    program's time zone), a chunk of members per transaction."""
    report = BirthdayReport()
    after: UUID | None = None
    while True:
        chunk = partial(_celebrate_chunk, program_id=program_id, day=day, after=after)
        ids, points = await run_in_transaction(engine, chunk)
        if points < 0:
            return BirthdayReport(ran=False)
        report.members += len(ids)
        report.points += points
        if len(ids) < CHUNK:
            return report
        after = ids[-1]
