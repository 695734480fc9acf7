"""Journeys' reactions to domain events (``journeys.runs``): members enter the journeys an
event starts, runs waiting for it move on, and goals reached are counted — in the
transaction that moves the consumer's checkpoint, so a redelivered batch starts no second
run (entries are unique per entering event) and counts no goal twice."""

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.journeys.runs import journey_runner
from kopilka.outbox.consumers import batch_consumer
from kopilka.outbox.events import DomainEvent

CONSUMER = "journeys.runs"
TOPICS = (
    "member.*",
    "purchase.*",
    "return.recorded",
    "points.*",
    "tier.*",
    "coupon.*",
    "reward.*",
    "activity.recorded",
    "segment.*",
)


@batch_consumer(*TOPICS, name=CONSUMER)
async def run_journeys(batch: Sequence[DomainEvent], conn: AsyncConnection) -> None:
    await journey_runner.on_events(conn, batch)
