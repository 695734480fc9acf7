"""The Pareto/NBD model (Schmittlein, Morrison and Colombo 1987), in the form of Fader and
Hardie's "A Note on Deriving the Pareto/NBD Model and Related Expressions" (2005).

While alive a customer buys as a Poisson process of rate λ, gamma(r, α) across customers;
each customer's lifetime is exponential with rate μ, gamma(s, β) across customers, so a
customer may drop out at any moment (not only just after a purchase, as in the BG/NBD).
Parameters are ordered (r, α, s, β).
"""

import numpy as np
from scipy.special import gammaln

from kopilka.analytics.lifetime.hypergeometric import hyp2f1_a1
from kopilka.analytics.lifetime.optimise import numeric_gradient
from kopilka.analytics.lifetime.summary import FloatArray

NAMES = ("r", "alpha", "s", "beta")


def log_likelihood(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """Each customer's log-likelihood (Fader and Hardie 2005, eq. 22):

    L = Γ(r+x) α^r β^s / Γ(r) · { 1/((α+T)^(r+x) (β+T)^s) + s/(r+s+x) · A₀ },

    where A₀ is the difference of two Gauss hypergeometric terms at t_x and at T (see
    :func:`_log_a0`); the second term is the probability of dying unseen in (t_x, T].
    ``params`` may also be a (k, 4) array of parameter vectors: the answer is then (k, n).
    """
    return _parts(params, x, t_x, T)[0]


def objective(
    log_params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient in log-parameters (central differences:
    the hypergeometric terms' derivatives in their parameters have no handy closed form; the
    nine points are evaluated as one batch)."""
    total = float(np.sum(weights))

    def mean_negative(batch: FloatArray) -> FloatArray:
        ll = log_likelihood(np.exp(batch), x, t_x, T)
        # A row-wise sum rather than a matrix product: see optimise.weighted_sum.
        return np.asarray(-np.sum(ll * weights, axis=-1) / total, dtype=np.float64)

    return numeric_gradient(mean_negative, log_params)


def _parts(
    params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(log-likelihood, log of the "alive at T" term's share of the likelihood)."""
    r, alpha, s, beta = _columns(params)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    died = np.log(s) - np.log(r + s + x) + _log_a0(params, x, t_x, T)
    both = np.logaddexp(alive, died)
    return common + both, alive - both


def _columns(params: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """r, α, s, β: scalars for one parameter vector, (k, 1) columns for a (k, 4) batch (so
    that they broadcast against the customers)."""
    table = np.asarray(params, dtype=np.float64)
    if table.ndim == 1:
        return table[0], table[1], table[2], table[3]
    r, alpha, s, beta = (table[:, [k]] for k in range(4))
    return r, alpha, s, beta


def _log_a0(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """log A₀, with A₀ = u(t_x) − u(T) and, for α ≥ β,

        u(y) = ₂F₁(r+s+x, s+1; r+s+x+1; (α−β)/(α+y)) / (α+y)^(r+s+x),

    for α < β the same with α and β swapped and s+1 replaced by r+x (the two cases keep the
    series' argument in [0, 1), as the note does).

    Euler's transformation ₂F₁(A, B; A+1; z) = (1−z)^(1−B) ₂F₁(1, A+1−B; A+1; z) gives the
    same u without the series blowing up as z → 1 for large x:

        α ≥ β: u(y) = (α+y)^−(r+x) (β+y)^−s ₂F₁(1, r+x; r+s+x+1; z),
        α < β: u(y) = (α+y)^(1−r−x) (β+y)^−(s+1) ₂F₁(1, s+1; r+s+x+1; z),

    with z = |α−β| / (max(α, β) + y) and 1 − z = (min(α, β) + y) / (max(α, β) + y) passed
    as such (as z → 1 the difference is the whole answer). A₀ ≥ 0 since u decreases in y; it
    is 0 when t_x = T. Both ends (t_x and T) go to :func:`hyp2f1_a1` in one call.
    """
    r, alpha, s, beta = _columns(params)
    ends = np.stack(np.broadcast_arrays(np.asarray(t_x, np.float64), np.asarray(T, np.float64)))
    frequency = np.broadcast_to(np.asarray(x, dtype=np.float64), ends.shape)
    # u depends on the customer only through (x, y): many customers share their (x, t_x)
    # (all those without repeats share (0, 0)) or their (x, T), so each pair is done once.
    pairs, inverse = np.unique((frequency + 1j * ends).ravel(), return_inverse=True)
    x, y = pairs.real, pairs.imag
    alpha_first = alpha >= beta
    larger, smaller = np.maximum(alpha, beta), np.minimum(alpha, beta)
    z = (larger - smaller) / (larger + y)
    complement = (smaller + y) / (larger + y)
    series = hyp2f1_a1(np.where(alpha_first, r + x, s + 1), r + s + x + 1, z, complement)
    log_alpha, log_beta = np.log(alpha + y), np.log(beta + y)
    log_pairs = np.log(series) + np.where(
        alpha_first,
        -(r + x) * log_alpha - s * log_beta,
        (1 - r - x) * log_alpha - (s + 1) * log_beta,
    )
    log_u = log_pairs[..., inverse].reshape(log_pairs.shape[:-1] + ends.shape)
    at_last, at_end = log_u[..., 0, :], log_u[..., 1, :]
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
