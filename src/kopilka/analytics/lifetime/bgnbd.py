"""The BG/NBD model (Fader, Hardie and Lee 2005, "Counting Your Customers the Easy Way").

While alive a customer buys as a Poisson process of rate λ; λ varies across customers as a
gamma(r, α). After each purchase a customer drops out with probability p; p varies across
customers as a beta(a, b). Parameters are ordered (r, α, a, b).

x is the number of repeat purchases, t_x the time of the last one and T the time observed,
all from the customer's first purchase.
"""

import numpy as np
from numpy.typing import NDArray
from scipy.special import betaln, digamma, expit, gammaln

from kopilka.analytics.lifetime.hypergeometric import hyp2f1
from kopilka.analytics.lifetime.optimise import weighted_sum
from kopilka.analytics.lifetime.summary import FloatArray

NAMES = ("r", "alpha", "a", "b")


# Within this distance of a = 1 the expectation is taken as the mean of both sides.
NEAR_ONE = 1e-4


def log_likelihood(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """Each customer's log-likelihood (FHL 2005, eq. 6):

    L = B(a, b+x)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+T)^(r+x))
        + [x > 0] · B(a+1, b+x−1)/B(a, b) · Γ(r+x) α^r / (Γ(r) (α+t_x)^(r+x)),

    summed in log space so that neither term under- nor overflows for large x.
    """
    return _terms(params, x, t_x, T)[0]


def objective(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its analytic gradient in log-parameters."""
    params = np.exp(log_params)
    r, alpha, a, b = params
    ll, died, alive_term, died_term = _terms(params, x, t_x, T)
    total = float(np.sum(weights))
    # Weight of each of the two terms in the customer's likelihood (the second is 0 for x = 0).
    w_alive = np.exp(alive_term - ll)
    w_died = np.where(died, np.exp(died_term - ll), 0.0)
    x_died = np.where(died, x, 1.0)
    common_r = digamma(r + x) - digamma(r) + np.log(alpha)
    d_r = common_r - w_alive * np.log(alpha + T) - w_died * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + T) + w_died / (alpha + t_x))
    shared_ab = digamma(a + b)
    d_a = w_alive * (shared_ab - digamma(a + b + x)) + w_died * (
        digamma(a + 1) - digamma(a) + shared_ab - digamma(a + b + x_died)
    )
    d_b = w_alive * (digamma(b + x) - digamma(a + b + x) - digamma(b) + shared_ab) + w_died * (
        digamma(b + x_died - 1) - digamma(a + b + x_died) - digamma(b) + shared_ab
    )
    gradient = np.array(
        [
            weighted_sum(weights, d_r) * r,
            weighted_sum(weights, d_alpha) * alpha,
            weighted_sum(weights, d_a) * a,
            weighted_sum(weights, d_b) * b,
        ]
    )
    return -weighted_sum(weights, ll) / total, -gradient / total


def _terms(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_], FloatArray, FloatArray]:
    """(log-likelihood, x > 0, log of the "alive at T" term, log of the "dropped after the
    last purchase" term)."""
    r, alpha, a, b = params
    died = x > 0
    x_died = np.where(died, x, 1.0)  # keeps B(a+1, b+x−1) defined where the term is unused
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    alive = betaln(a, b + x) - (r + x) * np.log(alpha + T)
    dropped = np.where(died, betaln(a + 1, b + x_died - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    total = np.logaddexp(alive, dropped)
    return (
        np.asarray(common + total, dtype=np.float64),
        died,
        np.asarray(common + alive, dtype=np.float64),
        np.asarray(common + dropped, dtype=np.float64),
    )


def p_alive(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a/(b+x−1) ((α+T)/(α+t_x))^(r+x))
    (Fader, Hardie and Lee 2008, "Computing P(alive) using the BG/NBD model")."""
    r, alpha, a, b = params
    died = x > 0
    x_died = np.where(died, x, 1.0)
    log_odds_dead = (
        np.log(a) - np.log(b + x_died - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    )
    return np.where(died, expit(-log_odds_dead), 1.0)


def expected_repeat(params: FloatArray, t: FloatArray) -> FloatArray:
    """E[X(t)]: repeat purchases of a new customer in (0, t] (FHL 2005, eq. 7):

    E[X(t)] = (a+b−1)/(a−1) · [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))].
    """
    r, alpha, a, b = params
    t = np.asarray(t, dtype=np.float64)
    return _expected(r, alpha, a, b, np.zeros_like(t), alpha, t)


def conditional_expected(
    params: FloatArray, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[Y(t) | x, t_x, T]: repeat purchases in (T, T+t] of a customer with that history
    (FHL 2005, eq. 10):

    (a+b+x−1)/(a−1) · [1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; t/(α+T+t))]
    / [1 + [x > 0] a/(b+x−1) ((α+T)/(α+t_x))^(r+x)].
    """
    r, alpha, a, b = params
    return _expected(r, alpha, a, b, x, alpha + T, np.asarray(t, dtype=np.float64)) * p_alive(
        params, x, t_x, T
    )


def _expected(
    r: float, alpha: float, a: float, b: float, x: FloatArray, scale: FloatArray, t: FloatArray
) -> FloatArray:
    """(a+b+x−1)/(a−1) · [1 − (scale/(scale+t))^(r+x) ₂F₁(r+x, b+x; a+b+x−1; z)], z = t/(scale+t).

    Euler's transformation ₂F₁(A, B; C; z) = (1−z)^(C−A−B) ₂F₁(C−A, C−B; C; z) turns the
    bracket into 1 − (1−z)^(a−1) ₂F₁(a+b−1−r, a−1; a+b+x−1; z): the power and the series no
    longer grow with x in opposite directions, so large x neither overflows nor cancels.
    """
    if abs(a - 1) < NEAR_ONE:
        # The expectation is continuous in a, but near a = 1 both factors tend to 0/0 and the
        # bracket loses its digits to cancellation: take the mean of the two sides, whose
        # error is of the order of NEAR_ONE² (they sit twice as far, clear of this test).
        return (
            _expected(r, alpha, 1 - 2 * NEAR_ONE, b, x, scale, t)
            + _expected(r, alpha, 1 + 2 * NEAR_ONE, b, x, scale, t)
        ) / 2
    z = t / (scale + t)
    series = hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
    with np.errstate(invalid="ignore"):  # a diverged series (inf) gives nan, not a warning
        bracket = -np.expm1((a - 1) * np.log1p(-z)) * series - (series - 1)
    # An expected count is never negative; rounding may leave a hair below zero.
    return np.maximum(np.asarray((a + b + x - 1) / (a - 1) * bracket, dtype=np.float64), 0.0)
