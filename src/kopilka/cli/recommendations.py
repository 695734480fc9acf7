"""``kopilka recommendations``: build the item-to-item model, show a member's items."""

from uuid import UUID

import typer
from rich.table import Table
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
from kopilka.db import reading
from kopilka.kit.clock import clock
from kopilka.recommendations.schemas import BuildOut, MemberRecommendations
from kopilka.recommendations.service import MAX_LIMIT, recommendation_service
from kopilka.recommendations.tasks import build_line, build_program

app = typer.Typer(help="Recommendations: build the model, show a member's.", no_args_is_help=True)


@app.command("build")
def build(
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Build the item-to-item model from the program's purchases up to now and replace the
    stored one (the worker's daily ``recommendations-build`` job does the same)."""

    async def work(engine: AsyncEngine) -> BuildOut:
        context = await load_program(engine, program)
        return await build_program(engine, context.id, clock.now())

    console.print(build_line(run(with_engine(database_url(database), work))))


@app.command("show")
def show(
    member_id: str = typer.Argument(..., help="The member's id."),
    limit: int = typer.Option(10, "--limit", help=f"At most this many items (1–{MAX_LIMIT})."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """A member's recommendations with their reasons."""
    try:
        member = UUID(member_id)
    except ValueError:
        fail(f"{member_id!r} is not a member id")
    if not 1 <= limit <= MAX_LIMIT:
        fail(f"--limit must be between 1 and {MAX_LIMIT}")

    async def work(engine: AsyncEngine) -> MemberRecommendations:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await recommendation_service.for_member(
                conn, context, member, clock.now(), limit
            )

    found = run(with_engine(database_url(database), work))
    table = Table("sku", "name", "reason", "score", "why")
    for r in found.items:
        why = ", ".join(r.related) if r.related else (r.category or "")
        if r.usual_days is not None:
            why = f"every {r.usual_days} d, last {r.days_since} d ago"
        table.add_row(r.sku, r.name or "", r.reason.value, f"{r.score:.3f}", why)
    console.print(table)
