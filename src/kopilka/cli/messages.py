"""``kopilka messages``: a program's messages — list, one with its history, send again,
a test send, counts by status."""

from uuid import UUID

import typer
from rich.markup import escape
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.cli.common import (
    DatabaseOption,
    ProgramOption,
    console,
    database_url,
    fail,
    load_program,
    run,
    with_engine,
)
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.messaging.delivery import delivery_service
from kopilka.messaging.domain import Channel
from kopilka.messaging.records import MessageRow, StatusRow
from kopilka.messaging.service import messaging_service
from kopilka.messaging.templates import template_service

app = typer.Typer(help="Messages to members.", no_args_is_help=True)
STATUSES = ("queued", "sent", "delivered", "failed", "bounced", "skipped", "clicked")


def _id(value: str | None, what: str) -> UUID | None:
    """An id given on the command line, or one line saying it is not one."""
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        fail(f"{value!r} is not a {what} id")


def _line(message: MessageRow) -> str:
    to = message.to_address if message.channel != Channel.PUSH else "push"
    why = f" ({message.error})" if message.error else ""
    return (
        f"{message.id} {message.created_at:%Y-%m-%d %H:%M} {message.kind} {message.channel} "
        f"{to or '-'} {message.status}{why}"
    )


@app.command("list")
def list_messages(
    member: str | None = typer.Option(None, help="Only this member's (id)."),
    status: str | None = typer.Option(None, help=f"One of {', '.join(STATUSES)}."),
    limit: int = typer.Option(50, min=1, max=1000),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The newest messages."""
    if status is not None and status not in STATUSES:
        fail(f"--status: {status!r} is not one of {', '.join(STATUSES)}")
    member_id = _id(member, "member")

    async def work(engine: AsyncEngine) -> list[MessageRow]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await messaging_service.page(
                conn, context, limit=limit, before=None, member_id=member_id, status=status
            )

    found = run(with_engine(database_url(database), work))
    if not found:
        console.print("no messages")
    for message in found:
        console.print(escape(_line(message)), highlight=False)


@app.command()
def status(
    message: str = typer.Argument(..., help="The message's id."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """One message and every status it took."""
    message_id = _id(message, "message")
    assert message_id is not None

    async def work(engine: AsyncEngine) -> tuple[MessageRow, list[StatusRow]]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await messaging_service.get(conn, context, message_id)

    found, history = run(with_engine(database_url(database), work))
    console.print(escape(_line(found)), highlight=False)
    if found.subject:
        console.print(escape(f"subject: {found.subject}"), highlight=False)
    for step in history:
        detail = f": {step.detail}" if step.detail else ""
        console.print(
            escape(f"  {step.at:%Y-%m-%d %H:%M:%S} {step.status}{detail}"), highlight=False
        )


@app.command()
def retry(
    message: str = typer.Argument(..., help="A failed message's id."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Send a failed message again (the worker sends it)."""
    message_id = _id(message, "message")
    assert message_id is not None

    async def work(engine: AsyncEngine) -> MessageRow:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            return await delivery_service.retry(conn, context, message_id, clock.now())

    console.print(escape(_line(run(with_engine(database_url(database), work)))), highlight=False)


@app.command()
def test(
    kind: str = typer.Argument(..., help="The message kind (points_earned, birthday …)."),
    channel: Channel = typer.Option(Channel.EMAIL, help="email, sms, push or inbox."),
    to: str | None = typer.Option(None, help="An e-mail address or a phone (+79161234567)."),
    member: str | None = typer.Option(None, help="Or a member (id), with their data."),
    language: str | None = typer.Option(None, help="ru or en; default the member's."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Queue a test message of KIND (the worker sends it)."""
    if (to is None) == (member is None):
        fail("give either --to or --member")
    if language is not None and language not in ("ru", "en"):
        fail(f"--language: {language!r} is not ru or en")
    member_id = _id(member, "member")

    async def work(engine: AsyncEngine) -> MessageRow:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            return await template_service.test(
                conn,
                context,
                kind,
                channel=channel,
                to=to,
                member_id=member_id,
                language=language,
                variables={},
                now=clock.now(),
            )

    console.print(escape(_line(run(with_engine(database_url(database), work)))), highlight=False)


@app.command()
def counts(program: str | None = ProgramOption, database: str | None = DatabaseOption) -> None:
    """Messages by status."""

    async def work(engine: AsyncEngine) -> dict[str, int]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await messaging_service.counts(conn, context)

    found = run(with_engine(database_url(database), work))
    if not found:
        console.print("no messages")
    for name, count in sorted(found.items()):
        console.print(f"{name}: {count}")
