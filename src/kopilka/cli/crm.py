"""``kopilka crm``: Member facts."""

from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    fail,
    load_program,
    run,
    with_engine,
)
from kopilka.crm.service import RebuildReport, crm_service
from kopilka.crm.tasks import rebuild_program
from kopilka.db import reading
from kopilka.kit.clock import clock

app = typer.Typer(help="Member facts: rebuild from history.", no_args_is_help=True)


@app.command("rebuild-facts")
def rebuild_facts(
    after: str | None = typer.Option(
        None, "--after", help="Go on after this member id (a stopped rebuild prints it)."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Work every member's facts and RFM scores out again from the purchase history.

    Set-wise, batch by batch of members (each batch committed), and idempotent: run it
    after an import, or to start facts for history older than the outbox keeps.
    """
    try:
        start = UUID(after) if after is not None else None
    except ValueError:
        fail(f"--after: {after!r} is not a member id")
    last: list[UUID] = []

    async def work(engine: AsyncEngine) -> RebuildReport:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            total = await crm_service.program_members(conn, context.id)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            facts = bar.add_task("facts", total=total)
            scores = bar.add_task("RFM scores", total=total)

            def progress(phase: str, done: int, upto: UUID) -> None:
                if phase == "facts":
                    last[:] = [upto]
                task = facts if phase == "facts" else scores
                bar.update(task, completed=min(done, total))

            return await rebuild_program(
                engine, context.id, clock.now(), after=start, progress=progress
            )

    try:
        report = run(with_engine(database_url(database), work))
    except BaseException:  # interrupted or failed: say where to go on from
        if last:
            console.print(f"stopped: go on with --after {last[0]}")
        raise
    console.print(
        f"{report.facts} members' facts from {report.days} days of purchases;"
        f" {report.scored} scored for RFM"
    )
