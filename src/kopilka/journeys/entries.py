"""Members entering journeys: from an event (the consumer), on a date of theirs — a
birthday or the anniversary of joining, shifted by the journey's offset — and on a
schedule over a segment (the daily ``journeys-entries`` job). Each entry passes the
journey's re-entry policy and its holdouts; entering twice with the same key (an event
delivered again, the job run again the same day) starts one run. Never commits."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.journeys import domain
from kopilka.journeys.domain import (
    DateEntry,
    JourneyDocument,
    PastRun,
    RunStatus,
    ScheduleEntry,
)
from kopilka.journeys.repository import JourneyRepository, journey_repository
from kopilka.kit.ids import new_id
from kopilka.members.service import member_service
from kopilka.programs.service import ProgramContext
from kopilka.segments.service import segment_service

MEMBERS_CHUNK = 1000


@dataclass(frozen=True)
class LiveJourney:
    """A journey in force: its row's id, key, version and that version's document, and
    when it was first published (events before then start nothing)."""

    id: UUID
    key: str
    version: int
    document: JourneyDocument
    since: datetime


@dataclass(frozen=True)
class Candidate:
    """A member about to enter a journey: ``key`` tells this entry from any other (the
    event's id, ``date:2026-05-04``), ``at`` is when they enter, ``due`` when the first step
    runs (None: at once)."""

    journey: LiveJourney
    member_id: UUID
    key: str
    at: datetime
    due: datetime | None = None


@dataclass
class DailyReport:
    journeys: int = 0
    entered: int = 0


class JourneyEntries:
    def __init__(self, repository: JourneyRepository = journey_repository) -> None:
        self.repository = repository

    async def live(self, conn: AsyncConnection, program: ProgramContext) -> list[LiveJourney]:
        """The program's active journeys with the documents of their versions in force."""
        rows = await self.repository.journeys(conn, program.id, ["active"])
        pairs = [(r.id, r.version) for r in rows if r.version is not None]
        documents = await self.repository.documents(conn, pairs)
        since = await self.repository.first_published(conn, [r.id for r in rows])
        return [
            LiveJourney(
                r.id,
                r.key,
                r.version,
                domain.parse_journey(documents[(r.id, r.version)]),
                since[r.id],
            )
            for r in rows
            if r.version is not None and (r.id, r.version) in documents and r.id in since
        ]

    async def enter(
        self, conn: AsyncConnection, program: ProgramContext, candidates: Sequence[Candidate]
    ) -> int:
        """Start the runs the re-entry policies allow; the number started."""
        if not candidates:
            return 0
        journeys = sorted({c.journey.id for c in candidates})
        members = sorted({c.member_id for c in candidates})
        past = await self.repository.member_runs(conn, journeys, members)
        history: dict[tuple[UUID, UUID], list[PastRun]] = defaultdict(list)
        for run in past:
            history[(run.journey_id, run.member_id)].append(
                PastRun(RunStatus(run.status), run.finished_at)
            )
        share = program.settings.journeys.holdout_percent
        started = 0
        for candidate in candidates:
            journey, member_id = candidate.journey, candidate.member_id
            earlier = history[(journey.id, member_id)]
            if not domain.may_enter(journey.document.reentry, earlier, candidate.at).starts:
                continue
            held = domain.globally_held_out(program.id, member_id, share) or domain.held_out(
                journey.id, member_id, journey.document.holdout_percent
            )
            row = new_run(program.id, candidate, held)
            if await self.repository.add_runs(conn, [row]):
                earlier.append(PastRun(RunStatus(row["status"]), row["finished_at"]))
                started += 1
        return started

    async def daily(
        self, conn: AsyncConnection, program: ProgramContext, today: date, now: datetime
    ) -> DailyReport:
        """The entries of the program's local day ``today``: members whose date comes
        (shifted by each journey's offset) and the segments of schedules due today."""
        report = DailyReport()
        for journey in await self.live(conn, program):
            entry = journey.document.entry
            if isinstance(entry, DateEntry):
                report.journeys += 1
                report.entered += await self._dated(conn, program, journey, entry, today, now)
            elif isinstance(entry, ScheduleEntry) and domain.scheduled_on(entry, today):
                report.journeys += 1
                report.entered += await self._scheduled(conn, program, journey, entry, today, now)
        return report

    async def _dated(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        journey: LiveJourney,
        entry: DateEntry,
        today: date,
        now: datetime,
    ) -> int:
        # An offset of −3 starts the journey three days before the date: today's entrants
        # are the members whose date is three days from now.
        target = today - timedelta(days=entry.offset_days)
        days = domain.month_days(target)
        due = domain.local_time(today, entry.at, program.settings.timezone)
        key = f"date:{today.isoformat()}"
        entered, after = 0, None
        while True:
            if entry.field == "birthday":
                ids = await member_service.born_on(
                    conn, program, days, after=after, limit=MEMBERS_CHUNK
                )
            else:
                ids = await member_service.joined_on(
                    conn, program, days, before=target, after=after, limit=MEMBERS_CHUNK
                )
            if not ids:
                return entered
            candidates = [Candidate(journey, m, key, max(due, now), due) for m in ids]
            entered += await self.enter(conn, program, candidates)
            after = ids[-1]

    async def _scheduled(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        journey: LiveJourney,
        entry: ScheduleEntry,
        today: date,
        now: datetime,
    ) -> int:
        due = domain.local_time(today, entry.at, program.settings.timezone)
        key = f"schedule:{today.isoformat()}"
        entered, after = 0, None
        while True:
            page = await segment_service.members(
                conn, program, entry.segment, after, MEMBERS_CHUNK, now
            )
            ids = [item.member_id for item in page.items]
            if not ids:
                return entered
            candidates = [Candidate(journey, m, key, max(due, now), due) for m in ids]
            entered += await self.enter(conn, program, candidates)
            if page.next_cursor is None:
                return entered
            after = ids[-1]


def new_run(program_id: UUID, candidate: Candidate, held: bool) -> dict[str, Any]:
    """The row of a run entering now: at its first step (due at ``due``), or held out."""
    journey, at = candidate.journey, candidate.at
    goal = journey.document.goal
    return {
        "id": new_id(),
        "program_id": program_id,
        "journey_id": journey.id,
        "version": journey.version,
        "member_id": candidate.member_id,
        "entry_key": candidate.key,
        "status": RunStatus.HELD_OUT if held else RunStatus.ACTIVE,
        "step": None if held else journey.document.steps[0].id,
        "steps_done": 0,
        "wake_at": None if held else (candidate.due or at),
        "waiting_for": None,
        "entered_at": at,
        "goal_until": at + timedelta(days=goal.within_days) if goal else None,
        "converted_at": None,
        # A held-out run takes no step: it is over at once, its goal still counted.
        "finished_at": at if held else None,
        "updated_at": at,
    }


journey_entries = JourneyEntries()
