"""The NATS JetStream sink: every event published to ``<prefix>.<program_id>.<type>``.

A consumer like the others, with its own checkpoints: the batch is published, each message
with ``Nats-Msg-Id`` = the event id, and the checkpoint moves only once JetStream has
acknowledged every message. A retry after a crash publishes some events again; JetStream
drops them as duplicates within the stream's duplicate window (default two minutes), and
a subscriber deduplicates by the header beyond it. When NATS is down the sink halts its
partitions and retries with back-off; events are never parked for it.
"""

import asyncio
import logging
from collections.abc import Sequence

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy.ext.asyncio import AsyncConnection

from kopilka.kit.bulk import json_dumps
from kopilka.outbox.consumers import Consumer, event_data
from kopilka.outbox.events import DomainEvent

logger = logging.getLogger("kopilka.worker")
NATS_CONSUMER = "nats"


def subject(prefix: str, event: DomainEvent) -> str:
    return f"{prefix}.{event.program_id}.{event.type}"


class NatsSink:
    def __init__(self, url: str, stream: str = "KOPILKA", prefix: str = "kopilka") -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None

    async def __aenter__(self) -> "NatsSink":
        await self.connect()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def connect(self) -> None:
        self._nc = await nats.connect(
            self.url, connect_timeout=5, max_reconnect_attempts=-1, allow_reconnect=True
        )
        self._js = self._nc.jetstream()
        await self.ensure_stream()

    async def ensure_stream(self) -> None:
        assert self._js is not None
        subjects = [f"{self.prefix}.>"]
        try:
            info = await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(StreamConfig(name=self.stream, subjects=subjects))
            return
        if not set(subjects) <= set(info.config.subjects or []):
            config = info.config
            config.subjects = sorted({*(config.subjects or []), *subjects})
            await self._js.update_stream(config)

    async def close(self) -> None:
        if self._nc is None:
            return
        try:
            await self._nc.drain()
        except Exception:  # the server is gone: nothing is left to flush
            logger.warning("NATS connection closed without draining")
            await self._nc.close()
        finally:
            self._nc = self._js = None

    async def publish(self, events: Sequence[DomainEvent], _: AsyncConnection) -> None:
        """Publish and wait for every acknowledgement; any failure fails the batch."""
        if self._js is None:
            await self.connect()
        js = self._js
        assert js is not None
        acks = await asyncio.gather(
            *(
                js.publish(
                    subject(self.prefix, event),
                    json_dumps(
                        {
                            "type": event.type,
                            "timestamp": event.occurred_at.isoformat(),
                            "data": event_data(event),
                        }
                    ).encode(),
                    stream=self.stream,
                    headers={"Nats-Msg-Id": str(event.event_id)},
                )
                for event in events
            )
        )
        if len(acks) != len(events):
            raise RuntimeError("JetStream did not acknowledge every message")

    def consumer(self) -> Consumer:
        return Consumer(NATS_CONSUMER, ("*",), self.publish, start="latest", halts_on_failure=True)
