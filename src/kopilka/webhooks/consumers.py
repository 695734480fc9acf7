"""The webhooks consumer: every event becomes a delivery for each enabled endpoint of its
program that wants its type. Sending is the sender's job (``webhooks/sender.py``)."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import clock
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.events import DomainEvent
from kopilka.webhooks.service import webhook_service

CONSUMER = "webhooks"


@batch_consumer("*", name=CONSUMER)
async def make_deliveries(events: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    await webhook_service.enqueue(conn, events, clock.now())
