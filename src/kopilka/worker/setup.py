"""A worker put together from settings: the registered consumers, the webhook sender, the
NATS sink if configured, the scheduler. Used by ``kopilka worker`` and ``kopilka demo``."""

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.config import Settings
from kopilka.errors import InvalidInput
from kopilka.messaging.sender import MessageChannels, MessageSender, describe
from kopilka.outbox.consumers import Consumer, registry
from kopilka.webhooks.sender import WebhookSender
from kopilka.worker.delivery import RetryPolicy
from kopilka.worker.modules import import_consumers
from kopilka.worker.runner import Worker
from kopilka.worker.scheduler import Scheduler, parse_daily_at
from kopilka.worker.sinks import NatsSink


@dataclass(frozen=True)
class WorkerPlan:
    """What a worker reads and where it delivers, for its start-up lines."""

    database: str
    consumers: list[str]
    nats: str | None
    jobs: list[str]
    channels: list[str]


def disabled_jobs(settings: Settings) -> frozenset[str]:
    return frozenset(j.strip() for j in settings.jobs_disabled.split(",") if j.strip())


@asynccontextmanager
async def open_worker(
    engine: AsyncEngine,
    settings: Settings,
    *,
    modules: Sequence[str] = (),
    only: Sequence[str] = (),
    jobs: bool = True,
) -> AsyncIterator[tuple[Worker, WorkerPlan]]:
    """A ready worker (NATS connected, HTTP client open), closed on exit."""
    try:
        import_consumers(modules)
    except ImportError as exc:
        raise InvalidInput(f"cannot import consumer module: {exc}", field="module") from exc
    consumers: list[Consumer] = registry.all()
    async with AsyncExitStack() as stack:
        nats_url = settings.events_url
        if nats_url:
            sink = NatsSink(nats_url, settings.events_stream, settings.events_subject_prefix)
            try:
                await stack.enter_async_context(sink)
            except Exception as exc:
                raise InvalidInput(
                    f"cannot reach NATS at {nats_url}: {exc or type(exc).__name__}",
                    field="events_url",
                ) from exc
            consumers.append(sink.consumer())
        if only:
            unknown = set(only) - {c.name for c in consumers}
            if unknown:
                known = ", ".join(c.name for c in consumers)
                raise InvalidInput(
                    f"no consumer {', '.join(sorted(unknown))} (registered: {known})",
                    field="consumer",
                )
            consumers = [c for c in consumers if c.name in only]
        scheduler = None
        if jobs:
            try:
                scheduler = Scheduler(
                    engine,
                    frequent_seconds=settings.jobs_frequent_seconds,
                    daily_at=parse_daily_at(settings.jobs_daily_at),
                    disabled=disabled_jobs(settings),
                    retention_days=settings.outbox_retention_days,
                )
            except ValueError as exc:
                raise InvalidInput(str(exc), field="jobs") from exc
        sender = None
        if any(c.name == "webhooks" for c in consumers):
            sender = await stack.enter_async_context(
                WebhookSender(
                    engine,
                    timeout=settings.webhook_timeout_seconds,
                    concurrency=settings.webhook_concurrency,
                    disable_after=timedelta(hours=settings.webhook_disable_after_hours),
                    allow_private=settings.webhook_allow_private_urls,
                )
            )
        routes = await stack.enter_async_context(MessageChannels(settings))
        senders = []
        if any(c.name == "messaging" for c in consumers):
            senders.append(
                MessageSender(
                    engine,
                    routes,
                    concurrency=settings.message_concurrency,
                    broadcast_chunk=settings.broadcast_chunk,
                )
            )
        worker = Worker(
            engine,
            consumers,
            policy=RetryPolicy(
                settings.worker_max_attempts,
                settings.worker_retry_base_seconds,
                settings.worker_retry_max_seconds,
            ),
            batch_size=settings.worker_batch_size,
            poll_seconds=settings.worker_poll_seconds,
            sender=sender,
            senders=senders,
            scheduler=scheduler,
        )
        plan = WorkerPlan(
            database=make_url(settings.database_url).render_as_string(hide_password=True),
            consumers=[c.name for c in consumers],
            nats=(
                f"{nats_url} (stream {settings.events_stream}, "
                f"subjects {settings.events_subject_prefix}.>)"
                if nats_url
                else None
            ),
            jobs=[j.name for j in scheduler.jobs] if scheduler else [],
            channels=list(describe(routes, settings)) if senders else [],
        )
        yield worker, plan
