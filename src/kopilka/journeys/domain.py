"""Journeys as data: an entry, a list of steps, a goal, a re-entry policy and a holdout;
validated with the failing field named (``steps.2.days``). Pure: no database.

A member's run starts at the first step and goes down the list; a ``branch`` jumps to the
step it names, an ``exit`` (or the end of the list) ends the run, a ``wait`` stops it until
its time (or its event) comes. Which step a run is at, and when it wakes, is all the state
the worker keeps.
"""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kopilka.errors import InvalidInput
from kopilka.kit.types import Int

KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_STEPS = 50
MAX_HOLDOUT_PERCENT = 50
# Steps one pass of the worker runs for a run before it must have reached a wait or the
# end: a journey whose branches loop without a wait stops there instead of spinning.
MAX_STEPS_PER_PASS = 100

SEGMENT_EVENTS = {"segment_entered": "segment.entered", "segment_left": "segment.left"}

Key = Annotated[str, Field(pattern=KEY_PATTERN)]
# Events a journey may start from, wait for, or count as its goal.
Topic = Literal[
    "member.registered",
    "member.updated",
    "purchase.recorded",
    "purchase.claimed",
    "return.recorded",
    "points.earned",
    "points.redeemed",
    "points.expired",
    "tier.upgraded",
    "tier.downgraded",
    "coupon.issued",
    "coupon.redeemed",
    "reward.redeemed",
    "activity.recorded",
]
ENTRY_EVENTS: tuple[str, ...] = get_args(Topic)


class JourneyStatus(StrEnum):
    DRAFT = "draft"  # never published
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class RunStatus(StrEnum):
    ACTIVE = "active"  # due at ``wake_at``
    WAITING = "waiting"  # at a wait step until ``wake_at`` (or the event it waits for)
    HELD_OUT = "held_out"  # in the holdout: no step runs; its goal is still counted
    CONVERTED = "converted"
    EXITED = "exited"


FINISHED = frozenset({RunStatus.CONVERTED, RunStatus.EXITED})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- entries ----------------------------------------------------------------------------------


class EventEntry(_Strict):
    """A member enters when one of their events of this type is delivered."""

    type: Literal["event"]
    event: Topic


class SegmentEntry(_Strict):
    """A member enters when they enter (or leave) a segment."""

    type: Literal["segment_entered", "segment_left"]
    segment: Key


class DateEntry(_Strict):
    """A member enters on a date of theirs — their ``birthday``, or the anniversary of
    the day they ``joined`` — moved by ``offset_days`` (−3: three days before), at ``at``
    in the program's time zone (the daily job enters them)."""

    type: Literal["date"]
    field: Literal["birthday", "joined"]
    offset_days: Int = Field(default=0, ge=-60, le=60)
    at: time = time(10, 0)


class ScheduleEntry(_Strict):
    """The members of ``segment`` enter every day, every week on ``weekday`` (1 = Monday)
    or every month on ``day`` (1–28), at ``at`` in the program's time zone."""

    type: Literal["schedule"]
    segment: Key
    every: Literal["day", "week", "month"]
    weekday: Int = Field(default=1, ge=1, le=7)
    day: Int = Field(default=1, ge=1, le=28)
    at: time = time(10, 0)


Entry = Annotated[
    EventEntry | SegmentEntry | DateEntry | ScheduleEntry, Field(discriminator="type")
]


class ReentryPolicy(StrEnum):
    ONCE = "once"  # a member runs the journey once, ever (per version or not: per journey)
    AFTER_EXIT = "after_exit"  # again once their previous run has finished
    ALWAYS = "always"  # every entry starts a run, even while one is in flight


class Reentry(_Strict):
    policy: ReentryPolicy = ReentryPolicy.AFTER_EXIT
    # After a finished run, at least this many days before the next (0: no pause).
    cooldown_days: Int = Field(default=0, ge=0, le=3660)


class Goal(_Strict):
    """An event that counts as the journey's conversion within ``within_days`` of entry;
    with ``ends_run`` the run stops there."""

    event: Topic
    within_days: Int = Field(default=30, ge=1, le=366)
    ends_run: bool = True


# --- steps ------------------------------------------------------------------------------------


class _Step(_Strict):
    id: Key


class WaitStep(_Step):
    """Wait ``days``/``hours``/``minutes``; or until the next ``until`` time of day in the
    program's time zone; or for the member's ``event`` for at most ``timeout_days`` (on
    time-out the run goes to ``on_timeout``, else on)."""

    type: Literal["wait"]
    days: Int = Field(default=0, ge=0, le=366)
    hours: Int = Field(default=0, ge=0, le=23 * 366)
    minutes: Int = Field(default=0, ge=0, le=59 * 366)
    until: time | None = None
    event: Topic | None = None
    timeout_days: Int = Field(default=7, ge=1, le=366)
    on_timeout: Key | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "WaitStep":
        duration = self.days or self.hours or self.minutes
        kinds = [bool(duration), self.until is not None, self.event is not None]
        if sum(kinds) != 1:
            raise ValueError(
                "wait for a duration (days, hours, minutes), until a time, or an event"
            )
        if self.on_timeout is not None and self.event is None:
            raise ValueError("on_timeout needs an event to wait for")
        return self

    def duration(self) -> timedelta:
        return timedelta(days=self.days, hours=self.hours, minutes=self.minutes)


class BranchStep(_Step):
    """Go to ``then`` when the member matches ``condition`` (a segment definition:
    ``docs/segments.md``), else to ``otherwise`` (none: the next step)."""

    type: Literal["branch"]
    condition: dict[str, Any]
    then: Key
    otherwise: Key | None = None


class SendStep(_Step):
    """A message of ``kind`` (a notification kind; marketing ones need the member's consent)
    with ``variables``, on ``channels`` or the program's channels for the kind."""

    type: Literal["send"]
    kind: str = Field(min_length=1, max_length=64)
    variables: dict[str, Any] = Field(default_factory=dict)
    channels: list[Literal["email", "sms", "push", "inbox"]] | None = None


class PointsStep(_Step):
    """Credit ``amount`` points (a ledger adjustment, so the ledger's rules apply)."""

    type: Literal["points"]
    amount: Int = Field(ge=1, le=10_000_000)
    currency: str | None = None
    reason: str = Field(default="journey", min_length=1, max_length=200)


class CouponStep(_Step):
    """Issue a personal code of coupon campaign ``campaign``, valid ``valid_days``."""

    type: Literal["coupon"]
    campaign: str = Field(min_length=1, max_length=64)
    valid_days: Int | None = Field(default=None, ge=1, le=3660)


# A member's tag, as the members' API takes them.
Tag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class TagStep(_Step):
    type: Literal["tag"]
    add: list[Tag] = Field(default_factory=list, max_length=20)
    remove: list[Tag] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _something(self) -> "TagStep":
        if not self.add and not self.remove:
            raise ValueError("add or remove at least one tag")
        return self


class OfferStep(_Step):
    """A personal offer for the member's next purchase (``docs/benefits.md``): a ``boost``
    (``{"factor_percent": 200}``: double points), a ``free_sample`` (``{"sku": …}``),
    ``free_delivery``, or a ``reward`` at a personal price; valid ``valid_days``."""

    type: Literal["offer"]
    kind: Literal["boost", "free_sample", "free_delivery", "reward"]
    payload: dict[str, Any] = Field(default_factory=dict)
    valid_days: Int = Field(default=14, ge=1, le=366)
    title: str | None = Field(default=None, max_length=200)


class WebhookStep(_Step):
    """Tell the program's systems: a ``journey.webhook`` event with ``data``, delivered to
    the webhook endpoints that subscribe to it (signed, retried: ``docs/webhooks.md``)."""

    type: Literal["webhook"]
    data: dict[str, Any] = Field(default_factory=dict)


class ExitStep(_Step):
    type: Literal["exit"]


Step = Annotated[
    WaitStep
    | BranchStep
    | SendStep
    | PointsStep
    | CouponStep
    | TagStep
    | OfferStep
    | WebhookStep
    | ExitStep,
    Field(discriminator="type"),
]


class JourneyDocument(_Strict):
    """What a journey does; versioned like a program's settings."""

    name: str = Field(min_length=1, max_length=200)
    entry: Entry
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    goal: Goal | None = None
    reentry: Reentry = Reentry()
    holdout_percent: Int = Field(default=0, ge=0, le=MAX_HOLDOUT_PERCENT)

    def index(self, step_id: str) -> int:
        return next(i for i, step in enumerate(self.steps) if step.id == step_id)

    def entry_topic(self) -> str | None:
        """The event type that starts a run (None: the daily job enters members)."""
        if isinstance(self.entry, EventEntry):
            return self.entry.event
        if isinstance(self.entry, SegmentEntry):
            return SEGMENT_EVENTS[self.entry.type]
        return None


def parse_journey(raw: Any) -> JourneyDocument:
    """A journey document, or ``InvalidInput`` naming the first field at fault and listing
    every error (branch conditions are checked by the service, with the segment parser)."""
    if not isinstance(raw, Mapping):
        raise InvalidInput("the journey document must be an object", field="document")
    try:
        document = JourneyDocument.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"field": _field_of(error["loc"]), "message": _message(error)} for error in exc.errors()
        ]
        first = errors[0]
        raise InvalidInput(
            f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        ) from None
    check_steps(document)
    return document


def check_steps(document: JourneyDocument) -> None:
    """Step ids unique, every jump to a step that exists, and no way round the steps that
    passes no wait (a run would spin); ``InvalidInput`` naming the step's field."""
    seen: set[str] = set()
    for i, step in enumerate(document.steps):
        if step.id in seen:
            raise InvalidInput(f"step id {step.id!r} is used twice", field=f"steps.{i}.id")
        seen.add(step.id)
    for i, step in enumerate(document.steps):
        for name, target in _jump_fields(step):
            if target not in seen:
                raise InvalidInput(
                    f"step {step.id!r} goes to {target!r}, which is no step",
                    field=f"steps.{i}.{name}",
                )
    loop = _loop_without_wait(document)
    if loop is not None:
        raise InvalidInput(
            f"steps {' → '.join(loop)} go round without a wait: a run would never stop",
            field=f"steps.{document.index(loop[0])}",
        )


def _jump_fields(step: Any) -> list[tuple[str, str]]:
    if isinstance(step, BranchStep):
        return [("then", step.then), *([("otherwise", step.otherwise)] if step.otherwise else [])]
    if isinstance(step, WaitStep) and step.on_timeout:
        return [("on_timeout", step.on_timeout)]
    return []


def _successors(document: JourneyDocument, step: Any) -> list[str]:
    """The steps a run may go to from ``step`` without stopping (a wait stops it)."""
    if isinstance(step, ExitStep | WaitStep):
        return []
    after = next_of(document, step.id)
    if isinstance(step, BranchStep):
        other = step.otherwise or after
        return [step.then, other] if other else [step.then]
    return [after] if after else []


def _loop_without_wait(document: JourneyDocument) -> list[str] | None:
    """A cycle of steps none of which is a wait, if there is one."""
    by_id = {step.id: step for step in document.steps}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(step_id: str) -> list[str] | None:
        state[step_id] = 1
        path.append(step_id)
        for following in _successors(document, by_id[step_id]):
            if state.get(following) == 1:
                return [*path[path.index(following) :], following]
            if following not in state:
                found = visit(following)
                if found:
                    return found
        path.pop()
        state[step_id] = 2
        return None

    for step in document.steps:
        if step.id not in state:
            found = visit(step.id)
            if found:
                return found
    return None


def _field_of(location: Sequence[Any]) -> str:
    """The dotted path of an error's location, without the tag Pydantic puts there for the
    entry's and the steps' unions (``entry.event.event`` is the entry's ``event``;
    ``steps.0.wait.days`` the first step's ``days``): the author never wrote it. Told by
    its place, not its name — an event entry's tag is ``event``, a field's name too."""
    parts = list(location)
    if len(parts) >= 2 and parts[0] == "entry":
        del parts[1]
    elif len(parts) >= 3 and parts[0] == "steps" and isinstance(parts[1], int):
        del parts[2]
    return ".".join(str(part) for part in parts) or "document"


def _message(error: Mapping[str, Any]) -> str:
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


# --- running ----------------------------------------------------------------------------------


def held_out(journey_id: UUID, member_id: UUID, percent: int) -> bool:
    """Whether the member is in the journey's holdout: a hash of both into 0–99, below
    ``percent``; the same on every server and independent of any other split."""
    return _bucket(f"journey:{journey_id}:{member_id}") < percent


def globally_held_out(program_id: UUID, member_id: UUID, percent: int) -> bool:
    """Whether the member is in the program's holdout from every journey."""
    return _bucket(f"journeys:{program_id}:{member_id}") < percent


def _bucket(text: str) -> int:
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


@dataclass(frozen=True)
class EntryDecision:
    """Whether a member entering now starts a run, and why not."""

    starts: bool
    reason: str = ""


@dataclass(frozen=True)
class PastRun:
    status: RunStatus
    finished_at: datetime | None


def may_enter(reentry: Reentry, runs: Sequence[PastRun], now: datetime) -> EntryDecision:
    """The re-entry policy applied to the member's earlier runs of the journey."""
    if not runs:
        return EntryDecision(True)
    if reentry.policy is ReentryPolicy.ONCE:
        return EntryDecision(False, "ran before")
    in_flight = [r for r in runs if r.status in (RunStatus.ACTIVE, RunStatus.WAITING)]
    if reentry.policy is ReentryPolicy.AFTER_EXIT and in_flight:
        return EntryDecision(False, "in flight")
    finished = [r.finished_at for r in runs if r.finished_at is not None]
    cooling = reentry.cooldown_days and finished
    if cooling and now - max(finished) < timedelta(days=reentry.cooldown_days):
        return EntryDecision(False, "cooling down")
    return EntryDecision(True)


def next_of(document: JourneyDocument, step_id: str) -> str | None:
    """The step after ``step_id`` in the list (None: it was the last)."""
    i = document.index(step_id) + 1
    return document.steps[i].id if i < len(document.steps) else None


def wake_time(step: WaitStep, now: datetime, zone: str) -> datetime:
    """When a duration or time-of-day wait that starts ``now`` ends (an event wait: its
    time-out)."""
    if step.event is not None:
        return now + timedelta(days=step.timeout_days)
    if step.until is None:
        return now + step.duration()
    local = now.astimezone(ZoneInfo(zone))
    moment = local.replace(hour=step.until.hour, minute=step.until.minute, second=0, microsecond=0)
    if moment <= local:
        moment = (local + timedelta(days=1)).replace(
            hour=step.until.hour, minute=step.until.minute, second=0, microsecond=0
        )
    return moment.astimezone(now.tzinfo)


def scheduled_on(entry: ScheduleEntry, today: date) -> bool:
    if entry.every == "week":
        return today.isoweekday() == entry.weekday
    if entry.every == "month":
        return today.day == entry.day
    return True


def month_days(day: date) -> list[tuple[int, int]]:
    """The (month, day) pairs whose date is ``day``: 29 February's is the 28th in a year
    without one."""
    days = [(day.month, day.day)]
    if (day.month, day.day) == (2, 28) and not _leap(day.year):
        days.append((2, 29))
    return days


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def local_time(day: date, at: time, zone: str) -> datetime:
    """``at`` on ``day`` in ``zone``, as an instant (UTC)."""
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone)).astimezone(UTC)
