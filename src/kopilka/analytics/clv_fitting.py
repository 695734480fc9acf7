"""The lifetime models fitted for a refit, Pareto/NBD within a time budget.

BG/NBD and Gamma-Gamma have closed-form likelihoods and fit in seconds even for a million
members. Pareto/NBD's likelihood needs the hypergeometric function, whose evaluation can
take far longer on some histories (long-silent members, parameters near a singular
point); a refit must not hold the worker for that. So Pareto/NBD is fitted in a child
process (started from a fork server that has the models imported) and given up — the
process ended — once it runs past its budget: the refit then goes on with BG/NBD and
records why Pareto/NBD is missing.
"""

import multiprocessing
from datetime import date
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from kopilka.analytics.clv_domain import FitModel
from kopilka.analytics.clv_figures import PARETO_SECONDS
from kopilka.analytics.lifetime.errors import FitFailed
from kopilka.analytics.lifetime.models import Fit, ModelName, fit
from kopilka.analytics.lifetime.summary import FloatArray, Summary
from kopilka.errors import InvalidInput

# Seconds a Pareto/NBD fit may take before it is given up.
BUDGETED: frozenset[str] = frozenset({"pareto"})

_context: list[Any] = []


class FitTimedOut(FitFailed):
    """The fit ran past its time budget and was stopped."""

    type_slug = "lifetime-fit-timed-out"
    title = "Lifetime model fit took too long"


def budgeted(seconds: float = PARETO_SECONDS) -> FitModel:
    """A fitting function that fits the ``BUDGETED`` models in a child process stopped
    after ``seconds``, and the others here."""

    def fit_model(model: ModelName, summary: Summary) -> Fit:
        if model not in BUDGETED:
            return fit(model, summary)
        return _fit_in_child(model, summary, seconds)

    return fit_model


def _fork_server() -> Any:
    if not _context:
        context = multiprocessing.get_context("forkserver")
        # Children fork from a server that has numpy, scipy and the models loaded already.
        context.set_forkserver_preload(["kopilka.analytics.lifetime.models"])
        _context.append(context)
    return _context[0]


def _fit_in_child(model: ModelName, summary: Summary, seconds: float) -> Fit:
    context = _fork_server()
    receiving, sending = context.Pipe(duplex=False)
    # The purchase models read (frequency, recency, age) alone: no customer names cross.
    process = context.Process(
        target=_child,
        args=(
            sending,
            model,
            summary.frequency,
            summary.recency,
            summary.age,
            summary.calibration_end,
            summary.unit_days,
        ),
        daemon=True,
    )
    process.start()
    sending.close()
    try:
        if not receiving.poll(seconds):
            raise FitTimedOut(f"{model}: not fitted within {seconds:.0f} s, left out")
        try:
            ok, payload = receiving.recv()
        except EOFError:
            raise FitFailed(f"{model}: the fitting process ended without an answer") from None
    finally:
        if process.is_alive():
            process.terminate()
        process.join()
        receiving.close()
    if not ok:
        raise FitFailed(str(payload))
    found: Fit = payload
    return found


def _child(
    sending: Connection,
    model: ModelName,
    frequency: FloatArray,
    recency: FloatArray,
    age: FloatArray,
    calibration_end: date,
    unit_days: int,
) -> None:
    count = len(frequency)
    summary = Summary(
        customers=[""] * count,
        frequency=frequency,
        recency=recency,
        age=age,
        monetary=np.zeros(count),
        first_purchase=[calibration_end] * count,
        calibration_end=calibration_end,
        unit_days=unit_days,
    )
    try:
        sending.send((True, fit(model, summary)))
    except InvalidInput as exc:  # FitFailed or LifetimeDataError
        sending.send((False, exc.detail))
    finally:
        sending.close()
