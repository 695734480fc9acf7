"""The sender: POSTs due deliveries, signed, and records what each attempt gave.

Each round leases due deliveries (a short transaction), sends them concurrently outside any
transaction, then records the attempts that finished (another short transaction). A sender
that dies between the two leaves its deliveries due again when the lease ends: at least
once, and the receiver deduplicates by ``webhook-id``.

A slow or dead receiver does not hold the others back: it gets at most ``PER_ENDPOINT`` of
the lanes at a time, and a round records what finished within ``round_seconds`` and goes on
leasing while that receiver's requests run on into later rounds. Only the first
``RESPONSE_SNIPPET`` bytes of an answer are read.

Unless ``allow_private`` (``KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS``), a request goes only to
public addresses: a URL written as an address is checked before anything is sent, and a
name is resolved by :class:`PublicResolver`, which refuses it if any of its addresses is
not public (a public name pointed at 127.0.0.1, DNS rebinding). The connection is made to
the addresses the resolver checked, so no second look-up can change them.
"""

import asyncio
import logging
import socket
import time
from datetime import timedelta
from uuid import UUID

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from yarl import URL

from kopilka.db import run_in_transaction
from kopilka.kit.clock import clock
from kopilka.webhooks import domain
from kopilka.webhooks.domain import Leased
from kopilka.webhooks.service import AttemptResult, webhook_service

logger = logging.getLogger("kopilka.webhooks")
RESPONSE_SNIPPET = 1000
PER_ENDPOINT = 2  # lanes one receiver may hold at once


class NotPublic(OSError):
    """A webhook's host is, or resolves to, an address that is not public."""


class PublicResolver(AbstractResolver):
    """Resolves names as aiohttp does and refuses a name if any address it gives is not
    public (:func:`domain.is_public`)."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            address = domain.address_of(entry["host"])
            if address is None or not domain.is_public(address):
                raise NotPublic(f"{host} resolves to {entry['host']}, not a public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


def literal_problem(url: str) -> str | None:
    """Why the worker must not connect to ``url`` whose host aiohttp takes for an address
    (it then skips the resolver): one that is not public or that does not parse."""
    try:
        parsed = URL(url)
    except ValueError:
        return "not a URL"
    for host in {parsed.host or "", parsed.raw_host or ""}:
        # aiohttp's own test (helpers.is_ip_address): a colon, or digits and dots.
        if ":" in host or host.replace(".", "").isdigit():
            address = domain.address_of(host)
            if address is None or not domain.is_public(address):
                return f"{host} is not a public address"
    return None


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
        round_seconds: float = 0.5,
        allow_private: bool = False,
    ) -> None:
        self.engine = engine
        self.allow_private = allow_private
        self.timeout = timeout
        self.disable_after = disable_after
        self.batch = batch
        self.concurrency = max(1, concurrency)
        self.round_seconds = round_seconds
        self._session: aiohttp.ClientSession | None = None
        self._lanes = asyncio.Semaphore(self.concurrency)
        self._per_endpoint: dict[UUID, asyncio.Semaphore] = {}
        self._running: set[asyncio.Task[AttemptResult]] = set()

    async def __aenter__(self) -> "WebhookSender":
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            connector=aiohttp.TCPConnector(
                limit=self.concurrency,
                limit_per_host=0,
                resolver=None if self.allow_private else PublicResolver(),
            ),
            # Receivers are the program's own systems: no cookies kept between them.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self.drain_running()
            await self._session.close()
        self._session = None

    @property
    def running(self) -> int:
        return len(self._running)

    async def send_due(self) -> int:
        """One round: start what is due now (while fewer than ``batch`` requests run), wait
        for the requests to finish, at most ``round_seconds``, and record those that did;
        returns how many attempts were recorded."""
        session = self._session
        if session is None:
            raise RuntimeError("use the sender as an async context manager")
        room = self.batch - len(self._running)
        if room > 0:
            now = clock.now()
            # Long enough for every leased request to wait for a lane and then time out: a
            # lease only ends early when the sender died.
            waves = -(-self.batch // self.concurrency)
            lease = timedelta(seconds=self.timeout * (waves + 1) + 30)

            async def take(conn: AsyncConnection) -> list[Leased]:
                return await webhook_service.lease(conn, now, lease, room)

            for item in await run_in_transaction(self.engine, take):
                self._running.add(asyncio.create_task(self._in_lane(session, item)))
        if not self._running:
            return 0
        done, _ = await asyncio.wait(self._running, timeout=self.round_seconds)
        return await self._record(done)

    async def drain_running(self) -> int:
        """Wait for every request still running and record them (a sender stopping)."""
        recorded = 0
        while self._running:
            done, _ = await asyncio.wait(self._running)
            recorded += await self._record(done)
        return recorded

    async def _record(self, done: set[asyncio.Task[AttemptResult]]) -> int:
        if not done:
            return 0
        self._running -= done
        results = [task.result() for task in done]

        async def record(conn: AsyncConnection) -> list[UUID]:
            return await webhook_service.record(conn, results, clock.now(), self.disable_after)

        disabled = await run_in_transaction(self.engine, record)
        for endpoint_id in disabled:
            logger.warning("webhook %s disabled after persistent failure", endpoint_id)
        return len(results)

    async def _in_lane(self, session: aiohttp.ClientSession, item: Leased) -> AttemptResult:
        """Send ``item`` once its receiver has a free place (at most ``PER_ENDPOINT``) and
        a lane is free: a receiver that hangs keeps its own places, not the others'."""
        endpoint = item.delivery.endpoint_id
        own = self._per_endpoint.setdefault(endpoint, asyncio.Semaphore(PER_ENDPOINT))
        async with own, self._lanes:
            return await self._send(session, item)

    async def _send(self, session: aiohttp.ClientSession, item: Leased) -> AttemptResult:
        delivery = item.delivery
        attempted_at = clock.now()
        sent = domain.headers(
            item.secret, str(delivery.event_id), int(attempted_at.timestamp()), delivery.body
        )
        started = time.perf_counter()
        status: int | None = None
        snippet: str | None = None
        error = None if self.allow_private else literal_problem(item.url)
        if error is not None:
            error = f"refused: {error} (no request sent)"
            return AttemptResult(item, attempted_at, None, None, 0, error)
        try:
            async with session.post(
                item.url,
                data=delivery.body.encode(),
                headers=sent,
                allow_redirects=False,
            ) as response:
                status = response.status
                # Only the start of an answer is kept: a receiver streaming gigabytes must
                # not fill the worker's memory.
                head = await response.content.read(RESPONSE_SNIPPET)
                # PostgreSQL's text holds no NUL: a binary answer must not stop the record.
                snippet = head.decode(errors="replace").replace("\x00", "\ufffd")
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, NotPublic):
                error = f"refused: {exc.os_error} (no request sent)"
            else:
                error = f"{type(exc).__name__}: {exc}"[:1000]
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
        duration = int((time.perf_counter() - started) * 1000)
        if error is None and status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return AttemptResult(item, attempted_at, status, snippet, duration, error)
