"""API shapes of program events: the event staff define, a member's invitation and answer,
the guest list."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from kopilka.kit.types import Instant, Int
from kopilka.programs.ladder import TierId

EventKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
Capacity = Annotated[Int, Field(ge=1, le=1_000_000)]
MAX_TIERS = 20  # a ladder has at most 20 rungs


class ProgramEventCreate(BaseModel):
    """An event the program invites members to. ``tiers`` are invited, and so are tiers
    whose ladder benefits list ``key`` in ``events``; ``capacity`` is the number of places
    (omit for no limit)."""

    model_config = ConfigDict(extra="forbid")

    key: EventKey
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    place: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: Instant
    ends_at: Instant | None = None
    capacity: Capacity | None = Field(default=None, description="Omit for no limit.")
    tiers: list[TierId] = Field(default_factory=list, max_length=MAX_TIERS)


class ProgramEventUpdate(BaseModel):
    """Fields to change; an optional field sent as null is cleared. The key stays; a
    cancelled event takes no changes."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    place: str | None = Field(default=None, min_length=1, max_length=200)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    capacity: Capacity | None = None
    tiers: list[TierId] | None = Field(default=None, max_length=MAX_TIERS)


# Fields a PATCH may not clear: an event has a name, a start and a (possibly empty) list.
REQUIRED_ON_UPDATE = ("name", "starts_at", "tiers")


class ProgramEvent(BaseModel):
    id: UUID
    key: str
    name: str
    description: str | None
    place: str | None
    starts_at: datetime
    ends_at: datetime | None
    capacity: int | None
    tiers: list[str] = Field(description="The tiers the event lists.")
    invited_tiers: list[str] = Field(
        description="Every tier invited: those listed and those whose ladder benefits list "
        "the key in events, in ladder order."
    )
    status: Literal["scheduled", "cancelled"]
    accepted: int = Field(description="Members who accepted.")
    places_left: int | None = Field(description="None: no limit.")
    created_at: datetime
    updated_at: datetime | None


class ProgramEventPage(BaseModel):
    items: list[ProgramEvent]
    next_cursor: str | None


class MemberEvent(BaseModel):
    """An event as one member sees it: their invitation and answer."""

    key: str
    name: str
    description: str | None
    place: str | None
    starts_at: datetime
    ends_at: datetime | None
    status: Literal["scheduled", "cancelled"]
    places_left: int | None = Field(description="None: no limit.")
    invited: bool = Field(description="Whether the member's tier now is invited.")
    answer: Literal["accepted", "declined"] | None
    answered_at: datetime | None
    can_accept: bool
    can_decline: bool
    accept_refusal: (
        Literal["not_invited", "cancelled", "started", "full", "member_blocked"] | None
    ) = Field(description="Why the member cannot accept now (None: they can, or have accepted).")


class MemberEventList(BaseModel):
    items: list[MemberEvent] = Field(
        description="Events not over that the member's tier is invited to or that they "
        "accepted, soonest first."
    )
    tier: str | None


class Guest(BaseModel):
    member_id: UUID
    accepted_at: datetime


class GuestPage(BaseModel):
    items: list[Guest]
    next_cursor: str | None
    accepted: int = Field(description="Members who accepted, on every page.")
