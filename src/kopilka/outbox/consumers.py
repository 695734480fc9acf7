"""The consumer registry and the typed view of a delivered event.

A reaction registers a handler as rules register their condition types::

    @consumer("tier.upgraded", name="messaging.tier_mail")
    async def send_tier_mail(event: DomainEvent, conn: AsyncConnection) -> None: ...

A handler gets the event rebuilt from its outbox row as its class in
:mod:`kopilka.outbox.events` (``TierUpgraded`` …) and the connection of the worker's
transaction: whatever it writes there commits together with its checkpoint, so a crash
rolls both back and nothing is applied twice. What it does outside the database (an e-mail,
an HTTP call) it deduplicates by ``event.event_id``. A handler that raises gets the event
again later (``docs/worker.md``).

``topics`` are event types (``purchase.recorded``), prefixes (``points.*``) or ``*``.
The worker imports the modules that register consumers from ``kopilka.worker.modules``.
"""

import logging
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from functools import partial
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.clock import as_utc
from kopilka.outbox.events import ENVELOPE, DomainEvent, RuleEvent, event_class

logger = logging.getLogger("kopilka.worker")

# A member's events all land in one partition (crc32 of its id), so one worker at a time
# reads them, in order. Changing the number would move members between partitions while
# their events are in flight: it is fixed.
PARTITIONS = 16

Handler = Callable[[DomainEvent, AsyncConnection], Awaitable[None]]
BatchHandler = Callable[[Sequence[DomainEvent], AsyncConnection], Awaitable[None]]


def partition_of(key: UUID) -> int:
    """The partition of a member (or, for program-wide events, of the program)."""
    return zlib.crc32(key.bytes) % PARTITIONS


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An outbox row as the worker reads it."""

    seq: int
    partition: int
    event_id: UUID
    program_id: UUID
    member_id: UUID | None
    topic: str
    version: int
    payload: dict[str, Any]
    occurred_at: datetime

    @property
    def member_key(self) -> UUID:
        """What orders the event: its member, or its program when it has none."""
        return self.member_id if self.member_id is not None else self.program_id


@dataclass(frozen=True, kw_only=True, slots=True)
class UnknownEvent(DomainEvent):
    """An event whose type this code does not know, or whose payload does not fit its class
    (written by an older or newer version): delivered as stored, never dropped."""

    stored_type: str
    stored_version: int = 1
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.stored_type

    def payload(self) -> dict[str, Any]:
        return dict(self.data)


def _or_none(convert: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else convert(value)


def _decoder(hint: Any) -> Callable[[Any], Any] | None:
    """How to turn a JSON value back into a field of type ``hint`` (None: as it is)."""
    if get_origin(hint) in (Union, UnionType):
        inner = [a for a in get_args(hint) if a is not NoneType]
        if len(inner) != 1:
            return None
        convert = _decoder(inner[0])
        if convert is None:
            return None
        return partial(_or_none, convert)
    if hint is UUID:
        return UUID
    if hint is datetime:
        return lambda v: as_utc(datetime.fromisoformat(v))
    if hint is date:
        return date.fromisoformat
    return None


Decoders = tuple[tuple[str, Callable[[Any], Any] | None], ...]
_FIELDS: dict[str, Decoders] = {}


def _fields_of(cls: type[DomainEvent]) -> Decoders:
    known = _FIELDS.get(cls.__qualname__ + cls.topic)
    if known is not None:
        return known
    hints = get_type_hints(cls)
    found = tuple((f.name, _decoder(hints[f.name])) for f in fields(cls) if f.name not in ENVELOPE)
    _FIELDS[cls.__qualname__ + cls.topic] = found
    return found


def from_row(row: StoredEvent) -> DomainEvent:
    """The event of an outbox row, as its class in :mod:`kopilka.outbox.events`.

    ``rule.<name>`` rows are :class:`RuleEvent`; a row that does not fit its class (or has
    a type this code does not know) comes back as :class:`UnknownEvent` with the payload
    as stored.
    """
    envelope: dict[str, Any] = {
        "event_id": row.event_id,
        "program_id": row.program_id,
        "member_id": row.member_id,
        "occurred_at": row.occurred_at,
    }
    cls = event_class(row.topic)
    if cls is not None and row.version == cls.version:
        try:
            values: dict[str, Any] = {}
            for name, convert in _fields_of(cls):
                if name in row.payload:
                    raw = row.payload[name]
                    values[name] = convert(raw) if convert is not None else raw
                elif cls is RuleEvent and name == "name":
                    values[name] = row.topic.removeprefix("rule.")
            return cls(**envelope, **values)
        except (TypeError, ValueError, AttributeError) as exc:
            logger.debug("event %s does not fit %s: %s", row.event_id, cls.__name__, exc)
    return UnknownEvent(
        **envelope, stored_type=row.topic, stored_version=row.version, data=dict(row.payload)
    )


def event_data(event: DomainEvent) -> dict[str, Any]:
    """The ``data`` of a webhook body: the event's envelope and its payload."""
    return {
        "event_id": str(event.event_id),
        "program_id": str(event.program_id),
        "member_id": str(event.member_id) if event.member_id is not None else None,
        "occurred_at": event.occurred_at.isoformat(),
        "version": event.version,
        **event.payload(),
    }


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether ``event_type`` is one of ``patterns`` (exact types, ``prefix.*``, ``*``)."""
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


@dataclass(frozen=True)
class Consumer:
    """A registered reaction.

    ``start``: where a new consumer begins reading, ``earliest`` (every event still in the
    outbox) or ``latest`` (events stamped from its first run on).
    ``halts_on_failure``: a failure holds the whole partition back and retries it (a sink
    whose failure is not the event's fault, such as a broker that is down) instead of
    retrying and finally parking the one event.
    """

    name: str
    topics: tuple[str, ...]
    handle_batch: BatchHandler
    start: str = "earliest"
    halts_on_failure: bool = False

    def wants(self, event_type: str) -> bool:
        return matches(self.topics, event_type)


class ConsumerRegistry:
    def __init__(self) -> None:
        self._consumers: dict[str, Consumer] = {}

    def add(self, consumer: Consumer) -> Consumer:
        if not consumer.name or len(consumer.name) > 100:
            raise ValueError("a consumer needs a name of 1–100 characters")
        known = self._consumers.get(consumer.name)
        if known is not None and known.handle_batch is not consumer.handle_batch:
            raise ValueError(f"consumer {consumer.name!r} is registered twice")
        self._consumers[consumer.name] = consumer
        return consumer

    def remove(self, name: str) -> None:
        self._consumers.pop(name, None)

    def get(self, name: str) -> Consumer | None:
        return self._consumers.get(name)

    def all(self) -> list[Consumer]:
        return sorted(self._consumers.values(), key=lambda c: c.name)

    def consumer(
        self, *topics: str, name: str, start: str = "earliest"
    ) -> Callable[[Handler], Handler]:
        """Register ``handler(event, conn)`` for events of ``topics``."""
        checked = _topics(topics)

        def register(handler: Handler) -> Handler:
            async def each(events: Sequence[DomainEvent], conn: AsyncConnection) -> None:
                for event in events:
                    await handler(event, conn)

            self.add(Consumer(name, checked, each, start=start))
            return handler

        return register

    def batch_consumer(
        self, *topics: str, name: str, start: str = "earliest"
    ) -> Callable[[BatchHandler], BatchHandler]:
        """Register ``handler(events, conn)`` that takes a partition's batch at once, in
        order (fewer round trips for a consumer that writes a row per event)."""
        checked = _topics(topics)

        def register(handler: BatchHandler) -> BatchHandler:
            self.add(Consumer(name, checked, handler, start=start))
            return handler

        return register


def _topics(topics: tuple[str, ...]) -> tuple[str, ...]:
    if not topics:
        raise ValueError("a consumer needs at least one topic (or '*')")
    for topic in topics:
        if topic != "*" and (not topic or "*" in topic.removesuffix(".*")):
            raise ValueError(f"{topic!r} is not an event type, a 'prefix.*' or '*'")
    return topics


registry = ConsumerRegistry()
consumer = registry.consumer
batch_consumer = registry.batch_consumer
