"""Members' customer-lifetime predictions from a summarised purchase history (pure: numpy
and the lifetime models, no database).

A refit summarises every member's counted purchases up to today in weeks, fits both
purchase models — BG/NBD and Pareto/NBD — and keeps the one with the higher
log-likelihood (both have four parameters, so the likelihoods compare fairly; a tie keeps
BG/NBD, the cheaper one to evaluate), fits Gamma-Gamma to the spend of repeat buyers, and
predicts per member:

* ``p_alive`` — P(alive): the probability that the member has not dropped out;
* ``churn_risk`` — 1 − P(alive) in whole percent, rounded to the nearest (0–100);
* ``expected_purchases`` — purchases expected over the program's CLV horizon;
* ``expected_spend`` — the expected value of one future purchase (Gamma-Gamma),
  rounded to minor units;
* ``clv`` — expected spend over the horizon, each week's discounted at the program's
  yearly rate, rounded to minor units.

A history too thin for a fit gives no predictions and a reason instead. How each model is
fitted is the caller's (``fit_model``): a refit gives Pareto/NBD a time budget
(``clv_fitting``), and a model that fails or runs out of time is simply not chosen.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kopilka.analytics.clv_figures import (
    MIN_CUSTOMERS,
    MIN_REPEAT_CUSTOMERS,
    UNIT_DAYS,
    FitStatus,
    ModelFit,
    SkipReason,
)
from kopilka.analytics.lifetime.errors import FitFailed, LifetimeDataError
from kopilka.analytics.lifetime.models import (
    Fit,
    ModelName,
    clv,
    expected_purchases,
    expected_spend,
    fit,
    p_alive,
)
from kopilka.analytics.lifetime.summary import Summary

PURCHASE_MODELS: tuple[ModelName, ...] = ("bgnbd", "pareto")
SPEND_MODEL: ModelName = "gammagamma"

# How a model is fitted to a summary (``fit``, or one with a time budget: ``clv_fitting``).
FitModel = Callable[[ModelName, Summary], Fit]


@dataclass(frozen=True)
class Predictions:
    """Aligned per member: ``members`` (ids as text) and their predictions."""

    members: list[str]
    p_alive: NDArray[np.float64]
    churn_risk: NDArray[np.int64]
    expected_purchases: NDArray[np.float64]
    expected_spend: NDArray[np.int64]
    clv: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Outcome:
    """What a refit found: the models fitted and, when a fit is usable, the predictions
    (``status`` fitted); otherwise the reason (``status`` skipped)."""

    status: FitStatus
    customers: int
    repeat_customers: int
    models: list[ModelFit]
    model: str | None = None  # the purchase model the predictions come from
    reason: SkipReason | None = None
    detail: str | None = None
    predictions: Predictions | None = None


def churn_risk_percent(alive: NDArray[np.float64]) -> NDArray[np.int64]:
    """1 − P(alive) as whole percent, rounded to the nearest, within 0–100."""
    return np.clip(np.rint((1.0 - alive) * 100.0), 0, 100).astype(np.int64)


def minor_units(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Money rounded to the nearest minor unit, never negative (a model output that is
    not finite counts as nothing)."""
    finite = np.where(np.isfinite(values), values, 0.0)
    return np.maximum(np.rint(finite), 0).astype(np.int64)


def _skipped(summary: Summary, reason: SkipReason, detail: str, models: list[ModelFit]) -> Outcome:
    repeaters = int(np.count_nonzero(summary.frequency > 0))
    return Outcome(FitStatus.SKIPPED, len(summary), repeaters, models, reason=reason, detail=detail)


def _fit_one(
    model: ModelName, summary: Summary, fit_model: FitModel
) -> tuple[Fit | None, ModelFit]:
    try:
        found = fit_model(model, summary)
    except (FitFailed, LifetimeDataError) as exc:
        return None, ModelFit(str(model), {}, None, len(summary), False, 0.0, error=exc.detail)
    return found, model_fit_of(found)


def best_purchase_fit(fits: Sequence[tuple[Fit | None, ModelFit]]) -> Fit | None:
    """The converged purchase fit with the highest log-likelihood (the first listed on a
    tie), or None when none converged."""
    usable = [
        found
        for found, shown in fits
        if found is not None
        and shown.converged
        and math.isfinite(shown.log_likelihood or -math.inf)
    ]
    if not usable:
        return None
    best = usable[0]
    for candidate in usable[1:]:
        if candidate.log_likelihood > best.log_likelihood:
            best = candidate
    return best


def fit_and_predict(
    summary: Summary, horizon_weeks: int, discount_rate_percent: int, fit_model: FitModel = fit
) -> Outcome:
    """Fit the models to ``summary`` (in weeks, each with ``fit_model``) and predict every
    customer of it; a
    history below ``MIN_CUSTOMERS`` buyers or ``MIN_REPEAT_CUSTOMERS`` repeat buyers, or
    one no model converges on, is skipped with its reason."""
    customers = len(summary)
    repeaters = int(np.count_nonzero(summary.frequency > 0))
    end = summary.calibration_end.isoformat()
    if customers < MIN_CUSTOMERS:
        return _skipped(
            summary,
            SkipReason.TOO_FEW_CUSTOMERS,
            f"{customers} members had bought by {end}; a fit needs at least {MIN_CUSTOMERS}",
            [],
        )
    if repeaters < MIN_REPEAT_CUSTOMERS:
        return _skipped(
            summary,
            SkipReason.TOO_FEW_REPEAT_CUSTOMERS,
            f"{repeaters} of {customers} members had bought again by {end}; a fit needs"
            f" at least {MIN_REPEAT_CUSTOMERS}",
            [],
        )
    purchase_fits = [_fit_one(model, summary, fit_model) for model in PURCHASE_MODELS]
    # Gamma-Gamma reads the mean spend of repeat purchases: a member whose repeat days
    # were all free (a total of 0) says nothing about spend and would break its likelihood.
    spenders = summary.subset((summary.frequency > 0) & (summary.monetary > 0))
    spend_found, spend_shown = _fit_one(SPEND_MODEL, spenders, fit_model)
    models = [shown for _, shown in purchase_fits] + [spend_shown]
    chosen = best_purchase_fit(purchase_fits)
    if chosen is None or spend_found is None or not spend_shown.converged:
        failed = [m.model for m in models if not m.converged]
        return _skipped(
            summary,
            SkipReason.NOT_CONVERGED,
            f"the maximum-likelihood search did not converge for {', '.join(failed)}",
            models,
        )
    try:
        predictions = predict(chosen, spend_found, summary, horizon_weeks, discount_rate_percent)
    except LifetimeDataError as exc:
        return _skipped(summary, SkipReason.UNUSABLE_FIT, exc.detail, models)
    return Outcome(
        FitStatus.FITTED,
        customers,
        repeaters,
        models,
        model=str(chosen.model),
        predictions=predictions,
    )


def predict(
    purchase_fit: Fit,
    spend_fit: Fit,
    summary: Summary,
    horizon_weeks: int,
    discount_rate_percent: int,
) -> Predictions:
    alive = np.clip(np.asarray(p_alive(purchase_fit, summary), dtype=np.float64), 0.0, 1.0)
    horizon = float(horizon_weeks)
    purchases = np.asarray(expected_purchases(purchase_fit, summary, horizon), dtype=np.float64)
    spend = np.asarray(expected_spend(spend_fit, summary), dtype=np.float64)
    value = np.asarray(
        clv(
            purchase_fit,
            spend_fit,
            summary,
            horizon,
            discount_rate_percent / 100.0,
            unit_days=UNIT_DAYS,
        ),
        dtype=np.float64,
    )
    return Predictions(
        members=list(summary.customers),
        p_alive=alive,
        churn_risk=churn_risk_percent(alive),
        expected_purchases=np.where(np.isfinite(purchases), np.maximum(purchases, 0.0), 0.0),
        expected_spend=minor_units(spend),
        clv=minor_units(value),
    )


def concatenate(parts: Sequence[Summary], empty: Summary) -> Summary:
    """One summary of several summaries of disjoint customers (read chunk by chunk), with
    the same calibration end and unit; ``empty`` when there are none."""
    if not parts:
        return empty
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Summary(
        customers=[c for p in parts for c in p.customers],
        frequency=np.concatenate([p.frequency for p in parts]),
        recency=np.concatenate([p.recency for p in parts]),
        age=np.concatenate([p.age for p in parts]),
        monetary=np.concatenate([p.monetary for p in parts]),
        first_purchase=[d for p in parts for d in p.first_purchase],
        calibration_end=first.calibration_end,
        unit_days=first.unit_days,
        holdout_end=first.holdout_end,
        holdout_frequency=(
            None
            if first.holdout_frequency is None
            else np.concatenate(
                [p.holdout_frequency for p in parts if p.holdout_frequency is not None]
            )
        ),
    )


def model_fit_of(found: Fit) -> ModelFit:
    """What the console and the API show of a fitted model."""
    return ModelFit(
        model=str(found.model),
        params={k: float(v) for k, v in found.params.items()},
        log_likelihood=float(found.log_likelihood),
        customers=int(found.customers),
        converged=bool(found.converged),
        seconds=float(found.seconds),
    )
