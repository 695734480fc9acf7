"""``kopilka stores``: Stores."""

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    err_console,
    fail,
    load_program,
    run,
    with_engine,
)
from kopilka.db import reading, transaction
from kopilka.errors import InvalidInput
from kopilka.kit.clock import clock
from kopilka.stores.rows import parse_csv
from kopilka.stores.schemas import ImportResult, Store
from kopilka.stores.service import store_service

app = typer.Typer(help="Stores: import from CSV, list.", no_args_is_help=True)
CHUNK = 1000  # rows per service call: the progress bar moves between them
SHOWN_ERRORS = 50


def _print_errors(errors: list[str]) -> None:
    for error in errors[:SHOWN_ERRORS]:
        err_console.print(f"  {error}", highlight=False, soft_wrap=True)
    if len(errors) > SHOWN_ERRORS:
        err_console.print(f"  … and {len(errors) - SHOWN_ERRORS} more", highlight=False)


def _refused(file: Path, exc: InvalidInput) -> None:
    errors = exc.extra.get("errors", [])
    count = exc.extra.get("error_count", len(errors))
    err_console.print(f"{count} bad lines in {file}; nothing imported:", highlight=False)
    _print_errors(
        [
            f"line {e['line']}"
            + (f": {e['column']}" if e.get("column") else "")
            + f": {e['message']}"
            for e in errors
        ]
    )


@app.command("import")
def import_stores(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="A CSV file of stores (UTF-8)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; write nothing."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Create or change stores by code from a CSV file, all or nothing: any bad line
    refuses the file (every bad line is listed). Columns: code, name, address, region,
    latitude, longitude, timezone, hours, special_hours, tags, phone, status (code and name
    required; see docs/stores.md). Importing the same file again changes nothing."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{file} is not UTF-8 text: {exc.reason} at byte {exc.start}")
    found = parse_csv(text)
    if found.errors:
        err_console.print(
            f"{len(found.errors)} bad lines in {file}; nothing imported:", highlight=False
        )
        _print_errors([str(e) for e in found.errors])
        fail(f"{file} refused: fix the lines above")

    async def work(engine: AsyncEngine) -> ImportResult:
        context = await load_program(engine, program)
        now = clock.now()
        total = ImportResult(created=0, updated=0, unchanged=0, dry_run=dry_run, rows=[])
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task("stores", total=len(found.rows))
            # One transaction for the file. Every row is checked first (so that every bad
            # line is reported), then written chunk by chunk.
            async with transaction(engine) as conn:
                try:
                    await store_service.import_rows(
                        conn,
                        context,
                        [(r.line, r.values) for r in found.rows],
                        now,
                        numbering="line",
                        dry_run=True,
                    )
                except InvalidInput as exc:
                    bar.stop()
                    _refused(file, exc)
                    raise
                for start in range(0, len(found.rows), CHUNK):
                    chunk = found.rows[start : start + CHUNK]
                    done = await store_service.import_rows(
                        conn,
                        context,
                        [(r.line, r.values) for r in chunk],
                        now,
                        numbering="line",
                        dry_run=dry_run,
                    )
                    total.created += done.created
                    total.updated += done.updated
                    total.unchanged += done.unchanged
                    bar.advance(task, len(chunk))
        return total

    result = run(with_engine(database_url(database), work))
    verb = "would be" if dry_run else "were"
    console.print(
        f"{file.name}: {result.created} stores {verb} created, {result.updated} updated, "
        f"{result.unchanged} unchanged",
        highlight=False,
    )


@app.command("list")
def list_stores(
    region: str | None = typer.Option(None, help="Only stores of this region."),
    tag: str | None = typer.Option(None, help="Only stores with this tag."),
    status: str | None = typer.Option(None, help="open or closed."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The program's stores in code order."""
    if status not in (None, "open", "closed"):
        raise typer.BadParameter("--status must be open or closed")

    async def work(engine: AsyncEngine) -> list[Store]:
        context = await load_program(engine, program)
        stores: list[Store] = []
        after: str | None = None
        async with reading(engine) as conn:
            while True:
                page = await store_service.page(
                    conn,
                    context,
                    clock.now(),
                    limit=1000,
                    after=after,
                    region=region,
                    tag=tag,
                    status=status,
                )
                stores.extend(page.items)
                if page.next_cursor is None:
                    return stores
                after = page.next_cursor

    stores = run(with_engine(database_url(database), work))
    table = Table("code", "name", "region", "status", "open now", "lat, lon", "time zone", "tags")
    for store in stores:
        where = (
            f"{store.latitude:.6f}, {store.longitude:.6f}"
            if store.latitude is not None and store.longitude is not None
            else ""
        )
        open_now = {True: "yes", False: "no", None: "?"}[store.open_now]
        table.add_row(
            store.code,
            store.name,
            store.region or "",
            store.status,
            open_now,
            where,
            store.timezone,
            ",".join(store.tags),
        )
    console.print(table)
    console.print(f"{len(stores)} stores", highlight=False)
