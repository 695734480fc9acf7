"""The lifetime models behind one interface: fit a model to a :class:`Summary`, then ask it
per customer for P(alive), expected purchases, expected spend and CLV.

Time is in the summary's unit (``unit_days`` days, a week by default) everywhere: the
horizon of a prediction, the rates the parameters imply.
"""

import math
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

import numpy as np
from numpy.typing import NDArray

from kopilka.analytics.lifetime import bgnbd, gamma_gamma, pareto
from kopilka.analytics.lifetime.errors import LifetimeDataError
from kopilka.analytics.lifetime.optimise import maximise
from kopilka.analytics.lifetime.summary import (
    FloatArray,
    Summary,
    Transaction,
    require_customers,
    summarise,
)

__all__ = [
    "MODELS",
    "Fit",
    "ModelName",
    "Summary",
    "Transaction",
    "clv",
    "expected_purchases",
    "expected_repeat",
    "expected_spend",
    "fit",
    "p_alive",
    "population_spend",
    "summarise",
]

ModelName = Literal["bgnbd", "pareto", "gammagamma"]
PurchaseModel = Literal["bgnbd", "pareto"]
MODELS: tuple[ModelName, ...] = get_args(ModelName)
DAYS_PER_YEAR = 365.25
# CLV sums discounted purchases over steps of one unit, but never more than this many steps:
# beyond a few hundred the discounting is smooth enough that wider steps change nothing.
MAX_CLV_STEPS = 260


@dataclass(frozen=True)
class Fit:
    """A fitted model: maximum-likelihood parameters (by name, natural scale), the
    log-likelihood at them, on how many customers (for the Gamma-Gamma, those with a repeat
    purchase), whether the optimiser reached a stationary point inside the parameter space,
    and how long the fit took."""

    model: ModelName
    params: dict[str, float]
    log_likelihood: float
    customers: int
    converged: bool
    seconds: float

    def vector(self) -> FloatArray:
        names = _NAMES[self.model]
        return np.array([self.params[name] for name in names], dtype=np.float64)


_NAMES: dict[ModelName, tuple[str, ...]] = {
    "bgnbd": bgnbd.NAMES,
    "pareto": pareto.NAMES,
    "gammagamma": gamma_gamma.NAMES,
}


def fit(model: ModelName, summary: Summary) -> Fit:
    """Fit ``model`` by maximum likelihood. The purchase models use every customer; the
    Gamma-Gamma those with frequency > 0 and a positive mean spend. Raises
    :class:`LifetimeDataError` on degenerate data, :class:`FitFailed` if no finite optimum
    is found."""
    if model not in MODELS:
        raise LifetimeDataError(
            f"unknown model {model!r}: one of {', '.join(MODELS)}", field="model"
        )
    require_customers(summary)
    if model == "gammagamma":
        return _fit_spend(summary)
    rows = summary.compressed()
    scale = float(np.median(rows.age)) or 1.0
    if model == "bgnbd":
        start = np.array([1.0, scale, 1.0, 1.0])
        optimum = maximise(
            lambda theta: bgnbd.objective(
                theta, rows.frequency, rows.recency, rows.age, rows.weights
            ),
            start,
            float(np.sum(rows.weights)),
            "bgnbd",
        )
    else:
        start = np.array([1.0, scale, 1.0, scale])
        optimum = maximise(
            lambda theta: pareto.objective(
                theta, rows.frequency, rows.recency, rows.age, rows.weights
            ),
            start,
            float(np.sum(rows.weights)),
            "pareto",
        )
    return Fit(
        model=model,
        params=dict(zip(_NAMES[model], map(float, optimum.params), strict=True)),
        log_likelihood=optimum.log_likelihood,
        customers=len(summary),
        converged=optimum.converged,
        seconds=optimum.seconds,
    )


def _fit_spend(summary: Summary) -> Fit:
    # The gamma density has no mass at zero: a repeat buyer whose repeat purchases were all
    # free (CDNOW_master has one) tells the spend model nothing and is left out of the fit.
    used = (summary.frequency > 0) & (summary.monetary > 0)
    if not np.any(used):
        raise LifetimeDataError(
            "no customer with a repeat purchase has a positive mean spend: the Gamma-Gamma "
            "model needs positive amounts",
            field="amount",
        )
    x, m = summary.frequency[used], summary.monetary[used]
    rows, inverse, counts = np.unique(
        np.column_stack([x, m]), axis=0, return_inverse=True, return_counts=True
    )
    del inverse
    weights = counts.astype(np.float64)
    # Start where the model's mean pγ/(q−1) equals the observed mean spend.
    start = np.array([1.0, 2.0, float(np.mean(m))])
    optimum = maximise(
        lambda theta: gamma_gamma.objective(theta, rows[:, 0], rows[:, 1], weights),
        start,
        float(np.sum(weights)),
        "gammagamma",
    )
    return Fit(
        model="gammagamma",
        params=dict(zip(gamma_gamma.NAMES, map(float, optimum.params), strict=True)),
        log_likelihood=optimum.log_likelihood,
        customers=int(np.sum(used)),
        converged=optimum.converged,
        seconds=optimum.seconds,
    )


def p_alive(fit: Fit, summary: Summary) -> NDArray[np.float64]:
    """Each customer's probability of being alive at the end of calibration."""
    module = _purchase_module(fit)
    return module.p_alive(fit.vector(), summary.frequency, summary.recency, summary.age)


def expected_purchases(fit: Fit, summary: Summary, horizon: float) -> NDArray[np.float64]:
    """Each customer's expected number of purchases in the ``horizon`` units after the end
    of calibration, given their history (x, t_x, T)."""
    _check_horizon(horizon)
    module = _purchase_module(fit)
    return module.conditional_expected(
        fit.vector(), horizon, summary.frequency, summary.recency, summary.age
    )


def expected_repeat(fit: Fit, t: NDArray[np.float64]) -> NDArray[np.float64]:
    """E[X(t)]: expected repeat purchases in the first ``t`` units after a new customer's
    first purchase (no history to condition on)."""
    module = _purchase_module(fit)
    return module.expected_repeat(fit.vector(), np.maximum(np.asarray(t, dtype=np.float64), 0))


def population_spend(spend_fit: Fit) -> float:
    """Mean spend per transaction of a customer about whom nothing is known."""
    _require_spend(spend_fit)
    return gamma_gamma.population_mean(spend_fit.vector())


def expected_spend(spend_fit: Fit, summary: Summary) -> NDArray[np.float64]:
    """E(M | x, m_x): each customer's expected spend per future transaction; the
    population mean for customers without repeat purchases."""
    mean = population_spend(spend_fit)
    repeaters = summary.frequency > 0
    conditional = gamma_gamma.conditional_expected(
        spend_fit.vector(), summary.frequency, np.where(repeaters, summary.monetary, 0.0)
    )
    return np.where(repeaters, conditional, mean)


def clv(
    purchase_fit: Fit,
    spend_fit: Fit,
    summary: Summary,
    horizon: float,
    discount_rate_per_year: float,
    unit_days: int = 7,
) -> NDArray[np.float64]:
    """Expected discounted spend over the ``horizon`` units after calibration:

        CLV = E(M | x, m_x) · Σₖ (E[Y(tₖ)] − E[Y(tₖ₋₁)]) / (1 + d)^(tₖ · unit_days / 365.25),

    with tₖ the ends of steps of one unit (wider when the horizon has more than
    ``MAX_CLV_STEPS`` units), d the yearly discount rate and E[Y(t)] the conditional expected
    purchases; the purchases of a step are discounted from its end."""
    _check_horizon(horizon)
    if not (math.isfinite(discount_rate_per_year) and discount_rate_per_year > -1):
        raise LifetimeDataError(
            "discount_rate_per_year must be a number above -1", field="discount_rate_per_year"
        )
    if unit_days < 1:
        raise LifetimeDataError("unit_days must be at least 1", field="unit_days")
    spend = expected_spend(spend_fit, summary)
    steps = max(1, min(math.ceil(horizon), MAX_CLV_STEPS))
    ends = np.linspace(horizon / steps, horizon, steps)
    discounted = np.zeros(len(summary))
    previous = np.zeros(len(summary))
    for end in ends:
        cumulative = expected_purchases(purchase_fit, summary, float(end))
        factor = (1 + discount_rate_per_year) ** (-end * unit_days / DAYS_PER_YEAR)
        discounted += (cumulative - previous) * factor
        previous = cumulative
    return np.asarray(spend * discounted, dtype=np.float64)


class _PurchaseModule(Protocol):
    """What the BG/NBD and Pareto/NBD modules both provide."""

    def p_alive(
        self, params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray: ...

    def expected_repeat(self, params: FloatArray, t: FloatArray) -> FloatArray: ...

    def conditional_expected(
        self, params: FloatArray, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray: ...


def _purchase_module(fit: Fit) -> _PurchaseModule:
    if fit.model == "bgnbd":
        return bgnbd
    if fit.model == "pareto":
        return pareto
    raise LifetimeDataError(
        f"{fit.model} is a spend model: purchases need a bgnbd or pareto fit", field="model"
    )


def _require_spend(spend_fit: Fit) -> None:
    if spend_fit.model != "gammagamma":
        raise LifetimeDataError(
            f"{spend_fit.model} is a purchase model: spend needs a gammagamma fit", field="model"
        )
    if spend_fit.params["q"] <= 1:
        raise LifetimeDataError(
            f"the spend model's q = {spend_fit.params['q']:.3g} is not above 1: the mean spend "
            "it implies is infinite",
            field="q",
        )


def _check_horizon(horizon: float) -> None:
    if not (math.isfinite(horizon) and horizon >= 0):
        raise LifetimeDataError("horizon must be a non-negative number of units", field="horizon")
