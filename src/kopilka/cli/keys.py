"""``kopilka keys``: API keys."""

from uuid import UUID

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.apikeys.service import SCOPES, KeyInfo, api_key_service
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

app = typer.Typer(help="API keys.", no_args_is_help=True)


@app.command()
def create(
    scope: list[str] = typer.Option(..., help=f"One or more of: {', '.join(SCOPES)}."),
    name: str = typer.Option("api key", help="What the key is for, e.g. 'till 3'."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Create a key; the secret is printed once and only its hash is stored."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            secret, _ = await api_key_service.create(
                conn, context.id, name=name, scopes=scope, now=clock.now()
            )
        console.print(secret, highlight=False)

    run(with_engine(database_url(database), work))


@app.command("list")
def list_keys(
    revoked: bool = typer.Option(False, "--revoked", help="Also list revoked keys."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The program's keys: id, prefix, name, scopes, created and revoked (never a secret)."""

    async def work(engine: AsyncEngine) -> list[KeyInfo]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await api_key_service.page(
                conn, context.id, limit=1_000_000, include_revoked=revoked
            )

    keys = run(with_engine(database_url(database), work))
    table = Table("id", "prefix", "name", "scopes", "created", "revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.prefix,
            key.name,
            ",".join(key.scopes),
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    console.print(table)


@app.command()
def revoke(
    key: str = typer.Argument(..., help="The key's id, or its prefix (kp_…) as listed."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Revoke a key: it stops working at once, in every process."""
    try:
        target: UUID | str = UUID(key)
    except ValueError:
        target = key

    async def work(engine: AsyncEngine) -> KeyInfo:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            return await api_key_service.revoke(conn, context.id, target, clock.now())

    revoked_key = run(with_engine(database_url(database), work))
    console.print(f"revoked {revoked_key.prefix} ({revoked_key.name}) {revoked_key.id}")
