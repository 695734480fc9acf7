"""``kopilka analytics refit``: the customer-lifetime models refitted on the database's
purchases now, members' predictions (churn risk, CLV) replaced."""

from sqlalchemy.ext.asyncio import AsyncEngine

from kopilka.analytics.tasks import RefitReport, refit_program
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
from kopilka.kit.clock import clock


@app.command("refit")
def refit(
    program: str | None = ProgramOption,
    database: str | None = DatabaseOption,
) -> None:
    """Fit BG/NBD, Pareto/NBD and Gamma-Gamma on the program's purchase history up to now
    and store every member's P(alive), churn risk, expected purchases and spend, and CLV.

    The worker's daily ``clv-refit`` job does this once a week; run it after an import or
    a change of the program's CLV horizon or discount rate. Exits non-zero when the history
    is too thin for a fit (the reason is printed) — the previous predictions then stay.
    """

    async def work(engine: AsyncEngine) -> RefitReport:
        context = await load_program(engine, program)
        return await refit_program(engine, context.id, clock.now(), force=True)

    report = run(with_engine(database_url(database), work))
    fit = report.fit
    if fit is None or fit.status != "fitted":
        fail(report.line())
    console.print(report.line())
    for model in fit.models:
        chosen = " (predictions)" if model.model in (fit.model, "gammagamma") else ""
        if model.log_likelihood is None:
            console.print(f"  {model.model}: failed: {model.error}", highlight=False)
            continue
        params = ", ".join(f"{name} = {value:.4g}" for name, value in model.params.items())
        state = "converged" if model.converged else "NOT converged"
        console.print(
            f"  {model.model}{chosen}: {params}; log-likelihood {model.log_likelihood:.2f}"
            f" on {model.customers} members, {state}",
            highlight=False,
        )
    console.print(f"  calibration end {fit.calibration_end}; {fit.seconds:.1f} s", highlight=False)
