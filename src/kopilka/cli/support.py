"""``kopilka support``: the ticket queue, the SLA breach check, the inbound e-mail URL."""

import typer
from rich.markup import escape
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
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.messaging.inbound import inbound_url
from kopilka.messaging.service import messaging_service
from kopilka.support.domain import TicketStatus
from kopilka.support.schemas import Ticket
from kopilka.support.sla import BreachReport
from kopilka.support.tasks import check_sla
from kopilka.support.tickets import ticket_service

app = typer.Typer(help="Tickets and surveys.", no_args_is_help=True)


@app.command("tickets")
def tickets(
    status: list[str] = typer.Option([], "--status", help="new, open, waiting, resolved, closed"),
    breached: bool = typer.Option(False, "--breached", help="Only tickets past a deadline."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """List the ticket queue, the nearest deadline first."""
    try:
        statuses = [TicketStatus(s) for s in status]
    except ValueError:
        raise typer.BadParameter(
            f"--status must be one of {', '.join(TicketStatus)}", param_hint="--status"
        ) from None

    async def work(engine: AsyncEngine) -> list[Ticket]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            page = await ticket_service.queue(
                conn, context, None, clock.now(), status=statuses, breached=breached, limit=limit
            )
        return page.items

    items = run(with_engine(database_url(database), work))
    if not items:
        console.print("no tickets")
        return
    table = Table("id", "status", "priority", "category", "store", "due", "breached", "subject")
    for t in items:
        table.add_row(
            str(t.id),
            t.status,
            t.priority,
            t.category,
            t.store or "",
            f"{t.due_at:%Y-%m-%d %H:%M}",
            "yes" if t.breached else "",
            escape(t.subject),
        )
    console.print(table)


@app.command("sla-check")
def sla_check(
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Flag tickets whose deadline passed unmet (``ticket.sla_breached``), as the worker's
    ``support-sla`` job does."""

    async def work(engine: AsyncEngine) -> BreachReport:
        context = await load_program(engine, program)
        return await check_sla(engine, context.id, clock.now())

    report = run(with_engine(database_url(database), work))
    console.print(
        f"{report.tickets} tickets newly breached: {report.first_response} first responses, "
        f"{report.resolution} resolutions"
    )


@app.command("inbound-url")
def show_inbound_url(
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The signed URL to give the mail provider's inbound webhook (raw MIME, POST)."""

    async def work(engine: AsyncEngine) -> str:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            setup = await messaging_service.ensure_setup(conn, context, clock.now())
        return inbound_url(setup, context)

    console.print(run(with_engine(database_url(database), work)), soft_wrap=True)
