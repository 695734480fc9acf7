"""``kopilka db``: migrations."""

import typer
from alembic.util import CommandError
from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError

from kopilka.cli.common import DatabaseOption, console, database_url, fail
from kopilka.db import describe, sqlite_file
from kopilka.migrations.runner import upgrade as run_upgrade

app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@app.command()
def upgrade(database: str | None = DatabaseOption) -> None:
    """Bring the database schema up to date (SQLite file or PostgreSQL); creates a SQLite
    file that does not exist yet."""
    url = database_url(database)
    path = sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        fail(f"cannot create the database at {describe(url)}: there is no folder {path.parent}")
    try:
        run_upgrade(url)
    except (DBAPIError, OSError, CommandError) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        lines = str(reason).strip().splitlines() or [type(reason).__name__]
        fail(f"cannot upgrade the database at {describe(url)}: {lines[0]}")
    shown = make_url(url).render_as_string(hide_password=True)
    console.print(f"database is up to date: {shown}", soft_wrap=True, highlight=False)
