"""``kopilka members``: register and look up members."""

import json
from typing import Any

import typer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.activities.service import activity_service
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
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.ledger.service import ledger_service
from kopilka.members.domain import guess_identifier_kind
from kopilka.members.schemas import MemberCreate, MemberRef
from kopilka.members.service import member_service

app = typer.Typer(help="Members.", no_args_is_help=True)


CONSENT_CHANNELS = ("email", "sms", "push")
# Which option gave each field of the registration, to name it in an error.
OPTIONS = {
    "name": "--name",
    "phone": "--phone",
    "email": "--email",
    "external_id": "--external-id",
    "birthday": "--birthday",
    "language": "--language",
    "consents": "--consent",
    "registered_at": "--registered-at",
}


def registration(fields: dict[str, Any], consent: list[str]) -> MemberCreate:
    """The command's options as the API's registration body, read the way the API reads
    JSON; bad input is one readable line naming the option."""
    unknown = [c for c in consent if c not in CONSENT_CHANNELS]
    if unknown:
        fail(f"--consent: {unknown[0]!r} is not one of {', '.join(CONSENT_CHANNELS)}")
    body = {k: v for k, v in fields.items() if v is not None}
    body["consents"] = {c: True for c in consent}
    try:
        return MemberCreate.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        fail(first_error(exc, OPTIONS))


@app.command()
def add(
    name: str | None = typer.Option(None),
    phone: str | None = typer.Option(None),
    email: str | None = typer.Option(None),
    external_id: str | None = typer.Option(None),
    birthday: str | None = typer.Option(None, help="YYYY-MM-DD"),
    language: str | None = typer.Option(None),
    consent: list[str] = typer.Option([], help="email, sms and/or push"),
    registered_at: str | None = typer.Option(
        None,
        help="When the member registered, for a member brought over from another system: "
        "an ISO datetime with a time zone (2025-03-01T10:00:00+03:00). Default: now.",
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Register a member, run the program's sign-up rules (as the API does) and print it."""
    data = registration(
        {
            "name": name,
            "phone": phone,
            "email": email,
            "external_id": external_id,
            "birthday": birthday,
            "language": language,
            "registered_at": registered_at,
        },
        consent,
    )

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            member = await activity_service.sign_up(conn, context, data, clock.now())
        console.print_json(member.model_dump_json())

    run(with_engine(database_url(database), work))


@app.command()
def show(
    identifier: str = typer.Argument(..., help="Card, phone, e-mail, external id or member id."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Print a member's profile and balances."""
    if not identifier.strip():
        fail("give a card number, phone, e-mail, external id or member id")

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
