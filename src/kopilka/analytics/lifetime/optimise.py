"""Maximum-likelihood search shared by the lifetime models.

Every parameter of these models is positive, so the search runs over their logarithms:
no bounds to hit in practice, and steps scale with each parameter's size. The objective is
the mean negative log-likelihood per customer, so the tolerances mean the same for a cohort
of a hundred customers and of a million.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from kopilka.analytics.lifetime.errors import FitFailed
from kopilka.analytics.lifetime.summary import FloatArray

# (negative mean log-likelihood, its gradient) at log-parameters.
Objective = Callable[[FloatArray], tuple[float, FloatArray]]

# log-parameters beyond ±30 (a parameter outside 1e-13 … 1e13) mean a degenerate optimum:
# the data do not identify the model, and the fit says it has not converged.
LOG_BOUND = 30.0
# A relative gradient this small is a stationary point for all practical purposes.
GRADIENT_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Optimum:
    params: FloatArray  # natural scale
    log_likelihood: float  # total, not per customer
    converged: bool
    seconds: float


def maximise(objective: Objective, start: FloatArray, total_weight: float, name: str) -> Optimum:
    """Minimise ``objective`` from ``start`` (natural-scale parameters) with L-BFGS-B over
    log-parameters; raise :class:`FitFailed` when no finite likelihood is reached."""
    began = time.perf_counter()
    guarded = _guard(objective)
    log_start = np.log(start)
    value, _ = guarded(log_start)
    if not np.isfinite(value) or value >= _PENALTY:
        raise FitFailed(f"{name}: the likelihood is not finite at the starting point")
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    options = {"maxiter": 1000, "ftol": 1e-15, "gtol": 1e-9, "maxcor": 10}
    result = minimize(
        guarded, log_start, jac=True, method="L-BFGS-B", bounds=bounds, options=options
    )
    if not np.isfinite(result.fun) or result.fun >= _PENALTY:
        raise FitFailed(f"{name}: the optimiser found no finite likelihood ({result.message})")
    _, gradient = guarded(result.x)
    stationary = bool(np.max(np.abs(gradient)) < GRADIENT_TOLERANCE * max(1.0, abs(result.fun)))
    inside = bool(np.all(np.abs(result.x) < LOG_BOUND - 1e-6))
    return Optimum(
        params=np.exp(result.x),
        log_likelihood=-float(result.fun) * total_weight,
        converged=stationary and inside,
        seconds=time.perf_counter() - began,
    )


# What the search sees where the likelihood overflows or is undefined: a large value pushes
# the line search back towards the region where it is finite.
_PENALTY = 1e100


def _guard(objective: Objective) -> Objective:
    def guarded(log_params: FloatArray) -> tuple[float, FloatArray]:
        with np.errstate(all="ignore"):
            value, gradient = objective(log_params)
        if not np.isfinite(value) or not np.all(np.isfinite(gradient)):
            return _PENALTY, np.zeros_like(log_params)
        return value, gradient

    return guarded


def numeric_gradient(
    values: Callable[[FloatArray], FloatArray], log_params: FloatArray, step: float = 1e-6
) -> tuple[float, FloatArray]:
    """The value and its central-difference gradient, for likelihoods whose derivatives
    have no convenient closed form (the Pareto/NBD's hypergeometric terms). ``values`` takes
    a (k, p) array of parameter vectors and returns their k values: the 2p + 1 points are
    asked for in one call, so a vectorised likelihood pays its fixed costs once, not 2p + 1
    times."""
    size = len(log_params)
    shifts = np.concatenate([np.zeros((1, size)), step * np.eye(size), -step * np.eye(size)])
    found = np.asarray(values(log_params[None, :] + shifts), dtype=np.float64)
    gradient = (found[1 : size + 1] - found[size + 1 :]) / (2 * step)
    return float(found[0]), gradient


def weighted_sum(weights: FloatArray, values: FloatArray) -> float:
    """Σ wᵢ vᵢ without BLAS: ``np.dot`` hands even a short vector to a multithreaded BLAS,
    whose threads cost far more than the sum on a busy machine (fits ran ten times slower
    with other processes on the cores)."""
    return float(np.sum(weights * values))
