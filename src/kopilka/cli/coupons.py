"""``kopilka coupons``: campaigns from a file, codes generated to a file, codes exported."""

import csv
from pathlib import Path
from typing import Any

import typer
import yaml
from pydantic import ValidationError
from rich.table import Table
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
from kopilka.coupons.schemas import CampaignCreate, CampaignUpdate, CodesCreate
from kopilka.coupons.service import coupon_service
from kopilka.db import reading, transaction
from kopilka.errors import InvalidInput, NotFound
from kopilka.kit.clock import clock

app = typer.Typer(help="Coupon campaigns and codes.", no_args_is_help=True)
PAGE = 1000
EXPORTED = ("code", "campaign", "member_id", "uses", "max_uses", "status", "valid_until")


def _campaigns_in(path: Path) -> list[CampaignCreate]:
    """Every campaign of a YAML or JSON file (one campaign or a list), all validated first."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    campaigns = []
    for index, item in enumerate(items):
        try:
            campaigns.append(CampaignCreate.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidInput(f"{path}: campaign {index + 1}: {where}: {first['msg']}") from exc
    return campaigns


@app.command("load")
def load(
    path: Path = typer.Argument(..., help="YAML or JSON: a campaign or a list of campaigns."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Create the file's campaigns; a campaign that exists gets the fields a campaign may
    change (name, window, limits, stacking, status). All or nothing."""
    campaigns = run(_loaded(path))  # a bad file is one readable line, before any write

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        created = updated = 0
        async with transaction(engine) as conn:
            for campaign in campaigns:
                now = clock.now()
                try:
                    await coupon_service.campaign(conn, context, campaign.key)
                except NotFound:
                    await coupon_service.create_campaign(conn, context, campaign, now)
                    created += 1
                    continue
                change = CampaignUpdate.model_validate(
                    campaign.model_dump(include=set(CampaignUpdate.model_fields))
                )
                await coupon_service.update_campaign(conn, context, campaign.key, change, now)
                updated += 1
        console.print(f"{created} campaigns created, {updated} updated")

    run(with_engine(database_url(database), work))


async def _loaded(path: Path) -> list[CampaignCreate]:
    return _campaigns_in(path)


@app.command("list")
def list_campaigns(
    program: str | None = ProgramOption, database: str | None = DatabaseOption
) -> None:
    """The program's campaigns with their codes and uses."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            campaigns = await coupon_service.campaigns(conn, context)
        table = Table("key", "name", "discount", "status", "codes", "redeemed")
        for c in campaigns:
            discount = c["discount"]
            table.add_row(
                c["key"],
                c["name"],
                f"{discount['kind']} {discount['value'] or discount['free_sku'] or ''}".strip(),
                c["status"],
                str(c["codes"]),
                str(c["redeemed"]),
            )
        console.print(table)

    run(with_engine(database_url(database), work))


@app.command()
def generate(
    campaign: str = typer.Argument(..., help="The campaign's key."),
    count: int = typer.Option(..., min=1, max=1_000_000, help="How many codes."),
    pattern: str | None = typer.Option(
        None, help="'#' is a random character; default the campaign's."
    ),
    out: Path | None = typer.Option(None, help="Write the new codes here, one per line."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Generate unique codes for a campaign (all or nothing)."""

    async def work(engine: AsyncEngine) -> dict[str, Any]:
        context = await load_program(engine, program)
        body = CodesCreate(count=count, pattern=pattern)
        async with transaction(engine) as conn:
            return await coupon_service.add_codes(
                conn, context, campaign, body, clock.now(), answer_limit=None
            )

    made = run(with_engine(database_url(database), work))
    if out is not None:
        out.write_text("".join(f"{code}\n" for code in made["codes"]), encoding="utf-8")
    console.print(f"{made['created']} codes created for {campaign}")


@app.command()
def export(
    campaign: str = typer.Argument(..., help="The campaign's key."),
    out: Path = typer.Option(..., help="CSV file: code, campaign, member, uses, status …"),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Every code of a campaign, oldest first, as CSV (for printing or a mailing)."""

    async def work(engine: AsyncEngine) -> None:
        context = await load_program(engine, program)
        written = await _export(engine, context, campaign, out)
        console.print(f"{written} codes written to {out}")

    run(with_engine(database_url(database), work))


async def _export(engine: AsyncEngine, context: Any, campaign: str, out: Path) -> int:
    """Write the campaign's codes page by page, so memory stays flat however many."""
    written = 0
    after = None
    async with reading(engine) as conn:
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=EXPORTED, extrasaction="ignore")
            writer.writeheader()
            while page := await coupon_service.codes_page(
                conn, context, campaign_key=campaign, limit=PAGE, after=after
            ):
                writer.writerows(page)
                written += len(page)
                after = (page[-1]["issued_at"], page[-1]["id"])
    return written
