"""``kopilka jobs``: the scheduled ledger jobs, runnable by hand or from cron."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import UUID

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.activities.tasks import BirthdayReport, celebrate_birthdays
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
from kopilka.kit.clock import clock, zone_named
from kopilka.ledger import tasks
from kopilka.messaging.tasks import ExpiringReport, remind_expiring
from kopilka.tiers.tasks import RequalifyReport, ReviewReport, requalify_tiers, review_tiers

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


@app.command("points-expiring")
def points_expiring(
    day: datetime | None = typer.Option(
        None, "--date", formats=["%Y-%m-%d"], help="Local date; default today in the program."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Remind members of points that expire within the program's expiring_days."""

    async def work(engine: AsyncEngine) -> ExpiringReport:
        context = await load_program(engine, program)
        now = clock.now()
        zone = zone_named(context.settings.timezone) or UTC
        today = day.date() if day else now.astimezone(zone).date()
        return await remind_expiring(engine, context.id, today, now)

    report = run(with_engine(database_url(database), work))
    if not report.ran:
        console.print("points-expiring: the reminder is off in the program's messaging settings")
        return
    console.print(f"points-expiring: {report.members} members, {report.messages} messages")


@app.command("tier-review")
def tier_review(
    as_of: datetime | None = typer.Option(
        None, "--as-of", formats=["%Y-%m-%d"], help="Review date; default today (UTC)."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Review the tiers due on or before the date and end the manual tiers that end then.

    Idempotent and resumable: a reviewed member's next review lies after the date.
    """
    day = as_of.date() if as_of else datetime.now(UTC).date()

    async def work(engine: AsyncEngine) -> ReviewReport:
        context = await load_program(engine, program)
        return await review_tiers(engine, context.id, day)

    report = run(with_engine(database_url(database), work))
    outcomes = ", ".join(f"{n} {what}" for what, n in sorted(report.outcomes.items()))
    console.print(
        f"tier-review as of {day.isoformat()}: {report.members} members"
        + (f" ({outcomes})" if outcomes else "")
    )


@app.command("tier-requalify")
def tier_requalify(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report who would move; change nothing."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Put every member on the tier they qualify for under the ladder in force (after a
    ladder change), up or down; manual tiers stay floors."""

    async def work(engine: AsyncEngine) -> RequalifyReport:
        context = await load_program(engine, program)
        return await requalify_tiers(engine, context.id, write=not dry_run)

    report = run(with_engine(database_url(database), work))
    moved = sum(report.moves.values())
    verb = "would move" if dry_run else "moved"
    console.print(f"tier-requalify: {report.members} members, {moved} {verb}")
    for (from_tier, to_tier), n in sorted(report.moves.items()):
        console.print(f"  {from_tier} → {to_tier}: {n}")
    for member_id, from_tier, to_tier in report.sample:
        console.print(f"  e.g. {member_id}: {from_tier} → {to_tier}", highlight=False)
