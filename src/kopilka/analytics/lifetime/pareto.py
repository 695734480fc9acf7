"""The Pareto/NBD model (Schmittlein, Morrison and Colombo 1987), in the form of Fader and
Hardie's "A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005).

While alive a customer buys as a Poisson process of rate λ, gamma(r, α) across customers;
each customer's lifetime is exponential with rate μ, gamma(s, β) across customers, so a
customer may drop out at any moment (not only just after a purchase, as in the BG/NBD).
Parameters are ordered (r, α, s, β).
"""

from functools import partial

import numpy as np
from scipy.special import gammaln

from kopilka.analytics.lifetime.hypergeometric import hyp2f1_a1
from kopilka.analytics.lifetime.optimise import numeric_gradient, weighted_sum
from kopilka.analytics.lifetime.summary import FloatArray

NAMES = ("r", "alpha", "s", "beta")


def log_likelihood(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """Each customer's log-likelihood (Fader and Hardie 2005, eq. 22):

    L = Γ(r+x) α^r β^s / Γ(r) · { 1/((α+T)^(r+x) (β+T)^s) + s/(r+s+x) · A₀ },

    where A₀ is the difference of two Gauss hypergeometric terms at t_x and at T (see
    :func:`_log_a0`); the second term is the probability of dying unseen in (t_x, T].
    """
    return _parts(params, x, t_x, T)[0]


def objective(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient in log-parameters (central differences:
    the hypergeometric terms' derivatives in their parameters have no handy closed form)."""
    return numeric_gradient(partial(_mean_negative, x=x, t_x=t_x, T=T, weights=weights), log_params)


def _mean_negative(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray
) -> float:
    ll = log_likelihood(np.exp(log_params), x, t_x, T)
    return -weighted_sum(weights, ll) / float(np.sum(weights))


def _parts(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(log-likelihood, log of the "alive at T" term's share of the likelihood)."""
    r, alpha, s, beta = params
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    died = np.log(s) - np.log(r + s + x) + _log_a0(params, x, t_x, T)
    both = np.logaddexp(alive, died)
    return common + both, alive - both


def _log_a0(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """log A₀, with A₀ = u(t_x) − u(T) and, for α ≥ β,

        u(y) = ₂F₁(r+s+x, s+1; r+s+x+1; (α−β)/(α+y)) / (α+y)^(r+s+x),

    for α < β the same with α and β swapped and s+1 replaced by r+x (the two cases keep the
    series' argument in [0, 1), as the note does).

    Euler's transformation ₂F₁(A, B; A+1; z) = (1−z)^(1−B) ₂F₁(1, A+1−B; A+1; z) gives the
    same u without the series blowing up as z → 1 for large x:

        α ≥ β: u(y) = (α+y)^−(r+x) (β+y)^−s ₂F₁(1, r+x; r+s+x+1; z),
        α < β: u(y) = (α+y)^(1−r−x) (β+y)^−(s+1) ₂F₁(1, s+1; r+s+x+1; z).

    A₀ ≥ 0 since u decreases in y; it is 0 when t_x = T.
    """
    r, alpha, s, beta = params
    rsx = r + s + x

    def log_u(y: FloatArray) -> FloatArray:
        if alpha >= beta:
            z = (alpha - beta) / (alpha + y)
            series = hyp2f1_a1(r + x, rsx + 1, z)
            return np.asarray(
                -(r + x) * np.log(alpha + y) - s * np.log(beta + y) + np.log(series),
                dtype=np.float64,
            )
        z = (beta - alpha) / (beta + y)
        series = hyp2f1_a1(s + 1, rsx + 1, z)
        return np.asarray(
            (1 - r - x) * np.log(alpha + y) - (s + 1) * np.log(beta + y) + np.log(series),
            dtype=np.float64,
        )

    at_last, at_end = log_u(t_x), log_u(T)
    # log(u1 − u2) = log u1 + log(1 − u2/u1); rounding may make u2 a hair above u1 at t_x ≈ T.
    gap = np.minimum(at_end - at_last, 0.0)
    with np.errstate(divide="ignore"):
        return np.asarray(at_last + np.log(-np.expm1(gap)), dtype=np.float64)


def p_alive(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """P(alive at T | x, t_x, T): the share of the likelihood that the customer is still
    alive at T, 1 / (1 + (s/(r+s+x)) (α+T)^(r+x) (β+T)^s A₀) (note, eq. 18)."""
    return np.exp(_parts(params, x, t_x, T)[1])


def expected_repeat(params: FloatArray, t: FloatArray) -> FloatArray:
    """E[X(t)] = rβ/(α(s−1)) · [1 − (β/(β+t))^(s−1)] (note, eq. 27), continuous at s = 1."""
    r, alpha, s, beta = params
    t = np.asarray(t, dtype=np.float64)
    return np.asarray(r / alpha * beta * _lifetime_factor(s, beta, t), dtype=np.float64)


def conditional_expected(
    params: FloatArray, t: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[Y(t) | x, t_x, T] = (r+x)(β+T)/((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^(s−1)]
    · P(alive | x, t_x, T) (note, eq. 41)."""
    r, alpha, s, beta = params
    rate = (r + x) / (alpha + T)
    return np.asarray(
        rate
        * (beta + T)
        * _lifetime_factor(s, beta + T, np.asarray(t, dtype=np.float64))
        * p_alive(params, x, t_x, T),
        dtype=np.float64,
    )


def _lifetime_factor(s: float, scale: FloatArray | float, t: FloatArray) -> FloatArray:
    """[1 − (scale/(scale+t))^(s−1)] / (s−1): the expected time alive in (0, t] divided by
    ``scale``; its limit at s = 1 is log(1 + t/scale)."""
    log_ratio = np.log1p(t / scale)
    if abs(s - 1) < 1e-9:
        return np.asarray(log_ratio, dtype=np.float64)
    return np.asarray(-np.expm1(-(s - 1) * log_ratio) / (s - 1), dtype=np.float64)
