"""The Gamma-Gamma model of spend per transaction (Fader, Hardie and Lee 2005, "RFM and
CLV: Using Iso-Value Curves for Customer Base Analysis"; Fader and Hardie 2013, "The
Gamma-Gamma Model of Monetary Value").

A customer's transaction values vary around their mean ζ as gamma(p, ν) with ζ = p/ν;
ν varies across customers as gamma(q, γ). Spend is assumed independent of the purchase
process. Parameters are ordered (p, q, γ). The data are, for customers with x ≥ 1 repeat
transactions, x and the mean value m_x of those transactions.
"""

import numpy as np
from scipy.special import digamma, gammaln

from kopilka.analytics.lifetime.optimise import weighted_sum
from kopilka.analytics.lifetime.summary import FloatArray

NAMES = ("p", "q", "gamma")


def log_likelihood(params: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """Each customer's log density of m_x given x (the note, eq. 5):

    f(m_x | p, q, γ; x) = Γ(px+q) / (Γ(px) Γ(q)) · γ^q m_x^(px−1) x^(px) / (γ + x m_x)^(px+q).
    """
    p, q, gamma = params
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m),
        dtype=np.float64,
    )


def objective(
    log_params: FloatArray, x: FloatArray, m: FloatArray, weights: FloatArray
) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its analytic gradient in log-parameters."""
    params = np.exp(log_params)
    p, q, gamma = params
    total = float(np.sum(weights))
    ll = log_likelihood(params, x, m)
    spread = np.log(gamma + x * m)
    shared = digamma(p * x + q)
    d_p = x * (shared - digamma(p * x) + np.log(m) + np.log(x) - spread)
    d_q = shared - digamma(q) + np.log(gamma) - spread
    d_gamma = q / gamma - (p * x + q) / (gamma + x * m)
    gradient = np.array(
        [
            weighted_sum(weights, d_p) * p,
            weighted_sum(weights, d_q) * q,
            weighted_sum(weights, d_gamma) * gamma,
        ]
    )
    return -weighted_sum(weights, ll) / total, -gradient / total


def population_mean(params: FloatArray) -> float:
    """E(M) = pγ/(q−1): mean spend per transaction of a customer about whom nothing is
    known; infinite unless q > 1."""
    p, q, gamma = params
    return float(p * gamma / (q - 1)) if q > 1 else float("inf")


def conditional_expected(params: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """E(M | p, q, γ; m_x, x) = (q−1)/(px+q−1) · pγ/(q−1) + px/(px+q−1) · m_x: a weighted
    mean of the population mean and the customer's own mean, the more transactions the
    more weight on the latter (the note, eq. 7). For x = 0 it is the population mean."""
    p, q, gamma = params
    px = p * x
    return np.asarray((p * gamma + px * m) / (px + q - 1), dtype=np.float64)
