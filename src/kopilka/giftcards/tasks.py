"""The gift card expiry job: close every card past its expiry, taking what is left on it.

Work goes in chunks of cards in id order, one transaction each. A closed card is expired
and empty, so running the job again, or after it was stopped half-way, closes nothing twice.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.giftcards.service import gift_card_service
from kopilka.kit.clock import clock
from kopilka.programs.service import program_service

CHUNK = 200


@dataclass
class ExpiryReport:
    cards: int = 0
    amount: int = 0  # minor units taken from the cards


async def _expire_chunk(
    conn: AsyncConnection, program_id: UUID, as_of: datetime, after: UUID | None, chunk: int
) -> tuple[list[UUID], int]:
    program = await program_service.get(conn, program_id)
    ids = await gift_card_service.due(conn, program, as_of, after, chunk)
    taken = await gift_card_service.expire_cards(conn, program, ids, as_of, clock.now())
    return ids, taken


async def expire_gift_cards(
    engine: AsyncEngine, program_id: UUID, as_of: datetime, *, chunk: int = CHUNK
) -> ExpiryReport:
    """Close the cards whose expiry is at or before ``as_of``: each gets an ``expiry``
    movement of its remaining balance and the status ``expired``."""
    report = ExpiryReport()
    after: UUID | None = None
    while True:
        work = partial(_expire_chunk, program_id=program_id, as_of=as_of, after=after, chunk=chunk)
        ids, taken = await run_in_transaction(engine, work)
        # Counted after the commit, so a retried chunk is not counted twice.
        report.cards += len(ids)
        report.amount += taken
        if len(ids) < chunk:
            return report
        after = ids[-1]
