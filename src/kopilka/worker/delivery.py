"""One consumer, one partition, one transaction: the unit of delivery.

The caller opens the transaction; :meth:`Delivery.step` leases the checkpoint row, runs the
consumer on the partition's due retries and then on its next batch of events, records what
failed, and moves the checkpoint, all in that transaction. The consumer's own writes
commit with the checkpoint or not at all.

Order per member: an event that fails becomes a ``retrying`` row; every later event of that
member for this consumer becomes a ``waiting`` row behind it, while the other members'
events go on. When the retrying event succeeds (or is parked after the last attempt) the
member's next waiting event becomes due at once.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.outbox.consumers import Consumer, StoredEvent, from_row
from kopilka.worker.delivery_repository import PARKED, RETRYING, WAITING, OutboxRepository

logger = logging.getLogger("kopilka.worker")
MAX_ERROR = 2000


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` tries, ``base`` × 2^(n-1) seconds apart, never more than ``cap``."""

    max_attempts: int = 10
    base_seconds: float = 1.0
    cap_seconds: float = 3600.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.cap_seconds, self.base_seconds * 2 ** (attempts - 1)))


@dataclass
class StepResult:
    handled: int = 0  # events the consumer handled
    passed: int = 0  # events the checkpoint moved past (handled, skipped or set aside)
    failed: int = 0  # attempts that failed
    parked: int = 0  # events parked by this step

    @property
    def progressed(self) -> bool:
        return bool(self.handled or self.passed or self.parked)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]


class Delivery:
    def __init__(self, repository: OutboxRepository, policy: RetryPolicy, batch_size: int) -> None:
        self.repository = repository
        self.policy = policy
        self.batch_size = batch_size

    async def step(
        self, conn: AsyncConnection, consumer: Consumer, partition: int, now: datetime
    ) -> StepResult | None:
        """Deliver what is due in one partition; None if another worker holds it."""
        lease = await self.repository.lease(conn, consumer.name, partition, now)
        if lease is None:
            return None
        result = StepResult()
        await self._retries(conn, consumer, partition, now, result)
        events = await self.repository.events_after(
            conn, partition, lease.position, self.batch_size
        )
        if not events:
            return result
        wanted = [e for e in events if consumer.wants(e.topic)]
        blocked = (
            await self.repository.blocked_members(conn, consumer.name, partition)
            if wanted
            else set()
        )
        free = [e for e in wanted if e.member_key not in blocked]
        rows: list[dict[str, Any]] = []
        error = await self._run(conn, consumer, free) if free else None
        if error is None:
            result.handled += len(free)
        elif consumer.halts_on_failure:
            # Nothing moves: the partition is tried again, from the same place, later.
            attempts = lease.attempts + 1
            result.failed += 1
            await self.repository.hold_back(
                conn,
                consumer.name,
                partition,
                attempts,
                now + self.policy.delay(attempts),
                error,
                now,
            )
            logger.warning(
                "consumer %s halted on partition %d (attempt %d): %s",
                consumer.name,
                partition,
                attempts,
                error,
            )
            return result
        else:
            # Somewhere in the batch an event failed: find it, one event at a time.
            for event in free:
                if event.member_key in blocked:
                    rows.append(self._row(consumer, event, WAITING, 0, None, None, now))
                    continue
                one_error = await self._run(conn, consumer, [event])
                if one_error is None:
                    result.handled += 1
                    continue
                result.failed += 1
                status = PARKED if self.policy.max_attempts <= 1 else RETRYING
                if status == PARKED:
                    result.parked += 1
                else:
                    blocked.add(event.member_key)
                rows.append(
                    self._row(
                        consumer,
                        event,
                        status,
                        1,
                        now + self.policy.delay(1) if status == RETRYING else None,
                        one_error,
                        now,
                    )
                )
        taken = {e.seq for e in free}
        rows.extend(
            self._row(consumer, e, WAITING, 0, None, None, now)
            for e in wanted
            if e.seq not in taken
        )
        if rows:
            await self.repository.add_retries(conn, rows)
        await self.repository.advance(conn, consumer.name, partition, events[-1].seq, now)
        result.passed += len(events)
        return result

    async def _retries(
        self,
        conn: AsyncConnection,
        consumer: Consumer,
        partition: int,
        now: datetime,
        result: StepResult,
    ) -> None:
        """Due retries in seq order; one that succeeds or is parked lets the member's next
        waiting event go, in this same step."""
        while True:
            due = await self.repository.due_retries(
                conn, consumer.name, partition, now, self.batch_size
            )
            if not due:
                return
            stored = await self.repository.events_by_seq(conn, [r.seq for r in due])
            released = False
            for row in due:
                event = stored.get(row.seq)
                error = (
                    await self._run(conn, consumer, [event])
                    if event is not None
                    else None  # the row is gone from the outbox: nothing left to deliver
                )
                if error is None:
                    result.handled += 1
                    await self.repository.drop_retry(conn, consumer.name, row.seq)
                    await self.repository.promote_next(conn, consumer.name, row.member_key, now)
                    released = True
                    continue
                result.failed += 1
                attempts = row.attempts + 1
                if attempts >= self.policy.max_attempts:
                    result.parked += 1
                    await self.repository.update_retry(
                        conn,
                        consumer.name,
                        row.seq,
                        status=PARKED,
                        attempts=attempts,
                        next_attempt_at=None,
                        last_error=error,
                        updated_at=now,
                    )
                    logger.error(
                        "consumer %s parked event %s after %d attempts: %s",
                        consumer.name,
                        row.event_id,
                        attempts,
                        error,
                    )
                    await self.repository.promote_next(conn, consumer.name, row.member_key, now)
                    released = True
                else:
                    await self.repository.update_retry(
                        conn,
                        consumer.name,
                        row.seq,
                        attempts=attempts,
                        next_attempt_at=now + self.policy.delay(attempts),
                        last_error=error,
                        updated_at=now,
                    )
            if not released:
                return

    async def _run(
        self, conn: AsyncConnection, consumer: Consumer, events: Sequence[StoredEvent]
    ) -> str | None:
        """Run the consumer on ``events`` inside a savepoint; the error if it failed (its
        writes are then undone, the rest of the transaction stays)."""
        try:
            async with conn.begin_nested():
                await consumer.handle_batch([from_row(e) for e in events], conn)
        except Exception as exc:
            logger.warning("consumer %s failed: %s", consumer.name, _error_text(exc))
            return _error_text(exc)
        return None

    @staticmethod
    def _row(
        consumer: Consumer,
        event: StoredEvent,
        status: str,
        attempts: int,
        next_attempt_at: datetime | None,
        error: str | None,
        now: datetime,
    ) -> dict[str, Any]:
        return {
            "consumer": consumer.name,
            "seq": event.seq,
            "partition": event.partition,
            "member_key": event.member_key,
            "event_id": event.event_id,
            "status": status,
            "attempts": attempts,
            "next_attempt_at": next_attempt_at,
            "last_error": error,
            "created_at": now,
            "updated_at": now,
        }
