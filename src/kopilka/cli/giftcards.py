"""``kopilka giftcards``: verify gift cards and wallets, expire overdue cards."""

from datetime import UTC, datetime

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    load_program,
    parse_as_of,
    report_checks,
    run,
    with_engine,
)
from kopilka.giftcards.audit import verify as run_checks
from kopilka.giftcards.tasks import ExpiryReport, expire_gift_cards

app = typer.Typer(help="Gift cards and wallets.", no_args_is_help=True)


@app.command()
def verify(program: str | None = ProgramOption, database: str | None = DatabaseOption) -> None:
    """Check that every balance equals its transactions and none is negative; exit 1
    naming each violation."""
    report_checks(run_checks, program, database)


@app.command()
def expire(
    as_of: str | None = typer.Option(
        None, "--as-of", help="Date (end of day, UTC) or ISO datetime; default now."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Close the cards past their expiry, taking what is left on them. Safe to run again.
    A date or time later than now is taken as now: money is never taken ahead of time."""
    when = min(parse_as_of(as_of), datetime.now(UTC))

    async def work(engine: AsyncEngine) -> ExpiryReport:
        context = await load_program(engine, program)
        return await expire_gift_cards(engine, context.id, when)

    report = run(with_engine(database_url(database), work))
    console.print(
        f"gift-card expiry as of {when.isoformat()}: {report.cards} cards closed, "
        f"{report.amount} taken"
    )
