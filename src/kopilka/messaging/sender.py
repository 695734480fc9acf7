"""The message sender: turns due broadcasts into messages, then sends due messages through
their channels and records what each send gave.

Each round leases due messages (a short transaction), sends them concurrently outside any
transaction, and records the results (another short transaction). A sender that dies in
between leaves its messages due again when the lease ends: at least once, with the
message id as the e-mail's Message-ID, the SMS reference and the push tag, so a receiver
can tell a repeat.

Only channels that are configured are leased: an e-mail waits, queued, until an SMTP
server (or a mail outbox directory) is set up, rather than failing.
"""

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Protocol
from uuid import UUID

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.config import Settings
from kopilka.db import run_in_transaction
from kopilka.kit.clock import clock
from kopilka.messaging.broadcasts import broadcast_service
from kopilka.messaging.composition import SendResult
from kopilka.messaging.delivery import delivery_service
from kopilka.messaging.domain import Channel, DeliveryFailed
from kopilka.messaging.email import Email, SendFailed, SmtpChannel, SmtpConfig, mime
from kopilka.messaging.push import (
    PrivateAddress,
    PushChannel,
    PushConfig,
    PushFailed,
    PushMessage,
    PushSubscription,
)
from kopilka.messaging.records import MessageRow
from kopilka.messaging.sms import Sms, SmsConfig, SmsGateway, gateway

logger = logging.getLogger("kopilka.messaging")


class Deliverer(Protocol):
    async def deliver(self, message: MessageRow) -> str | None:
        """Send ``message``; the provider's id of it. ``DeliveryFailed`` if refused."""
        ...


def email_of(message: MessageRow, domain: str) -> Email:
    """The e-mail a stored message goes out as."""
    return Email(
        to=message.to_address or "",
        subject=message.subject or "",
        text=message.body,
        html=message.html,
        unsubscribe_url=(
            message.extra.get("unsubscribe_url") if message.purpose == "marketing" else None
        ),
        message_id=f"<{message.id}@{domain}>",
        reply_to=message.extra.get("reply_to"),
    )


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


class SmtpDeliverer:
    def __init__(self, config: SmtpConfig, keep: int = 8) -> None:
        self.channel = SmtpChannel(config, keep=keep)
        self.domain = _domain(config.sender)

    async def deliver(self, message: MessageRow) -> str | None:
        return await self.channel.send(email_of(message, self.domain))

    async def close(self) -> None:
        await self.channel.close()


class FileMailDeliverer:
    """E-mail written as ``<message id>.eml`` files into a directory: for a demo or a
    machine without a mail server."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender
        directory.mkdir(parents=True, exist_ok=True)

    async def deliver(self, message: MessageRow) -> str | None:
        built = mime(email_of(message, _domain(self.sender)), self.sender)
        path = self.directory / f"{message.id}.eml"
        await asyncio.to_thread(path.write_bytes, bytes(built))
        return str(built["Message-ID"])


class SmsDeliverer:
    def __init__(self, sms: SmsGateway) -> None:
        self.gateway = sms

    async def deliver(self, message: MessageRow) -> str | None:
        sent = await self.gateway.send(Sms(message.to_address or "", message.body, str(message.id)))
        return sent.provider_id


class PushDeliverer:
    def __init__(self, channel: PushChannel) -> None:
        self.channel = channel

    async def deliver(self, message: MessageRow) -> str | None:
        subscription = PushSubscription(
            message.to_address or "", message.extra.get("p256dh", ""), message.extra.get("auth", "")
        )
        await self.channel.send(
            subscription,
            PushMessage(message.subject or "", message.body, url=message.link, tag=message.kind),
        )
        return None


class PublicResolver(AbstractResolver):
    """Resolves names as aiohttp does, refusing any that leads to an address that is not
    global: a subscription's host (``127.0.0.1.nip.io``) must not reach the worker's own
    network. Literal addresses are refused when the subscription is stored."""

    def __init__(self) -> None:
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for entry in found:
            if not ipaddress.ip_address(entry["host"]).is_global:
                raise PrivateAddress(f"{host} resolves to {entry['host']}, not a public address")
        return found

    async def close(self) -> None:
        await self._inner.close()


class Throttle:
    """At most ``per_second`` starts per second (0: no limit), spread evenly."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


@dataclass(frozen=True)
class Route:
    deliverer: Deliverer
    throttle: Throttle
    timeout: float = 30.0  # the longest one send may take


class MessageSender:
    """Sends in ``concurrency`` lanes through the configured channels."""

    def __init__(
        self,
        engine: AsyncEngine,
        routes: dict[Channel, Route],
        *,
        concurrency: int = 8,
        batch: int | None = None,
        broadcast_chunk: int = 500,
    ) -> None:
        self.engine = engine
        self.routes = routes
        self.concurrency = max(1, concurrency)
        # A few waves per round: a sender that dies holds few messages, for a short lease.
        self.batch = batch or self.concurrency * 4
        self.broadcast_chunk = broadcast_chunk
        self.timeout = max((r.timeout for r in routes.values()), default=30.0)
        self._lanes = asyncio.Semaphore(self.concurrency)

    @property
    def running(self) -> int:
        return 0  # a round waits for its sends

    @property
    def channels(self) -> list[str]:
        return [str(c) for c in self.routes]

    async def send_due(self) -> int:
        """One round: a chunk of each due broadcast, then the due messages; how many
        messages were made or sent."""
        done = await self.expand_broadcasts()
        if not self.routes:
            return done
        now = clock.now()
        # Long enough for every leased send to wait for a lane and then time out: a lease
        # only ends early when the sender died.
        waves = -(-self.batch // self.concurrency)
        lease = timedelta(seconds=self.timeout * (waves + 1) + 5)

        async def take(conn: AsyncConnection) -> list[MessageRow]:
            return await delivery_service.lease(conn, now, lease, self.batch, self.channels)

        leased = await run_in_transaction(self.engine, take)
        # A wave of ``concurrency`` sends at a time, each recorded as soon as it is done: a
        # sender killed mid-round sends again at most the wave in flight (at least once;
        # the Message-ID lets mail systems tell), not the whole round.
        for start in range(0, len(leased), self.concurrency):
            wave = leased[start : start + self.concurrency]
            results = await asyncio.gather(*(self._send(m) for m in wave))

            async def record(conn: AsyncConnection, results: list[SendResult] = results) -> None:
                await delivery_service.record(conn, results)

            await run_in_transaction(self.engine, record)
        return done + len(leased)

    async def expand_broadcasts(self) -> int:
        now = clock.now()

        async def due(conn: AsyncConnection) -> list[UUID]:
            return [b.id for b in await broadcast_service.due(conn, now)]

        made = 0
        for broadcast_id in await run_in_transaction(self.engine, due):

            async def chunk(conn: AsyncConnection, broadcast_id: UUID = broadcast_id) -> int:
                report = await broadcast_service.run_chunk(
                    conn, broadcast_id, self.broadcast_chunk, now
                )
                return report.members if report is not None else 0

            try:
                made += await run_in_transaction(self.engine, chunk)
            except Exception:
                # One broadcast that cannot be made must not hold back every program's
                # messages: logged, tried again next round, and the sending goes on.
                logger.exception("broadcast %s: a chunk failed", broadcast_id)
        return made

    async def _send(self, message: MessageRow) -> SendResult:
        route = self.routes[Channel(message.channel)]
        async with self._lanes:
            await route.throttle.wait()
            try:
                provider_id = await asyncio.wait_for(
                    route.deliverer.deliver(message), timeout=route.timeout
                )
            except DeliveryFailed as exc:
                return SendResult(
                    message,
                    clock.now(),
                    error=exc.detail,
                    permanent=exc.permanent,
                    bounced=isinstance(exc, SendFailed) and exc.permanent and exc.recipient,
                    gone=isinstance(exc, PushFailed) and exc.gone,
                )
            except TimeoutError:
                return SendResult(message, clock.now(), error=f"no answer in {route.timeout:g} s")
            except Exception as exc:  # a bug or an odd provider: the message retries
                logger.exception("sending message %s failed", message.id)
                return SendResult(message, clock.now(), error=f"{type(exc).__name__}: {exc}")
        return SendResult(message, clock.now(), provider_id=provider_id)


class MessageChannels:
    """The sender's channels from settings, with the HTTP session SMS and push share."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._push_session: aiohttp.ClientSession | None = None
        self._smtp: SmtpDeliverer | None = None

    async def __aenter__(self) -> dict[Channel, Route]:
        settings = self.settings
        routes: dict[Channel, Route] = {}
        smtp = SmtpConfig.from_settings(settings)
        if smtp is not None:
            self._smtp = SmtpDeliverer(smtp, keep=settings.message_concurrency)
            routes[Channel.EMAIL] = Route(
                self._smtp, Throttle(settings.email_per_second), smtp.timeout
            )
        elif settings.mail_outbox_dir:
            routes[Channel.EMAIL] = Route(
                FileMailDeliverer(Path(settings.mail_outbox_dir), settings.smtp_from),
                Throttle(settings.email_per_second),
                2.0,  # a local file
            )
        sms = SmsConfig.from_settings(settings)
        push = PushConfig.from_settings(settings)
        if sms is not None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        if push is not None:
            # Push endpoints come from members' browsers: names resolving to private
            # addresses are refused (the operator's own SMS gateway may be on one).
            resolver = None if settings.push_allow_private_endpoints else PublicResolver()
            self._push_session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(resolver=resolver),
            )
        if sms is not None and self._session is not None:
            routes[Channel.SMS] = Route(
                SmsDeliverer(gateway(sms, self._session)),
                Throttle(settings.sms_per_second),
                sms.timeout,
            )
        if push is not None and self._push_session is not None:
            routes[Channel.PUSH] = Route(
                PushDeliverer(PushChannel(push, self._push_session)),
                Throttle(settings.push_per_second),
                push.timeout,
            )
        return routes

    async def __aexit__(self, *_: object) -> None:
        if self._smtp is not None:
            await self._smtp.close()
        for session in (self._session, self._push_session):
            if session is not None:
                await session.close()
        self._session = self._push_session = None


def describe(routes: dict[Channel, Route], settings: Settings) -> Sequence[str]:
    """One line per channel for the worker's start-up lines (no secrets)."""
    lines = []
    for channel in (Channel.EMAIL, Channel.SMS, Channel.PUSH):
        if channel not in routes:
            lines.append(f"{channel}: not configured (messages wait, queued)")
            continue
        deliverer = routes[channel].deliverer
        if isinstance(deliverer, SmtpDeliverer):
            lines.append(f"email: SMTP {deliverer.channel.config.shown()}")
        elif isinstance(deliverer, FileMailDeliverer):
            lines.append(f"email: files in {deliverer.directory}")
        elif isinstance(deliverer, SmsDeliverer):
            lines.append(f"sms: {settings.sms_provider} gateway")
        else:
            lines.append("push: web push (VAPID)")
    return lines
