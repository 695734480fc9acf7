"""A journey's results from its counts: per step, how many runs took it and with what
outcome and how many are at it now; per journey, the runs treated and held out, their
conversion to the goal and the uplift with a 95 % interval. Pure."""

import math
from dataclasses import dataclass, field

from kopilka.journeys.domain import JourneyDocument, RunStatus

Z_95 = 1.959964


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
class JourneyStats:
    key: str
    entered: int  # runs that took the steps (the treated)
    held_out: int
    active: int
    waiting: int
    converted: int  # treated runs that reached the goal
    exited: int
    conversion: float | None  # treated
    holdout_conversion: float | None
    uplift: float | None  # conversion − holdout conversion
    uplift_interval: Interval | None
    steps: list[StepStats] = field(default_factory=list)


def journey_stats(
    key: str,
    document: JourneyDocument,
    steps: dict[tuple[str, str], int],
    at_steps: dict[str, int],
    runs: dict[str, tuple[int, int]],
) -> JourneyStats:
    """``steps``: (step, outcome) → times; ``at_steps``: step → live runs at it; ``runs``:
    status → (runs, of them converted)."""
    per_step = []
    for step in document.steps:
        outcomes = {o: n for (s, o), n in steps.items() if s == step.id}
        per_step.append(
            StepStats(
                step.id, step.type, sum(outcomes.values()), outcomes, at_steps.get(step.id, 0)
            )
        )
    held, held_converted = runs.get(RunStatus.HELD_OUT, (0, 0))
    treated = {s: n for s, n in runs.items() if s != RunStatus.HELD_OUT}
    entered = sum(n for n, _ in treated.values())
    converted = sum(c for _, c in treated.values())
    rate, held_rate = _ratio(converted, entered), _ratio(held_converted, held)
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
        steps=per_step,
    )


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
