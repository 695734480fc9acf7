"""API shapes of the web-shop widget: its sessions, its settings, and what its own calls take
and answer."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from kopilka.kit.types import Points
from kopilka.shopwidget.domain import MAX_ORIGINS, distinct, origin_of

Origin = Annotated[
    str,
    Field(max_length=300, examples=["https://shop.example"]),
    AfterValidator(origin_of),
]


class WidgetSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_points: Points | None = Field(
        default=None,
        description="At most this many points may be put on hold with the session (the "
        "order's share that points may pay); null: as many as the balance.",
    )


class WidgetSessionOut(BaseModel):
    token: str = Field(description="`kw_…`: give it to the widget's script (`data-token`).")
    expires_at: datetime
    member_id: UUID
    max_points: int | None


class WidgetSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_origins: Annotated[
        list[Origin],
        Field(
            max_length=MAX_ORIGINS,
            description="The shops' origins whose pages may call "
            "the widget's API (`https://shop.example`); none: the widget works nowhere.",
        ),
        AfterValidator(distinct),
    ] = []


class WidgetHoldRequest(BaseModel):
    """What the widget's script sends to put points on hold."""

    model_config = ConfigDict(extra="forbid")

    points: Points


class WidgetBalance(BaseModel):
    currency: str
    available: int
    pending: int
    held: int


class WidgetHoldOut(BaseModel):
    """A hold the widget placed: the shop's server captures it
    (``POST /v1/redemptions/{id}/capture``) when the order is paid, or voids it."""

    id: UUID
    points: int
    currency: str
    status: str
    hold_expires_at: datetime | None
    balance: WidgetBalance
