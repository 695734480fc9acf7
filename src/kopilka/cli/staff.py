"""``kopilka staff``: staff accounts (the first owner is made here)."""

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.access.domain import Role
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
from kopilka.staff.schemas import StaffCreate
from kopilka.staff.service import staff_service

app = typer.Typer(help="Staff accounts.", no_args_is_help=True)


@app.command()
def create(
    email: str = typer.Option(..., help="The person's e-mail: their sign-in name."),
    name: str = typer.Option(..., help="Their name, as the audit log shows it."),
    role: Role = typer.Option(Role.OWNER, help="What they may do (docs/crm.md)."),
    store: list[str] = typer.Option([], help="A store they act for (repeat); none: every store."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="12 characters or more."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Create a staff account (the first owner, or anyone, without signing in)."""
    data = StaffCreate(email=email, name=name, role=role, stores=store or None, password=password)

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            staff = await staff_service.create(conn, context.id, data, clock.now())
        console.print(f"{staff.email} ({staff.role}) created: {staff.id}", highlight=False)

    run(with_engine(database_url(database), work))


@app.command("list")
def list_staff(program: str | None = ProgramOption, database: str | None = DatabaseOption) -> None:
    """The program's staff: e-mail, name, role, stores, status, second factor."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            staff = await staff_service.page(conn, context.id, limit=1000, after=None)
        table = Table("e-mail", "name", "role", "stores", "status", "2FA", "last sign-in")
        for s in staff:
            table.add_row(
                s.email,
                s.name,
                s.role,
                ", ".join(s.stores) if s.stores is not None else "all",
                s.status,
                "on" if s.totp_enabled else "off",
                s.last_sign_in_at.isoformat(timespec="minutes") if s.last_sign_in_at else "never",
            )
        console.print(table)

    run(with_engine(database_url(database), work))
