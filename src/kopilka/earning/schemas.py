"""API shapes of what the rules gave an event: points per rule, benefits, the trace."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field


class EarnedOut(BaseModel):
    rule_id: str
    currency: str
    amount: int
    status: Literal["pending", "available"]


class FailedConditionOut(BaseModel):
    condition: str
    actual: Any
    expected: Any


class RuleTraceOut(BaseModel):
    rule_id: str
    fired: bool
    reason: str
    amount: int
    failed: FailedConditionOut | None = Field(
        default=None, description="The first condition that did not hold: actual vs expected."
    )


class BenefitOut(BaseModel):
    id: UUID | None = Field(description="None for a quote.")
    rule_id: str
    kind: str = Field(description="coupon, reward, free_delivery, free_sample or boost")
    payload: dict[str, Any]
    expires_at: datetime | None
