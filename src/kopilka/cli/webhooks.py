"""``kopilka webhooks``: a program's webhook endpoints."""

from uuid import UUID

import typer
from pydantic import ValidationError
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    fail,
    first_error,
    load_program,
    run,
    with_engine,
)
from kopilka.config import get_settings
from kopilka.db import reading, transaction
from kopilka.errors import InvalidInput
from kopilka.kit.clock import clock
from kopilka.webhooks.domain import EndpointRow
from kopilka.webhooks.schemas import WebhookCreate
from kopilka.webhooks.service import webhook_service

app = typer.Typer(help="Webhook endpoints.", no_args_is_help=True)


def _line(endpoint: EndpointRow) -> str:
    state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason or 'by hand'})"
    return f"{endpoint.id} {endpoint.url} [{', '.join(endpoint.event_types)}] {state}"


@app.command("list")
def list_webhooks(
    program: str | None = ProgramOption, database: str | None = DatabaseOption
) -> None:
    """The program's endpoints."""

    async def work(engine: AsyncEngine) -> list[EndpointRow]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await webhook_service.page(conn, context, 10_000, None)

    found = run(with_engine(database_url(database), work))
    if not found:
        console.print("no webhooks")
    for endpoint in found:
        console.print(escape(_line(endpoint)), highlight=False)


@app.command()
def add(
    url: str = typer.Argument(..., help="http:// or https:// URL."),
    event_type: list[str] = typer.Option(
        ["*"], "--event-type", "-e", help="'*', a type or 'prefix.*' (repeat for several)."
    ),
    description: str | None = typer.Option(None),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Add an endpoint; prints its id and signing secret (shown only now)."""
    try:
        body = WebhookCreate(url=url, event_types=event_type, description=description)
    except ValidationError as exc:
        fail(first_error(exc))
    # As the API checks it: https to a public host unless KOPILKA_WEBHOOK_ALLOW_PRIVATE_URLS.
    allow_private = get_settings().webhook_allow_private_urls

    async def work(engine: AsyncEngine) -> EndpointRow:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            return await webhook_service.create(
                conn, context, body, clock.now(), allow_private=allow_private
            )

    endpoint = run(with_engine(database_url(database), work))
    console.print(escape(_line(endpoint)), highlight=False)
    console.print(f"secret: {endpoint.secret}", highlight=False)


@app.command()
def remove(
    webhook_id: str = typer.Argument(..., help="The endpoint's id."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Delete an endpoint and its delivery log."""

    async def work(engine: AsyncEngine) -> None:
        try:
            endpoint_id = UUID(webhook_id)
        except ValueError:
            raise InvalidInput(f"{webhook_id!r} is not a webhook id", field="webhook_id") from None
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            await webhook_service.delete(conn, context, endpoint_id)

    run(with_engine(database_url(database), work))
    console.print(f"removed {webhook_id}")
