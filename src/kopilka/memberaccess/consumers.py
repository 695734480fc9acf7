"""A member's app sessions end when the member can no longer use them: blocked, merged into
another profile or erased. (While blocked a session is refused anyway; ending it keeps it dead
once the member is unblocked: they sign in again.)"""

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.memberaccess.service import member_access_service
from kopilka.outbox.consumers import consumer
from kopilka.outbox.crm_events import MemberMerged
from kopilka.outbox.events import DomainEvent

CONSUMER = "memberaccess.sessions"


@consumer("member.blocked", "member.merged", "member.erased", name=CONSUMER)
async def end_sessions(event: DomainEvent, conn: AsyncConnection) -> None:
    # A merge's event names the survivor; the profile that is gone is ``merged_id``.
    member = event.merged_id if isinstance(event, MemberMerged) else event.member_id
    if member is not None:
        await member_access_service.end_all(conn, member, clock.now())
