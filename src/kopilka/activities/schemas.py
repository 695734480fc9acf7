"""API shapes of activities: events other than purchases."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kopilka.earning.schemas import BenefitOut, EarnedOut, RuleTraceOut
from kopilka.kit.types import ExternalId, Instant, JsonObject
from kopilka.ledger.schemas import BalanceOut
from kopilka.members.schemas import MemberRef


class ActivityCreate(BaseModel):
    """Something a member did besides buying: rules with the matching trigger run on it."""

    model_config = ConfigDict(extra="forbid")

    member: MemberRef
    external_id: ExternalId = Field(description="Idempotency: the same id is recorded once.")
    type: Literal["signup", "profile_completed", "review", "birthday", "event"]
    name: str | None = Field(
        default=None, max_length=100, description="For type `event`: the custom event's name."
    )
    occurred_at: Instant
    channel: str = Field(default="api", min_length=1, max_length=32)
    attributes: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _named_if_custom(self) -> "ActivityCreate":
        if (self.type == "event") != (self.name is not None):
            raise ValueError("name is required for type 'event' and only for it")
        return self


class ActivityResult(BaseModel):
    external_id: str
    type: str
    name: str | None
    member_id: UUID
    occurred_at: datetime
    earned: list[EarnedOut]
    benefits: list[BenefitOut]
    balances: list[BalanceOut]
    trace: list[RuleTraceOut] | None = None
