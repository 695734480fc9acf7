"""API shapes of event delivery."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field


class ParkedOut(BaseModel):
    consumer: str
    seq: int = Field(description="The event's place in delivery order (the page cursor).")
    event_id: UUID
    member_id: UUID | None
    type: str
    attempts: int
    last_error: str | None
    parked_at: datetime


class ParkedPage(BaseModel):
    items: list[ParkedOut]
    next_cursor: str | None


class Replayed(BaseModel):
    replayed: int = Field(description="Parked deliveries made due again (one per consumer).")
