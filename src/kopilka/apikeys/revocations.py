"""Revocations by notification: while a server process listens, its requests skip the look-up.

Revoking a key notifies the channel ``kopilka_api_keys`` in the revoking transaction, so
PostgreSQL delivers the key's id to every listening process when it commits. A process with
its listener connected drops the key from its cache on that notice and needs no per-request
look-up (one round trip less on every request); a process without one (SQLite, the listener
still connecting, its connection lost) checks the key in every request's transaction, as
before. The cache is emptied each time the listener (re)connects, since a notice sent while
it was away is lost.
"""

import asyncio
import contextlib
import logging
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.apikeys.repository import REVOCATIONS_CHANNEL
from kopilka.apikeys.service import ApiKeyService, api_key_service
from kopilka.db import Listener, listen

logger = logging.getLogger("kopilka.apikeys")

PING_SECONDS = 15.0
PING_TIMEOUT = 5.0
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


class RevocationWatch:
    """Keeps a listener connected to ``engine``'s database for as long as it runs."""

    def __init__(self, engine: AsyncEngine, service: ApiKeyService = api_key_service) -> None:
        self.engine = engine
        self.service = service
        self._task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        if self.engine.dialect.name == "postgresql" and self._task is None:
            self._task = asyncio.create_task(self._run(), name="kopilka-key-revocations")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        failures = 0
        try:
            while True:
                try:
                    await self._listen_until_lost()
                    failures = 0
                except Exception as exc:  # any failure: per-request checks, then retry
                    logger.warning(
                        "key revocations: cannot listen (%s); checking the key of every request",
                        exc,
                    )
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                failures += 1
        finally:
            self._forget_listener()
            if self._listener is not None:
                await self._listener.close()

    async def _listen_until_lost(self) -> None:
        self._listener = await listen(self.engine, REVOCATIONS_CHANNEL, self._on_notice)
        # Anything cached before the LISTEN took effect may have been revoked unseen.
        self.service.watch(self.engine)
        self.connected.set()
        try:
            while not self._listener.lost.is_set():
                try:
                    await asyncio.wait_for(self._listener.lost.wait(), PING_SECONDS)
                except TimeoutError:
                    await self._listener.ping(within=PING_TIMEOUT)
        finally:
            self._forget_listener()
            await self._listener.close()

    def _forget_listener(self) -> None:
        self.connected.clear()
        self.service.unwatch(self.engine)

    def _on_notice(self, payload: str) -> None:
        try:
            key_id = UUID(payload)
        except ValueError:
            # Not one of ours: to be safe, forget every key.
            self.service.forget_all()
            return
        self.service.revoked(key_id)
