"""The customer 360's events: profiles merged, members' personal data erased."""

from dataclasses import dataclass
from uuid import UUID

from kopilka.outbox.events import DomainEvent, topic


@topic("member.merged")
@dataclass(frozen=True, kw_only=True, slots=True)
class MemberMerged(DomainEvent):
    """``merged_id``'s profile was merged into the event's member (the survivor): its
    identifiers, points, purchases and the rest are the survivor's now."""

    merged_id: UUID
    points_moved: dict[str, int]  # per currency
    purchases_moved: int
    tier: str | None  # the merged profile's tier, if the survivor took it


@topic("member.erased")
@dataclass(frozen=True, kw_only=True, slots=True)
class MemberErased(DomainEvent):
    """The member's personal data was erased (the right to erasure): consumers that keep
    any copy of it remove theirs."""

    reason: str
