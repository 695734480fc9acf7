"""``kopilka analytics`` commands: clv (fit a customer-lifetime model) and validate (how the
purchase models forecast a holdout period), on a purchase-log file or on the program's
purchases."""

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.lifetime.cdnow import read_cdnow
from kopilka.analytics.lifetime.errors import LifetimeDataError
from kopilka.analytics.lifetime.transactions import Transaction
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
from kopilka.errors import InvalidInput

if TYPE_CHECKING:
    # The models need numpy and scipy: imported when a command fits, so that every other
    # command (``kopilka serve`` among them) starts without them (docs/performance.md).
    from kopilka.analytics.lifetime.models import Fit, ModelName, PurchaseModel
    from kopilka.analytics.lifetime.validation import ValidationReport

M = TypeVar("M", bound=str)
FORMATS = ("cdnow",)
MODELS: tuple["ModelName", ...] = ("bgnbd", "pareto", "gammagamma")
PURCHASE_MODELS: tuple["PurchaseModel", ...] = ("bgnbd", "pareto")
LABELS = {"bgnbd": "BG/NBD", "pareto": "Pareto/NBD", "gammagamma": "Gamma-Gamma"}

FromFileOption = typer.Option(
    None,
    "--from-file",
    help="Read purchases from this file instead of the program's database.",
    dir_okay=False,
)
FormatOption = typer.Option("cdnow", "--format", help="Layout of --from-file: cdnow.")
UnitDaysOption = typer.Option(7, "--unit-days", help="Days in one unit of time (7: weeks).")
JsonOption = typer.Option(False, "--json", help="Print JSON instead of tables.")


@app.command("clv")
def clv_command(
    from_file: Path | None = FromFileOption,
    file_format: str = FormatOption,
    calibration_end: str | None = typer.Option(
        None,
        "--calibration-end",
        help="Last day of the calibration period, YYYY-MM-DD (default: the last purchase).",
    ),
    model: str = typer.Option("bgnbd", "--model", help="bgnbd, pareto or gammagamma."),
    unit_days: int = UnitDaysOption,
    as_json: bool = JsonOption,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Fit a customer-lifetime model by maximum likelihood and print its parameters and
    log-likelihood (BG/NBD and Pareto/NBD on every customer, Gamma-Gamma on those with a
    repeat purchase)."""
    from kopilka.analytics.lifetime.models import fit, summarise

    chosen = _model(model, MODELS)
    end = _date("--calibration-end", calibration_end)
    _check_unit(unit_days)
    transactions = _transactions(from_file, file_format, program, database)
    end = end or _last_day(transactions)
    try:
        fitted = fit(chosen, summarise(transactions, end, unit_days=unit_days))
    except InvalidInput as exc:  # the data, or a fit that failed
        fail(exc.detail)
    if as_json:
        typer.echo(json.dumps({"calibration_end": end.isoformat(), **_fit_json(fitted)}, indent=2))
        return
    console.print(_fit_table([fitted], end))


@app.command("validate")
def validate_command(
    from_file: Path | None = FromFileOption,
    file_format: str = FormatOption,
    calibration_end: str = typer.Option(
        ..., "--calibration-end", help="Last day of the calibration period, YYYY-MM-DD."
    ),
    holdout_end: str = typer.Option(
        ..., "--holdout-end", help="Last day of the holdout period, YYYY-MM-DD."
    ),
    models: list[str] = typer.Option(
        list(PURCHASE_MODELS), "--model", help="bgnbd or pareto; repeat for both (default)."
    ),
    svg: Path | None = typer.Option(
        None, "--svg", help="Write the cumulative tracking plot to this SVG file.", dir_okay=False
    ),
    unit_days: int = UnitDaysOption,
    as_json: bool = JsonOption,
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Fit the purchase models on the calibration period and compare them with the holdout:
    repeat transactions per calibration-frequency group, totals, and the cumulative
    tracking of actual vs expected repeat transactions."""
    from kopilka.analytics.lifetime.plot import tracking_svg
    from kopilka.analytics.lifetime.validation import validate

    chosen = [_model(name, PURCHASE_MODELS) for name in dict.fromkeys(models)]
    calibration = _required_date("--calibration-end", calibration_end)
    holdout = _required_date("--holdout-end", holdout_end)
    if holdout <= calibration:
        fail(f"--holdout-end: {holdout} must come after --calibration-end {calibration}")
    _check_unit(unit_days)
    transactions = _transactions(from_file, file_format, program, database)
    try:
        report = validate(transactions, calibration, holdout, chosen, unit_days=unit_days)
    except InvalidInput as exc:  # the data, or a fit that failed
        fail(exc.detail)
    if svg is not None:
        try:
            svg.write_text(tracking_svg(report.tracking), encoding="utf-8")
        except OSError as exc:
            fail(f"--svg: cannot write {svg}: {exc.strerror or exc}")
    if as_json:
        typer.echo(json.dumps(_report_json(report), indent=2))
        return
    _print_report(report)
    if svg is not None:
        console.print(f"tracking plot written to {svg}")


# -- input ---------------------------------------------------------------------------------


def _transactions(
    from_file: Path | None, file_format: str, program: str | None, database: str | None
) -> list[Transaction]:
    if file_format not in FORMATS:
        fail(f"--format: unknown format {file_format!r}: one of {', '.join(FORMATS)}")
    if from_file is None:
        return _database_log(program, database)
    try:
        with from_file.open(encoding="utf-8") as lines:
            return read_cdnow(lines)
    except OSError as exc:
        fail(f"--from-file: cannot read {from_file}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        fail(f"--from-file: {from_file} is not a UTF-8 text file")
    except LifetimeDataError as exc:
        fail(f"{from_file}: {exc.detail}")


def _database_log(program: str | None, database: str | None) -> list[Transaction]:
    from kopilka.analytics.clv_service import clv_service

    async def work(engine: AsyncEngine) -> list[Transaction]:
        context = await load_program(engine, program)
        async with reading(engine) as conn:
            return await clv_service.purchase_log(conn, context.id)

    return run(with_engine(database_url(database), work))


def _date(option: str, value: str | None) -> date | None:
    return None if value is None else _required_date(option, value)


def _required_date(option: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date (YYYY-MM-DD)")


def _model(name: str, allowed: tuple[M, ...]) -> M:
    for candidate in allowed:
        if candidate == name:
            return candidate
    fail(f"--model: unknown model {name!r}: one of {', '.join(allowed)}")


def _check_unit(unit_days: int) -> None:
    if unit_days < 1:
        fail(f"--unit-days: must be at least 1, got {unit_days}")


def _last_day(transactions: list[Transaction]) -> date:
    if not transactions:
        fail("there are no purchases to fit a model to")
    return max(transaction.day for transaction in transactions)


# -- output --------------------------------------------------------------------------------


def _fit_json(fitted: "Fit") -> dict[str, Any]:
    return {
        "model": fitted.model,
        "params": fitted.params,
        "log_likelihood": fitted.log_likelihood,
        "customers": fitted.customers,
        "converged": fitted.converged,
        "seconds": fitted.seconds,
    }


def _fit_table(fits: list["Fit"], calibration_end: date) -> Table:
    """One column per model, one row per parameter (models share r and alpha), then the
    log-likelihood and how the fit went."""
    table = Table(title=f"Maximum-likelihood fit, calibration to {calibration_end}")
    table.add_column("")
    for fitted in fits:
        table.add_column(LABELS[fitted.model], justify="right")
    names = list(dict.fromkeys(name for fitted in fits for name in fitted.params))
    for name in names:
        table.add_row(
            name,
            *(f"{f.params[name]:.4g}" if name in f.params else "" for f in fits),
        )
    table.add_row("log-likelihood", *(f"{f.log_likelihood:.1f}" for f in fits))
    table.add_row("customers", *(str(f.customers) for f in fits))
    table.add_row("converged", *("yes" if f.converged else "NO" for f in fits))
    table.add_row("seconds", *(f"{f.seconds:.3f}" for f in fits))
    return table


def _print_report(report: "ValidationReport") -> None:
    names = list(report.fits)
    console.print(_fit_table(list(report.fits.values()), report.calibration_end))
    unit = "week" if report.unit_days == 7 else f"{report.unit_days}-day period"
    groups = Table(
        title=f"Mean repeat transactions in the holdout to {report.holdout_end}, "
        "by calibration frequency"
    )
    groups.add_column("x")
    groups.add_column("customers", justify="right")
    groups.add_column("actual", justify="right")
    for name in names:
        groups.add_column(LABELS[name], justify="right")
    for group in report.groups:
        groups.add_row(
            group.label,
            str(group.customers),
            f"{group.actual:.3f}",
            *(f"{group.expected[name]:.3f}" for name in names),
        )
    console.print(groups)
    totals = Table(title=f"Repeat transactions of the cohort ({report.customers} customers)")
    totals.add_column("period")
    totals.add_column("actual", justify="right")
    for name in names:
        totals.add_column(LABELS[name], justify="right")
    t = report.totals
    totals.add_row(
        "calibration",
        f"{t.calibration_actual:.0f}",
        *(f"{t.calibration_expected[n]:.1f}" for n in names),
    )
    totals.add_row(
        "holdout (tracking)",
        f"{t.holdout_actual:.0f}",
        *(f"{t.holdout_expected[n]:.1f}" for n in names),
    )
    totals.add_row(
        "holdout (conditional)",
        f"{t.holdout_actual:.0f}",
        *(f"{t.holdout_conditional[n]:.1f}" for n in names),
    )
    console.print(totals)
    tracking = report.tracking
    console.print(
        f"cumulative tracking over {len(tracking.periods)} {unit}s: actual "
        f"{tracking.cumulative_actual[-1]:.0f}; "
        + "; ".join(f"{LABELS[n]} {tracking.cumulative_expected(n)[-1]:.1f}" for n in names)
    )


def _report_json(report: "ValidationReport") -> dict[str, Any]:
    t = report.totals
    return {
        "calibration_end": report.calibration_end.isoformat(),
        "holdout_end": report.holdout_end.isoformat(),
        "unit_days": report.unit_days,
        "customers": report.customers,
        "fits": {name: _fit_json(fitted) for name, fitted in report.fits.items()},
        "groups": [
            {
                "frequency": group.label,
                "customers": group.customers,
                "actual": group.actual,
                "expected": group.expected,
            }
            for group in report.groups
        ],
        "totals": {
            "calibration": {"actual": t.calibration_actual, "expected": t.calibration_expected},
            "holdout": {
                "actual": t.holdout_actual,
                "expected": t.holdout_expected,
                "conditional": t.holdout_conditional,
            },
        },
        "tracking": {
            "periods": report.tracking.periods,
            "calibration_periods": report.tracking.calibration_periods,
            "actual": report.tracking.actual,
            "expected": report.tracking.expected,
        },
    }
