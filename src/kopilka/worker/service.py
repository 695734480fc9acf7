"""What the CLI and the admin API ask of event delivery: status, parked events, replay.
Never commits."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.errors import NotFound
from kopilka.worker.delivery_repository import (
    ConsumerLag,
    OutboxRepository,
    ParkedEvent,
    outbox_repository,
)
from kopilka.worker.repository import JobRunRepository, JobRunRow, job_run_repository


@dataclass(frozen=True)
class DeliveryStatus:
    last_seq: int
    unstamped: int
    undelivered: int  # outbox rows without published_at
    consumers: list[ConsumerLag]
    jobs: list[JobRunRow]


class WorkerService:
    def __init__(
        self,
        outbox: OutboxRepository = outbox_repository,
        runs: JobRunRepository = job_run_repository,
    ) -> None:
        self.outbox = outbox
        self.runs = runs

    async def status(
        self, conn: AsyncConnection, consumers: list[str] | None = None
    ) -> DeliveryStatus:
        names = consumers if consumers is not None else await self.outbox.known_consumers(conn)
        return DeliveryStatus(
            last_seq=await self.outbox.last_seq(conn),
            unstamped=await self.outbox.unstamped(conn),
            undelivered=await self.outbox.undelivered(conn),
            consumers=await self.outbox.lag(conn, names),
            jobs=await self.runs.all(conn),
        )

    async def parked(
        self,
        conn: AsyncConnection,
        *,
        program_id: UUID | None = None,
        consumer: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[ParkedEvent]:
        return await self.outbox.parked(
            conn, program_id=program_id, consumer=consumer, limit=limit, after_seq=after_seq
        )

    async def replay(
        self,
        conn: AsyncConnection,
        now: datetime,
        *,
        event_id: UUID | None = None,
        consumer: str | None = None,
        program_id: UUID | None = None,
    ) -> int:
        """Make parked events due now; with an ``event_id`` that is not parked, NotFound."""
        replayed = await self.outbox.replay(
            conn, now, event_id=event_id, consumer=consumer, program_id=program_id
        )
        if event_id is not None and replayed == 0:
            raise NotFound(f"event {event_id} is not parked", field="event_id")
        return replayed


worker_service = WorkerService()
