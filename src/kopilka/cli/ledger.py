"""``kopilka ledger``: verify the ledger's invariants."""

import typer

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    report_checks,
)
from kopilka.ledger.audit import verify as run_checks

app = typer.Typer(help="The points ledger.", no_args_is_help=True)


@app.command()
def verify(program: str | None = ProgramOption, database: str | None = DatabaseOption) -> None:
    """Check every ledger invariant; exit 1 naming each violation."""
    report_checks(run_checks, program, database)
