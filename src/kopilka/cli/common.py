"""What every command shares: the engine, the program, error reporting, the console."""

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, time
from typing import Any, NoReturn, TypeVar
from uuid import UUID

import typer
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.audit.domain import Actor, acting
from kopilka.config import get_settings, with_async_driver
from kopilka.db import describe, make_engine, reading, schema_revision, sqlite_file
from kopilka.errors import KopilkaError
from kopilka.migrations.runner import MIGRATIONS
from kopilka.programs.service import ProgramContext, program_service

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


def database_url(override: str | None) -> str:
    return with_async_driver(override) if override else get_settings().database_url


def _fast_event_loop() -> None:
    """Use uvloop where it is installed: asyncpg and the import path run noticeably faster."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def fail(message: str) -> NoReturn:
    """Print ``error: message`` as one line however long (scripts and people read an error
    as one line) and exit with code 1."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(1)


def first_error(exc: ValidationError, options: dict[str, str] | None = None) -> str:
    """A validation error as one line naming the field (or the command-line option that gave
    it, from ``options``: field → option)."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    top = str(error["loc"][0]) if error["loc"] else ""
    return f"{(options or {}).get(top, field)}: {message}"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a domain error or invalid input becomes one readable line
    and exit code 1."""
    _fast_event_loop()
    # What a command changes is audited as done at the command line, by this user.
    acting.set(Actor.command_line())
    try:
        return asyncio.run(coroutine)
    except KopilkaError as exc:
        fail(exc.detail)
    except ValidationError as exc:
        fail(first_error(exc))


class DatabaseNotReady(KopilkaError):
    """The database is missing, unreadable, or its schema is not this version's."""


async def with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``work`` on an engine for ``url`` once the database is known to carry this
    version's schema; a missing SQLite file is reported, never created."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise DatabaseNotReady(
            f"there is no database at {describe(url)}: run `kopilka db upgrade` first to create it "
            "(or point KOPILKA_DATABASE_URL or --database-url at yours)"
        )
    if path is not None and path.is_dir():
        raise DatabaseNotReady(f"{describe(url)} is a folder, not a database file")
    try:
        engine = make_engine(url)
    except ArgumentError as exc:
        # An unknown scheme or driver: say so in one line instead of SQLAlchemy's trace.
        raise DatabaseNotReady(
            f"{describe(url)} is not a database URL Kopilka can use: {str(exc).splitlines()[0]}"
            " (sqlite+aiosqlite:///file.db or postgresql+asyncpg://user@host/db)"
        ) from None
    try:
        await ensure_current_schema(engine, describe(url))
        return await work(engine)
    finally:
        await engine.dispose()


async def ensure_current_schema(engine: AsyncEngine, where: str) -> None:
    """Raise :class:`DatabaseNotReady`, with what to do, unless the database's Alembic
    revision is this version's head: an unmigrated database would otherwise fail deep inside
    a command with "no such table"."""
    try:
        revision = await schema_revision(engine)
    except (DBAPIError, OSError) as exc:
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        lines = str(reason).strip().splitlines() or [type(reason).__name__]
        raise DatabaseNotReady(f"cannot open the database at {where}: {lines[0]}") from exc
    if revision is None:
        raise DatabaseNotReady(
            f"the database at {where} has no Kopilka schema: run `kopilka db upgrade` first"
        )
    script = ScriptDirectory(str(MIGRATIONS))
    heads = script.get_heads()
    if revision in heads:
        return
    if revision in {s.revision for s in script.walk_revisions()}:
        raise DatabaseNotReady(
            f"the database at {where} has an out-of-date Kopilka schema (revision {revision}, "
            f"this version needs {', '.join(heads)}): run `kopilka db upgrade` first"
        )
    raise DatabaseNotReady(
        f"the database at {where} has schema revision {revision!r}, which this version of "
        "Kopilka does not know: it was upgraded by a newer Kopilka"
    )


async def load_program(engine: AsyncEngine, slug: str | None) -> ProgramContext:
    async with reading(engine) as conn:
        return await program_service.get_by_slug(conn, slug)


def parse_as_of(value: str | None) -> datetime:
    """A date (end of that day, UTC) or an ISO datetime; now if not given."""
    if value is None:
        return datetime.now(UTC)
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO datetime") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


ProgramOption = typer.Option(None, "--program", "-p", help="Program slug (default: the only one).")
DatabaseOption = typer.Option(None, "--database-url", help="Overrides KOPILKA_DATABASE_URL.")


Checks = Callable[[AsyncConnection, UUID], Awaitable[dict[str, list[str]]]]


def report_checks(checks: Checks, program: str | None, database: str | None) -> None:
    """Run a verification's ``checks`` on one program in a snapshot; print ``ok`` or ``FAIL``
    with each violation per check, and exit 1 if any failed."""

    async def work(engine: AsyncEngine) -> dict[str, list[str]]:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await checks(conn, context.id)

    results = run(with_engine(database_url(database), work))
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
