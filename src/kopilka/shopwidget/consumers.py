"""The widget's sessions end when their member can no longer use them: blocked, merged into
another profile or erased. (While blocked a session is refused anyway; ending it keeps it
dead once the member is unblocked.)"""

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.outbox.consumers import consumer
from kopilka.outbox.crm_events import MemberMerged
from kopilka.outbox.events import DomainEvent
from kopilka.shopwidget.service import widget_service

CONSUMER = "shopwidget.sessions"


@consumer("member.blocked", "member.merged", "member.erased", name=CONSUMER)
async def end_sessions(event: DomainEvent, conn: AsyncConnection) -> None:
    # A merge's event names the survivor; the profile that is gone is ``merged_id``.
    member = event.merged_id if isinstance(event, MemberMerged) else event.member_id
    if member is not None:
        await widget_service.end_sessions(conn, member, clock.now())
