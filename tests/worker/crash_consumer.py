"""A consumer for the crash test, imported by ``kopilka worker --module``: it records each
``member.updated`` event of one program with a plain INSERT (a second application of an
event would violate the unique constraint and fail), slowly enough to be killed mid-batch.
Its name and program come from the environment."""

import asyncio
import os
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.outbox.consumers import consumer
from kopilka.outbox.events import DomainEvent, MemberUpdated
from tests.worker.support import applied

NAME = os.environ.get("KOPILKA_TEST_CONSUMER", "crash-test")
PROGRAM = UUID(os.environ.get("KOPILKA_TEST_PROGRAM", str(UUID(int=0))))


@consumer("member.updated", name=NAME)
async def record(event: DomainEvent, conn: AsyncConnection) -> None:
    if event.program_id != PROGRAM:
        return
    assert isinstance(event, MemberUpdated)
    await asyncio.sleep(0.002)
    await conn.execute(
        applied.insert().values(
            consumer=NAME, event_id=event.event_id, member_id=event.member_id, n=event.values["n"]
        )
    )
