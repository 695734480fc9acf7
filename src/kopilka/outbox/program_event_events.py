"""Events of program events: a member accepted or declined an invitation, staff cancelled
an event."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from kopilka.outbox.events import DomainEvent, topic


@topic("program_event.accepted")
@dataclass(frozen=True, kw_only=True, slots=True)
class ProgramEventAccepted(DomainEvent):
    program_event_id: UUID
    key: str
    name: str
    starts_at: datetime
    place: str | None
    places_left: int | None  # after this acceptance; None: no limit


@topic("program_event.declined")
@dataclass(frozen=True, kw_only=True, slots=True)
class ProgramEventDeclined(DomainEvent):
    program_event_id: UUID
    key: str
    name: str
    starts_at: datetime
    had_accepted: bool  # the member gave back a place they had taken


@topic("program_event.cancelled")
@dataclass(frozen=True, kw_only=True, slots=True)
class ProgramEventCancelled(DomainEvent):
    program_event_id: UUID
    key: str
    name: str
    starts_at: datetime
    guests: int  # members who had accepted (listed by GET /v1/program-events/{key}/guests)
