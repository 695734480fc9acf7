"""Tier operations: the purchase path's tracker, returns, manual tiers, the member's view,
reviews and re-qualification. Callers hold the member's balance lock (the purchase path,
returns) or this service takes it. Never commits.
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.audit.service import audit_service
from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.clock import zone_named
from kopilka.kit.ids import new_id
from kopilka.kit.sql import is_postgres
from kopilka.members.service import member_service
from kopilka.outbox import events
from kopilka.outbox.unit import UnitOfWork, unit_of_work
from kopilka.programs.ladder import TierLadder
from kopilka.programs.service import ProgramContext
from kopilka.rules.context import MemberFacts
from kopilka.tiers import domain
from kopilka.tiers.domain import PurchaseFact, TierChange, TierState
from kopilka.tiers.progress import next_tier, review_outlook, window_opening
from kopilka.tiers.repository import TierRepository, tier_repository

TICK = timedelta(microseconds=1)  # windows end just after the event they include
MAX_REVIEWS_AT_ONCE = 100  # a job years late still ends


@dataclass
class TierTracker:
    """Tier states and purchase facts of a batch's members, changed in memory as each
    event lands (the fifth purchase of a batch sees the tier the fourth gave), written
    with the batch."""

    ladder: TierLadder
    zone: tzinfo
    program_id: UUID
    version: int | None
    now: datetime
    states: dict[UUID, TierState]
    facts: dict[UUID, list[PurchaseFact]]
    joined: dict[UUID, datetime]
    existing: set[UUID] = field(default_factory=set)
    changed: set[UUID] = field(default_factory=set)
    # Where changes are written; None (a quote, a simulation) keeps them in memory only.
    uow: UnitOfWork | None = None

    def __post_init__(self) -> None:
        self.entry = domain.entry_state(self.ladder)

    def attach(self, uow: UnitOfWork) -> "TierTracker":
        """Write this tracker's changes into ``uow``: each change as it happens, the members'
        tier rows as they stand when the unit is flushed."""
        self.uow = uow
        uow.on_flush(f"tiers:{id(self)}", self._stage_states)
        return self

    def state(self, member_id: UUID) -> TierState:
        return self.states.get(member_id) or self.entry

    def metrics(
        self, member_id: UUID, end: datetime, after: datetime | None = None
    ) -> dict[str, int]:
        facts = self.facts.get(member_id, ())
        joined = self.joined.get(member_id)
        return domain.measure(self.ladder, facts, joined, end, self.zone, after)

    def latest(self, member_id: UUID, now: datetime) -> datetime:
        """A window end after ``now`` and after every purchase recorded for the member
        (one may have been committed while this transaction waited for the lock)."""
        facts = self.facts.get(member_id)
        last = max((f.occurred_at for f in facts), default=now) if facts else now
        return max(now, last) + TICK

    def review_metrics(self, member_id: UUID, state: TierState) -> dict[str, int]:
        """What counts at the state's next review: the window ending at its start."""
        assert state.review_on is not None
        end = domain.midnight(state.review_on, self.zone)
        return self.metrics(member_id, end, domain.counts_after(self.ladder, state))

    def live(self, member_id: UUID, at: datetime) -> TierState:
        """The member's state at ``at``, a manual tier that has ended by then ended."""
        state, change = domain.expire_manual(self.ladder, self.state(member_id), at)
        if change is not None:
            self.record(member_id, state, change)
        return state

    def prime(self, facts: MemberFacts, member_id: UUID, at: datetime) -> None:
        """Give the rules the member's tier at ``at`` and its earning rate."""
        tier = self.live(member_id, at).tier
        facts.tier = tier
        facts.tier_earn_percent = domain.level(self.ladder, tier).benefits.earn_rate_percent

    def record(
        self, member_id: UUID, state: TierState, change: TierChange | None
    ) -> dict[str, Any]:
        """Keep the new state (and the change, with its outbox event); the response block."""
        if state != self.state(member_id):
            self.states[member_id] = state
            self.changed.add(member_id)
        if change is not None:
            self._change(member_id, change)
        return {
            "tier": state.tier,
            "changed": change is not None,
            "from_tier": change.from_tier if change else None,
            "reason": change.reason if change else None,
        }

    def _change(self, member_id: UUID, change: TierChange) -> None:
        if self.uow is None:
            return
        tier_repository.stage_change(
            self.uow,
            {
                "id": new_id(),
                "program_id": self.program_id,
                "member_id": member_id,
                "from_tier": change.from_tier,
                "to_tier": change.to_tier,
                "reason": change.reason,
                "source": change.source,
                "program_version": self.version,
                "at": change.at,
                "created_at": self.now,
            },
        )
        up = domain.rank(self.ladder, change.to_tier) > domain.rank(self.ladder, change.from_tier)
        event_type = events.TierUpgraded if up else events.TierDowngraded
        self.uow.emit(
            event_type(
                program_id=self.program_id,
                member_id=member_id,
                occurred_at=change.at,
                from_tier=change.from_tier,
                to_tier=change.to_tier,
                reason=change.reason,
                source=change.source,
            )
        )

    def grace_started(self, member_id: UUID, state: TierState, at: datetime) -> None:
        if self.uow is not None:
            self.uow.emit(
                events.TierGraceStarted(
                    program_id=self.program_id,
                    member_id=member_id,
                    occurred_at=at,
                    tier=state.tier,
                    grace_until=state.grace_until,
                )
            )

    def after_purchase(
        self, member_id: UUID, purchase_id: str, occurred_at: datetime, amount: int, points: int
    ) -> dict[str, Any]:
        """Count the purchase and upgrade at once if the member now reaches a higher tier."""
        self.facts.setdefault(member_id, []).append(
            PurchaseFact(occurred_at, amount, points, 1 if amount > 0 else 0)
        )
        # Judged with everything recorded so far: a purchase that reaches the till late
        # (dated before others already recorded) still completes the member's total.
        metrics = self.metrics(member_id, self.latest(member_id, occurred_at))
        state, change = domain.upgrade(
            self.ladder,
            self.live(member_id, occurred_at),
            metrics,
            occurred_at,
            self.zone,
            purchase_id,
        )
        return self.record(member_id, state, change)

    def _stage_states(self, uow: UnitOfWork) -> None:
        tier_repository.stage_states(
            uow, self.program_id, {m: self.states[m] for m in self.changed}, self.existing, self.now
        )
        self.existing |= self.changed
        self.changed = set()


def manual_ends_by(as_of: date, zone: tzinfo, now: datetime) -> datetime:
    """Manual tiers ending by this moment end in a job run for ``as_of``: the end of that
    day if it is over, else now (a tier ending at 18:00 lasts till 18:00 even when the
    job runs at 02:00); for a date still to come, its start."""
    start = domain.midnight(as_of, zone)
    return min(domain.midnight(as_of + timedelta(days=1), zone), max(now, start))


def ladder_of(program: ProgramContext) -> TierLadder | None:
    return program.settings.tiers


def zone_of(program: ProgramContext) -> tzinfo:
    return zone_named(program.settings.timezone) or zone_named("UTC")  # type: ignore[return-value]


class TierService:
    def __init__(self, repository: TierRepository = tier_repository) -> None:
        self.repository = repository

    async def track(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: list[UUID],
        since: datetime | None,
        now: datetime,
        states: dict[UUID, TierState] | None = None,
        *,
        single_event: bool = False,
        read: Any = None,
    ) -> TierTracker | None:
        """Tier states (unless given) and the purchases that count for ``member_ids``, from
        the window of ``since`` on (all purchases for lifetime windows); None without a
        ladder. ``single_event``: one member's one event at ``since``, judged at that moment
        only, so the window's purchases may come summed up (one round trip; none if the
        caller already ``read`` them, in the window ``window_for`` gave)."""
        ladder = ladder_of(program)
        if ladder is None:
            return None
        zone = zone_of(program)
        ids = sorted(set(member_ids))
        if single_event and len(ids) == 1 and since is not None and is_postgres(conn):
            one = await self._track_one(conn, program, ladder, zone, ids[0], since, now, read)
            if one is not None:
                return one
        if states is None:
            states = await self.repository.states(conn, program.id, ids)
        start = domain.window_start(ladder, since, zone) if since else None
        points = ladder.points_currency if "points" in ladder.metrics() else None
        facts = await self.repository.purchase_facts(conn, ids, start, points)
        joined = (
            await self.repository.joined(conn, ids) if "tenure_months" in ladder.metrics() else {}
        )
        return TierTracker(
            ladder, zone, program.id, program.version, now, states, facts, joined, set(states)
        )

    async def _track_one(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        ladder: TierLadder,
        zone: tzinfo,
        member_id: UUID,
        at: datetime,
        now: datetime,
        read: Any = None,
    ) -> TierTracker | None:
        start = domain.window_start(ladder, at + TICK, zone)
        if read is not None:
            found = self.repository.one_member_of(read, start, at)
        else:
            found = await self.repository.one_member_pg(
                conn, member_id, start, at, ladder.points_currency
            )
        if found is None:
            return None
        state, fact, joined = found
        states = {member_id: state} if state is not None else {}
        return TierTracker(
            ladder,
            zone,
            program.id,
            program.version,
            now,
            states,
            {member_id: [fact]},
            {member_id: joined} if joined is not None else {},
            set(states),
        )

    def window_for(self, program: ProgramContext, at: datetime) -> domain.TierWindow | None:
        """The window a single event at ``at`` is judged in (None: the program has no
        tiers), for a caller that reads it with its own statement (``track``'s ``read``)."""
        ladder = ladder_of(program)
        if ladder is None:
            return None
        start = domain.window_start(ladder, at + TICK, zone_of(program))
        return domain.TierWindow(start, at, ladder.points_currency)

    async def after_return(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        purchase_id: str,
        at: datetime,
        now: datetime,
        uow: UnitOfWork | None = None,
    ) -> dict[str, Any] | None:
        """Undo the upgrade a returned purchase brought, if the member no longer qualifies
        (the purchase row already carries the return)."""
        tracker = await self.track(conn, program, [member_id], at, now)
        if tracker is None:
            return None
        async with unit_of_work(conn, now, uow) as unit:
            tracker.attach(unit)
            metrics = tracker.metrics(member_id, max(at, now) + TICK)
            state, change = domain.undo_upgrade(
                tracker.ladder, tracker.live(member_id, now), purchase_id, metrics, at, tracker.zone
            )
            return tracker.record(member_id, state, change)

    async def _locked_tracker(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: list[UUID],
        since: datetime | None,
        now: datetime,
    ) -> TierTracker:
        ladder = ladder_of(program)
        if ladder is None:
            raise NotFound("the program has no tier ladder", field="tiers")
        await member_service.lock(conn, program, member_ids)
        tracker = await self.track(conn, program, member_ids, since, now)
        assert tracker is not None
        return tracker

    async def _require_member(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID
    ) -> None:
        if not await member_service.statuses(conn, program, [member_id]):
            raise NotFound(f"member {member_id} not found", field="member_id")

    # --- manual tiers ----------------------------------------------------------------------

    async def assign_manual(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        tier: str,
        reason: str,
        until: datetime | None,
        now: datetime,
    ) -> dict[str, Any]:
        """A manual tier (an invitation, a goodwill gesture, a VIP): a floor until ``until``."""
        if until is not None and until <= now:
            raise InvalidInput("until must be in the future", field="until")

        def decide(ladder: TierLadder, state: TierState) -> tuple[TierState, TierChange | None]:
            if tier not in {rung.id for rung in ladder.levels}:
                raise InvalidInput(f"no tier {tier!r} on the ladder", field="tier")
            return domain.assign_manual(ladder, state, tier, reason, until, now)

        return await self._change_manual(conn, program, member_id, now, decide, "tier.manual_set")

    async def end_manual(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> dict[str, Any]:
        def decide(ladder: TierLadder, state: TierState) -> tuple[TierState, TierChange | None]:
            if state.manual_tier is None:
                raise NotFound("the member has no manual tier", field="member_id")
            return domain.end_manual(ladder, state, now)

        return await self._change_manual(conn, program, member_id, now, decide, "tier.manual_ended")

    async def _change_manual(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_id: UUID,
        now: datetime,
        decide: Callable[[TierLadder, TierState], tuple[TierState, TierChange | None]],
        action: str,
    ) -> dict[str, Any]:
        """Under the member's lock: ``decide`` the new state from the live one, write it,
        answer with the member's view; the change is audited."""
        await self._require_member(conn, program, member_id)
        tracker = await self._locked_tracker(conn, program, [member_id], now, now)
        before = tracker.live(member_id, now)
        async with unit_of_work(conn, now) as unit:
            tracker.attach(unit)
            state, change = decide(tracker.ladder, before)
            tracker.record(member_id, state, change)
        await audit_service.record(
            conn,
            program.id,
            action,
            subject_type="member",
            subject_id=member_id,
            now=now,
            before=domain.manual_view(before),
            after=domain.manual_view(state),
        )
        return await self.member_tier(conn, program, member_id, now)

    # --- the member's view -----------------------------------------------------------------

    async def current_tier(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> str | None:
        """The id of the tier the member has at ``now`` (a manual tier past its end counts
        as ended), from one row, without locks or writes; None without a ladder. A tier the
        ladder no longer has reads as the entry tier, as everywhere on the ladder."""
        ladder = ladder_of(program)
        if ladder is None:
            return None
        states = await self.repository.states(conn, program.id, [member_id])
        state = states.get(member_id) or domain.entry_state(ladder)
        state, _ = domain.expire_manual(ladder, state, now)
        return domain.level(ladder, state.tier).id

    async def member_tier(
        self, conn: AsyncConnection, program: ProgramContext, member_id: UUID, now: datetime
    ) -> dict[str, Any]:
        """Tier, benefits, what counts now, progress to the next tier, the next review's
        outlook and the history of changes."""
        await self._require_member(conn, program, member_id)
        tracker = await self.track(conn, program, [member_id], now, now)
        if tracker is None:
            raise NotFound("the program has no tier ladder", field="tiers")
        ladder, zone = tracker.ladder, tracker.zone
        state = tracker.live(member_id, now)  # shown as it is now; written by the next change
        metrics = tracker.metrics(member_id, now + TICK)
        history = await self.repository.history(conn, member_id)
        rung = domain.level(ladder, state.tier)
        manual = (
            {"tier": state.manual_tier, "reason": state.manual_reason, "until": state.manual_until}
            if state.manual_tier
            else None
        )
        return {
            "member_id": member_id,
            "tier": {"id": rung.id, "name": rung.name, "benefits": rung.benefits},
            "earned_tier": state.earned,
            "since": state.achieved_at,
            "manual": manual,
            "grace_until": state.grace_until,
            "window_start": window_opening(ladder, now, zone),
            "metrics": {m: metrics[m] for m in sorted(ladder.metrics())},
            "next": self._next(ladder, state, metrics, now, zone, program),
            "review": review_outlook(
                ladder,
                state,
                tracker.metrics(member_id, now + TICK, domain.counts_after(ladder, state)),
                zone,
            ),
            "history": [
                {
                    "from_tier": h.from_tier,
                    "to_tier": h.to_tier,
                    "reason": h.reason,
                    "source": h.source,
                    "at": h.at,
                }
                for h in history
            ],
        }

    def _next(
        self,
        ladder: TierLadder,
        state: TierState,
        metrics: dict[str, int],
        now: datetime,
        zone: tzinfo,
        program: ProgramContext,
    ) -> dict[str, Any] | None:
        found = next_tier(ladder, state, metrics, now, zone, program.settings.money_currency)
        if found is None:
            return None
        rung = found["tier"]
        return found | {"tier": {"id": rung.id, "name": rung.name, "benefits": rung.benefits}}

    # --- jobs ------------------------------------------------------------------------------

    async def review_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: list[UUID],
        as_of: date,
        now: datetime,
    ) -> Counter[str]:
        """Reviews due on or before ``as_of`` and manual tiers ending by the end of that
        day, for these members. Each review looks at the window ending at the start of its
        own date. Returns what happened, counted."""
        ladder = ladder_of(program)
        assert ladder is not None
        zone = zone_of(program)
        await member_service.lock(conn, program, member_ids)
        states = await self.repository.states(conn, program.id, member_ids)
        earliest = min((s.review_on for s in states.values() if s.review_on), default=as_of)
        tracker = await self.track(
            conn, program, member_ids, domain.midnight(earliest, zone), now, states
        )
        assert tracker is not None
        async with unit_of_work(conn, now) as unit:
            tracker.attach(unit)
            return self._review(tracker, member_ids, as_of, now)

    def _review(
        self, tracker: TierTracker, member_ids: list[UUID], as_of: date, now: datetime
    ) -> Counter[str]:
        ladder, zone = tracker.ladder, tracker.zone
        counts: Counter[str] = Counter()
        ends_by = manual_ends_by(as_of, zone, now)
        for member_id in member_ids:
            state = tracker.state(member_id)
            reviewed_on: date | None = None
            for _ in range(MAX_REVIEWS_AT_ONCE):
                if state.review_on is None or state.review_on > as_of:
                    break
                reviewed_on = state.review_on
                metrics = tracker.review_metrics(member_id, state)
                state, change, outcome = domain.review(ladder, state, metrics, zone)
                counts[outcome] += 1
                tracker.record(member_id, state, change)
                if outcome == "grace":
                    tracker.grace_started(member_id, state, now)
            if state.manual_until is not None and state.manual_until <= ends_by:
                state, change = domain.end_manual(ladder, state, state.manual_until)
                tracker.record(member_id, state, change)
                counts["manual_ended"] += 1
            # What was bought since the last review's date counts at once, as at a purchase:
            # a member who bought enough after it is not left below the tier they now reach.
            # (Only since then: what the review weighed must not buy the tier back.)
            since = domain.midnight(reviewed_on, zone) - TICK if reviewed_on else None
            end = tracker.latest(member_id, now)
            state, change = domain.upgrade(
                ladder, state, tracker.metrics(member_id, end, since), now, zone
            )
            if change is not None:
                tracker.record(member_id, state, change)
                counts["upgraded_since"] += 1
        return counts

    async def requalify_members(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        member_ids: list[UUID],
        now: datetime,
        *,
        write: bool,
        tenure_only: bool = False,
    ) -> list[tuple[UUID, str, str]]:
        """Each member's earned tier set to what they qualify for now (after a ladder
        change), or with ``tenure_only`` only raised (tenure grows with time, not with
        purchases). Returns (member, from, to) of those who move; writes only if asked."""
        tracker = await self._locked_tracker(conn, program, member_ids, now, now)
        async with unit_of_work(conn, now) as unit:
            if write:
                tracker.attach(unit)
            return self._requalify(tracker, member_ids, now, tenure_only)

    def _requalify(
        self, tracker: TierTracker, member_ids: list[UUID], now: datetime, tenure_only: bool
    ) -> list[tuple[UUID, str, str]]:
        moves: list[tuple[UUID, str, str]] = []
        for member_id in member_ids:
            before = tracker.live(member_id, now)
            metrics = tracker.metrics(member_id, now + TICK)
            if tenure_only:
                state, change = domain.upgrade(tracker.ladder, before, metrics, now, tracker.zone)
            else:
                state, change = domain.requalify(tracker.ladder, before, metrics, now, tracker.zone)
            tracker.record(member_id, state, change)
            if change is not None:
                moves.append((member_id, change.from_tier, change.to_tier))
        return moves

    # --- counts for the console ---------------------------------------------------------------

    async def members_per_tier(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> dict[str, int]:
        """How many members hold each rung of the ladder, bottom first, by their stored
        tier: members without a tier row, and those on a tier the ladder no longer has,
        are on the entry tier (as everywhere on the ladder). A manual tier past its end
        counts until a purchase or the review job records its end. Empty without a ladder."""
        ladder = ladder_of(program)
        if ladder is None:
            return {}
        counts = {level.id: 0 for level in ladder.levels}
        entry = ladder.levels[0].id
        stored = await self.repository.members_per_stored_tier(conn, program.id)
        for tier, members in stored.items():
            counts[tier if tier in counts else entry] += members
        return counts


tier_service = TierService()
