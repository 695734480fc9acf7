"""The sender: POSTs due deliveries, signed, and records what each attempt gave.

Each round leases due deliveries (a short transaction), sends them concurrently outside any
transaction, then records every attempt (another short transaction). A sender that dies
between the two leaves its deliveries due again when the lease ends: at least once, and the
receiver deduplicates by ``webhook-id``.
"""

import asyncio
import logging
import time
from collections import deque
from datetime import timedelta
from uuid import UUID

import aiohttp
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.kit.clock import clock
from kopilka.webhooks import domain
from kopilka.webhooks.domain import Leased
from kopilka.webhooks.service import AttemptResult, webhook_service

logger = logging.getLogger("kopilka.webhooks")
RESPONSE_SNIPPET = 1000


class WebhookSender:
    """Sends in ``concurrency`` lanes, each one request at a time, on one HTTP client whose
    pool keeps a connection per lane and receiver alive (aiohttp: a request costs a fraction
    of the CPU other clients take, which is what bounds a worker's webhooks per second)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        timeout: float = 10.0,
        concurrency: int = 8,
        disable_after: timedelta = timedelta(days=5),
        batch: int = 200,
    ) -> None:
        self.engine = engine
        self.timeout = timeout
        self.disable_after = disable_after
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "WebhookSender":
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(limit=self.concurrency, limit_per_host=0),
            # Receivers are the program's own systems: no cookies kept between them.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    async def send_due(self) -> int:
        """One round: send what is due now; returns how many attempts were made."""
        session = self._session
        if session is None:
            raise RuntimeError("use the sender as an async context manager")
        now = clock.now()
        lease = timedelta(seconds=self.timeout * 3 + 30)

        async def take(conn: AsyncConnection) -> list[Leased]:
            return await webhook_service.lease(conn, now, lease, self.batch)

        leased = await run_in_transaction(self.engine, take)
        if not leased:
            return 0
        waiting = deque(leased)
        results: list[AttemptResult] = []

        async def lane() -> None:
            while waiting:
                results.append(await self._send(session, waiting.popleft()))

        await asyncio.gather(*(lane() for _ in range(min(self.concurrency, len(leased)))))

        async def record(conn: AsyncConnection) -> list[UUID]:
            return await webhook_service.record(conn, results, clock.now(), self.disable_after)

        disabled = await run_in_transaction(self.engine, record)
        for endpoint_id in disabled:
            logger.warning("webhook %s disabled after persistent failure", endpoint_id)
        return len(results)

    async def _send(self, session: aiohttp.ClientSession, item: Leased) -> AttemptResult:
        delivery = item.delivery
        attempted_at = clock.now()
        sent = domain.headers(
            item.secret, str(delivery.event_id), int(attempted_at.timestamp()), delivery.body
        )
        started = time.perf_counter()
        status: int | None = None
        snippet: str | None = None
        error: str | None = None
        try:
            async with session.post(
                item.url,
                data=delivery.body.encode(),
                headers=sent,
                allow_redirects=False,
            ) as response:
                status = response.status
                snippet = (await response.text(errors="replace"))[:RESPONSE_SNIPPET]
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        duration = int((time.perf_counter() - started) * 1000)
        if error is None and status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return AttemptResult(item, attempted_at, status, snippet, duration, error)
