"""API shapes of recommendations: a member's recommended items, the model's last build and
the items the program does not recommend to everyone."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kopilka.kit.types import Flag
from kopilka.recommendations.domain import Reason

Sku = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TierId = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class RecommendationOut(BaseModel):
    sku: str
    name: str | None
    category: str | None
    reason: Reason = Field(
        description="refill (bought regularly, the usual interval has passed), bought_with "
        "(bought by members who bought the member's recent items) or new_in_category (popular "
        "in one of the member's favourite categories, never bought by them)."
    )
    score: float = Field(description="0–1; how strongly, comparable within one reason.")
    related: list[str] = Field(description="bought_with: the member's recent items it goes with.")
    usual_days: int | None = Field(description="refill: the usual days between purchases.")
    days_since: int | None = Field(description="refill: days since the member last bought it.")


class MemberRecommendations(BaseModel):
    member_id: str
    built_at: datetime | None = Field(
        description="When the model the items come from was built; null: never (then only "
        "refills are given)."
    )
    items: list[RecommendationOut]


class BuildOut(BaseModel):
    """One build of the program's item-to-item model."""

    id: str
    built_at: datetime
    members: int = Field(description="Members with a counted purchase it was built on.")
    items: int = Field(description="Distinct items (skus) they bought.")
    neighbours: int = Field(description="Item–neighbour pairs stored.")
    neighbours_per_item: int
    shrinkage: float
    seconds: float


class ModelOut(BaseModel):
    build: BuildOut | None = Field(description="The last build; null: never built.")


class AvailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    available: Flag = Field(description="false: out of stock, never recommended.")
    tiers: list[TierId] | None = Field(
        default=None,
        # An empty list would hide the item from everyone: that is `available: false`.
        min_length=1,
        max_length=20,
        description="Only members of these tiers (ids of the program's ladder) get it "
        "recommended; null: every member.",
    )


class AvailabilityOut(BaseModel):
    sku: str
    available: bool
    tiers: list[str] | None


class AvailabilityList(BaseModel):
    items: list[AvailabilityOut]
