"""Experiments and campaign holdouts, measured honestly: every member the split put in an
arm counts in it (intention to treat), whether they bought or not, and each arm is compared
with the control on revenue per member (``docs/analytics.md``). Reads only; never
commits.

Two kinds of experiment share one report:

* a rules experiment (``settings.experiments``, its key is its name): every member who
  joined before the window's end, in the arm recorded for them or, if none is recorded
  yet, the arm the experiment's hash gives them (the one they would get at their next
  purchase);
* a broadcast's holdout (``broadcast:<id>``): the broadcast's audience, split into the
  members sent to (``sent``) and those held back (``holdout``), from the broadcast's start.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.analytics import liability
from kopilka.analytics.experiment_repository import (
    ExperimentRepository,
    MemberSums,
    experiment_repository,
)
from kopilka.analytics.liability import PointRate
from kopilka.errors import InvalidInput, NotFound
from kopilka.messaging.broadcasts import broadcast_service
from kopilka.programs.service import ProgramContext
from kopilka.rules.experiments import assign_arm
from kopilka.rules.schemas import Experiment

if TYPE_CHECKING:
    # The statistics need numpy and scipy, imported when a report is made: the API
    # process does not carry them from its start (docs/performance.md, its idle memory).
    from kopilka.analytics.experiments import Analysis, ArmData

BROADCAST = "broadcast:"
SENT, HOLDOUT = "sent", "holdout"
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ArmShare:
    name: str
    percent: int


@dataclass(frozen=True)
class ExperimentInfo:
    """An experiment of the program: its key, kind (``rules`` or ``broadcast``), arms and
    when it started (None: nobody assigned yet)."""

    key: str
    kind: str
    name: str
    arms: list[ArmShare]
    started_at: datetime | None
    assigned: int  # members recorded in it (rules) or in the audience (broadcast)


@dataclass(frozen=True)
class ExperimentReport:
    key: str
    kind: str
    name: str
    window_from: datetime
    window_to: datetime
    pre_period_from: datetime
    population: str  # who counts: "intention_to_treat"
    money_currency: str
    points_currency: str
    point_value: PointRate | None
    gross_margin_percent: int
    recorded: dict[str, int]  # rules: members recorded per arm (assigned on first use)
    analysis: "Analysis"


@dataclass(frozen=True)
class _Split:
    """Who is in which arm, and the shares the arms were meant to get."""

    kind: str
    name: str
    started_at: datetime | None
    arms: list[ArmShare]
    members: dict[UUID, str]
    recorded: dict[str, int]


class ExperimentService:
    def __init__(self, repository: ExperimentRepository = experiment_repository) -> None:
        self.repository = repository

    async def experiments(
        self, conn: AsyncConnection, program: ProgramContext
    ) -> list[ExperimentInfo]:
        """The program's rules experiments (in the settings' order), then the broadcasts
        that held part of their audience back (newest first)."""
        started = await self.repository.first_assignments(conn, program.id)
        found = [
            ExperimentInfo(
                key=e.name,
                kind="rules",
                name=e.name,
                arms=[ArmShare(a.name, a.percent) for a in e.arms],
                started_at=started[e.name][0] if e.name in started else None,
                assigned=started[e.name][1] if e.name in started else 0,
            )
            for e in program.settings.experiments
        ]
        for row in await broadcast_service.with_holdout(conn, program):
            found.append(
                ExperimentInfo(
                    key=f"{BROADCAST}{row.id}",
                    kind="broadcast",
                    name=row.name,
                    arms=_broadcast_arms(row.holdout_percent),
                    started_at=row.scheduled_at,
                    assigned=row.total,
                )
            )
        return found

    async def report(
        self,
        conn: AsyncConnection,
        program: ProgramContext,
        key: str,
        now: datetime,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> ExperimentReport:
        """The experiment ``key`` over [start, end) (default: from its start to ``now``).

        404 naming ``key`` for an experiment the program does not have; 422 naming ``from``
        or ``to`` for a window that is empty, reversed or ends after ``now``, or when the
        experiment has not started and no ``from`` is given.
        """
        window_to = (end or now).astimezone(UTC)
        split = await self._split(conn, program, key, window_to)
        if window_to > now:
            raise InvalidInput("the window cannot end after now", field="to")
        window_from = start.astimezone(UTC) if start is not None else split.started_at
        if window_from is None:
            raise InvalidInput(
                f"{key} has not started (nobody is assigned yet): give from", field="from"
            )
        if window_from >= window_to:
            raise InvalidInput(
                f"the window must start before it ends ({window_from.isoformat()} is not "
                f"before {window_to.isoformat()})",
                field="from",
            )
        pre_from = window_from - (window_to - window_from)
        settings = program.settings
        currency = settings.points_currency()
        rate = liability.point_rate(settings, currency)
        sums = await self.repository.purchase_sums(
            conn, program.id, pre_from, window_from, window_to
        )
        points = await self.repository.points_earned(
            conn, program.id, currency, window_from, window_to
        )
        arms = _arm_data(split, {s.member_id: s for s in sums}, points)
        from kopilka.analytics import experiments

        control = experiments.choose_control([(a.name, a.percent) for a in split.arms])
        analysis = experiments.analyse(
            arms,
            control=control,
            margin_percent=settings.analytics.gross_margin_percent,
            rate=rate,
            window_days=(window_to - window_from).total_seconds() / SECONDS_PER_DAY,
        )
        return ExperimentReport(
            key=key,
            kind=split.kind,
            name=split.name,
            window_from=window_from,
            window_to=window_to,
            pre_period_from=pre_from,
            population="intention_to_treat",
            money_currency=settings.money_currency,
            points_currency=currency,
            point_value=rate,
            gross_margin_percent=settings.analytics.gross_margin_percent,
            recorded=split.recorded,
            analysis=analysis,
        )

    async def _split(
        self, conn: AsyncConnection, program: ProgramContext, key: str, end: datetime
    ) -> _Split:
        experiment = next((e for e in program.settings.experiments if e.name == key), None)
        if experiment is not None:
            return await self._rules_split(conn, program, experiment, end)
        if key.startswith(BROADCAST):
            try:
                broadcast_id = UUID(key.removeprefix(BROADCAST))
            except ValueError:
                broadcast_id = None
            if broadcast_id is not None:
                return await self._broadcast_split(conn, program, broadcast_id, key)
        raise NotFound(f"the program has no experiment {key!r}", field="key")

    async def _rules_split(
        self, conn: AsyncConnection, program: ProgramContext, experiment: Experiment, end: datetime
    ) -> _Split:
        started = await self.repository.first_assignments(conn, program.id)
        recorded = await self.repository.recorded_arms(conn, program.id, experiment.name)
        names = {a.name for a in experiment.arms}
        members = {}
        for member_id in await self.repository.members_before(conn, program.id, end):
            kept = recorded.get(member_id)
            # As the rules decide it: a recorded arm stays the member's arm.
            members[member_id] = (
                kept if kept is not None and kept in names else assign_arm(experiment, member_id)
            )
        counts: dict[str, int] = {}
        for arm in recorded.values():
            counts[arm] = counts.get(arm, 0) + 1
        return _Split(
            kind="rules",
            name=experiment.name,
            started_at=started[experiment.name][0] if experiment.name in started else None,
            arms=[ArmShare(a.name, a.percent) for a in experiment.arms],
            members=members,
            recorded=counts,
        )

    async def _broadcast_split(
        self, conn: AsyncConnection, program: ProgramContext, broadcast_id: UUID, key: str
    ) -> _Split:
        try:
            row, audience = await broadcast_service.audience_split(conn, program, broadcast_id)
        except NotFound as exc:
            raise NotFound(f"the program has no experiment {key!r}", field="key") from exc
        return _Split(
            kind="broadcast",
            name=row.name,
            started_at=row.scheduled_at,
            arms=_broadcast_arms(row.holdout_percent),
            members={m: HOLDOUT if held else SENT for m, held in audience},
            recorded={},
        )


def _broadcast_arms(holdout_percent: int) -> list[ArmShare]:
    """Sent and held back; a broadcast that held nobody back has no control arm."""
    if holdout_percent == 0:
        return [ArmShare(SENT, 100)]
    return [ArmShare(SENT, 100 - holdout_percent), ArmShare(HOLDOUT, holdout_percent)]


def _arm_data(
    split: _Split, sums: dict[UUID, MemberSums], points: dict[UUID, int]
) -> list["ArmData"]:
    """Per-member arrays of each arm; a member who bought nothing counts with zeros."""
    columns: dict[str, list[list[int]]] = {a.name: [[] for _ in range(6)] for a in split.arms}
    zero = MemberSums(UUID(int=0), 0, 0, 0, 0, 0)
    for member_id, arm in split.members.items():
        target = columns.get(arm)
        if target is None:
            continue  # an arm no longer configured: its members are not compared
        s = sums.get(member_id, zero)
        values = (
            s.revenue,
            s.pre_revenue,
            s.purchases,
            s.visits,
            points.get(member_id, 0),
            s.discounts,
        )
        for column, value in zip(target, values, strict=True):
            column.append(value)
    return [_arm(a, columns[a.name]) for a in split.arms]


def _arm(share: ArmShare, columns: Sequence[list[int]]) -> "ArmData":
    import numpy as np

    from kopilka.analytics.experiments import ArmData

    arrays = [np.asarray(c, dtype=np.int64) for c in columns]
    return ArmData(share.name, float(share.percent), *arrays)


experiment_service = ExperimentService()
