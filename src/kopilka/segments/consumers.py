"""Segment membership kept current from events: ``segments``.

After a batch of events, each member they name has every dynamic segment of their program
re-evaluated (one query per segment for the whole batch), and ``segment.entered`` /
``segment.left`` are emitted for the changes. Re-evaluation reads the state as it is, so
an event delivered twice changes nothing the second time. Time-based predicates ("no
purchase for 30 days") change with no event: the daily ``segments-refresh`` job covers
them.
"""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.events import DomainEvent
from kopilka.segments.service import segment_service

CONSUMER = "segments"
# What can change a member's predicates: history, profile, consents, tier, points, tags.
TOPICS = (
    "purchase.recorded",
    "purchase.claimed",
    "return.recorded",
    "member.*",
    "consent.changed",
    "tier.*",
    "points.*",
    "activity.recorded",
)
HISTORY = frozenset({"purchase.recorded", "purchase.claimed", "return.recorded"})


@batch_consumer(*TOPICS, name=CONSUMER)
async def keep_membership(batch: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    now = clock.now()
    members: dict[UUID, set[UUID]] = {}
    bought: set[UUID] = set()
    for event in batch:
        if event.member_id is None:
            continue
        members.setdefault(event.program_id, set()).add(event.member_id)
        if event.type in HISTORY:
            bought.add(event.program_id)
    for program_id, ids in members.items():
        await segment_service.members_changed(
            conn, program_id, sorted(ids), now, purchases=program_id in bought
        )
