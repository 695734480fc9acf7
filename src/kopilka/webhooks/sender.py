"""The sender: POSTs due deliveries, signed, and records what each attempt gave.

Each round leases due deliveries (a short transaction), sends them concurrently outside any
transaction, then records every attempt (another short transaction). A sender that dies
between the two leaves its deliveries due again when the lease ends: at least once, and the
receiver deduplicates by ``webhook-id``.
"""

import asyncio
import logging
import time
from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.db import run_in_transaction
from kopilka.kit.clock import clock
from kopilka.webhooks import domain
from kopilka.webhooks.repository import Leased
from kopilka.webhooks.service import AttemptResult, webhook_service

logger = logging.getLogger("kopilka.webhooks")
RESPONSE_SNIPPET = 1000


class WebhookSender:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        timeout: float = 10.0,
        concurrency: int = 16,
        disable_after: timedelta = timedelta(days=5),
        batch: int = 200,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.engine = engine
        self.timeout = timeout
        self.disable_after = disable_after
        self.batch = batch
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._client = client
        self._own_client = client is None
        self._concurrency = concurrency

    async def __aenter__(self) -> "WebhookSender":
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=max(1, self._concurrency)),
            )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send_due(self) -> int:
        """One round: send what is due now; returns how many attempts were made."""
        now = clock.now()
        lease = timedelta(seconds=self.timeout * 3 + 30)

        async def take(conn: AsyncConnection) -> list[Leased]:
            return await webhook_service.lease(conn, now, lease, self.batch)

        leased = await run_in_transaction(self.engine, take)
        if not leased:
            return 0
        results = await asyncio.gather(*(self._send(item) for item in leased))

        async def record(conn: AsyncConnection) -> list[object]:
            return list(
                await webhook_service.record(conn, results, clock.now(), self.disable_after)
            )

        disabled = await run_in_transaction(self.engine, record)
        for endpoint_id in disabled:
            logger.warning("webhook %s disabled after persistent failure", endpoint_id)
        return len(results)

    async def _send(self, item: Leased) -> AttemptResult:
        assert self._client is not None, "use the sender as an async context manager"
        delivery = item.delivery
        attempted_at = clock.now()
        sent = domain.headers(
            item.secret, str(delivery.event_id), int(attempted_at.timestamp()), delivery.body
        )
        started = time.perf_counter()
        status: int | None = None
        snippet: str | None = None
        error: str | None = None
        async with self._limit:
            try:
                response = await self._client.post(
                    item.url, content=delivery.body.encode(), headers=sent, timeout=self.timeout
                )
                status = response.status_code
                snippet = response.text[:RESPONSE_SNIPPET]
            except httpx.TimeoutException:
                error = f"no answer within {self.timeout:g} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:1000]
        duration = int((time.perf_counter() - started) * 1000)
        if error is None and status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return AttemptResult(item, attempted_at, status, snippet, duration, error)
