"""Segments' events: a member entered or left a segment."""

from dataclasses import dataclass
from uuid import UUID

from kopilka.outbox.events import DomainEvent, topic


@dataclass(frozen=True, kw_only=True, slots=True)
class SegmentMembershipChanged(DomainEvent):
    """A member's membership of a segment changed; ``reason`` says what found it: ``event``
    (the consumer, after an event of the member), ``refresh`` (a full refresh), ``list``
    (a static segment's list was uploaded)."""

    segment_id: UUID
    segment: str  # the segment's key
    kind: str  # dynamic | static
    reason: str


@topic("segment.entered")
@dataclass(frozen=True, kw_only=True, slots=True)
class SegmentEntered(SegmentMembershipChanged):
    pass


@topic("segment.left")
@dataclass(frozen=True, kw_only=True, slots=True)
class SegmentLeft(SegmentMembershipChanged):
    pass
