"""``kopilka import``: bulk imports of purchases (CSV or the CDNOW log format) and of members
brought over from another loyalty system (CSV)."""

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
from kopilka.errors import InvalidInput
from kopilka.imports.domain import ParsedPurchase, RowError, detect_format, parse_cdnow, parse_csv
from kopilka.imports.member_rows import HeaderError, MemberCsv
from kopilka.imports.members import DEFAULT_BATCH as MEMBER_BATCH
from kopilka.imports.members import MemberImportReport, member_import_service
from kopilka.imports.service import DEFAULT_BATCH, ImportReport, import_service
from kopilka.kit.clock import zone_named
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


@app.command()
def members(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row; write nothing."),
    batch_size: int = typer.Option(MEMBER_BATCH, min=1, max=5_000),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Import members brought over from another loyalty system (docs/import-members.md):
    profile, identifiers, consents with their dates, tags, attributes, opening balances
    with their original expiry, and tiers; in batches, with a progress bar.

    Bad rows are reported with their line and column and the good rows are imported (the
    command then exits 1). Running the same file again changes nothing: its members are
    reported as already imported and no balance is granted twice.
    """
    total_rows = max(_count_lines(file) - 1, 0)

    async def work(engine: AsyncEngine) -> tuple[MemberImportReport, float]:
        context = await load_program(engine, program)
        layout = MemberCsv(
            zone=zone_named(context.settings.timezone) or zone_named("UTC"),  # type: ignore[arg-type]
            attributes=context.settings.member_attributes,
        )
        with file.open(encoding="utf-8", newline="") as handle:
            try:
                rows = layout.rows(handle)
            except HeaderError as exc:
                raise InvalidInput(f"{file}: {exc}", field="header") from None
            started = time.perf_counter()
            with Progress(
                TextColumn("checking" if dry_run else "importing"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as bar:
                task = bar.add_task("members", total=total_rows)
                report = await member_import_service.import_file(
                    engine,
                    context,
                    rows,
                    batch_size=batch_size,
                    dry_run=dry_run,
                    progress=lambda n: bar.advance(task, n),
                )
                bar.update(task, completed=total_rows)
        return report, time.perf_counter() - started

    with few_collections():
        report, seconds = run(with_engine(database_url(database), work))
    done = report.created + report.already_imported
    rate = done / seconds if seconds else 0.0
    verb = "would import" if dry_run else "imported"
    console.print(
        f"{verb} {report.created} members, {report.already_imported} already imported, "
        f"{len(report.failed)} failed, in {seconds:.1f} s ({rate:,.0f}/s)"
    )
    for code, amount in sorted(report.credited.items()):
        console.print(f"  opening balances: {amount:,} {code}")
    for code, amount in sorted(report.expired.items()):
        console.print(f"  left out, already expired: {amount:,} {code}")
    console.print(f"  consents recorded: {report.consents:,}; tiers kept: {report.tiers:,}")
    for note in report.notes[:MAX_ERRORS_SHOWN]:
        console.print(f"  {note}", highlight=False)
    if len(report.notes) > MAX_ERRORS_SHOWN:
        console.print(f"  … and {len(report.notes) - MAX_ERRORS_SHOWN} more notes")
    if report.failed:
        err_console.print(f"error: {len(report.failed)} bad rows in {file} (not imported):")
        for error in report.failed[:MAX_ERRORS_SHOWN]:
            err_console.print(f"  {error.message}", highlight=False)
        if len(report.failed) > MAX_ERRORS_SHOWN:
            err_console.print(f"  … and {len(report.failed) - MAX_ERRORS_SHOWN} more")
        sys.exit(1)
