"""API shapes of journeys (``docs/journeys.md``)."""

from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.journeys.domain import KEY_PATTERN, JourneyStatus
from kopilka.journeys.dryrun import DryRun
from kopilka.journeys.repository import RunRow
from kopilka.journeys.returns import Cost, Return
from kopilka.journeys.service import JourneyView
from kopilka.journeys.statistics import JourneyStats, StepStats
from kopilka.kit.types import Day


class JourneyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=KEY_PATTERN, description="The journey's key, unique in the program.")
    document: dict[str, Any] = Field(description="The journey (docs/journeys.md); its draft.")


class JourneyDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]


class VersionOut(BaseModel):
    version: int
    published_at: datetime


class JourneyOut(BaseModel):
    key: str
    name: str
    status: JourneyStatus
    version: int | None = Field(description="The version in force (null: never published).")
    document: dict[str, Any] | None = Field(description="The version in force's document.")
    draft: dict[str, Any] | None
    versions: list[VersionOut]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: JourneyView) -> "JourneyOut":
        return cls(
            key=view.key,
            name=view.name,
            status=view.status,
            version=view.version,
            document=view.document,
            draft=view.draft,
            versions=[VersionOut(version=v, published_at=at) for v, at in view.versions],
            created_at=view.created_at,
            updated_at=view.updated_at,
        )


class JourneyList(BaseModel):
    items: list[JourneyOut]
    next_cursor: str | None = Field(
        default=None, description="The next page's cursor (null: this was the last page)."
    )


class RunOut(BaseModel):
    id: UUID
    member_id: UUID
    version: int
    status: str
    step: str | None
    wake_at: datetime | None
    waiting_for: str | None
    entered_at: datetime
    converted_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, run: RunRow) -> "RunOut":
        return cls(
            id=run.id,
            member_id=run.member_id,
            version=run.version,
            status=run.status,
            step=run.step,
            wake_at=run.wake_at,
            waiting_for=run.waiting_for,
            entered_at=run.entered_at,
            converted_at=run.converted_at,
            finished_at=run.finished_at,
        )


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None


class StepTaken(BaseModel):
    seq: int
    step: str
    outcome: str
    detail: dict[str, Any]
    at: datetime


class RunDetail(BaseModel):
    run: RunOut
    steps: list[StepTaken]


class StepStatsOut(BaseModel):
    id: str
    type: str
    taken: int
    outcomes: dict[str, int]
    at_now: int

    @classmethod
    def of(cls, s: StepStats) -> "StepStatsOut":
        return cls(id=s.id, type=s.type, taken=s.taken, outcomes=s.outcomes, at_now=s.at_now)


class IntervalOut(BaseModel):
    low: float
    high: float


class VersionStatsOut(BaseModel):
    version: int
    entered: int = Field(description="Runs of this version treated.")
    held_out: int
    converted: int
    steps: list[StepStatsOut] = Field(description="This version's steps and their counts.")


class PointsGivenOut(BaseModel):
    currency: str
    points: int
    value: int | None = Field(description="Minor units of money; null: no known value.")


class CostOut(BaseModel):
    """What the journey's steps have cost (docs/journeys.md, "Cost and ROI")."""

    money_currency: str
    points: list[PointsGivenOut] = Field(description="Points its steps credited, per currency.")
    points_value: int
    coupons_used: int
    coupon_discounts: int = Field(description="Discounts of its coupons used, minor units.")
    offers_used: dict[str, int] = Field(description="Its personal offers used, per kind.")
    offers_value: int = Field(description="What the used offers of known value gave.")
    offers_unvalued: int = Field(description="Used offers whose value is not known.")
    total: int | None = Field(description="null while some points have no known value.")


class ReturnOut(BaseModel):
    """Treated runs against held-out runs over the goal's window after entry."""

    window_days: int
    treated: int
    held_out: int
    treated_revenue: int
    held_out_revenue: int
    treated_revenue_per_member: int | None
    held_out_revenue_per_member: int | None
    incremental_revenue: int | None
    incremental_revenue_interval: IntervalOut | None = Field(
        description="95 % (Welch); null with fewer than two runs on a side."
    )
    roi: float | None = Field(description="(incremental revenue − cost) ÷ cost.")
    reason: str | None = Field(description="Why roi is null.")


class JourneyStatsOut(BaseModel):
    key: str
    entered: int
    held_out: int
    active: int
    waiting: int
    converted: int
    exited: int
    conversion: float | None
    holdout_conversion: float | None
    uplift: float | None
    uplift_interval: IntervalOut | None
    version: int | None = Field(description="The version in force, whose steps are listed.")
    steps: list[StepStatsOut]
    versions: list[VersionStatsOut] = Field(
        description="Earlier versions with runs, newest first, each with its own steps."
    )
    cost: CostOut | None = None
    roi: ReturnOut | None = None

    @classmethod
    def of(
        cls, stats: JourneyStats, cost: Cost | None = None, returned: Return | None = None
    ) -> "JourneyStatsOut":
        interval = stats.uplift_interval
        return cls(
            key=stats.key,
            entered=stats.entered,
            held_out=stats.held_out,
            active=stats.active,
            waiting=stats.waiting,
            converted=stats.converted,
            exited=stats.exited,
            conversion=stats.conversion,
            holdout_conversion=stats.holdout_conversion,
            uplift=stats.uplift,
            uplift_interval=IntervalOut(low=interval.low, high=interval.high) if interval else None,
            version=stats.version,
            steps=[StepStatsOut.of(s) for s in stats.steps],
            versions=[
                VersionStatsOut(
                    version=v.version,
                    entered=v.entered,
                    held_out=v.held_out,
                    converted=v.converted,
                    steps=[StepStatsOut.of(s) for s in v.steps],
                )
                for v in stats.versions
            ],
            cost=CostOut.model_validate(asdict(cost)) if cost is not None else None,
            roi=ReturnOut.model_validate(asdict(returned)) if returned is not None else None,
        )


# --- dry runs ---------------------------------------------------------------------------------


class DryRunRange(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: Day | None = Field(
        default=None,
        alias="from",
        description="First day, in the program's time zone (default: 29 days before to).",
    )
    end: Day | None = Field(
        default=None, alias="to", description="Last day, included (default: today)."
    )


class DryRunDocument(DryRunRange):
    document: dict[str, Any] = Field(description="The journey document to try (not saved).")


class StepReachOut(BaseModel):
    id: str
    type: str
    reached: int = Field(description="Runs that would have reached the step.")
    outcomes: dict[str, int]


class MessageCountOut(BaseModel):
    step: str
    kind: str
    sent: int = Field(description="Runs whose member a channel reaches.")
    skipped: int = Field(description="Runs whose member no channel reaches.")
    channels: dict[str, int] = Field(description="Channel → messages.")


class DryRunOut(BaseModel):
    """What the journey would have done over the days (docs/journeys.md, "Dry run")."""

    model_config = ConfigDict(populate_by_name=True)

    journey: str | None
    document: str = Field(description="What was tried: draft, version N or document.")
    start: date = Field(serialization_alias="from")
    end: date = Field(serialization_alias="to")
    entry: str
    basis: str = Field(
        description="Where the entrants come from: events (the outbox), feature_tables, "
        "dates, segment_now or unknown."
    )
    members: int = Field(description="Distinct members who would have entered.")
    walked: int
    capped: bool = Field(description="More members than the cap: the figures are of the first.")
    cap: int
    entries: int
    held_out: int
    treated: int
    converted: int = Field(description="Treated runs whose goal the history shows reached.")
    unfinished: int = Field(description="Runs still going a year after entering.")
    steps: list[StepReachOut]
    messages: list[MessageCountOut]
    points: list[PointsGivenOut]
    points_value: int
    money_currency: str
    coupons: dict[str, int] = Field(description="Campaign → codes issued.")
    offers: dict[str, int] = Field(description="Kind → offers granted.")
    notes: list[str]

    @classmethod
    def of(cls, found: DryRun) -> "DryRunOut":
        data = asdict(found)
        data["start"], data["end"] = data.pop("first"), data.pop("last")
        return cls.model_validate(data)
