"""Gauss's hypergeometric function ₂F₁ where the models need it, robust where SciPy's is not.

Two entry points:

* :func:`hyp2f1` (the BG/NBD's expectations): SciPy's ``hyp2f1``, which is fast and accurate
  over that model's ranges except where C − A − B is a whole number, C is large and z is near
  1: there it returns NaN or inf (for instance ₂F₁(1, 2; 102; 10/11), about 1.018), and those
  entries are summed from the series instead.
* :func:`hyp2f1_a1` (the Pareto/NBD's likelihood): ₂F₁(1, b; c; z) for c > b > 0 and
  0 ≤ z < 1. The Pareto/NBD needs it as z → 1 with b and c in the hundreds (a fit that
  wanders towards large r and α, or s and β), where SciPy gives NaN, inf or wrong values and
  the series needs ~40/(1 − z) terms; above z = 1/2 it is computed here, by a continued
  fraction or, when c·(1 − z) is small, by a split integral (below), in at most a few dozen
  vectorised steps.
"""

import numpy as np
from numpy.typing import NDArray
from scipy.special import hyp2f1 as scipy_hyp2f1

from kopilka.analytics.lifetime.summary import FloatArray

# The series stops when a term changes the sum by less than this, or after this many terms
# (for |z| < 1 the terms shrink geometrically once n passes the parameters).
_TOLERANCE = 1e-17
_TERMS = 400_000


def hyp2f1(a: object, b: object, c: object, z: object) -> FloatArray:
    """₂F₁(a, b; c; z) for real 0 ≤ z < 1, broadcast over the arguments."""
    a_, b_, c_, z_ = (np.asarray(v, dtype=np.float64) for v in (a, b, c, z))
    a_, b_, c_, z_ = np.broadcast_arrays(a_, b_, c_, z_)
    values = np.array(scipy_hyp2f1(a_, b_, c_, z_), dtype=np.float64)
    failed = ~np.isfinite(values)
    if np.any(failed):
        values[failed] = _series(a_[failed], b_[failed], c_[failed], z_[failed])
    return values


def _series(a: FloatArray, b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """Σₙ (a)ₙ (b)ₙ / ((c)ₙ n!) zⁿ, summed until every entry has converged."""
    total = np.ones_like(z)
    term = np.ones_like(z)
    active = np.ones(z.shape, dtype=bool)
    # For extreme parameters (a poor fit of a short history) the series diverges: the
    # sum becomes inf, a value the callers see as not finite, not a warning to print.
    with np.errstate(over="ignore", invalid="ignore"):
        for n in range(_TERMS):
            step = (a[active] + n) * (b[active] + n) / ((c[active] + n) * (n + 1)) * z[active]
            term[active] *= step
            total[active] += term[active]
            active &= np.abs(term) > _TOLERANCE * np.abs(total)
            if not np.any(active):
                break
    return total


# ---------------------------------------------------------------------------------------------
# ₂F₁(1, b; c; z)
#
# With d = c − b > 0 and ε = 1 − z:
#
# * Gauss's continued fraction (the one of the incomplete beta function, Bₓ(p, q) =
#   xᵖ(1−x)^q/p · ₂F₁(p+q, 1; p+1; x) with p = c − 1, q = 1 − d) converges for every z < 1,
#   in a few dozen steps while c·ε is not small, but in ~20/√ε steps when it is.
# * When c·ε is small, the integral ₂F₁(1, b; c; z) = (c−1) z^(1−c) ε^(d−1) ∫_ε^1
#   ψ^(−d) (1−ψ)^(c−2) dψ (ψ = ε/(1 − z·t) in Euler's integral) is split at
#   ψ* = min(1/2, K/c) > ε, K = _NEAR_ONE: below ψ*, (1−ψ)^(c−2) is expanded in powers of ψ
#   and integrated term by term (a fast series, since c·ψ* ≤ K); from ψ* to 1 the integral
#   is ₂F₁(1, b; c; 1 − ψ*) again, by the continued fraction (c·(1 − z) is now K, not small).
#   No gamma functions: the whole-number cases (d an integer, where the usual z → 1 − z
#   formula has cancelling poles) need no special care.
# ---------------------------------------------------------------------------------------------

# Up to this z SciPy's hyp2f1 (compiled, several times faster than the loops below) agrees
# with them to ~1e-14 for every b and c > b tested (b from 1e-3 to 1e9); beyond it, the loops.
_SCIPY_UP_TO = 0.5
# Where the split integral takes over: c·ε < _NEAR_ONE (and z > 1/2).
_NEAR_ONE = 3.0
# Convergence of the continued fraction and of the series (relative).
_CF_TOLERANCE = 1e-16
_CF_STEPS = 5_000
_SERIES_TOLERANCE = 1e-17
_SERIES_TERMS = 200


def hyp2f1_a1(b: object, c: object, z: object, complement: object | None = None) -> FloatArray:
    """₂F₁(1, b; c; z) for c > b > 0 and 0 ≤ z < 1, broadcast over the arguments, to about
    1e-12 relative. ``complement`` is 1 − z when the caller knows it more precisely than
    1 − z rounds (as z → 1 that difference is the whole answer)."""
    b_, c_, z_ = (np.asarray(v, dtype=np.float64) for v in (b, c, z))
    eps_ = np.asarray(1.0 - z_ if complement is None else complement, dtype=np.float64)
    b_, c_, z_, eps_ = (np.array(v) for v in np.broadcast_arrays(b_, c_, z_, eps_))
    shape = z_.shape
    b_, c_, z_, eps_ = (v.ravel() for v in (b_, c_, z_, eps_))
    values = np.empty_like(z_)
    low = z_ <= _SCIPY_UP_TO
    if np.any(low):
        values[low] = scipy_hyp2f1(1.0, b_[low], c_[low], z_[low])
    near = ~low & (c_ * eps_ < _NEAR_ONE)
    far = ~low & ~near
    if np.any(far):
        values[far] = _continued_fraction(b_[far], c_[far], z_[far])
    if np.any(near):
        values[near] = _near_one(b_[near], c_[near], z_[near], eps_[near])
    return values.reshape(shape)


def _continued_fraction(b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """1 / (1 + d₁/(1 + d₂/(1 + …))) by the modified Lentz method, with
    d₂ₘ₊₁ = −(c−1+m)(b+m) z / ((c−1+2m)(c+2m)) and d₂ₘ = −m(c−b−1+m) z / ((c−2+2m)(c−1+2m));
    entries leave the loop as they converge."""
    result = np.empty_like(z)
    index = np.arange(z.size)
    p = c - 1.0  # the incomplete beta function's first parameter
    q = b - c + 1.0  # and its second, 1 − d
    value = np.ones_like(z)
    big = np.ones_like(z)  # Lentz's C
    small = np.zeros_like(z)  # Lentz's D
    tiny = 1e-300
    for k in range(1, _CF_STEPS):
        m = k // 2
        if k % 2:
            coefficient = -(p + m) * (p + q + m) * z / ((p + 2 * m) * (p + 2 * m + 1))
        else:
            coefficient = m * (q - m) * z / ((p + 2 * m - 1) * (p + 2 * m))
        small = 1.0 + coefficient * small
        small = np.where(small == 0, tiny, small)
        big = 1.0 + coefficient / big
        big = np.where(big == 0, tiny, big)
        small = 1.0 / small
        change = big * small
        value = value * change
        done = np.abs(change - 1.0) <= _CF_TOLERANCE
        if np.any(done):
            result[index[done]] = 1.0 / value[done]
            keep = ~done
            if not np.any(keep):
                return result
            index = index[keep]
            p, q, z, value, big, small = _kept(keep, p, q, z, value, big, small)
    result[index] = 1.0 / value
    return result


def _near_one(b: FloatArray, c: FloatArray, z: FloatArray, eps: FloatArray) -> FloatArray:
    """The split integral (see the comment above) for c·ε small:

    ₂F₁ = (c−1) z^(1−c) S + (z*/z)^(c−1) (ε/ψ*)^(d−1) ₂F₁(1, b; c; z*), z* = 1 − ψ*,
    S = Σₙ (2−c)ₙ/n! ψ*ⁿ hₙ, hₙ = ε^(d−1) ψ*^(−n) ∫_ε^ψ* ψ^(n−d) dψ
      = (e^(−(d−1)ℓ) − e^(−nℓ)) / (n − (d−1)) = max(e^(−(d−1)ℓ), e^(−nℓ)) (1 − e^(−|k|ℓ)) / |k|,

    ℓ = log(ψ*/ε) > 0, k = n − (d−1) (the last form neither overflows nor cancels, and tends
    to ℓ e^(−nℓ) as k → 0)."""
    d_minus_1 = c - b - 1.0
    split = np.minimum(0.5, _NEAR_ONE / c)
    gap = np.log(split / eps)  # ℓ > 0
    upper = _continued_fraction(b, c, 1.0 - split)
    log_z = np.log1p(-eps)
    tail = np.exp((c - 1.0) * (np.log1p(-split) - log_z) - d_minus_1 * gap) * upper
    scale = c  # kept whole: the loop below drops converged entries from c
    # The coefficients (2−c)ₙ/n! ψ*ⁿ grow while n < (c−2)ψ* ≤ _NEAR_ONE, then shrink.
    rising = (c - 2.0) * split

    total = np.zeros_like(z)
    index = np.arange(z.size)
    at_d = np.exp(-d_minus_1 * gap)  # e^(−(d−1)ℓ)
    at_n = np.ones_like(z)  # e^(−nℓ)
    shrink = np.exp(-gap)
    coefficient = np.ones_like(z)  # (2−c)ₙ/n! ψ*ⁿ
    sums = np.zeros_like(z)
    for n in range(_SERIES_TERMS):
        distance = np.maximum(np.abs(n - d_minus_1), 1e-200)  # |k|
        term = coefficient * np.maximum(at_d, at_n) * (-np.expm1(-distance * gap) / distance)
        sums += term
        done = (np.abs(term) <= _SERIES_TOLERANCE * np.abs(sums)) & (n >= rising)
        if np.any(done):
            total[index[done]] = sums[done]
            keep = ~done
            if not np.any(keep):
                break
            index = index[keep]
            c, d_minus_1, gap, at_d, at_n, shrink, coefficient, sums, rising, split = _kept(
                keep, c, d_minus_1, gap, at_d, at_n, shrink, coefficient, sums, rising, split
            )
        at_n = at_n * shrink
        coefficient = coefficient * (2.0 - c + n) / (n + 1) * split
    else:
        total[index] = sums
    return np.asarray((scale - 1.0) * np.exp((1.0 - scale) * log_z) * total + tail)


def _kept(keep: NDArray[np.bool_], *arrays: FloatArray) -> list[FloatArray]:
    """The entries still in a loop: converged ones leave it, so that every step works only
    on what is left."""
    return [a[keep] for a in arrays]
