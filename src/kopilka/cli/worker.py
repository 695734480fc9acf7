"""``kopilka worker``: deliver domain events, send webhooks, run the scheduled jobs."""

import asyncio
import signal
import sys
from typing import TYPE_CHECKING
from uuid import UUID

import typer
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import DatabaseOption, console, database_url, run, with_engine
from kopilka.config import Settings, get_settings
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.worker.service import DeliveryStatus, worker_service

if TYPE_CHECKING:
    from kopilka.worker.runner import RoundReport
    from kopilka.worker.setup import WorkerPlan

app = typer.Typer(
    help="Deliver domain events (consumers, webhooks, NATS) and run the scheduled jobs.",
    invoke_without_command=True,
)

ModuleOption = typer.Option(
    [], "--module", "-m", help="Also import this module (it registers consumers)."
)
ConsumerOption = typer.Option(
    [], "--consumer", "-c", help="Run only this consumer (repeat for several)."
)


def _settings(database: str | None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"database_url": database_url(database)})


def _print_plan(plan: "WorkerPlan") -> None:
    console.print(f"reading events from {plan.database}", highlight=False, soft_wrap=True)
    console.print(
        "delivering to: " + (", ".join(plan.consumers) if plan.consumers else "no consumers"),
        highlight=False,
        soft_wrap=True,
    )
    if plan.nats:
        console.print(f"NATS JetStream: {plan.nats}", highlight=False, soft_wrap=True)
    for line in plan.channels:
        console.print(f"messages {line}", highlight=False, soft_wrap=True)
    console.print(
        "scheduled jobs: " + (", ".join(plan.jobs) if plan.jobs else "none"),
        highlight=False,
        soft_wrap=True,
    )


def _print_report(report: "RoundReport") -> None:
    console.print(
        f"stamped {report.stamped}, handled {report.handled}, failed {report.failed}, "
        f"parked {report.parked}, published {report.published}, "
        f"webhooks and messages sent {report.sent}",
        highlight=False,
        soft_wrap=True,
    )
    for job in report.jobs:
        console.print(
            f"job {job.job} ({job.program_id}): {job.outcome} {job.detail}",
            highlight=False,
            soft_wrap=True,
        )


@app.callback()
def worker(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Deliver what is there now, then exit."),
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="Run the scheduled jobs."),
    module: list[str] = ModuleOption,
    consumer: list[str] = ConsumerOption,
    database: str | None = DatabaseOption,
) -> None:
    """Run the worker until SIGTERM or SIGINT (the batch in hand is finished first)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(database)
    # Only the running worker loads its sinks (the webhook client among them).
    from kopilka.worker.setup import open_worker

    async def work(engine: AsyncEngine) -> None:
        async with open_worker(engine, settings, modules=module, only=consumer, jobs=jobs) as (
            runner,
            plan,
        ):
            _print_plan(plan)
            if once:
                _print_report(await runner.drain(jobs=jobs))
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            console.print("running; stop with Ctrl-C or SIGTERM")
            await runner.run(stop)
            console.print("stopped")

    run(with_engine(settings.database_url, work))


@app.command()
def status(database: str | None = DatabaseOption) -> None:
    """Per consumer: events behind, retrying, waiting, parked; per job: its last run."""

    async def work(engine: AsyncEngine) -> DeliveryStatus:
        async with reading(engine) as conn:
            return await worker_service.status(conn)

    found = run(with_engine(database_url(database), work))
    console.print(
        f"outbox: {found.last_seq} events stamped, {found.unstamped} not yet stamped, "
        f"{found.undelivered} not delivered to every consumer",
        highlight=False,
        soft_wrap=True,
    )
    for lag in found.consumers:
        line = (
            f"consumer {lag.consumer}: {lag.lag} behind, {lag.retrying} retrying, "
            f"{lag.waiting} waiting, {lag.parked} parked"
        )
        if lag.halted_until:
            line += f"; halted until {lag.halted_until.isoformat()}: {lag.last_error}"
        console.print(escape(line), highlight=False, soft_wrap=True)
    for job in found.jobs:
        finished = job.finished_at.isoformat() if job.finished_at else "-"
        console.print(
            escape(
                f"job {job.job} ({job.program_id}): {job.outcome} period {job.period}, "
                f"started {job.started_at.isoformat()}, finished {finished}: {job.detail or ''}"
            ),
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def parked(
    consumer: str | None = typer.Option(None, "--consumer", "-c"),
    limit: int = typer.Option(100, min=1, max=10_000),
    database: str | None = DatabaseOption,
) -> None:
    """Events a consumer gave up on, with their last error."""

    async def work(engine: AsyncEngine) -> None:
        async with reading(engine) as conn:
            found = await worker_service.parked(conn, consumer=consumer, limit=limit)
        if not found:
            console.print("no parked events")
        for p in found:
            console.print(
                escape(
                    f"{p.event_id} {p.topic} consumer {p.consumer} program {p.program_id} "
                    f"member {p.member_id or '-'}: {p.attempts} attempts, {p.last_error}"
                ),
                highlight=False,
                soft_wrap=True,
            )

    run(with_engine(database_url(database), work))


@app.command()
def replay(
    event_id: str | None = typer.Argument(None, help="The parked event's id."),
    consumer: str | None = typer.Option(None, "--consumer", "-c"),
    all_parked: bool = typer.Option(False, "--all", help="Every parked event (of --consumer)."),
    database: str | None = DatabaseOption,
) -> None:
    """Deliver parked events again (the worker takes them on its next round)."""
    if (event_id is None) == (not all_parked):
        console.print(
            "[red]error:[/red] give an event id or --all", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    try:
        parsed = UUID(event_id) if event_id else None
    except ValueError:
        console.print(f"[red]error:[/red] {escape(event_id or '')} is not an event id")
        sys.exit(2)

    async def work(engine: AsyncEngine) -> int:
        async with transaction(engine) as conn:
            return await worker_service.replay(
                conn, clock.now(), event_id=parsed, consumer=consumer
            )

    count = run(with_engine(database_url(database), work))
    console.print(f"replayed {count} parked deliveries")
