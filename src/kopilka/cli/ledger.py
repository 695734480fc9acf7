"""``kopilka ledger``: verify the ledger's invariants."""

import sys

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    err_console,
    load_program,
    run,
    with_engine,
)
from kopilka.db import reading
from kopilka.ledger.audit import verify as run_checks

app = typer.Typer(help="The points ledger.", no_args_is_help=True)


async def verify_program(engine: AsyncEngine, slug: str | None) -> dict[str, list[str]]:
    context = await load_program(engine, slug)
    async with reading(engine, snapshot=True) as conn:
        return await run_checks(conn, context.id)


@app.command()
def verify(program: str | None = ProgramOption, database: str | None = DatabaseOption) -> None:
    """Check every ledger invariant; exit 1 naming each violation."""
    results = run(with_engine(database_url(database), lambda e: verify_program(e, program)))
    failed = False
    for name, problems in results.items():
        if problems:
            failed = True
            err_console.print(f"[red]FAIL[/red] {name}")
            for problem in problems:
                err_console.print(f"  {problem}", highlight=False)
        else:
            console.print(f"[green]ok[/green]   {name}")
    if failed:
        sys.exit(1)
