"""API shapes of the customer 360: the timeline, purchases with their lines."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.customers.domain import ItemType
from kopilka.members.schemas import Member


class TimelineItemOut(BaseModel):
    at: datetime
    type: ItemType
    id: str
    summary: str = Field(description="One line a person reads (English); details in `data`.")
    data: dict[str, Any]


class TimelinePage(BaseModel):
    items: list[TimelineItemOut]
    next_cursor: str | None


class PurchaseLineOut(BaseModel):
    line_no: int
    sku: str
    name: str | None
    category: str | None
    brand: str | None
    quantity: int
    unit_price: int
    discount: int
    amount: int
    returned_quantity: int


class MemberPurchase(BaseModel):
    id: UUID
    external_id: str
    occurred_at: datetime
    store: str | None
    channel: str
    currency: str
    total: int
    returned_amount: int
    earned: dict[str, int]
    reversed: dict[str, int]
    payments: dict[str, Any] | None
    lines: list[PurchaseLineOut]


class MemberPurchasePage(BaseModel):
    items: list[MemberPurchase]
    next_cursor: str | None


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merged: UUID = Field(description="The profile merged into this one (it is left empty).")
    reason: str = Field(min_length=1, max_length=500)


class MergeOut(BaseModel):
    survivor: Member
    merged_id: UUID
    already_merged: bool = Field(description="True when this merge was done before.")
    points_moved: dict[str, int]
    purchases_moved: int
    moved: dict[str, int] = Field(description="Other records moved, per kind.")
    consents_changed: list[str]
    tier_taken: str | None
