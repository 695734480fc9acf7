"""``kopilka analytics`` commands: liability (with its daily snapshots) and experiment
(``docs/analytics.md``)."""

import csv
import sys
from datetime import date, datetime

import typer
from pydantic import TypeAdapter, ValidationError
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.experiment_service import ExperimentReport, experiment_service
from kopilka.analytics.finance_schemas import ExperimentOut, LiabilityHistoryOut, LiabilityOut
from kopilka.analytics.liability import BREAKAGE_COHORTS, MAX_HISTORY_DAYS
from kopilka.analytics.liability_service import (
    LiabilityHistory,
    LiabilityReport,
    liability_service,
)
from kopilka.analytics.tasks import SnapshotReport, snapshot_program
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
from kopilka.kit.types import MAX_YEAR, MIN_YEAR, Day

JsonOption = typer.Option(False, "--json", help="Print JSON (as the API answers).")
_DAY = TypeAdapter(Day)


@app.command("liability")
def liability(
    cohorts: int | None = typer.Option(
        None,
        "--cohorts",
        help=f"Expected breakage from this many latest mature months (default {BREAKAGE_COHORTS}).",
    ),
    snapshot: bool = typer.Option(
        False, "--snapshot", help="Take today's snapshot and store it (as the daily job does)."
    ),
    history: bool = typer.Option(
        False, "--history", help="The stored daily snapshots of --from..--to."
    ),
    start: str | None = typer.Option(
        None, "--from", help="With --history: first day (YYYY-MM-DD)."
    ),
    end: str | None = typer.Option(None, "--to", help="With --history: last day, included."),
    currency: str | None = typer.Option(
        None, "--currency", help="With --history: one currency (default: every one)."
    ),
    as_csv: bool = typer.Option(
        False, "--csv", help="Print CSV: a line per currency and month (--history: day)."
    ),
    as_json: bool = JsonOption,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Outstanding points by expiry month and their value, breakage by earning month, the
    expected breakage and the liability after it, per currency. With --snapshot, store
    today's figures; with --history, print the stored ones of a range of days."""
    if as_csv and as_json:
        fail("--csv and --json: choose one")
    if snapshot:
        given = {"start": start, "end": end, "currency": currency, "history": history}
        _refuse_with("--snapshot", cohorts=cohorts, csv=as_csv, json=as_json, **given)
        _take_snapshot(program, database)
    elif history:
        _refuse_with("--history", cohorts=cohorts)
        _show_history(_history(program, database, start, end, currency), as_csv, as_json)
    else:
        _refuse_with("the report", start=start, end=end, currency=currency)
        _show_report(program, database, cohorts, as_csv, as_json)


# What each option of ``liability`` is called on the command line, for refusals.
_OPTIONS = {"start": "--from", "end": "--to"}


def _refuse_with(mode: str, **given: object) -> None:
    """Fail naming the first option given (not None, not False) that ``mode`` takes no
    part of: an option silently ignored would read as applied."""
    for name, value in given.items():
        if value is not None and value is not False:
            option = _OPTIONS.get(name, f"--{name}")
            fail(f"{option} does not go with {mode}")


def _show_report(
    program: str | None, database: str | None, cohorts: int | None, as_csv: bool, as_json: bool
) -> None:
    async def work(engine: AsyncEngine) -> LiabilityReport:
        context = await load_program(engine, program)
        async with reading(engine, snapshot=True) as conn:
            return await liability_service.report(
                conn,
                context,
                clock.now(),
                cohorts=BREAKAGE_COHORTS if cohorts is None else cohorts,
            )

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


def _take_snapshot(program: str | None, database: str | None) -> None:
    async def work(engine: AsyncEngine) -> SnapshotReport:
        context = await load_program(engine, program)
        return await snapshot_program(engine, context.id, clock.now())

    report = run(with_engine(database_url(database), work))
    console.print(report.line(), highlight=False, soft_wrap=True)


def _history(
    program: str | None,
    database: str | None,
    start: str | None,
    end: str | None,
    currency: str | None,
) -> LiabilityHistory:
    first, last = _day(start, "--from"), _day(end, "--to")

    async def work(engine: AsyncEngine) -> LiabilityHistory:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await liability_service.history(conn, context, first, last, currency)

    return run(with_engine(database_url(database), work))


def _day(value: str | None, option: str) -> date:
    if value is None:
        fail(f"{option} is needed with --history (YYYY-MM-DD; at most {MAX_HISTORY_DAYS} days)")
    try:
        return _DAY.validate_python(value)
    except ValidationError as exc:
        fail(f"{option}: {value!r}: {exc.errors()[0]['msg']}")


# The columns of the history's CSV: the snapshot's own fields, in the API's order.
HISTORY_COLUMNS = (
    "day",
    "currency",
    "taken_at",
    "outstanding_points",
    "pending_points",
    "overdue_points",
    "outstanding_value",
    "breakage_rate",
    "liability_after_breakage",
)


def _show_history(history: LiabilityHistory, as_csv: bool, as_json: bool) -> None:
    if as_json:
        out = LiabilityHistoryOut.model_validate(history)
        sys.stdout.write(out.model_dump_json(indent=2) + "\n")
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(HISTORY_COLUMNS)
        for row in history.snapshots:
            writer.writerow([_csv_value(getattr(row, name)) for name in HISTORY_COLUMNS])
    else:
        _print_history(history)


def _csv_value(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else _blank(value)


def _print_history(history: LiabilityHistory) -> None:
    if not history.snapshots:
        console.print(f"no liability snapshots between {history.start} and {history.end}")
        return
    table = Table(
        title=f"Liability by day, {history.start} – {history.end}"
        f" (money in minor units of {history.money_currency})"
    )
    names = ("day", "currency", "outstanding", "pending", "overdue", "value", "breakage")
    for name in (*names, "after breakage", "taken at (UTC)"):
        table.add_column(name, justify="right")
    for r in history.snapshots:
        table.add_row(
            r.day.isoformat(),
            r.currency,
            f"{r.outstanding_points:,}",
            f"{r.pending_points:,}",
            f"{r.overdue_points:,}",
            _number(r.outstanding_value),
            _percent(r.breakage_rate),
            _number(r.liability_after_breakage),
            f"{r.taken_at:%Y-%m-%d %H:%M}",
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
