"""A journey's dry run over past days, pure: the members who would have entered, which of
them the holdouts keep out, and each run walked through the steps without any effect — how
many runs reach each step and with what outcome, the points, coupons, offers and messages
the steps would have given (``docs/journeys.md``, "Dry run").

The service gathers what the walk reads beforehand: each would-be entrant's entry instants
(as the entry type finds them), which members each branch's condition matches now, the
members' past events of the types the waits and the goal name (where history is kept),
and, after the walk, which channels reach each member a message step would have sent to.
The walk itself reads nothing.

How a run moves here is how it moves for real (``runs.py``) but in simulated time: a wait
moves the clock to its end (a time of day in the program's time zone), a wait for an event
ends when the member's next such event came — or times out when history does not tell —,
a goal reached ends the run there (``ends_run``), and the re-entry policy is
``domain.may_enter`` over the runs simulated before. Branches are evaluated as of now: what
the member is today, not what they were on the day of the step.
"""

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from kopilka.errors import InvalidInput
from kopilka.journeys import domain
from kopilka.journeys.domain import (
    BranchStep,
    CouponStep,
    ExitStep,
    JourneyDocument,
    OfferStep,
    PastRun,
    PointsStep,
    RunStatus,
    SendStep,
    TagStep,
    WaitStep,
    WebhookStep,
)

# Members walked at most: the figures past this many are of the first ones (by id).
MAX_WALKED = 100_000
# The longest range a dry run covers, in days (a leap year).
MAX_DAYS = 366
DEFAULT_DAYS = 30
# A run is followed this long after its entry, or this many steps, at most: a journey that
# loops back through a wait would go on for ever.
HORIZON = timedelta(days=366)
MAX_STEPS_WALKED = 500


@dataclass(frozen=True)
class Range:
    """The days ``first``..``last`` (both included) in the program's time zone, as the
    instants [start, end); ``end`` no later than now."""

    first: date
    last: date
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def dry_run_range(first: date | None, last: date | None, zone: str, now: datetime) -> Range:
    """The days a dry run covers: ``first``..``last`` in the program's time zone (default:
    the last 30 days, today included), at most a year, ending today at the latest;
    ``InvalidInput`` naming ``from`` or ``to`` otherwise."""
    local = ZoneInfo(zone)
    today = now.astimezone(local).date()
    last = last if last is not None else today
    first = first if first is not None else last - timedelta(days=DEFAULT_DAYS - 1)
    if last > today:
        raise InvalidInput(f"to cannot be after today ({today.isoformat()})", field="to")
    if first > last:
        raise InvalidInput(
            f"from ({first.isoformat()}) must not be after to ({last.isoformat()})", field="from"
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"a dry run covers at most {MAX_DAYS} days", field="from")
    start = datetime.combine(first, time(0), tzinfo=local)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=local)
    return Range(first, last, start.astimezone(now.tzinfo), min(end.astimezone(now.tzinfo), now))


@dataclass(frozen=True)
class Facts:
    """What the walk reads, gathered before it."""

    zone: str
    points_currency: str  # a points step's currency when it names none
    # Branch step id → the members its condition matches now.
    matching: Mapping[str, frozenset[UUID]]
    # Event type → member → the instants of their events of that type, in order, for the
    # types whose history is known (the others: waits time out, goals are not seen).
    events: Mapping[str, Mapping[UUID, Sequence[datetime]]]


@dataclass
class Tally:
    """What the walks add up to."""

    entries: int = 0  # runs that would have started
    held_out: int = 0
    treated: int = 0
    converted: int = 0  # treated runs whose goal history shows reached
    unfinished: int = 0  # runs still going at the horizon (a loop through a wait)
    reached: Counter[str] = field(default_factory=Counter)  # step → runs that reached it
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    points: Counter[str] = field(default_factory=Counter)  # currency → points
    coupons: Counter[str] = field(default_factory=Counter)  # campaign → codes
    offers: Counter[str] = field(default_factory=Counter)  # kind → offers
    # Message step → member → times the member's runs reached it.
    messages: dict[str, Counter[UUID]] = field(default_factory=lambda: defaultdict(Counter))


def enter_and_walk(
    document: JourneyDocument,
    member_id: UUID,
    times: Sequence[datetime],
    held: bool,
    facts: Facts,
    tally: Tally,
) -> None:
    """One member's would-be entries at ``times``: each one the re-entry policy lets in
    (given the runs before it) is held out or walked."""
    # (entered, finished or None while in flight at the next entry, status)
    runs: list[tuple[datetime, datetime | None, RunStatus]] = []
    for at in sorted(times):
        past = [_as_of(run, at) for run in runs]
        if not domain.may_enter(document.reentry, past, at).starts:
            continue
        tally.entries += 1
        if held:
            # A held-out run takes no step: it is over at once (as ``entries.new_run``).
            tally.held_out += 1
            runs.append((at, at, RunStatus.HELD_OUT))
            continue
        tally.treated += 1
        ended, status = walk(document, member_id, at, facts, tally)
        runs.append((at, ended, status))


def _as_of(run: tuple[datetime, datetime | None, RunStatus], at: datetime) -> PastRun:
    """A simulated run as an entry at ``at`` sees it. One that ends at that very instant
    (the event that entered the member also ended their wait) is still in flight, as it
    is for real until the frequent job moves it; a held-out one is over at once."""
    _, ended, status = run
    if status is RunStatus.HELD_OUT or (ended is not None and ended < at):
        return PastRun(status, ended)
    return PastRun(RunStatus.ACTIVE, None)


def walk(
    document: JourneyDocument,
    member_id: UUID,
    entered: datetime,
    facts: Facts,
    tally: Tally,
) -> tuple[datetime | None, RunStatus]:
    """One run from its entry: the steps it reaches counted, and when it ends (None: not
    within the horizon) with its status."""
    goal_at = _goal(document, member_id, entered, facts)
    if goal_at is not None:
        tally.converted += 1
    stop = goal_at if document.goal is not None and document.goal.ends_run else None
    at = entered
    step_id: str | None = document.steps[0].id
    for _ in range(MAX_STEPS_WALKED):
        if stop is not None and at >= stop:
            return stop, RunStatus.CONVERTED
        if step_id is None:
            return at, RunStatus.EXITED
        if at - entered > HORIZON:
            break
        step = document.steps[document.index(step_id)]
        tally.reached[step.id] += 1
        after = domain.next_of(document, step.id)
        if isinstance(step, WaitStep):
            at, step_id = _wait(step, member_id, at, after, facts, tally, stop)
            continue
        if isinstance(step, ExitStep):
            tally.outcomes[step.id]["exited"] += 1
            return at, RunStatus.EXITED
        outcome, step_id = _take(step, member_id, after, facts, tally)
        tally.outcomes[step.id][outcome] += 1
    tally.unfinished += 1
    return None, RunStatus.ACTIVE


def _goal(
    document: JourneyDocument, member_id: UUID, entered: datetime, facts: Facts
) -> datetime | None:
    goal = document.goal
    if goal is None:
        return None
    return _next_event(
        facts, goal.event, member_id, entered, entered + timedelta(days=goal.within_days)
    )


def _wait(
    step: WaitStep,
    member_id: UUID,
    at: datetime,
    after: str | None,
    facts: Facts,
    tally: Tally,
    stop: datetime | None,
) -> tuple[datetime, str | None]:
    """Where a wait takes the run: the clock moved to its end, and the step after it."""
    tally.outcomes[step.id]["waiting"] += 1
    if step.event is None:
        return domain.wake_time(step, at, facts.zone), after
    timeout = at + timedelta(days=step.timeout_days)
    came = _next_event(facts, step.event, member_id, at, timeout)
    if came is not None:
        return came, after
    if stop is None or stop > timeout:
        tally.outcomes[step.id]["timed_out"] += 1
    return timeout, step.on_timeout or after


def _take(
    step: object, member_id: UUID, after: str | None, facts: Facts, tally: Tally
) -> tuple[str, str | None]:
    """A step that takes no time: its outcome and the step after it."""
    if isinstance(step, BranchStep):
        if member_id in facts.matching.get(step.id, frozenset()):
            return "then", step.then
        return "else", step.otherwise or after
    if isinstance(step, SendStep):
        tally.messages[step.id][member_id] += 1
        return "message", after
    if isinstance(step, PointsStep):
        tally.points[step.currency or facts.points_currency] += step.amount
        return "credited", after
    if isinstance(step, CouponStep):
        tally.coupons[step.campaign] += 1
        return "issued", after
    if isinstance(step, OfferStep):
        tally.offers[step.kind] += 1
        return "offered", after
    if isinstance(step, TagStep):
        return "tagged", after
    assert isinstance(step, WebhookStep)
    return "called", after


def _next_event(
    facts: Facts, topic: str, member_id: UUID, after: datetime, until: datetime
) -> datetime | None:
    """The member's first event of ``topic`` in (after, until], if history tells."""
    for at in facts.events.get(topic, {}).get(member_id, ()):
        if after < at <= until:
            return at
        if at > until:
            return None
    return None


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageCount:
    """What one message step would have sent: per channel, and the members none reached."""

    step: str
    kind: str
    sent: int  # runs with at least one channel
    skipped: int  # runs of members no channel reaches
    channels: dict[str, int]  # channel → messages


def count_messages(
    step: SendStep, reached: Mapping[UUID, int], channels_of: Mapping[UUID, Sequence[str]]
) -> MessageCount:
    """``reached``: member → times their runs reached the step; ``channels_of``: member →
    the channels that would carry the message to them."""
    sent = skipped = 0
    per_channel: Counter[str] = Counter()
    for member_id, times in reached.items():
        channels = channels_of.get(member_id, ())
        if not channels:
            skipped += times
            continue
        sent += times
        for channel in channels:
            per_channel[channel] += times
    return MessageCount(step.id, step.kind, sent, skipped, dict(per_channel))


# --- the answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepReach:
    id: str
    type: str
    reached: int  # runs that reached the step
    outcomes: dict[str, int]


@dataclass(frozen=True)
class PointsCount:
    currency: str
    points: int
    value: int | None  # minor units of money; None: the currency has no known value


@dataclass(frozen=True)
class DryRun:
    """A dry run's answer (``docs/journeys.md``)."""

    journey: str | None  # its key (None: an unsaved document)
    document: str  # "draft", "version N" or "document"
    first: date
    last: date
    entry: str  # the entry's type
    basis: str  # where the entrants come from: events | feature_tables | dates | segment_now …
    members: int  # distinct members who would have entered (every one, not only walked)
    walked: int  # members walked (at most ``cap``)
    capped: bool
    cap: int
    entries: int  # runs that would have started (of the members walked)
    held_out: int
    treated: int
    converted: int  # treated runs whose goal the history shows reached
    unfinished: int
    steps: list[StepReach]
    messages: list[MessageCount]
    points: list[PointsCount]
    points_value: int  # of the currencies with a known value, minor units of money
    money_currency: str
    coupons: dict[str, int]
    offers: dict[str, int]
    notes: list[str]  # what the figures assume, and what they could not know


def steps_reached(
    document: JourneyDocument, tally: Tally, messages: Sequence[MessageCount]
) -> list[StepReach]:
    """Each step with the runs that reached it and their outcomes — a message step's
    ``sent`` or ``skipped`` as the channels tell."""
    sent = {m.step: {"sent": m.sent, "skipped": m.skipped} for m in messages}
    found = []
    for step in document.steps:
        outcomes = sent.get(step.id) or dict(tally.outcomes[step.id])
        found.append(
            StepReach(
                step.id, step.type, tally.reached[step.id], {k: v for k, v in outcomes.items() if v}
            )
        )
    return found
