"""``kopilka analytics`` commands: liability and experiment (``docs/analytics.md``)."""

import csv
import sys
from datetime import datetime

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.experiment_service import ExperimentReport, experiment_service
from kopilka.analytics.finance_schemas import ExperimentOut, LiabilityOut
from kopilka.analytics.liability import BREAKAGE_COHORTS
from kopilka.analytics.liability_service import LiabilityReport, liability_service
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
from kopilka.kit.types import MAX_YEAR, MIN_YEAR

JsonOption = typer.Option(False, "--json", help="Print JSON (as the API answers).")


@app.command("liability")
def liability(
    cohorts: int = typer.Option(
        BREAKAGE_COHORTS, "--cohorts", help="Expected breakage from this many latest mature months."
    ),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV: a line per currency and month."),
    as_json: bool = JsonOption,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Outstanding points by expiry month and their value, breakage by earning month, the
    expected breakage and the liability after it, per currency."""
    if as_csv and as_json:
        fail("--csv and --json: choose one")

    async def work(engine: AsyncEngine) -> LiabilityReport:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await liability_service.report(conn, context, clock.now(), cohorts=cohorts)

    report = run(with_engine(database_url(database), work))
    if as_json:
        sys.stdout.write(LiabilityOut.model_validate(report).model_dump_json(indent=2) + "\n")
    elif as_csv:
        _liability_csv(report)
    else:
        _print_liability(report)


def _liability_csv(report: LiabilityReport) -> None:
    """One line per currency and month: what expires then (``expiry``) or what was earned
    then (``cohort``)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "currency",
            "row",
            "month",
            "points",
            "value",
            "earned",
            "redeemed",
            "expired",
            "open",
            "mature",
            "breakage_rate",
        ]
    )
    for c in report.currencies:
        for m in c.by_expiry:
            writer.writerow(
                [c.currency, "expiry", m.month or "never", m.points, _blank(m.value)] + [""] * 6
            )
        for h in c.cohorts:
            writer.writerow(
                [
                    c.currency,
                    "cohort",
                    h.month,
                    "",
                    "",
                    h.earned,
                    h.redeemed,
                    h.expired,
                    h.open,
                    str(h.mature).lower(),
                    _blank(h.breakage_rate),
                ]
            )


def _blank(value: object) -> object:
    return "" if value is None else value


def _print_liability(report: LiabilityReport) -> None:
    for c in report.currencies:
        rate = c.breakage.rate
        console.print(
            f"[bold]{c.currency}[/bold]: {c.outstanding_points:,} outstanding"
            f" ({c.pending_points:,} pending, {c.overdue_points:,} overdue)"
            f" worth {_money(c.outstanding_value, report.money_currency)};"
            f" expected breakage {_percent(rate)}"
            + (f" over {', '.join(c.breakage.months)}" if c.breakage.months else "")
            + f"; liability after breakage"
            f" {_money(c.liability_after_breakage, report.money_currency)}"
        )
        if c.by_expiry:
            expiry = Table(title=f"{c.currency}: outstanding by month of expiry")
            for name in ("month", "points", "value"):
                expiry.add_column(name, justify="right")
            for m in c.by_expiry:
                expiry.add_row(m.month or "never", f"{m.points:,}", _number(m.value))
            console.print(expiry)
        if c.cohorts:
            table = Table(title=f"{c.currency}: by month of earning")
            for name in ("month", "earned", "redeemed", "expired", "open", "mature", "breakage"):
                table.add_column(name, justify="right")
            for h in c.cohorts:
                table.add_row(
                    h.month,
                    f"{h.earned:,}",
                    f"{h.redeemed:,}",
                    f"{h.expired:,}",
                    f"{h.open:,}",
                    "yes" if h.mature else "no",
                    _percent(h.breakage_rate),
                )
            console.print(table)


@app.command("experiment")
def experiment(
    key: str = typer.Argument(..., help="The experiment's name, or broadcast:<id>."),
    start: str | None = typer.Option(
        None, "--from", help="ISO instant with an offset; default: the experiment's start."
    ),
    end: str | None = typer.Option(None, "--to", help="ISO instant with an offset; default: now."),
    as_json: bool = JsonOption,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Each arm's figures, its uplift over the control with 95 % intervals (plain and
    CUPED), the sample-ratio check, warnings and the return on investment."""
    first, last = _instant(start, "--from"), _instant(end, "--to")

    async def work(engine: AsyncEngine) -> ExperimentReport:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await experiment_service.report(
                conn, context, key, clock.now(), start=first, end=last
            )

    report = run(with_engine(database_url(database), work))
    if as_json:
        sys.stdout.write(ExperimentOut.model_validate(report).model_dump_json(indent=2) + "\n")
    else:
        _print_experiment(report)


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO instant (2026-03-01T00:00:00+03:00)")
    if parsed.tzinfo is None:
        fail(f"{option}: {value!r} has no offset (add Z or +03:00)")
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        fail(f"{option}: {value!r} is not between the years {MIN_YEAR} and {MAX_YEAR}")
    return parsed


def _print_experiment(report: ExperimentReport) -> None:
    analysis = report.analysis
    console.print(
        f"[bold]{report.key}[/bold] ({report.kind}, every member of each arm counted):"
        f" {report.window_from:%Y-%m-%d %H:%M} – {report.window_to:%Y-%m-%d %H:%M} UTC;"
        f" money in minor units of {report.money_currency}"
    )
    arms = Table(title="arms")
    names = (
        "arm",
        "members",
        "buyers",
        "purchases",
        "visits",
        "revenue/member",
        "avg check",
        "points",
        "points cost",
    )
    for name in names:
        arms.add_column(name, justify="right")
    for a in analysis.arms:
        arms.add_row(
            f"{a.arm} (control)" if a.control else a.arm,
            f"{a.members:,}",
            f"{a.buyers:,}",
            f"{a.purchases:,}",
            f"{a.visits:,}",
            f"{a.revenue_per_member:,}",
            _number(a.average_check),
            f"{a.points_earned:,}",
            _number(a.points_cost),
        )
    console.print(arms)
    for u in analysis.uplifts:
        chosen = u.cuped if u.preferred == "cuped" and u.cuped is not None else u.absolute
        console.print(
            f"{u.arm} vs {u.versus}: {chosen.estimate:+,.1f} per member"
            f" [{chosen.low:+,.1f}, {chosen.high:+,.1f}] ({u.preferred}"
            + (
                f", variance −{u.variance_reduction:.0%}"
                if u.variance_reduction is not None
                else ""
            )
            + f"); ROI {_number(u.roi)} [{_number(u.roi_low)}, {_number(u.roi_high)}]"
        )
    ratio = analysis.sample_ratio
    if ratio is not None:
        console.print(
            f"sample ratio: χ² {ratio.chi_square:.2f}, p {ratio.p_value:.3g}"
            + (" — MISMATCH" if ratio.mismatch else "")
        )
    for w in analysis.warnings:
        console.print(f"[yellow]warning[/yellow] {w.code}: {w.detail}")


def _money(value: int | None, currency: str) -> str:
    return "unknown" if value is None else f"{value:,} (minor units of {currency})"


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "none" if value is None else f"{value:.1%}"
