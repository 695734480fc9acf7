"""Survey invitations after purchases: the ``support`` consumer asks a member about a
purchase when the program has an active survey on ``trigger: purchase``, the purchase is
in its sample and the member's cool-down is over. An event delivered twice finds the
invitation of its purchase and makes none; events older than the survey's expiry make
none (history imported, a worker down for days). Resolved tickets invite in the
ticket's own transaction (``kopilka.support.tickets``)."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import NotFound
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import consumer
from kopilka.outbox.events import DomainEvent, PurchaseRecorded
from kopilka.programs.service import program_service
from kopilka.support.surveys import survey_service

CONSUMER = "support"
STALE = timedelta(days=2)


@consumer("purchase.recorded", name=CONSUMER)
async def invite_after_purchase(event: DomainEvent, conn: AsyncConnection) -> None:
    if not isinstance(event, PurchaseRecorded) or event.member_id is None:
        return
    now = clock.now()
    if now - event.occurred_at > STALE:
        return
    try:
        program = await program_service.get(conn, event.program_id)
    except NotFound:
        return
    await survey_service.after_purchase(
        conn, program, event.member_id, event.purchase_id, event.store, now
    )
