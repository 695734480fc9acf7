"""A journey's dry run over past days: what it would have done had it been in force —
who would have entered, who the holdouts keep out, and the steps walked for the others
without any effect (``docs/journeys.md``, "Dry run"). Reads only; never commits.

What the walk needs is read here, once: the would-be entrants and their entry instants,
the members each branch's condition matches now, the past events the waits and the goal
wait for, and the channels that reach the members a message step would have written to.

**Where history comes from.** The outbox keeps every domain event unless
``KOPILKA_OUTBOX_RETENTION_DAYS`` is set; then delivered events older than that many days
are gone. A range within what the outbox keeps is read from it (``basis`` ``events``);
an older one from the feature tables — purchases, members' registrations, tier changes
(``feature_tables``) —, and an event they do not keep cannot be counted (``unknown``).
"""

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import liability
from kopilka.analytics.attribution_service import KEPT_BY_TABLES, attribution_service
from kopilka.errors import KopilkaError, NotFound
from kopilka.journeys import domain, dryrun
from kopilka.journeys.domain import (
    BranchStep,
    DateEntry,
    EventEntry,
    JourneyDocument,
    ScheduleEntry,
    SegmentEntry,
    SendStep,
    WaitStep,
)
from kopilka.journeys.dryrun import DryRun, Facts, MessageCount, PointsCount, Range, Tally
from kopilka.journeys.repository import JourneyRepository, journey_repository
from kopilka.journeys.service import journey_service
from kopilka.members.service import member_service
from kopilka.messaging.batch import Batch
from kopilka.messaging.composition import known_kind
from kopilka.messaging.domain import Channel
from kopilka.messaging.gating import refusal
from kopilka.messaging.notifications import NotificationKind
from kopilka.messaging.service import messaging_service
from kopilka.programs.service import ProgramContext
from kopilka.segments.service import segment_service

CHUNK = 1000
# The holdout's hash of an unsaved document: it has no journey id yet.
UNSAVED = UUID(int=0)

# (members, entry instants of the first ``cap`` members by id, basis, notes)
Entrants = tuple[int, dict[UUID, list[datetime]], str, list[str]]


class History:
    """Members' past events of a program: from the outbox where it keeps the range, else
    from the feature tables where they keep the event type."""

    def __init__(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        kept_since: datetime | None,
        repository: JourneyRepository,
    ) -> None:
        self.conn = conn
        self.program = program
        self.kept_since = kept_since
        self.repository = repository

    def in_outbox(self, start: datetime) -> bool:
        return self.kept_since is None or start >= self.kept_since

    def basis(self, topic: str, start: datetime) -> str:
        if self.in_outbox(start):
            return "events"
        return "feature_tables" if topic in KEPT_BY_TABLES else "unknown"

    async def members(
        self, topic: str, start: datetime, end: datetime, segment: str | None = None
    ) -> int | None:
        if self.in_outbox(start):
            return await self.repository.event_members(
                self.conn, self.program.id, topic, start, end, segment
            )
        if segment is not None:
            return None
        return await attribution_service.event_members(self.conn, self.program, topic, start, end)

    async def times(
        self,
        topic: str,
        start: datetime,
        end: datetime,
        *,
        first: int | None = None,
        members: Sequence[UUID] | None = None,
        segment: str | None = None,
    ) -> dict[UUID, list[datetime]] | None:
        if self.in_outbox(start):
            return await self.repository.event_times(
                self.conn,
                self.program.id,
                topic,
                start,
                end,
                first=first,
                members=members,
                segment=segment,
            )
        if segment is not None:
            return None
        return await attribution_service.event_times(
            self.conn, self.program, topic, start, end, first=first, members=members
        )


class DryRunService:
    def __init__(self, repository: JourneyRepository = journey_repository) -> None:
        self.repository = repository

    async def of_journey(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        span: tuple[Any, Any],
        now: datetime,
        *,
        kept_days: int = 0,
        cap: int = dryrun.MAX_WALKED,
    ) -> DryRun:
        """A saved journey's dry run: its draft if it has one, else the version in force.
        ``span``: the first and last day (None: the default); ``kept_days``: how many days
        the outbox keeps (0: every event)."""
        view = await journey_service.get(conn, program, key)
        row = await self.repository.journey(conn, program.id, key)
        assert row is not None
        raw, which = (
            (view.draft, "draft")
            if view.draft is not None
            else (view.document, f"version {view.version}")
        )
        return await self._dry_run(
            conn, program, raw, which, key, row.id, span, now, kept_days=kept_days, cap=cap
        )

    async def of_document(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        document: Any,
        span: tuple[Any, Any],
        now: datetime,
        *,
        kept_days: int = 0,
        cap: int = dryrun.MAX_WALKED,
    ) -> DryRun:
        """An unsaved document's dry run (checked as a save checks it)."""
        return await self._dry_run(
            conn, program, document, "document", None, None, span, now, kept_days=kept_days, cap=cap
        )

    async def _dry_run(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        raw: Any,
        which: str,
        key: str | None,
        journey_id: UUID | None,
        span: tuple[Any, Any],
        now: datetime,
        *,
        kept_days: int,
        cap: int,
    ) -> DryRun:
        settings = program.settings
        days = dryrun.dry_run_range(span[0], span[1], settings.timezone, now)
        document = journey_service.checked(raw)
        notes = [
            "Nothing was changed: no run, message, point, coupon or offer was made.",
            "Branches are evaluated as the members are now, not as they were on the day.",
        ]
        try:
            await journey_service.check_references(conn, program, document)
        except KopilkaError as exc:
            notes.append(f"Publishing it would be refused: {exc.detail}")
        kept_since = now - timedelta(days=kept_days) if kept_days > 0 else None
        history = History(conn, program, kept_since, self.repository)
        members, times, basis, found_notes = await self._entrants(
            conn, program, document, days, history, now, cap
        )
        notes.extend(found_notes)
        if journey_id is None and (document.holdout_percent or settings.journeys.holdout_percent):
            notes.append(
                "Who is held out is an estimate: an unsaved journey has no id for the "
                "holdout's hash yet (the share is the same)."
            )
        facts = await self._facts(conn, program, document, days, sorted(times), history, now)
        notes.extend(_history_notes(document, facts, days, history))
        # The walk is pure CPU (a year of runs for up to 100,000 members): in a thread, so
        # that the server answers other requests meanwhile.
        tally = await asyncio.to_thread(
            _walk_all, program, document, journey_id or UNSAVED, times, facts
        )
        messages = await self._messages(conn, program, document, tally, now)
        if messages:
            notes.append(
                "Messages count the channels that reach each member now (consent, contact "
                "data, suppressions); quiet hours and caps are not applied."
            )
        points = [
            PointsCount(currency, n, _value(program, currency, n))
            for currency, n in sorted(tally.points.items())
        ]
        return DryRun(
            journey=key,
            document=which,
            first=days.first,
            last=days.last,
            entry=document.entry.type,
            basis=basis,
            members=members,
            walked=len(times),
            capped=members > len(times),
            cap=cap,
            entries=tally.entries,
            held_out=tally.held_out,
            treated=tally.treated,
            converted=tally.converted,
            unfinished=tally.unfinished,
            steps=dryrun.steps_reached(document, tally, messages),
            messages=messages,
            points=points,
            points_value=sum(p.value for p in points if p.value is not None),
            money_currency=settings.money_currency,
            coupons=dict(sorted(tally.coupons.items())),
            offers=dict(sorted(tally.offers.items())),
            notes=notes,
        )

    # --- who would have entered ------------------------------------------------------------

    async def _entrants(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        document: JourneyDocument,
        days: Range,
        history: History,
        now: datetime,
        cap: int,
    ) -> Entrants:
        entry = document.entry
        if isinstance(entry, EventEntry):
            return await self._by_events(history, entry.event, days, cap, None)
        if isinstance(entry, SegmentEntry) and entry.type == "segment_left":
            return await self._by_events(history, "segment.left", days, cap, entry.segment)
        if isinstance(entry, SegmentEntry):
            members, ids = await self._segment(conn, program, entry.segment, now, cap)
            note = (
                f"Entrants are the members of segment «{entry.segment}» now, each entering "
                "once at the start of the range: the segment's past entries are not kept."
            )
            return members, {m: [days.start] for m in ids}, "segment_now", [note]
        if isinstance(entry, ScheduleEntry):
            members, ids = await self._segment(conn, program, entry.segment, now, cap)
            zone = program.settings.timezone
            occurrences = [
                at
                for day in _days(days)
                if domain.scheduled_on(entry, day)
                and days.start <= (at := domain.local_time(day, entry.at, zone)) < days.end
            ]
            note = (
                f"Entrants are the members of segment «{entry.segment}» now, entering on "
                f"each of the schedule's {len(occurrences)} days in the range."
            )
            times = {m: list(occurrences) for m in ids} if occurrences else {}
            return (members if occurrences else 0), times, "segment_now", [note]
        assert isinstance(entry, DateEntry)
        return await self._dated(conn, program, entry, days, cap)

    async def _by_events(
        self, history: History, topic: str, days: Range, cap: int, segment: str | None
    ) -> Entrants:
        basis = history.basis(topic, days.start)
        counted = await history.members(topic, days.start, days.end, segment)
        times = await history.times(topic, days.start, days.end, first=cap, segment=segment)
        if counted is None or times is None:
            note = (
                f"The events «{topic}» of these days are no longer kept (the outbox keeps "
                "fewer days and no other table keeps them): nobody is counted."
            )
            return 0, {}, "unknown", [note]
        notes = []
        if basis == "feature_tables":
            notes.append(
                f"The outbox no longer keeps these days: «{topic}» is read from the feature "
                "tables (purchases, members' registrations, tier changes)."
            )
        return counted, times, basis, notes

    async def _segment(
        self, conn: AsyncConnection, program: ProgramContext, key: str, now: datetime, cap: int
    ) -> tuple[int, list[UUID]]:
        try:
            counted = await segment_service.count(conn, program, key, now)
        except NotFound:
            return 0, []
        ids: list[UUID] = []
        after: UUID | None = None
        while len(ids) < cap:
            page = await segment_service.members(
                conn, program, key, after, min(CHUNK, cap - len(ids)), now
            )
            ids.extend(item.member_id for item in page.items)
            if page.next_cursor is None or not page.items:
                break
            after = ids[-1]
        return counted.count, ids

    async def _dated(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        entry: DateEntry,
        days: Range,
        cap: int,
    ) -> Entrants:
        """Each day of the range, the members whose date (shifted by the offset) it is, as
        the daily job finds them — active members, by their birthday or the anniversary of
        joining as they are now."""
        zone = program.settings.timezone
        seen: set[UUID] = set()
        times: dict[UUID, list[datetime]] = {}
        for day in _days(days):
            at = domain.local_time(day, entry.at, zone)
            if not days.start <= at < days.end:
                continue
            target = day - timedelta(days=entry.offset_days)
            pairs = domain.month_days(target)
            after: UUID | None = None
            while True:
                if entry.field == "birthday":
                    ids = await member_service.born_on(
                        conn, program, pairs, after=after, limit=CHUNK, joined_by=at
                    )
                else:
                    ids = await member_service.joined_on(
                        conn, program, pairs, before=target, after=after, limit=CHUNK
                    )
                for member_id in ids:
                    seen.add(member_id)
                    if member_id in times or len(times) < cap:
                        times.setdefault(member_id, []).append(at)
                if len(ids) < CHUNK:
                    break
                after = ids[-1]
        what = "birthday" if entry.field == "birthday" else "anniversary of joining"
        note = (
            f"Entrants are today's active members who had joined by the day, on their {what}"
            " as recorded now."
        )
        return len(seen), times, "dates", [note]

    # --- what the walk reads ---------------------------------------------------------------

    async def _facts(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        document: JourneyDocument,
        days: Range,
        members: list[UUID],
        history: History,
        now: datetime,
    ) -> Facts:
        matching: dict[str, frozenset[UUID]] = {}
        for step in document.steps:
            if isinstance(step, BranchStep):
                found: set[UUID] = set()
                for i in range(0, len(members), CHUNK):
                    found |= await segment_service.matching(
                        conn, program, step.condition, members[i : i + CHUNK], now
                    )
                matching[step.id] = frozenset(found)
        events: dict[str, dict[UUID, list[datetime]]] = {}
        for topic, days_after in _awaited(document).items():
            end = min(days.end + timedelta(days=days_after), now)
            found_times = await history.times(topic, days.start, end, members=members)
            if found_times is not None:
                events[topic] = found_times
        settings = program.settings
        return Facts(settings.timezone, settings.points_currency(), matching, events)

    async def _messages(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        document: JourneyDocument,
        tally: Tally,
        now: datetime,
    ) -> list[MessageCount]:
        found: list[MessageCount] = []
        if not any(isinstance(s, SendStep) for s in document.steps):
            return found
        setup = await messaging_service.setup(conn, program)
        for step in document.steps:
            if not isinstance(step, SendStep):
                continue
            reached: Mapping[UUID, int] = tally.messages.get(step.id, {})
            spec = known_kind(step.kind)
            channels = (
                [Channel(c) for c in step.channels]
                if step.channels
                else setup.settings.channels_of(step.kind)
            )
            members = sorted(reached)
            channels_of: dict[UUID, list[str]] = {}
            for i in range(0, len(members), CHUNK):
                chunk = members[i : i + CHUNK]
                batch = await messaging_service.load_batch(
                    conn, program, setup, chunk, [step.kind], now
                )
                for member_id in chunk:
                    channels_of[member_id] = [
                        str(c) for c in channels if _reaches(batch, spec, member_id, c)
                    ]
            found.append(dryrun.count_messages(step, reached, channels_of))
        return found


def _walk_all(
    program: ProgramContext,
    document: JourneyDocument,
    hashed: UUID,
    times: dict[UUID, list[datetime]],
    facts: Facts,
) -> Tally:
    """Every would-be entrant's runs walked, the holdouts as the journey's hash has them."""
    tally = Tally()
    share = program.settings.journeys.holdout_percent
    for member_id in sorted(times):
        held = domain.globally_held_out(program.id, member_id, share) or domain.held_out(
            hashed, member_id, document.holdout_percent
        )
        dryrun.enter_and_walk(document, member_id, times[member_id], held, facts, tally)
    return tally


def _reaches(batch: Batch, spec: NotificationKind, member_id: UUID, channel: Channel) -> bool:
    """Whether a message of ``spec`` may go to the member on ``channel`` now, by what
    composing checks (``messaging.gating.refusal``)."""
    recipient = batch.recipients.get(member_id)
    if recipient is None:
        return False
    address: str | None
    if channel is Channel.PUSH:
        address = "push" if batch.subscriptions.get(member_id) else None
    elif channel is Channel.INBOX:
        address = None
    else:
        address = recipient.email if channel is Channel.EMAIL else recipient.phone
    return refusal(batch, spec, recipient, channel, address) is None


def _awaited(document: JourneyDocument) -> dict[str, int]:
    """Event type → how many days after the range the walk may look for it (the waits'
    time-outs, the goal's window)."""
    found: dict[str, int] = {}
    for step in document.steps:
        if isinstance(step, WaitStep) and step.event is not None:
            found[step.event] = max(found.get(step.event, 0), step.timeout_days)
    if document.goal is not None:
        goal = document.goal
        found[goal.event] = max(found.get(goal.event, 0), goal.within_days)
    return found


def _history_notes(
    document: JourneyDocument, facts: Facts, days: Range, history: History
) -> list[str]:
    notes = []
    for topic in sorted(_awaited(document)):
        if topic not in facts.events:
            notes.append(
                f"The events «{topic}» of these days are not kept: waits for them count as "
                "timed out and the goal is not seen."
            )
        elif not history.in_outbox(days.start):
            notes.append(f"«{topic}» (waits, goal) is read from the feature tables.")
    return notes


def _value(program: ProgramContext, currency: str, points: int) -> int | None:
    rate = liability.point_rate(program.settings, currency)
    return rate.value(points) if rate is not None else None


def _days(days: Range) -> list[Any]:
    return [days.first + timedelta(days=i) for i in range(days.days)]


dry_run_service = DryRunService()
