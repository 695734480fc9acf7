"""The unit of work: every row and domain event one transaction writes, written together.

A request, job or command opens one :class:`UnitOfWork`; the features it calls add rows to
it (through their repositories) and emit domain events into it; nothing else collects rows.
:meth:`UnitOfWork.flush` writes them all: on PostgreSQL a till's purchase goes out as one
statement, an import's batch as one multi-row statement (or COPY) per table.

State a feature changes many times before the end (a balance moved by several purchases of
one batch, a lot spent twice) is kept by that feature and staged once, by a hook it
registers with :meth:`UnitOfWork.on_flush`.
"""

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import WriteBatch
from kopilka.models import Base, OutboxEvent
from kopilka.models.base import table
from kopilka.outbox.events import DomainEvent

outbox_t = table(OutboxEvent)
# Parents before children, so that a foreign key never points at a row not written yet
# (SQLite checks each statement as it runs).
_TABLE_ORDER = {t.name: i for i, t in enumerate(Base.metadata.sorted_tables)}

Hook = Callable[["UnitOfWork"], None]
T = TypeVar("T")


def outbox_row(event: DomainEvent, now: datetime) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "program_id": event.program_id,
        "member_id": event.member_id,
        "topic": event.type,
        "version": event.version,
        "payload": event.stored_payload(),
        "occurred_at": event.occurred_at,
        "created_at": now,
        "published_at": None,
    }


class UnitOfWork:
    """Rows and events of one transaction. Never commits: the caller owns the transaction."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        # Rows by table and columns (one multi-row statement takes one set of columns): the
        # rows of one call share their keys, so the columns are read off the first row only,
        # in its order (rows built by one piece of code list them in one order).
        self._inserts: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
        self._updates: dict[
            tuple[Table, tuple[str, ...], tuple[str, ...]], list[dict[str, Any]]
        ] = {}
        self.events: list[DomainEvent] = []
        self._hooks: dict[str, Hook] = {}
        self._parts: dict[str, Any] = {}

    def part(self, name: str, make: Callable[[], T]) -> T:
        """The one object called ``name`` that a feature keeps in this unit (made by
        ``make`` on first use): several operations in one transaction share it."""
        if name not in self._parts:
            self._parts[name] = make()
        found: T = self._parts[name]
        return found

    def insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """New rows of ``table``; a row dict may still change until the flush."""
        if rows:
            self._inserts.setdefault((table, tuple(rows[0])), []).extend(rows)

    def update(self, table: Table, keys: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> None:
        """Changes of existing rows matched on ``keys``; for one key the last change wins."""
        if rows:
            self._updates.setdefault((table, keys, tuple(rows[0])), []).extend(rows)

    def emit(self, *events: DomainEvent) -> None:
        self.events.extend(events)

    def on_flush(self, name: str, hook: Hook) -> None:
        """Call ``hook`` just before every write, to stage what changed since the last one
        (a second hook of one name replaces the first)."""
        self._hooks[name] = hook

    def batch(self) -> WriteBatch:
        """Everything added, as one batch: tables parents first, updates after inserts."""
        for hook in list(self._hooks.values()):
            hook(self)
        if self.events:
            self.insert(outbox_t, [outbox_row(e, self.now) for e in self.events])
            self.events = []
        batch = WriteBatch()
        for (table_, _), rows in sorted(
            self._inserts.items(), key=lambda i: _TABLE_ORDER[i[0][0].name]
        ):
            batch.insert(table_, rows)
        for (table_, keys, _), rows in sorted(
            self._updates.items(), key=lambda i: _TABLE_ORDER[i[0][0].name]
        ):
            batch.update(table_, keys, rows)
        self._inserts, self._updates = {}, {}
        return batch

    async def flush(self, conn: AsyncConnection) -> None:
        """Write everything added so far; the unit may then be used again."""
        await self.batch().write(conn)


@asynccontextmanager
async def unit_of_work(
    conn: AsyncConnection, now: datetime, outer: UnitOfWork | None = None
) -> AsyncIterator[UnitOfWork]:
    """``outer`` if the caller has one (its owner flushes it), else a new unit flushed when
    the block ends without an error. Operations take an optional unit this way: called on
    their own they write what they did; called inside a larger operation they add to it."""
    if outer is not None:
        yield outer
        return
    unit = UnitOfWork(now)
    yield unit
    await unit.flush(conn)
