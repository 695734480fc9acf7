"""``kopilka db``: migrations."""

import typer

from kopilka.cli.common import DatabaseOption, console, database_url
from kopilka.migrations.runner import upgrade as run_upgrade

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command()
def upgrade(database: str | None = DatabaseOption) -> None:
    """Bring the database schema up to date (SQLite file or PostgreSQL)."""
    url = database_url(database)
    run_upgrade(url)
    console.print(f"database is up to date: {url}")
