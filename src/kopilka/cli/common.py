"""What every command shares: the engine, the program, error reporting, the console."""

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kopilka.config import get_settings, with_async_driver
from kopilka.db import make_engine, reading
from kopilka.errors import KopilkaError
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


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; a domain error becomes one readable line and exit code 1."""
    _fast_event_loop()
    try:
        return asyncio.run(coroutine)
    except KopilkaError as exc:
        # One line however long: scripts and people read the error as one line.
        err_console.print(
            f"[red]error:[/red] {escape(exc.detail)}", highlight=False, soft_wrap=True
        )
        sys.exit(1)


async def with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = make_engine(url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


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
