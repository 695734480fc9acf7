"""``kopilka jobs``: the scheduled ledger jobs, runnable by hand or from cron."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import UUID

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    load_program,
    parse_as_of,
    run,
    with_engine,
)
from kopilka.events.tasks import BirthdayReport, celebrate_birthdays
from kopilka.ledger import tasks

app = typer.Typer(help="Scheduled jobs.", no_args_is_help=True)
AsOf = typer.Option(None, "--as-of", help="Date (end of day, UTC) or ISO datetime; default now.")

Job = Callable[[AsyncEngine, UUID, datetime], Awaitable[tasks.JobReport]]


def _run_job(
    job: Job, label: str, slug: str | None, as_of: str | None, database: str | None
) -> None:
    when = parse_as_of(as_of)

    async def work(engine: AsyncEngine) -> tasks.JobReport:
        context = await load_program(engine, slug)
        return await job(engine, context.id, when)

    report = run(with_engine(database_url(database), work))
    console.print(
        f"{label} as of {when.isoformat()}: {report.members} processed, "
        f"{report.amount} points moved"
    )


@app.command()
def expire(
    as_of: str | None = AsOf,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Move what is left in overdue lots to the expired account."""
    _run_job(tasks.expire_points, "expire", program, as_of, database)


@app.command("release-pending")
def release_pending(
    as_of: str | None = AsOf,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Make points whose return window has passed spendable."""
    _run_job(tasks.release_pending, "release-pending", program, as_of, database)


@app.command("release-holds")
def release_holds(
    as_of: str | None = AsOf,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Release holds that were not captured in time."""
    _run_job(tasks.release_holds, "release-holds", program, as_of, database)


@app.command()
def birthdays(
    day: datetime | None = typer.Option(
        None, "--date", formats=["%Y-%m-%d"], help="Local date; default today in the program."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Record a birthday event for members born on this day; birthday rules run on it."""

    async def work(engine: AsyncEngine) -> BirthdayReport:
        context = await load_program(engine, program)
        return await celebrate_birthdays(engine, context.id, day.date() if day else None)

    report = run(with_engine(database_url(database), work))
    if not report.ran:
        console.print("birthdays: the program has no rules on the birthday trigger")
        return
    console.print(f"birthdays: {report.members} members, {report.points} points earned")
