"""Members' runs through journeys: entering on events, moving on when an awaited event or
a goal comes, and taking the steps of due runs. Never commits: the consumer's batch or the
worker's job owns the transaction, so a step's effect (a message, points, a coupon, a tag)
and the run's move past it commit together — a crash redoes the step, never doubles it.

Each run takes its steps on the version of the journey it entered on. A step that fails
(a campaign ended, a kind's template does not render) ends the run as ``exited`` with the
failure logged: the steps after it would speak of something that did not happen.
"""

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.benefits.service import benefit_service
from kopilka.coupons.service import coupon_service
from kopilka.errors import KopilkaError
from kopilka.journeys import domain
from kopilka.journeys.domain import (
    BranchStep,
    CouponStep,
    ExitStep,
    JourneyDocument,
    OfferStep,
    PointsStep,
    RunStatus,
    SegmentEntry,
    SendStep,
    TagStep,
    WaitStep,
    WebhookStep,
)
from kopilka.journeys.entries import Candidate, journey_entries
from kopilka.journeys.repository import JourneyRepository, RunRow, journey_repository
from kopilka.ledger.service import ledger_service
from kopilka.members.schemas import MemberUpdate
from kopilka.members.service import member_service
from kopilka.messaging.composition import Outgoing
from kopilka.messaging.domain import Channel
from kopilka.messaging.service import messaging_service
from kopilka.outbox import events as ev
from kopilka.outbox.journey_events import JourneyWebhook
from kopilka.outbox.unit import unit_of_work
from kopilka.programs.service import ProgramContext, program_service
from kopilka.segments.service import segment_service

logger = logging.getLogger("kopilka.journeys")

DUE_BATCH = 200


@dataclass
class AdvanceReport:
    runs: int = 0
    steps: int = 0
    failed: int = 0


@dataclass
class _Walk:
    """One run's pass in an advance: where it is, the steps it logged, and the run's new
    values once it stops (``stopped``); ``send``: the send step it waits at for the batch."""

    run: RunRow
    document: JourneyDocument
    step_id: str | None
    seq: int
    values: dict[str, Any] = field(default_factory=dict)
    logs: list[dict[str, Any]] = field(default_factory=list)
    taken: int = 0
    send: SendStep | None = None
    stopped: bool = False

    def stop(self, values: dict[str, Any]) -> None:
        self.values |= values
        self.stopped = True


def _start(run: RunRow, document: JourneyDocument, now: datetime) -> _Walk:
    """A due run's pass, past the wait it was at (logging a time-out if its event did not
    come)."""
    walk = _Walk(run, document, run.step, run.steps_done)
    walk.values = {"status": RunStatus.ACTIVE, "waiting_for": None}
    if run.status == RunStatus.WAITING:
        wait = document.steps[document.index(run.step or "")]
        assert isinstance(wait, WaitStep)
        walk.step_id = domain.next_of(document, wait.id)
        if run.waiting_for is not None:
            # The awaited event did not come in time.
            walk.seq += 1
            walk.logs.append(_log(run, walk.seq, wait.id, "timed_out", {}, now))
            walk.step_id = wait.on_timeout or walk.step_id
    return walk


class JourneyRunner:
    def __init__(self, repository: JourneyRepository = journey_repository) -> None:
        self.repository = repository

    # --- events --------------------------------------------------------------------------

    async def on_events(self, conn: AsyncConnection, batch: Sequence[ev.DomainEvent]) -> None:
        """A delivered batch: runs waiting for these events move on, goals are counted,
        then members enter the journeys these events start."""
        by_program: dict[UUID, list[ev.DomainEvent]] = defaultdict(list)
        for event in batch:
            if event.member_id is not None:
                by_program[event.program_id].append(event)
        for program_id in sorted(by_program):
            program = await program_service.get(conn, program_id)
            events = sorted(by_program[program_id], key=lambda e: e.occurred_at)
            await self._heard(conn, events)
            live = await journey_entries.live(conn, program)
            # An event from before a journey was published (a backlog the worker catches up
            # on, the history before it) does not start it.
            candidates = [
                Candidate(journey, event.member_id, str(event.event_id), event.occurred_at)
                for event in events
                for journey in live
                if event.member_id is not None
                and event.occurred_at >= journey.since
                and _starts(journey.document, event)
            ]
            await journey_entries.enter(conn, program, candidates)

    async def _heard(self, conn: AsyncConnection, events: Sequence[ev.DomainEvent]) -> None:
        """Waits that end and goals that are reached with these events."""
        members = sorted({e.member_id for e in events if e.member_id is not None})
        program_id = events[0].program_id
        earliest = min(e.occurred_at for e in events)
        runs = await self.repository.listening(conn, program_id, members, earliest)
        if not runs:
            return
        documents = await self._documents(conn, runs)
        for run in runs:
            document = documents[(run.journey_id, run.version)]
            values = _on_member_events(
                run, document, [e for e in events if e.member_id == run.member_id]
            )
            if values:
                await self.repository.update_run(conn, run.id, values)

    async def _documents(
        self, conn: AsyncConnection, runs: Sequence[RunRow]
    ) -> dict[tuple[UUID, int], JourneyDocument]:
        raw = await self.repository.documents(conn, [(r.journey_id, r.version) for r in runs])
        return {pair: domain.parse_journey(document) for pair, document in raw.items()}

    # --- steps -----------------------------------------------------------------------------

    async def advance(
        self, conn: AsyncConnection, program_id: UUID, now: datetime, limit: int = DUE_BATCH
    ) -> AdvanceReport:
        """Take the steps of up to ``limit`` of the program's due runs, each step in a
        savepoint of its own. Each run's steps are taken in order; the messages of the runs
        that reach a send step are composed together (one read of what composing needs for
        all their members), then those runs go on."""
        report = AdvanceReport()
        runs = await self.repository.due(conn, program_id, now, limit)
        if not runs:
            return report
        documents = await self._documents(conn, runs)
        program = await program_service.get(conn, program_id)
        walks = [_start(run, documents[(run.journey_id, run.version)], now) for run in runs]
        moving = walks
        while moving:
            for walk in moving:
                await self._walk(conn, program, walk, now)
            sending = [w for w in moving if w.send is not None]
            await self._send(conn, program, sending, now)
            moving = [w for w in sending if not w.stopped]
        await self.repository.add_logs(conn, [log for w in walks for log in w.logs])
        for walk in walks:
            walk.values |= {"step": walk.step_id, "steps_done": walk.seq, "updated_at": now}
            await self.repository.update_run(conn, walk.run.id, walk.values)
            report.runs += 1
            report.steps += len(walk.logs)
            report.failed += any(log["outcome"] == "failed" for log in walk.logs)
        return report

    async def _walk(
        self, conn: AsyncConnection, program: ProgramContext, walk: "_Walk", now: datetime
    ) -> None:
        """Take the run's steps until it stops (a wait, the end, a failure) or reaches a
        send step, left in ``walk.send`` for :meth:`_send`."""
        document, run = walk.document, walk.run
        while walk.taken < domain.MAX_STEPS_PER_PASS:
            if walk.step_id is None:
                walk.stop(_finished(RunStatus.EXITED, now))
                return
            step = document.steps[document.index(walk.step_id)]
            if isinstance(step, SendStep):
                walk.send = step
                return
            walk.seq += 1
            walk.taken += 1
            outcome = await self._take(conn, program, document, run, step, walk.seq, now)
            walk.logs.append(_log(run, walk.seq, step.id, outcome.name, outcome.detail, now))
            walk.step_id = outcome.then
            if outcome.stop is not None:
                walk.stop(outcome.stop)
                return
        # Branches that loop without a wait: look again in a minute, not now.
        walk.stop({"wake_at": now + timedelta(minutes=1)})

    async def _send(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        walks: Sequence["_Walk"],
        now: datetime,
    ) -> None:
        """The messages of the runs at a send step, composed together; each run past its
        step (a message already made for it, after a crash, is not made again)."""
        if not walks:
            return
        keys: list[str] = []
        items = []
        for walk in walks:
            assert walk.send is not None
            walk.seq += 1
            walk.taken += 1
            keys.append(f"journey:{walk.run.id}:{walk.seq}")
            channels = [Channel(c) for c in walk.send.channels] if walk.send.channels else None
            items.append(
                Outgoing(
                    walk.send.kind, walk.run.member_id, keys[-1], walk.send.variables, channels
                )
            )
        try:
            async with conn.begin_nested():
                made = await messaging_service.compose(conn, program, items, now)
        except (KopilkaError, ValueError):
            # One item spoils the batch (it should not: publishing checks the kinds): each
            # alone, so that only its own run fails.
            made = []
            for walk, item in zip(walks, items, strict=True):
                made += await self._send_one(conn, program, walk, item, now)
        sent: dict[str, list[str]] = defaultdict(list)
        for message in made:
            if message.status != "skipped":
                sent[message.dedupe_key.split("#")[0]].append(str(message.channel))
        for walk, key in zip(walks, keys, strict=True):
            step = walk.send
            assert step is not None
            walk.send = None
            if walk.stopped:  # failed alone, logged by _send_one
                continue
            outcome = "sent" if sent.get(key) else "skipped"
            walk.logs.append(
                _log(walk.run, walk.seq, step.id, outcome, {"channels": sent.get(key, [])}, now)
            )
            walk.step_id = domain.next_of(walk.document, step.id)

    async def _send_one(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        walk: "_Walk",
        item: Outgoing,
        now: datetime,
    ) -> list[Any]:
        try:
            async with conn.begin_nested():
                return await messaging_service.compose(conn, program, [item], now)
        except (KopilkaError, ValueError) as exc:
            detail = _failure(exc)
            assert walk.send is not None
            logger.warning("journey run %s: step %s failed: %s", walk.run.id, walk.send.id, detail)
            walk.logs.append(
                _log(walk.run, walk.seq, walk.send.id, "failed", {"error": detail}, now)
            )
            walk.step_id = None
            walk.stop(_finished(RunStatus.EXITED, now))
            return []

    async def _take(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        document: JourneyDocument,
        run: RunRow,
        step: Any,
        seq: int,
        now: datetime,
    ) -> "_Outcome":
        """One step in a savepoint: a failed one leaves nothing behind and ends the run."""
        after = domain.next_of(document, step.id)
        try:
            async with conn.begin_nested():
                return await self._effect(conn, program, run, step, seq, after, now)
        except (KopilkaError, ValueError) as exc:
            # A step that cannot be taken ends its own run, never the job (the other runs).
            detail = _failure(exc)
            logger.warning("journey run %s: step %s failed: %s", run.id, step.id, detail)
            return _Outcome("failed", {"error": detail}, None, _finished(RunStatus.EXITED, now))

    async def _effect(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        run: RunRow,
        step: Any,
        seq: int,
        after: str | None,
        now: datetime,
    ) -> "_Outcome":
        key = f"journey:{run.id}:{seq}"
        if isinstance(step, WaitStep):
            return _wait(step, program, now)
        if isinstance(step, BranchStep):
            matching = await segment_service.matching(
                conn, program, step.condition, [run.member_id], now
            )
            if run.member_id in matching:
                return _Outcome("then", {}, step.then)
            return _Outcome("else", {}, step.otherwise or after)
        if isinstance(step, ExitStep):
            return _Outcome("exited", {}, None, _finished(RunStatus.EXITED, now))
        if isinstance(step, PointsStep):
            currency = step.currency or program.settings.points_currency()
            await ledger_service.adjust(
                conn,
                program,
                member_id=run.member_id,
                currency=currency,
                amount=step.amount,
                reason=step.reason,
                now=now,
                reference_id=key,
            )
            return _Outcome("credited", {"amount": step.amount, "currency": currency}, after)
        if isinstance(step, CouponStep):
            issued = await coupon_service.issue_code(
                conn,
                program,
                step.campaign,
                member_id=run.member_id,
                now=now,
                source=("journey", key),
                valid_days=step.valid_days,
            )
            return _Outcome("issued", {"code": issued.code}, after)
        if isinstance(step, OfferStep):
            journey = await self.repository.journey_by_id(conn, run.journey_id)
            granted = await benefit_service.grant(
                conn,
                program,
                run.member_id,
                kind=step.kind,
                payload=step.payload,
                source=("journey", journey.key if journey else str(run.journey_id)),
                grant_key=key,
                now=now,
                expires_at=now + timedelta(days=step.valid_days),
                title=step.title,
            )
            return _Outcome("offered", {"benefit": str(granted.id), "kind": step.kind}, after)
        if isinstance(step, WebhookStep):
            journey = await self.repository.journey_by_id(conn, run.journey_id)
            async with unit_of_work(conn, now) as uow:
                uow.emit(
                    JourneyWebhook(
                        program_id=program.id,
                        member_id=run.member_id,
                        occurred_at=now,
                        journey=journey.key if journey else "",
                        journey_version=run.version,
                        step=step.id,
                        run_id=run.id,
                        data=step.data,
                    )
                )
            return _Outcome("called", {}, after)
        assert isinstance(step, TagStep)
        member = await member_service.get(conn, program, run.member_id)
        tags = (set(member.tags) | set(step.add)) - set(step.remove)
        await member_service.update(
            conn, program, run.member_id, MemberUpdate(tags=sorted(tags)), now
        )
        return _Outcome("tagged", {"add": step.add, "remove": step.remove}, after)


@dataclass(frozen=True)
class _Outcome:
    """A step's outcome: its name and detail, the step to go to next, and, when the run
    stops here (a wait, the end), the run's values."""

    name: str
    detail: dict[str, Any]
    then: str | None
    stop: dict[str, Any] | None = None


def _wait(step: WaitStep, program: ProgramContext, now: datetime) -> _Outcome:
    """A run stops at its wait step, due when the wait ends (or waiting for the event)."""
    wake = domain.wake_time(step, now, program.settings.timezone)
    stop: dict[str, Any] = {"status": RunStatus.WAITING, "waiting_for": step.event, "wake_at": wake}
    detail = {"until": wake.isoformat(), **({"event": step.event} if step.event else {})}
    return _Outcome("waiting", detail, step.id, stop)


def _failure(exc: Exception) -> str:
    """What a step's refusal says, for its log and the warning."""
    return exc.detail if isinstance(exc, KopilkaError) else str(exc).splitlines()[0]


def _finished(status: RunStatus, now: datetime) -> dict[str, Any]:
    return {"status": status, "finished_at": now, "wake_at": None, "waiting_for": None}


def _log(
    run: RunRow, seq: int, step: str, outcome: str, detail: dict[str, Any], now: datetime
) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "seq": seq,
        "journey_id": run.journey_id,
        "step": step,
        "outcome": outcome,
        "detail": detail,
        "at": now,
    }


def _starts(document: JourneyDocument, event: ev.DomainEvent) -> bool:
    topic = document.entry_topic()
    if topic is None or event.type != topic:
        return False
    if isinstance(document.entry, SegmentEntry):
        return getattr(event, "segment", None) == document.entry.segment
    return True


def _on_member_events(
    run: RunRow, document: JourneyDocument, events: Sequence[ev.DomainEvent]
) -> dict[str, Any]:
    """What a member's events change in one of their runs: the awaited event moves it on
    (due at once), the goal's event marks it converted (and ends it, if the goal says so)."""
    values: dict[str, Any] = {}
    for event in events:
        if str(event.event_id) == run.entry_key or event.occurred_at < run.entered_at:
            continue
        goal = document.goal
        reached = (
            goal is not None
            and run.converted_at is None
            and "converted_at" not in values
            and event.type == goal.event
            and run.goal_until is not None
            and event.occurred_at <= run.goal_until
        )
        if reached:
            values["converted_at"] = event.occurred_at
            if (
                goal is not None
                and goal.ends_run
                and run.status
                in (
                    RunStatus.ACTIVE,
                    RunStatus.WAITING,
                )
            ):
                values |= _finished(RunStatus.CONVERTED, event.occurred_at)
                values["status"] = RunStatus.CONVERTED
                return values
        if run.status == RunStatus.WAITING and event.type == run.waiting_for:
            wait = document.steps[document.index(run.step or "")]
            values |= {
                "status": RunStatus.ACTIVE,
                "waiting_for": None,
                "wake_at": event.occurred_at,
                "step": domain.next_of(document, wait.id),
                "updated_at": event.occurred_at,
            }
            if values["step"] is None:
                values |= _finished(RunStatus.EXITED, event.occurred_at)
            return values
    return values


journey_runner = JourneyRunner()
