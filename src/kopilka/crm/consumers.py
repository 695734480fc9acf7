"""Member facts kept current from events: ``crm.facts``.

A purchase or a return makes the consumer work the member's facts out again from their
purchases (one statement per table for the whole batch of members), so applying an event
twice, or out of order, leaves the same facts: it is idempotent by construction. Old
events are not skipped: imported history counts like any other.
"""

from collections.abc import Sequence
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.crm.service import crm_service
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.crm_events import MemberMerged
from kopilka.outbox.events import DomainEvent

CONSUMER = "crm.facts"
# A merge moves the merged profile's purchases to the survivor: both are worked out again.
# A claimed purchase (recorded without a member) becomes its member's history.
TOPICS = ("purchase.recorded", "purchase.claimed", "return.recorded", "member.merged")


def members_by_program(batch: Sequence[DomainEvent]) -> dict[UUID, set[UUID]]:
    found: dict[UUID, set[UUID]] = {}
    for event in batch:
        if event.member_id is not None:
            found.setdefault(event.program_id, set()).add(event.member_id)
        if isinstance(event, MemberMerged):
            found.setdefault(event.program_id, set()).add(event.merged_id)
    return found


@batch_consumer(*TOPICS, name=CONSUMER)
async def keep_facts(batch: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    now = clock.now()
    for program_id, members in members_by_program(batch).items():
        await crm_service.refresh(conn, program_id, sorted(members), now)
