"""The tier ladder (part of the program document) and the API shapes of tiers."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.kit.types import Instant
from kopilka.programs.ladder import Metric, TierBenefits, TierId


class TierOut(BaseModel):
    id: str
    name: str
    benefits: TierBenefits


class ManualTierOut(BaseModel):
    tier: str
    reason: str
    until: datetime | None


class Requirement(BaseModel):
    metric: Metric
    threshold: int
    current: int
    missing: int


class NextTierOut(BaseModel):
    tier: TierOut
    match: Literal["any", "all"]
    requirements: list[Requirement]
    by: date | None = Field(description="When what counts now starts to drop out of the window.")
    message: str


class ReviewOut(BaseModel):
    date: date
    would_be: str = Field(description="The tier the member would have if reviewed today.")
    keeps: bool
    loses: TierBenefits | None = Field(description="Benefits of the current tier lost then.")


class TierOutcome(BaseModel):
    """The tier part of a purchase's or return's answer."""

    tier: str
    changed: bool
    from_tier: str | None = None
    reason: str | None = Field(default=None, description="upgrade, or return (an undone upgrade)")


class TierChangeOut(BaseModel):
    from_tier: str | None
    to_tier: str
    reason: str
    source: str | None
    at: datetime


class MemberTierOut(BaseModel):
    member_id: UUID
    tier: TierOut
    earned_tier: str = Field(
        description="The tier earned by qualification, without a manual floor."
    )
    since: datetime | None
    manual: ManualTierOut | None
    grace_until: date | None
    window_start: datetime | None
    metrics: dict[str, int]
    next: NextTierOut | None
    review: ReviewOut | None
    history: list[TierChangeOut]


class ManualTierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: TierId
    reason: str = Field(min_length=1, max_length=500)
    until: Instant | None = Field(default=None, description="Open-ended if omitted.")
