"""API shapes of balances, history, redemptions and adjustments."""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.kit.types import Int
from kopilka.members.schemas import MemberRef
from kopilka.tiers.schemas import MemberTierOut


class BalanceOut(BaseModel):
    currency: str
    available: int
    pending: int
    held: int


class ExpiringOut(BaseModel):
    currency: str
    amount: int
    expires_at: datetime


class BalanceResponse(BaseModel):
    member_id: UUID
    status: str
    balances: list[BalanceOut]
    next_expiring: list[ExpiringOut]
    tier: str | None = Field(default=None, description="None when the program has no tiers.")
    tier_progress: MemberTierOut | None = None


class ChangeOut(BaseModel):
    currency: str
    account: str
    amount: int
    rule_id: str | None


class EntryOut(BaseModel):
    id: UUID
    kind: str
    reason: str | None
    reference_type: str | None
    reference_id: str | None
    occurred_at: datetime
    created_at: datetime
    changes: list[ChangeOut] = Field(description="Postings on the member's own accounts.")


class HistoryPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: MemberRef
    currency: str = "points"
    amount: Int = Field(ge=1, le=10**12)
    mode: Literal["one_step", "hold"] = "one_step"
    reason: str | None = Field(default=None, max_length=500)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)


class CaptureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Int | None = Field(
        default=None, ge=1, le=10**12, description="Capture part of the hold; the rest is released."
    )


class RedemptionOut(BaseModel):
    id: UUID
    member_id: UUID
    currency: str
    amount: int
    captured_amount: int
    status: Literal["completed", "held", "captured", "voided", "expired"]
    reason: str | None
    external_id: str | None
    hold_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    balance: BalanceOut


class AdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member: MemberRef
    currency: str = "points"
    amount: Int = Field(description="Positive credits, negative debits.", ge=-(10**12), le=10**12)
    reason: str = Field(min_length=1, max_length=500)


class AdjustmentOut(BaseModel):
    member_id: UUID
    currency: str
    amount: int
    reason: str
    balance: BalanceOut
