"""A journey's results from its counts: per step, how many runs took it and with what
outcome and how many are at it now — the steps of the version in force, and those of each
earlier version under their version —; per journey (every version's runs), the runs
treated and held out, their conversion to the goal and the uplift with a 95 % interval.
Pure."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from kopilka.journeys.domain import RunStatus

Z_95 = 1.959964

# A step as the statistics list it: its id and type.
StepOf = tuple[str, str]


@dataclass(frozen=True)
class StepStats:
    id: str
    type: str
    taken: int  # times runs took the step
    outcomes: dict[str, int]  # outcome → times
    at_now: int  # live runs at the step (waiting there, or due)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class VersionStats:
    """The runs of one earlier version and the steps they took on it."""

    version: int
    entered: int  # runs treated
    held_out: int
    converted: int
    steps: list[StepStats]


@dataclass(frozen=True)
class JourneyStats:
    key: str
    entered: int  # runs that took the steps (the treated), every version's
    held_out: int
    active: int
    waiting: int
    converted: int  # treated runs that reached the goal
    exited: int
    conversion: float | None  # treated
    holdout_conversion: float | None
    uplift: float | None  # conversion − holdout conversion
    uplift_interval: Interval | None
    version: int | None = None  # the version in force (None: the draft's steps)
    steps: list[StepStats] = field(default_factory=list)  # the version in force's
    versions: list[VersionStats] = field(default_factory=list)  # earlier ones, newest first


def journey_stats(
    key: str,
    current: int | None,
    steps_of: Mapping[int | None, Sequence[StepOf]],
    steps: Mapping[tuple[int, str, str], int],
    at_steps: Mapping[tuple[int, str], int],
    runs: Mapping[tuple[int, str], tuple[int, int]],
) -> JourneyStats:
    """``current``: the version in force (None: never published); ``steps_of``: each
    version's steps (None: the draft's); ``steps``: (version, step, outcome) → times;
    ``at_steps``: (version, step) → live runs at it; ``runs``: (version, status) → (runs,
    of them converted). Versions without a document of their own are left out of the
    per-step lists, never out of the totals."""
    by_status: dict[str, tuple[int, int]] = {}
    for (_, status), (n, c) in runs.items():
        before = by_status.get(status, (0, 0))
        by_status[status] = (before[0] + n, before[1] + c)
    held, held_converted = by_status.get(RunStatus.HELD_OUT, (0, 0))
    treated = {s: n for s, n in by_status.items() if s != RunStatus.HELD_OUT}
    entered = sum(n for n, _ in treated.values())
    converted = sum(c for _, c in treated.values())
    rate, held_rate = _ratio(converted, entered), _ratio(held_converted, held)
    earlier = sorted({v for v, _ in runs} - {current}, reverse=True)
    return JourneyStats(
        key=key,
        entered=entered,
        held_out=held,
        active=treated.get(RunStatus.ACTIVE, (0, 0))[0],
        waiting=treated.get(RunStatus.WAITING, (0, 0))[0],
        converted=converted,
        exited=treated.get(RunStatus.EXITED, (0, 0))[0],
        conversion=rate,
        holdout_conversion=held_rate,
        uplift=rate - held_rate if rate is not None and held_rate is not None else None,
        uplift_interval=difference_interval(converted, entered, held_converted, held),
        version=current,
        steps=_steps(current, steps_of.get(current, ()), steps, at_steps),
        versions=[
            _version(v, steps_of.get(v, ()), steps, at_steps, runs)
            for v in earlier
            if v in steps_of
        ],
    )


def _steps(
    version: int | None,
    listed: Sequence[StepOf],
    steps: Mapping[tuple[int, str, str], int],
    at_steps: Mapping[tuple[int, str], int],
) -> list[StepStats]:
    found = []
    for step_id, step_type in listed:
        outcomes = {o: n for (v, s, o), n in steps.items() if v == version and s == step_id}
        at_now = at_steps.get((version, step_id), 0) if version is not None else 0
        found.append(StepStats(step_id, step_type, sum(outcomes.values()), outcomes, at_now))
    return found


def _version(
    version: int,
    listed: Sequence[StepOf],
    steps: Mapping[tuple[int, str, str], int],
    at_steps: Mapping[tuple[int, str], int],
    runs: Mapping[tuple[int, str], tuple[int, int]],
) -> VersionStats:
    mine = {s: n for (v, s), n in runs.items() if v == version}
    held = mine.get(RunStatus.HELD_OUT, (0, 0))[0]
    treated = [n for s, n in mine.items() if s != RunStatus.HELD_OUT]
    return VersionStats(
        version=version,
        entered=sum(n for n, _ in treated),
        held_out=held,
        converted=sum(c for _, c in treated),
        steps=_steps(version, listed, steps, at_steps),
    )


def steps_listed(document: Mapping[str, object] | None) -> list[StepOf]:
    """The (id, type) of a stored document's steps, read as stored: an old version that
    no longer passes today's checks still lists its steps."""
    listed = document.get("steps") if document is not None else None
    if not isinstance(listed, list):
        return []
    return [
        (str(step.get("id")), str(step.get("type"))) for step in listed if isinstance(step, Mapping)
    ]


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def difference_interval(
    hits: int, trials: int, control_hits: int, control_trials: int
) -> Interval | None:
    """The 95 % interval of the difference of two proportions (normal approximation, as
    for large groups; None while either group is empty)."""
    if not trials or not control_trials:
        return None
    p, q = hits / trials, control_hits / control_trials
    spread = Z_95 * math.sqrt(p * (1 - p) / trials + q * (1 - q) / control_trials)
    return Interval(p - q - spread, p - q + spread)
