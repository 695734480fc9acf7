"""API shapes of journeys (``docs/journeys.md``)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.journeys.domain import KEY_PATTERN, JourneyStatus
from kopilka.journeys.repository import RunRow
from kopilka.journeys.service import JourneyView
from kopilka.journeys.statistics import JourneyStats


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


class IntervalOut(BaseModel):
    low: float
    high: float


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
    steps: list[StepStatsOut]

    @classmethod
    def of(cls, stats: JourneyStats) -> "JourneyStatsOut":
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
            steps=[
                StepStatsOut(
                    id=s.id, type=s.type, taken=s.taken, outcomes=s.outcomes, at_now=s.at_now
                )
                for s in stats.steps
            ],
        )
