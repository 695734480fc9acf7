"""API shapes of members' benefits and personal offers."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.kit.types import ExternalId, Instant


class BenefitItem(BaseModel):
    """A benefit of the member: what it gives (``kind``, ``payload``), who gave it
    (``source``: rule, journey, staff …; ``source_key``: the rule id or the grant's key), when,
    until when, and whether it is still to use."""

    id: UUID
    kind: str = Field(description="boost, free_sample, free_delivery, reward, coupon")
    title: str | None
    payload: dict[str, Any]
    source: str
    source_key: str
    cause: dict[str, str] | None = Field(
        description="For a benefit a rule gave: the event that fired the rule ({type, id})."
    )
    issued_at: datetime
    expires_at: datetime | None
    status: Literal["active", "used", "expired"]
    used_at: datetime | None
    used_by: str | None = Field(description="What used it: a purchase or redemption id.")


class TierBenefitsOut(BaseModel):
    """What the member's tier gives now (applied at the till and in the shop)."""

    tier: str
    discount_percent: int
    free_delivery: bool
    early_access: bool
    exclusive_rewards: list[str]
    events: list[str]


class BenefitPage(BaseModel):
    items: list[BenefitItem]
    next_cursor: str | None
    tier: TierBenefitsOut | None = Field(
        description="The member's tier benefits (None without a tier ladder)."
    )


class BenefitGrant(BaseModel):
    """A personal offer given by staff or an integration; ``grant_key`` makes it idempotent
    (the same key again answers the first grant)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["boost", "free_sample", "free_delivery", "reward"]
    payload: dict[str, Any] = Field(default_factory=dict)
    title: str | None = Field(default=None, min_length=1, max_length=200)
    expires_at: Instant | None = None
    grant_key: ExternalId
