"""``kopilka import``: bulk import of purchases (CSV or the CDNOW log format)."""

import sys
import time
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
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
from kopilka.imports.domain import ParsedPurchase, RowError, detect_format, parse_cdnow, parse_csv
from kopilka.imports.service import DEFAULT_BATCH, ImportReport, import_service
from kopilka.kit.memory import few_collections

app = typer.Typer(help="Bulk imports.", no_args_is_help=True)
MAX_ERRORS_SHOWN = 20


def _rows(path: Path, fmt: str, currency: str | None) -> Iterator[ParsedPurchase | RowError]:
    handle = path.open(encoding="utf-8", newline="")
    first = handle.readline()
    kind = detect_format(first) if fmt == "auto" else fmt
    lines = chain([first], handle)
    if kind == "cdnow":
        return parse_cdnow(lines, currency=currency or "USD")
    return parse_csv(lines, default_currency=currency or "RUB")


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def _first_pass_errors(path: Path, fmt: str, currency: str | None) -> list[RowError]:
    return [row for row in _rows(path, fmt, currency) if isinstance(row, RowError)]


def _print_errors(errors: list[RowError]) -> None:
    for error in errors[:MAX_ERRORS_SHOWN]:
        err_console.print(f"  {error.message}", highlight=False)
    if len(errors) > MAX_ERRORS_SHOWN:
        err_console.print(f"  … and {len(errors) - MAX_ERRORS_SHOWN} more")


@app.command()
def purchases(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    fmt: str = typer.Option("auto", "--format", help="auto, csv or cdnow."),
    currency: str | None = typer.Option(None, help="Money currency (default: the program's)."),
    create_members: bool = typer.Option(True, help="Register unknown members by external id."),
    skip_bad: bool = typer.Option(False, help="Import the good rows even if some are bad."),
    batch_size: int = typer.Option(DEFAULT_BATCH, min=1, max=20_000),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Import purchases through the engine, in batches, with a progress bar.

    Bad rows are reported with their line numbers. Without --skip-bad, a file with bad rows
    imports nothing. Importing the same file again records nothing twice.
    """
    if fmt not in ("auto", "csv", "cdnow"):
        raise typer.BadParameter("--format must be auto, csv or cdnow")
    bad = _first_pass_errors(file, fmt, currency)
    if bad and not skip_bad:
        err_console.print(
            f"error: {len(bad)} bad rows in {file}; nothing imported (fix them or pass --skip-bad):"
        )
        _print_errors(bad)
        sys.exit(1)
    total_lines = _count_lines(file)

    async def work(engine: AsyncEngine) -> tuple[ImportReport, float]:
        context = await load_program(engine, program)
        money = currency or context.settings.money_currency
        started = time.perf_counter()
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("import", total=total_lines)
            report = await import_service.import_purchases(
                engine,
                context,
                _rows(file, fmt, money),
                create_members=create_members,
                batch_size=batch_size,
                progress=lambda n: bar.advance(task, n),
            )
            bar.update(task, completed=total_lines)
        return report, time.perf_counter() - started

    with few_collections():
        report, seconds = run(with_engine(database_url(database), work))
    rate = report.imported / seconds if seconds else 0.0
    console.print(
        f"imported {report.imported} purchases, {report.already_there} already there, "
        f"{len(report.failed)} failed, in {seconds:.1f} s ({rate:,.0f}/s)"
    )
    for code, amount in sorted(report.earned.items()):
        console.print(f"  earned {amount:,} {code}")
    if report.failed:
        _print_errors(report.failed)
        sys.exit(1 if not skip_bad else 0)
