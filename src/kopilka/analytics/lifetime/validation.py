"""How well the purchase models forecast a holdout period they were not fitted on.

The purchase log is cut at the end of calibration; the models are fitted on the calibration
period and compared with what the customers then did up to the end of the holdout:

* **conditional expectations by frequency group**: customers grouped by their calibration
  frequency x (0, 1, …, 6, 7+); per group the mean actual number of repeat transactions in
  the holdout and the mean of each model's E[Y(holdout length) | x, t_x, T];
* **tracking**: per period (a week by default) from the first purchase of the cohort, the
  actual number of repeat transactions of the cohort and each model's expectation,
  expected = Σᵢ E[X(t − bᵢ)] over customers i, bᵢ the time of their first purchase (no
  customer history is used: the tracking checks the aggregate forecast of a cohort).

A purchase on day d happens at time d (days from the customer's first purchase, in units);
period k ends with the last day of the k-th run of ``unit_days`` days, so in weeks a
customer's purchases up to the end of period k are those at t ≤ (7k − 1 − bᵢ)/7.
"""

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from kopilka.analytics.lifetime.errors import FitFailed, LifetimeDataError
from kopilka.analytics.lifetime.models import (
    Fit,
    PurchaseModel,
    expected_purchases,
    expected_repeat,
    fit,
)
from kopilka.analytics.lifetime.summary import FloatArray, IntArray, Summary, summarise_days
from kopilka.analytics.lifetime.transactions import Days, Transaction, merge_same_day

# Customers with this many calibration repeat transactions or more form the last group, as
# in the literature's plots.
CENSOR = 7


@dataclass(frozen=True)
class FrequencyGroup:
    """Customers with calibration frequency ``label`` ("7+" for 7 or more): how many, their
    mean actual holdout repeat transactions and each model's mean conditional expectation."""

    label: str
    customers: int
    actual: float
    expected: dict[str, float]


@dataclass(frozen=True)
class Tracking:
    """Repeat transactions of the cohort per period (1-based ``periods``): actual and each
    model's expectation, per period and cumulative. ``calibration_periods`` is where the
    calibration period ends on that axis (a whole number when the calibration is a whole
    number of periods from the cohort's first purchase)."""

    periods: list[int]
    actual: list[float]
    expected: dict[str, list[float]]
    calibration_periods: float
    unit_days: int

    @property
    def cumulative_actual(self) -> list[float]:
        return [float(v) for v in np.cumsum(self.actual)]

    def cumulative_expected(self, model: str) -> list[float]:
        return [float(v) for v in np.cumsum(self.expected[model])]


@dataclass(frozen=True)
class Totals:
    """Repeat transactions of the whole cohort in each period: actual, and each model's
    expectation from the tracking (E[X] per customer, no history) and, for the holdout,
    also the sum of the customers' conditional expectations."""

    calibration_actual: float
    calibration_expected: dict[str, float]
    holdout_actual: float
    holdout_expected: dict[str, float]
    holdout_conditional: dict[str, float]


@dataclass(frozen=True)
class ValidationReport:
    calibration_end: date
    holdout_end: date
    unit_days: int
    customers: int
    fits: dict[str, Fit]
    groups: list[FrequencyGroup]
    tracking: Tracking
    totals: Totals


def validate(
    transactions: Iterable[Transaction],
    calibration_end: date,
    holdout_end: date,
    models: Sequence[PurchaseModel] = ("bgnbd", "pareto"),
    *,
    unit_days: int = 7,
    fit_model: Callable[[PurchaseModel, Summary], Fit] = fit,
) -> ValidationReport:
    """Fit ``models`` on the calibration period (with ``fit_model``: the server gives a fit
    a time budget) and compare them with the holdout. A model that does not converge is
    refused (422 naming ``calibration_end``): its forecast would mean nothing."""
    if not models:
        raise LifetimeDataError("name at least one purchase model to validate", field="model")
    if holdout_end <= calibration_end:
        raise LifetimeDataError(
            f"holdout_end ({holdout_end}) must come after calibration_end ({calibration_end})",
            field="holdout_end",
        )
    if unit_days < 1:
        raise LifetimeDataError("unit_days must be at least 1", field="unit_days")
    days = merge_same_day(transactions)
    summary = summarise_days(days, calibration_end, unit_days=unit_days, holdout_end=holdout_end)
    fits: dict[str, Fit] = {model: fit_model(model, summary) for model in models}
    for name, found in fits.items():
        if not found.converged:
            raise FitFailed(
                f"{name} did not converge on the purchases up to {calibration_end}: "
                "its forecast would mean nothing (try another calibration end)",
                field="calibration_end",
            )
    tracking = track(days, summary, fits)
    return ValidationReport(
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        unit_days=unit_days,
        customers=len(summary),
        fits=fits,
        groups=frequency_groups(summary, fits),
        tracking=tracking,
        totals=_totals(summary, fits),
    )


def frequency_groups(summary: Summary, fits: dict[str, Fit]) -> list[FrequencyGroup]:
    """Mean actual vs expected holdout repeat transactions per calibration frequency group
    0, 1, …, 6, 7+ (groups without customers are left out)."""
    holdout, length = _holdout(summary)
    group = np.minimum(summary.frequency, CENSOR).astype(int)
    expected = {name: expected_purchases(f, summary, length) for name, f in fits.items()}
    groups = []
    for k in range(CENSOR + 1):
        members = group == k
        count = int(np.sum(members))
        if count == 0:
            continue
        groups.append(
            FrequencyGroup(
                label=f"{k}+" if k == CENSOR else str(k),
                customers=count,
                actual=float(np.mean(holdout[members])),
                expected={name: float(np.mean(e[members])) for name, e in expected.items()},
            )
        )
    return groups


def track(days: dict[str, Days], summary: Summary, fits: dict[str, Fit]) -> Tracking:
    """Actual and expected repeat transactions of the summary's customers per period, from
    the cohort's first purchase to the end of the holdout (or of calibration)."""
    if len(summary) == 0:
        raise LifetimeDataError("no customers to track", field="calibration_end")
    unit = summary.unit_days
    origin = min(summary.first_purchase)
    end = summary.holdout_end or summary.calibration_end
    last_day = (end - origin).days
    periods = math.ceil((last_day + 1) / unit)
    # Last day (offset from the origin) of each period; the last period may be cut short.
    period_ends = np.minimum(np.arange(1, periods + 1) * unit - 1, last_day)
    actual = np.zeros(periods)
    for customer, first in zip(summary.customers, summary.first_purchase, strict=True):
        for day in days[customer]:
            if first < day <= end:
                actual[(day - origin).days // unit] += 1
    births, counts = np.unique(
        np.array([(first - origin).days for first in summary.first_purchase]),
        return_counts=True,
    )
    expected = {
        name: np.diff(_cumulative_expected(f, births, counts, period_ends, unit), prepend=0.0)
        for name, f in fits.items()
    }
    return Tracking(
        periods=list(range(1, periods + 1)),
        actual=[float(v) for v in actual],
        expected={name: [float(v) for v in values] for name, values in expected.items()},
        calibration_periods=((summary.calibration_end - origin).days + 1) / unit,
        unit_days=unit,
    )


def _cumulative_expected(
    purchase_fit: Fit, births: IntArray, counts: IntArray, ends: IntArray, unit: int
) -> FloatArray:
    """Σ over birth days of (customers born that day) · E[X((end − birth)/unit)], per end."""
    elapsed = (ends[:, None] - births[None, :]) / unit  # negative before a customer's birth
    values = expected_repeat(purchase_fit, np.maximum(elapsed, 0.0).ravel()).reshape(elapsed.shape)
    # A row-wise sum rather than a matrix product: see optimise.weighted_sum.
    return np.asarray(np.sum(values * counts, axis=1), dtype=np.float64)


def _totals(summary: Summary, fits: dict[str, Fit]) -> Totals:
    holdout, length = _holdout(summary)
    calibration_age = summary.age
    full_age = summary.age + length
    return Totals(
        calibration_actual=float(np.sum(summary.frequency)),
        calibration_expected={
            name: float(np.sum(expected_repeat(f, calibration_age))) for name, f in fits.items()
        },
        holdout_actual=float(np.sum(holdout)),
        holdout_expected={
            name: float(np.sum(expected_repeat(f, full_age) - expected_repeat(f, calibration_age)))
            for name, f in fits.items()
        },
        holdout_conditional={
            name: float(np.sum(expected_purchases(f, summary, length))) for name, f in fits.items()
        },
    )


def _holdout(summary: Summary) -> tuple[FloatArray, float]:
    if summary.holdout_frequency is None or summary.holdout_length is None:
        raise LifetimeDataError("the summary has no holdout period", field="holdout_end")
    return summary.holdout_frequency, summary.holdout_length
