"""API shapes of member facts."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Favourite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    spend: int


class Rfm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recency: int
    frequency: int
    monetary: int
    group: str
    scored_at: datetime


class MemberFacts(BaseModel):
    """What a member's purchase history says of them. Money in minor units, net of returns;
    a purchase returned in full is not counted. ``*_12m``: the 365 days up to today (UTC)."""

    model_config = ConfigDict(extra="forbid")

    member_id: str
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    days_since_last_purchase: int | None
    purchases: int
    spend: int
    average_check: int
    purchases_12m: int
    spend_12m: int
    returns: int
    returned: int
    favourite_categories: list[Favourite]
    favourite_stores: list[Favourite]
    rfm: Rfm | None
