"""The worker: stamp, deliver, mark published, send webhooks, run due jobs.

:meth:`Worker.run` runs three loops until asked to stop, each finishing the step in hand:
delivery (stamp → every (consumer, partition) with work → published_at), the webhook
sender, and the scheduler. :meth:`Worker.drain` does the same steps over and over until
nothing is left to do now (``kopilka worker --once``, tests, the demo).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import reading, run_in_transaction
from kopilka.kit.clock import clock
from kopilka.outbox.consumers import Consumer
from kopilka.worker.delivery import Delivery, RetryPolicy, StepResult
from kopilka.worker.delivery_repository import OutboxRepository, outbox_repository
from kopilka.worker.scheduler import JobOutcome, Scheduler

logger = logging.getLogger("kopilka.worker")
STAMP_BATCH = 5000


class Sender(Protocol):
    """What the worker needs of a webhook sender (``kopilka.webhooks.sender``)."""

    async def send_due(self) -> int: ...

    @property
    def running(self) -> int:
        """Requests started in an earlier round and not yet recorded."""
        ...


@dataclass
class RoundReport:
    stamped: int = 0
    handled: int = 0
    passed: int = 0  # events checkpoints moved past (of any topic)
    failed: int = 0
    parked: int = 0
    published: int = 0
    sent: int = 0
    jobs: list[JobOutcome] = field(default_factory=list)

    @property
    def progressed(self) -> bool:
        return bool(
            self.stamped
            or self.handled
            or self.passed
            or self.parked
            or self.published
            or self.sent
        )

    def add(self, other: "RoundReport") -> None:
        self.stamped += other.stamped
        self.handled += other.handled
        self.passed += other.passed
        self.failed += other.failed
        self.parked += other.parked
        self.published += other.published
        self.sent += other.sent
        self.jobs.extend(other.jobs)


class Worker:
    def __init__(
        self,
        engine: AsyncEngine,
        consumers: Sequence[Consumer],
        *,
        policy: RetryPolicy | None = None,
        batch_size: int = 500,
        poll_seconds: float = 0.5,
        sender: Sender | None = None,
        senders: Sequence[Sender] = (),
        scheduler: Scheduler | None = None,
        repository: OutboxRepository = outbox_repository,
    ) -> None:
        names = [c.name for c in consumers]
        if len(set(names)) != len(names):
            raise ValueError("two consumers share a name")
        self.engine = engine
        self.consumers = {c.name: c for c in consumers}
        self.repository = repository
        self.delivery = Delivery(repository, policy or RetryPolicy(), batch_size)
        self.poll_seconds = poll_seconds
        # The webhook sender and the message sender, each in its own loop.
        self.senders: list[Sender] = [*([sender] if sender is not None else []), *senders]
        self.scheduler = scheduler
        self._prepared = False

    # --- set-up --------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Give every consumer its checkpoints: at 0 (``earliest``) or at the last stamped
        event after stamping what is committed (``latest``)."""
        if self._prepared:
            return
        await self.stamp()
        for consumer in self.consumers.values():

            async def ensure(conn: AsyncConnection, consumer: Consumer = consumer) -> None:
                position = 0
                if consumer.start == "latest":
                    position = await self.repository.last_seq(conn)
                await self.repository.ensure_checkpoints(conn, consumer.name, position, clock.now())

            await run_in_transaction(self.engine, ensure)
        self._prepared = True

    # --- steps ---------------------------------------------------------------------------

    async def stamp(self) -> int:
        total = 0
        while True:

            async def work(conn: AsyncConnection) -> int:
                return await self.repository.stamp(conn, STAMP_BATCH)

            done = await run_in_transaction(self.engine, work)
            total += done
            if done < STAMP_BATCH:
                return total

    async def deliver(self) -> RoundReport:
        """One pass over every (consumer, partition) with work."""
        await self.prepare()
        report = RoundReport()
        now = clock.now()
        async with reading(self.engine) as conn:
            pairs = await self.repository.with_work(conn, list(self.consumers), now)
        for name, partition in pairs:
            consumer = self.consumers[name]

            async def work(
                conn: AsyncConnection, consumer: Consumer = consumer, partition: int = partition
            ) -> StepResult | None:
                return await self.delivery.step(conn, consumer, partition, clock.now())

            result = await run_in_transaction(self.engine, work)
            if result is not None:
                report.handled += result.handled
                report.passed += result.passed
                report.failed += result.failed
                report.parked += result.parked
        return report

    async def publish(self) -> int:
        async def work(conn: AsyncConnection) -> int:
            return await self.repository.mark_published(conn, list(self.consumers), clock.now())

        return await run_in_transaction(self.engine, work)

    async def delivery_round(self) -> RoundReport:
        stamped = await self.stamp()
        report = await self.deliver()
        report.stamped = stamped
        report.published = await self.publish()
        return report

    async def send_round(self) -> int:
        sent = 0
        for sender in self.senders:
            sent += await sender.send_due()
        return sent

    @property
    def sending(self) -> bool:
        """Whether a sender has requests from an earlier round still running."""
        return any(s.running for s in self.senders)

    # --- running -------------------------------------------------------------------------

    async def drain(self, *, jobs: bool = False, max_rounds: int = 10_000) -> RoundReport:
        """Deliver and send until nothing is left to do now; run due jobs first if asked."""
        total = RoundReport()
        if jobs and self.scheduler is not None:
            total.jobs.extend(await self.scheduler.run_due())
        for _ in range(max_rounds):
            report = await self.delivery_round()
            report.sent = await self.send_round()
            total.add(report)
            if not report.progressed and not self.sending:
                break
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; each loop finishes the step in hand."""
        await self.prepare()
        loops = [self._loop(stop, "delivery", self._delivery_step)]
        for index, sender in enumerate(self.senders):
            loops.append(self._loop(stop, f"sender-{index}", partial(self._send_step, sender)))
        if self.scheduler is not None:
            loops.append(self._loop(stop, "jobs", self._jobs_step, idle=30.0))
        await asyncio.gather(*loops)

    async def _delivery_step(self) -> bool:
        return (await self.delivery_round()).progressed

    async def _send_step(self, sender: Sender) -> bool:
        return await sender.send_due() > 0

    async def _jobs_step(self) -> bool:
        assert self.scheduler is not None
        await self.scheduler.run_due()
        return False

    async def _loop(
        self,
        stop: asyncio.Event,
        name: str,
        step: Callable[[], Awaitable[bool]],
        idle: float | None = None,
    ) -> None:
        wait = idle if idle is not None else self.poll_seconds
        failures = 0
        while not stop.is_set():
            try:
                busy = await step()
                failures = 0
            except Exception:
                # The database or a broker is away: log, back off, try again.
                failures += 1
                logger.exception("worker %s loop failed (%d in a row)", name, failures)
                await _sleep(stop, min(60.0, wait * 2**failures))
                continue
            if not busy:
                await _sleep(stop, wait)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
