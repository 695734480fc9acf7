"""``kopilka program``: create and show programs."""

import json
from pathlib import Path

import typer
import yaml
from pydantic import ValidationError
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
from kopilka.db import transaction
from kopilka.programs.schemas import ProgramSettings
from kopilka.programs.service import program_service

app = typer.Typer(help="Loyalty programs.", no_args_is_help=True)


def read_settings(path: Path | None) -> ProgramSettings:
    """Settings from a YAML or JSON file; without one, 1 point per 100 minor units."""
    if path is None:
        return ProgramSettings.model_validate(
            {"earning": [{"id": "base", "type": "per_amount", "points": 1, "per": 100}]}
        )
    try:
        raw = yaml.safe_load(path.read_text())
        return ProgramSettings.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        err_console.print(f"error: cannot read {path}: {exc}")
        raise typer.Exit(1) from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        err_console.print(f"error: {path}: {where}: {first['msg']}")
        raise typer.Exit(1) from exc


@app.command()
def create(
    slug: str = typer.Option(..., help="Short name used by the CLI, e.g. 'coffee'."),
    name: str = typer.Option(..., help="Display name."),
    settings: Path | None = typer.Option(None, help="YAML or JSON settings file."),
    database: str | None = DatabaseOption,
) -> None:
    """Create a program."""
    parsed = read_settings(settings)

    async def work(engine: AsyncEngine) -> None:
        async with transaction(engine) as conn:
            program = await program_service.create(conn, slug=slug, name=name, settings=parsed)
        console.print(f"program {program.slug} created: {program.id}")

    run(with_engine(database_url(database), work))


@app.command()
def show(program: str | None = ProgramOption, database: str | None = DatabaseOption) -> None:
    """Print a program's settings as JSON."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        console.print_json(
            json.dumps(
                {
                    "id": str(context.id),
                    "slug": context.slug,
                    "name": context.name,
                    "settings": context.settings.model_dump(mode="json"),
                }
            )
        )

    run(with_engine(database_url(database), work))
