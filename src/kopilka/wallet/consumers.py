"""Pushing pass updates: when a member's points or tier change, the devices that keep the
member's Apple Wallet pass are told through APNs, for programs that turned ``apns`` on (the
others' devices refresh when they ask). The worker imports this module
(``kopilka.worker.modules``).

A push only makes the device ask which passes changed: an event delivered twice pushes
twice, which costs the device one more question and changes nothing. Events older than a
day (history imported, a worker down for long) push nothing: the devices have asked since.
"""

from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.events import DomainEvent
from kopilka.wallet.apns import GONE, ApnsClient, HttpApnsClient
from kopilka.wallet.service import wallet_service

CONSUMER = "wallet.apns"
STALE = timedelta(days=1)


class Pusher:
    """The client that sends the pushes (replaced in tests: Apple's servers are not theirs)."""

    client: ApnsClient = HttpApnsClient()


@batch_consumer("points.*", "tier.*", name=CONSUMER, start="latest")
async def push_pass_updates(events: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    now = clock.now()
    members = {
        e.member_id for e in events if e.member_id is not None and now - e.occurred_at <= STALE
    }
    if not members:
        return
    gone: list[tuple[UUID, str]] = []
    for push in await wallet_service.pass_update_pushes(conn, members):
        statuses = await Pusher.client.send(push.requests, push.credentials)
        gone += [(push.members[t], t) for t, status in statuses.items() if status == GONE]
    await wallet_service.forget_devices(conn, gone)
