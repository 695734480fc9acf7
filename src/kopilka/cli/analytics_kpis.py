"""``kopilka analytics`` commands: kpis, kpi-cohorts, rebuild-kpis."""

import csv
import sys
from dataclasses import asdict, fields
from datetime import date
from typing import Any

import typer
from pydantic import TypeAdapter
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.kpi_report_service import CohortReport, KpiReport, kpi_report_service
from kopilka.analytics.kpi_tasks import RebuildReport, rebuild_program
from kopilka.analytics.kpis import GROUPINGS, Grouping, KpiRow
from kopilka.cli.analytics import app
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
from kopilka.kit.types import MAX_YEAR, MIN_DAY_YEAR

FromOption = typer.Option(
    None, "--from", help="First day (YYYY-MM-DD); default: 29 days before --to."
)
ToOption = typer.Option(None, "--to", help="Last day, included (YYYY-MM-DD); default: today.")
# Row labels of the table: the figure, and how it is shown.
PERCENT = {f.name for f in fields(KpiRow) if "float" in str(f.type)} - {"purchase_frequency"}


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            if MIN_DAY_YEAR <= day.year <= MAX_YEAR:
                return day
            fail(f"{option}: {value!r} is not between the years {MIN_DAY_YEAR} and {MAX_YEAR}")
    except ValueError:
        pass
    fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)")


def _grouping(value: str | None) -> Grouping | None:
    if value is None:
        return None
    if value not in GROUPINGS:
        fail(f"--by: {value!r} is not one of {', '.join(GROUPINGS)}")
    return value


@app.command("kpis")
def kpis(
    start: str | None = FromOption,
    end: str | None = ToOption,
    by: str | None = typer.Option(None, "--by", help="One row per tier, store, month or channel."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (a line per row) instead."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (as the API answers)."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """The program's KPIs over a period, as a whole and per group
    (``docs/analytics.md``)."""
    if as_csv and as_json:
        fail("--csv and --json: choose one")
    first, last, grouping = _day(start, "--from"), _day(end, "--to"), _grouping(by)

    async def work(engine: AsyncEngine) -> KpiReport:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await kpi_report_service.kpis(
                conn, context, clock.now(), start=first, end=last, by=grouping
            )

    report = run(with_engine(database_url(database), work))
    if as_json:
        sys.stdout.write(TypeAdapter(KpiReport).dump_json(report, indent=2).decode() + "\n")
    elif as_csv:
        _write_csv(report)
    else:
        _print_kpis(report)


def _write_csv(report: KpiReport) -> None:
    names = [f.name for f in fields(KpiRow)]
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(names)
    for row in [report.total, *report.rows]:
        values = asdict(row)
        writer.writerow(["" if values[n] is None else values[n] for n in names])


def _shown(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name in PERCENT:
        return f"{value * 100:.1f} %"
    if isinstance(value, float):
        return f"{value:.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _print_kpis(report: KpiReport) -> None:
    rows = [report.total, *report.rows]
    table = Table(
        title=f"KPIs {report.start} – {report.end}"
        f" (buyers over {report.months_from} – {report.months_to}; money in minor units of"
        f" {report.money_currency}, points in {report.points_currency})"
    )
    table.add_column("KPI")
    for row in rows:
        label = "total" if row.kind == "total" else row.group
        table.add_column(
            "no member" if row.kind == "no_member" else (label or "(none)"), justify="right"
        )
    for f in fields(KpiRow):
        if f.name in ("kind", "group"):
            continue
        values = [getattr(row, f.name) for row in rows]
        if all(v is None for v in values):
            continue
        table.add_row(f.name.replace("_", " "), *[_shown(f.name, v) for v in values])
    console.print(table)


@app.command("kpi-cohorts")
def kpi_cohorts(
    start: str | None = typer.Option(
        None, "--from", help="A day of the first cohort's month; default: 11 months before --to's."
    ),
    end: str | None = ToOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (as the API answers)."),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Retention by monthly cohort: members by the month of their first purchase, and the
    share of each cohort who bought in each later month."""
    first, last = _day(start, "--from"), _day(end, "--to")

    async def work(engine: AsyncEngine) -> CohortReport:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await kpi_report_service.cohorts(
                conn, context, clock.now(), start=first, end=last
            )

    report = run(with_engine(database_url(database), work))
    if as_json:
        sys.stdout.write(TypeAdapter(CohortReport).dump_json(report, indent=2).decode() + "\n")
        return
    table = Table(title=f"Retention by monthly cohort, {report.months_from} – {report.months_to}")
    table.add_column("cohort")
    table.add_column("members", justify="right")
    width = max((len(c.retention) for c in report.cohorts), default=0)
    for k in range(width):
        table.add_column(f"+{k}", justify="right")
    for cohort in report.cohorts:
        shares = [_shown("repeat_rate", r) for r in cohort.retention]
        table.add_row(cohort.month, f"{cohort.members:,}", *shares, *[""] * (width - len(shares)))
    console.print(table)


@app.command("rebuild-kpis")
def rebuild_kpis(
    start: str | None = typer.Option(
        None, "--from", help="Rebuild the daily figures from this day on (default: all)."
    ),
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Work the KPIs' aggregates out again from the purchases, returns and the ledger.

    Set-wise, one range of members per transaction. Run it after changing the program's time
    zone, or for history older than the outbox keeps — with the worker's
    analytics.kpis consumer caught up and stopped (docs/analytics.md).
    """
    since = _day(start, "--from")

    async def work(engine: AsyncEngine) -> RebuildReport:
        context = await load_program(engine, program)
        return await rebuild_program(engine, context, since=since)

    report = run(with_engine(database_url(database), work))
    scope = f"from {since}" if since else "in full"
    console.print(f"KPI aggregates rebuilt {scope} in {report.batches} batches")
