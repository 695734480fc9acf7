"""``kopilka journeys``: the program's journeys, and a journey's dry run over past days."""

from datetime import date

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    load_program,
    run,
    with_engine,
)
from kopilka.config import get_settings
from kopilka.db import reading
from kopilka.journeys.dryrun import DryRun
from kopilka.journeys.dryrun_service import dry_run_service
from kopilka.journeys.service import MAX_JOURNEYS_PAGE, JourneyView, journey_service
from kopilka.kit.clock import clock

app = typer.Typer(help="Journeys: list them, try one on past days.", no_args_is_help=True)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD)", param_hint=option
        ) from None


@app.command("list")
def list_journeys(
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The program's journeys: key, status, version in force, name."""

    async def work(engine: AsyncEngine) -> list[JourneyView]:
        context = await load_program(engine, program)
        found: list[JourneyView] = []
        async with reading(engine) as conn:
            while True:
                after = found[-1].key if found else None
                page = await journey_service.listing(
                    conn, context, after=after, limit=MAX_JOURNEYS_PAGE
                )
                found.extend(page)
                if len(page) < MAX_JOURNEYS_PAGE:
                    return found

    table = Table("key", "status", "version", "draft", "name")
    for j in run(with_engine(database_url(database), work)):
        version = str(j.version) if j.version is not None else "-"
        table.add_row(j.key, str(j.status), version, "yes" if j.draft else "-", j.name)
    console.print(table)


@app.command("dry-run")
def dry_run(
    key: str,
    start: str | None = typer.Option(
        None,
        "--from",
        help="First day (YYYY-MM-DD, program's time zone; default: 29 days before --to).",
    ),
    end: str | None = typer.Option(None, "--to", help="Last day, included (default: today)."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """What the journey (its draft, else the version in force) would have done over past
    days: entrants, holdouts, each step's runs, messages, points and their cost, coupons
    and offers. Nothing is changed."""
    span = (_day(start, "--from"), _day(end, "--to"))

    async def work(engine: AsyncEngine) -> DryRun:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await dry_run_service.of_journey(
                conn,
                context,
                key,
                span,
                clock.now(),
                kept_days=get_settings().outbox_retention_days,
            )

    _print(run(with_engine(database_url(database), work)))


def _print(found: DryRun) -> None:
    days = f"{found.first.isoformat()} – {found.last.isoformat()}"
    console.print(
        f"{found.journey} ({found.document}), {days}, entry {found.entry} from {found.basis}",
        highlight=False,
    )
    capped = f" (capped: the first {found.walked} walked)" if found.capped else ""
    console.print(
        f"members {found.members}{capped}; runs {found.entries}: held out {found.held_out}, "
        f"treated {found.treated}, converted {found.converted}",
        highlight=False,
    )
    steps = Table("step", "type", "reached", "outcomes")
    for s in found.steps:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items())) or "-"
        steps.add_row(s.id, s.type, str(s.reached), outcomes)
    console.print(steps)
    for m in found.messages:
        channels = ", ".join(f"{c} {n}" for c, n in sorted(m.channels.items())) or "-"
        console.print(
            f"messages {m.step} ({m.kind}): sent {m.sent}, skipped {m.skipped}; {channels}",
            highlight=False,
        )
    for p in found.points:
        value = f"{p.value} {found.money_currency} minor units" if p.value is not None else "?"
        console.print(f"points {p.currency}: {p.points} = {value}", highlight=False)
    for campaign, n in found.coupons.items():
        console.print(f"coupons {campaign}: {n}", highlight=False)
    for kind, n in found.offers.items():
        console.print(f"offers {kind}: {n}", highlight=False)
    for note in found.notes:
        console.print(f"note: {note}", highlight=False)
