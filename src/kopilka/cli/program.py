"""``kopilka program``: create programs, show, validate and publish their documents, list
their versions and roll back."""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
import yaml
from rich.markup import escape
from rich.table import Table
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
from kopilka.db import reading, transaction
from kopilka.errors import InvalidInput
from kopilka.kit.clock import clock
from kopilka.programs.domain import parse_document
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import program_service
from kopilka.programs.version_schemas import Version
from kopilka.purchases.simulation import simulate_draft

app = typer.Typer(help="Loyalty programs and their versioned documents.", no_args_is_help=True)

DEFAULT_SETTINGS: dict[str, Any] = {
    "earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}]
}
FileArgument = typer.Argument(..., help="The program document, YAML or JSON.")
NoteOption = typer.Option(None, "--note", help="Why this version exists (up to 500 chars).")


def fail(message: str) -> NoReturn:
    """Exit 1 with one readable line on stderr."""
    err_console.print(f"error: {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(1)


def read_document(path: Path) -> Any:
    """The document in a JSON (``.json``) or YAML file, not yet validated."""
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        fail(f"cannot read {path}: {' '.join(str(exc).split())}")


def read_settings(path: Path | None) -> ProgramSettings:
    """Settings from a YAML or JSON file; without one, 1 point per 100 minor units."""
    raw = DEFAULT_SETTINGS if path is None else read_document(path)
    try:
        return parse_document(raw)
    except InvalidInput as exc:
        fail(f"{path}: {exc.detail}")


@app.command()
def create(
    slug: str = typer.Option(..., help="Short name used by the CLI, e.g. 'coffee'."),
    name: str = typer.Option(..., help="Display name."),
    settings: Path | None = typer.Option(None, help="YAML or JSON settings file."),
    database: str | None = DatabaseOption,
) -> None:
    """Create a program; its settings become published version 1."""
    parsed = read_settings(settings)

    async def work(engine: AsyncEngine) -> None:
        async with transaction(engine) as conn:
            program = await program_service.create(conn, slug=slug, name=name, settings=parsed)
        console.print(f"program {program.slug} created: {program.id}")

    run(with_engine(database_url(database), work))


@app.command()
def show(
    program: str | None = ProgramOption,
    version: int | None = typer.Option(
        None, "--version", min=1, help="A published version (default: the one in force)."
    ),
    database: str | None = DatabaseOption,
) -> None:
    """Print a program's settings document, and which version it is, as JSON."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            shown = await program_service.version(conn, context.id, version or context.version)
        body = {
            "id": str(context.id),
            "slug": context.slug,
            "name": context.name,
            "version": shown.version,
            "in_force": shown.version == context.version,
            "published_at": shown.published_at.isoformat(),
            "note": shown.note,
            "settings": shown.document,
        }
        console.print_json(json.dumps(body))

    run(with_engine(database_url(database), work))


@app.command()
def validate(file: Path = FileArgument) -> None:
    """Check a program document without a database: prints "valid" or the field at fault."""
    read_settings(file)
    console.print("valid")


@app.command()
def publish(
    file: Path = FileArgument,
    program: str | None = ProgramOption,
    note: str | None = NoteOption,
    database: str | None = DatabaseOption,
) -> None:
    """Store FILE as the draft (replacing any draft) and publish it; prints the new version
    number."""
    document = read_settings(file).model_dump(mode="json")

    async def work(engine: AsyncEngine) -> Version:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            now = clock.now()
            await program_service.put_draft(conn, context.id, document, now)
            return await program_service.publish(conn, context.id, now, note)

    published = run(with_engine(database_url(database), work))
    console.print(f"published version {published.version}")


@app.command()
def versions(
    program: str | None = ProgramOption,
    limit: int = typer.Option(50, min=1, max=500, help="How many, newest first."),
    database: str | None = DatabaseOption,
) -> None:
    """List a program's published versions, newest first."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            items = await program_service.versions(conn, context.id, limit=limit)
        table = Table("version", "published at (UTC)", "note", title=f"program {context.slug}")
        for item in items:
            marker = " (in force)" if item.version == context.version else ""
            table.add_row(f"{item.version}{marker}", _when(item.published_at), item.note or "")
        console.print(table)

    run(with_engine(database_url(database), work))


@app.command()
def rollback(
    version: int = typer.Argument(..., min=1, help="The earlier version to put back in force."),
    program: str | None = ProgramOption,
    note: str | None = NoteOption,
    database: str | None = DatabaseOption,
) -> None:
    """Publish an earlier version's document again, as a new version."""

    async def work(engine: AsyncEngine) -> Version:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            return await program_service.rollback(conn, context.id, version, clock.now(), note)

    published = run(with_engine(database_url(database), work))
    console.print(f"published version {published.version} ({escape(published.note or '')})")


@app.command()
def simulate(
    file: Path | None = typer.Argument(None, help="The draft document; default: the stored draft."),
    since: datetime | None = typer.Option(
        None, "--since", help="Replay from this date (YYYY-MM-DD); default: --days back."
    ),
    days: int = typer.Option(90, "--days", min=1, max=3660, help="Days to replay."),
    program: str | None = ProgramOption,
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    database: str | None = DatabaseOption,
) -> None:
    """Replay stored purchases under a draft next to the version in force; writes nothing."""
    document = None if file is None else read_settings(file).model_dump(mode="json")
    start = None if since is None else since.replace(tzinfo=since.tzinfo or UTC)

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await simulate_draft(conn, context, document, start, days, clock.now())

    report = run(with_engine(database_url(database), work))
    if as_json:
        console.print_json(json.dumps(report))
        return
    _print_simulation(report)


def _print_simulation(report: dict[str, Any]) -> None:
    table = Table(title=f"Draft vs version {report['version_in_force']}: per rule")
    for column in ("rule", "currency", "published", "draft", "fired", "members"):
        table.add_column(column, justify="left" if column in ("rule", "currency") else "right")
    for rule in report["rules"]:
        for currency in rule["draft"] or {"—": 0}:
            table.add_row(
                rule["rule_id"],
                currency,
                f"{rule['published'].get(currency, 0):,}",
                f"{rule['draft'].get(currency, 0):,}",
                f"{rule['fired_published']:,} → {rule['fired_draft']:,}",
                f"{rule['members_published']:,} → {rule['members_draft']:,}",
            )
    console.print(table)
    for total in report["totals"]:
        console.print(
            f"{total['currency']}: {total['published']:,} → {total['draft']:,} "
            f"(liability change {total['liability_change']:+,})"
        )
    console.print(
        f"{report['purchases']:,} purchases since {report['since'][:10]} replayed in "
        f"{report['seconds']} s; members affected: {report['members_affected']:,}"
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
