"""``kopilka keys``: API keys."""

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.apikeys.service import SCOPES, api_key_service
from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    load_program,
    run,
    with_engine,
)
from kopilka.db import transaction
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
