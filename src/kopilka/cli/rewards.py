"""``kopilka rewards``: load the rewards catalog from a YAML or CSV file, list it."""

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table
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
from kopilka.db import reading, transaction
from kopilka.kit.clock import clock
from kopilka.rewards.schemas import Reward, RewardCreate
from kopilka.rewards.service import LoadReport, reward_service

app = typer.Typer(help="The rewards shop.", no_args_is_help=True)
MAX_ERRORS_SHOWN = 50
CSV_COLUMNS = frozenset(RewardCreate.model_fields)
Row = tuple[int, dict[str, Any]]
Problem = tuple[int, str]


class FileProblem(Exception):
    """The file as a whole cannot be read (not a row of it)."""


# --- reading the file -------------------------------------------------------------------------


def read_rows(path: Path) -> tuple[list[Row], list[Problem]]:
    """The file's rewards as (line, fields), and the rows that are not rewards at all."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's byte-order mark too
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem(f"cannot read {path}: {exc}") from exc
    if path.suffix.lower() == ".csv":
        return _csv_rows(text)
    return _yaml_rows(text)


def _yaml_rows(text: str) -> tuple[list[Row], list[Problem]]:
    """A YAML (or JSON) list of rewards, or a mapping with the list under ``rewards``.
    Each item's line is where it starts in the file."""
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise FileProblem(f"not valid YAML: {' '.join(str(exc).split())}") from exc
    items, node = data, root
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode):
        items = data.get("rewards")
        node = next((v for k, v in root.value if k.value == "rewards"), None)
    if not isinstance(items, list) or not isinstance(node, yaml.SequenceNode):
        raise FileProblem("expected a list of rewards, or a mapping with one under 'rewards'")
    rows: list[Row] = []
    problems: list[Problem] = []
    for item, item_node in zip(items, node.value, strict=True):
        line = item_node.start_mark.line + 1
        if isinstance(item, dict):
            rows.append((line, item))
        else:
            problems.append((line, "a reward is a mapping of fields (key, name, kind, price …)"))
    return rows, problems


def _csv_rows(text: str) -> tuple[list[Row], list[Problem]]:
    """One reward per row under a header of field names; an empty cell is a field not
    given. ``tier_prices`` is written ``silver:400;gold:300``, ``attributes`` as JSON."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    unknown = sorted(set(header) - CSV_COLUMNS)
    if not header or unknown:
        what = f"unknown columns {unknown}" if unknown else "no header"
        raise FileProblem(f"line 1: {what}; columns are {sorted(CSV_COLUMNS)}")
    rows: list[Row] = []
    problems: list[Problem] = []
    ended = reader.line_num
    for cells in reader:
        # A row starts on the line after the last one read: blank lines in between are
        # skipped here, not silently by the reader, so every reported line is the file's.
        line, ended = ended + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        record: dict[str | None, Any] = dict(zip(header, cells, strict=False))
        if len(cells) > len(header):
            record[None] = cells[len(header) :]
        try:
            rows.append((line, _csv_fields(record)))
        except ValueError as exc:
            problems.append((line, str(exc)))
    return rows, problems


def _csv_fields(record: dict[str | Any, str | Any]) -> dict[str, Any]:
    if None in record:
        raise ValueError("more cells than columns")
    fields: dict[str, Any] = {}
    for column, cell in record.items():
        if cell is None or not cell.strip():
            continue
        value = cell.strip()
        if column == "tier_prices":
            fields[column] = _tier_prices(value)
        elif column == "attributes":
            try:
                fields[column] = json.loads(value)
            except ValueError as exc:
                raise ValueError(f"attributes: not JSON ({exc})") from None
        else:
            fields[column] = value
    return fields


def _tier_prices(cell: str) -> dict[str, str]:
    prices: dict[str, str] = {}
    for pair in cell.split(";"):
        tier, sep, price = pair.partition(":")
        if not sep or not tier.strip() or not price.strip():
            raise ValueError(
                f"tier_prices: write tier:price pairs separated by ';' "
                f"(silver:400;gold:300), not {cell!r}"
            )
        prices[tier.strip()] = price.strip()
    return prices


# --- commands ---------------------------------------------------------------------------------


def _print_problems(problems: list[Problem]) -> None:
    for line, message in problems[:MAX_ERRORS_SHOWN]:
        err_console.print(f"  line {line}: {escape(message)}", highlight=False, soft_wrap=True)
    if len(problems) > MAX_ERRORS_SHOWN:
        err_console.print(f"  … and {len(problems) - MAX_ERRORS_SHOWN} more")


def _fail(message: str) -> None:
    err_console.print(f"error: {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(1)


@app.command()
def load(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, readable=True, help="A YAML or CSV file of rewards."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Create or update (by key) the rewards of FILE.

    Every row is checked first: with any bad row, each is reported with its line and
    nothing is loaded. On an existing reward, fields a row leaves out keep their value.
    """
    try:
        rows, problems = read_rows(file)
    except FileProblem as exc:
        _fail(f"{file}: {exc}")
        return

    async def work(engine: AsyncEngine) -> LoadReport:
        context = await load_program(engine, program)
        async with transaction(engine) as conn:
            return await reward_service.load(conn, context, rows, clock.now(), write=not problems)

    report = run(with_engine(database_url(database), work))
    problems = sorted(problems + report.errors)
    if problems:
        err_console.print(
            f"error: {len(problems)} bad rows in {escape(str(file))}; nothing loaded:",
            highlight=False,
        )
        _print_problems(problems)
        sys.exit(1)
    console.print(
        f"loaded {len(report.created) + len(report.updated)} rewards: "
        f"{len(report.created)} created, {len(report.updated)} updated"
    )


@app.command("list")
def list_rewards(
    category: str | None = typer.Option(None, help="Only this category."),
    status: str | None = typer.Option(None, help="active or archived."),
    as_json: bool = typer.Option(False, "--json", help="Print the rewards as JSON."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """List the catalog in key order."""
    if status not in (None, "active", "archived"):
        raise typer.BadParameter("--status must be active or archived")

    async def work(engine: AsyncEngine) -> list[Reward]:
        context = await load_program(engine, program)
        items: list[Reward] = []
        cursor = None
        async with reading(engine) as conn:
            while True:
                page = await reward_service.catalog(
                    conn,
                    context,
                    member_id=None,
                    affordable=False,
                    category=category,
                    status=status,
                    limit=200,
                    cursor=cursor,
                    now=clock.now(),
                )
                items += page.items
                if page.next_cursor is None:
                    return items
                cursor = page.next_cursor

    items = run(with_engine(database_url(database), work))
    if as_json:
        console.print_json(json.dumps([item.model_dump(mode="json") for item in items]))
        return
    table = Table("key", "name", "kind", "price", "stock", "min tier", "status", "category")
    for item in items:
        price = f"{item.price:,} {item.currency}"
        if item.tier_prices:
            price += " (" + ", ".join(f"{t}: {p:,}" for t, p in item.tier_prices.items()) + ")"
        stock = "unlimited" if item.stock is None else f"{item.stock:,}"
        if item.codes_available is not None:
            stock += f" ({item.codes_available:,} codes)"
        table.add_row(
            escape(item.key),
            escape(item.name),
            item.kind,
            price,
            stock,
            item.min_tier or "",
            item.status,
            escape(item.category or ""),
        )
    console.print(table)
    console.print(f"{len(items)} rewards")
