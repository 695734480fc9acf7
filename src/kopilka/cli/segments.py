"""``kopilka segments``: Segments."""

import csv
import sys
from pathlib import Path
from uuid import UUID

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
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.kit.csvcells import safe_cell
from kopilka.segments.schemas import CountResult, RefreshResult, SegmentOut
from kopilka.segments.service import segment_service

app = typer.Typer(help="Segments: count, refresh, export.", no_args_is_help=True)
EXPORT_PAGE = 5000


@app.command("list")
def list_segments(
    archived: bool = typer.Option(False, help="Archived segments too."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The program's segments with their kept member counts."""

    async def work(engine: AsyncEngine) -> list[SegmentOut]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await segment_service.listing(conn, context, archived=archived, limit=10_000)

    items = run(with_engine(database_url(database), work))
    table = Table("key", "name", "kind", "members", "version", "refreshed")
    for s in items:
        refreshed = s.refreshed_at.isoformat(timespec="seconds") if s.refreshed_at else "-"
        table.add_row(s.key, s.name, s.kind.value, str(s.members), str(s.version), refreshed)
    console.print(table)


@app.command()
def count(
    key: str,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Count a segment's members now (a dynamic one from its definition)."""

    async def work(engine: AsyncEngine) -> CountResult:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await segment_service.count(conn, context, key, clock.now())

    console.print(str(run(with_engine(database_url(database), work)).count))


@app.command()
def refresh(
    key: str | None = typer.Argument(None, help="The segment (default: every dynamic one)."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Re-evaluate dynamic segments for every member; entered/left events for changes."""

    async def work(engine: AsyncEngine) -> list[RefreshResult]:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            if key is None:
                return await segment_service.refresh_all(conn, context, clock.now())
            return [await segment_service.refresh(conn, context, key, clock.now())]

    for result in run(with_engine(database_url(database), work)):
        console.print(
            f"{result.key}: {result.entered} entered, {result.left} left, {result.members} members"
        )


@app.command()
def export(
    key: str,
    output: Path | None = typer.Option(None, "--output", "-o", help="CSV file (default: stdout)."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Every member of a segment as CSV (member_id, name)."""

    async def work(engine: AsyncEngine) -> list[tuple[UUID, str | None]]:
        context = await load_program(engine, program)
        rows: list[tuple[UUID, str | None]] = []
        after: UUID | None = None
        async with reading(engine) as conn:
            while True:
                page = await segment_service.members(
                    conn, context, key, after, EXPORT_PAGE, clock.now()
                )
                rows += [(i.member_id, i.name) for i in page.items]
                if page.next_cursor is None:
                    return rows
                after = page.items[-1].member_id

    rows = run(with_engine(database_url(database), work))
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(["member_id", "name"])
        for member_id, name in rows:
            writer.writerow([str(member_id), safe_cell(name or "")])
    finally:
        if output:
            handle.close()
    if output:
        console.print(f"{len(rows)} members written to {output}")
