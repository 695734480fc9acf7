"""``kopilka members``: register and look up members."""

import json
from datetime import date

import typer
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
from kopilka.ledger.service import ledger_service
from kopilka.members.domain import guess_identifier_kind
from kopilka.members.schemas import Consents, MemberCreate, MemberRef
from kopilka.members.service import member_service

app = typer.Typer(help="Members.", no_args_is_help=True)


@app.command()
def add(
    name: str | None = typer.Option(None),
    phone: str | None = typer.Option(None),
    email: str | None = typer.Option(None),
    external_id: str | None = typer.Option(None),
    birthday: str | None = typer.Option(None, help="YYYY-MM-DD"),
    language: str | None = typer.Option(None),
    consent: list[str] = typer.Option([], help="email, sms and/or push"),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Register a member and print it."""
    try:
        born = date.fromisoformat(birthday) if birthday else None
        consents = Consents.model_validate({c: True for c in consent})
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    data = MemberCreate(
        name=name,
        phone=phone,
        email=email,
        external_id=external_id,
        birthday=born,
        language=language,
        consents=consents,
    )

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            member = await member_service.register(conn, context, data, clock.now())
        console.print_json(member.model_dump_json())

    run(with_engine(database_url(database), work))


@app.command()
def show(
    identifier: str = typer.Argument(..., help="Card, phone, e-mail, external id or member id."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Print a member's profile and balances."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            try:
                ref = MemberRef.model_validate({"id": identifier})
            except ValueError:
                ref = MemberRef.model_validate({guess_identifier_kind(identifier): identifier})
            member_id, _ = await member_service.resolve(conn, context, ref)
            member = await member_service.get(conn, context, member_id)
            balances = await ledger_service.balances(conn, context, member_id)
        body = member.model_dump(mode="json")
        body["balances"] = {c: vars(b) for c, b in balances.items()}
        console.print_json(json.dumps(body))

    run(with_engine(database_url(database), work))
